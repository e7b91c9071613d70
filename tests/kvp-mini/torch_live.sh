#!/usr/bin/env bash
# Recomputes the golden with torch (when installed) and checks the engine
# against it; exit 77 (skipped) without torch.
set -euo pipefail
bin=$1; work=$2
py=/usr/bin/python3
if ! [ -x "$py" ] || ! "$py" -c "import torch, numpy, sentencepiece" 2>/dev/null; then
  echo "SKIP: torch/numpy/sentencepiece not installed for $py"; exit 77
fi
"$py" tools/train/golden.py --model models/kvp-mini --out "$work/golden_live.json" --threads 1
"$bin" models/kvp-mini "$work/golden_live.json"
"$bin" models/kvp-mini.gguf "$work/golden_live.json"
