#!/usr/bin/env bash
# Acceptance measurements of the shipped model with the project's own engine:
#  1. full cache, single needle in held-out essays, greedy, at 2048 and 4096
#     tokens, depths spread over 0-100%;
#  2. methods x cache ratios with 16 recent tokens, prefill-only eviction.
# Usage: scripts/eval_kvp_mini.sh HELD_OUT_ESSAYS_DIR [OUT_DIR]
# HELD_OUT_ESSAYS_DIR holds the essays the model never saw (the model card
# lists them). Variables: KVP_SAMPLES (per depth, default 4), KVP_DEPTHS
# (count, default 10), KVP_METHODS, KVP_RATIOS, KVP_LENGTHS.
set -euo pipefail
cd "$(dirname "$0")/.."
essays=${1:?usage: scripts/eval_kvp_mini.sh HELD_OUT_ESSAYS_DIR [OUT_DIR]}
out=${2:-out/eval_kvp_mini}
model=${KVP_MODEL:-models/kvp-mini.gguf}
cli=${KVP_CLI:-build/kvprune}
lengths=${KVP_LENGTHS:-2048,4096}
methods=${KVP_METHODS:-full,sink,h2o,tova,snapkv,kvcV,kvcK,kvcVK}
ratios=${KVP_RATIOS:-0.05}
mkdir -p "$out"
"$cli" needle gen -m "$model" -o "$out/niah_single.jsonl" --haystack "$essays" \
  --lengths "$lengths" --num-depths "${KVP_DEPTHS:-10}" --samples "${KVP_SAMPLES:-4}" --seed 7
"$cli" needle pred -m "$model" --data "$out/niah_single.jsonl" --save-dir "$out/pred" \
  --method "$methods" --cache-ratio "$ratios" --num-recent 16 --no-decode-evict
"$cli" needle eval --save-dir "$out/pred" --heatmap full
