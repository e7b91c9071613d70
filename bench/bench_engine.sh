#!/usr/bin/env bash
# End-to-end engine speed: prefill and decode tokens/s of `kvprune generate`
# on a random-weight model with real layer shapes.
# usage: bench/bench_engine.sh KVPRUNE [MODEL_DIR] [PROMPT_TOKENS] [NEW_TOKENS] [THREADS]
# MODEL_DIR is created with tools/fixtures/make_bench_model.py when missing.
set -euo pipefail
KVP=${1:?kvprune binary}
MODEL=${2:-$(dirname "$(mktemp -u)")/kvp-bench-model}
NP=${3:-512}
NG=${4:-32}
TH=${5:-$(nproc)}
[ -f "$MODEL/config.json" ] || /usr/bin/python3 "$(dirname "$0")/../tools/fixtures/make_bench_model.py" "$MODEL"
ids=$(seq -s, 10 $((NP + 9)))
echo "bench_engine: $KVP -m $MODEL, prompt $NP, new $NG, threads $TH, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
"$KVP" info -m "$MODEL" | sed -n '3,4p;9,10p'
out=$("$KVP" generate -m "$MODEL" --prompt-ids "$ids" -n "$NG" --ignore-eos --json --threads "$TH")
echo "$out" | sed 's/.*"stats"://' | tr -d '{}' | tr ',' '\n' | sed 's/^/  /'
pf=$(echo "$out" | sed 's/.*"prefill_ms":\([0-9.]*\).*/\1/')
awk -v n="$NP" -v ms="$pf" 'BEGIN { printf "  prefill tokens/s: %.1f\n", n * 1000 / ms }'
