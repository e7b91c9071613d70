#!/usr/bin/env bash
# Runs every test three times: a -Werror release build, an ASan+UBSan build
# (both with oneDNN products) and a release build with the project's own
# kernels only (KVP_ONEDNN=OFF, the fallback).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)
# Tests run in parallel on small machines: idle OpenMP workers must sleep,
# not spin, or they steal the cores the other tests need.
export OMP_WAIT_POLICY=passive

cmake -S . -B build-ci -DKVP_WERROR=ON -DCMAKE_BUILD_TYPE=Release
cmake --build build-ci -j"$jobs"
ctest --test-dir build-ci --output-on-failure -j"$jobs"
# The installed package: headers, libraries, kvprune.pc, find_package(kvprune).
bash scripts/check_install.sh build-ci
# The engine's kernel and model tests again on the narrower instruction sets
# (the default run uses the best this CPU has; a forced level the CPU lacks
# falls back to the best available).
engine_tests='^(test_model|test_kernels|test_cpu|test_cli|test_cache_.*|test_attention|test_scorer|kvp_mini_.*_golden|test_quant.*)$'
for level in scalar avx2 avx512; do
  KVP_CPU=$level ctest --test-dir build-ci --output-on-failure -j"$jobs" -R "$engine_tests"
done

cmake -S . -B build-asan -DKVP_WERROR=ON -DKVP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"

cmake -S . -B build-noonednn -DKVP_WERROR=ON -DKVP_ONEDNN=OFF -DCMAKE_BUILD_TYPE=Release
cmake --build build-noonednn -j"$jobs"
ctest --test-dir build-noonednn --output-on-failure -j"$jobs"

# Reliability (docs/reliability.md): valgrind memcheck over the CLI's
# paths, then every fuzz target for a bounded time (the seed corpora and
# fuzz/regressions/ are already replayed by ctest above).
bash scripts/valgrind.sh build-valgrind
bash scripts/fuzz.sh "${KVP_FUZZ_SECONDS:-30}"
