#!/usr/bin/env bash
# Example: split a needle sweep over a Slurm job array. Each array task runs
# the experiments k (in --method x --cache-ratio order) with k % N == I, so
# the tasks write disjoint pred.jsonl files in one shared save dir and can
# be resubmitted freely (pred resumes where a task stopped).
#
#   sbatch docs/slurm_needle_array.sh            # 8 tasks
#   ... when all have finished:
#   build/kvprune needle eval --save-dir out/sweep
#
#SBATCH --job-name=kvp-needle
#SBATCH --array=0-7
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=logs/needle-%A_%a.log
set -euo pipefail

N=${SLURM_ARRAY_TASK_COUNT:-8}
I=${SLURM_ARRAY_TASK_ID:?run this under sbatch --array}
MODEL=${KVP_MODEL:-models/kvp-mini}
DATA=${KVP_DATA:-out/data/niah_single.jsonl}
SAVE=${KVP_SAVE:-out/sweep}

# The data file is generated once, before submitting, e.g.:
#   build/kvprune needle gen -m models/kvp-mini -o out/data/niah_single.jsonl \
#       --lengths 1024,2048,4096 --num-depths 11 --samples 10
build/kvprune needle pred -m "$MODEL" --data "$DATA" --save-dir "$SAVE" \
  --method full,sink,h2o,tova,snapkv,kvcV,kvcK,kvcVK \
  --cache-ratio 0.01,0.02,0.03,0.05,0.1 --num-recent 16 --no-decode-evict \
  --threads "${SLURM_CPUS_PER_TASK:-1}" --shard "$I/$N"
