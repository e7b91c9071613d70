#!/usr/bin/env bash
# Decode attention of a whole model against the size of the cache: one
# `bench_cache layers` run per cache ratio (12 layers, the weights' traffic
# swept between layers), repeated REPS times, then per method and ratio the
# median ms per step, the time per kept token and the shrink against the
# full cache, next to a plain read of as many K/V bytes (the memory floor).
# Attention in proportion to the cache means a constant time per kept
# token. Medians over the repetitions.
# usage: bench/decode_proportion.sh BENCH_CACHE [PROMPT] [RATIOS] [METHODS] [REPS] [SWEEP_MB]
# (threads: OMP_NUM_THREADS, default 2; the tables here ran with
# GOMP_SPINCOUNT=10000, what the CLI picks on an idle machine)
set -euo pipefail
BC=${1:?path of bench_cache}; N=${2:-16384}; RATIOS=${3:-0.025,0.05,0.1,0.2,0.5}
METHODS=${4:-sink,snapkv,kvcVK}; REPS=${5:-3}; MB=${6:-200}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# decode_proportion: prompt $N, ratios $RATIOS, methods $METHODS, $REPS repetitions," \
  "$MB MiB swept per step, $OMP_NUM_THREADS threads, $(nproc) cores," \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
rows() { # RATIO: the table rows of bench_cache as "ratio method tokens ms floor_ms"
  awk -F'|' -v r="$1" '/^\| [A-Za-z]/ && $3 ~ /[0-9]/ { gsub(/ /, ""); print r, $2, $3, $4, $6 }'
}
for rep in $(seq 1 "$REPS"); do
  "$BC" layers "$N" 0.05 12 "$MB" 32 full | rows 1 >>"$out"
  for r in ${RATIOS//,/ }; do
    "$BC" layers "$N" "$r" 12 "$MB" 32 "$METHODS" | rows "$r" >>"$out"
  done
done
awk '
  { key = $1 " " $2; n[key]++; t[key, n[key]] = $4; fl[key, n[key]] = $5; tok[key] = $3
    if (!(key in seen)) { seen[key] = 1; order[++k] = key } }
  function median(arr, key,   i, j, m, v, a) {
    m = n[key]; for (i = 1; i <= m; i++) a[i] = arr[key, i]
    for (i = 2; i <= m; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
  END {
    full = median(t, "1 full")
    print "| cache | method | KV tokens/stream | attention ms/step | us per kept token | shrink vs full | cache vs full | plain read ms/step | attention / read |"
    print "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= k; i++) {
      split(order[i], f, " "); m = median(t, order[i]); r = median(fl, order[i])
      printf "| %s | %s | %d | %.3f | %.3f | %.1fx | %.1fx | %.3f | %.2f |\n", (f[2] == "full" ? "full" : f[1]), f[2],
        tok[order[i]], m, 1000 * m / tok[order[i]], full / m, tok["1 full"] / tok[order[i]], r, m / r
    }
  }' "$out"
