/* The F32/F16/BF16 matrix product, written once and compiled once per
 * instruction set (matmul_scalar.c, matmul_avx2.c, matmul_avx512.c; the
 * including file defines KVMM_FN and one of KVMM_AVX512 / KVMM_AVX2).
 *
 * Every variant computes every output with the same operations in the same
 * order: 16 interleaved lanes of fused multiply-adds over k, the lanes added
 * in order, then the k tail in order. So all variants, thread counts and
 * blockings give the same bits. */
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "kernels/fp16.h"
#include "util/pool.h"

#define LANES 16

#if defined(KVMM_AVX512)
#include <immintrin.h>
/* 4x4 tiles use 16 of the 32 vector registers for accumulators. */
#define TB 4
#define RB 4
typedef __m512 vf;
static inline vf vload(const float *p) { return _mm512_loadu_ps(p); }
static inline vf vzero(void) { return _mm512_setzero_ps(); }
#define VMAC(acc, a, b) ((acc) = _mm512_fmadd_ps((a), (b), (acc)))
static inline float vsum(vf v) {
    float l[LANES], s = 0.0f;
    _mm512_storeu_ps(l, v);
    for (int i = 0; i < LANES; i++) s += l[i];
    return s;
}
static inline vf load_w16(const uint16_t *p, bool bf16) {
    const __m256i h = _mm256_loadu_si256((const __m256i *)p);
    return bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
                : _mm512_cvtph_ps(h);
}
#define HAVE_GEMV_HALF 1
#elif defined(KVMM_AVX2)
#include <immintrin.h>
/* 16 lanes in two registers; 3x2 tiles keep 12 accumulators and 4 weight
 * operands in the 16 registers. */
#define TB 3
#define RB 2
typedef struct {
    __m256 lo, hi;
} vf;
static inline vf vload(const float *p) {
    vf v = {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
    return v;
}
static inline vf vzero(void) {
    vf v = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    return v;
}
#define VMAC(acc, a, b)                                        \
    do {                                                       \
        (acc).lo = _mm256_fmadd_ps((a).lo, (b).lo, (acc).lo); \
        (acc).hi = _mm256_fmadd_ps((a).hi, (b).hi, (acc).hi); \
    } while (0)
static inline float vsum(vf v) {
    float l[LANES], s = 0.0f;
    _mm256_storeu_ps(l, v.lo);
    _mm256_storeu_ps(l + 8, v.hi);
    for (int i = 0; i < LANES; i++) s += l[i];
    return s;
}
static inline __m256 load_w8(const uint16_t *p, bool bf16) {
    const __m128i h = _mm_loadu_si128((const __m128i *)p);
    return bf16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
                : _mm256_cvtph_ps(h);
}
static inline vf load_w16(const uint16_t *p, bool bf16) {
    vf v = {load_w8(p, bf16), load_w8(p + 8, bf16)};
    return v;
}
#define HAVE_GEMV_HALF 1
#else
/* Portable: 16 lanes the compiler may vectorise; fmaf keeps the fused
 * rounding of the SIMD variants (libm uses the FMA instruction when the CPU
 * has one). */
#define TB 4
#define RB 4
typedef struct {
    float l[LANES];
} vf;
static inline vf vload(const float *p) {
    vf v;
    memcpy(v.l, p, sizeof v.l);
    return v;
}
static inline vf vzero(void) {
    vf v = {{0}};
    return v;
}
static inline float vsum(vf v) {
    float s = 0.0f;
    for (int i = 0; i < LANES; i++) s += v.l[i];
    return s;
}
#define VMAC(acc, a, b)                                                               \
    do {                                                                              \
        for (int l_ = 0; l_ < LANES; l_++) (acc).l[l_] = fmaf((a).l[l_], (b).l[l_], (acc).l[l_]); \
    } while (0)
#endif
/* A multiple of RB (2, 3 or 4); the converted rows (48 x K floats) stay in L2. */
#define ROWS_PER_TASK 48

/* The k tail, in order, fused like the lanes. */
static inline float tail(float s, const float *a, const float *b, int k0, int K) {
    for (int k = k0; k < K; k++) s = fmaf(a[k], b[k], s);
    return s;
}

/* The one definition of a dot product. */
static inline float dot(const float *a, const float *b, int K) {
    int kv = K - K % LANES;
    vf acc = vzero();
    for (int k = 0; k < kv; k += LANES) {
        vf va = vload(a + k), vb = vload(b + k);
        VMAC(acc, va, vb);
    }
    return tail(vsum(acc), a, b, kv, K);
}

void KVMM_FN(kvmm_to_f32)(float *dst, const void *src, uint32_t type, int64_t n) {
    if (type == GGML_TYPE_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
    } else if (type == GGML_TYPE_F16) {
        const uint16_t *s = src;
        int64_t i = 0;
#if defined(KVMM_AVX512) || defined(KVMM_AVX2)
        /* Exact like the portable conversion, 8 at a time. */
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
#endif
        for (; i < n; i++) dst[i] = kvk_f16_to_f32(s[i]);
    } else if (type == GGML_TYPE_BF16) {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = kvk_bf16_to_f32(s[i]);
    }
}

/* A TB x RB tile with the same per-element order as dot(). */
static void tile(float *y, const float *x, int T0, const float *const *wr, int n0, int N, int K,
                 bool accumulate) {
    int kv = K - K % LANES;
    vf acc[TB][RB];
    for (int t = 0; t < TB; t++)
        for (int r = 0; r < RB; r++) acc[t][r] = vzero();
    for (int k = 0; k < kv; k += LANES) {
        vf wv[RB];
        for (int r = 0; r < RB; r++) wv[r] = vload(wr[r] + k);
        for (int t = 0; t < TB; t++) {
            vf xv = vload(x + (size_t)(T0 + t) * K + k);
            for (int r = 0; r < RB; r++) VMAC(acc[t][r], xv, wv[r]);
        }
    }
    for (int t = 0; t < TB; t++) {
        const float *xr = x + (size_t)(T0 + t) * K;
        for (int r = 0; r < RB; r++) {
            float s = tail(vsum(acc[t][r]), xr, wr[r], kv, K);
            float *dst = &y[(size_t)(T0 + t) * N + n0 + r];
            *dst = accumulate ? *dst + s : s;
        }
    }
}

#ifdef HAVE_GEMV_HALF
/* Bytes ahead of the weight read that the F16/BF16 matrix-vector product
 * prefetches (measured on Zen 4: 1 KB +2%, 4 KB +17%, 8 KB +25%, 16 KB +10%
 * over no prefetch at one thread; rows are contiguous, so it runs on into
 * the next rows, and a prefetch past the end never faults). */
#define GEMV_PREFETCH 8192
/* One activation row (decode) against F16/BF16 rows n0..n0+nr: the weights
 * are converted in registers instead of through a scratch copy, so each
 * weight byte is read once, and one row is streamed at a time (reading
 * several rows in step ran at a third of the memory bandwidth here). Same
 * per-element order as dot(), so the results are the buffered path's bits. */
static void gemv_half(float *y, const float *x, const uint16_t *w, bool bf16, int n0, int nr,
                      int K, bool accumulate) {
    const int kv = K - K % LANES;
    for (int r = 0; r < nr; r++) {
        const uint16_t *wr = w + (size_t)(n0 + r) * K;
        vf acc = vzero();
        int k = 0;
        /* One cache line (32 weights) per step, fetched GEMV_PREFETCH bytes
         * ahead: the single FMA chain alone reached ~80% of the one-thread
         * read bandwidth, with the prefetch it reads at that bandwidth. */
        for (; k + 2 * LANES <= kv; k += 2 * LANES) {
            __builtin_prefetch((const char *)(wr + k) + GEMV_PREFETCH, 0, 3);
            VMAC(acc, vload(x + k), load_w16(wr + k, bf16));
            VMAC(acc, vload(x + k + LANES), load_w16(wr + k + LANES, bf16));
        }
        for (; k < kv; k += LANES) VMAC(acc, vload(x + k), load_w16(wr + k, bf16));
        float s = vsum(acc);
        for (int k = kv; k < K; k++) {
            const float wk = bf16 ? kvk_bf16_to_f32(wr[k]) : kvk_f16_to_f32(wr[k]);
            s = fmaf(x[k], wk, s);
        }
        float *dst = &y[n0 + r];
        *dst = accumulate ? *dst + s : s;
    }
}
#endif

/* One product split over the pool's workers: worker ith takes its share
 * of ROWS_PER_TASK-row tasks (contiguous, as OpenMP's static schedule). */
typedef struct {
    float *y;
    const float *x;
    const void *w;
    uint32_t wtype;
    int T, N, K, n_tasks;
    bool accumulate;
    atomic_int failed;
} KVMM_FN(mm_job);

#ifdef HAVE_GEMV_HALF
static void KVMM_FN(gemv_half_worker)(void *arg, int ith, int nth) {
    KVMM_FN(mm_job) *j = arg;
    int64_t lo, hi;
    kvu_pool_share(j->n_tasks, ith, nth, &lo, &hi);
    for (int task = (int)lo; task < (int)hi; task++) {
        int n0 = task * ROWS_PER_TASK;
        int nr = j->N - n0 < ROWS_PER_TASK ? j->N - n0 : ROWS_PER_TASK;
        gemv_half(j->y, j->x, j->w, j->wtype == GGML_TYPE_BF16, n0, nr, j->K, j->accumulate);
    }
}
#endif

static void KVMM_FN(mm_worker)(void *arg, int ith, int nth) {
    KVMM_FN(mm_job) *j = arg;
    float *y = j->y;
    const float *x = j->x;
    const int T = j->T, N = j->N, K = j->K;
    const bool accumulate = j->accumulate;
    const size_t esz = j->wtype == GGML_TYPE_F32 ? 4 : 2;
    float *buf = NULL;
    if (j->wtype != GGML_TYPE_F32 && !(buf = malloc((size_t)ROWS_PER_TASK * K * sizeof(float)))) {
        atomic_store(&j->failed, 1);
        return;
    }
    int64_t lo, hi;
    kvu_pool_share(j->n_tasks, ith, nth, &lo, &hi);
    for (int task = (int)lo; task < (int)hi; task++) {
        int n0 = task * ROWS_PER_TASK;
        int nr = N - n0 < ROWS_PER_TASK ? N - n0 : ROWS_PER_TASK;
        const float *rows[ROWS_PER_TASK];
        for (int r = 0; r < nr; r++) {
            const char *src = (const char *)j->w + (size_t)(n0 + r) * K * esz;
            if (j->wtype == GGML_TYPE_F32) {
                rows[r] = (const float *)src;
            } else {
                KVMM_FN(kvmm_to_f32)(buf + (size_t)r * K, src, j->wtype, K);
                rows[r] = buf + (size_t)r * K;
            }
        }
        /* Token blocks outside, row groups inside: a block of TB
         * activation rows is read from memory once per task and reused
         * from L1 by every row group (with rows outside, all of x was
         * streamed once per row group). */
        const int nr_full = nr - nr % RB;
        int t = 0;
        for (; t + TB <= T; t += TB)
            for (int r = 0; r < nr_full; r += RB) tile(y, x, t, rows + r, n0 + r, N, K, accumulate);
        for (; t < T; t++)
            for (int r = 0; r < nr_full; r++) {
                float s = dot(x + (size_t)t * K, rows[r], K);
                float *dst = &y[(size_t)t * N + n0 + r];
                *dst = accumulate ? *dst + s : s;
            }
        for (int r = nr_full; r < nr; r++)
            for (int t = 0; t < T; t++) {
                float s = dot(x + (size_t)t * K, rows[r], K);
                float *dst = &y[(size_t)t * N + n0 + r];
                *dst = accumulate ? *dst + s : s;
            }
    }
    free(buf);
}

bool KVMM_FN(kvmm_matmul)(float *y, const float *x, int T, const void *w, uint32_t wtype, int N,
                          int K, bool accumulate, kvu_pool *pool) {
    KVMM_FN(mm_job) j = {y, x, w, wtype, T, N, K, (N + ROWS_PER_TASK - 1) / ROWS_PER_TASK, accumulate, 0};
    int n_threads = kvu_pool_threads(pool);
    if (n_threads > j.n_tasks) n_threads = j.n_tasks;
    /* Below ~1M multiply-adds (well under a millisecond) waking threads
     * costs more than it saves, especially on a busy machine. */
    if ((int64_t)T * N * K < (1 << 20)) n_threads = 1;
#ifdef HAVE_GEMV_HALF
    if (T == 1 && (wtype == GGML_TYPE_F16 || wtype == GGML_TYPE_BF16)) {
        kvu_pool_run(pool, n_threads, KVMM_FN(gemv_half_worker), &j);
        return true;
    }
#endif
    kvu_pool_run(pool, n_threads, KVMM_FN(mm_worker), &j);
    return !atomic_load(&j.failed);
}
