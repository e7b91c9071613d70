#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang-14, ASan + UBSan) and runs
# each for a bounded time, two at a time, on a scratch copy of its seed
# corpus. Fails when a target crashes, leaks, or allocates past the limits;
# the input that did it is kept under build-fuzz/crashes/ (add it to
# fuzz/regressions/<target>/ once fixed: CTest replays those).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 30, all)
#
# Environment: FUZZ_JOBS (targets at once, default: the core count, at most
# 2), FUZZ_ARGS (more libFuzzer flags), FUZZ_KEEP_CORPUS=1 (keep the grown
# corpora between runs instead of starting from the seeds).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf safetensors config tokenizer_json tokenize chat niah_jsonl longbench_jsonl
                                      cli_flags)
bash scripts/install-deps.sh --fuzz

b=build-fuzz
cmake -S . -B "$b" -DCMAKE_C_COMPILER=clang-14 -DKVP_FUZZ=ON -DBUILD_TESTING=OFF \
      -DKVP_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
cmake --build "$b" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null

jobs=${FUZZ_JOBS:-$(nproc)}
[ "$jobs" -le 2 ] || jobs=2
mkdir -p "$b/crashes" "$b/logs"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# Inputs up to the size of the largest seed (tokenizer.json files are tens
# of KB), at least 4 KB.
max_len() {
  local m
  m=$(find "fuzz/corpus/$1" -type f -printf '%s\n' | sort -n | tail -1)
  m=${m:-0}
  [ "$m" -ge 4096 ] || m=4096
  echo $((m + m / 4))
}

run_one() {
  local t=$1 c="$b/corpus/$1"
  if [ "${FUZZ_KEEP_CORPUS:-0}" != 1 ] || [ ! -d "$c" ]; then
    rm -rf "$c"
    mkdir -p "$c"
    cp fuzz/corpus/"$t"/* "$c"/
  fi
  # -rss_limit_mb / -malloc_limit_mb: a hostile header must not make the
  # parsers allocate more than the input justifies.
  nice "$b/fuzz/fuzz_$t" "$c" -max_total_time="$secs" -max_len="$(max_len "$t")" \
    -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=20 -close_fd_mask=3 -print_final_stats=1 \
    -artifact_prefix="$b/crashes/$t-" ${FUZZ_ARGS:-} >"$b/logs/$t.log" 2>&1
}

status=0
pids=()
names=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  names+=("$t")
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || { echo "FAIL: fuzz_${names[0]} (log: $b/logs/${names[0]}.log)"; status=1; }
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { echo "FAIL: fuzz_${names[$i]} (log: $b/logs/${names[$i]}.log)"; status=1; }
done

printf '%-16s %12s %8s %8s\n' target executions exec/s corpus
for t in "${targets[@]}"; do
  l="$b/logs/$t.log"
  ex=$(sed -n 's/^stat::number_of_executed_units: *//p' "$l" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$l" | tail -1)
  cov=$(ls "$b/corpus/$t" | wc -l)
  printf '%-16s %12s %8s %8s\n' "$t" "${ex:-?}" "${rate:-?}" "$cov"
done
if [ $status -ne 0 ]; then
  for f in "$b"/crashes/*; do [ -e "$f" ] && echo "crash input: $f"; done
  for t in "${targets[@]}"; do grep -q "ERROR\|==ERROR\|SUMMARY" "$b/logs/$t.log" && { echo "== $t"; grep -m5 -A15 "ERROR" "$b/logs/$t.log"; }; done
fi
exit $status
