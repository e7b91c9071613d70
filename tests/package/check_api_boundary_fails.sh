#!/usr/bin/env bash
# check_api_boundary.sh can fail: on a copy of cli/, bench/ and src/ with
# one internal header included (quoted, through "../src/", and in <>),
# from a benchmark, from the CLI and from a public evaluation header, it
# must report each and exit 1.
# Usage: check_api_boundary_fails.sh SOURCE_DIR
set -uo pipefail
SRC=$(cd "${1:?usage: check_api_boundary_fails.sh SOURCE_DIR}" && pwd)
CHECK=$SRC/tests/package/check_api_boundary.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
for target in bench/kvp_bench.c cli/cmd_info.c src/eval/include/kvprune_eval/jsonl.h; do
  for inc in '"kernels/cpu.h"' '"../src/kernels/cpu.h"' '<kernels/cpu.h>' '"eval/pystr.h"'; do
    case "$target:$inc" in src/*:\<*) continue ;; esac # <...> is checked in cli/ and bench/
    rm -rf "$T/tree" && mkdir -p "$T/tree" && cp -r "$SRC/cli" "$SRC/bench" "$SRC/src" "$T/tree/" && mkdir -p "$T/tree/tools" &&
      cp -r "$SRC/tools/llamacpp" "$T/tree/tools/"
    sed -i "1i #include $inc" "$T/tree/$target"
    out=$(bash "$CHECK" "$T/tree" 2>&1)
    rc=$?
    if [ $rc -ne 1 ] || ! grep -qF "$target includes" <<< "$out"; then
      echo "not detected: #include $inc in $target (exit $rc): $out"; fail=1
    fi
  done
done
bash "$CHECK" "$SRC" > /dev/null || { echo "the tree itself does not pass"; fail=1; }
[ $fail -eq 0 ] && echo "check_api_boundary.sh reports every planted internal include"
exit $fail
