/* Dequantization of GGUF block-quantized rows to float32 / bfloat16,
 * written once and compiled per instruction set (the loops vectorise to the
 * width the file is compiled for):
 *   quant_deq_scalar.c      plain C (any CPU)
 *   quant_deq_avx2.c        AVX2 + F16C
 *   quant_deq_avx512.c      AVX-512
 *   quant_deq_avx512bf16.c  AVX-512 + AVX512-BF16: Q8_0 and Q4_K straight
 *                           to bf16, the other types' floats converted with
 *                           vcvtne2ps2bf16 (KVQ_DEQ_BF16)
 * The including file defines KVQ_DEQ_FN(name). Every file is compiled with
 * -ffp-contract=off and the expressions keep ggml's operation order, so
 * every copy gives ggml's bits (tests/data/quant/). Prefill converts whole
 * weight panels here, which is why the wide copies exist. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "format/gguf.h"
#include "kernels/fp16.h"
#include "kernels/quant.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_deq.h"

#if defined(__F16C__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(KVQ_DEQ_WANT_BF16) && defined(__AVX512F__) && defined(__AVX512BF16__)
#define KVQ_DEQ_BF16 1
#endif

#ifdef __F16C__
/* vcvtph2ps converts exactly, as kvk_f16_to_f32 does. */
static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
#else
static inline float h2f(uint16_t h) { return kvk_f16_to_f32(h); }
#endif

/* One block to floats, in ggml's element order. */
static void deq_q4_0(const void *vb, float *y) {
    const block_q4_0 *b = vb;
    const float d = h2f(b->d);
    for (int j = 0; j < QK4_0 / 2; j++) {
        y[j] = ((b->qs[j] & 0x0F) - 8) * d;
        y[j + QK4_0 / 2] = ((b->qs[j] >> 4) - 8) * d;
    }
}

static void deq_q4_1(const void *vb, float *y) {
    const block_q4_1 *b = vb;
    const float d = h2f(b->d), m = h2f(b->m);
    for (int j = 0; j < QK4_1 / 2; j++) {
        y[j] = (b->qs[j] & 0x0F) * d + m;
        y[j + QK4_1 / 2] = (b->qs[j] >> 4) * d + m;
    }
}

static void deq_q5_0(const void *vb, float *y) {
    const block_q5_0 *b = vb;
    const float d = h2f(b->d);
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    for (int j = 0; j < QK5_0 / 2; j++) {
        const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
        y[j] = (((b->qs[j] & 0x0F) | h0) - 16) * d;
        y[j + QK5_0 / 2] = (((b->qs[j] >> 4) | h1) - 16) * d;
    }
}

static void deq_q5_1(const void *vb, float *y) {
    const block_q5_1 *b = vb;
    const float d = h2f(b->d), m = h2f(b->m);
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    for (int j = 0; j < QK5_1 / 2; j++) {
        const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
        y[j] = ((b->qs[j] & 0x0F) | h0) * d + m;
        y[j + QK5_1 / 2] = ((b->qs[j] >> 4) | h1) * d + m;
    }
}

static void deq_q8_0(const void *vb, float *y) {
    const block_q8_0 *b = vb;
    const float d = h2f(b->d);
    for (int j = 0; j < QK8_0; j++) y[j] = b->qs[j] * d;
}

static void deq_q8_1(const void *vb, float *y) {
    const block_q8_1 *b = vb;
    const float d = h2f(b->d);
    for (int j = 0; j < QK8_1; j++) y[j] = b->qs[j] * d;
}

static void deq_q2_K(const void *vb, float *y) {
    const block_q2_K *b = vb;
    const float d = h2f(b->d), min = h2f(b->dmin);
    const uint8_t *q = b->qs;
    int is = 0;
    for (int n = 0; n < QK_K; n += 128) {
        for (int shift = 0; shift < 8; shift += 2) {
            for (int half = 0; half < 2; half++) {
                const uint8_t sc = b->scales[is++];
                const float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                for (int l = 0; l < 16; l++) *y++ = dl * ((q[l + 16 * half] >> shift) & 3) - ml;
            }
        }
        q += 32;
    }
}

static void deq_q3_K(const void *vb, float *y) {
    const block_q3_K *b = vb;
    const float d_all = h2f(b->d);
    int8_t sc[16];
    kvq_q3k_scales(b->scales, sc);
    const uint8_t *q = b->qs;
    uint8_t m = 1;
    int is = 0;
    for (int n = 0; n < QK_K; n += 128) {
        for (int shift = 0; shift < 8; shift += 2) {
            for (int half = 0; half < 2; half++) {
                const float dl = d_all * (sc[is++] - 32);
                for (int l = 16 * half; l < 16 * half + 16; l++)
                    *y++ = dl * (((q[l] >> shift) & 3) - ((b->hmask[l] & m) ? 0 : 4));
            }
            m <<= 1;
        }
        q += 32;
    }
}

static void deq_q4_K(const void *vb, float *y) {
    const block_q4_K *b = vb;
    const float d = h2f(b->d), min = h2f(b->dmin);
    const uint8_t *q = b->qs;
    for (int j = 0, is = 0; j < QK_K; j += 64, is += 2) {
        uint8_t sc, m;
        kvq_scale_min_k4(is, b->scales, &sc, &m);
        const float d1 = d * sc, m1 = min * m;
        kvq_scale_min_k4(is + 1, b->scales, &sc, &m);
        const float d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        q += 32;
    }
}

static void deq_q5_K(const void *vb, float *y) {
    const block_q5_K *b = vb;
    const float d = h2f(b->d), min = h2f(b->dmin);
    const uint8_t *ql = b->qs, *qh = b->qh;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < QK_K; j += 64, is += 2) {
        uint8_t sc, m;
        kvq_scale_min_k4(is, b->scales, &sc, &m);
        const float d1 = d * sc, m1 = min * m;
        kvq_scale_min_k4(is + 1, b->scales, &sc, &m);
        const float d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        ql += 32;
        u1 <<= 2;
        u2 <<= 2;
    }
}

static void deq_q6_K(const void *vb, float *y) {
    const block_q6_K *b = vb;
    const float d = h2f(b->d);
    const uint8_t *ql = b->ql, *qh = b->qh;
    const int8_t *sc = b->scales;
    for (int n = 0; n < QK_K; n += 128) {
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

static void deq_q8_K(const void *vb, float *y) {
    const block_q8_K *b = vb;
    for (int j = 0; j < QK_K; j++) y[j] = b->d * b->qs[j];
}

static void deq_iq4_nl(const void *vb, float *y) {
    const block_iq4_nl *b = vb;
    const float d = h2f(b->d);
    for (int j = 0; j < QK4_NL / 2; j++) {
        y[j] = d * kvq_iq4nl_values[b->qs[j] & 0xf];
        y[j + QK4_NL / 2] = d * kvq_iq4nl_values[b->qs[j] >> 4];
    }
}

static void deq_iq4_xs(const void *vb, float *y) {
    const block_iq4_xs *b = vb;
    const float d = h2f(b->d);
    const uint8_t *qs = b->qs;
    for (int ib = 0; ib < QK_K / 32; ib++) {
        const int ls = ((b->scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((b->scales_h >> 2 * ib) & 3) << 4);
        const float dl = d * (ls - 32);
        for (int j = 0; j < 16; j++) {
            y[j] = dl * kvq_iq4nl_values[qs[j] & 0xf];
            y[j + 16] = dl * kvq_iq4nl_values[qs[j] >> 4];
        }
        y += 32;
        qs += 16;
    }
}

static void deq_f32(const void *vb, float *y) { memcpy(y, vb, 4); }
static void deq_f16(const void *vb, float *y) {
    uint16_t h;
    memcpy(&h, vb, 2);
    *y = h2f(h);
}
static void deq_bf16(const void *vb, float *y) {
    uint16_t h;
    memcpy(&h, vb, 2);
    *y = kvk_bf16_to_f32(h);
}

typedef void (*deq_fn)(const void *block, float *y);

static deq_fn deq_of(uint32_t type) {
    switch (type) {
    case GGML_TYPE_F32: return deq_f32;
    case GGML_TYPE_F16: return deq_f16;
    case GGML_TYPE_BF16: return deq_bf16;
    case GGML_TYPE_Q4_0: return deq_q4_0;
    case GGML_TYPE_Q4_1: return deq_q4_1;
    case GGML_TYPE_Q5_0: return deq_q5_0;
    case GGML_TYPE_Q5_1: return deq_q5_1;
    case GGML_TYPE_Q8_0: return deq_q8_0;
    case GGML_TYPE_Q8_1: return deq_q8_1;
    case GGML_TYPE_Q2_K: return deq_q2_K;
    case GGML_TYPE_Q3_K: return deq_q3_K;
    case GGML_TYPE_Q4_K: return deq_q4_K;
    case GGML_TYPE_Q5_K: return deq_q5_K;
    case GGML_TYPE_Q6_K: return deq_q6_K;
    case GGML_TYPE_Q8_K: return deq_q8_K;
    case GGML_TYPE_IQ4_NL: return deq_iq4_nl;
    case GGML_TYPE_IQ4_XS: return deq_iq4_xs;
    default: return NULL;
    }
}

bool KVQ_DEQ_FN(kvq_deq_known)(uint32_t type) { return deq_of(type) != NULL; }

void KVQ_DEQ_FN(kvq_deq_rows_f32)(uint32_t type, const void *src, float *dst, int64_t rows,
                                  int64_t n) {
    deq_fn f = deq_of(type);
    const kvq_type_traits *t = kvq_type_traits_of(type);
    if (!f || n % t->block_elems) return;
    if (type == GGML_TYPE_F32) {
        memcpy(dst, src, (size_t)(rows * n) * sizeof(float));
        return;
    }
    const int64_t nb = rows * (n / t->block_elems);
    const uint8_t *s = src;
    for (int64_t i = 0; i < nb; i++) f(s + (size_t)i * t->block_bytes, dst + i * t->block_elems);
}

#ifdef KVQ_DEQ_BF16
/* Prefill dequantizes every weight panel to bf16 before its product: these
 * paths give the same bits as the reference block then kvk_f32_to_bf16
 * (int -> float is exact, one multiply or a multiply then a subtraction
 * rounded separately as in ggml, vcvtne2ps2bf16 rounds to nearest even and
 * quiets NaN as kvk_f32_to_bf16 does), without the float round trip. */
static inline void store_bf16x32(uint16_t *dst, __m512 lo, __m512 hi) {
    _mm512_storeu_si512((void *)dst, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

static void f32_to_bf16_vec(uint16_t *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) store_bf16x32(dst + i, _mm512_loadu_ps(src + i), _mm512_loadu_ps(src + i + 16));
    for (; i < n; i++) dst[i] = kvk_f32_to_bf16(src[i]);
}

static void deq_bf16_q8_0(const block_q8_0 *b, int64_t nb, uint16_t *dst) {
    for (int64_t i = 0; i < nb; i++, dst += QK8_0) {
        const __m512 d = _mm512_set1_ps(h2f(b[i].d));
        const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const void *)b[i].qs)));
        const __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const void *)(b[i].qs + 16))));
        store_bf16x32(dst, _mm512_mul_ps(lo, d), _mm512_mul_ps(hi, d));
    }
}

static void deq_bf16_q4_K(const block_q4_K *b, int64_t nb, uint16_t *dst) {
    const __m128i low4 = _mm_set1_epi8(0x0F);
    for (int64_t i = 0; i < nb; i++) {
        const float d = h2f(b[i].d), min = h2f(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, q += 32) {
            uint8_t sc, m;
            kvq_scale_min_k4(is, b[i].scales, &sc, &m);
            const __m512 d1 = _mm512_set1_ps(d * sc), m1 = _mm512_set1_ps(min * m);
            kvq_scale_min_k4(is + 1, b[i].scales, &sc, &m);
            const __m512 d2 = _mm512_set1_ps(d * sc), m2 = _mm512_set1_ps(min * m);
            for (int h = 0; h < 32; h += 16) {
                const __m128i v = _mm_loadu_si128((const void *)(q + h));
                const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(v, low4)));
                const __m512 hi =
                    _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(v, 4), low4)));
                const __m512 a = _mm512_sub_ps(_mm512_mul_ps(d1, lo), m1);
                const __m512 c = _mm512_sub_ps(_mm512_mul_ps(d2, hi), m2);
                /* elements j + h .. + 16 take the low nibbles, j + 32 + h .. the high ones */
                _mm256_storeu_si256((void *)(dst + j + h), (__m256i)_mm512_cvtneps_pbh(a));
                _mm256_storeu_si256((void *)(dst + j + 32 + h), (__m256i)_mm512_cvtneps_pbh(c));
            }
        }
        dst += QK_K;
    }
}
#endif

void KVQ_DEQ_FN(kvq_deq_rows_bf16)(uint32_t type, const void *src, uint16_t *dst, int64_t rows,
                                   int64_t n) {
    deq_fn f = deq_of(type);
    const kvq_type_traits *t = kvq_type_traits_of(type);
    if (!f || n % t->block_elems) return;
    if (type == GGML_TYPE_BF16) {
        memcpy(dst, src, (size_t)(rows * n) * sizeof(uint16_t));
        return;
    }
    const int be = t->block_elems;
    const int64_t nb = rows * (n / be);
#ifdef KVQ_DEQ_BF16
    if (type == GGML_TYPE_Q8_0) {
        deq_bf16_q8_0(src, nb, dst);
        return;
    }
    if (type == GGML_TYPE_Q4_K) {
        deq_bf16_q4_K(src, nb, dst);
        return;
    }
#endif
    /* Whole blocks through a small float buffer (QK_K elements at most). */
    enum { CHUNK = 1024 };
    float buf[CHUNK];
    const int per = be >= CHUNK ? 1 : CHUNK / be;
    const uint8_t *s = src;
    for (int64_t i = 0; i < nb; i += per) {
        const int cnt = nb - i < per ? (int)(nb - i) : per;
        for (int c = 0; c < cnt; c++) f(s + (size_t)(i + c) * t->block_bytes, buf + c * be);
#ifdef KVQ_DEQ_BF16
        f32_to_bf16_vec(dst + i * be, buf, (int64_t)cnt * be);
#else
        for (int e = 0; e < cnt * be; e++) dst[i * be + e] = kvk_f32_to_bf16(buf[e]);
#endif
    }
}

