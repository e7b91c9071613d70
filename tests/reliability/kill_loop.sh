#!/usr/bin/env bash
# No lost results: `needle pred`, then `longbench pred`, is SIGKILLed at
# random moments (uniform over the length of an uninterrupted run) and
# restarted, again and again, until
# each sweep completes; every completed sweep must equal the uninterrupted
# run byte for byte (no duplicate, missing or torn line). At least KILLS
# kills land on a running process. (Ctrl-C: sigint.sh.)
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

rm -rf "$work"
echo "OK"
