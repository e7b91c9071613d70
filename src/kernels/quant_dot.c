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
#define QDOT_PREFETCH 8192

bool kvqd_matmul(float *y, const float *x, int T, const void *w, uint32_t wtype, int N, int K,
                 bool accumulate, kvu_pool *pool) {
    return kvqd_matmul_at(kvcpu_current(), y, x, T, w, wtype, N, K, accumulate, pool);
}

typedef struct {
    float *y;
    const char *w, *xq;
    kvqd_dot_fn dot;
    uint32_t wtype;
    size_t w_bytes, xq_bytes;
    int T, N, K, n_tasks;
    bool accumulate;
} dot_job;

/* Each output is one dot by one worker: the same bits for any count. */
static void dot_worker(void *arg, int ith, int nth) {
    const dot_job *j = arg;
    int64_t lo, hi;
    kvu_pool_share(j->n_tasks, ith, nth, &lo, &hi);
    const int n_begin = (int)lo * ROWS_PER_TASK, n_end = (int)hi * ROWS_PER_TASK < j->N ? (int)hi * ROWS_PER_TASK : j->N;
    for (int n = n_begin; n < n_end; n++) {
        const char *wr = j->w + (size_t)n * j->w_bytes;
        /* The row QDOT_PREFETCH bytes ahead, one touch per cache line: the
         * hardware prefetcher alone left the one-thread stream below the
         * machine's read bandwidth (as for the F16 product, matmul_isa.h).
         * A prefetch past the end of the weights never faults. */
        for (size_t b = 0; b < j->w_bytes; b += 64) __builtin_prefetch(wr + QDOT_PREFETCH + b, 0, 3);
        /* A block of tokens reuses the row from L1. */
        for (int t = 0; t < j->T; t++) {
            const void *xt = j->xq + (size_t)t * j->xq_bytes;
            const float s = j->dot ? j->dot(j->K, wr, xt) : kvq_vec_dot_scalar(j->wtype, j->K, wr, xt);
            float *dst = &j->y[(size_t)t * j->N + n];
            *dst = j->accumulate ? *dst + s : s;
        }
    }
}

bool kvqd_matmul_at(kvcpu_level level, float *y, const float *x, int T, const void *w, uint32_t wtype,
                    int N, int K, bool accumulate, kvu_pool *pool) {
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
    dot_job j = {y, w, xq, dot, wtype, w_bytes, xq_bytes, T, N, K, (N + ROWS_PER_TASK - 1) / ROWS_PER_TASK,
                 accumulate};
    int n_threads = kvu_pool_threads(pool);
    /* Below ~1M multiply-adds waking threads costs more than it saves. */
    if ((int64_t)T * N * K < (1 << 20)) n_threads = 1;
    kvu_pool_run(pool, n_threads < j.n_tasks ? n_threads : j.n_tasks, dot_worker, &j);
    free(xq);
    return true;
}
