#!/usr/bin/env bash
# The shared library exports exactly the functions kvprune.h marks KVP_API:
# nothing internal leaks, nothing public is missing.
# Usage: check_exports.sh LIBKVPRUNE_SO KVPRUNE_H
set -euo pipefail
so=$1 header=$2
api=$(grep -oE '^KVP_API [^(]*\bkvp_[a-z0-9_]+\(' "$header" | grep -oE 'kvp_[a-z0-9_]+\($' | tr -d '(' | sort -u)
exported=$(nm -D --defined-only "$so" | awk '{print $3}' | sort -u)
if [ "$api" != "$exported" ]; then
  echo "exports differ from the KVP_API functions of $header (< header only, > library only):"
  diff <(echo "$api") <(echo "$exported") || true
  exit 1
fi
echo "$(echo "$exported" | wc -l) exported symbols, all of them KVP_API functions"
