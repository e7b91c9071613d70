/* Matrix-product throughput of the engine's kernel (prefill and decode
 * shapes). Usage: bench_matmul [K N T threads reps]; prints GFLOP/s. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "format/gguf.h"
#include "kernels/fp16.h"
#include "kernels/matmul.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int K = argc > 1 ? atoi(argv[1]) : 2048, N = argc > 2 ? atoi(argv[2]) : 2048;
    int T = argc > 3 ? atoi(argv[3]) : 128, nt = argc > 4 ? atoi(argv[4]) : 1;
    int reps = argc > 5 ? atoi(argv[5]) : 3;
    float *x = malloc(sizeof(float) * T * K), *w = malloc(sizeof(float) * (size_t)N * K);
    uint16_t *wh = malloc(2 * (size_t)N * K);
    float *y = malloc(sizeof(float) * T * N);
    for (size_t i = 0; i < (size_t)T * K; i++) x[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)N * K; i++) {
        w[i] = (float)(i % 13) * 0.01f;
        wh[i] = kvp_f32_to_bf16(w[i]);
    }
    printf("bench_matmul K=%d N=%d T=%d threads=%d reps=%d\n", K, N, T, nt, reps);
    const char *names[2] = {"F32", "BF16"};
    for (int ti = 0; ti < 2; ti++) {
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            kvp_matmul(y, x, T, ti ? (const void *)wh : w, ti ? GGML_TYPE_BF16 : GGML_TYPE_F32, N, K,
                       false, nt);
            double dt = now() - t0;
            if (dt < best) best = dt;
        }
        printf("%-5s best %.2f ms  %.2f GFLOP/s\n", names[ti], best * 1e3, 2.0 * T * N * K / best / 1e9);
    }
    free(x);
    free(w);
    free(wh);
    free(y);
    return 0;
}
