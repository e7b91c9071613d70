/* Quantized matrix products for small token counts (decode): activations
 * quantized once per call, then integer dot products row by row, the rows
 * split over threads. */
#include "kernels/quant_dot.h"

#include <stdlib.h>

#include "kernels/quant.h"

void kvq_quantize_activations(uint32_t vec_dot_type, const float *x, void *xq, int64_t n) {
    const kvqd_quantize_fn f = kvqd_quantize_for(kvcpu_current(), vec_dot_type);
    if (f)
        f(x, xq, n);
    else
        kvq_quantize_activations_scalar(vec_dot_type, x, xq, n);
}

float kvq_vec_dot(uint32_t type, int64_t n, const void *w_row, const void *xq) {
    const kvqd_dot_fn f = kvqd_dot_for(kvcpu_current(), type);
    return f ? f(n, w_row, xq) : kvq_vec_dot_scalar(type, n, w_row, xq);
}

kvqd_dot_fn kvqd_dot_for(kvcpu_level level, uint32_t type) {
    switch (level) {
    case KVCPU_AVX512VNNI: return kvqd_dot_avx512vnni(type);
    case KVCPU_AVX512: return kvqd_dot_avx512(type);
    case KVCPU_AVX2: return kvqd_dot_avx2(type);
    default: return NULL;
    }
}

kvqd_quantize_fn kvqd_quantize_for(kvcpu_level level, uint32_t vec_dot_type) {
    switch (level) {
    case KVCPU_AVX512VNNI: return kvqd_quantize_avx512vnni(vec_dot_type);
    case KVCPU_AVX512: return kvqd_quantize_avx512(vec_dot_type);
    case KVCPU_AVX2: return kvqd_quantize_avx2(vec_dot_type);
    default: return NULL;
    }
}

/* Rows per task: enough that a task streams a few KB of weights, few enough
 * that the rows of a 896-wide output still spread evenly over threads. */
#define ROWS_PER_TASK 16

bool kvqd_matmul(float *y, const float *x, int T, const void *w, uint32_t wtype, int N, int K,
                 bool accumulate, int n_threads) {
    return kvqd_matmul_at(kvcpu_current(), y, x, T, w, wtype, N, K, accumulate, n_threads);
}

bool kvqd_matmul_at(kvcpu_level level, float *y, const float *x, int T, const void *w, uint32_t wtype,
                    int N, int K, bool accumulate, int n_threads) {
    const kvq_type_traits *tr = kvq_type_traits_of(wtype);
    if (!tr || !tr->quantized) return false;
    const kvqd_dot_fn dot = kvqd_dot_for(level, wtype);
    const kvqd_quantize_fn quantize = kvqd_quantize_for(level, tr->vec_dot_type);
    const size_t xq_bytes = kvq_row_bytes(tr->vec_dot_type, K), w_bytes = kvq_row_bytes(wtype, K);
    if (!xq_bytes || !w_bytes) return false;
    char *xq = malloc(xq_bytes * (size_t)T);
    if (!xq) return false;
    for (int t = 0; t < T; t++) {
        if (quantize)
            quantize(x + (size_t)t * K, xq + (size_t)t * xq_bytes, K);
        else
            kvq_quantize_activations_scalar(tr->vec_dot_type, x + (size_t)t * K, xq + (size_t)t * xq_bytes, K);
    }

    const int n_tasks = (N + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > n_tasks) n_threads = n_tasks;
    /* Below ~1M multiply-adds waking threads costs more than it saves. */
    if ((int64_t)T * N * K < (1 << 20)) n_threads = 1;
    /* Each output is one dot by one thread: the same bits for any count. */
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int task = 0; task < n_tasks; task++) {
        const int n0 = task * ROWS_PER_TASK, n1 = n0 + ROWS_PER_TASK < N ? n0 + ROWS_PER_TASK : N;
        for (int n = n0; n < n1; n++) {
            const char *wr = (const char *)w + (size_t)n * w_bytes;
            /* A block of tokens reuses the row from L1. */
            for (int t = 0; t < T; t++) {
                const void *xt = xq + (size_t)t * xq_bytes;
                const float s = dot ? dot(K, wr, xt) : kvq_vec_dot_scalar(wtype, K, wr, xt);
                float *dst = &y[(size_t)t * N + n];
                *dst = accumulate ? *dst + s : s;
            }
        }
    }
    free(xq);
    return true;
}
