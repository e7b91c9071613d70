#!/usr/bin/env bash
# Prints the first python3 (the one on PATH, then the system's) that has
# numpy and pip; fails when none does.
for p in "$(command -v python3 || true)" /usr/bin/python3; do
  [ -n "$p" ] && [ -x "$p" ] && "$p" -c "import setuptools, numpy" 2>/dev/null && "$p" -m pip --version >/dev/null 2>&1 && { echo "$p"; exit 0; }
done
exit 1
