#!/usr/bin/env bash
# llama.cpp as an outside peer (issue: engine core). Installs node-llama-cpp
# 3.21.1 (prebuilt libllama + its llama.h in a git bundle) into WORK, builds
# tests/model/llama_peer.c against it, converts fixtures with
# `kvprune convert`, and checks that llama.cpp's greedy ids equal ours and its
# logits agree within 1e-3. Exit 77 (skipped) only when npm is unreachable.
# usage: peer_llamacpp.sh KVPRUNE WORK_DIR
set -uo pipefail
KVP=$1
WORK=$2
STEPS=32
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../tools/llamacpp/node_llama_cpp.sh
. "$HERE/../../tools/llamacpp/node_llama_cpp.sh"
llamacpp_install "$WORK" || exit $?
BINS=$LLAMACPP_BINS
llamacpp_cc "$HERE/llama_peer.c" "$WORK/llama_peer" -O1 -lm || exit 1

fail=0
for fx in llama-attnbias llama-tok-bf16 llama-hd64-bf16 llama-gqa llama3-rope-tied mistral-headdim qwen2-bias-tied qwen3-qknorm; do
  dir=tests/data/model/$fx
  prompt=$(grep -A40 '"prompt_ids"' "$dir/golden.json" | tr -d ' \n' | sed 's/.*"prompt_ids":\[\([0-9,]*\)\].*/\1/')
  "$KVP" convert -m "$dir" -o "$WORK/$fx.gguf" 2>/dev/null || { echo "$fx: convert failed"; fail=1; continue; }
  out=$("$KVP" generate -m "$WORK/$fx.gguf" --prompt-ids "$prompt" -n $STEPS --ignore-eos --threads 1 \
        --kv-type f32 --json --dump-logits "$WORK/$fx.f32") || { echo "$fx: kvprune generate failed"; fail=1; continue; }
  ids=$(echo "$out" | sed 's/.*"ids":\[\([0-9,]*\)\].*/\1/')
  echo "== $fx: kvprune ids: $ids"
  if ! "$WORK/llama_peer" "$BINS" "$WORK/$fx.gguf" "$prompt" $STEPS "$WORK/$fx.f32" "$ids"; then
    echo "$fx: llama.cpp disagrees"; fail=1
  fi
done
exit $fail
