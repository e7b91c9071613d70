#include "kernels/matmul.h"

#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "kernels/fp16.h"

#if defined(__F16C__) || defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#include <immintrin.h>
/* 16 lanes; 4x4 tiles use 16 of the 32 vector registers for accumulators. */
#define LANES 16
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
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
/* 8 lanes; 4x3 tiles keep 12 accumulators + 4 operands in 16 registers. */
#define LANES 8
#define TB 4
#define RB 3
typedef __m256 vf;
static inline vf vload(const float *p) { return _mm256_loadu_ps(p); }
static inline vf vzero(void) { return _mm256_setzero_ps(); }
#define VMAC(acc, a, b) ((acc) = _mm256_fmadd_ps((a), (b), (acc)))
static inline float vsum(vf v) {
    float l[LANES], s = 0.0f;
    _mm256_storeu_ps(l, v);
    for (int i = 0; i < LANES; i++) s += l[i];
    return s;
}
#else
/* Portable: 16 interleaved partial sums the compiler may vectorise. */
#define LANES 16
#define TB 4
#define RB 4
typedef struct { float l[LANES]; } vf;
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
#define VMAC(acc, a, b)                                                              \
    do {                                                                             \
        for (int l_ = 0; l_ < LANES; l_++) (acc).l[l_] += (a).l[l_] * (b).l[l_];     \
    } while (0)
#endif
/* A multiple of RB (3 or 4); the converted rows (48 x K floats) stay in L2. */
#define ROWS_PER_TASK 48

/* The one definition of a dot product: lane partial sums over the first
 * K - K%LANES elements, lanes reduced in order, then the tail in order. */
static inline float dot(const float *a, const float *b, int K) {
    int kv = K - K % LANES;
    vf acc = vzero();
    for (int k = 0; k < kv; k += LANES) {
        vf va = vload(a + k), vb = vload(b + k);
        VMAC(acc, va, vb);
    }
    float s = vsum(acc);
    for (int k = kv; k < K; k++) s += a[k] * b[k];
    return s;
}

bool kvp_matmul_type_ok(uint32_t type) {
    return type == GGML_TYPE_F32 || type == GGML_TYPE_F16 || type == GGML_TYPE_BF16;
}

void kvp_to_f32(float *dst, const void *src, uint32_t type, int64_t n) {
    if (type == GGML_TYPE_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
    } else if (type == GGML_TYPE_F16) {
        const uint16_t *s = src;
        int64_t i = 0;
#if defined(__F16C__)
        /* Exact like the portable conversion, 8 at a time. */
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
#endif
        for (; i < n; i++) dst[i] = kvp_f16_to_f32(s[i]);
    } else if (type == GGML_TYPE_BF16) {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = kvp_bf16_to_f32(s[i]);
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
            float s = vsum(acc[t][r]);
            for (int k = kv; k < K; k++) s += xr[k] * wr[r][k];
            float *dst = &y[(size_t)(T0 + t) * N + n0 + r];
            *dst = accumulate ? *dst + s : s;
        }
    }
}

#if defined(__AVX512F__)
static inline __m512 load_w16(const uint16_t *p, bool bf16) {
    const __m256i h = _mm256_loadu_si256((const __m256i *)p);
    return bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
                : _mm512_cvtph_ps(h);
}

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
        for (int k = 0; k < kv; k += LANES) VMAC(acc, vload(x + k), load_w16(wr + k, bf16));
        float s = vsum(acc);
        for (int k = kv; k < K; k++) {
            const float wk = bf16 ? kvp_bf16_to_f32(wr[k]) : kvp_f16_to_f32(wr[k]);
            s += x[k] * wk;
        }
        float *dst = &y[n0 + r];
        *dst = accumulate ? *dst + s : s;
    }
}
#endif

bool kvp_matmul(float *y, const float *x, int T, const void *w, uint32_t wtype, int N, int K,
                bool accumulate, int n_threads) {
    int failed = 0;
    size_t esz = wtype == GGML_TYPE_F32 ? 4 : 2;
    int n_tasks = (N + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > n_tasks) n_threads = n_tasks;
    /* Below ~1M multiply-adds (well under a millisecond) waking threads
     * costs more than it saves, especially on a busy machine. */
    if ((int64_t)T * N * K < (1 << 20)) n_threads = 1;
#if defined(__AVX512F__)
    if (T == 1 && (wtype == GGML_TYPE_F16 || wtype == GGML_TYPE_BF16)) {
#pragma omp parallel for num_threads(n_threads) schedule(static)
        for (int task = 0; task < n_tasks; task++) {
            int n0 = task * ROWS_PER_TASK;
            int nr = N - n0 < ROWS_PER_TASK ? N - n0 : ROWS_PER_TASK;
            gemv_half(y, x, w, wtype == GGML_TYPE_BF16, n0, nr, K, accumulate);
        }
        return true;
    }
#endif
#pragma omp parallel num_threads(n_threads)
    {
        float *buf = NULL;
        if (wtype != GGML_TYPE_F32) {
            buf = malloc((size_t)ROWS_PER_TASK * K * sizeof(float));
            if (!buf) {
#pragma omp atomic write
                failed = 1;
            }
        }
#pragma omp for schedule(static)
        for (int task = 0; task < n_tasks; task++) {
            int n0 = task * ROWS_PER_TASK;
            int nr = N - n0 < ROWS_PER_TASK ? N - n0 : ROWS_PER_TASK;
            const float *rows[ROWS_PER_TASK];
            for (int r = 0; r < nr; r++) {
                const char *src = (const char *)w + (size_t)(n0 + r) * K * esz;
                if (wtype == GGML_TYPE_F32) {
                    rows[r] = (const float *)src;
                } else if (buf) {
                    kvp_to_f32(buf + (size_t)r * K, src, wtype, K);
                    rows[r] = buf + (size_t)r * K;
                }
            }
            if (wtype != GGML_TYPE_F32 && !buf) continue; /* reported through `failed` */
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
    return !failed;
}
