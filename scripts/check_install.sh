#!/usr/bin/env bash
# Installs a build into a temporary prefix and builds README.md's library
# example against it three ways: pkg-config (shared library), find_package
# with kvprune::kvprune (shared) and kvprune::kvprune_static; each runs on
# the bundled model and all print the same text.
# Usage: scripts/check_install.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: check_install.sh BUILD_DIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/kvprune.h include/kvprune_version.h bin/kvprune; do
  [ -e "$prefix/$f" ] || { echo "check_install: $f not installed"; exit 1; }
done
libdir=$(dirname "$(find "$prefix" -name kvprune.pc)")/..
[ -e "$libdir/libkvprune.a" ] && [ -e "$libdir/libkvprune.so" ] || { echo "check_install: libraries not installed"; exit 1; }
"$prefix/bin/kvprune" --version

# The first C block after "## The library" in README.md.
awk '/^## The library/{lib=1} lib && /^```c$/{on=1; next} on && /^```$/{exit} on' README.md > "$tmp/example.c"
[ -s "$tmp/example.c" ] || { echo "check_install: no C example in README.md"; exit 1; }

export PKG_CONFIG_PATH=$libdir/pkgconfig
cc -std=c11 -Wall -Wextra -Werror "$tmp/example.c" $(pkg-config --cflags --libs kvprune) \
   -Wl,-rpath,"$(cd "$libdir" && pwd)" -o "$tmp/example_pc"

mkdir "$tmp/cm"
cat > "$tmp/cm/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(kvprune_example C)
find_package(kvprune 0.2 REQUIRED)
add_executable(example_shared $tmp/example.c)
target_link_libraries(example_shared PRIVATE kvprune::kvprune)
add_executable(example_static $tmp/example.c)
target_link_libraries(example_static PRIVATE kvprune::kvprune_static)
CMAKE
cmake -S "$tmp/cm" -B "$tmp/cm/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/cm/build" >/dev/null

prompt="What is a key-value cache?"
"$tmp/example_pc" models/kvp-mini.gguf "$prompt" > "$tmp/out_pc"
"$tmp/cm/build/example_shared" models/kvp-mini.gguf "$prompt" > "$tmp/out_shared"
"$tmp/cm/build/example_static" models/kvp-mini.gguf "$prompt" > "$tmp/out_static"
case "$(ldd "$tmp/example_pc")" in
  *libkvprune.so*) ;;
  *) echo "check_install: pkg-config build did not link the shared library"; exit 1 ;;
esac
[ -s "$tmp/out_pc" ] && cmp "$tmp/out_pc" "$tmp/out_shared" && cmp "$tmp/out_pc" "$tmp/out_static"
echo "check_install: README example built through pkg-config and find_package; same output:"
cat "$tmp/out_pc"

# The Python binding, installed with pip (offline, the system's setuptools)
# and finding the installed library through the system loader.
if python_cmd=$(bash tests/python/find_python.sh); then
  cp -r bindings/python "$tmp/pysrc"
  "$python_cmd" -m pip install -q --no-build-isolation --no-deps --no-index \
      --target "$tmp/py" "$tmp/pysrc" 2>&1 | grep -v "Running pip as the 'root' user" || true
  (cd "$tmp" && PYTHONPATH="$tmp/py" LD_LIBRARY_PATH="$(cd "$libdir" && pwd)" "$python_cmd" -c '
import kvprune, sys
m = kvprune.Model(sys.argv[1])
r = m.generate(sys.argv[2], max_new_tokens=64, method="kvcVK", num_recent=16,
               cache_ratio=0.05, decode_evict=False)
print("%s\n(%d of %d KV bytes)" % (r.text, r.stats["kv_bytes"], r.stats["kv_bytes_full"]))
' "$OLDPWD/models/kvp-mini.gguf" "$prompt") > "$tmp/out_py"
  cmp "$tmp/out_pc" "$tmp/out_py"
  echo "check_install: pip-installed Python binding prints the same"
else
  echo "check_install: no python3 with numpy; Python binding not checked"
fi
