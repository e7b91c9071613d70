#!/usr/bin/env bash
# jieba segmentation: kvprune's C cut next to python3-jieba, same dictionary,
# same strings (the conformance corpus, each string cut on its own), runs
# alternated. Usage: bench/jieba/run.sh [BUILD_DIR] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
rounds=${2:-3}
# python3 may be another interpreter than the one Debian's python3-jieba is for.
py=python3; python3 -c 'import jieba' 2>/dev/null || py=/usr/bin/python3
dir=$("$py" -c 'import jieba, os; print(os.path.dirname(jieba.__file__))')
cmake --build "$build" --target bench_jieba >/dev/null
uptime
for r in $(seq "$rounds"); do
  "$build/tests/eval/bench_jieba" "$dir" tests/data/jieba/cuts.jsonl 3
  "$py" bench/jieba/bench_jieba.py tests/data/jieba/cuts.jsonl 1
done
