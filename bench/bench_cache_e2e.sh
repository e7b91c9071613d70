#!/usr/bin/env bash
# End-to-end cost of the pruning cache: `kvprune compare` on a random-weight
# model (full vs pruned methods, both head modes): prefill time, decode
# tokens/s, attention time of the decode steps, KV bytes.
# usage: bench/bench_cache_e2e.sh KVPRUNE MODEL [PROMPT_TOKENS] [NEW_TOKENS] [THREADS] [METHODS]
# MODEL: e.g. a GGUF made with tools/fixtures/make_bench_model.py + kvprune convert.
set -euo pipefail
KVP=${1:?kvprune binary}
MODEL=${2:?model}
NP=${3:-4096}
NG=${4:-32}
TH=${5:-2}
METHODS=${6:-full,kvcVK}
ids=$(seq -s, 10 $((NP + 9)))
budget=$((NP / 20))
recent=$((budget / 8))
# a waiting OpenMP thread must not spin on a shared machine
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
echo "bench_cache_e2e: $MODEL, prompt $NP, new $NG, threads $TH, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), budget $recent+$((budget - recent)) (5%)"
for mode in per-query-head per-kv-head; do
  "$KVP" compare -m "$MODEL" --prompt-ids "$ids" --methods "$METHODS" \
    --num-recent "$recent" --num-heavy $((budget - recent)) -n "$NG" --ignore-eos \
    -t "$TH" --gqa-mode "$mode" | sed -n '1,/^$/p;/^method/,/^$/p' | grep -v '^$'
done
