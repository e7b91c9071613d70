#!/usr/bin/env bash
# Same command, same bytes: generate (text, --json without its timings, and
# the logits of every step), compare --json without timings, and needle pred
# give byte-identical outputs across repeated runs and thread counts 1, 2, 3,
# for the full cache and pruning methods of each family, on the project's
# model (models/kvp-mini) with a prompt long enough for the parallel paths.
#
#   determinism.sh KVPRUNE WORKDIR   (from the repository root)
set -uo pipefail
cli=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
model=models/kvp-mini
[ -f "$model/config.json" ] || { echo "SKIP: no $model"; exit 77; }
# timing fields vary by nature; everything else must not
strip() { python3 -c '
import json, sys
T = {"prefill_ms", "decode_ms", "attn_ms", "decode_attn_ms", "tokens_per_s"}
def s(o):
    if isinstance(o, dict): return {k: s(v) for k, v in o.items() if k not in T}
    if isinstance(o, list): return [s(v) for v in o]
    return o
print(json.dumps(s(json.load(sys.stdin)), sort_keys=True))'; }

prompt="$work/prompt.txt"
python3 - "$prompt" <<'PY'
import sys
words = "the cat sat on a mat while seven birds sang about rivers and stone houses".split()
text = " ".join(words[(i * 7) % len(words)] for i in range(450))
open(sys.argv[1], "w").write("Remember this: the code is 4417. " + text + " What is the code?")
PY
runs=0
for m in full h2o snapkv kvcVK+maxpool tova; do
  b=(--method "$m" --num-recent 16 --num-heavy 48)
  [ "$m" = full ] && b=()
  ref=""
  for t in 1 2 3 2; do
    "$cli" generate -m "$model" --prompt-file "$prompt" -n 12 --ignore-eos -t "$t" "${b[@]}" \
      --dump-logits "$work/logits.$t" --json >"$work/gen.json" 2>/dev/null || fail "generate $m -t $t"
    strip <"$work/gen.json" >"$work/gen.$t"
    runs=$((runs + 1))
    if [ -z "$ref" ]; then ref=$t; continue; fi
    cmp -s "$work/gen.$ref" "$work/gen.$t" || fail "generate --method $m: -t $t differs from -t $ref"
    cmp -s "$work/logits.$ref" "$work/logits.$t" || fail "generate --method $m: logits at -t $t differ from -t $ref"
  done
done
for t in 1 2 3 3; do
  "$cli" compare -m "$model" --prompt-file "$prompt" -n 8 -t "$t" --methods full,h2o,kvcVK,sink \
    --num-recent 16 --num-heavy 48 --json 2>/dev/null | strip >"$work/cmp.$t" || fail "compare -t $t"
  runs=$((runs + 1))
  cmp -s "$work/cmp.1" "$work/cmp.$t" || fail "compare --json: -t $t differs from -t 1"
done
"$cli" needle gen -m "$model" -o "$work/niah.jsonl" --lengths 300,600 --depths 0,50,100 --samples 1 \
  -n 8 >/dev/null 2>&1 || fail "needle gen"
k=0
for t in 1 2 3 1; do
  k=$((k + 1))
  "$cli" needle pred -m "$model" --data "$work/niah.jsonl" --save-dir "$work/pred.$k" --quiet \
    --method full,h2o,kvcVK --cache-ratio 0.2 -n 8 --threads "$t" >/dev/null 2>&1 || fail "needle pred --threads $t"
  runs=$((runs + 1))
  diff -r "$work/pred.1" "$work/pred.$k" >/dev/null || fail "needle pred: --threads $t differs from --threads 1"
done
rm -rf "$work"
echo "determinism: $runs runs, outputs byte-identical across runs and 1, 2, 3 threads"
