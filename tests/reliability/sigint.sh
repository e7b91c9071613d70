#!/usr/bin/env bash
# Ctrl-C: SIGINT stops `needle pred`, `longbench pred`, `generate` and
# `compare` after the current token, exiting 130 with a message that says
# what was kept and how to go on, and leaves no torn line; a rerun of a
# pred completes the sweep byte for byte as an uninterrupted run, and an
# interrupted generate printed exactly what `-n <tokens so far>` prints.
#
# The signal is sent while the command's handler is installed (the run's
# window, read from /proc/PID/status), with the process stopped meanwhile,
# so it always lands inside the run, never before or after it.
#
#   sigint.sh KVPRUNE WORKDIR   (from the repository root)
set -uo pipefail
cli=$1 work=$2
model=tests/data/eval/tiny-model
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }

catches_sigint() { # the process has a SIGINT handler installed
  local k v
  while read -r k v; do
    [ "$k" = SigCgt: ] && { (( (16#$v >> 1) & 1 )); return; }
  done <"/proc/$1/status" 2>/dev/null
  return 1
}

# interrupt PID: waits until the process catches SIGINT and $ready (a
# command) succeeds, checked with the process stopped; then, if $not_done
# succeeds too, sends SIGINT before resuming it. Returns 1 (and lets it
# finish) when the run passed the point first.
interrupt() {
  local pid=$1 i
  for i in $(seq 1 20000); do
    kill -0 "$pid" 2>/dev/null || return 1
    if catches_sigint "$pid" && $ready; then
      kill -STOP "$pid" 2>/dev/null || return 1
      if catches_sigint "$pid" && $ready && $not_done; then
        kill -INT "$pid"
        kill -CONT "$pid"
        return 0
      fi
      kill -CONT "$pid"
      $not_done || return 1
    fi
    sleep 0.002
  done
  return 1
}

torn_in() { # files whose last byte is not a newline
  local n=0 f
  for f in $1/$pattern; do
    [ -s "$f" ] && [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" != '\n' ] && n=$((n + 1))
  done
  echo $n
}
lines_in() { cat $1/$pattern 2>/dev/null | wc -l; }

# pred LABEL: the sweep "${args[@]}" interrupted after its first line, then
# resumed; up to 5 tries in case a sweep ends before the signal.
pred() {
  local label=$1 tag=${1// /-} d rc try n
  local ref="$work/$tag-ref"
  "$cli" "${args[@]}" --save-dir "$ref" >/dev/null 2>&1 || fail "$label: uninterrupted run"
  total=$(lines_in "$ref")
  for try in 1 2 3 4 5; do
    d="$work/$tag-$try"
    "$cli" "${args[@]}" --save-dir "$d" >"$work/out" 2>"$work/err" &
    pid=$!
    ready="has_lines $d" not_done="short_of $d $total"
    if interrupt "$pid"; then
      wait "$pid"
      rc=$?
      [ $rc -eq 130 ] || fail "$label: exit $rc after SIGINT, expected 130: $(cat "$work/err")"
      grep -q "^kvprune $label: interrupted: .*run the same command again to resume" "$work/err" ||
        fail "$label: message: $(cat "$work/err")"
      [ "$(torn_in "$d")" -eq 0 ] || fail "$label: SIGINT left a torn line"
      n=$(lines_in "$d")
      [ "$n" -ge 1 ] && [ "$n" -lt "$total" ] || fail "$label: $n of $total lines after SIGINT"
      "$cli" "${args[@]}" --save-dir "$d" >/dev/null 2>&1 || fail "$label: resume after SIGINT"
      diff -r "$ref" "$d" >/dev/null || { diff -r "$ref" "$d" | head -5; fail "$label: resumed run differs"; }
      echo "$label: SIGINT -> exit 130 after $n of $total lines; resumed: identical to the" \
           "uninterrupted run. $(cat "$work/err")"
      return
    fi
    wait "$pid"
  done
  fail "$label: 5 sweeps ended before SIGINT could land"
}
has_lines() { [ "$(lines_in "$1")" -ge 1 ]; }
short_of() { [ "$(lines_in "$1")" -lt "$2" ]; }

# (sweeps of a few seconds, so that the first line comes well before the
# last)
"$cli" needle gen -m "$model" -o "$work/data/niah.jsonl" --lengths 150,250 --num-depths 3 \
  --samples 4 -n 48 >/dev/null || fail "needle gen"
args=(needle pred -m "$model" --data "$work/data/niah.jsonl" --method full,h2o,kvcVK
      --cache-ratio 0.3 -n 48 --quiet --threads 1 --task niah)
pattern='niah/*/pred.jsonl'
pred "needle pred"
args=(longbench pred -m "$model" --data-dir tests/data/longbench/data
      --config-dir tests/data/longbench/config --model-name tiny --max-length 300
      --task trec,passage_count,samsum --method full,h2o,kvcVK --cache-ratio 0.3 --threads 1 --quiet)
pattern='pred/*/*.jsonl'
pred "longbench pred"

# generate: a run far longer than it will be allowed to go (a bounded
# cache, EOS ignored), interrupted once its first logits are written.
json_strip() { # the JSON without timings and the interrupted flag
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("stats"); d.pop("interrupted", None); print(json.dumps(d, sort_keys=True))' "$1"
}
gen=(generate -m "$model" --prompt "Tell me a story about a cat." --ignore-eos --method h2o
     --num-heavy 8 --num-recent 8 --threads 1 --json)
"$cli" "${gen[@]}" -n 1000000 --dump-logits "$work/g.bin" >"$work/g.json" 2>"$work/err" &
pid=$!
ready="test -s $work/g.bin" not_done=true
interrupt "$pid" || fail "generate: ended before SIGINT"
wait "$pid"
rc=$?
[ $rc -eq 130 ] || fail "generate: exit $rc after SIGINT, expected 130: $(cat "$work/err")"
k=$(sed -n 's/^kvprune generate: interrupted after \([0-9]*\) of 1000000 new tokens: .*run the same command again.*/\1/p' "$work/err")
[ -n "$k" ] || fail "generate: message: $(cat "$work/err")"
grep -q '"interrupted":true' "$work/g.json" || fail "generate: --json lacks \"interrupted\":true"
"$cli" "${gen[@]}" -n "$k" --dump-logits "$work/k.bin" >"$work/k.json" 2>/dev/null || fail "generate -n $k"
[ "$(json_strip "$work/g.json")" = "$(json_strip "$work/k.json")" ] ||
  fail "generate: the interrupted output differs from that of -n $k"
cmp -s "$work/g.bin" "$work/k.bin" || fail "generate: --dump-logits differs from that of -n $k"
echo "generate: SIGINT -> exit 130 after $k tokens; output and logits identical to -n $k." \
     "$(cat "$work/err")"

# compare: interrupted inside its first method, whose partial run is left
# out; the JSON stays whole and says so.
"$cli" compare -m "$model" --prompt "Tell me a story about a cat." --methods h2o,tova \
  --num-heavy 8 --num-recent 8 --ignore-eos -n 1000000 --threads 1 --json >"$work/c.json" 2>"$work/err" &
pid=$!
ready="sleep 0.2" not_done=true
interrupt "$pid" || fail "compare: ended before SIGINT"
wait "$pid"
rc=$?
[ $rc -eq 130 ] || fail "compare: exit $rc after SIGINT, expected 130: $(cat "$work/err")"
grep -q "^kvprune compare: interrupted during method h2o: the 0 method(s) finished before it .*run the same command again" \
  "$work/err" || fail "compare: message: $(cat "$work/err")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["interrupted"] is True and d["results"] == [], d' \
  "$work/c.json" || fail "compare: --json after SIGINT"
echo "compare: SIGINT -> exit 130, JSON whole with no result. $(cat "$work/err")"

rm -rf "$work"
echo "OK"
