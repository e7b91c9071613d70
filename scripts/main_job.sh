#!/usr/bin/env bash
# The main job: install the dependencies, build, and run the needle-in-a-
# haystack sweep on the bundled model (data -> predictions for 8 cache
# methods x 3 cache ratios -> scores, table and plots). Output under out/.
#
# Resumable: rerunning continues an interrupted sweep (delete $OUT to start
# afresh). Sized to finish in under 10 minutes on 2 cores; override with the
# variables below (e.g. KVP_LENGTHS=1024,2048,4096 KVP_SAMPLES=10).
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${KVP_MODEL:-models/kvp-mini}
OUT=${KVP_OUT:-out/main_job}
LENGTHS=${KVP_LENGTHS:-1024,2048}
DEPTHS=${KVP_DEPTHS:-0,25,50,75,100}
SAMPLES=${KVP_SAMPLES:-2}
METHODS=${KVP_METHODS:-full,sink,h2o,tova,snapkv,kvcV,kvcK,kvcVK}
RATIOS=${KVP_RATIOS:-0.02,0.05,0.1}
HAYSTACK=${KVP_HAYSTACK:-noise}
COMPUTE=${KVP_COMPUTE:-auto}   # arithmetic of the prefill products: auto | f32 | bf16
JOBS=$(nproc)

start=$(date +%s)
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j"$JOBS" > /dev/null
echo "built build/kvprune in $(( $(date +%s) - start )) s"

if [ ! -e "$MODEL" ]; then
  echo "main_job: the model '$MODEL' is missing (set KVP_MODEL)" >&2
  exit 1
fi

mkdir -p "$OUT/data"
build/kvprune needle gen -m "$MODEL" -o "$OUT/data/niah_single.jsonl" \
  --haystack "$HAYSTACK" --lengths "$LENGTHS" --depths "$DEPTHS" --samples "$SAMPLES" --seed 42

build/kvprune needle pred -m "$MODEL" --data "$OUT/data/niah_single.jsonl" \
  --save-dir "$OUT/pred" --method "$METHODS" --cache-ratio "$RATIOS" --num-recent 16 \
  --no-decode-evict --compute "$COMPUTE"

HEATMAP=${KVP_HEATMAP:-kvcVK-cr0.05-no_decode_evict}
if [ -d "$OUT/pred/niah_single/$HEATMAP" ]; then
  build/kvprune needle eval --save-dir "$OUT/pred" --heatmap "$HEATMAP"
else
  build/kvprune needle eval --save-dir "$OUT/pred"
fi

echo "main_job: done in $(( $(date +%s) - start )) s"
