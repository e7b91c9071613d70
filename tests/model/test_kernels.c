/* Kernels: half/bfloat16 conversions, the matrix product against a double
 * reference for awkward sizes, bit-identical results across thread counts
 * and blockings, and the sampler. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "generate/sampler.h"
#include "kernels/fp16.h"
#include "kernels/matmul.h"
#include "kernels/matmul_dnnl.h"
#include "kernels/quant.h"
#include "kernels/ops.h"
#include "test_util.h"
#include "util/pool.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) { return kvp_test_frand(&rng); }

int main(void) {
    /* Products on pools of 2 and 3 workers must give the caller-alone bits. */
    kvu_pool *pool2 = NULL, *pool3 = NULL, *pool4 = NULL;
    CHECK(kvu_pool_new(2, &pool2, NULL) == KVP_OK && kvu_pool_new(3, &pool3, NULL) == KVP_OK &&
          kvu_pool_new(4, &pool4, NULL) == KVP_OK);
    kvu_pool *pools[4] = {NULL, pool2, pool3, pool4};
    /* Every finite half survives a round trip; values are exact powers. */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if (((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff)) continue; /* NaN */
        if (kvk_f32_to_f16(kvk_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(kvk_f16_to_f32(0x3c00) == 1.0f);
    CHECK(kvk_f16_to_f32(0xc000) == -2.0f);
    CHECK(kvk_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    CHECK(kvk_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(kvk_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3c00);   /* tie to even */
    CHECK(kvk_f32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)) == 0x3c02);
    CHECK(kvk_f32_to_f16(70000.0f) == 0x7c00);
    CHECK(kvk_f32_to_f16(ldexpf(1.0f, -26)) == 0);
    CHECK(kvk_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(kvk_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(kvk_f32_to_bf16(1.0f + ldexpf(1.0f, -8)) == 0x3f80);   /* tie to even */
    CHECK(kvk_f32_to_bf16(1.0f + 3 * ldexpf(1.0f, -8)) == 0x3f82);

    /* Matrix products. */
    /* The last two exceed the single-thread cut-off, so threads really split them. */
    int sizes[][3] = {{1, 1, 1}, {1, 37, 19}, {5, 33, 70}, {9, 64, 64}, {13, 100, 35}, {4, 16, 256},
                      {9, 301, 517}, {1, 1500, 1000}};
    uint32_t types[3] = {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        int T = sizes[si][0], N = sizes[si][1], K = sizes[si][2];
        float *x = malloc(sizeof(float) * T * K), *w = malloc(sizeof(float) * N * K);
        uint16_t *wh = malloc(2 * (size_t)N * K);
        float *y1 = malloc(sizeof(float) * T * N), *y2 = malloc(sizeof(float) * T * N);
        float *y3 = malloc(sizeof(float) * T * N);
        for (int i = 0; i < T * K; i++) x[i] = frand();
        for (int i = 0; i < N * K; i++) w[i] = frand();
        for (int ti = 0; ti < 3; ti++) {
            const void *wp = w;
            float *wref = malloc(sizeof(float) * N * K);
            if (types[ti] != GGML_TYPE_F32) {
                for (int i = 0; i < N * K; i++)
                    wh[i] = types[ti] == GGML_TYPE_F16 ? kvk_f32_to_f16(w[i]) : kvk_f32_to_bf16(w[i]);
                wp = wh;
            }
            kvk_to_f32(wref, wp, types[ti], (int64_t)N * K);
            CHECK(kvk_matmul(y1, x, T, wp, types[ti], N, K, false, NULL));
            CHECK(kvk_matmul(y2, x, T, wp, types[ti], N, K, false, pool3));
            CHECK(memcmp(y1, y2, sizeof(float) * T * N) == 0);
            /* Row by row (no token tiles) gives the same bits. */
            for (int t = 0; t < T; t++)
                CHECK(kvk_matmul(y3 + (size_t)t * N, x + (size_t)t * K, 1, wp, types[ti], N, K, false, pool2));
            CHECK_MSG(memcmp(y1, y3, sizeof(float) * T * N) == 0, "T=%d N=%d K=%d type %u", T, N, K,
                      types[ti]);
            double worst = 0;
            for (int t = 0; t < T; t++)
                for (int n = 0; n < N; n++) {
                    double s = 0;
                    for (int k = 0; k < K; k++) s += (double)x[t * K + k] * wref[n * K + k];
                    double d = fabs(s - y1[t * N + n]);
                    if (d > worst) worst = d;
                }
            CHECK_MSG(worst < 1e-5 * K, "T=%d N=%d K=%d: %g", T, N, K, worst);
            /* Accumulate adds onto y. */
            memcpy(y2, y1, sizeof(float) * T * N);
            CHECK(kvk_matmul(y2, x, T, wp, types[ti], N, K, true, pool2));
            for (int i = 0; i < T * N; i++) CHECK_NEAR(y2[i], 2 * y1[i], 1e-6);
            free(wref);
        }
        free(x);
        free(w);
        free(wh);
        free(y1);
        free(y2);
        free(y3);
    }

    /* oneDNN products (builds with it): against a double reference of the
     * operands as the compute type sees them (bf16: both rounded to
     * bfloat16), the same bits for 1..4 threads, accumulate adding onto y.
     * Sizes cross the weight panels and the 512-token blocks. */
    int dsizes[][3] = {{4, 1, 1}, {5, 33, 70}, {17, 301, 517}, {600, 70, 33}, {64, 1030, 130},
                       {9, 40, 4096}};
    for (int ct = KVDN_COMPUTE_F32; ct <= KVDN_COMPUTE_BF16 && kvdn_available(); ct++) {
        kvdn_ctx *dc = kvdn_new(ct);
        CHECK(dc != NULL);
        if (!dc) break;
        CHECK(kvdn_matmul(dc, NULL, NULL, kvdn_min_rows() - 1, NULL, GGML_TYPE_F32, 1, 1, false, NULL) == 0);
        for (size_t si = 0; si < sizeof dsizes / sizeof dsizes[0]; si++) {
            int T = dsizes[si][0], N = dsizes[si][1], K = dsizes[si][2];
            float *x = malloc(sizeof(float) * T * K), *w = malloc(sizeof(float) * N * K);
            uint16_t *wh = malloc(2 * (size_t)N * K);
            float *y[4], *wref = malloc(sizeof(float) * N * K), *xref = malloc(sizeof(float) * T * K);
            for (int i = 0; i < 4; i++) y[i] = malloc(sizeof(float) * T * N);
            for (int i = 0; i < T * K; i++) x[i] = frand();
            for (int i = 0; i < N * K; i++) w[i] = frand();
            for (int i = 0; i < T * K; i++)
                xref[i] = ct == KVDN_COMPUTE_BF16 ? kvk_bf16_to_f32(kvk_f32_to_bf16(x[i])) : x[i];
            for (int ti = 0; ti < 3; ti++) {
                const void *wp = w;
                if (types[ti] != GGML_TYPE_F32) {
                    for (int i = 0; i < N * K; i++)
                        wh[i] = types[ti] == GGML_TYPE_F16 ? kvk_f32_to_f16(w[i]) : kvk_f32_to_bf16(w[i]);
                    wp = wh;
                }
                kvk_to_f32(wref, wp, types[ti], (int64_t)N * K);
                if (ct == KVDN_COMPUTE_BF16)
                    for (int i = 0; i < N * K; i++) wref[i] = kvk_bf16_to_f32(kvk_f32_to_bf16(wref[i]));
                for (int nt = 1; nt <= 4; nt++)
                    CHECK(kvdn_matmul(dc, y[nt - 1], x, T, wp, types[ti], N, K, false, pools[nt - 1]) == 1);
                for (int nt = 2; nt <= 4; nt++)
                    CHECK_MSG(memcmp(y[0], y[nt - 1], sizeof(float) * T * N) == 0,
                              "oneDNN T=%d N=%d K=%d type %u compute %d: 1 and %d threads differ", T, N,
                              K, types[ti], ct, nt);
                double worst = 0, scale = 0;
                for (int t = 0; t < T; t++)
                    for (int n = 0; n < N; n++) {
                        double sum = 0, mag = 0;
                        for (int k = 0; k < K; k++) {
                            sum += (double)xref[t * K + k] * wref[n * K + k];
                            mag += fabs((double)xref[t * K + k] * wref[n * K + k]);
                        }
                        double d = fabs(sum - y[0][t * N + n]);
                        if (d > worst) worst = d;
                        if (mag > scale) scale = mag;
                    }
                /* float32 sums: error within a few ulps of the largest
                 * partial magnitude per term. */
                CHECK_MSG(worst <= 1e-6 * scale + 1e-7 * K, "oneDNN T=%d N=%d K=%d type %u compute %d: %g",
                          T, N, K, types[ti], ct, worst);
                if (si == 2 && ti == 2)
                    printf("oneDNN compute %s T=%d N=%d K=%d BF16 weights: max|diff| %.3g (%s)\n",
                           ct == KVDN_COMPUTE_BF16 ? "bf16" : "f32", T, N, K, worst, kvdn_impl_name(dc));
                memcpy(y[1], y[0], sizeof(float) * T * N);
                CHECK(kvdn_matmul(dc, y[1], x, T, wp, types[ti], N, K, true, pool3) == 1);
                for (int i = 0; i < T * N; i++) CHECK(y[1][i] == y[0][i] + y[0][i]);
            }
            for (int i = 0; i < 4; i++) free(y[i]);
            free(x);
            free(w);
            free(wh);
            free(wref);
            free(xref);
        }
        /* Block-quantized weights (ggml's reference quantizers): against
         * their dequantization (tested against ggml in tests/quant). */
        const uint32_t qtypes[2] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_K};
        const int qsizes[][3] = {{9, 70, 512}, {40, 300, 256}};
        for (int qi = 0; qi < 2; qi++)
            for (int si = 0; si < 2; si++) {
                int T = qsizes[si][0], N = qsizes[si][1], K = qsizes[si][2];
                size_t rb = kvq_row_bytes(qtypes[qi], K);
                float *x = malloc(sizeof(float) * T * K), *w = malloc(sizeof(float) * N * K);
                float *wref = malloc(sizeof(float) * N * K), *y1 = malloc(sizeof(float) * T * N);
                float *y2 = malloc(sizeof(float) * T * N);
                uint8_t *wq = malloc(rb * N);
                for (int i = 0; i < T * K; i++) x[i] = frand();
                for (int i = 0; i < N * K; i++) w[i] = frand();
                for (int n = 0; n < N; n++)
                    CHECK(kvq_quantize_row_ref(qtypes[qi], w + (size_t)n * K, wq + rb * n, K));
                kvq_dequantize_rows_f32(qtypes[qi], wq, wref, N, K);
                if (ct == KVDN_COMPUTE_BF16)
                    for (int i = 0; i < N * K; i++) wref[i] = kvk_bf16_to_f32(kvk_f32_to_bf16(wref[i]));
                CHECK(kvdn_matmul(dc, y1, x, T, wq, qtypes[qi], N, K, false, NULL) == 1);
                CHECK(kvdn_matmul(dc, y2, x, T, wq, qtypes[qi], N, K, false, pool3) == 1);
                CHECK(memcmp(y1, y2, sizeof(float) * T * N) == 0);
                double worst = 0, scale = 0;
                for (int t = 0; t < T; t++)
                    for (int n = 0; n < N; n++) {
                        double sum = 0, mag = 0;
                        for (int k = 0; k < K; k++) {
                            double xv = ct == KVDN_COMPUTE_BF16 ? kvk_bf16_to_f32(kvk_f32_to_bf16(x[t * K + k]))
                                                                : x[t * K + k];
                            sum += xv * wref[n * K + k];
                            mag += fabs(xv * wref[n * K + k]);
                        }
                        if (fabs(sum - y1[t * N + n]) > worst) worst = fabs(sum - y1[t * N + n]);
                        if (mag > scale) scale = mag;
                    }
                CHECK_MSG(worst <= 1e-6 * scale + 1e-7 * K, "oneDNN type %u compute %d T=%d N=%d K=%d: %g",
                          qtypes[qi], ct, T, N, K, worst);
                free(x);
                free(w);
                free(wref);
                free(y1);
                free(y2);
                free(wq);
            }
        kvdn_free(dc);
    }

    /* RMSNorm and RoPE on small known cases. */
    float v[4] = {1, 2, 3, 4}, w4[4] = {1, 1, 2, 0.5f}, o[4];
    kvk_rmsnorm(o, v, w4, 1, 4, 0.0f);
    double r = sqrt(7.5);
    CHECK_NEAR(o[0], 1 / r, 1e-6);
    CHECK_NEAR(o[2], 6 / r, 1e-6);
    CHECK_NEAR(o[3], 2 / r, 1e-6);
    double inv[2] = {1.0, 0.5};
    float cs[2 * 2 * 2];
    kvk_rope_table(cs, 2, 3, inv, 2); /* positions 3 and 4 */
    float q[2][4] = {{1, 0, 0, 1}, {1, 2, 3, 4}};
    kvk_rope_apply(&q[0][0], 2, 1, 4, cs, 2);
    /* pair (0,2) rotates by pos*1, pair (1,3) by pos*0.5 */
    CHECK_NEAR(q[0][0], cos(3.0), 1e-6);
    CHECK_NEAR(q[0][2], sin(3.0), 1e-6);
    CHECK_NEAR(q[0][1], -sin(1.5), 1e-6);
    CHECK_NEAR(q[0][3], cos(1.5), 1e-6);
    CHECK_NEAR(q[1][0], 1 * cos(4.0) - 3 * sin(4.0), 1e-6);
    CHECK_NEAR(q[1][2], 3 * cos(4.0) + 1 * sin(4.0), 1e-6);

    /* Sampler: greedy ties pick the lowest id; a seed fixes the draw;
     * top-k 1 is greedy; sampled frequencies follow the softmax. */
    float logits[5] = {0.5f, 2.0f, 2.0f, -1.0f, 1.0f};
    kvg_sampler s;
    CHECK(kvg_sampler_init(&s, 5, 0.0f, 0, 1.0f, 1));
    CHECK_EQ_INT(kvg_sampler_pick(&s, logits), 1);
    kvg_sampler_free(&s);
    CHECK(kvg_sampler_init(&s, 5, 1.0f, 1, 1.0f, 1));
    for (int i = 0; i < 20; i++) CHECK_EQ_INT(kvg_sampler_pick(&s, logits), 1);
    kvg_sampler_free(&s);
    int counts[5] = {0};
    CHECK(kvg_sampler_init(&s, 5, 1.0f, 0, 1.0f, 42));
    for (int i = 0; i < 20000; i++) counts[kvg_sampler_pick(&s, logits)]++;
    kvg_sampler_free(&s);
    double z = 0;
    for (int i = 0; i < 5; i++) z += exp(logits[i]);
    for (int i = 0; i < 5; i++) CHECK_NEAR(counts[i] / 20000.0, exp(logits[i]) / z, 0.015);
    /* top-p 0.5 keeps only the two tied best tokens (together > 0.5). */
    memset(counts, 0, sizeof counts);
    CHECK(kvg_sampler_init(&s, 5, 1.0f, 0, 0.5f, 3));
    for (int i = 0; i < 2000; i++) counts[kvg_sampler_pick(&s, logits)]++;
    kvg_sampler_free(&s);
    CHECK(counts[0] == 0 && counts[3] == 0 && counts[4] == 0 && counts[1] > 800 && counts[2] > 800);
    kvu_pool_free(pool2);
    kvu_pool_free(pool3);
    kvu_pool_free(pool4);
    return kvp_test_done("test_kernels");
}
