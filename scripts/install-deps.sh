#!/usr/bin/env bash
# Installs the Debian packages the build and the tests use (idempotent);
# each group says what uses it.
set -euo pipefail
# The build: gcc (its OpenMP runtime, libgomp, comes with it), CMake, and
# the libraries found through pkg-config or find_library (tokenizer regexes,
# JSON, Unicode, oneDNN's products, kvprune serve's HTTP).
pkgs=(build-essential cmake pkg-config libpcre2-dev libjansson-dev libutf8proc-dev libdnnl-dev
      libmicrohttpd-dev)
# The tests: Python oracles and the binding (numpy; pip + setuptools install
# the binding in scripts/check_install.sh), LongBench's metric references
# (fuzzywuzzy, Levenshtein), jieba's dictionary (the Chinese cut), the
# terminal test of kvprune chat (tmux), scripts/valgrind.sh.
pkgs+=(python3 python3-numpy python3-pip python3-setuptools python3-fuzzywuzzy python3-levenshtein
       python3-jieba tmux valgrind)
# --fuzz: scripts/fuzz.sh's clang, its libFuzzer and its OpenMP runtime.
if [ "${1:-}" = "--fuzz" ]; then pkgs+=(clang-14 libfuzzer-14-dev libomp-14-dev); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the test oracles only; a machine may have them from
# another source (whose nodejs bundles npm), so look for the commands.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
