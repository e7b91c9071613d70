#!/usr/bin/env bash
# What the compute type changes: greedy ids and logits of one model on one
# prompt with --compute bf16 against --compute f32 (the reference).
# usage: bench/compute_effect.sh KVPRUNE [MODEL] [PROMPT_TOKENS] [NEW_TOKENS] [THREADS]
# The prompt is ids 10, 11, ... cycled below the vocabulary size (a model
# with a tokenizer also takes --prompt-file through PROMPT_FILE=...).
set -euo pipefail
KVP=${1:?kvprune binary}
MODEL=${2:-models/kvp-mini}
NP=${3:-1024}
NG=${4:-32}
TH=${5:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
V=$("$KVP" info -m "$MODEL" --json | sed 's/.*"n_vocab":\([0-9]*\).*/\1/')
if [ -n "${PROMPT_FILE:-}" ]; then
  src=(--prompt-file "$PROMPT_FILE")
else
  src=(--prompt-ids "$(seq 0 $((NP - 1)) | awk -v v="$V" '{ printf "%s%d", (NR > 1 ? "," : ""), 10 + $1 % (v - 10) }')")
fi
for c in f32 bf16; do
  "$KVP" generate -m "$MODEL" "${src[@]}" -n "$NG" --ignore-eos --json --threads "$TH" --compute "$c" \
    --dump-logits "$tmp/$c.f32" > "$tmp/$c.json"
done
/usr/bin/python3 - "$tmp" "$V" <<'PY'
import json, sys
import numpy as np
d, V = sys.argv[1], int(sys.argv[2])
j = {c: json.load(open(f"{d}/{c}.json")) for c in ("f32", "bf16")}
lg = {c: np.fromfile(f"{d}/{c}.f32", dtype=np.float32).reshape(-1, V) for c in ("f32", "bf16")}
a, b = j["f32"]["ids"], j["bf16"]["ids"]
same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), len(a))
print(f"prompt {len(j['f32']['prompt_ids'])} tokens, {len(a)} generated")
print(f"greedy ids: {'identical' if a == b else f'first {same} of {len(a)} identical'}")
# Step 0 is the prefill's logits; later steps follow each run's own ids.
d0 = np.abs(lg["bf16"][0] - lg["f32"][0])
scale = np.abs(lg["f32"][0]).max()
print(f"prefill logits, bf16 vs f32: max |diff| {d0.max():.4g} (largest |logit| {scale:.4g}), "
      f"mean |diff| {d0.mean():.4g}")
n = min(same + 1, len(lg["f32"]), len(lg["bf16"]))
dall = np.abs(lg["bf16"][:n] - lg["f32"][:n]).max()
print(f"logits over the {n} steps with the same history: max |diff| {dall:.4g}")
for c in ("f32", "bf16"):
    s = j[c]["stats"]
    print(f"{c:5s} prefill {s['prefill_ms']:.1f} ms")
PY
