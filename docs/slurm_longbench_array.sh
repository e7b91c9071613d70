#!/usr/bin/env bash
# Example: split a LongBench sweep over a Slurm job array. Array task I of N
# predicts block I of the samples of every (experiment, dataset) file and
# appends them to <file>.part-I-of-N next to it; tasks never write the same
# file and can be resubmitted freely (each resumes its part where it
# stopped). One final unsharded run merges the parts into the seed's files
# (and generates whatever a failed task left), then eval scores them.
#
#   jid=$(sbatch --parsable docs/slurm_longbench_array.sh)     # 16 tasks
#   sbatch --dependency=afterany:$jid --wrap \
#     "KVP_MERGE=1 bash docs/slurm_longbench_array.sh"          # merge + eval
#
#SBATCH --job-name=kvp-longbench
#SBATCH --array=0-15
#SBATCH --cpus-per-task=16
#SBATCH --mem=64G
#SBATCH --time=24:00:00
#SBATCH --output=logs/longbench-%A_%a.log
set -euo pipefail

MODEL=${KVP_MODEL:-models/Meta-Llama-3-8B-Instruct}
NAME=${KVP_MODEL_NAME:-Llama-3-8B-Instruct-8k}   # a key of model2maxlen.json
DATA=${KVP_DATA:-data/longbench/data}            # THUDM/LongBench's jsonl files
CONFIG=${KVP_CONFIG:-data/longbench/config}      # dataset2prompt.json, ...
SAVE=${KVP_SAVE:-out/longbench}
METHODS=${KVP_METHODS:-full,snapkv,h2o,kvcVK}
RATIOS=${KVP_RATIOS:-0.02,0.05,0.1}

args=(-m "$MODEL" --model-name "$NAME" --data-dir "$DATA" --config-dir "$CONFIG"
      --save-dir "$SAVE" --method "$METHODS" --cache-ratio "$RATIOS" --no-decode-evict
      --threads "${SLURM_CPUS_PER_TASK:-1}")

if [ "${KVP_MERGE:-0}" = 1 ]; then
  build/kvprune longbench pred "${args[@]}"
  build/kvprune longbench eval --save-dir "$SAVE" --model-name "$NAME"
else
  N=${SLURM_ARRAY_TASK_COUNT:-16}
  I=${SLURM_ARRAY_TASK_ID:?run this under sbatch --array}
  build/kvprune longbench pred "${args[@]}" --shard "$I/$N"
fi
