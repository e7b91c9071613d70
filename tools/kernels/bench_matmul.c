/* Matrix-product throughput of the engine's kernels (prefill and decode
 * shapes): the project's own tile and, when built in, the oneDNN path in f32
 * and bf16 compute, for F32, F16 and BF16 weights.
 * Usage: bench_matmul [K N T threads reps]; prints the best wall time and
 * its GFLOP/s, and the best process CPU time and GFLOP/s per CPU-second (the
 * robust measure on a shared machine; with one thread, GFLOP/s per core). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "format/gguf.h"
#include "kernels/fp16.h"
#include "kernels/matmul.h"
#include "kernels/matmul_dnnl.h"

static double now(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int K = argc > 1 ? atoi(argv[1]) : 2048, N = argc > 2 ? atoi(argv[2]) : 2048;
    int T = argc > 3 ? atoi(argv[3]) : 128, nt = argc > 4 ? atoi(argv[4]) : 1;
    int reps = argc > 5 ? atoi(argv[5]) : 3;
    float *x = malloc(sizeof(float) * T * K), *w = malloc(sizeof(float) * (size_t)N * K);
    uint16_t *wf = malloc(2 * (size_t)N * K), *wb = malloc(2 * (size_t)N * K);
    float *y = malloc(sizeof(float) * T * N);
    for (size_t i = 0; i < (size_t)T * K; i++) x[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)N * K; i++) {
        w[i] = (float)(i % 13) * 0.01f;
        wf[i] = kvk_f32_to_f16(w[i]);
        wb[i] = kvk_f32_to_bf16(w[i]);
    }
    printf("bench_matmul K=%d N=%d T=%d threads=%d reps=%d\n", K, N, T, nt, reps);
    const char *tnames[3] = {"F32", "F16", "BF16"};
    const uint32_t types[3] = {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16};
    const void *wp[3] = {w, wf, wb};
    const char *enames[3] = {"tile", "onednn-f32", "onednn-bf16"};
    kvdn_ctx *ctx[3] = {NULL, kvdn_new(KVDN_COMPUTE_F32), kvdn_new(KVDN_COMPUTE_BF16)};
    kvu_pool *pool = NULL;
    if (nt > 1 && kvu_pool_new(nt, &pool, NULL) != KVP_OK) return 1;
    for (int ti = 0; ti < 3; ti++)
        for (int ei = 0; ei < 3; ei++) {
            if (ei && !ctx[ei]) continue;
            double best = 1e30, best_cpu = 1e30;
            for (int r = 0; r < reps + 1; r++) { /* the first run creates primitives */
                double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
                if (ei == 0 || kvdn_matmul(ctx[ei], y, x, T, wp[ti], types[ti], N, K, false, pool) == 0)
                    kvk_matmul(y, x, T, wp[ti], types[ti], N, K, false, pool);
                double dt = now(CLOCK_MONOTONIC) - t0, dc = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
                if (r && dt < best) best = dt;
                if (r && dc < best_cpu) best_cpu = dc;
            }
            printf("%-5s %-12s wall %8.2f ms %7.1f GFLOP/s | cpu %8.2f ms %7.1f GFLOP/s  %s\n",
                   tnames[ti], enames[ei], best * 1e3, 2.0 * T * N * K / best / 1e9, best_cpu * 1e3,
                   2.0 * T * N * K / best_cpu / 1e9, ei ? kvdn_impl_name(ctx[ei]) : "");
            fflush(stdout);
        }
    for (int ei = 0; ei < 3; ei++) kvdn_free(ctx[ei]);
    kvu_pool_free(pool);
    free(x);
    free(w);
    free(wf);
    free(wb);
    free(y);
    return 0;
}
