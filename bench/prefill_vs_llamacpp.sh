#!/usr/bin/env bash
# Prefill side by side: kvprune and llama.cpp (node-llama-cpp 3.21.1's
# libllama, CPU) on the same GGUF files of random-weight models with real
# layer shapes. Per (shape, type, prompt length) the two engines alternate
# REPS times; prints the median prefill time (= time to first token without
# loading) of each, tokens/s, the ratio and kvprune's GFLOP/s.
#
# usage: bench/prefill_vs_llamacpp.sh KVPRUNE WORK_DIR [options as variables]
#   SHAPES=qwen0.5b,llama1b  TYPES=f16,bf16  LENGTHS=512,4096  REPS=3  THREADS=2
#   LAYERS=  (layers per model; default the real count: 24 / 16)
#   COMPUTE= (kvprune --compute; default: the engine's auto)
#   BEFORE=  (a second kvprune binary, e.g. the previous commit's build: it
#             runs in the same alternation and gets its own columns)
#   PEAK_F32=472 PEAK_BF16=880 (GFLOP/s of the 2 cores' FMA peak for the %
#             column, bench/fma_peak.c: 236 f32 and 440 bf16 per core; a row
#             uses the bf16 peak when its products compute in bf16: BF16 and
#             quantized weights under auto, every type under COMPUTE=bf16)
# Per row also the share of prefill spent in attention (kvprune's attn_ms
# stat, the cache's scoring included).
# WORK_DIR receives node-llama-cpp, the harness and the models (never commit
# them). Exit 77 when npm cannot reach the registry.
set -uo pipefail
KVP=$(realpath "${1:?kvprune binary}")
WORK=${2:?work dir}
SHAPES=${SHAPES:-qwen0.5b,llama1b}
TYPES=${TYPES:-f16,bf16}
LENGTHS=${LENGTHS:-512,4096}
REPS=${REPS:-3}
THREADS=${THREADS:-2}
BEFORE=${BEFORE:-}
PEAK_F32=${PEAK_F32:-472}
PEAK_BF16=${PEAK_BF16:-880}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

# shellcheck source=../tools/llamacpp/node_llama_cpp.sh
. "$HERE/../tools/llamacpp/node_llama_cpp.sh"
llamacpp_install "$WORK" || exit $?
BINS=$LLAMACPP_BINS
llamacpp_cc "$HERE/llama_prefill.c" "$WORK/llama_prefill" -O2 || exit 1

# shape: hidden heads kv_heads ffn vocab layers
shape_args() {
  case $1 in
    qwen0.5b) echo "896 14 2 4864 151936 24" ;;
    llama1b)  echo "2048 32 8 8192 128256 16" ;;
    *) echo "unknown shape $1" >&2; return 1 ;;
  esac
}
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "prefill_vs_llamacpp: threads $THREADS, reps $REPS, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-9s %-6s %6s | %10s %10s | %9s %9s | %6s | %8s %5s | %5s" shape type tokens "kvp ms" "llama ms" \
  "kvp tok/s" "llama t/s" ratio "kvp GF/s" "%peak" "attn%"
[ -n "$BEFORE" ] && printf " | %10s %5s %6s" "before ms" "attn%" "speedup"
echo
for shape in ${SHAPES//,/ }; do
  read -r E H HK F V L < <(shape_args "$shape") || exit 1
  L=${LAYERS:-$L}
  hf="$WORK/$shape-L$L-hf"
  [ -f "$hf/config.json" ] || /usr/bin/python3 "$HERE/../tools/fixtures/make_bench_model.py" "$hf" \
    --layers "$L" --hidden "$E" --heads "$H" --kv-heads "$HK" --ffn "$F" --vocab "$V" --dtype BF16 >/dev/null || exit 1
  for type in ${TYPES//,/ }; do
    gg="$WORK/$shape-L$L-$type.gguf"
    [ -f "$gg" ] || "$KVP" convert -m "$hf" -o "$gg" --type "$type" >/dev/null || exit 1
    for n in ${LENGTHS//,/ }; do
      ids=$(seq -s, 10 $((n + 9)))
      ours=(); theirs=(); shares=(); before=(); bshares=()
      for ((r = 0; r < REPS; r++)); do
        out=$("$KVP" generate -m "$gg" --prompt-ids "$ids" -n 1 --ignore-eos --json --threads "$THREADS" \
              ${COMPUTE:+--compute "$COMPUTE"}) || exit 1
        ours+=("$(echo "$out" | sed 's/.*"prefill_ms":\([0-9.]*\).*/\1/')")
        shares+=("$(echo "$out" | sed 's/.*"prefill_ms":\([0-9.]*\).*"attn_ms":\([0-9.]*\).*/\2 \1/' | awk '{ print 100 * $1 / $2 }')")
        theirs+=("$("$WORK/llama_prefill" "$BINS" "$gg" "$n" "$THREADS" 1 | awk '{ print $2 }')")
        if [ -n "$BEFORE" ]; then
          out=$("$BEFORE" generate -m "$gg" --prompt-ids "$ids" -n 1 --ignore-eos --json --threads "$THREADS" \
                ${COMPUTE:+--compute "$COMPUTE"}) || exit 1
          before+=("$(echo "$out" | sed 's/.*"prefill_ms":\([0-9.]*\).*/\1/')")
          bshares+=("$(echo "$out" | sed 's/.*"prefill_ms":\([0-9.]*\).*"attn_ms":\([0-9.]*\).*/\2 \1/' | awk '{ print 100 * $1 / $2 }')")
        fi
      done
      mo=$(printf '%s\n' "${ours[@]}" | median)
      peak=$PEAK_BF16
      case "${COMPUTE:-auto}:$type" in f32:* | auto:f16 | auto:f32) peak=$PEAK_F32 ;; esac
      ml=$(printf '%s\n' "${theirs[@]}" | median)
      ms=$(printf '%s\n' "${shares[@]}" | median)
      hd=$((E / H))
      # multiply-adds x 2: layer matrices, causal attention (QK^T and PV), the last token's LM head
      gf=$(awk -v n="$n" -v E="$E" -v H="$H" -v HK="$HK" -v F="$F" -v V="$V" -v L="$L" -v hd="$hd" -v ms="$mo" \
        'BEGIN { w = E * H * hd + 2 * E * HK * hd + H * hd * E + 3 * E * F;
                 att = 2 * H * hd * n * (n + 1) / 2;
                 fl = 2 * (L * (n * w + att) + E * V); printf "%.1f", fl / (ms / 1000) / 1e9 }')
      printf "%-9s %-6s %6d | %10.1f %10.1f | %9.1f %9.1f | %5.2fx | %8s %5.1f | %5.1f" \
        "$shape" "$type" "$n" "$mo" "$ml" "$(awk -v n="$n" -v m="$mo" 'BEGIN{print n*1000/m}')" \
        "$(awk -v n="$n" -v m="$ml" 'BEGIN{print n*1000/m}')" "$(awk -v a="$ml" -v b="$mo" 'BEGIN{print a/b}')" \
        "$gf" "$(awk -v g="$gf" -v p="$peak" 'BEGIN{print 100*g/p}')" "$ms"
      if [ -n "$BEFORE" ]; then
        mb=$(printf '%s\n' "${before[@]}" | median)
        printf " | %10.1f %5.1f %5.2fx" "$mb" "$(printf '%s\n' "${bshares[@]}" | median)" \
          "$(awk -v a="$mb" -v b="$mo" 'BEGIN{print a/b}')"
      fi
      printf "   (kvp: %s; llama: %s%s)\n" "${ours[*]}" "${theirs[*]}" "${BEFORE:+; before: ${before[*]}}"
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
