#!/usr/bin/env bash
# kvprune against llama.cpp (node-llama-cpp 3.21.1's prebuilt libllama, the
# CPU backend it picks for this machine) on the same GGUF files, in one run:
# random-weight models with Qwen2.5-0.5B's and Llama-3.2-1B's shapes in F16,
# Q8_0 and Q4_K_M (quantized by llama.cpp's own llama_model_quantize, and by
# `kvprune convert --type` when that is available), prefill tokens/s at each
# prompt length, decode tokens/s over NEW tokens after it (our full cache and
# snapkv at 5%), peak RSS. Engines alternate within every repetition; the
# report gives medians. Model files live in WORK only.
#
# usage: bench/quant_vs_llamacpp.sh BUILD_DIR WORK
#   (BUILD_DIR: a Release build with kvprune, tests/model/kvp_bench and
#   tools/kernels/bench_qdot)
# environment (defaults): MODELS="qwen05 llama1b" TYPES="f16 q8_0 q4_k_m"
#   PROMPTS="512 4096" NEW=64 REPS=3 THREADS=2 QWEN_VOCAB=151936
#   LLAMA_VOCAB=128256 OURS_QUANT=1 (also time our own quantized files)
#   F32KV=0 (1: also our full cache with float32 K/V instead of the default f16)
#   ENGINES="llama ours snap" (a subset to time fewer: llama.cpp, our full
#   cache, snapkv at 5%)
#   BASIS=cpu (ratios and roofline from process CPU time, the robust figure
#   on a shared machine; wall: from wall time and the wall read bandwidth,
#   for an idle machine)
# Prints the dot kernels against ggml's (WORK/kernels.md) and the engines'
# table (WORK/results.md); raw rows in WORK/raw.tsv.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
KVP=$BUILD/kvprune
KB=$BUILD/tests/model/kvp_bench
QDOT=$BUILD/tools/kernels/bench_qdot
mkdir -p "$2"
WORK=$(cd "$2" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
MODELS=${MODELS:-qwen05 llama1b}
TYPES=${TYPES:-f16 q8_0 q4_k_m}
PROMPTS=${PROMPTS:-512 4096}
NEW=${NEW:-64}
REPS=${REPS:-3}
TH=${THREADS:-2}
OURS_QUANT=${OURS_QUANT:-1}
F32KV=${F32KV:-0}
ENGINES=${ENGINES:-llama ours snap}
BASIS=${BASIS:-cpu}
case $BASIS in cpu | wall) ;; *) echo "quant_vs_llamacpp.sh: BASIS must be cpu or wall, not '$BASIS'" >&2; exit 2 ;; esac
# Both engines run on their own thread pools (kvprune: spin up to 0.3 ms,
# then sleep; llama.cpp: spin, then sleep).

# llama.cpp: the npm package and the headers of its exact release.
# shellcheck source=../tools/llamacpp/node_llama_cpp.sh
. "$HERE/../tools/llamacpp/node_llama_cpp.sh"
llamacpp_install "$WORK"
BINS=$LLAMACPP_BINS
INC=$LLAMACPP_INC
llamacpp_cc "$HERE/llama_bench.c" "$WORK/llama_bench" -O2
LB="$WORK/llama_bench"
# The dot kernels alone against ggml's (one thread, weights in cache).
cc -O2 -I"$INC" -I"$HERE/../src" -I"$HERE/../include" -I"$BUILD/include" "$HERE/../tools/kernels/qdot_vs_ggml.c" -o "$WORK/qdot_vs_ggml" \
   "$BUILD/libkvprune.a" -fopenmp -lm -ldl $(pkg-config --libs libpcre2-8 jansson libutf8proc)
"$WORK/qdot_vs_ggml" "$BINS" | tee "$WORK/kernels.md"

# Models: a random-weight HF folder -> our F16 GGUF -> quantized files.
shape_args() {
  case $1 in
    qwen05) echo "--arch qwen2 --hidden 896 --heads 14 --kv-heads 2 --ffn 4864 --layers 24 --vocab ${QWEN_VOCAB:-151936}" ;;
    llama1b) echo "--arch llama --hidden 2048 --heads 32 --kv-heads 8 --ffn 8192 --layers 16 --vocab ${LLAMA_VOCAB:-128256}" ;;
    *) echo "unknown model $1" >&2; exit 2 ;;
  esac
}
files=()
for m in $MODELS; do
  f16="$WORK/$m-f16.gguf"
  if [ ! -f "$f16" ]; then
    # shellcheck disable=SC2046
    /usr/bin/python3 "$HERE/../tools/fixtures/make_bench_model.py" "$WORK/$m-hf" --dtype F16 $(shape_args $m) >/dev/null
    "$KVP" convert -m "$WORK/$m-hf" -o "$f16" --type f16 >/dev/null
    rm -rf "$WORK/$m-hf"
  fi
  for t in $TYPES; do
    if [ "$t" = f16 ]; then files+=("$m f16 llama.cpp $f16"); continue; fi
    q="$WORK/$m-$t-llamacpp.gguf"
    [ -f "$q" ] || "$LB" "$BINS" quantize "$f16" "$q" "$t"
    files+=("$m $t llama.cpp $q")
    if [ "$OURS_QUANT" = 1 ]; then
      q="$WORK/$m-$t-kvprune.gguf"
      if [ -f "$q" ] || "$KVP" convert -m "$f16" -o "$q" --type "$t" >/dev/null 2>"$WORK/convert.err"; then
        files+=("$m $t kvprune $q")
      else
        echo "note: kvprune convert --type $t: $(head -c 200 "$WORK/convert.err")"
      fi
    fi
  done
done

# Machine: CPU, read bandwidth (for the decode roofline), load.
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
# Read bandwidth on the basis of the ratios (per CPU second, or wall).
bw_line="streaming read per CPU second"
[ "$BASIS" = cpu ] || bw_line="streaming read"
bw=$("$QDOT" 896 4864 1 "$TH" 5 1 | sed -n "s/^$bw_line: \([0-9.]*\) GB\/s.*/\1/p")
echo "cpu: $cpu; kvprune kernels: $("$KVP" info -m "${files[0]##* }" | sed -n 's/^kernels: *//p')"
echo "read bandwidth ($TH threads): $bw GB/s; load before: $(cut -d' ' -f1-3 /proc/loadavg)"

raw="$WORK/raw.tsv"
printf 'rep\tmodel\ttype\tquantizer\tprompt\tengine\tprefill_ms\tdecode_ms\tprefill_cpu_ms\tdecode_cpu_ms\tdecode_tokens\tpeak_rss_kb\tload\n' > "$raw"
fields='import json,sys; s=json.load(sys.stdin); print("\t".join(str(s[k]) for k in ("prefill_ms","decode_ms","prefill_cpu_ms","decode_cpu_ms","decode_tokens","peak_rss_kb")))'
ours() { "$KB" "$@" | /usr/bin/python3 -c "$fields"; }
theirs() { "$LB" "$BINS" run "$@" | /usr/bin/python3 -c "$fields"; }
for rep in $(seq 1 "$REPS"); do
  for entry in "${files[@]}"; do
    read -r m t qz file <<< "$entry"
    for P in $PROMPTS; do
      # Alternate which engine goes first.
      order="llama ours snap"; [ $((rep % 2)) = 0 ] && order="ours snap llama"
      [ "$F32KV" = 1 ] && order="$order f32kv"
      for e in $order; do
        case " $ENGINES f32kv " in *" $e "*) ;; *) continue ;; esac
        load=$(cut -d' ' -f1 /proc/loadavg)
        case $e in
          llama) [ "$qz" = kvprune ] && continue; r=$(theirs "$file" "$P" "$NEW" "$TH"); name=llama.cpp ;;
          ours) r=$(ours "$file" "$P" "$NEW" "$TH"); name=kvprune-full ;;
          snap) r=$(ours "$file" "$P" "$NEW" "$TH" snapkv5); name=kvprune-snapkv5 ;;
          f32kv) r=$(ours "$file" "$P" "$NEW" "$TH" f32); name=kvprune-full-f32kv ;;
        esac
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$m" "$t" "$qz" "$P" "$name" "$r" "$load" | tee -a "$raw" >&2
      done
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 "$HERE/quant_vs_llamacpp_report.py" "$raw" "$WORK" "$bw" "$KVP" "$BASIS" | tee "$WORK/results.md"
