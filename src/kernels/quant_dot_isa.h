/* Integer dot products of GGUF block-quantized weight rows with activations
 * quantized on the fly (Q8_0 / Q8_1 / Q8_K), and that quantization, written
 * once with 256-bit vectors and compiled per instruction set:
 *   quant_dot_avx2.c        AVX2: u8 x s8 products with vpmaddubsw + vpmaddwd
 *   quant_dot_avx512.c      the same code with AVX-512's 32 registers
 *   quant_dot_avx512vnni.c  vpdpbusd (one instruction for the u8 x s8 dot)
 * The including file defines KVQD_FN(name) and, for VNNI, KVQD_VNNI.
 *
 * Every block's integer sum is exact (the products and their sums fit the
 * 16- and 32-bit lanes they are formed in, see each kernel); only the float
 * accumulation of the blocks' scaled sums differs in order from the scalar
 * reference, so results agree with it to float rounding.
 *
 * Block layouts are GGUF's (ggml-common.h); the element order inside blocks
 * is the one dequantization defines (see quant.c). */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "format/gguf.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_dot.h"

/* ---- primitives ------------------------------------------------------- */

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

/* Per 32-bit lane: acc + sum of four u8 x s8 products. The unsigned operand
 * is < 128 wherever this is used, so vpmaddubsw's 16-bit pair sums cannot
 * saturate (2 * 127 * 128 < 32768) and both variants give the same sums. */
static inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#ifdef KVQD_VNNI
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    const __m256i p16 = _mm256_maddubs_epi16(u, s);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
#endif
}

/* Signed x signed: |w| times y with w's sign (w, y in [-127, 127]). */
static inline __m256i dot_s8s8(__m256i acc, __m256i w, __m256i y) {
    return dot_u8s8(acc, _mm256_sign_epi8(w, w), _mm256_sign_epi8(y, w));
}

/* Per 32-bit lane: (u0 s0 + u1 s1) * c0 + (u2 s2 + u3 s3) * c1 for the
 * 16-bit scales c in scale16 (vpmaddubsw then vpmaddwd; on VNNI too, where
 * it is as short as vpdpbusd followed by a 32-bit multiply). */
static inline __m256i dot_u8s8_scaled(__m256i u, __m256i s, __m256i scale16) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale16);
}

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static inline __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* 16 bytes of nibbles to 32 bytes: low nibbles (elements 0..15) in the low
 * half, high nibbles (elements 16..31) in the high half. */
static inline __m256i nibbles32(const uint8_t *p) {
    /* Both halves hold the 16 bytes; the high half shifted right by 4. */
    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
    const __m256i sh = _mm256_srlv_epi32(q, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
    return _mm256_and_si256(sh, _mm256_set1_epi8(0x0f));
}

/* 32 bits to 32 bytes: byte i is 0xff where bit i is set. */
static inline __m256i bits32(const uint8_t *p) {
    uint32_t b;
    memcpy(&b, p, 4);
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)b),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i bit = _mm256_set1_epi64x((int64_t)0x8040201008040201ull);
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

/* ---- 32-element blocks against Q8_0 / Q8_1 --------------------------- */

/* Blocks alternate between two accumulators, so that consecutive blocks'
 * multiply-adds do not wait for each other. BLOCK(i, acc) returns acc plus
 * block i's scaled sum. */
#define SUM_BLOCKS(nb, BLOCK)                                       \
    do {                                                            \
        __m256 acc0_ = _mm256_setzero_ps(), acc1_ = acc0_;          \
        int64_t i_ = 0;                                             \
        for (; i_ + 1 < (nb); i_ += 2) {                            \
            acc0_ = BLOCK(i_, acc0_);                               \
            acc1_ = BLOCK(i_ + 1, acc1_);                           \
        }                                                           \
        if (i_ < (nb)) acc0_ = BLOCK(i_, acc0_);                    \
        return hsum_ps(_mm256_add_ps(acc0_, acc1_));                \
    } while (0)

static inline __m256 scaled(__m256i isum, float d, __m256 acc) {
    return _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc);
}

static inline __m256 blk_q4_0(const block_q4_0 *w, const block_q8_0 *x, __m256 acc) {
    const __m256i q = _mm256_sub_epi8(nibbles32(w->qs), _mm256_set1_epi8(8));
    return scaled(dot_s8s8(_mm256_setzero_si256(), q, load256(x->qs)), h2f(w->d) * h2f(x->d), acc);
}
static float dot_q4_0(int64_t n, const void *vw, const void *vx) {
    const block_q4_0 *w = vw;
    const block_q8_0 *x = vx;
#define B(i, acc) blk_q4_0(&w[i], &x[i], acc)
    SUM_BLOCKS(n / 32, B);
#undef B
}

/* Q4_1 / Q5_1: the min times the activations' sum (s = d * sum q) joins
 * the accumulator as lane 0 of a vector. */
static inline __m256 with_min(__m256 acc, float m, float s) {
    return _mm256_add_ps(acc, _mm256_setr_ps(m * s, 0, 0, 0, 0, 0, 0, 0));
}

static inline __m256 blk_q4_1(const block_q4_1 *w, const block_q8_1 *x, __m256 acc) {
    const __m256i p = dot_u8s8(_mm256_setzero_si256(), nibbles32(w->qs), load256(x->qs));
    return with_min(scaled(p, h2f(w->d) * h2f(x->d), acc), h2f(w->m), h2f(x->s));
}
static float dot_q4_1(int64_t n, const void *vw, const void *vx) {
    const block_q4_1 *w = vw;
    const block_q8_1 *x = vx;
#define B(i, acc) blk_q4_1(&w[i], &x[i], acc)
    SUM_BLOCKS(n / 32, B);
#undef B
}

static inline __m256 blk_q5_0(const block_q5_0 *w, const block_q8_0 *x, __m256 acc) {
    /* (q | h << 4) - 16 = q - (h ? 0 : 16) */
#ifdef __AVX512BW__
    /* The 32 high bits are a byte mask as they are. */
    uint32_t h;
    memcpy(&h, w->qh, 4);
    const __m256i lo = nibbles32(w->qs);
    const __m256i q = _mm256_mask_sub_epi8(lo, (__mmask32)~h, lo, _mm256_set1_epi8(16));
#else
    const __m256i hi = _mm256_andnot_si256(bits32(w->qh), _mm256_set1_epi8(16));
    const __m256i q = _mm256_sub_epi8(nibbles32(w->qs), hi);
#endif
    return scaled(dot_s8s8(_mm256_setzero_si256(), q, load256(x->qs)), h2f(w->d) * h2f(x->d), acc);
}
static float dot_q5_0(int64_t n, const void *vw, const void *vx) {
    const block_q5_0 *w = vw;
    const block_q8_0 *x = vx;
#define B(i, acc) blk_q5_0(&w[i], &x[i], acc)
    SUM_BLOCKS(n / 32, B);
#undef B
}

static inline __m256 blk_q5_1(const block_q5_1 *w, const block_q8_1 *x, __m256 acc) {
#ifdef __AVX512BW__
    uint32_t h;
    memcpy(&h, w->qh, 4);
    const __m256i lo = nibbles32(w->qs);
    const __m256i q = _mm256_mask_add_epi8(lo, (__mmask32)h, lo, _mm256_set1_epi8(16));
#else
    const __m256i hi = _mm256_and_si256(bits32(w->qh), _mm256_set1_epi8(16));
    const __m256i q = _mm256_or_si256(nibbles32(w->qs), hi);
#endif
    const __m256i p = dot_u8s8(_mm256_setzero_si256(), q, load256(x->qs));
    return with_min(scaled(p, h2f(w->d) * h2f(x->d), acc), h2f(w->m), h2f(x->s));
}
static float dot_q5_1(int64_t n, const void *vw, const void *vx) {
    const block_q5_1 *w = vw;
    const block_q8_1 *x = vx;
#define B(i, acc) blk_q5_1(&w[i], &x[i], acc)
    SUM_BLOCKS(n / 32, B);
#undef B
}

/* Weights in [-127, 127] (ggml's quantizers never write -128; a -128
 * would still be exact: 2 * 128 * 127 < 32768). */
static inline __m256 blk_q8_0(const block_q8_0 *w, const block_q8_0 *x, __m256 acc) {
    const __m256i p = dot_s8s8(_mm256_setzero_si256(), load256(w->qs), load256(x->qs));
    return scaled(p, h2f(w->d) * h2f(x->d), acc);
}
static float dot_q8_0(int64_t n, const void *vw, const void *vx) {
    const block_q8_0 *w = vw;
    const block_q8_0 *x = vx;
#define B(i, acc) blk_q8_0(&w[i], &x[i], acc)
    SUM_BLOCKS(n / 32, B);
#undef B
}

static const int8_t iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                        1,    13,   25,  38,  53,  69,  89,  113};

static inline __m256i iq4nl_lut(void) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)iq4nl_values));
}

static inline __m256 blk_iq4_nl(const block_iq4_nl *w, const block_q8_0 *x, __m256i lut, __m256 acc) {
    const __m256i q = _mm256_shuffle_epi8(lut, nibbles32(w->qs));
    return scaled(dot_s8s8(_mm256_setzero_si256(), q, load256(x->qs)), h2f(w->d) * h2f(x->d), acc);
}
static float dot_iq4_nl(int64_t n, const void *vw, const void *vx) {
    const block_iq4_nl *w = vw;
    const block_q8_0 *x = vx;
    const __m256i lut = iq4nl_lut();
#define B(i, acc) blk_iq4_nl(&w[i], &x[i], lut, acc)
    SUM_BLOCKS(n / 32, B);
#undef B
}

/* ---- 256-element super-blocks against Q8_K ---------------------------- */

/* pshufb masks: k16[j] repeats the 16-bit lane j of a vector of 8 int16
 * (a scale per 32 elements); kpair16[g] repeats lane 2g in the low half
 * and lane 2g+1 in the high half (a scale per 16 elements). */
static const uint8_t k16[8][32] = {
#define R(j) {2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, \
              2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1, 2*j, 2*j+1}
    R(0), R(1), R(2), R(3), R(4), R(5), R(6), R(7)
#undef R
};
static const uint8_t kpair16[4][32] = {
#define R(g) {4*g, 4*g+1, 4*g, 4*g+1, 4*g, 4*g+1, 4*g, 4*g+1, 4*g, 4*g+1, 4*g, 4*g+1, 4*g, 4*g+1, 4*g, 4*g+1, \
              4*g+2, 4*g+3, 4*g+2, 4*g+3, 4*g+2, 4*g+3, 4*g+2, 4*g+3, 4*g+2, 4*g+3, 4*g+2, 4*g+3, 4*g+2, 4*g+3, 4*g+2, 4*g+3}
    R(0), R(1), R(2), R(3)
#undef R
};

/* 16 int8 scales (one per 16 elements) prepared for scale_pair: both
 * 128-bit halves of half[0] hold scales 0..7 as int16, of half[1] 8..15. */
typedef struct {
    __m256i half[2];
} scales16;

static inline scales16 scales16_of(__m128i sc8) {
    const __m256i s = _mm256_cvtepi8_epi16(sc8);
    scales16 r = {{_mm256_permute2x128_si256(s, s, 0x00), _mm256_permute2x128_si256(s, s, 0x11)}};
    return r;
}

/* Scales of sub-blocks 2g (low half) and 2g+1 (high half), g in 0..7. */
static inline __m256i scale_pair(const scales16 *s, int g) {
    return _mm256_shuffle_epi8(s->half[g / 4], _mm256_loadu_si256((const __m256i *)kpair16[g % 4]));
}

/* Scale j of 8 int16 scales (both 128-bit halves holding all 8) in every
 * 16-bit lane. */
static inline __m256i scale_one(__m256i sc16x2, int j) {
    return _mm256_shuffle_epi8(sc16x2, _mm256_loadu_si256((const __m256i *)k16[j]));
}

static inline __m256 cvt(__m256i v) { return _mm256_cvtepi32_ps(v); }

/* Q2_K: w = d * sc * q - dmin * m, q in 0..3, 16 sub-blocks of 16.
 * |sum| <= 256 * 3 * 127 * 15 per super-block: exact in 32 bits. */
static float dot_q2_k(int64_t n, const void *vw, const void *vx) {
    const block_q2_K *w = vw;
    const block_q8_K *x = vx;
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++) {
        const __m128i raw = _mm_loadu_si128((const __m128i *)w[i].scales);
        const __m128i sc8 = _mm_and_si128(raw, _mm_set1_epi8(0xf));
        const scales16 scs = scales16_of(sc8);
        const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0xf)));
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) {
            const __m256i bits = load256(w[i].qs + 32 * c);
            for (int j = 0; j < 4; j++) {
                const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3);
                isum = _mm256_add_epi32(isum, dot_u8s8_scaled(q, load256(x[i].qs + 128 * c + 32 * j),
                                                              scale_pair(&scs, 4 * c + j)));
            }
        }
        const float dx = x[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(w[i].d)), cvt(isum), acc);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(w[i].dmin)),
                               cvt(_mm256_madd_epi16(mn16, load256(x[i].bsums))), accm);
    }
    return hsum_ps(_mm256_sub_ps(acc, accm));
}

/* Q3_K: w = d * (sc - 32) * (q - 4), q = 2 low bits | high bit << 2 in
 * 0..7: the dot is sum sc' * (q . y) - 4 * sum sc' * bsum. */
static float dot_q3_k(int64_t n, const void *vw, const void *vx) {
    const block_q3_K *w = vw;
    const block_q8_K *x = vx;
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++) {
        uint32_t a[3], s32[4];
        memcpy(a, w[i].scales, 12);
        const uint32_t k1 = 0x03030303, k2 = 0x0f0f0f0f;
        s32[0] = (a[0] & k2) | (((a[2] >> 0) & k1) << 4);
        s32[1] = (a[1] & k2) | (((a[2] >> 2) & k1) << 4);
        s32[2] = ((a[0] >> 4) & k2) | (((a[2] >> 4) & k1) << 4);
        s32[3] = ((a[1] >> 4) & k2) | (((a[2] >> 6) & k1) << 4);
        /* From registers, not a 128-bit load of the four stores just made
         * (a store-forwarding stall per block). */
        const __m128i sc8 = _mm_sub_epi8(_mm_set_epi32((int)s32[3], (int)s32[2], (int)s32[1], (int)s32[0]),
                                         _mm_set1_epi8(32));
        const scales16 scs = scales16_of(sc8);
        const __m256i hm = load256(w[i].hmask);
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) {
            const __m256i bits = load256(w[i].qs + 32 * c);
            for (int j = 0; j < 4; j++) {
                const __m256i h = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * c + j), one);
                const __m256i q = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3),
                                                  _mm256_slli_epi16(h, 2));
                isum = _mm256_add_epi32(isum, dot_u8s8_scaled(q, load256(x[i].qs + 128 * c + 32 * j),
                                                              scale_pair(&scs, 4 * c + j)));
            }
        }
        const __m256i corr = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), load256(x[i].bsums));
        isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(corr, 2));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(w[i].d)), cvt(isum), acc);
    }
    return hsum_ps(acc);
}

/* The 6-bit scales (bytes 0-7) and mins (bytes 8-15) of Q4_K / Q5_K. */
static inline __m128i scales_mins_k4(const uint8_t *q) {
    uint32_t a[3], u[4];
    memcpy(a, q, 12);
    const uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
    u[0] = a[0] & k1;
    u[1] = (a[2] & k2) | (((a[0] >> 6) & k3) << 4);
    u[2] = a[1] & k1;
    u[3] = ((a[2] >> 4) & k2) | (((a[1] >> 6) & k3) << 4);
    return _mm_set_epi32((int)u[3], (int)u[2], (int)u[1], (int)u[0]); /* as dot_q3_k's scales */
}

/* Q4_K / Q5_K body: w = d * sc * q - dmin * m with 8 sub-blocks of 32
 * (chunk c: the low nibbles of 32 bytes, then their high nibbles; Q5_K
 * adds bit 2c / 2c+1 of qh as bit 4). |sum| < 256 * 31 * 127 * 63. */
static inline float dot_k45(int64_t n, const uint8_t *base, size_t stride, bool five,
                            const block_q8_K *x) {
    const __m256i m4 = _mm256_set1_epi8(0xf), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++) {
        const uint8_t *blk = base + (size_t)i * stride;
        uint16_t d, dmin;
        memcpy(&d, blk, 2);
        memcpy(&dmin, blk + 2, 2);
        const __m128i sm = scales_mins_k4(blk + 4);
        const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
        const __m128i mn16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
        const __m256i mn_dup = _mm256_set_m128i(_mm_unpackhi_epi16(mn16, mn16), _mm_unpacklo_epi16(mn16, mn16));
        const uint8_t *qs = blk + (five ? 48 : 16);
        const __m256i hb = five ? load256(blk + 16) : _mm256_setzero_si256();
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i bits = load256(qs + 32 * c);
            __m256i lo = _mm256_and_si256(bits, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            if (five) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * c), one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * c + 1), one), 4));
            }
            isum = _mm256_add_epi32(isum, dot_u8s8_scaled(lo, load256(x[i].qs + 64 * c), scale_one(sc16, 2 * c)));
            isum = _mm256_add_epi32(isum, dot_u8s8_scaled(hi, load256(x[i].qs + 64 * c + 32), scale_one(sc16, 2 * c + 1)));
        }
        const float dx = x[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(d)), cvt(isum), acc);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(dmin)), cvt(_mm256_madd_epi16(mn_dup, load256(x[i].bsums))),
                               accm);
    }
    return hsum_ps(_mm256_sub_ps(acc, accm));
}

static float dot_q4_k(int64_t n, const void *vw, const void *vx) {
    return dot_k45(n, vw, sizeof(block_q4_K), false, vx);
}

static float dot_q5_k(int64_t n, const void *vw, const void *vx) {
    return dot_k45(n, vw, sizeof(block_q5_K), true, vx);
}

/* Q6_K: w = d * sc * (q - 32), q = 4 low bits | 2 high bits << 4 in 0..63,
 * 16 sub-blocks of 16 with int8 scales: sum sc * (q . y) - 32 * sum sc *
 * bsum; |sum sc * (q . y)| <= 128 * 256 * 63 * 127 < 2^31. */
static float dot_q6_k(int64_t n, const void *vw, const void *vx) {
    const block_q6_K *w = vw;
    const block_q8_K *x = vx;
    const __m256i m4 = _mm256_set1_epi8(0xf), m2 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)w[i].scales);
        const scales16 scs = scales16_of(sc8);
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) {
            const __m256i l0 = load256(w[i].ql + 64 * c), l1 = load256(w[i].ql + 64 * c + 32);
            const __m256i h = load256(w[i].qh + 32 * c);
            const __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4)),
                _mm256_or_si256(_mm256_and_si256(l1, m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4)),
            };
            for (int j = 0; j < 4; j++)
                isum = _mm256_add_epi32(isum, dot_u8s8_scaled(q[j], load256(x[i].qs + 128 * c + 32 * j),
                                                              scale_pair(&scs, 4 * c + j)));
        }
        const __m256i corr = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), load256(x[i].bsums));
        isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(corr, 5));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(w[i].d)), cvt(isum), acc);
    }
    return hsum_ps(acc);
}

/* IQ4_XS: IQ4_NL's 16 values, 8 sub-blocks of 32 with 6-bit scales - 32. */
static float dot_iq4_xs(int64_t n, const void *vw, const void *vx) {
    const block_iq4_xs *w = vw;
    const block_q8_K *x = vx;
    const __m256i lut = iq4nl_lut();
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++) {
        __m256i isum = _mm256_setzero_si256();
        for (int b = 0; b < 8; b++) {
            const int ls = (((w[i].scales_l[b / 2] >> 4 * (b % 2)) & 0xf) |
                            (((w[i].scales_h >> 2 * b) & 3) << 4)) - 32;
            const __m256i q = _mm256_shuffle_epi8(lut, nibbles32(w[i].qs + 16 * b));
            const __m256i y = load256(x[i].qs + 32 * b);
            isum = _mm256_add_epi32(isum, dot_u8s8_scaled(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y, q),
                                                          _mm256_set1_epi16((int16_t)ls)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(w[i].d)), cvt(isum), acc);
    }
    return hsum_ps(acc);
}

/* ---- activation quantization ------------------------------------------ */

/* roundf (half away from zero), exactly: trunc, then one more step away
 * from zero when the dropped part is at least a half. */
static inline __m256i round_away(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_sub_ps(v, t);
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    const __m256 half = _mm256_cmp_ps(_mm256_andnot_ps(sign_mask, frac), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 step = _mm256_and_ps(half, _mm256_or_ps(_mm256_and_ps(v, sign_mask), _mm256_set1_ps(1.0f)));
    return _mm256_cvttps_epi32(_mm256_add_ps(t, step));
}

/* Four vectors of 8 int32 (each in int8 range) to 32 int8 in order. */
static inline __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    const __m256i abcd = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline float hmax_ps(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* One block of 32 as ggml's quantize_row_q8_0/1_ref; returns the sum of
 * the quants, *d_f32 the scale before its rounding to half. */
static inline int q8_block(const float *x, int8_t *qs, uint16_t *d_out, float *d_f32) {
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 v[4], m = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        m = _mm256_max_ps(m, _mm256_and_ps(v[k], absm));
    }
    const float amax = hmax_ps(m);
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    *d_out = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    *d_f32 = d;
    __m256i q[4];
    for (int k = 0; k < 4; k++) q[k] = round_away(_mm256_mul_ps(v[k], _mm256_set1_ps(id)));
    const __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    _mm256_storeu_si256((__m256i *)qs, pack32(q[0], q[1], q[2], q[3]));
    return hsum_epi32(s);
}

static void quantize_q8_0(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    float d;
    for (int64_t i = 0; i < n / 32; i++) q8_block(x + 32 * i, y[i].qs, &y[i].d, &d);
}

static void quantize_q8_1(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / 32; i++) {
        float d;
        const int sum = q8_block(x + 32 * i, y[i].qs, &y[i].d, &d);
        y[i].s = _cvtss_sh((float)sum * d, _MM_FROUND_TO_NEAREST_INT);
    }
}

/* As ggml's quantize_row_q8_K_ref: the scale comes from the first element
 * of largest magnitude, with its sign; rounding to nearest even. An all-zero
 * block gets d = 0 and zero quants and sums. */
static void quantize_q8_k(const float *x, void *vy, int64_t n) {
    block_q8_K *y = vy;
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < n / 256; i++, x += 256) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 256; k += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + k), absm));
        const float amax = hmax_ps(m);
        if (!(amax > 0)) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        int j = 0;
        while (fabsf(x[j]) != amax) j++;
        const float iscale = -127.f / x[j];
        const __m256 is = _mm256_set1_ps(iscale);
        const __m256i c127 = _mm256_set1_epi32(127);
        for (int k = 0; k < 256; k += 32) {
            __m256i q[4];
            for (int u = 0; u < 4; u++)
                q[u] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + k + 8 * u))),
                                        c127);
            const __m256i packed = pack32(q[0], q[1], q[2], q[3]);
            _mm256_storeu_si256((__m256i *)(y[i].qs + k), packed);
            /* Sums of 16: widen to 16 bits and add pairs twice. */
            const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), packed);
            const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
            int32_t l[8];
            _mm256_storeu_si256((__m256i *)l, s32);
            y[i].bsums[k / 16] = (int16_t)(l[0] + l[1] + l[2] + l[3]);
            y[i].bsums[k / 16 + 1] = (int16_t)(l[4] + l[5] + l[6] + l[7]);
        }
        y[i].d = 1 / iscale;
    }
}

/* ---- tables ----------------------------------------------------------- */

kvqd_dot_fn KVQD_FN(kvqd_dot)(uint32_t type) {
    switch (type) {
    case GGML_TYPE_Q4_0: return dot_q4_0;
    case GGML_TYPE_Q4_1: return dot_q4_1;
    case GGML_TYPE_Q5_0: return dot_q5_0;
    case GGML_TYPE_Q5_1: return dot_q5_1;
    case GGML_TYPE_Q8_0: return dot_q8_0;
    case GGML_TYPE_Q2_K: return dot_q2_k;
    case GGML_TYPE_Q3_K: return dot_q3_k;
    case GGML_TYPE_Q4_K: return dot_q4_k;
    case GGML_TYPE_Q5_K: return dot_q5_k;
    case GGML_TYPE_Q6_K: return dot_q6_k;
    case GGML_TYPE_IQ4_NL: return dot_iq4_nl;
    case GGML_TYPE_IQ4_XS: return dot_iq4_xs;
    default: return NULL;
    }
}

kvqd_quantize_fn KVQD_FN(kvqd_quantize)(uint32_t vec_dot_type) {
    switch (vec_dot_type) {
    case GGML_TYPE_Q8_0: return quantize_q8_0;
    case GGML_TYPE_Q8_1: return quantize_q8_1;
    case GGML_TYPE_Q8_K: return quantize_q8_k;
    default: return NULL;
    }
}
