#!/usr/bin/env bash
# Tokenizer throughput (MB/s) of kvprune next to the reference JS tokenizer
# (@lenml/tokenizers), same tokenizer.json, same text chunks.
# Usage: bench/tokenizer/run.sh [BUILD_DIR] [MB]   (needs tools/tokenizer's npm packages)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
mb=${2:-4}
work=$build/bench-tokenizer
mkdir -p "$work"
cc -O2 -Iinclude -I"$build/include" bench/tokenizer/bench_tok.c "$build/libkvprune.a" \
   $(pkg-config --libs libpcre2-8 jansson libutf8proc) -fopenmp -lm -o "$work/bench_tok"
node bench/tokenizer/make_text.mjs "$work" "$mb"
for v in llama3 qwen2_5 llama2; do
  dir=tools/tokenizer/node_modules/@lenml/tokenizer-$v/models
  for t in english cjk; do
    echo "== $v, $t ($(stat -c %s "$work/$t.txt") bytes)"
    "$work/bench_tok" "$dir" "$work/$t.txt" 3
    node bench/tokenizer/bench_js.mjs "$dir" "$work/$t.txt" 2
  done
done
