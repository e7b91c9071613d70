#!/usr/bin/env bash
# Regenerates tests/data/quant/ggml_vectors.bin with ggml itself: installs
# node-llama-cpp 3.21.1 (prebuilt libggml-base / libggml-cpu, ggml's headers
# in its git bundle) into WORK_DIR unless it is already there, builds
# tools/quant/ggml_oracle.c against it and runs it.
# usage: tools/quant/make_vectors.sh WORK_DIR
set -euo pipefail
WORK=${1:?usage: make_vectors.sh WORK_DIR}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BINS="$WORK/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
if [ ! -f "$BINS/libggml-base.so" ] || [ ! -f "$WORK/node_modules/node-llama-cpp/llama/gitRelease.bundle" ]; then
  [ -f "$WORK/package.json" ] || echo '{"private":true}' > "$WORK/package.json"
  (cd "$WORK" && npm install --no-audit --no-fund --ignore-scripts --omit=optional \
     node-llama-cpp@3.21.1 @node-llama-cpp/linux-x64@3.21.1)
fi
INC="$WORK/include"
if [ ! -f "$INC/ggml-cpu.h" ]; then
  rm -rf "$WORK/bundle.git" && mkdir -p "$INC"
  git clone -q --bare "$WORK/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$WORK/bundle.git"
  for f in include/llama.h ggml/include/ggml.h ggml/include/ggml-backend.h ggml/include/ggml-alloc.h \
           ggml/include/ggml-cpu.h ggml/include/ggml-opt.h ggml/include/gguf.h; do
    git --git-dir="$WORK/bundle.git" show "HEAD:$f" > "$INC/$(basename "$f")"
  done
fi
# The x64 build of the CPU backend is ggml's portable one; its exported
# *_generic dot products are the reference the scalar kernels must equal.
cc -O2 -I"$INC" "$ROOT/tools/quant/ggml_oracle.c" -o "$WORK/ggml_oracle" \
   -L"$BINS" -lggml-base "$BINS/libggml-cpu-x64.so" -Wl,-rpath,"$BINS" -ldl -lm
"$WORK/ggml_oracle" "$ROOT/tests/data/quant/ggml_vectors.bin"
ls -l "$ROOT/tests/data/quant/ggml_vectors.bin"
