#!/usr/bin/env bash
# Needle accuracy of the two cache head modes on a model that retrieves:
#   per-kv-head at ratio R          (KV memory M)
#   per-query-head at ratio R / G   (the same KV memory M; G = query heads
#                                    per KV head, one stream per query head)
#   per-query-head at ratio R       (the same token budget, G x the memory)
# Prefill-only eviction, 16 recent tokens, greedy, string match.
# usage: bench/head_mode_niah.sh KVPRUNE MODEL HAYSTACK_DIR OUT [R] [G]
# Variables: KVP_METHODS, KVP_LENGTHS, KVP_DEPTHS (count), KVP_SAMPLES.
set -euo pipefail
KVP=${1:?kvprune binary}; MODEL=${2:?model}; HAY=${3:?haystack folder}; OUT=${4:?output folder}
R=${5:-0.05}; G=${6:-4}
methods=${KVP_METHODS:-h2o,tova,snapkv,kvcV,kvcVK}
RG=$(awk -v r="$R" -v g="$G" 'BEGIN { printf "%.6g", r / g }')
mkdir -p "$OUT"
"$KVP" needle gen -m "$MODEL" -o "$OUT/niah_single.jsonl" --haystack "$HAY" \
  --lengths "${KVP_LENGTHS:-2048,4096}" --num-depths "${KVP_DEPTHS:-10}" \
  --samples "${KVP_SAMPLES:-4}" --seed 11
run() { # save-dir gqa-mode ratio
  "$KVP" needle pred -m "$MODEL" --data "$OUT/niah_single.jsonl" --save-dir "$OUT/$1" \
    --method "$methods" --cache-ratio "$3" --num-recent 16 --no-decode-evict --gqa-mode "$2" --quiet
  echo "## $1: --gqa-mode $2, cache ratio $3"
  "$KVP" needle eval --save-dir "$OUT/$1" --no-plots
}
run kv_head per-kv-head "$R"
run query_head_same_memory per-query-head "$RG"
run query_head_same_tokens per-query-head "$R"
