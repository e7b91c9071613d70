#!/usr/bin/env bash
# The programs on top of the library use its public headers only: the CLI
# (cli/) and the benchmarks (bench/) include kvprune.h, the evaluation
# library's headers (src/eval/*.h, except its *_internal.h) and their own
# headers, never the core's internal ones; and the evaluation headers they
# include themselves use only kvprune.h. The kernel microbenchmarks below
# measure internal kernels against ggml and oneDNN, under the API by
# design, and are the listed exceptions.
# Usage: check_api_boundary.sh SOURCE_DIR
set -euo pipefail
cd "${1:?usage: check_api_boundary.sh SOURCE_DIR}"
kernel_benches="bench/bench_matmul.c bench/bench_qdot.c bench/qdot_vs_ggml.c"
# llama.cpp's own headers, for the benchmarks that run it as the peer
external='^(llama\.h|ggml[a-z-]*\.h)$'
bad=0
check() { # FILE ALLOWED_DIR: every quoted include is allowed
  local f=$1 dir=$2 inc
  while IFS= read -r inc; do
    case "$inc" in
      kvprune.h) continue ;;
      eval/*_internal.h) ;;
      eval/*.h) [ -f "src/$inc" ] && continue ;;
    esac
    [[ "$inc" =~ $external ]] && continue
    # the program's own headers, next to it or in its top folder
    if [ -f "$(dirname "$f")/$inc" ] || [ -f "$dir/$inc" ]; then continue; fi
    echo "$f includes \"$inc\": not part of the public API"
    bad=1
  done < <(grep -oE '^#include "[^"]+"' "$f" | sed -E 's/^#include "(.*)"$/\1/')
}
while IFS= read -r f; do check "$f" cli; done < <(find cli -name '*.[ch]' | sort)
while IFS= read -r f; do
  case " $kernel_benches " in *" $f "*) continue ;; esac
  check "$f" bench
done < <(find bench -name '*.[ch]' | sort)
# the evaluation headers the programs include use only the public API
for h in $(grep -rhoE '^#include "eval/[^"]+"' cli bench | sed -E 's/.*"(.*)"/\1/' | sort -u); do
  while IFS= read -r inc; do
    case "$inc" in kvprune.h | eval/*.h) ;; *) echo "src/$h includes \"$inc\""; bad=1 ;; esac
  done < <(grep -oE '^#include "[^"]+"' "src/$h" | sed -E 's/^#include "(.*)"$/\1/')
done
[ $bad -eq 0 ] && echo "cli/ and bench/ use the public headers only (kernel benchmarks excepted: $kernel_benches)"
exit $bad
