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
# shellcheck source=../llamacpp/node_llama_cpp.sh
. "$ROOT/tools/llamacpp/node_llama_cpp.sh"
llamacpp_install "$WORK"
BINS=$LLAMACPP_BINS
INC=$LLAMACPP_INC
# The x64 build of the CPU backend is ggml's portable one; its exported
# *_generic dot products are the reference the scalar kernels must equal.
cc -O2 -I"$INC" "$ROOT/tools/quant/ggml_oracle.c" -o "$WORK/ggml_oracle" \
   -L"$BINS" -lggml-base "$BINS/libggml-cpu-x64.so" -Wl,-rpath,"$BINS" -ldl -lm
"$WORK/ggml_oracle" "$ROOT/tests/data/quant/ggml_vectors.bin"
ls -l "$ROOT/tests/data/quant/ggml_vectors.bin"
