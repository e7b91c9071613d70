# Sourced (bash) by the scripts that run llama.cpp as the outside peer, as
# the benchmarks' other engine or as the oracle of the quantized formats:
# node-llama-cpp 3.21.1's prebuilt libllama and libggml* (the CPU backends
# it picks for the machine) and the headers of its exact release, from the
# git bundle the package ships, installed once into a work folder (never
# committed).
#
#   llamacpp_install WORK   installs into WORK (when not there yet) and sets
#                           LLAMACPP_BINS (libllama, libggml*) and
#                           LLAMACPP_INC (llama.h, ggml*.h, gguf.h); returns
#                           77 when npm cannot reach the registry, 1 on any
#                           other failure, saying why on stdout
#   llamacpp_cc SRC OUT [FLAGS...]
#                           builds a program against them (rpath set;
#                           llama_common.h of this folder on the path)

LLAMACPP_PKG=node-llama-cpp@3.21.1
LLAMACPP_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) # llama_common.h
LLAMACPP_LIB=libllama.v0.4.0.so

llamacpp_install() {
  local work=$1 f
  LLAMACPP_BINS="$work/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
  LLAMACPP_INC="$work/include"
  local bundle="$work/node_modules/node-llama-cpp/llama/gitRelease.bundle"
  if [ ! -f "$LLAMACPP_BINS/$LLAMACPP_LIB" ] || [ ! -f "$bundle" ]; then
    echo "installing $LLAMACPP_PKG into $work"
    [ -f "$work/package.json" ] || echo '{"private":true}' > "$work/package.json"
    if ! (cd "$work" && timeout 600 npm install --no-audit --no-fund --ignore-scripts --omit=optional \
          "$LLAMACPP_PKG" "@node-llama-cpp/linux-x64@3.21.1" > "$work/npm.log" 2>&1); then
      if grep -qiE "ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|network" "$work/npm.log"; then
        echo "SKIP: npm registry unreachable ($LLAMACPP_PKG not installed)"; tail -3 "$work/npm.log"; return 77
      fi
      echo "npm install failed:"; tail -20 "$work/npm.log"; return 1
    fi
  fi
  [ -f "$LLAMACPP_BINS/$LLAMACPP_LIB" ] || { echo "no $LLAMACPP_LIB in $LLAMACPP_BINS"; return 1; }
  if [ ! -f "$LLAMACPP_INC/llama.h" ] || [ ! -f "$LLAMACPP_INC/gguf.h" ]; then
    rm -rf "$work/bundle.git" && mkdir -p "$LLAMACPP_INC"
    git clone -q --bare "$bundle" "$work/bundle.git" || return 1
    for f in include/llama.h ggml/include/ggml.h ggml/include/ggml-backend.h ggml/include/ggml-alloc.h \
             ggml/include/ggml-cpu.h ggml/include/ggml-opt.h ggml/include/gguf.h; do
      git --git-dir="$work/bundle.git" show "HEAD:$f" > "$LLAMACPP_INC/$(basename "$f")" || return 1
    done
  fi
}

llamacpp_cc() {
  local src=$1 out=$2
  shift 2
  cc -I"$LLAMACPP_INC" -I"$LLAMACPP_HERE" "$src" -o "$out" -L"$LLAMACPP_BINS" -l:$LLAMACPP_LIB -l:libggml.v0.4.0.so -lggml-base \
     -Wl,-rpath,"$LLAMACPP_BINS" "$@"
}
