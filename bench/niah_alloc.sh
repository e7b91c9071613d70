#!/usr/bin/env bash
# Needle accuracy of the budget allocations at equal total KV bytes:
# uniform vs head-adaptive (Ada-KV) vs head-adaptive + pyramid (PyramidKV),
# for snapkv, h2o, kvcV and kvcVK at cache ratios 0.01, 0.02 and 0.05 of the
# prompt (16 recent tokens included), prefill-only eviction, greedy, with
# the bundled model on two held-out haystacks at 2048 and 4096 tokens:
#   essays: the Paul Graham essays the model was not trained on (the hold-out
#           split of tools/train/kvp_data.py, listed in the model card);
#   GPL-3:  the GNU GPL v3 text, /usr/share/common-licenses/GPL-3 (Debian's
#           base-files: on every Debian machine), a non-essay text.
# One task per haystack x length (niah_<haystack>_<length>), each with
# depths x samples prompts; the sample count per configuration (method,
# ratio, allocation) pooled over the 4 tasks is 4 x depths x samples
# (default 100: a standard error of at most 5 points).
#
# usage: bench/niah_alloc.sh ESSAYS_DIR [OUT]
#   ESSAYS_DIR  the essays folder (one .txt per essay, as the NIAH benchmarks
#               ship them); only the held-out essays are read
#   OUT         output folder (default out/niah_alloc); rerunning resumes
# Variables: KVP_CLI (build/kvprune), KVP_MODEL (models/kvp-mini), KVP_TEXT
# (the non-essay haystack file), KVP_LENGTHS, KVP_DEPTHS (list), KVP_SAMPLES
# (per depth), KVP_METHODS, KVP_RATIOS, KVP_ALLOCS, KVP_JOBS (pred processes
# at once, one thread each: the shards of every task; default 2).
# Prints each task's table (needle eval) and the pooled summary
# (bench/niah_alloc_summary.py); the plots are OUT/pred/<task>/
# accuracy_vs_cache_ratio.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
essays=${1:?usage: bench/niah_alloc.sh ESSAYS_DIR [OUT]}
out=${2:-out/niah_alloc}
cli=${KVP_CLI:-build/kvprune}
model=${KVP_MODEL:-models/kvp-mini}
text=${KVP_TEXT:-/usr/share/common-licenses/GPL-3}
lengths=${KVP_LENGTHS:-2048,4096}
depths=${KVP_DEPTHS:-0,25,50,75,100}
samples=${KVP_SAMPLES:-5}
methods=${KVP_METHODS:-snapkv,h2o,kvcV,kvcVK}
ratios=${KVP_RATIOS:-0.01,0.02,0.05}
allocs=${KVP_ALLOCS:-uniform,adaptive,adaptive+pyramid}
jobs=${KVP_JOBS:-2}
# The essays kvp-mini was not trained on (models/kvp-mini/MODEL_CARD.md).
held_out="bias ecw goodtaste laundry popular submarine vb wisdom"

[ -f "$text" ] || { echo "niah_alloc: no haystack text '$text' (set KVP_TEXT)" >&2; exit 1; }
mkdir -p "$out/haystacks/essays" "$out/data"
for e in $held_out; do
  [ -f "$essays/$e.txt" ] || { echo "niah_alloc: $essays/$e.txt is missing" >&2; exit 1; }
  ln -sf "$(cd "$essays" && pwd)/$e.txt" "$out/haystacks/essays/$e.txt"
done

tasks=()
for len in ${lengths//,/ }; do
  for hay in essays gpl3; do
    src=$out/haystacks/essays
    [ "$hay" = gpl3 ] && src=$text
    task=niah_${hay}_${len}
    "$cli" needle gen -m "$model" -o "$out/data/$task.jsonl" --haystack "$src" \
      --lengths "$len" --depths "$depths" --samples "$samples" --seed 11
    tasks+=("$task")
  done
done

# Every task is split into $jobs shards run side by side (one thread each),
# so each process gets the same mix of lengths and experiments.
start=$(date +%s)
pids=()
for ((s = 0; s < jobs; s++)); do
  (
    for task in "${tasks[@]}"; do
      "$cli" needle pred -m "$model" --data "$out/data/$task.jsonl" --save-dir "$out/pred" \
        --method "full,$methods" --cache-ratio "$ratios" --alloc "$allocs" --num-recent 16 \
        --no-decode-evict --threads 1 --shard "$s/$jobs" --quiet
    done
  ) &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
[ $rc = 0 ] || { echo "niah_alloc: a pred shard failed" >&2; exit 1; }
echo "niah_alloc: predictions took $(( $(date +%s) - start )) s (load: $(cut -d' ' -f1-3 /proc/loadavg))"

"$cli" needle eval --save-dir "$out/pred"
python3 bench/niah_alloc_summary.py "$out/pred" "${tasks[@]}"
