#!/usr/bin/env bash
# valgrind memcheck over the command line's paths on the test fixtures:
# model loading (info), generate with each method family, compare, needle
# gen/pred/eval, convert and tokenize. Every run must report zero errors and
# zero leaks (definite, indirect, possible). The CLI is built without
# -march=native and run with KVP_CPU=avx2, since valgrind does not decode
# AVX-512.
#
#   bash scripts/valgrind.sh [BUILD_DIR]   (default build-valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
b=${1:-build-valgrind}
command -v valgrind >/dev/null || bash scripts/install-deps.sh
cmake -S . -B "$b" -DKVP_NATIVE=OFF -DKVP_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DBUILD_TESTING=OFF >/dev/null
cmake --build "$b" -j"$(nproc)" --target kvprune_cli >/dev/null
cli="$b/kvprune"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export KVP_CPU=avx2 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
vg=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible
    --errors-for-leak-kinds=definite,indirect,possible --track-origins=yes)
tok=tests/data/model/llama-tok-bf16
tiny=tests/data/eval/tiny-model
n=0
check() { # check EXPECTED_RC args...
  local want=$1
  shift
  local rc=0
  "${vg[@]}" --log-file="$work/vg.log" "$cli" "$@" >"$work/out" 2>"$work/err" || rc=$?
  if [ -s "$work/vg.log" ] || [ "$rc" -eq 99 ]; then
    echo "FAIL (valgrind): kvprune $*"
    cat "$work/vg.log"
    exit 1
  fi
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL (exit $rc, expected $want): kvprune $*"
    cat "$work/err"
    exit 1
  fi
  n=$((n + 1))
}
check 0 info -m "$tok"
check 0 info -m models/kvp-mini.gguf
check 0 tokenize -m tests/data/tokenizer/tiny_bpe/tokenizer.json --text "Hello <|im_start|> world"
for m in full sink h2o tova snapkv kvcVK+maxpool kvcV_p1_fullhist kvcK+tova; do
  budget=(--num-recent 4 --num-heavy 8)
  [ "$m" = full ] && budget=()
  check 0 generate -m "$tok" --prompt "The quick brown fox jumps over the lazy dog again and again" \
    -n 6 --ignore-eos -t 1 --method "$m" "${budget[@]}" --json
done
check 0 generate -m "$tok" --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12 -n 4 -t 1 --method snapkv \
  --num-recent 2 --cache-ratio 0.5 --prefill-chunk 5 --gqa-mode per-query-head --streaming
check 0 compare -m "$tok" --prompt "one two three four five six seven" -n 4 -t 1 \
  --methods full,h2o,kvcVK --num-recent 2 --num-heavy 3 --json
check 2 generate -m "$tok" --prompt-ids 1,2 --method h2o --num-recent 2 --cache-ratio 0
check 1 generate -m tests/data/model/no-such-model --prompt-ids 1
check 0 needle gen -m "$tiny" -o "$work/niah/niah.jsonl" --lengths 120 --depths 0,100 --samples 1 -n 4
check 0 needle pred -m "$tiny" --data "$work/niah/niah.jsonl" --save-dir "$work/pred" \
  --method full,h2o --cache-ratio 0.5 -n 4 --quiet --threads 1
check 0 needle eval --save-dir "$work/pred" --heatmap h2o-cr0.5
check 0 convert -m "$tok" -o "$work/m.gguf" --type f16
check 0 generate -m "$work/m.gguf" --prompt-ids 1,2,3 -n 2 -t 1
echo "valgrind: $n runs of the CLI, 0 errors, 0 leaks"
