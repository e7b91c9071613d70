/* The integer dot kernels of every instruction-set level this CPU runs
 * (AVX2, AVX-512, AVX512-VNNI) against the portable reference
 * (kvq_vec_dot_scalar / kvq_quantize_activations_scalar, which
 * test_quant pins to ggml's own results), and the quantized matrix product
 * built on them.
 *
 * Exact: activation quantization (bytes) on every level; the matrix
 * product for any thread count and token blocking (bits). Within
 * tolerance: each level's dot differs from the reference only in the order
 * its float accumulation adds the blocks' exact integer sums, so
 * |dot - reference| <= 1e-5 * sum_i |w_i x_i| of the dequantized operands. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "kernels/cpu.h"
#include "kernels/fp16.h"
#include "kernels/quant.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_dot.h"
#include "test_util.h"
#include "util/pool.h"

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint64_t next(void) { return kvp_test_xorshift(&rng); }
static float frand(void) { return (float)((next() >> 11) * (1.0 / 9007199254740992.0) * 2 - 1); }

static const uint32_t weight_types[] = {GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0,  GGML_TYPE_Q5_1,
                                        GGML_TYPE_Q8_0, GGML_TYPE_Q2_K, GGML_TYPE_Q3_K,  GGML_TYPE_Q4_K,
                                        GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_IQ4_NL, GGML_TYPE_IQ4_XS};
#define N_WT (sizeof weight_types / sizeof weight_types[0])

/* Random bytes in every block field, halves replaced by finite scales of
 * either sign (mins too), so that every quant bit pattern is exercised. */
static void random_blocks(uint32_t type, void *dst, int64_t n) {
    const kvq_type_traits *t = kvq_type_traits_of(type);
    const size_t bytes = kvq_row_bytes(type, n);
    uint8_t *p = dst;
    for (size_t i = 0; i < bytes; i++) p[i] = (uint8_t)next();
    for (int64_t b = 0; b < n / t->block_elems; b++) {
        uint8_t *blk = p + (size_t)b * t->block_bytes;
        uint16_t *h1 = NULL, *h2 = NULL;
        switch (type) {
        case GGML_TYPE_Q4_0: h1 = &((block_q4_0 *)blk)->d; break;
        case GGML_TYPE_Q4_1: h1 = &((block_q4_1 *)blk)->d, h2 = &((block_q4_1 *)blk)->m; break;
        case GGML_TYPE_Q5_0: h1 = &((block_q5_0 *)blk)->d; break;
        case GGML_TYPE_Q5_1: h1 = &((block_q5_1 *)blk)->d, h2 = &((block_q5_1 *)blk)->m; break;
        case GGML_TYPE_Q8_0: h1 = &((block_q8_0 *)blk)->d; break;
        case GGML_TYPE_Q2_K: h1 = &((block_q2_K *)blk)->d, h2 = &((block_q2_K *)blk)->dmin; break;
        case GGML_TYPE_Q3_K: h1 = &((block_q3_K *)blk)->d; break;
        case GGML_TYPE_Q4_K: h1 = &((block_q4_K *)blk)->d, h2 = &((block_q4_K *)blk)->dmin; break;
        case GGML_TYPE_Q5_K: h1 = &((block_q5_K *)blk)->d, h2 = &((block_q5_K *)blk)->dmin; break;
        case GGML_TYPE_Q6_K: h1 = &((block_q6_K *)blk)->d; break;
        case GGML_TYPE_IQ4_NL: h1 = &((block_iq4_nl *)blk)->d; break;
        case GGML_TYPE_IQ4_XS: h1 = &((block_iq4_xs *)blk)->d; break;
        }
        uint16_t v = kvk_f32_to_f16(frand() * 0.01f);
        memcpy(h1, &v, 2);
        if (h2) {
            v = kvk_f32_to_f16(frand() * 0.01f);
            memcpy(h2, &v, 2);
        }
    }
}

/* Activations: random, a row with outliers, and blocks that hit rounding
 * ties exactly (amax 127 makes the Q8_0/Q8_1 scale 1: k + 0.5 are ties; for
 * Q8_K the scale is -1 with a -127 first extreme). */
static void activations(float *x, int64_t n, int kind) {
    for (int64_t i = 0; i < n; i++) x[i] = frand();
    if (kind == 1)
        for (int64_t i = 0; i < n; i += 97) x[i] *= 40.0f;
    if (kind == 2)
        for (int64_t i = 0; i < n; i++)
            x[i] = (i % 32 == 0) ? (i % 64 ? 127.0f : -127.0f) : (float)((int)(next() % 200) - 100) + 0.5f;
    if (kind == 3)
        for (int64_t i = 0; i < n; i++) x[i] = (i % 5 == 0) ? 0.0f : x[i] * 1e-3f;
    if (kind == 4) memset(x, 0, sizeof(float) * (size_t)n); /* all-zero blocks */
}

static int64_t width_for(uint32_t type, int which) {
    const int be = kvq_type_traits_of(type)->block_elems;
    static const int64_t w32[] = {896, 4864, 32}, w256[] = {256, 4864, 2048};
    return be == 32 ? w32[which] : w256[which];
}

int main(void) {
    /* Products on pools of 2 and 3 workers must give the caller-alone bits. */
    kvu_pool *pool2 = NULL, *pool3 = NULL;
    CHECK(kvu_pool_new(2, &pool2, NULL) == KVP_OK && kvu_pool_new(3, &pool3, NULL) == KVP_OK);
    const kvcpu_level best = kvcpu_level_best();
    int n_checked_levels = 0;
    for (int lv = KVCPU_AVX2; lv <= (int)best; lv++) n_checked_levels++;
    printf("levels under test: %d (best %s)\n", n_checked_levels, kvcpu_level_name(best));

    const int64_t nmax = 4864;
    float *x = malloc(sizeof(float) * nmax), *wf = malloc(sizeof(float) * nmax),
          *xf = malloc(sizeof(float) * nmax);
    uint8_t *w = malloc(nmax * 2), *xq_ref = malloc(nmax * 2), *xq = malloc(nmax * 2);

    /* Activation quantization: same bytes on every level. */
    const uint32_t vdts[3] = {GGML_TYPE_Q8_0, GGML_TYPE_Q8_1, GGML_TYPE_Q8_K};
    for (int v = 0; v < 3; v++)
        for (int kind = 0; kind < 5; kind++) {
            const int64_t n = vdts[v] == GGML_TYPE_Q8_K ? 4864 : 896;
            activations(x, n, kind);
            const size_t bytes = kvq_row_bytes(vdts[v], n);
            kvq_quantize_activations_scalar(vdts[v], x, xq_ref, n);
            for (int lv = KVCPU_AVX2; lv <= (int)best; lv++) {
                kvqd_quantize_fn f = kvqd_quantize_for((kvcpu_level)lv, vdts[v]);
                CHECK(f != NULL);
                if (!f) continue;
                memset(xq, 0xa5, bytes);
                f(x, xq, n);
                CHECK_MSG(memcmp(xq, xq_ref, bytes) == 0, "quantize %s kind %d level %s",
                          kvq_type_traits_of(vdts[v])->name, kind, kvcpu_level_name((kvcpu_level)lv));
            }
        }

    /* Dot products: every type, widths, realistic and random blocks. */
    double worst_ratio = 0;
    for (size_t ti = 0; ti < N_WT; ti++) {
        const uint32_t type = weight_types[ti];
        const uint32_t vdt = kvq_type_traits_of(type)->vec_dot_type;
        for (int wi = 0; wi < 3; wi++)
            for (int trial = 0; trial < 6; trial++) {
                const int64_t n = width_for(type, wi);
                if (trial % 2 == 0) {
                    for (int64_t i = 0; i < n; i++) wf[i] = frand() * (trial == 4 ? 3.0f : 1.0f);
                    CHECK(kvq_quantize_row_ref(type, wf, w, n));
                } else {
                    random_blocks(type, w, n);
                }
                activations(x, n, trial % 5);
                kvq_quantize_activations_scalar(vdt, x, xq, n);
                const float ref = kvq_vec_dot_scalar(type, n, w, xq);
                kvq_dequantize_rows_f32(type, w, wf, 1, n);
                kvq_dequantize_rows_f32(vdt, xq, xf, 1, n);
                double mag = 0;
                for (int64_t i = 0; i < n; i++) mag += fabs((double)wf[i] * xf[i]);
                for (int lv = KVCPU_AVX2; lv <= (int)best; lv++) {
                    kvqd_dot_fn f = kvqd_dot_for((kvcpu_level)lv, type);
                    CHECK(f != NULL);
                    if (!f) continue;
                    const float got = f(n, w, xq);
                    const double err = fabs((double)got - ref);
                    if (mag > 0 && err / mag > worst_ratio) worst_ratio = err / mag;
                    CHECK_MSG(err <= 1e-5 * mag + 1e-30, "%s n=%lld trial %d level %s: %.9g vs %.9g (sum|wx| %g)",
                              kvq_type_traits_of(type)->name, (long long)n, trial,
                              kvcpu_level_name((kvcpu_level)lv), got, ref, mag);
                }
            }
    }
    printf("worst |dot - reference| / sum|w x|: %.3g\n", worst_ratio);

    /* The matrix product: reference per element, and identical bits for
     * any thread count and token blocking. */
    const int shapes[][3] = {{1, 37, 896}, {3, 130, 896}, {1, 300, 4864}, {16, 96, 512}, {5, 64, 2048}};
    const uint32_t mm_types[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_K, GGML_TYPE_Q6_K, GGML_TYPE_Q5_0,
                                 GGML_TYPE_IQ4_XS, GGML_TYPE_Q4_1};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (size_t ti = 0; ti < sizeof mm_types / sizeof mm_types[0]; ti++) {
            const int T = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
            const uint32_t type = mm_types[ti], vdt = kvq_type_traits_of(type)->vec_dot_type;
            if (K % kvq_type_traits_of(type)->block_elems) continue;
            const size_t rb = kvq_row_bytes(type, K), xb = kvq_row_bytes(vdt, K);
            uint8_t *W = malloc(rb * N), *XQ = malloc(xb);
            float *X = malloc(sizeof(float) * T * K), *Wrow = malloc(sizeof(float) * K);
            float *y1 = malloc(sizeof(float) * T * N), *y2 = malloc(sizeof(float) * T * N),
                  *y3 = malloc(sizeof(float) * T * N);
            for (int r = 0; r < N; r++) {
                for (int k = 0; k < K; k++) Wrow[k] = frand();
                kvq_quantize_row_ref(type, Wrow, W + rb * r, K);
            }
            for (int i = 0; i < T * K; i++) X[i] = frand();
            CHECK(kvqd_matmul(y1, X, T, W, type, N, K, false, NULL));
            CHECK(kvqd_matmul(y2, X, T, W, type, N, K, false, pool3));
            CHECK_MSG(memcmp(y1, y2, sizeof(float) * T * N) == 0, "threads T=%d N=%d type %s", T, N,
                      kvq_type_traits_of(type)->name);
            for (int t = 0; t < T; t++)
                CHECK(kvqd_matmul(y3 + (size_t)t * N, X + (size_t)t * K, 1, W, type, N, K, false, pool2));
            CHECK_MSG(memcmp(y1, y3, sizeof(float) * T * N) == 0, "blocking T=%d N=%d type %s", T, N,
                      kvq_type_traits_of(type)->name);
            int bad = 0;
            for (int t = 0; t < T; t++) {
                kvq_quantize_activations_scalar(vdt, X + (size_t)t * K, XQ, K);
                for (int r = 0; r < N; r++) {
                    const float ref = kvq_vec_dot_scalar(type, K, W + rb * r, XQ);
                    /* Loose bound from the row's magnitude: |w|,|x| <= ~1. */
                    if (fabsf(y1[(size_t)t * N + r] - ref) > 1e-5f * K) bad++;
                }
            }
            CHECK_MSG(bad == 0, "%d outputs off the reference, T=%d N=%d type %s", bad, T, N,
                      kvq_type_traits_of(type)->name);
            /* accumulate adds to what is there. */
            for (int i = 0; i < T * N; i++) y2[i] = 1.0f;
            CHECK(kvqd_matmul(y2, X, T, W, type, N, K, true, pool2));
            int acc_bad = 0;
            for (int i = 0; i < T * N; i++) acc_bad += y2[i] != 1.0f + y1[i];
            CHECK_EQ_INT(acc_bad, 0);
            free(W), free(XQ), free(X), free(Wrow), free(y1), free(y2), free(y3);
        }
    free(x), free(wf), free(xf), free(w), free(xq_ref), free(xq);
    kvu_pool_free(pool2);
    kvu_pool_free(pool3);
    return kvp_test_done("test_quant_dot");
}
