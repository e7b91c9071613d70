/* This CPU's peak multiply-add rate, measured: independent AVX-512 FMA
 * (f32) and VDPBF16PS (bf16 pairs into f32) chains in registers, one chain
 * set per thread. Prints GFLOP/s per core: flops over each thread's own CPU
 * time (robust on a shared machine), 2 flops per multiply-add.
 * Build: cc -O3 -march=native -fopenmp bench/fma_peak.c.
 * usage: fma_peak [THREADS] [SECONDS] */
#define _POSIX_C_SOURCE 200809L
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 12

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double run(int threads, double seconds, int bf16) {
    double rate = 0;
#pragma omp parallel num_threads(threads) reduction(+ : rate)
    {
        const double t0 = cpu_s();
        __m512 acc[CHAINS];
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c * 1e-3f);
        const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-3f);
        const __m512bh ah = _mm512_cvtne2ps_pbh(a, a), bh = _mm512_cvtne2ps_pbh(b, b);
        long iters = 0;
        while (cpu_s() - t0 < seconds) {
            /* Fully unrolled so the accumulators stay in registers. */
            if (bf16)
                for (int i = 0; i < 10000; i++) {
#pragma GCC unroll 12
                    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_dpbf16_ps(acc[c], ah, bh);
                }
            else
                for (int i = 0; i < 10000; i++) {
#pragma GCC unroll 12
                    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
                }
            iters += 10000;
        }
        float keep = 0;
        for (int c = 0; c < CHAINS; c++) keep += _mm512_reduce_add_ps(acc[c]);
        if (keep == 12345.0f) printf("%g", keep);
        rate = (double)iters * CHAINS * 16 * 2 * (bf16 ? 2 : 1) / (cpu_s() - t0) / 1e9;
    }
    return rate / threads;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    double seconds = argc > 2 ? atof(argv[2]) : 1.0;
    printf("fma_peak threads=%d: per core f32 FMA %.1f GFLOP/s, bf16 dpbf16ps %.1f GFLOP/s\n", threads,
           run(threads, seconds, 0), run(threads, seconds, 1));
    return 0;
}
