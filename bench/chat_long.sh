#!/usr/bin/env bash
# A long conversation: TURNS turns (default 100) of `kvprune chat` (piped,
# --json, greedy, THREADS threads (1), REPLY tokens per reply (64) with --ignore-eos so every turn is
# the same size) with the full cache and with a pruned cache capped by
# --max-kv-mib, RUNS runs each, alternated; plots KV MiB and decode
# tokens/s per turn (median of the runs) with bench/chat_plot.
# usage: bench/chat_long.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
BUILD=${1:-build}
OUT=${2:-out/chat_long}
MODEL=${KVP_MODEL:-models/kvp-mini}
TURNS=${TURNS:-100}
REPLY=${REPLY:-64}
RUNS=${RUNS:-5}
THREADS=${THREADS:-1}
CAP=${CAP:-0.5}
METHOD=${METHOD:-snapkv}
mkdir -p "$OUT"
words=(river lantern copper meadow harbor violet granite falcon orchard cinder)
for t in $(seq 1 "$TURNS"); do
  w=${words[$(( t % 10 ))]}
  echo "Turn $t: what do you remember about the $w, and what is the secret number?"
done > "$OUT/turns.txt"
full=""; pruned=""
for r in $(seq 1 "$RUNS"); do
  "$BUILD/kvprune" chat -m "$MODEL" --json -n "$REPLY" --ignore-eos --prefill-chunk 64 -t "$THREADS" \
    < "$OUT/turns.txt" > "$OUT/full_$r.jsonl"
  "$BUILD/kvprune" chat -m "$MODEL" --json -n "$REPLY" --ignore-eos -t "$THREADS" --method "$METHOD" --max-kv-mib "$CAP" \
    < "$OUT/turns.txt" > "$OUT/pruned_$r.jsonl"
  full="$full${full:+,}$OUT/full_$r.jsonl"; pruned="$pruned${pruned:+,}$OUT/pruned_$r.jsonl"
done
"$BUILD/tests/chat/chat_plot" "$OUT/chat_long" full "$full" "$METHOD ${CAP} MiB" "$pruned"
