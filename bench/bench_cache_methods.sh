#!/usr/bin/env bash
# Prefill and decode cost of each cache method on a realistic-shape model:
# `kvprune compare` (one process per repetition, every method in it, in
# the same order), repeated REPS times; the medians are taken afterwards
# from the JSON documents (bench/median_compare.py).
# usage: bench/bench_cache_methods.sh KVPRUNE MODEL PROMPT_TOKENS METHODS [REPS] [NEW] [THREADS]
# The cache is 5% of the prompt, 1/8 of it recent tokens. KV_TYPE=f32|f16|bf16
# in the environment passes --kv-type (default: kvprune's, f16).
set -euo pipefail
KVP=${1:?kvprune binary}; MODEL=${2:?model}; NP=${3:?prompt tokens}; METHODS=${4:?methods}
REPS=${5:-3}; NG=${6:-32}; TH=${7:-2}
ids=$(seq -s, 10 $((NP + 9)))
budget=$((NP / 20)); recent=$((budget / 8))
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
echo "# bench_cache_methods: $MODEL, prompt $NP, new $NG, threads $TH, kv type ${KV_TYPE:-default}, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), budget $recent+$((budget - recent))"
for r in $(seq 1 "$REPS"); do
  echo "# repetition $r, load $(cut -d' ' -f1 /proc/loadavg)"
  "$KVP" compare -m "$MODEL" --prompt-ids "$ids" --methods "$METHODS" \
    --num-recent "$recent" --num-heavy $((budget - recent)) -n "$NG" --ignore-eos -t "$TH" ${KV_TYPE:+--kv-type "$KV_TYPE"} --json
done
