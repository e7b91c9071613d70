#!/usr/bin/env bash
# The programs on top of the library use its public headers only: the CLI
# (cli/) and the benchmarks (bench/) include kvprune.h, the evaluation
# library's headers (src/eval/include/kvprune_eval/*.h), llama.cpp's and
# tools/llamacpp/'s (for the benchmarks that run it as the peer) and their
# own headers, never the core's internal ones; and the evaluation headers
# they include use only kvprune.h and each other. No exceptions: tools that
# time internal kernels live in tools/kernels/ with the developer tools.
# Usage: check_api_boundary.sh SOURCE_DIR
set -euo pipefail
cd "${1:?usage: check_api_boundary.sh SOURCE_DIR}"
# llama.cpp's own headers, for the benchmarks that run it as the peer
external='^(llama\.h|ggml[a-z-]*\.h)$'
bad=0
includes() { # FILE: every "quoted" include, one a line (also `# include`)
  sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/p' "$1"
}
check() { # FILE TOP_DIR: every include is allowed
  local f=$1 dir=$2 inc
  while IFS= read -r inc; do
    case "$inc" in
      *..*) ;; # a path out of the program's folder (e.g. into src/)
      kvprune.h) continue ;;
      kvprune_eval/*.h) [ -f "src/eval/include/$inc" ] && continue ;;
      *)
        [[ "$inc" =~ $external ]] && continue
        # what the programs that run llama.cpp share (tools/llamacpp/)
        [ -f "tools/llamacpp/$inc" ] && [ "${inc#*/}" = "$inc" ] && continue
        # the program's own headers, next to it or in its top folder
        if [ -f "$(dirname "$f")/$inc" ] || [ -f "$dir/$inc" ]; then continue; fi ;;
    esac
    echo "$f includes \"$inc\": not part of the public API"
    bad=1
  done < <(includes "$f")
  # <...> includes are the system's; one that names a file of src/ is not
  while IFS= read -r inc; do
    if [ -f "src/$inc" ]; then echo "$f includes <$inc>: not part of the public API"; bad=1; fi
  done < <(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*<([^>]+)>.*/\1/p' "$f")
}
while IFS= read -r f; do check "$f" cli; done < <(find cli -name '*.[ch]' | sort)
while IFS= read -r f; do check "$f" bench; done < <(find bench -name '*.[ch]' | sort)
# the evaluation headers the programs include use only the public API
for h in src/eval/include/kvprune_eval/*.h; do
  while IFS= read -r inc; do
    case "$inc" in
      kvprune.h) ;;
      kvprune_eval/*.h) [ -f "src/eval/include/$inc" ] || { echo "$h includes \"$inc\""; bad=1; } ;;
      *) echo "$h includes \"$inc\": not part of the public API"; bad=1 ;;
    esac
  done < <(includes "$h")
done
[ $bad -eq 0 ] && echo "cli/ and bench/ use the public headers only"
exit $bad
