/* Decode-shaped quantized matrix-vector products against the machine's
 * read bandwidth: a plain streaming read of a buffer larger than the last
 * level cache, then one pass of kvqd_matmul over `layers` copies of an
 * N x K weight matrix (so the weights come from memory, as in decode) per
 * type and instruction-set level.
 * Usage: bench_qdot [K N T threads reps layers]; prints GB/s of weights. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format/gguf.h"
#include "kernels/cpu.h"
#include "kernels/quant.h"
#include "kernels/quant_dot.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Sum of 64-bit words with `threads` threads: the read bandwidth, from
 * wall time, and from process CPU time per thread (*cpu_gbs: what a core
 * reads while it runs, the figure that stays put on a shared machine). */
static double read_gbs(const uint64_t *buf, size_t n, int threads, int reps, uint64_t *sink,
                       double *cpu_gbs) {
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < reps; r++) {
        uint64_t s = 0;
        double t0 = now(), c0 = cpu_now();
#pragma omp parallel for num_threads(threads) reduction(+ : s) schedule(static)
        for (size_t i = 0; i < n; i += 8) {
            /* 8 KB ahead, as the kernels do: without it the hardware
             * prefetcher alone kept one thread at ~40% of the bandwidth
             * the kernels reach. */
            __builtin_prefetch(buf + i + 1024, 0, 3);
            s += buf[i] + buf[i + 1] + buf[i + 2] + buf[i + 3] + buf[i + 4] + buf[i + 5] + buf[i + 6] +
                 buf[i + 7];
        }
        double dt = now() - t0, dc = (cpu_now() - c0) / threads;
        *sink += s;
        if (dt < best) best = dt;
        if (dc < best_cpu) best_cpu = dc;
    }
    *cpu_gbs = n * 8.0 / best_cpu / 1e9;
    return n * 8.0 / best / 1e9;
}

int main(int argc, char **argv) {
    int K = argc > 1 ? atoi(argv[1]) : 896, N = argc > 2 ? atoi(argv[2]) : 4864;
    int T = argc > 3 ? atoi(argv[3]) : 1, nt = argc > 4 ? atoi(argv[4]) : 2;
    int reps = argc > 5 ? atoi(argv[5]) : 5, layers = argc > 6 ? atoi(argv[6]) : 24;
    uint64_t sink = 0;
    const size_t nbuf = (size_t)256 << 20 >> 3; /* 256 MiB */
    uint64_t *buf = malloc(nbuf * 8);
    for (size_t i = 0; i < nbuf; i++) buf[i] = i;
    printf("bench_qdot K=%d N=%d T=%d threads=%d reps=%d layers=%d cpu=%s\n", K, N, T, nt, reps, layers,
           kvcpu_level_name(kvcpu_level_best()));
    double cpu_n, cpu_1;
    const double wall_n = read_gbs(buf, nbuf, nt, reps, &sink, &cpu_n);
    const double wall_1 = read_gbs(buf, nbuf, 1, reps, &sink, &cpu_1);
    printf("streaming read: %.2f GB/s (%d threads), %.2f GB/s (1 thread)\n", wall_n, nt, wall_1);
    printf("streaming read per CPU second: %.2f GB/s (%d threads), %.2f GB/s (1 thread)\n", cpu_n * nt,
           nt, cpu_1);
    free(buf);
    float *x = malloc(sizeof(float) * T * K), *y = malloc(sizeof(float) * T * N),
          *row = malloc(sizeof(float) * K);
    for (int i = 0; i < T * K; i++) x[i] = (float)((i * 7919) % 101 - 50) * 0.01f;
    const uint32_t types[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q5_0, GGML_TYPE_Q4_K,
                              GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_IQ4_XS, GGML_TYPE_Q2_K,
                              GGML_TYPE_Q3_K};
    kvu_pool *pool = NULL;
    if (nt > 1 && kvu_pool_new(nt, &pool, NULL) != KVP_OK) return 1;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const uint32_t type = types[ti];
        const size_t rb = kvq_row_bytes(type, K);
        if (!rb) continue;
        const size_t mat = rb * N;
        char *w = malloc(mat * layers);
        for (int r = 0; r < N; r++) {
            for (int k = 0; k < K; k++) row[k] = (float)(((r + 3) * (k + 5)) % 97 - 48) * 0.02f;
            kvq_quantize_row_ref(type, row, w + rb * r, K);
        }
        for (int l = 1; l < layers; l++) memcpy(w + mat * l, w, mat);
        printf("%-7s %6.1f MiB:", kvq_type_traits_of(type)->name, mat * layers / 1048576.0);
        for (int lv = KVCPU_SCALAR; lv <= (int)kvcpu_level_best(); lv++) {
            double best = 1e30;
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                for (int l = 0; l < layers; l++) kvqd_matmul_at((kvcpu_level)lv, y, x, T, w + mat * l, type, N, K, false, pool);
                double dt = now() - t0;
                if (dt < best) best = dt;
            }
            printf("  %s %.2f GB/s", kvcpu_level_name((kvcpu_level)lv), mat * layers / best / 1e9);
        }
        printf("\n");
        free(w);
    }
    kvu_pool_free(pool);
    free(x), free(y), free(row);
    return (int)(sink & 0);
}
