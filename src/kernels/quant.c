/* ggml's block-quantized types: traits, dequantization, the reference
 * quantizers and the portable (scalar) quantized dot products.
 *
 * Everything here reproduces ggml bit for bit (test vectors produced by
 * ggml itself: tests/data/quant/): the float expressions keep ggml's
 * operation order, and this file is compiled with -ffp-contract=off so no
 * compiler fuses a multiply and an add that ggml rounds separately. */
#include "kernels/quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "format/gguf.h"
#include "kernels/cpu.h"
#include "kernels/fp16.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_deq.h"

const int8_t kvq_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                     1,    13,   25,  38,  53,  69,  89,  113};

/* ------------------------------------------------------------------------ */
/* Type traits                                                              */
/* ------------------------------------------------------------------------ */

#define Q(name, be, bb, vdt) {name, be, bb, vdt, true}
#define P(name, bytes) {name, 1, bytes, 0, false}
static const kvq_type_traits traits[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32] = {"F32", 1, 4, GGML_TYPE_F32, false},
    [GGML_TYPE_F16] = {"F16", 1, 2, GGML_TYPE_F16, false},
    [GGML_TYPE_BF16] = {"BF16", 1, 2, GGML_TYPE_BF16, false},
    [GGML_TYPE_Q4_0] = Q("Q4_0", QK4_0, sizeof(block_q4_0), GGML_TYPE_Q8_0),
    [GGML_TYPE_Q4_1] = Q("Q4_1", QK4_1, sizeof(block_q4_1), GGML_TYPE_Q8_1),
    [GGML_TYPE_Q5_0] = Q("Q5_0", QK5_0, sizeof(block_q5_0), GGML_TYPE_Q8_0),
    [GGML_TYPE_Q5_1] = Q("Q5_1", QK5_1, sizeof(block_q5_1), GGML_TYPE_Q8_1),
    [GGML_TYPE_Q8_0] = Q("Q8_0", QK8_0, sizeof(block_q8_0), GGML_TYPE_Q8_0),
    [GGML_TYPE_Q8_1] = Q("Q8_1", QK8_1, sizeof(block_q8_1), GGML_TYPE_Q8_1),
    [GGML_TYPE_Q2_K] = Q("Q2_K", QK_K, sizeof(block_q2_K), GGML_TYPE_Q8_K),
    [GGML_TYPE_Q3_K] = Q("Q3_K", QK_K, sizeof(block_q3_K), GGML_TYPE_Q8_K),
    [GGML_TYPE_Q4_K] = Q("Q4_K", QK_K, sizeof(block_q4_K), GGML_TYPE_Q8_K),
    [GGML_TYPE_Q5_K] = Q("Q5_K", QK_K, sizeof(block_q5_K), GGML_TYPE_Q8_K),
    [GGML_TYPE_Q6_K] = Q("Q6_K", QK_K, sizeof(block_q6_K), GGML_TYPE_Q8_K),
    [GGML_TYPE_Q8_K] = Q("Q8_K", QK_K, sizeof(block_q8_K), GGML_TYPE_Q8_K),
    [GGML_TYPE_IQ4_NL] = Q("IQ4_NL", QK4_NL, sizeof(block_iq4_nl), GGML_TYPE_Q8_0),
    [GGML_TYPE_IQ4_XS] = Q("IQ4_XS", QK_K, sizeof(block_iq4_xs), GGML_TYPE_Q8_K),
    /* Types a GGUF file may hold that the engine does not multiply: known
     * here so files open and the error names them. */
    [GGML_TYPE_IQ2_XXS] = Q("IQ2_XXS", QK_K, 66, GGML_TYPE_Q8_K),
    [GGML_TYPE_IQ2_XS] = Q("IQ2_XS", QK_K, 74, GGML_TYPE_Q8_K),
    [GGML_TYPE_IQ3_XXS] = Q("IQ3_XXS", QK_K, 98, GGML_TYPE_Q8_K),
    [GGML_TYPE_IQ1_S] = Q("IQ1_S", QK_K, 50, GGML_TYPE_Q8_K),
    [GGML_TYPE_IQ3_S] = Q("IQ3_S", QK_K, 110, GGML_TYPE_Q8_K),
    [GGML_TYPE_IQ2_S] = Q("IQ2_S", QK_K, 82, GGML_TYPE_Q8_K),
    [GGML_TYPE_IQ1_M] = Q("IQ1_M", QK_K, 56, GGML_TYPE_Q8_K),
    [GGML_TYPE_TQ1_0] = Q("TQ1_0", QK_K, 54, GGML_TYPE_Q8_K),
    [GGML_TYPE_TQ2_0] = Q("TQ2_0", QK_K, 66, GGML_TYPE_Q8_K),
    [GGML_TYPE_MXFP4] = Q("MXFP4", 32, 17, GGML_TYPE_Q8_0),
    [GGML_TYPE_NVFP4] = Q("NVFP4", 64, 36, GGML_TYPE_Q8_0),
    [GGML_TYPE_Q1_0] = Q("Q1_0", 128, 18, GGML_TYPE_Q8_0),
    [GGML_TYPE_Q2_0] = Q("Q2_0", 64, 18, GGML_TYPE_Q8_0),
    [GGML_TYPE_I8] = P("I8", 1),
    [GGML_TYPE_I16] = P("I16", 2),
    [GGML_TYPE_I32] = P("I32", 4),
    [GGML_TYPE_I64] = P("I64", 8),
    [GGML_TYPE_F64] = P("F64", 8),
};
#undef Q
#undef P

const kvq_type_traits *kvq_type_traits_of(uint32_t type) {
    static const kvq_type_traits unknown = {NULL, 0, 0, 0, false};
    if (type >= GGML_TYPE_COUNT || !traits[type].name) return &unknown;
    return &traits[type];
}

bool kvq_type_supported(uint32_t type) {
    switch (type) {
    case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16:
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1:
    case GGML_TYPE_Q8_0: case GGML_TYPE_Q2_K: case GGML_TYPE_Q3_K: case GGML_TYPE_Q4_K:
    case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K: case GGML_TYPE_IQ4_NL: case GGML_TYPE_IQ4_XS:
        return true;
    default:
        return false;
    }
}

const char *kvq_supported_type_names(void) {
    return "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, "
           "IQ4_XS";
}

size_t kvq_row_bytes(uint32_t type, int64_t n) {
    const kvq_type_traits *t = kvq_type_traits_of(type);
    if (!t->block_elems || n < 0 || n % t->block_elems) return 0;
    return (size_t)(n / t->block_elems) * (size_t)t->block_bytes;
}

/* ------------------------------------------------------------------------ */
/* Helpers shared with ggml's algorithms                                    */
/* ------------------------------------------------------------------------ */

static inline float h2f(uint16_t h) { return kvk_f16_to_f32(h); }
static inline uint16_t f2h(float f) { return kvk_f32_to_f16(f); }
static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* Round to nearest (ties to even) through the float mantissa, |f| < 2^22. */
static inline int nearest_int(float f) {
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* ------------------------------------------------------------------------ */
/* Dequantization (quant_deq_isa.h, one copy per instruction set)           */
/* ------------------------------------------------------------------------ */

bool kvq_can_dequantize(uint32_t type) { return kvq_deq_known_scalar(type); }

/* Prefill converts whole weight panels here: the copy compiled for the
 * CPU's instruction set, the same bits as the scalar one. */
void kvq_dequantize_rows_f32(uint32_t type, const void *src, float *dst, int64_t rows, int64_t n) {
    switch (kvcpu_current()) {
    case KVCPU_AVX512VNNI:
    case KVCPU_AVX512: kvq_deq_rows_f32_avx512(type, src, dst, rows, n); return;
    case KVCPU_AVX2: kvq_deq_rows_f32_avx2(type, src, dst, rows, n); return;
    default: kvq_deq_rows_f32_scalar(type, src, dst, rows, n); return;
    }
}

void kvq_dequantize_rows_bf16(uint32_t type, const void *src, uint16_t *dst, int64_t rows,
                              int64_t n) {
    switch (kvcpu_current()) {
    case KVCPU_AVX512VNNI:
    case KVCPU_AVX512:
        if (kvcpu_has_avx512bf16()) kvq_deq_rows_bf16_avx512bf16(type, src, dst, rows, n);
        else kvq_deq_rows_bf16_avx512(type, src, dst, rows, n);
        return;
    case KVCPU_AVX2: kvq_deq_rows_bf16_avx2(type, src, dst, rows, n); return;
    default: kvq_deq_rows_bf16_scalar(type, src, dst, rows, n); return;
    }
}

/* ------------------------------------------------------------------------ */
/* Reference quantizers (ggml's quantize_row_*_ref)                         */
/* ------------------------------------------------------------------------ */

#define GROUP_MAX_EPS 1e-15f

static void quant_q4_0(const float *x, block_q4_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK4_0) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK4_0; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        const float d = max / -8, id = d ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const uint8_t a = (uint8_t)imin(15, (int8_t)(x[j] * id + 8.5f));
            const uint8_t b = (uint8_t)imin(15, (int8_t)(x[j + QK4_0 / 2] * id + 8.5f));
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}

static void quant_q4_1(const float *x, block_q4_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK4_1) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK4_1; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15, id = d ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        y[i].m = f2h(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const uint8_t a = (uint8_t)imin(15, (int8_t)((x[j] - min) * id + 0.5f));
            const uint8_t b = (uint8_t)imin(15, (int8_t)((x[j + QK4_1 / 2] - min) * id + 0.5f));
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}

static void quant_q5_0(const float *x, block_q5_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK5_0) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK5_0; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        const float d = max / -16, id = d ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const uint8_t a = (uint8_t)imin(31, (int8_t)(x[j] * id + 16.5f));
            const uint8_t b = (uint8_t)imin(31, (int8_t)(x[j + QK5_0 / 2] * id + 16.5f));
            y[i].qs[j] = (uint8_t)((a & 0x0F) | ((b & 0x0F) << 4));
            qh |= ((a & 0x10u) >> 4) << j;
            qh |= ((b & 0x10u) >> 4) << (j + QK5_0 / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void quant_q5_1(const float *x, block_q5_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK5_1) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK5_1; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31, id = d ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        y[i].m = f2h(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            const uint8_t a = (uint8_t)((x[j] - min) * id + 0.5f);
            const uint8_t b = (uint8_t)((x[j + QK5_1 / 2] - min) * id + 0.5f);
            y[i].qs[j] = (uint8_t)((a & 0x0F) | ((b & 0x0F) << 4));
            qh |= ((a & 0x10u) >> 4) << j;
            qh |= ((b & 0x10u) >> 4) << (j + QK5_1 / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void quant_q8_0(const float *x, block_q8_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        for (int j = 0; j < QK8_0; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

static void quant_q8_1(const float *x, block_q8_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK8_1) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_1; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = f2h(sum * d);
    }
}

/* The element of x of the largest magnitude, with its sign (*amax: the
 * magnitude; the first such element), as ggml's quantizers pick it. */
static float signed_max(int n, const float *x, float *amax) {
    float max = 0;
    *amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > *amax) {
            *amax = fabsf(x[i]);
            max = x[i];
        }
    return max;
}

static void quant_q8_K(const float *x, block_q8_K *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float amax;
        const float max = signed_max(QK_K, x, &amax);
        if (!amax) {
            /* ggml leaves bsums as they were; zero them so the output is
             * deterministic (they are zero in ggml's too when qs are). */
            y[i].d = 0;
            memset(y[i].qs, 0, QK_K);
            memset(y[i].bsums, 0, sizeof y[i].bsums);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) y[i].qs[j] = (int8_t)imin(127, nearest_int(iscale * x[j]));
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int k = 0; k < 16; k++) sum += y[i].qs[j * 16 + k];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

/* Scale and 0..nmax levels of n values with a min (Q2_K, Q4_K, Q5_K):
 * a grid search over nstep+1 candidate scales minimising the weighted
 * error (ggml's make_qkx2_quants). */
static float qkx2(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min,
                  uint8_t *Laux, float rmin, float rdelta, int nstep, bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += w[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = imax(0, imin(nmax, l));
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += w[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Levels l = round(iscale * x[i]) clamped to -nmax..nmax-1 and their sums
 * weighted by x^2, in ggml's order: *sumlx = sum w x l, *suml2 = sum w l l;
 * L[i] = l + offset unless L is NULL. */
static void levels_x2(int n, int nmax, const float *x, float iscale, int8_t *L, int offset,
                      float *sumlx, float *suml2) {
    float slx = 0, sl2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = imax(-nmax, imin(nmax - 1, l));
        if (L) L[i] = (int8_t)(l + offset);
        const float w = x[i] * x[i];
        slx += w * x[i] * l;
        sl2 += w * l * l;
    }
    *sumlx = slx;
    *suml2 = sl2;
}

/* Symmetric scale and levels -nmax..nmax-1 (stored + nmax) with an RMSE
 * search over 19 candidate scales (ggml's make_qx_quants, weights x^2). */
static float qx(int n, int nmax, const float *x, int8_t *L) {
    float amax;
    const float max = signed_max(n, x, &amax);
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx, suml2;
    levels_x2(n, nmax, x, iscale, L, nmax, &sumlx, &suml2);
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        levels_x2(n, nmax, x, iscale, NULL, 0, &sumlx, &suml2);
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                const int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K's sub-block scale: levels -nmax..nmax-1 refined by coordinate
 * descent (ggml's make_q3_quants with do_rmse). */
static float q3(int n, int nmax, const float *x, int8_t *L) {
    float amax;
    const float max = signed_max(n, x, &amax);
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float sumlx, suml2;
    levels_x2(n, nmax, x, -nmax / max, L, 0, &sumlx, &suml2);
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = nearest_int(x[i] * sl2 / slx);
                new_l = imax(-nmax, imin(nmax - 1, new_l));
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

static void quant_q2_K(const float *x, block_q2_K *y, int64_t nb) {
    uint8_t L[QK_K], Laux[16];
    float weights[16], mins[QK_K / 16], scales[QK_K / 16];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = qkx2(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15,
                             true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; j++) y[i].scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
            y[i].d = f2h(max_scale / q4scale);
        } else {
            for (int j = 0; j < QK_K / 16; j++) y[i].scales[j] = 0;
            y[i].d = f2h(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; j++)
                y[i].scales[j] |= (uint8_t)(nearest_int(iscale * mins[j]) << 4);
            y[i].dmin = f2h(max_min / q4scale);
        } else {
            y[i].dmin = f2h(0.f);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = h2f(y[i].d) * (y[i].scales[j] & 0xF);
            if (!d) continue;
            const float dm = h2f(y[i].dmin) * (y[i].scales[j] >> 4);
            for (int k = 0; k < 16; k++) {
                const int l = nearest_int((x[16 * j + k] + dm) / d);
                L[16 * j + k] = (uint8_t)imax(0, imin(3, l));
            }
        }
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; l++)
                y[i].qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                               (L[j + l + 96] << 6));
    }
}

static void quant_q3_K(const float *x, block_q3_K *y, int64_t nb) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            scales[j] = q3(16, 4, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) {
                amax = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; j++) {
                int8_t l = (int8_t)nearest_int(iscale * scales[j]);
                l = (int8_t)(imax(-32, imin(31, l)) + 32);
                if (j < 8)
                    y[i].scales[j] = l & 0xF;
                else
                    y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                l >>= 4;
                y[i].scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
            }
            y[i].d = f2h(1 / iscale);
        } else {
            y[i].d = f2h(0.f);
        }
        int8_t sc[16];
        kvq_q3k_scales(y[i].scales, sc);
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = h2f(y[i].d) * (sc[j] - 32);
            if (!d) continue;
            for (int k = 0; k < 16; k++) {
                const int l = nearest_int(x[16 * j + k] / d);
                L[16 * j + k] = (int8_t)(imax(-4, imin(3, l)) + 4);
            }
        }
        memset(y[i].hmask, 0, QK_K / 8);
        /* High bit of element j: bit j / 32 of hmask[j % 32]. */
        int m = 0;
        uint8_t hm = 1;
        for (int j = 0; j < QK_K; j++) {
            if (L[j] > 3) {
                y[i].hmask[m] |= hm;
                L[j] -= 4;
            }
            if (++m == QK_K / 8) {
                m = 0;
                hm <<= 1;
            }
        }
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; l++)
                y[i].qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                               (L[j + l + 96] << 6));
    }
}

/* The packed 6-bit scales/mins of Q4_K / Q5_K, then their levels. */
static void pack_k4_scales(uint8_t *s, const float *scales, const float *mins, float max_scale,
                           float max_min) {
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        ls = (uint8_t)imin(63, ls);
        lm = (uint8_t)imin(63, lm);
        if (j < 4) {
            s[j] = ls;
            s[j + 4] = lm;
        } else {
            s[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            s[j - 4] |= (uint8_t)((ls >> 4) << 6);
            s[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
}

/* Q4_K (nmax 15) and Q5_K (nmax 31) share everything up to the packing. */
static void k45_levels(const float *x, uint16_t *dh, uint16_t *dminh, uint8_t *sc_packed,
                       uint8_t *L, int nmax, float rmin, int nstep) {
    uint8_t Laux[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = qkx2(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep,
                         false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    pack_k4_scales(sc_packed, scales, mins, max_scale, max_min);
    *dh = f2h(max_scale / 63.f);
    *dminh = f2h(max_min / 63.f);
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        kvq_scale_min_k4(j, sc_packed, &sc, &m);
        const float d = h2f(*dh) * sc;
        if (!d) continue;
        const float dm = h2f(*dminh) * m;
        for (int k = 0; k < 32; k++) {
            const int l = nearest_int((x[32 * j + k] + dm) / d);
            L[32 * j + k] = (uint8_t)imax(0, imin(nmax, l));
        }
    }
}

static void quant_q4_K(const float *x, block_q4_K *y, int64_t nb) {
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        k45_levels(x, &y[i].d, &y[i].dmin, y[i].scales, L, 15, -1.f, 20);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

static void quant_q5_K(const float *x, block_q5_K *y, int64_t nb) {
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        k45_levels(x, &y[i].d, &y[i].dmin, y[i].scales, L, 31, -0.5f, 15);
        uint8_t *qh = y[i].qh, *ql = y[i].qs;
        memset(qh, 0, QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int n = 0; n < QK_K; n += 64, ql += 32) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[n + j], l2 = L[n + j + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 <<= 2;
            m2 <<= 2;
        }
    }
}

static void quant_q6_K(const float *x, block_q6_K *y, int64_t nb) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ib++) {
            scales[ib] = qx(16, 32, x + 16 * ib, L + 16 * ib);
            if (fabsf(scales[ib]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = f2h(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ib++)
            y[i].scales[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = h2f(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int k = 0; k < 16; k++) {
                const int l = nearest_int(x[16 * j + k] / d);
                L[16 * j + k] = (int8_t)(imax(-32, imin(31, l)) + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32)
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3v = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = (uint8_t)(q1 | (q3v << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
    }
}

/* Nearest code of the IQ4 book (ties to the upper code, as ggml). */
static inline int iq4_index(float x) {
    const int8_t *v = kvq_iq4nl_values;
    if (x <= v[0]) return 0;
    if (x >= v[15]) return 15;
    int ml = 0, mu = 15;
    while (mu - ml > 1) {
        const int mav = (ml + mu) / 2;
        if (x < v[mav])
            mu = mav;
        else
            ml = mav;
    }
    return x - v[mu - 1] < v[mu] - x ? mu - 1 : mu;
}

/* IQ4_NL (super = 32, ntry = -1) and IQ4_XS (super = 256, ntry = 7)
 * without importance weights (ggml's quantize_row_iq4_nl_impl). L persists
 * across the blocks of a row as in ggml: an all-zero IQ4_NL block keeps the
 * previous block's levels (its scale is 0, so its values are 0 either way). */
static void iq4_block(int super, const float *x, uint16_t *dh, uint8_t *q4, uint16_t *scales_h,
                      uint8_t *scales_l, uint8_t *L, int ntry) {
    float scales[QK_K / 32], weight[32];
    memset(q4, 0, (size_t)super / 2);
    *dh = f2h(0.f);
    const int8_t *values = kvq_iq4nl_values;
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < super / 32; ib++) {
        const float *xb = x + ib * 32;
        uint8_t *Lb = L + ib * 32;
        for (int j = 0; j < 32; j++) weight[j] = xb[j] * xb[j];
        float amax;
        const float max = signed_max(32, xb, &amax);
        if (amax < GROUP_MAX_EPS) {
            scales[ib] = 0;
            continue;
        }
        float d = ntry > 0 ? -max / values[0] : max / values[0];
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            const int l = iq4_index(id * xb[j]);
            Lb[j] = (uint8_t)l;
            const float q = values[l], w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
        float best = d * sumqx;
        for (int itry = -ntry; itry <= ntry; itry++) {
            id = (itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < 32; j++) {
                const int l = iq4_index(id * xb[j]);
                const float q = values[l], w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        if (fabsf(d) > amax_scale) {
            amax_scale = fabsf(d);
            max_scale = d;
        }
    }
    if (super / 32 > 1) {
        const int nb = super / 32;
        memset(scales_h, 0, sizeof(uint16_t));
        const float d = -max_scale / 32;
        *dh = f2h(d);
        const float id = d ? 1 / d : 0.f;
        for (int ib = 0; ib < nb; ib++) {
            int l = nearest_int(id * scales[ib]);
            l = imax(-32, imin(31, l));
            const float dl = d * l;
            const float idl = dl ? 1 / dl : 0.f;
            uint8_t *Lb = L + ib * 32;
            const float *xb = x + ib * 32;
            for (int j = 0; j < 32; j++) Lb[j] = (uint8_t)iq4_index(idl * xb[j]);
            l += 32;
            const uint8_t l_l = l & 0xf, l_h = (uint8_t)(l >> 4);
            if (ib % 2 == 0)
                scales_l[ib / 2] = l_l;
            else
                scales_l[ib / 2] |= (uint8_t)(l_l << 4);
            *scales_h |= (uint16_t)(l_h << 2 * (ib % 8));
        }
    } else {
        *dh = f2h(scales[0]);
        if (ntry > 0) {
            const float id = scales[0] ? 1 / scales[0] : 0;
            for (int j = 0; j < super; j++) L[j] = (uint8_t)iq4_index(id * x[j]);
        }
    }
    for (int i = 0; i < super / 32; i++)
        for (int j = 0; j < 16; j++) q4[16 * i + j] = (uint8_t)(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

static void quant_iq4_nl(const float *x, block_iq4_nl *y, int64_t nb) {
    uint8_t L[32] = {0};
    uint16_t unused_h;
    for (int64_t i = 0; i < nb; i++) iq4_block(32, x + 32 * i, &y[i].d, y[i].qs, &unused_h, NULL, L, -1);
}

static void quant_iq4_xs(const float *x, block_iq4_xs *y, int64_t nb) {
    uint8_t L[QK_K] = {0};
    for (int64_t i = 0; i < nb; i++)
        iq4_block(QK_K, x + QK_K * i, &y[i].d, y[i].qs, &y[i].scales_h, y[i].scales_l, L, 7);
}

bool kvq_quantize_row_ref(uint32_t type, const float *src, void *dst, int64_t n) {
    const kvq_type_traits *t = kvq_type_traits_of(type);
    if (!t->quantized || n % t->block_elems) return false;
    const int64_t nb = n / t->block_elems;
    switch (type) {
    case GGML_TYPE_Q4_0: quant_q4_0(src, dst, nb); return true;
    case GGML_TYPE_Q4_1: quant_q4_1(src, dst, nb); return true;
    case GGML_TYPE_Q5_0: quant_q5_0(src, dst, nb); return true;
    case GGML_TYPE_Q5_1: quant_q5_1(src, dst, nb); return true;
    case GGML_TYPE_Q8_0: quant_q8_0(src, dst, nb); return true;
    case GGML_TYPE_Q8_1: quant_q8_1(src, dst, nb); return true;
    case GGML_TYPE_Q2_K: quant_q2_K(src, dst, nb); return true;
    case GGML_TYPE_Q3_K: quant_q3_K(src, dst, nb); return true;
    case GGML_TYPE_Q4_K: quant_q4_K(src, dst, nb); return true;
    case GGML_TYPE_Q5_K: quant_q5_K(src, dst, nb); return true;
    case GGML_TYPE_Q6_K: quant_q6_K(src, dst, nb); return true;
    case GGML_TYPE_Q8_K: quant_q8_K(src, dst, nb); return true;
    case GGML_TYPE_IQ4_NL: quant_iq4_nl(src, dst, nb); return true;
    case GGML_TYPE_IQ4_XS: quant_iq4_xs(src, dst, nb); return true;
    default: return false;
    }
}

/* ------------------------------------------------------------------------ */
/* Portable quantized dot products (ggml's ggml_vec_dot_*_generic order)    */
/* ------------------------------------------------------------------------ */

static float dot_q4_0_q8_0(int64_t nb, const block_q4_0 *x, const block_q8_0 *y) {
    float sumf = 0;
    for (int64_t ib = 0; ib < nb; ib++) {
        int s0 = 0, s1 = 0;
        for (int j = 0; j < QK8_0 / 2; j++) {
            s0 += ((x[ib].qs[j] & 0x0F) - 8) * y[ib].qs[j];
            s1 += ((x[ib].qs[j] >> 4) - 8) * y[ib].qs[j + QK8_0 / 2];
        }
        sumf += (s0 + s1) * h2f(x[ib].d) * h2f(y[ib].d);
    }
    return sumf;
}

static float dot_q4_1_q8_1(int64_t nb, const block_q4_1 *x, const block_q8_1 *y) {
    float sumf = 0;
    for (int64_t ib = 0; ib < nb; ib++) {
        int s0 = 0, s1 = 0;
        for (int j = 0; j < QK8_1 / 2; j++) {
            s0 += (x[ib].qs[j] & 0x0F) * y[ib].qs[j];
            s1 += (x[ib].qs[j] >> 4) * y[ib].qs[j + QK8_1 / 2];
        }
        sumf += (h2f(x[ib].d) * h2f(y[ib].d)) * (s0 + s1) + h2f(x[ib].m) * h2f(y[ib].s);
    }
    return sumf;
}

static float dot_q5_0_q8_0(int64_t nb, const block_q5_0 *x, const block_q8_0 *y) {
    float sumf = 0;
    for (int64_t ib = 0; ib < nb; ib++) {
        uint32_t qh;
        memcpy(&qh, x[ib].qh, 4);
        int s0 = 0, s1 = 0;
        for (int j = 0; j < QK8_0 / 2; j++) {
            const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
            s0 += (((x[ib].qs[j] & 0x0F) | h0) - 16) * y[ib].qs[j];
            s1 += (((x[ib].qs[j] >> 4) | h1) - 16) * y[ib].qs[j + QK8_0 / 2];
        }
        sumf += (h2f(x[ib].d) * h2f(y[ib].d)) * (s0 + s1);
    }
    return sumf;
}

static float dot_q5_1_q8_1(int64_t nb, const block_q5_1 *x, const block_q8_1 *y) {
    float sumf = 0;
    for (int64_t ib = 0; ib < nb; ib++) {
        uint32_t qh;
        memcpy(&qh, x[ib].qh, 4);
        int s0 = 0, s1 = 0;
        for (int j = 0; j < QK8_1 / 2; j++) {
            const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
            s0 += ((x[ib].qs[j] & 0xF) | h0) * y[ib].qs[j];
            s1 += ((x[ib].qs[j] >> 4) | h1) * y[ib].qs[j + QK8_1 / 2];
        }
        sumf += (h2f(x[ib].d) * h2f(y[ib].d)) * (s0 + s1) + h2f(x[ib].m) * h2f(y[ib].s);
    }
    return sumf;
}

static float dot_q8_0_q8_0(int64_t nb, const block_q8_0 *x, const block_q8_0 *y) {
    float sumf = 0;
    for (int64_t ib = 0; ib < nb; ib++) {
        int s = 0;
        for (int j = 0; j < QK8_0; j++) s += x[ib].qs[j] * y[ib].qs[j];
        sumf += s * (h2f(x[ib].d) * h2f(y[ib].d));
    }
    return sumf;
}

static float dot_iq4_nl_q8_0(int64_t nb, const block_iq4_nl *x, const block_q8_0 *y) {
    float sumf = 0;
    for (int64_t ib = 0; ib < nb; ib++) {
        const float d = h2f(y[ib].d) * h2f(x[ib].d);
        int s1 = 0, s2 = 0;
        for (int j = 0; j < QK4_NL / 2; j++) {
            s1 += y[ib].qs[j] * kvq_iq4nl_values[x[ib].qs[j] & 0xf];
            s2 += y[ib].qs[j + QK4_NL / 2] * kvq_iq4nl_values[x[ib].qs[j] >> 4];
        }
        sumf += d * (s1 + s2);
    }
    return sumf;
}

static float dot_q2_K_q8_K(int64_t nb, const block_q2_K *x, const block_q8_K *y) {
    float sumf = 0;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q2 = x[i].qs, *sc = x[i].scales;
        const int8_t *q8 = y[i].qs;
        int summs = 0;
        for (int j = 0; j < 16; j++) summs += y[i].bsums[j] * (sc[j] >> 4);
        const float dall = y[i].d * h2f(x[i].d);
        const float dmin = y[i].d * h2f(x[i].dmin);
        int isum = 0, is = 0;
        for (int k = 0; k < QK_K / 128; k++) {
            for (int shift = 0; shift < 8; shift += 2) {
                int d = sc[is++] & 0xF, isuml = 0;
                for (int l = 0; l < 16; l++) isuml += q8[l] * ((q2[l] >> shift) & 3);
                isum += d * isuml;
                d = sc[is++] & 0xF;
                isuml = 0;
                for (int l = 16; l < 32; l++) isuml += q8[l] * ((q2[l] >> shift) & 3);
                isum += d * isuml;
                q8 += 32;
            }
            q2 += 32;
        }
        sumf += dall * isum - dmin * summs;
    }
    return sumf;
}

/* The K-quant dots below accumulate 8 lanes of int32 per super-block and
 * 8 float lanes across super-blocks, summed at the end, as ggml's
 * generic code does; aux8 holds the block's signed levels. */
static void lanes_accumulate(int32_t aux32[8], const int8_t *q8, const int8_t *a, int scale) {
    for (int l = 0; l < 8; l++) aux32[l] += scale * (int16_t)(q8[l] * a[l]);
}

static float dot_q3_K_q8_K(int64_t nb, const block_q3_K *x, const block_q8_K *y) {
    int8_t aux8[QK_K];
    float sums[8] = {0};
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q3 = x[i].qs, *hm = x[i].hmask;
        const int8_t *q8 = y[i].qs;
        int32_t aux32[8] = {0};
        int8_t *a = aux8;
        uint8_t m = 1;
        for (int j = 0; j < QK_K; j += 128, q3 += 32)
            for (int shift = 0; shift < 8; shift += 2, m <<= 1, a += 32)
                for (int l = 0; l < 32; l++)
                    a[l] = (int8_t)(((q3[l] >> shift) & 3) - (hm[l] & m ? 0 : 4));
        int8_t sc[16];
        kvq_q3k_scales(x[i].scales, sc);
        a = aux8;
        for (int j = 0; j < QK_K / 16; j++)
            for (int h = 0; h < 2; h++, q8 += 8, a += 8) lanes_accumulate(aux32, q8, a, sc[j] - 32);
        const float d = h2f(x[i].d) * y[i].d;
        for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
    }
    float sumf = 0;
    for (int l = 0; l < 8; l++) sumf += sums[l];
    return sumf;
}

/* Unpacked 6-bit scales (out[0..7]) and mins (out[8..15]) of Q4_K/Q5_K. */
static void k4_scales_mins(const uint8_t packed[12], uint8_t out[16]) {
    for (int j = 0; j < 8; j++) kvq_scale_min_k4(j, packed, &out[j], &out[8 + j]);
}

static float dot_q45_K(int64_t nb, const void *vx, size_t stride, bool five, const block_q8_K *y) {
    int8_t aux8[QK_K];
    float sums[8] = {0}, sumf = 0;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *blk = (const uint8_t *)vx + (size_t)i * stride;
        uint16_t dh, dminh;
        const uint8_t *scales, *q4, *qh = NULL;
        if (five) {
            const block_q5_K *b = (const block_q5_K *)blk;
            dh = b->d;
            dminh = b->dmin;
            scales = b->scales;
            q4 = b->qs;
            qh = b->qh;
        } else {
            const block_q4_K *b = (const block_q4_K *)blk;
            dh = b->d;
            dminh = b->dmin;
            scales = b->scales;
            q4 = b->qs;
        }
        const int8_t *q8 = y[i].qs;
        int32_t aux32[8] = {0};
        int8_t *a = aux8;
        uint8_t m = 1;
        for (int j = 0; j < QK_K / 64; j++, q4 += 32) {
            for (int l = 0; l < 32; l++) a[l] = (int8_t)((q4[l] & 0xF) + (qh && (qh[l] & m) ? 16 : 0));
            a += 32;
            m <<= 1;
            for (int l = 0; l < 32; l++) a[l] = (int8_t)((q4[l] >> 4) + (qh && (qh[l] & m) ? 16 : 0));
            a += 32;
            m <<= 1;
        }
        uint8_t sm[16];
        k4_scales_mins(scales, sm);
        int sumi = 0;
        for (int j = 0; j < QK_K / 16; j++) sumi += y[i].bsums[j] * sm[8 + j / 2];
        a = aux8;
        for (int j = 0; j < QK_K / 32; j++)
            for (int h = 0; h < 4; h++, q8 += 8, a += 8) lanes_accumulate(aux32, q8, a, sm[j]);
        const float d = h2f(dh) * y[i].d;
        for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
        const float dmin = h2f(dminh) * y[i].d;
        sumf -= dmin * sumi;
    }
    for (int l = 0; l < 8; l++) sumf += sums[l];
    return sumf;
}

static float dot_q6_K_q8_K(int64_t nb, const block_q6_K *x, const block_q8_K *y) {
    int8_t aux8[QK_K];
    float sums[8] = {0};
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        int32_t aux32[8] = {0};
        int8_t *a = aux8;
        for (int j = 0; j < QK_K; j += 128, a += 128, ql += 64, qh += 32)
            for (int l = 0; l < 32; l++) {
                a[l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                a[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                a[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                a[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        a = aux8;
        for (int j = 0; j < QK_K / 16; j++)
            for (int h = 0; h < 2; h++, q8 += 8, a += 8) lanes_accumulate(aux32, q8, a, x[i].scales[j]);
        const float d = h2f(x[i].d) * y[i].d;
        for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
    }
    float sumf = 0;
    for (int l = 0; l < 8; l++) sumf += sums[l];
    return sumf;
}

static float dot_iq4_xs_q8_K(int64_t nb, const block_iq4_xs *x, const block_q8_K *y) {
    float sumf = 0;
    for (int64_t ibl = 0; ibl < nb; ibl++) {
        const float d4d8 = h2f(x[ibl].d) * y[ibl].d;
        uint16_t h = x[ibl].scales_h;
        const uint8_t *qs = x[ibl].qs;
        const int8_t *q8 = y[ibl].qs;
        for (int ib = 0; ib < QK_K / 32; ib += 2) {
            const uint8_t ls1 = (uint8_t)((x[ibl].scales_l[ib / 2] & 0xf) | ((h << 4) & 0x30));
            const uint8_t ls2 = (uint8_t)((x[ibl].scales_l[ib / 2] >> 4) | ((h << 2) & 0x30));
            h >>= 4;
            const float d1 = d4d8 * (ls1 - 32), d2 = d4d8 * (ls2 - 32);
            for (int half = 0; half < 2; half++, qs += 16, q8 += 32) {
                int s1 = 0, s2 = 0;
                for (int j = 0; j < 16; j++) {
                    s1 += q8[j] * kvq_iq4nl_values[qs[j] & 0xf];
                    s2 += q8[j + 16] * kvq_iq4nl_values[qs[j] >> 4];
                }
                sumf += (half ? d2 : d1) * (s1 + s2);
            }
        }
    }
    return sumf;
}

float kvq_vec_dot_scalar(uint32_t type, int64_t n, const void *w, const void *xq) {
    const kvq_type_traits *t = kvq_type_traits_of(type);
    if (!t->quantized || !t->block_elems || n % t->block_elems) return 0.0f;
    const int64_t nb = n / t->block_elems;
    switch (type) {
    case GGML_TYPE_Q4_0: return dot_q4_0_q8_0(nb, w, xq);
    case GGML_TYPE_Q4_1: return dot_q4_1_q8_1(nb, w, xq);
    case GGML_TYPE_Q5_0: return dot_q5_0_q8_0(nb, w, xq);
    case GGML_TYPE_Q5_1: return dot_q5_1_q8_1(nb, w, xq);
    case GGML_TYPE_Q8_0: return dot_q8_0_q8_0(nb, w, xq);
    case GGML_TYPE_IQ4_NL: return dot_iq4_nl_q8_0(nb, w, xq);
    case GGML_TYPE_Q2_K: return dot_q2_K_q8_K(nb, w, xq);
    case GGML_TYPE_Q3_K: return dot_q3_K_q8_K(nb, w, xq);
    case GGML_TYPE_Q4_K: return dot_q45_K(nb, w, sizeof(block_q4_K), false, xq);
    case GGML_TYPE_Q5_K: return dot_q45_K(nb, w, sizeof(block_q5_K), true, xq);
    case GGML_TYPE_Q6_K: return dot_q6_K_q8_K(nb, w, xq);
    case GGML_TYPE_IQ4_XS: return dot_iq4_xs_q8_K(nb, w, xq);
    default: return 0.0f;
    }
}

void kvq_quantize_activations_scalar(uint32_t vec_dot_type, const float *x, void *xq, int64_t n) {
    kvq_quantize_row_ref(vec_dot_type, x, xq, n);
}
