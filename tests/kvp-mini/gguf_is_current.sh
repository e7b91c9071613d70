#!/usr/bin/env bash
# models/kvp-mini.gguf must be byte-identical to a fresh conversion of the
# HF folder, so the two shipped forms cannot drift apart.
set -euo pipefail
cli=$1; work=$2
"$cli" convert -m models/kvp-mini -o "$work/kvp-mini.gguf" --type f16 >/dev/null
cmp "$work/kvp-mini.gguf" models/kvp-mini.gguf
echo "models/kvp-mini.gguf is current"
