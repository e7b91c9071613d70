#!/usr/bin/env bash
# llama.cpp as the peer of the quantized formats. Installs node-llama-cpp
# 3.21.1 into WORK (as tests/model/peer_llamacpp.sh does), generates seeded random F16
# fixtures (tools/quant/make_peer_fixture.py: llama and qwen2 with rows a
# multiple of 256, and a qwen2 896 wide like Qwen2.5-0.5B), and for each:
#   - our presets (q8_0 q4_0 q6_k q4_k_m q5_k_m, and q4_k / q5_k against
#     llama.cpp's --pure): `kvprune convert` writes the same tensor types,
#     the same bytes and the same general.file_type as llama_model_quantize
#     on the same F16 GGUF;
#   - llama.cpp's presets with types convert does not write (Q2_K, Q3_K_M,
#     Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS) are run as llama.cpp wrote them;
#   - llama.cpp loads and runs the files convert writes;
#   - kvprune's greedy ids on each quantized file equal llama.cpp's, and
#     every step's logits are within TOL of llama.cpp's, relative to the
#     step's largest |logit| (tests/quant/llama_quant_peer.c).
# The prompt is 3 tokens and each step 1: both engines then quantize the
# activations of every product to 8 bits as ggml does (llama.cpp runs
# batches of 4 or more rows through repacked kernels whose Q4_K results
# differed from its own one-row ones by 0.1 of the largest logit on these
# fixtures). The logits then agree to ~1e-5 until a float-order difference
# upstream moves one activation across a rounding boundary of its 8-bit
# grid (llama.cpp's AVX quantizer also computes the Q8_0 scale as 127/amax
# and rounds ties to even, ggml's reference as 1/(amax/127) with roundf);
# after that they differ by up to ~1e-2 of the largest logit (9.1e-3 the
# largest seen over these 42 runs), hence TOL. Where llama.cpp's top two
# logits are closer than 2 TOL, a different id ends the comparison (the
# sequences part ways) without failing, once 8 steps agreed.
# Exit 77 (skipped) only when npm is unreachable.
# usage: peer_llamacpp_quant.sh KVPRUNE WORK_DIR
set -uo pipefail
KVP=$1
WORK=$2
STEPS=32
TOL=2e-2
PROMPT=1,7,42
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../tools/llamacpp/node_llama_cpp.sh
. "$ROOT/tools/llamacpp/node_llama_cpp.sh"
llamacpp_install "$WORK" || exit $?
BINS=$LLAMACPP_BINS
PEER="$WORK/llama_quant_peer"
llamacpp_cc "$ROOT/tests/quant/llama_quant_peer.c" "$PEER" -O1 -lm || exit 1

fail=0
D="$WORK/quant"
rm -rf "$D" && mkdir -p "$D"
# name: generator flags
FIXTURES=(
  "llama256:--arch llama --hidden 256 --heads 4 --kv-heads 2 --ffn 512 --layers 8 --vocab 512 --seed 1"
  "qwen256:--arch qwen2 --hidden 256 --heads 4 --kv-heads 2 --ffn 768 --layers 4 --vocab 512 --tied --seed 2"
  "qwen896:--arch qwen2 --hidden 896 --heads 14 --kv-heads 2 --ffn 1280 --layers 2 --vocab 512 --tied --seed 3"
)
# ours: kvprune --type, llama.cpp ftype, pure
OURS="q8_0:7:0 q4_0:2:0 q6_k:18:0 q4_k_m:15:0 q5_k_m:17:0 q4_k:15:1 q5_k:17:1"
# llama.cpp only: name, ftype
THEIRS="Q2_K:10 Q3_K_M:12 Q4_1:3 Q5_0:8 Q5_1:9 IQ4_NL:25 IQ4_XS:30"

# Runs both engines on $1; $2 labels the result.
compare_run() {
  local model=$1 label=$2 out ids
  out=$("$KVP" generate -m "$model" --prompt-ids "$PROMPT" -n $STEPS --ignore-eos --threads 1 --kv-type f32 \
        --json --dump-logits "$model.f32") || { echo "$label: kvprune generate failed"; fail=1; return; }
  ids=$(echo "$out" | sed 's/.*"ids":\[\([0-9,]*\)\].*/\1/')
  echo "== $label: kvprune ids: $ids"
  if ! "$PEER" run "$BINS" "$model" "$PROMPT" $STEPS "$model.f32" "$ids" $TOL; then
    echo "$label: llama.cpp disagrees"; fail=1
  fi
}

for fx in "${FIXTURES[@]}"; do
  name=${fx%%:*}
  /usr/bin/python3 "$ROOT/tools/quant/make_peer_fixture.py" "$D/$name" ${fx#*:} || { echo "$name: fixture failed"; exit 1; }
  "$KVP" convert -m "$D/$name" -o "$D/$name-f16.gguf" --type f16 2>/dev/null || { echo "$name: convert f16 failed"; fail=1; continue; }
  for o in $OURS; do
    IFS=: read -r t ft pure <<< "$o"
    L="$D/$name-$t-llama.gguf"
    K="$D/$name-$t-kvprune.gguf"
    "$PEER" quantize "$D/$name-f16.gguf" "$L" $ft $pure || { echo "$name $t: llama.cpp quantize failed"; fail=1; continue; }
    "$KVP" convert -m "$D/$name-f16.gguf" -o "$K" --type $t 2>/dev/null || { echo "$name $t: kvprune convert failed"; fail=1; continue; }
    "$PEER" dump "$L" | sort > "$L.dump"
    "$PEER" dump "$K" | sort > "$K.dump"
    if diff -q "$L.dump" "$K.dump" >/dev/null; then
      echo "== $name $t: kvprune convert = llama_model_quantize (types, bytes, file type):" \
           $(grep -v '^general.file_type' "$K.dump" | awk '{print $2}' | sort | uniq -c | awk '{printf "%s x%s ", $2, $1}')
    else
      echo "$name $t: kvprune convert differs from llama_model_quantize:"; diff "$L.dump" "$K.dump" | head -20; fail=1
    fi
    compare_run "$L" "$name $t (llama.cpp's file)"
    compare_run "$K" "$name $t (kvprune's file)"
  done
  for o in $THEIRS; do
    IFS=: read -r t ft <<< "$o"
    L="$D/$name-$t-llama.gguf"
    "$PEER" quantize "$D/$name-f16.gguf" "$L" $ft 0 || { echo "$name $t: llama.cpp quantize failed"; fail=1; continue; }
    echo "== $name $t: llama.cpp wrote" $("$PEER" dump "$L" | grep -v '^general.file_type' | awk '{print $2}' | sort | uniq -c | awk '{printf "%s x%s ", $2, $1}')
    compare_run "$L" "$name $t (llama.cpp's file)"
  done
done
rm -rf "$D"
exit $fail
