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
PKG=node-llama-cpp@3.21.1
BINS="$WORK/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
if [ ! -f "$BINS/libllama.v0.4.0.so" ] || [ ! -f "$WORK/node_modules/node-llama-cpp/llama/gitRelease.bundle" ]; then
  echo "installing $PKG into $WORK"
  [ -f "$WORK/package.json" ] || echo '{"private":true}' > "$WORK/package.json"
  if ! (cd "$WORK" && timeout 600 npm install --no-audit --no-fund --ignore-scripts --omit=optional \
        "$PKG" "@node-llama-cpp/linux-x64@3.21.1" >"$WORK/npm.log" 2>&1); then
    if grep -qiE "ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|network" "$WORK/npm.log"; then
      echo "SKIP: npm registry unreachable; llama.cpp peer test not run"; tail -3 "$WORK/npm.log"; exit 77
    fi
    echo "npm install failed:"; tail -20 "$WORK/npm.log"; exit 1
  fi
fi
[ -f "$BINS/libllama.v0.4.0.so" ] || { echo "no libllama in $BINS"; exit 1; }
INC="$WORK/include"
if [ ! -f "$INC/llama.h" ]; then
  rm -rf "$WORK/bundle.git" && mkdir -p "$INC"
  git clone -q --bare "$WORK/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$WORK/bundle.git" || exit 1
  for f in include/llama.h ggml/include/ggml.h ggml/include/ggml-backend.h ggml/include/ggml-alloc.h \
           ggml/include/ggml-cpu.h ggml/include/ggml-opt.h ggml/include/gguf.h; do
    git --git-dir="$WORK/bundle.git" show "HEAD:$f" > "$INC/$(basename $f)" || exit 1
  done
fi
HERE=$(cd "$(dirname "$0")" && pwd)
cc -O1 -I"$INC" "$HERE/llama_peer.c" -o "$WORK/llama_peer" -L"$BINS" -l:libllama.v0.4.0.so \
   -l:libggml.v0.4.0.so -lggml-base -Wl,-rpath,"$BINS" -lm || exit 1

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
