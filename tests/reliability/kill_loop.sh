#!/usr/bin/env bash
# No lost results: `needle pred`, then `longbench pred`, is SIGKILLed at
# random moments (uniform over the length of an uninterrupted run) and
# restarted, again and again, until
# each sweep completes; every completed sweep must equal the uninterrupted
# run byte for byte (no duplicate, missing or torn line). At least KILLS
# kills land on a running process. Then Ctrl-C: SIGINT stops the run with
# exit 130 and a message saying how to resume, and resuming completes it.
#
#   kill_loop.sh KVPRUNE WORKDIR [KILLS]   (from the repository root)
set -uo pipefail
cli=$1 work=$2 want=${3:-50}
model=tests/data/eval/tiny-model
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }

"$cli" needle gen -m "$model" -o "$work/data/niah.jsonl" --lengths 150,250 --num-depths 3 \
  --samples 2 -n 6 >/dev/null || fail "needle gen"

# loop LABEL: SIGKILLs "$cli" "${args[@]}" --save-dir DIR until `want`
# kills have landed; the result files are "$pattern" under each DIR.
lines_in() { cat "$1"/$pattern 2>/dev/null | wc -l; }
torn_in() { # files whose last byte is not a newline
  local n=0 f
  for f in "$1"/$pattern; do
    [ -s "$f" ] && [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" != '\n' ] && n=$((n + 1))
  done
  echo $n
}
loop() {
  local label=$1 ref="$work/$1-ref"
  local t0 run_ms total kills=0 mid=0 torn=0 cycles=0 d pid delay rc n
  t0=$(date +%s%N)
  "$cli" "${args[@]}" --save-dir "$ref" >/dev/null 2>&1 || fail "$label: uninterrupted run"
  run_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  total=$(lines_in "$ref")
  [ "$total" -gt 0 ] || fail "$label: the reference run wrote nothing"
  while [ $kills -lt "$want" ]; do
    cycles=$((cycles + 1))
    d="$work/$label-run$cycles"
    while :; do
      "$cli" "${args[@]}" --save-dir "$d" >/dev/null 2>&1 &
      pid=$!
      delay=$(( (RANDOM * 32768 + RANDOM) % (run_ms + 1) ))
      sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
      kill -9 "$pid" 2>/dev/null
      { wait "$pid"; } 2>/dev/null
      rc=$?
      if [ $rc -eq 0 ]; then break; fi
      [ $rc -eq 137 ] || fail "$label: exited $rc (not killed, not done)"
      kills=$((kills + 1))
      n=$(lines_in "$d")
      [ "$n" -gt 0 ] && [ "$n" -lt "$total" ] && mid=$((mid + 1))
      torn=$((torn + $(torn_in "$d")))
    done
    # A SIGKILL between an atomic write's temporary file and its rename
    # leaves the temporary (NAME.tmp.PID) behind; the file itself is whole.
    diff -r -x '*.tmp.*' "$ref" "$d" >/dev/null || { diff -r -x '*.tmp.*' "$ref" "$d" | head -5; fail "$label: cycle $cycles differs from the uninterrupted run"; }
    rm -rf "$d"
  done
  echo "kill loop ($label): $kills SIGKILLs over $cycles sweeps ($mid with the sweep part" \
       "done, $torn torn last lines left behind and repaired), every sweep identical to the" \
       "uninterrupted one ($total lines, a run takes ${run_ms} ms)"
}

RANDOM=12345
args=(needle pred -m "$model" --data "$work/data/niah.jsonl" --method full,h2o,kvcVK
      --cache-ratio 0.3 -n 6 --quiet --threads 1 --task niah)
pattern='niah/*/pred.jsonl'
loop needle
# LongBench's pred (the LongBench-format fixture, the same tiny model)
if "$cli" longbench --help >/dev/null 2>&1; then
  args=(longbench pred -m "$model" --data-dir tests/data/longbench/data
        --config-dir tests/data/longbench/config --model-name tiny --max-length 300
        --task trec,passage_count,samsum --method full,h2o,kvcVK --cache-ratio 0.3 --threads 1 --quiet)
  pattern='pred/*/*.jsonl'
  loop longbench
fi

# Ctrl-C
args=(needle pred -m "$model" --data "$work/data/niah.jsonl" --method full,h2o,kvcVK
      --cache-ratio 0.3 -n 6 --quiet --threads 1 --task niah)
pattern='niah/*/pred.jsonl'
total=$(lines_in "$work/needle-ref")
d="$work/sigint"
"$cli" "${args[@]}" --save-dir "$d" >"$work/int.out" 2>"$work/int.err" &
pid=$!
for _ in $(seq 1 2000); do
  [ "$(lines_in "$d")" -ge 1 ] && break
  sleep 0.005
done
kill -INT "$pid"
wait "$pid"
rc=$?
if [ $rc -eq 0 ]; then
  echo "note: the run ended before SIGINT arrived; SIGINT not exercised"
else
  [ $rc -eq 130 ] || fail "SIGINT: exit $rc, expected 130"
  grep -q "kvprune needle pred: interrupted: .*run the same command again to resume" "$work/int.err" ||
    fail "SIGINT: message: $(cat "$work/int.err")"
  [ "$(torn_in "$d")" -eq 0 ] || fail "SIGINT left a torn line"
  echo "SIGINT: exit 130 after $(lines_in "$d") of $total lines: $(cat "$work/int.err")"
fi
"$cli" "${args[@]}" --save-dir "$d" >/dev/null 2>&1 || fail "resume after SIGINT"
diff -r "$work/needle-ref" "$d" >/dev/null || fail "resumed after SIGINT: differs"
rm -rf "$work"
echo "OK"
