/* Cache/attention benchmarks with synthetic q/k/v at a realistic head shape
 * (12 query heads, 4 KV heads, head dim 64; layers as given): what the
 * pruning cache itself costs, without the model's matmuls.
 *
 *   bench_cache prefill N [runs [m,..]] prefill attention of N tokens per
 *                                       method (default: a list from full to
 *                                       the full-history variants), vs full
 *   bench_cache decode N ratio [steps]  decode attention after an N-token
 *                                       prompt: cache of ratio*N vs full
 *   bench_cache layers N ratio L MB [steps [m,...]]
 *                                       decode attention of a whole model:
 *                                       L layers, and between two layers a
 *                                       sweep over MB/L MiB (the weights a
 *                                       real step streams), so that each
 *                                       layer's KV comes from memory as in
 *                                       generation; per method, one cache of
 *                                       ratio*N tokens after an N-token
 *                                       prompt (chunks of 1024); ms per step
 *                                       of attention only, median of 3, and
 *                                       of a plain read of as many K/V bytes
 *                                       (the memory floor)
 *   bench_cache paired N ratio L MB steps m,...
 *                                       as `layers`, but every cache decodes
 *                                       in the same loop: each step runs one
 *                                       step of every cache (the order turns
 *                                       each step), so load from other
 *                                       processes falls on all alike; per
 *                                       method the median ms per step, and
 *                                       for "m@alloc" the median over steps
 *                                       of its time / m's time in that step
 *   bench_cache rss N chunk budget L    chunked prefill of N tokens through
 *                                       L layers (h2o, per-kv-head): one table
 *                                       row with the peak KV bytes and RSS
 *
 * K/V storage: KV_TYPE=f32|f16|bf16 in the environment (default: the
 * library's, f16); in a method list, "method:type" sets it per entry (e.g.
 * full:f32,full:f16), so that types alternate within one run; "@adaptive",
 * "@pyramid" or "@both" after it sets the budget allocation (Ada-KV heads,
 * PyramidKV layers, both; e.g. snapkv,snapkv@adaptive).
 *
 * Threads: OMP_NUM_THREADS (or all cores). Medians of `runs` (default 3). */
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "kvprune.h"

enum { H = 12, KV = 4, D = 64 };

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (float)((rs >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* Sum of n floats (n a multiple of 64): every cache line read once. */
static float read_sum(const float *x, size_t n) {
    float a[16] = {0};
    for (size_t i = 0; i < n; i += 64)
        for (int t = 0; t < 16; t++) a[t] += x[i + t] + x[i + 16 + t] + x[i + 32 + t] + x[i + 48 + t];
    float s = 0.0f;
    for (int t = 0; t < 16; t++) s += a[t];
    return s;
}

static void fill(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = frand();
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

/* The K/V type of the environment's KV_TYPE, else the library default. */
static kvp_kv_type env_kv_type(void) {
    kvp_kv_type t = kvp_cache_default_params().kv_type;
    const char *e = getenv("KV_TYPE");
    if (e && !kvp_kv_type_parse(e, &t)) {
        fprintf(stderr, "KV_TYPE: '%s' is not f32, f16 or bf16\n", e);
        exit(2);
    }
    return t;
}

/* "method[:type]" -> a cache of `layers` layers. */
static kvp_cache *make(const char *method, int r, int h, kvp_gqa_mode mode, int layers) {
    kvp_cache_params p = kvp_cache_default_params();
    char name[64];
    snprintf(name, sizeof name, "%s", method);
    p.kv_type = env_kv_type();
    char *at = strchr(name, '@');
    if (at) {
        *at = '\0';
        const char *a = at + 1;
        if (!strcmp(a, "adaptive") || !strcmp(a, "both")) p.budget_alloc = KVP_BUDGET_ADAPTIVE;
        if (!strcmp(a, "pyramid") || !strcmp(a, "both")) p.layer_alloc = KVP_LAYER_PYRAMID;
        if (strcmp(a, "adaptive") && strcmp(a, "pyramid") && strcmp(a, "both")) {
            fprintf(stderr, "%s: '%s' is not adaptive, pyramid or both\n", method, a);
            exit(2);
        }
    }
    char *colon = strchr(name, ':');
    if (colon) {
        *colon = '\0';
        if (!kvp_kv_type_parse(colon + 1, &p.kv_type)) {
            fprintf(stderr, "%s: '%s' is not f32, f16 or bf16\n", method, colon + 1);
            exit(2);
        }
    }
    method = name;
    p.method = method;
    p.num_recent = r;
    p.num_heavy = h;
    p.gqa_mode = mode;
    kvp_cache *c = NULL;
    kvp_error err;
    if (kvp_cache_new_dims(layers, H, KV, D, 0, &p, &c, &err) != KVP_OK) {
        fprintf(stderr, "%s\n", err.message);
        exit(1);
    }
    return c;
}

static double attn_ms(const kvp_cache *c) {
    kvp_cache_stats st;
    kvp_cache_get_stats(c, &st);
    return st.attn_ms;
}

/* Runs n tokens (in chunks; 0: one block) through `layers` layers; returns
 * the milliseconds inside the cache's attention. */
static double run_prefill(kvp_cache *c, int n, int chunk, int layers, int nt) {
    if (chunk <= 0) chunk = n;
    float *q = malloc(sizeof(float) * (size_t)chunk * H * D);
    float *k = malloc(sizeof(float) * (size_t)chunk * KV * D);
    float *v = malloc(sizeof(float) * (size_t)chunk * KV * D);
    float *o = malloc(sizeof(float) * (size_t)chunk * H * D);
    kvp_error err;
    for (int s = 0; s < n; s += chunk) {
        int m = n - s < chunk ? n - s : chunk;
        fill(q, (size_t)m * H * D);
        fill(k, (size_t)m * KV * D);
        fill(v, (size_t)m * KV * D);
        if (kvp_cache_begin(c, m, n, &err) != KVP_OK) goto fail;
        for (int l = 0; l < layers; l++)
            if (kvp_cache_attend(c, l, q, k, v, o, nt, &err) != KVP_OK) goto fail;
        if (kvp_cache_end(c, &err) != KVP_OK) goto fail;
    }
    free(q);
    free(k);
    free(v);
    free(o);
    return attn_ms(c);
fail:
    fprintf(stderr, "%s\n", err.message);
    exit(1);
}

static const char *methods[] = {"full", "sink", "h2o", "tova", "snapkv", "kvcV", "kvcK",
                                "kvcVK", "kvcVK+maxpool", "h2o_fullhist", "kvcVK_fullhist"};

/* A comma-separated method list (cut in place) into list[0..32). */
static int parse_methods(char *arg, const char **list) {
    int nm = 0;
    char *save = NULL;
    for (char *t = strtok_r(arg, ",", &save); t && nm < 32; t = strtok_r(NULL, ",", &save))
        list[nm++] = t;
    return nm;
}

/* Reads every 16th float of the sweep buffer on nt threads: pushes the
 * caches' contents out, as a step's weights do. */
static volatile float sweep_sink;
static void sweep_caches(const float *sweep, size_t n, int nt) {
    if (n == 0) return;
    float acc = 0.0f;
#pragma omp parallel for num_threads(nt) reduction(+ : acc)
    for (size_t i = 0; i < n; i += 16) acc += sweep[i];
    sweep_sink += acc;
}

/* The fewest and most tokens any stream of the cache keeps. */
static void kept_range(const kvp_cache *c, int layers, int *kmin, int *kmax) {
    *kmin = 1 << 30;
    *kmax = 0;
    for (int l = 0; l < layers; l++) {
        kvp_cache_layer_stats ls;
        kvp_error lerr;
        if (kvp_cache_get_layer_stats(c, l, &ls, &lerr) != KVP_OK) continue;
        if (ls.min_kept < *kmin) *kmin = ls.min_kept;
        if (ls.max_kept > *kmax) *kmax = ls.max_kept;
    }
}

/* One decode step of q/k/v through `layers` layers, the caches swept before
 * each layer when sweep_n > 0. */
static void decode_step(kvp_cache *c, int layers, int nt, const float *sweep, size_t sweep_n,
                        const float *q, const float *k, const float *v, float *o) {
    kvp_error err;
    if (kvp_cache_begin(c, 1, 0, &err) != KVP_OK) goto fail;
    for (int l = 0; l < layers; l++) {
        sweep_caches(sweep, sweep_n, nt);
        if (kvp_cache_attend(c, l, q, k, v, o, nt, &err) != KVP_OK) goto fail;
    }
    if (kvp_cache_end(c, &err) != KVP_OK) goto fail;
    return;
fail:
    fprintf(stderr, "%s\n", err.message);
    exit(1);
}

/* Decode steps of random q/k/v (decode_step); the median over 3 batches of
 * `steps` steps of the attention ms per step. */
static double decode_ms(kvp_cache *c, int layers, int steps, int nt, const float *sweep,
                        size_t sweep_n) {
    float q[H * D], k[KV * D], v[KV * D], o[H * D];
    double per[3];
    for (int b = 0; b < 3; b++) {
        double t0 = attn_ms(c);
        for (int s = 0; s < steps; s++) {
            fill(q, H * D);
            fill(k, KV * D);
            fill(v, KV * D);
            decode_step(c, layers, nt, sweep, sweep_n, q, k, v, o);
        }
        per[b] = (attn_ms(c) - t0) / steps;
    }
    return median(per, 3);
}

int main(int argc, char **argv) {
    int nt = omp_get_max_threads();
    if (argc >= 3 && strcmp(argv[1], "prefill") == 0) {
        int n = atoi(argv[2]), runs = argc > 3 ? atoi(argv[3]) : 3;
        int r = n / 20 / 8, hv = n / 20 - r; /* a 5% cache, 1/8 of it recent */
        printf("prefill attention, %d tokens, 1 layer, %d q / %d kv heads, d %d, %d threads, "
               "budget %d+%d, median of %d\n",
               n, H, KV, D, nt, r, hv, runs);
        printf("| method | wall ms | vs full | CPU ms (all threads) | vs full |\n"
               "|---|---:|---:|---:|---:|\n");
        /* runs are interleaved across methods so that load from other
         * processes spreads evenly over them */
        const char *list[32];
        int nm = 0;
        if (argc > 4) {
            nm = parse_methods(argv[4], list);
        } else {
            for (size_t m = 0; m < sizeof methods / sizeof *methods; m++) list[nm++] = methods[m];
        }
        double t[32][16], cpu[32][16];
        if (runs > 16) runs = 16;
        for (int i = 0; i < runs; i++)
            for (int m = 0; m < nm; m++) {
                kvp_cache *c = make(list[m], r, hv, KVP_GQA_PER_QUERY_HEAD, 1);
                double c0 = cpu_ms();
                t[m][i] = run_prefill(c, n, 0, 1, nt);
                cpu[m][i] = cpu_ms() - c0;
                kvp_cache_free(c);
            }
        double full = median(t[0], runs), full_cpu = median(cpu[0], runs);
        for (int m = 0; m < nm; m++) {
            double med = median(t[m], runs), mc = median(cpu[m], runs);
            printf("| %s | %.1f | %+.1f%% | %.1f | %+.1f%% |\n", list[m], med,
                   100.0 * (med / full - 1.0), mc, 100.0 * (mc / full_cpu - 1.0));
        }
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "decode") == 0) {
        int n = atoi(argv[2]), steps = argc > 4 ? atoi(argv[4]) : 32;
        double ratio = atof(argv[3]);
        int budget = (int)(n * ratio), r = budget / 8;
        printf("decode attention after %d tokens, 1 layer, %d threads, %d steps, %s K/V\n", n, nt,
               steps, kvp_kv_type_name(env_kv_type()));
        printf("| cache | head mode | KV tokens/stream | ms/token | tokens/s | KV MiB (12 layers) |\n"
               "|---|---|---:|---:|---:|---:|\n");
        for (int mode = 0; mode < 2; mode++)
            for (int pruned = 0; pruned < 2; pruned++) {
                kvp_cache *c = make(pruned ? "kvcVK" : "full", r, budget - r, (kvp_gqa_mode)mode, 1);
                /* the prompt streams in chunks so that the pruned cache never
                 * holds more than budget + chunk */
                run_prefill(c, n, pruned ? 1024 : 0, 1, nt);
                double ms = decode_ms(c, 1, steps, nt, NULL, 0);
                kvp_cache_stats st;
                kvp_cache_get_stats(c, &st);
                printf("| %s | %s | %lld | %.3f | %.0f | %.1f |\n",
                       pruned ? "kvcVK 5%" : "full", mode ? "per-kv-head" : "per-query-head",
                       (long long)(st.n_kept_total / st.n_streams), ms, 1e3 / ms,
                       12.0 * (double)st.kv_bytes / 1048576.0);
                fflush(stdout);
                kvp_cache_free(c);
            }
        return 0;
    }
    if (argc >= 6 && strcmp(argv[1], "layers") == 0) {
        int n = atoi(argv[2]), layers = atoi(argv[4]), steps = argc > 6 ? atoi(argv[6]) : 64;
        double ratio = atof(argv[3]), mb = atof(argv[5]);
        int budget = (int)(n * ratio), r = budget / 8;
        const char *list[32];
        char dflt[] = "full,snapkv,kvcVK";
        int nm = parse_methods(argc > 7 ? argv[7] : dflt, list);
        size_t sweep_n = (size_t)(mb * 1048576.0 / sizeof(float) / (layers > 0 ? layers : 1));
        float *sweep = malloc(sizeof(float) * (sweep_n ? sweep_n : 1));
        if (!sweep || layers <= 0 || steps <= 0) return 2;
        fill(sweep, sweep_n);
        printf("decode attention after %d tokens, %d layers, %.0f MiB swept per step, %d threads, "
               "%d steps, per-kv-head, budget %d+%d\n",
               n, layers, mb, nt, steps, r, budget - r);
        printf("| method | KV tokens/stream | attention ms/step | vs first | plain read of the KV, "
               "ms/step | attention / read | kept per stream, min-max |\n"
               "|---|---:|---:|---:|---:|---:|---|\n");
        double first = 0.0;
        for (int m = 0; m < nm; m++) {
            bool full = strncmp(list[m], "full", 4) == 0 && (list[m][4] == '\0' || list[m][4] == ':');
            kvp_cache *c = make(list[m], r, budget - r, KVP_GQA_PER_KV_HEAD, layers);
            run_prefill(c, n, full ? 0 : 1024, layers, nt);
            double ms = decode_ms(c, layers, steps, nt, sweep, sweep_n);
            if (m == 0) first = ms;
            kvp_cache_stats st;
            kvp_cache_get_stats(c, &st);
            int kmin, kmax;
            kept_range(c, layers, &kmin, &kmax);
            kvp_cache_free(c);
            /* the floor: a plain read of as many K/V bytes, laid out the
             * same way (one block per stream), with the same sweeps */
            const int per_stream = (int)(st.n_kept_total / st.n_streams / layers);
            /* as many bytes as the stream holds (a multiple of 64 floats) */
            const size_t stream_floats =
                (size_t)(st.kv_bytes / (size_t)st.n_streams / (size_t)layers / sizeof(float)) / 64 * 64;
            float *kvb = malloc(sizeof(float) * stream_floats * (size_t)layers * KV);
            if (!kvb) return 2;
            fill(kvb, stream_floats * (size_t)layers * KV);
            double rd[3];
            for (int b = 0; b < 3; b++) {
                double t_read = 0.0;
                for (int s = 0; s < steps; s++)
                    for (int l = 0; l < layers; l++) {
                        sweep_caches(sweep, sweep_n, nt);
                        double t0 = now_ms();
                        float acc = 0.0f;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) reduction(+ : acc)
                        for (int q = 0; q < KV; q++)
                            acc += read_sum(kvb + ((size_t)l * KV + q) * stream_floats, stream_floats);
                        sweep_sink += acc;
                        t_read += now_ms() - t0;
                    }
                rd[b] = t_read / steps;
            }
            free(kvb);
            double floor_ms = median(rd, 3);
            printf("| %s | %d | %.3f | %.1fx | %.3f | %.2f | %d-%d |\n", list[m], per_stream, ms,
                   first / ms, floor_ms, ms / floor_ms, kmin, kmax);
            fflush(stdout);
        }
        free(sweep);
        return 0;
    }
    if (argc >= 8 && strcmp(argv[1], "paired") == 0) {
        int n = atoi(argv[2]), layers = atoi(argv[4]), steps = atoi(argv[6]);
        double ratio = atof(argv[3]), mb = atof(argv[5]);
        int budget = (int)(n * ratio), r = budget / 8;
        const char *list[32];
        int nm = parse_methods(argv[7], list);
        size_t sweep_n = (size_t)(mb * 1048576.0 / sizeof(float) / (layers > 0 ? layers : 1));
        float *sweep = malloc(sizeof(float) * (sweep_n ? sweep_n : 1));
        kvp_cache *cs[32];
        double *t = malloc(sizeof(double) * (size_t)(steps > 0 ? steps : 1) * (size_t)nm);
        double *ratios = malloc(sizeof(double) * (size_t)(steps > 0 ? steps : 1));
        if (!sweep || !t || !ratios || layers <= 0 || steps <= 0 || nm <= 0) return 2;
        fill(sweep, sweep_n);
        for (int m = 0; m < nm; m++) {
            cs[m] = make(list[m], r, budget - r, KVP_GQA_PER_KV_HEAD, layers);
            run_prefill(cs[m], n, 1024, layers, nt);
        }
        float q[H * D], k[KV * D], v[KV * D], o[H * D];
        for (int s = 0; s < steps; s++) {
            fill(q, H * D);
            fill(k, KV * D);
            fill(v, KV * D);
            for (int i = 0; i < nm; i++) {
                int m = (s + i) % nm; /* every method leads in turn */
                double t0 = attn_ms(cs[m]);
                decode_step(cs[m], layers, nt, sweep, sweep_n, q, k, v, o);
                t[(size_t)m * steps + s] = attn_ms(cs[m]) - t0;
            }
        }
        printf("decode attention after %d tokens, %d layers, %.0f MiB swept per step, %d "
               "threads, %d paired steps, per-kv-head, budget %d+%d\n",
               n, layers, mb, nt, steps, r, budget - r);
        printf("| method | kept per stream, min-max | KV bytes | attention ms/step, median | vs its "
               "uniform twin, median of per-step ratios |\n|---|---|---:|---:|---:|\n");
        for (int m = 0; m < nm; m++) {
            int kmin, kmax;
            kept_range(cs[m], layers, &kmin, &kmax);
            kvp_cache_stats st;
            kvp_cache_get_stats(cs[m], &st);
            /* median() sorts: keep the per-step order for the ratios */
            memcpy(ratios, t + (size_t)m * steps, sizeof(double) * (size_t)steps);
            double med = median(ratios, steps);
            /* the uniform twin of "x@alloc" is "x" */
            int twin = -1;
            const char *at = strchr(list[m], '@');
            for (int j = 0; at && j < nm; j++)
                if (strlen(list[j]) == (size_t)(at - list[m]) &&
                    !strncmp(list[j], list[m], (size_t)(at - list[m])))
                    twin = j;
            if (twin >= 0) {
                for (int s = 0; s < steps; s++)
                    ratios[s] = t[(size_t)m * steps + s] / t[(size_t)twin * steps + s];
                printf("| %s | %d-%d | %zu | %.3f | %.3f |\n", list[m], kmin, kmax, st.kv_bytes, med,
                       median(ratios, steps));
            } else {
                printf("| %s | %d-%d | %zu | %.3f | |\n", list[m], kmin, kmax, st.kv_bytes, med);
            }
        }
        for (int m = 0; m < nm; m++) kvp_cache_free(cs[m]);
        free(sweep);
        free(t);
        free(ratios);
        return 0;
    }
    if (argc >= 6 && strcmp(argv[1], "rss") == 0) {
        int n = atoi(argv[2]), chunk = atoi(argv[3]), budget = atoi(argv[4]);
        int layers = atoi(argv[5]);
        kvp_cache *c = make("h2o", budget / 8, budget - budget / 8, KVP_GQA_PER_KV_HEAD, layers);
        double t0 = now_ms();
        run_prefill(c, n, chunk, layers, nt);
        kvp_cache_stats st;
        kvp_cache_get_stats(c, &st);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("| %d | %d | %d | %.1f | %.1f | %.1f | %.0f |\n", n, chunk, budget,
               (double)st.kv_bytes_peak / 1048576.0, (double)st.kv_bytes_full / 1048576.0,
               (double)ru.ru_maxrss / 1024.0, now_ms() - t0);
        kvp_cache_free(c);
        return 0;
    }
    fprintf(stderr, "usage: bench_cache prefill N [runs [m,...]] | decode N ratio [steps] | layers N ratio L MB [steps [m,...]] | paired N ratio L MB steps m,... | rss N chunk budget layers\n");
    return 2;
}
