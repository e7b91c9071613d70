#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need (idempotent).
set -euo pipefail
pkgs=(build-essential cmake pkg-config libpcre2-dev libjansson-dev libutf8proc-dev libomp-dev
      libdnnl-dev python3 python3-numpy python3-pip python3-setuptools python3-fuzzywuzzy python3-levenshtein python3-jieba librsvg2-bin)
# valgrind: scripts/valgrind.sh; --fuzz: also what scripts/fuzz.sh needs
# (clang's libFuzzer and OpenMP).
pkgs+=(valgrind)
if [ "${1:-}" = "--fuzz" ]; then pkgs+=(clang-14 libfuzzer-14-dev libomp-14-dev); fi
# kvprune serve (HTTP) and its terminal test
pkgs+=(libmicrohttpd-dev tmux)
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
