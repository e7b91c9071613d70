/* The attention kernels, written once and compiled once per instruction set
 * (attention_scalar.c, attention_avx2.c, attention_avx512.c; the including
 * file defines KVA_FN and KVA_ISA_AVX2 or KVA_ISA_AVX512); attention.c
 * picks the variant kvcpu_current() chose. Each variant's results depend
 * on the inputs only (never on threads); variants differ in summation
 * order (AVX-512 vectorises over rows or keys, the others over the head
 * dimension), within the tests' float32 tolerances. */
#include "kernels/attention.h"
#include "kernels/attention_variants.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/fp16.h"

/* Two implementations of each pass, chosen by the instruction set:
 *  - AVX-512 (KVA_AVX512): blocks of 16 query rows vectorised over rows
 *    (prefill), or rows one at a time vectorised over keys (decode, fewer
 *    than MIN_ROWS_VEC rows), with a vectorised exp (see exp_le0).
 *  - portable: keys are visited in tiles of TILE columns. Each tile of K
 *    (and of V for the key score) is transposed once into [d][TILE] so that
 *    a query row's logits for the whole tile are computed as
 *    broadcast-multiply-adds along the keys, the transpose shared by every
 *    row of the call.
 * All loops run in a fixed order, so the results depend on the inputs only,
 * never on the caller's threading.
 *
 * K/V rows are stored as float32, f16 or bf16 (kvp_kv_type). The decode
 * paths (memory-bound) load half rows straight into registers and widen
 * them there (vcvtph2ps; bf16 by a 16-bit shift), so a step reads half the
 * bytes; the prefill paths (compute-bound, 16 query rows per key) widen
 * each tile of 16-64 keys once into an L1 buffer that all rows of the
 * block share. Widening is exact, so a half cache computes exactly what a
 * float32 cache holding the rounded rows would. */
#define TILE 64
#define MAX_D KVP_ATTN_MAX_HEAD_DIM
/* Below this many rows per call (decode) the transpose costs more than it
 * saves: logits are then plain dot products. */
#define MIN_ROWS_TRANSPOSED 8

#if defined(KVA_ISA_AVX512)
#define KVA_AVX512 1
#define KVA_F16C 1
#include <immintrin.h>
#elif defined(KVA_ISA_AVX2)
#define KVA_F16C 1
#include <immintrin.h>
#endif

/* Row j of a stream of d-wide rows of type t. */
static inline const void *kv_row(const void *base, size_t j, int d, kvp_kv_type t) {
    return (const char *)base + j * (size_t)d * kva_elem_size(t);
}

void KVA_FN(kva_load_rows)(float *dst, const void *src, size_t n, kvp_kv_type t) {
    if (t == KVP_KV_F32) {
        memcpy(dst, src, sizeof(float) * n);
        return;
    }
    const uint16_t *h = src;
    size_t i = 0;
#if defined(KVA_AVX512)
    for (; i + 16 <= n; i += 16) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(h + i));
        _mm512_storeu_ps(dst + i, t == KVP_KV_F16 ? _mm512_cvtph_ps(x)
                                                  : _mm512_castsi512_ps(_mm512_slli_epi32(
                                                        _mm512_cvtepu16_epi32(x), 16)));
    }
#elif defined(KVA_F16C)
    if (t == KVP_KV_F16)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
#endif
    if (t == KVP_KV_F16)
        for (; i < n; i++) dst[i] = kvk_f16_to_f32(h[i]);
    else
        for (; i < n; i++) dst[i] = kvk_bf16_to_f32(h[i]);
}

void KVA_FN(kva_store_rows)(void *dst, const float *src, size_t n, kvp_kv_type t) {
    if (t == KVP_KV_F32) {
        memcpy(dst, src, sizeof(float) * n);
        return;
    }
    uint16_t *h = dst;
    size_t i = 0;
    if (t == KVP_KV_BF16) {
        for (; i < n; i++) h[i] = kvk_f32_to_bf16(src[i]);
        return;
    }
#if defined(KVA_F16C)
    /* round to nearest even, as kvk_f32_to_f16 (NaN payloads aside) */
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; i < n; i++) h[i] = kvk_f32_to_f16(src[i]);
}

/* Rows [j0, j0 + n) as float32: the stream itself when it stores float32,
 * else widened into buf ([n][d], a tile: never the whole stream). */
static inline const float *rows_f32(const void *base, int j0, int n, int d, kvp_kv_type t,
                                    float *buf) {
    if (t == KVP_KV_F32) return (const float *)base + (size_t)j0 * d;
    KVA_FN(kva_load_rows)(buf, kv_row(base, (size_t)j0, d, t), (size_t)n * d, t);
    return buf;
}

static inline float dotf(const float *restrict a, const float *restrict b, int d) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int t = 0; t < d; t++) s += a[t] * b[t];
    return s;
}

/* z[t] = scale * q . k_(j0+t), straight from the row-major keys. */
static inline void direct_logits(const float *restrict q, const float *restrict k, int d,
                                 int nt, float scale, float *restrict z) {
    for (int t = 0; t < nt; t++) z[t] = scale * dotf(q, k + (size_t)t * d, d);
}

/* z[t] = scale * q . k_(j0+t) for t < nt, from the transposed tile kt. */
static inline void tile_logits(const float *restrict q, const float *restrict kt, int d,
                               int nt, float scale, float *restrict z) {
    float acc[TILE];
    for (int t = 0; t < TILE; t++) acc[t] = 0.0f;
    for (int u = 0; u < d; u++) {
        const float qu = q[u];
        const float *restrict row = kt + (size_t)u * TILE;
#pragma omp simd
        for (int t = 0; t < TILE; t++) acc[t] += qu * row[t];
    }
    for (int t = 0; t < nt; t++) z[t] = scale * acc[t];
}

static void transpose_tile(const float *src, int d, int nt, float *restrict dst) {
    for (int t = 0; t < nt; t++) {
        const float *s = src + (size_t)t * d;
        for (int u = 0; u < d; u++) dst[(size_t)u * TILE + t] = s[u];
    }
    for (int t = nt; t < TILE; t++)
        for (int u = 0; u < d; u++) dst[(size_t)u * TILE + t] = 0.0f;
}

#ifdef KVA_AVX512
#include "kernels/hsum.h"

/* 16 elements of a stored row as floats (lanes outside m: 0). t is a
 * constant wherever this is inlined, so the branches fold away. */
static inline __attribute__((always_inline)) __m512 ld16(const void *p, __mmask16 m,
                                                         const kvp_kv_type t) {
    if (t == KVP_KV_F32) return _mm512_maskz_loadu_ps(m, p);
    const __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if (t == KVP_KV_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static inline __attribute__((always_inline)) size_t esz_of(const kvp_kv_type t) {
    return t == KVP_KV_F32 ? sizeof(float) : sizeof(uint16_t);
}

/* One element of a stored row. */
static inline float elem_f32(const void *p, size_t i, const kvp_kv_type t) {
    if (t == KVP_KV_F32) return ((const float *)p)[i];
    const uint16_t h = ((const uint16_t *)p)[i];
    return t == KVP_KV_F16 ? kvk_f16_to_f32(h) : kvk_bf16_to_f32(h);
}

/* Prefill path: rows are vectorised instead of keys. A block of 16 query
 * rows is transposed once into [d][16], so the logits of one key for all 16
 * rows are d broadcast-FMAs (the key's elements are broadcast straight from
 * the row-major K: no K transpose), the online softmax (max, rescale, exp,
 * sum) runs on whole vectors of rows, and P.V accumulates into the
 * transposed output [d][16] with V's elements broadcast likewise. Every
 * loop runs in a fixed order, so results depend on the inputs only. */
#define RB 16 /* rows per block: one vector of floats */
#define KC 64 /* keys per online-softmax step */
#define MIN_ROWS_VEC 8

/* exp(x) for x <= 0 (Cephes expf: range reduction by ln2 with a two-part
 * constant, degree-5 polynomial; about 1 ulp). x below -104 (including
 * -inf and NaN) gives 0 or a denormal. */
static inline __m512 exp_le0(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 r2 = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* s[t] = q_rows . k_t (unscaled) for 16 consecutive keys at kb. */
static inline void block_logits16(const float *restrict qt, const float *restrict kb, int d,
                                  __m512 *restrict s) {
    __m512 acc[16];
    for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();
    for (int u = 0; u < d; u++) {
        const __m512 qu = _mm512_load_ps(qt + (size_t)u * RB);
        for (int t = 0; t < 16; t++)
            acc[t] = _mm512_fmadd_ps(qu, _mm512_set1_ps(kb[(size_t)t * d + u]), acc[t]);
    }
    for (int t = 0; t < 16; t++) s[t] = acc[t];
}

/* Rows j0..j0+n (n <= 16) of a K or V stream as float32 for block_logits16:
 * a float32 block of 16 in place, others widened into pad and zero-padded
 * to 16 rows (never read past the stream). */
static inline const float *block16_rows_f32(const void *base, int j0, int n, int d, kvp_kv_type type,
                                            float *restrict pad) {
    if (type == KVP_KV_F32 && n == 16) return (const float *)base + (size_t)j0 * d;
    if (n < 16) memset(pad, 0, sizeof(float) * 16 * (size_t)d);
    KVA_FN(kva_load_rows)(pad, kv_row(base, (size_t)j0, d, type), (size_t)n * d, type);
    return pad;
}

/* One online-softmax step of a block of 16 rows over the nk keys j0.. in
 * s[] (unscaled logits); lane r sees key j when j <= kvb + r. s[t] becomes
 * the weight exp(scale * s[t] - max) (0 where unseen), *m the running max,
 * *l = *l * c + the sum of the weights; returns c = exp(old max - new
 * max), the factor of the block's earlier output (0 on the first step). */
static inline __m512 block_softmax16(__m512 *restrict s, int nk, int j0, int kvb, float scale,
                                     __m512 *m, __m512 *l) {
    const __m512 vscale = _mm512_set1_ps(scale), ninf = _mm512_set1_ps(-INFINITY);
    __m512 cmax = *m;
    for (int t = 0; t < nk; t++) {
        __m512 z = _mm512_mul_ps(s[t], vscale);
        int lo = j0 + t - kvb; /* lanes below lo do not see this key */
        if (lo > 0) z = _mm512_mask_mov_ps(z, (__mmask16)(0xFFFFu >> (16 - lo)), ninf);
        s[t] = z;
        cmax = _mm512_max_ps(cmax, z);
    }
    const __m512 c = exp_le0(_mm512_sub_ps(*m, cmax)); /* 0 on the first step */
    *m = cmax;
    __m512 lsum = _mm512_setzero_ps();
    for (int t = 0; t < nk; t++) {
        __m512 z = s[t];
        __mmask16 seen = _mm512_cmp_ps_mask(z, ninf, _CMP_NEQ_OQ);
        __m512 w = _mm512_maskz_mov_ps(seen, exp_le0(_mm512_sub_ps(z, cmax)));
        s[t] = w;
        lsum = _mm512_add_ps(lsum, w);
    }
    *l = _mm512_fmadd_ps(*l, c, lsum);
    return c;
}

/* The end of a block of nr rows: row r of out = column r of the transposed
 * output ot [d][16] / l[r]; row_max and row_sum get the block's m and l. */
static inline void block_store_rows16(const float *ot, __m512 m, __m512 l, int nr, int d, float *out,
                                      size_t out_stride, float *row_max, float *row_sum) {
    _Alignas(64) float mm[RB], ll[RB];
    _mm512_store_ps(mm, m);
    _mm512_store_ps(ll, l);
    for (int r = 0; r < nr; r++) {
        float *o = out + (size_t)r * out_stride;
        const float inv = 1.0f / ll[r];
        for (int u = 0; u < d; u++) o[u] = ot[u * RB + r] * inv;
        row_max[r] = mm[r];
        row_sum[r] = ll[r];
    }
}

#ifdef KVA_BF16
/* The bf16 prefill tiles (compute type bf16, attention_avx512bf16.c only).
 * vdpbf16ps multiplies pairs of bf16 and adds both products to a float32
 * lane, so operands are laid out in pairs along the summed dimension:
 *   QK^T: q rows transposed into [d/2][16 rows] pairs (u, u+1), each key's
 *         pair broadcast from a bf16 row-major copy of the keys;
 *   PV:   the 16 rows' weights of keys (t, t+1) as one vector of pairs,
 *         each pair (v_t[u], v_t+1[u]) broadcast from a pair-packed copy
 *         of the chunk's values.
 * Queries, keys, values and the softmax weights of the PV product are
 * rounded to bf16 (nearest even); products are exact in float32 and summed
 * in float32. Keys are paired from chunk starts that are multiples of
 * KC (absolute stream indices), so every lane's sums are the same whatever
 * rows share its block. */
#define NBLK 4 /* row blocks that share one converted key/value chunk */

/* Lane i: bf16(lo[i]) | bf16(hi[i]) << 16 (a pair for vdpbf16ps). */
static inline __m512i pack_pairs(__m512 lo, __m512 hi) {
    const __m512i a = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
    const __m512i b = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi));
    return _mm512_or_si512(a, _mm512_slli_epi32(b, 16));
}

/* qt2[p*16 + r] = the pair (q_r[2p], q_r[2p+1]) in bf16, rows >= nr zero. */
static void q_pairs(const float *q, size_t q_stride, int nr, int d, uint32_t *restrict qt2) {
    for (int p = 0; p < d / 2; p++)
        for (int r = 0; r < RB; r++) {
            const float *qr = q + (size_t)r * q_stride + 2 * p;
            qt2[p * RB + r] = r < nr ? (uint32_t)kvk_f32_to_bf16(qr[0]) |
                                           (uint32_t)kvk_f32_to_bf16(qr[1]) << 16
                                     : 0u;
        }
}

/* Keys [j0, j0 + n) as bf16 rows of d into dst ([n16][d], n16 = n rounded
 * up to 16, the padding zero); a bf16 stream is read in place when n is a
 * multiple of 16. */
static const uint16_t *keys_bf16(const void *k, int j0, int n, int d, kvp_kv_type type,
                                 uint16_t *restrict dst) {
    const int n16 = (n + 15) & ~15;
    if (type == KVP_KV_BF16 && n == n16) return (const uint16_t *)kv_row(k, (size_t)j0, d, type);
    const size_t esz = esz_of(type);
    for (int t = 0; t < n; t++) {
        const char *row = kv_row(k, (size_t)(j0 + t), d, type);
        for (int u0 = 0; u0 < d; u0 += 16) {
            const __mmask16 m = d - u0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)(0xFFFFu >> (16 - (d - u0)));
            const __m512 x = type == KVP_KV_F32   ? _mm512_maskz_loadu_ps(m, row + u0 * esz)
                             : type == KVP_KV_F16 ? ld16(row + u0 * esz, m, KVP_KV_F16)
                                                  : ld16(row + u0 * esz, m, KVP_KV_BF16);
            _mm256_mask_storeu_epi16(dst + (size_t)t * d + u0, m, (__m256i)_mm512_cvtneps_pbh(x));
        }
    }
    memset(dst + (size_t)n * d, 0, sizeof(uint16_t) * (size_t)(n16 - n) * d);
    return dst;
}

/* vp[(t/2)*d + u] = the pair (v_t[u], v_t+1[u]) in bf16 for t < n (keys
 * j0 + t; a missing odd key pairs with zero). */
static void values_pairs(const void *v, int j0, int n, int d, kvp_kv_type type,
                         uint32_t *restrict vp) {
    const size_t esz = esz_of(type);
    for (int t = 0; t < n; t += 2) {
        const char *r0 = kv_row(v, (size_t)(j0 + t), d, type);
        const char *r1 = t + 1 < n ? kv_row(v, (size_t)(j0 + t + 1), d, type) : NULL;
        for (int u0 = 0; u0 < d; u0 += 16) {
            const __mmask16 m = d - u0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)(0xFFFFu >> (16 - (d - u0)));
            __m512 a, b = _mm512_setzero_ps();
            if (type == KVP_KV_F32) {
                a = _mm512_maskz_loadu_ps(m, r0 + u0 * esz);
                if (r1) b = _mm512_maskz_loadu_ps(m, r1 + u0 * esz);
            } else if (type == KVP_KV_F16) {
                a = ld16(r0 + u0 * esz, m, KVP_KV_F16);
                if (r1) b = ld16(r1 + u0 * esz, m, KVP_KV_F16);
            } else {
                a = ld16(r0 + u0 * esz, m, KVP_KV_BF16);
                if (r1) b = ld16(r1 + u0 * esz, m, KVP_KV_BF16);
            }
            _mm512_mask_storeu_epi32(vp + (size_t)(t / 2) * d + u0, m, pack_pairs(a, b));
        }
    }
}

/* Two bf16 at p as one 32-bit pair (p may alias the stream's uint16_t). */
static inline int ld_pair(const uint16_t *p) {
    int x;
    memcpy(&x, p, sizeof x);
    return x;
}

/* s[t] = q_rows . k_t (unscaled) for 16 keys of a bf16 row-major tile kb. */
static inline void block_logits16_bf16(const uint32_t *restrict qt2, const uint16_t *restrict kb,
                                       int d, __m512 *restrict s) {
    const int d2 = d / 2;
    __m512 acc[16];
    for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();
    for (int p = 0; p < d2; p++) {
        const __m512bh qp = (__m512bh)_mm512_load_si512(qt2 + (size_t)p * RB);
        for (int t = 0; t < 16; t++)
            acc[t] = _mm512_dpbf16_ps(acc[t], qp, (__m512bh)_mm512_set1_epi32(ld_pair(kb + (size_t)t * d + 2 * p)));
    }
    for (int t = 0; t < 16; t++) s[t] = acc[t];
}
#endif

/* One block of nr <= 16 rows (row 0 sees keys 0..kv_base). */
static void forward_block16(const float *q, size_t q_stride, int nr, const void *k,
                            const void *v, kvp_kv_type type, int d, int kv_base, float scale,
                            float *out, size_t out_stride, float *row_max, float *row_sum) {
    _Alignas(64) float qt[MAX_D * RB];
    _Alignas(64) float ot[MAX_D * RB];
    _Alignas(64) float kpad[16 * MAX_D];
    _Alignas(64) float vbuf[KC * MAX_D]; /* a half V chunk, widened */
    __m512 s[KC];
    for (int u = 0; u < d; u++)
        for (int r = 0; r < RB; r++) qt[u * RB + r] = r < nr ? q[(size_t)r * q_stride + u] : 0.0f;
    memset(ot, 0, sizeof(float) * (size_t)d * RB);
    __m512 m = _mm512_set1_ps(-INFINITY), l = _mm512_setzero_ps();
    const int n_see = kv_base + nr; /* keys any row of the block sees */
    for (int j0 = 0; j0 < n_see; j0 += KC) {
        const int nk = n_see - j0 < KC ? n_see - j0 : KC;
        for (int t0 = 0; t0 < nk; t0 += 16) {
            const int nb = nk - t0 < 16 ? nk - t0 : 16;
            block_logits16(qt, block16_rows_f32(k, j0 + t0, nb, d, type, kpad), d, s + t0);
        }
        const __m512 c = block_softmax16(s, nk, j0, kv_base, scale, &m, &l);
        const float *vrows = rows_f32(v, j0, nk, d, type, vbuf);
        int u0 = 0;
        for (; u0 + 8 <= d; u0 += 8) {
            __m512 o[8];
            for (int g = 0; g < 8; g++) o[g] = _mm512_mul_ps(_mm512_load_ps(ot + (size_t)(u0 + g) * RB), c);
            const float *vb = vrows + u0;
            for (int t = 0; t < nk; t++, vb += d)
                for (int g = 0; g < 8; g++) o[g] = _mm512_fmadd_ps(s[t], _mm512_set1_ps(vb[g]), o[g]);
            for (int g = 0; g < 8; g++) _mm512_store_ps(ot + (size_t)(u0 + g) * RB, o[g]);
        }
        for (; u0 < d; u0++) {
            __m512 o = _mm512_mul_ps(_mm512_load_ps(ot + (size_t)u0 * RB), c);
            const float *vb = vrows + u0;
            for (int t = 0; t < nk; t++, vb += d) o = _mm512_fmadd_ps(s[t], _mm512_set1_ps(*vb), o);
            _mm512_store_ps(ot + (size_t)u0 * RB, o);
        }
    }
    block_store_rows16(ot, m, l, nr, d, out, out_stride, row_max, row_sum);
}

#ifdef KVA_BF16
/* Pass 1 in bf16 for n_q <= NBLK * 16 rows (row 0 sees keys 0..kv_base):
 * forward_block16's online softmax on blocks of 16 rows, each chunk of KC
 * keys converted once (keys to bf16 rows, values to pairs) for all blocks.
 * The softmax (logits scaled, masked, max, exp, normaliser l) is float32
 * as in forward_block16; only the weights entering PV are rounded. */
static void forward_bf16_group(const float *q, size_t q_stride, int n_q, const void *k,
                               const void *v, kvp_kv_type type, int d, int kv_base, float scale,
                               float *out, size_t out_stride, float *row_max, float *row_sum) {
    const int nb = (n_q + RB - 1) / RB;
    _Alignas(64) uint32_t qt2[NBLK][MAX_D / 2 * RB];
    _Alignas(64) float ot[NBLK][MAX_D * RB];
    _Alignas(64) uint16_t kb[KC * MAX_D];
    _Alignas(64) uint32_t vp[KC / 2 * MAX_D];
    __m512 s[KC + 1];
    __m512i pp[KC / 2];
    __m512 m[NBLK], l[NBLK];
    for (int b = 0; b < nb; b++) {
        const int nr = n_q - b * RB < RB ? n_q - b * RB : RB;
        q_pairs(q + (size_t)b * RB * q_stride, q_stride, nr, d, qt2[b]);
        memset(ot[b], 0, sizeof(float) * (size_t)d * RB);
        m[b] = _mm512_set1_ps(-INFINITY);
        l[b] = _mm512_setzero_ps();
    }
    const int n_see = kv_base + n_q;
    for (int j0 = 0; j0 < n_see; j0 += KC) {
        const int nk = n_see - j0 < KC ? n_see - j0 : KC;
        const uint16_t *kc = keys_bf16(k, j0, nk, d, type, kb);
        bool v_ready = false;
        for (int b = 0; b < nb; b++) {
            const int nr = n_q - b * RB < RB ? n_q - b * RB : RB, kvb = kv_base + b * RB;
            /* keys of the chunk any row of this block sees */
            const int nkb = kvb + nr - j0 < nk ? kvb + nr - j0 : nk;
            if (nkb <= 0) continue;
            for (int t0 = 0; t0 < nkb; t0 += 16) block_logits16_bf16(qt2[b], kc + (size_t)t0 * d, d, s + t0);
            const __m512 c = block_softmax16(s, nkb, j0, kvb, scale, &m[b], &l[b]);
            s[nkb] = _mm512_setzero_ps(); /* an odd count pairs its last key with 0 */
            const int np = (nkb + 1) / 2;
            for (int t2 = 0; t2 < np; t2++) pp[t2] = pack_pairs(s[2 * t2], s[2 * t2 + 1]);
            if (!v_ready) {
                values_pairs(v, j0, nk, d, type, vp);
                v_ready = true;
            }
            float *otb = ot[b];
            int u0 = 0;
            for (; u0 + 16 <= d; u0 += 16) {
                __m512 o[16];
                for (int g = 0; g < 16; g++) o[g] = _mm512_mul_ps(_mm512_load_ps(otb + (size_t)(u0 + g) * RB), c);
                for (int t2 = 0; t2 < np; t2++) {
                    const __m512bh w = (__m512bh)pp[t2];
                    const uint32_t *vr = vp + (size_t)t2 * d + u0;
                    for (int g = 0; g < 16; g++)
                        o[g] = _mm512_dpbf16_ps(o[g], w, (__m512bh)_mm512_set1_epi32((int)vr[g]));
                }
                for (int g = 0; g < 16; g++) _mm512_store_ps(otb + (size_t)(u0 + g) * RB, o[g]);
            }
            for (; u0 < d; u0++) {
                __m512 o = _mm512_mul_ps(_mm512_load_ps(otb + (size_t)u0 * RB), c);
                for (int t2 = 0; t2 < np; t2++)
                    o = _mm512_dpbf16_ps(o, (__m512bh)pp[t2],
                                         (__m512bh)_mm512_set1_epi32((int)vp[(size_t)t2 * d + u0]));
                _mm512_store_ps(otb + (size_t)u0 * RB, o);
            }
        }
    }
    for (int b = 0; b < nb; b++) {
        const int nr = n_q - b * RB < RB ? n_q - b * RB : RB;
        block_store_rows16(ot[b], m[b], l[b], nr, d, out + (size_t)b * RB * out_stride, out_stride,
                           row_max + b * RB, row_sum + b * RB);
    }
}
#endif

/* z[t] = scale * q . k_t for t < nt (row-major keys), 16 keys at a time:
 * per key one vector of partial products, then one hsum16 for all 16
 * instead of a horizontal reduction per key. Used by both passes, so pass 2
 * recomputes exactly pass 1's logits. */
static inline __attribute__((always_inline)) void keyvec_logits_nv(const float *restrict q,
                                                                   const void *restrict k, int d,
                                                                   int nt, float scale,
                                                                   float *restrict z, const int nv,
                                                                   const kvp_kv_type type) {
    const size_t esz = esz_of(type), rb = (size_t)d * esz;
    const __mmask16 last = (__mmask16)(0xFFFFu >> (16 * nv - d));
    __m512 qv[MAX_D / 16];
    for (int c = 0; c < nv; c++) qv[c] = _mm512_maskz_loadu_ps(c == nv - 1 ? last : 0xFFFF, q + 16 * c);
    const __m512 vs = _mm512_set1_ps(scale);
    int t0 = 0;
    for (; t0 + 16 <= nt; t0 += 16) {
        __m512 acc[16];
#pragma GCC unroll 16
        for (int t = 0; t < 16; t++) {
            const char *kr = (const char *)k + (size_t)(t0 + t) * rb;
            acc[t] = _mm512_setzero_ps();
#pragma GCC unroll 16
            for (int c = 0; c < nv; c++)
                acc[t] = _mm512_fmadd_ps(qv[c], ld16(kr + 16 * c * esz, c == nv - 1 ? last : 0xFFFF, type),
                                         acc[t]);
        }
        _mm512_storeu_ps(z + t0, _mm512_mul_ps(kvk_hsum16(acc), vs));
    }
    if (t0 < nt) {
        const int n = nt - t0;
        __m512 acc[16];
        for (int t = 0; t < 16; t++) {
            acc[t] = _mm512_setzero_ps();
            if (t >= n) continue;
            const char *kr = (const char *)k + (size_t)(t0 + t) * rb;
            for (int c = 0; c < nv; c++)
                acc[t] = _mm512_fmadd_ps(qv[c], ld16(kr + 16 * c * esz, c == nv - 1 ? last : 0xFFFF, type),
                                         acc[t]);
        }
        _mm512_mask_storeu_ps(z + t0, (__mmask16)(0xFFFFu >> (16 - n)), _mm512_mul_ps(kvk_hsum16(acc), vs));
    }
}

#define KEYVEC_NV_CASES(T)                                                                  \
    switch ((d + 15) / 16) {                                                                \
    case 1: keyvec_logits_nv(q, k, d, nt, scale, z, 1, T); break;                           \
    case 2: keyvec_logits_nv(q, k, d, nt, scale, z, 2, T); break;                           \
    case 3: keyvec_logits_nv(q, k, d, nt, scale, z, 3, T); break;                           \
    case 4: keyvec_logits_nv(q, k, d, nt, scale, z, 4, T); break;                           \
    case 5: keyvec_logits_nv(q, k, d, nt, scale, z, 5, T); break;                           \
    case 6: keyvec_logits_nv(q, k, d, nt, scale, z, 6, T); break;                           \
    case 7: keyvec_logits_nv(q, k, d, nt, scale, z, 7, T); break;                           \
    case 8: keyvec_logits_nv(q, k, d, nt, scale, z, 8, T); break;                           \
    default: keyvec_logits_nv(q, k, d, nt, scale, z, (d + 15) / 16, T); break;              \
    }

/* k: the tile's first row in the stream's type. */
static void keyvec_logits(const float *restrict q, const void *restrict k, int d, int nt,
                          float scale, float *restrict z, kvp_kv_type type) {
    /* a constant vector count keeps q and the 16 accumulators in registers
     * (with a variable one they live on the stack: several times slower);
     * a constant type folds the row loads */
    if (type == KVP_KV_F32) KEYVEC_NV_CASES(KVP_KV_F32)
    else if (type == KVP_KV_F16) KEYVEC_NV_CASES(KVP_KV_F16)
    else KEYVEC_NV_CASES(KVP_KV_BF16)
}
#undef KEYVEC_NV_CASES

/* o += sum_t w[t] v_t over nt keys of a tile, o held in nv <= 8 vectors
 * (the last one masked to d), even and odd keys in separate accumulators. */
static inline __attribute__((always_inline)) void pv_tile(float *restrict o, const void *restrict v0,
                                                          const float *restrict w, int nt, int d,
                                                          const int nv, __mmask16 last,
                                                          const kvp_kv_type type) {
    const size_t esz = esz_of(type), rb = (size_t)d * esz;
    const char *vb = v0;
    __m512 a[8], b[8];
#pragma GCC unroll 8
    for (int c = 0; c < nv; c++) {
        a[c] = _mm512_maskz_loadu_ps(c == nv - 1 ? last : (__mmask16)0xFFFF, o + 16 * c);
        b[c] = _mm512_setzero_ps();
    }
    int t = 0;
    for (; t + 2 <= nt; t += 2, vb += 2 * rb) {
        const __m512 w0 = _mm512_set1_ps(w[t]), w1 = _mm512_set1_ps(w[t + 1]);
#pragma GCC unroll 8
        for (int c = 0; c < nv; c++) {
            const __mmask16 cm = c == nv - 1 ? last : (__mmask16)0xFFFF;
            a[c] = _mm512_fmadd_ps(w0, ld16(vb + 16 * c * esz, cm, type), a[c]);
            b[c] = _mm512_fmadd_ps(w1, ld16(vb + rb + 16 * c * esz, cm, type), b[c]);
        }
    }
    if (t < nt) {
        const __m512 w0 = _mm512_set1_ps(w[t]);
#pragma GCC unroll 8
        for (int c = 0; c < nv; c++)
            a[c] = _mm512_fmadd_ps(w0, ld16(vb + 16 * c * esz, c == nv - 1 ? last : (__mmask16)0xFFFF, type), a[c]);
    }
#pragma GCC unroll 8
    for (int c = 0; c < nv; c++)
        _mm512_mask_storeu_ps(o + 16 * c, c == nv - 1 ? last : (__mmask16)0xFFFF, _mm512_add_ps(a[c], b[c]));
}

/* One 64-key tile of one query row (decode): logits are dot products
 * straight from K, the softmax of the tile is vectorised over keys and P.V
 * runs over 16-wide column chunks of the output. Updates the row's running
 * max m, normaliser l and unnormalised output oi. */
static inline __attribute__((always_inline)) void keyvec_tile(const float *qi, const void *k, const void *v,
                               const kvp_kv_type type, int d, int j0,
                               int nt, float scale, float *oi, float *m_io, float *l_io,
                               float *z_row) {
    _Alignas(64) float z[TILE];
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    const int nv = (d + 15) / 16;
    const __mmask16 last = (__mmask16)(0xFFFFu >> (16 * nv - d));
    float m = *m_io, l = *l_io;
    keyvec_logits(qi, kv_row(k, (size_t)j0, d, type), d, nt, scale, z, type);
    if (z_row) memcpy(z_row + j0, z, sizeof(float) * (size_t)nt);
    __m512 zv[TILE / 16];
    __m512 vmax = ninf;
    for (int c = 0; c < TILE / 16; c++) {
        int left = nt - 16 * c;
        __mmask16 valid = left >= 16 ? (__mmask16)0xFFFF
                          : left <= 0 ? (__mmask16)0
                                      : (__mmask16)(0xFFFFu >> (16 - left));
        zv[c] = _mm512_mask_loadu_ps(ninf, valid, z + 16 * c);
        vmax = _mm512_max_ps(vmax, zv[c]);
    }
    const float tmax = _mm512_reduce_max_ps(vmax);
    if (tmax > m) {
        const float c = expf(m - tmax); /* m = -inf on the first tile: 0 */
        l *= c;
        for (int u = 0; u < d; u++) oi[u] *= c;
        m = tmax;
    }
    const __m512 mv = _mm512_set1_ps(m);
    __m512 lsum = _mm512_setzero_ps();
    for (int c = 0; c < TILE / 16; c++) {
        __mmask16 seen = _mm512_cmp_ps_mask(zv[c], ninf, _CMP_NEQ_OQ);
        __m512 w = _mm512_maskz_mov_ps(seen, exp_le0(_mm512_sub_ps(zv[c], mv)));
        lsum = _mm512_add_ps(lsum, w);
        _mm512_store_ps(z + 16 * c, w);
    }
    l += _mm512_reduce_add_ps(lsum);
    const void *vb = kv_row(v, (size_t)j0, d, type);
    switch (nv) { /* constant vector counts keep the accumulators in registers */
    case 1: pv_tile(oi, vb, z, nt, d, 1, last, type); break;
    case 2: pv_tile(oi, vb, z, nt, d, 2, last, type); break;
    case 3: pv_tile(oi, vb, z, nt, d, 3, last, type); break;
    case 4: pv_tile(oi, vb, z, nt, d, 4, last, type); break;
    case 5: pv_tile(oi, vb, z, nt, d, 5, last, type); break;
    case 6: pv_tile(oi, vb, z, nt, d, 6, last, type); break;
    case 7: pv_tile(oi, vb, z, nt, d, 7, last, type); break;
    case 8: pv_tile(oi, vb, z, nt, d, 8, last, type); break;
    default:
        for (int t = 0; t < nt; t++)
            for (int u = 0; u < d; u++) oi[u] += z[t] * elem_f32(vb, (size_t)t * d + u, type);
    }
    *m_io = m;
    *l_io = l;
}

/* Few rows (decode): each row on its own, tile after tile. */
static inline __attribute__((always_inline)) void forward_rows_keyvec(
    const float *q, size_t q_stride, int n_q, const void *k, const void *v,
    const kvp_kv_type type, int d, int kv_base, float scale, float *out, size_t out_stride,
    float *row_max, float *row_sum, float *z_row) {
    for (int i = 0; i < n_q; i++) {
        const float *qi = q + (size_t)i * q_stride;
        float *oi = out + (size_t)i * out_stride;
        const int n_see = kv_base + i + 1;
        memset(oi, 0, sizeof(float) * (size_t)d);
        float m = -INFINITY, l = 0.0f;
        for (int j0 = 0; j0 < n_see; j0 += TILE)
            keyvec_tile(qi, k, v, type, d, j0, n_see - j0 < TILE ? n_see - j0 : TILE, scale, oi, &m,
                        &l, z_row);
        const float inv = 1.0f / l;
        for (int u = 0; u < d; u++) oi[u] *= inv;
        row_max[i] = m;
        row_sum[i] = l;
    }
}
#endif

#ifdef KVA_AVX512
/* The heads of a GQA group, tiles outside, heads inside: each K/V tile is
 * read from memory once and reused from L1 by every head of the group. Per
 * head the operations are forward_rows_keyvec's, so the bits are too. */
static inline __attribute__((always_inline)) void forward_heads_keyvec(
    const float *q, size_t q_hstride, int n_heads, const void *k, const void *v,
    const kvp_kv_type type, int d, int n_keys, float scale, float *out, size_t out_hstride,
    float *row_max, float *row_sum, size_t rs_hstride, float *z_rows, size_t z_hstride) {
    for (int h = 0; h < n_heads; h++) {
        memset(out + (size_t)h * out_hstride, 0, sizeof(float) * (size_t)d);
        row_max[(size_t)h * rs_hstride] = -INFINITY;
        row_sum[(size_t)h * rs_hstride] = 0.0f;
    }
    for (int j0 = 0; j0 < n_keys; j0 += TILE) {
        const int nt = n_keys - j0 < TILE ? n_keys - j0 : TILE;
        for (int h = 0; h < n_heads; h++)
            keyvec_tile(q + (size_t)h * q_hstride, k, v, type, d, j0, nt, scale,
                        out + (size_t)h * out_hstride, row_max + (size_t)h * rs_hstride,
                        row_sum + (size_t)h * rs_hstride,
                        z_rows ? z_rows + (size_t)h * z_hstride : NULL);
    }
    for (int h = 0; h < n_heads; h++) {
        float *oh = out + (size_t)h * out_hstride;
        const float inv = 1.0f / row_sum[(size_t)h * rs_hstride];
        for (int u = 0; u < d; u++) oh[u] *= inv;
    }
}
#endif

void KVA_FN(kvk_attn_forward)(const float *q, size_t q_stride, int n_q,
                      const void *k, const void *v, kvp_kv_type type, int d, int kv_base,
                      float scale, float *out, size_t out_stride,
                      float *row_max, float *row_sum, float *z_row) {
    if (n_q != 1) z_row = NULL;
#ifdef KVA_AVX512
    if (n_q >= MIN_ROWS_VEC) {
        for (int r0 = 0; r0 < n_q; r0 += RB)
            forward_block16(q + (size_t)r0 * q_stride, q_stride, n_q - r0 < RB ? n_q - r0 : RB, k,
                            v, type, d, kv_base + r0, scale, out + (size_t)r0 * out_stride,
                            out_stride, row_max + r0, row_sum + r0);
    } else if (type == KVP_KV_F32) { /* one constant type per copy of the loop */
        forward_rows_keyvec(q, q_stride, n_q, k, v, KVP_KV_F32, d, kv_base, scale, out,
                            out_stride, row_max, row_sum, z_row);
    } else if (type == KVP_KV_F16) {
        forward_rows_keyvec(q, q_stride, n_q, k, v, KVP_KV_F16, d, kv_base, scale, out,
                            out_stride, row_max, row_sum, z_row);
    } else {
        forward_rows_keyvec(q, q_stride, n_q, k, v, KVP_KV_BF16, d, kv_base, scale, out,
                            out_stride, row_max, row_sum, z_row);
    }
    return; /* the portable path below stays compiled, so warnings still check it */
#endif
    float kt[MAX_D * TILE];
    float kbuf[MAX_D * TILE], vbuf[MAX_D * TILE]; /* a half tile, widened */
    float z[TILE];
    for (int i = 0; i < n_q; i++) {
        float *oi = out + (size_t)i * out_stride;
        memset(oi, 0, sizeof(float) * (size_t)d);
        row_max[i] = -INFINITY;
        row_sum[i] = 0.0f;
    }
    int n_see_max = kv_base + n_q; /* the last row sees the most keys */
    const bool transposed = n_q >= MIN_ROWS_TRANSPOSED;
    for (int j0 = 0; j0 < n_see_max; j0 += TILE) {
        int nt_all = n_see_max - j0 < TILE ? n_see_max - j0 : TILE;
        const float *kf = rows_f32(k, j0, nt_all, d, type, kbuf);
        const float *vf = rows_f32(v, j0, nt_all, d, type, vbuf);
        if (transposed) transpose_tile(kf, d, nt_all, kt);
        /* rows that see none of this tile are skipped */
        int i0 = j0 - kv_base > 0 ? j0 - kv_base : 0;
        for (int i = i0; i < n_q; i++) {
            const float *qi = q + (size_t)i * q_stride;
            float *oi = out + (size_t)i * out_stride;
            int n_see = kv_base + i + 1 - j0;
            int nt = n_see < nt_all ? n_see : nt_all;
            if (transposed) tile_logits(qi, kt, d, nt, scale, z);
            else direct_logits(qi, kf, d, nt, scale, z);
            if (z_row) memcpy(z_row + j0, z, sizeof(float) * (size_t)nt);
            float m = row_max[i], l = row_sum[i];
            float tmax = -INFINITY;
            for (int t = 0; t < nt; t++)
                if (z[t] > tmax) tmax = z[t];
            if (tmax > m) {
                float c = expf(m - tmax); /* m = -inf on the first tile: 0 */
                l *= c;
#pragma omp simd
                for (int u = 0; u < d; u++) oi[u] *= c;
                m = tmax;
            }
            for (int t = 0; t < nt; t++) {
                float w = expf(z[t] - m);
                const float *vj = vf + (size_t)t * d;
                l += w;
#pragma omp simd
                for (int u = 0; u < d; u++) oi[u] += w * vj[u];
            }
            row_max[i] = m;
            row_sum[i] = l;
        }
    }
    for (int i = 0; i < n_q; i++) {
        float *oi = out + (size_t)i * out_stride;
        float inv = 1.0f / row_sum[i];
        for (int t = 0; t < d; t++) oi[t] *= inv;
    }
}

void KVA_FN(kvk_attn_forward_heads)(const float *q, size_t q_hstride, int n_heads, const void *k,
                            const void *v, kvp_kv_type type, int d, int n_keys, float scale,
                            float *out, size_t out_hstride, float *row_max, float *row_sum,
                            size_t rs_hstride, float *z_rows, size_t z_hstride) {
#ifdef KVA_AVX512
    if (type == KVP_KV_F32)
        forward_heads_keyvec(q, q_hstride, n_heads, k, v, KVP_KV_F32, d, n_keys, scale, out,
                             out_hstride, row_max, row_sum, rs_hstride, z_rows, z_hstride);
    else if (type == KVP_KV_F16)
        forward_heads_keyvec(q, q_hstride, n_heads, k, v, KVP_KV_F16, d, n_keys, scale, out,
                             out_hstride, row_max, row_sum, rs_hstride, z_rows, z_hstride);
    else
        forward_heads_keyvec(q, q_hstride, n_heads, k, v, KVP_KV_BF16, d, n_keys, scale, out,
                             out_hstride, row_max, row_sum, rs_hstride, z_rows, z_hstride);
    return;
#endif
    for (int h = 0; h < n_heads; h++)
        KVA_FN(kvk_attn_forward)(q + (size_t)h * q_hstride, 0, 1, k, v, type, d, n_keys - 1, scale,
                         out + (size_t)h * out_hstride, 0, row_max + (size_t)h * rs_hstride,
                         row_sum + (size_t)h * rs_hstride,
                         z_rows ? z_rows + (size_t)h * z_hstride : NULL);
}

#ifdef KVA_AVX512
/* Pass 2 for a block of nr <= 16 rows (row 0 sees keys 0..kv_base), rows
 * vectorised as in pass 1: per key, the 16 rows' weights (and v_j . o_i)
 * come out as one vector and are summed into the column in double, lanes
 * in a fixed order. */
static void colreduce_block16(const float *q, size_t q_stride, int nr, const void *k,
                              const void *v, kvp_kv_type type, int d, int kv_base, float scale,
                              const float *row_max, const float *row_sum, const float *out,
                              size_t out_stride, int col_begin, int col_end,
                              const kvk_colreduce_req *req, const float *out_sq,
                              double *col_attn, double *col_key, const bool bf16) {
    const int c_end = kv_base + nr < col_end ? kv_base + nr : col_end;
    if (col_begin >= c_end) return;
#ifdef KVA_BF16
    /* the logits of forward_bf16_group, bit for bit */
    _Alignas(64) uint32_t qt2[MAX_D / 2 * RB];
    _Alignas(64) uint16_t kb16[16 * MAX_D];
    if (bf16) q_pairs(q, q_stride, nr, d, qt2);
#else
    (void)bf16;
#endif
    _Alignas(64) float qt[MAX_D * RB];
    _Alignas(64) float ot[MAX_D * RB];
    _Alignas(64) float kpad[16 * MAX_D];
    _Alignas(64) float mm[RB], il[RB];
    _Alignas(64) double osq[RB];
    __m512 s[16], vo[16];
    const bool key = req->key;
    for (int u = 0; u < d; u++)
        for (int r = 0; r < RB; r++) {
            qt[u * RB + r] = r < nr ? q[(size_t)r * q_stride + u] : 0.0f;
            ot[u * RB + r] = key && r < nr ? out[(size_t)r * out_stride + u] : 0.0f;
        }
    for (int r = 0; r < RB; r++) {
        mm[r] = r < nr ? row_max[r] : 0.0f;
        il[r] = r < nr ? 1.0f / row_sum[r] : 0.0f;
        osq[r] = key && r < nr ? (double)out_sq[r] : 0.0;
    }
    const __m512 m = _mm512_load_ps(mm), inv_l = _mm512_load_ps(il);
    const __m512 vscale = _mm512_set1_ps(scale);
    const __m512d osq_lo = _mm512_load_pd(osq), osq_hi = _mm512_load_pd(osq + 8);
    const __mmask16 rows = (__mmask16)(0xFFFFu >> (16 - nr));
    for (int j0 = col_begin; j0 < c_end; j0 += 16) {
        const int nk = c_end - j0 < 16 ? c_end - j0 : 16;
#ifdef KVA_BF16
        if (bf16) {
            block_logits16_bf16(qt2, keys_bf16(k, j0, nk, d, type, kb16), d, s);
        } else
#endif
            block_logits16(qt, block16_rows_f32(k, j0, nk, d, type, kpad), d, s);
        if (key) block_logits16(ot, block16_rows_f32(v, j0, nk, d, type, kpad), d, vo);
        for (int t = 0; t < nk; t++) {
            const int j = j0 + t, lo = j - kv_base; /* lanes below lo do not see j */
            const __mmask16 seen = lo > 0 ? (__mmask16)(rows & (0xFFFFu << lo)) : rows;
            const __m512 zz = _mm512_mul_ps(vscale, s[t]);
            const __m512 a = _mm512_maskz_mov_ps(seen, _mm512_mul_ps(exp_le0(_mm512_sub_ps(zz, m)), inv_l));
            const __m512d a_lo = _mm512_cvtps_pd(_mm512_castps512_ps256(a));
            const __m512d a_hi = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_shuffle_f32x4(a, a, 0xEE)));
            if (req->p == 1)
                col_attn[j] += _mm512_reduce_add_pd(_mm512_add_pd(a_lo, a_hi));
            else if (req->p == 2)
                col_attn[j] += _mm512_reduce_add_pd(
                    _mm512_add_pd(_mm512_mul_pd(a_lo, a_lo), _mm512_mul_pd(a_hi, a_hi)));
            if (key) {
                const __m512 vot = vo[t];
                const __m512d z_lo = _mm512_cvtps_pd(_mm512_castps512_ps256(zz));
                const __m512d z_hi = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_shuffle_f32x4(zz, zz, 0xEE)));
                const __m512d vo_lo = _mm512_cvtps_pd(_mm512_castps512_ps256(vot));
                const __m512d vo_hi = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_shuffle_f32x4(vot, vot, 0xEE)));
                const __m512d v2 = _mm512_set1_pd((double)req->v2[j]), two = _mm512_set1_pd(2.0);
                __m512d az = _mm512_mul_pd(a_lo, z_lo);
                __m512d s_lo = _mm512_mul_pd(_mm512_mul_pd(az, az),
                                             _mm512_sub_pd(_mm512_add_pd(v2, osq_lo), _mm512_mul_pd(two, vo_lo)));
                az = _mm512_mul_pd(a_hi, z_hi);
                __m512d s_hi = _mm512_mul_pd(_mm512_mul_pd(az, az),
                                             _mm512_sub_pd(_mm512_add_pd(v2, osq_hi), _mm512_mul_pd(two, vo_hi)));
                if (req->cross) {
                    s_lo = _mm512_add_pd(s_lo, _mm512_mul_pd(_mm512_mul_pd(_mm512_mul_pd(two, _mm512_mul_pd(a_lo, a_lo)), z_lo),
                                                             _mm512_sub_pd(v2, vo_lo)));
                    s_hi = _mm512_add_pd(s_hi, _mm512_mul_pd(_mm512_mul_pd(_mm512_mul_pd(two, _mm512_mul_pd(a_hi, a_hi)), z_hi),
                                                             _mm512_sub_pd(v2, vo_hi)));
                }
                col_key[j] += _mm512_reduce_add_pd(_mm512_add_pd(s_lo, s_hi));
            }
        }
    }
}

/* Pass 2 for few rows (decode): logits and v_j . o_i are dot products as
 * in the portable path, then the weights and column sums are vectorised
 * over keys (8 columns of doubles at a time; each column still sums its
 * rows in increasing order). */
static void colreduce_rows_keyvec(const float *q, size_t q_stride, int row_begin, int row_end,
                                  const void *k, const void *v, kvp_kv_type type, int d,
                                  int kv_base,
                                  float scale, const float *row_max, const float *row_sum,
                                  const float *out, size_t out_stride, int col_begin,
                                  int col_end, const kvk_colreduce_req *req, const float *z_row,
                                  double *col_attn, double *col_key) {
    _Alignas(64) float z[TILE], vo[TILE];
    const __m512d two = _mm512_set1_pd(2.0);
    for (int i = row_begin; i < row_end; i++) {
        const float *qi = q + (size_t)i * q_stride, *oi = out + (size_t)i * out_stride;
        const int c_end = kv_base + i + 1 < col_end ? kv_base + i + 1 : col_end;
        const __m512 m = _mm512_set1_ps(row_max[i]), inv_l = _mm512_set1_ps(1.0f / row_sum[i]);
        const __m512d osq = _mm512_set1_pd(req->key ? (double)req->out_sq[i] : 0.0);
        for (int j0 = col_begin; j0 < c_end; j0 += TILE) {
            const int nt = c_end - j0 < TILE ? c_end - j0 : TILE;
            /* z: scaled logits (pass 1's when it saved them) */
            if (z_row) memcpy(z, z_row + j0, sizeof(float) * (size_t)nt);
            else keyvec_logits(qi, kv_row(k, (size_t)j0, d, type), d, nt, scale, z, type);
            if (req->key) keyvec_logits(oi, kv_row(v, (size_t)j0, d, type), d, nt, 1.0f, vo, type);
            for (int t0 = 0; t0 < nt; t0 += 8) {
                const int left = nt - t0;
                const __mmask8 cols = left >= 8 ? (__mmask8)0xFF : (__mmask8)(0xFFu >> (8 - left));
                const int j = j0 + t0;
                const __m256 zz8 = _mm256_maskz_loadu_ps(cols, z + t0);
                const __m512 zz = _mm512_castps256_ps512(zz8);
                const __m256 a8 = _mm512_castps512_ps256(
                    _mm512_mul_ps(exp_le0(_mm512_sub_ps(zz, m)), inv_l));
                const __m512d a = _mm512_cvtps_pd(a8);
                if (req->p == 1)
                    _mm512_mask_storeu_pd(col_attn + j, cols,
                                          _mm512_add_pd(_mm512_maskz_loadu_pd(cols, col_attn + j), a));
                else if (req->p == 2)
                    _mm512_mask_storeu_pd(col_attn + j, cols,
                                          _mm512_add_pd(_mm512_maskz_loadu_pd(cols, col_attn + j),
                                                        _mm512_mul_pd(a, a)));
                if (req->key) {
                    const __m512d zd = _mm512_cvtps_pd(zz8);
                    const __m512d dvo = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(cols, vo + t0));
                    const __m512d v2 = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(cols, req->v2 + j));
                    const __m512d az = _mm512_mul_pd(a, zd);
                    __m512d s = _mm512_mul_pd(_mm512_mul_pd(az, az),
                                              _mm512_sub_pd(_mm512_add_pd(v2, osq), _mm512_mul_pd(two, dvo)));
                    if (req->cross)
                        s = _mm512_add_pd(s, _mm512_mul_pd(_mm512_mul_pd(_mm512_mul_pd(two, _mm512_mul_pd(a, a)), zd),
                                                           _mm512_sub_pd(v2, dvo)));
                    _mm512_mask_storeu_pd(col_key + j, cols,
                                          _mm512_add_pd(_mm512_maskz_loadu_pd(cols, col_key + j), s));
                }
            }
        }
    }
}
#endif

void KVA_FN(kvk_attn_colreduce)(const float *q, size_t q_stride, int row_begin,
                        int row_end, const void *k, const void *v, kvp_kv_type type, int d,
                        int kv_base, float scale, const float *row_max,
                        const float *row_sum, const float *out,
                        size_t out_stride, int col_begin, int col_end,
                        const kvk_colreduce_req *req, const float *z_row,
                        double *col_attn, double *col_key) {
    if (row_end - row_begin != 1) z_row = NULL;
#ifdef KVA_AVX512
    if (row_end - row_begin >= MIN_ROWS_VEC) {
        for (int r0 = row_begin; r0 < row_end; r0 += RB)
            colreduce_block16(q + (size_t)r0 * q_stride, q_stride,
                              row_end - r0 < RB ? row_end - r0 : RB, k, v, type, d, kv_base + r0,
                              scale, row_max + r0, row_sum + r0, out + (size_t)r0 * out_stride,
                              out_stride, col_begin, col_end, req,
                              req->key ? req->out_sq + r0 : NULL, col_attn, col_key, false);
    } else {
        colreduce_rows_keyvec(q, q_stride, row_begin, row_end, k, v, type, d, kv_base, scale, row_max,
                              row_sum, out, out_stride, col_begin, col_end, req, z_row, col_attn,
                              col_key);
    }
    return;
#endif
    float kt[MAX_D * TILE], vt[MAX_D * TILE];
    float kbuf[MAX_D * TILE], vbuf[MAX_D * TILE]; /* a half tile, widened */
    float z[TILE], vo[TILE];
    const bool transposed = row_end - row_begin >= MIN_ROWS_TRANSPOSED;
    for (int j0 = col_begin; j0 < col_end; j0 += TILE) {
        int nt_all = col_end - j0 < TILE ? col_end - j0 : TILE;
        const float *kf = z_row && !transposed ? NULL : rows_f32(k, j0, nt_all, d, type, kbuf);
        const float *vf = req->key ? rows_f32(v, j0, nt_all, d, type, vbuf) : NULL;
        if (transposed) {
            transpose_tile(kf, d, nt_all, kt);
            if (req->key) transpose_tile(vf, d, nt_all, vt);
        }
        /* row i sees key j when j <= kv_base + i */
        int i0 = j0 - kv_base > row_begin ? j0 - kv_base : row_begin;
        for (int i = i0; i < row_end; i++) {
            const float *qi = q + (size_t)i * q_stride;
            int nt = kv_base + i + 1 - j0;
            if (nt > nt_all) nt = nt_all;
            const float *oi = out + (size_t)i * out_stride;
            if (transposed) {
                tile_logits(qi, kt, d, nt, 1.0f, z);
                /* v_j . o_i for the tile, vectorised over keys like z */
                if (req->key) tile_logits(oi, vt, d, nt, 1.0f, vo);
            } else {
                if (!z_row) direct_logits(qi, kf, d, nt, 1.0f, z);
                if (req->key) direct_logits(oi, vf, d, nt, 1.0f, vo);
            }
            const float m = row_max[i], inv_l = 1.0f / row_sum[i];
            for (int t = 0; t < nt; t++) {
                float zz = z_row ? z_row[j0 + t] : scale * z[t];
                double a = (double)(expf(zz - m) * inv_l);
                int j = j0 + t;
                if (req->p == 1)
                    col_attn[j] += a;
                else if (req->p == 2)
                    col_attn[j] += a * a;
                if (req->key) {
                    double v2 = (double)req->v2[j], dvo = (double)vo[t];
                    double az = a * (double)zz;
                    double s = az * az * (v2 + (double)req->out_sq[i] - 2.0 * dvo);
                    if (req->cross) s += 2.0 * a * a * (double)zz * (v2 - dvo);
                    col_key[j] += s;
                }
            }
        }
    }
}

#ifdef KVA_BF16
void KVA_FN(kvk_attn_forward_bf16)(const float *q, size_t q_stride, int n_q, const void *k,
                                   const void *v, kvp_kv_type type, int d, int kv_base,
                                   float scale, float *out, size_t out_stride, float *row_max,
                                   float *row_sum) {
    for (int r0 = 0; r0 < n_q; r0 += NBLK * RB)
        forward_bf16_group(q + (size_t)r0 * q_stride, q_stride,
                           n_q - r0 < NBLK * RB ? n_q - r0 : NBLK * RB, k, v, type, d, kv_base + r0,
                           scale, out + (size_t)r0 * out_stride, out_stride, row_max + r0,
                           row_sum + r0);
}

void KVA_FN(kvk_attn_colreduce_bf16)(const float *q, size_t q_stride, int row_begin, int row_end,
                                     const void *k, const void *v, kvp_kv_type type, int d,
                                     int kv_base, float scale, const float *row_max,
                                     const float *row_sum, const float *out, size_t out_stride,
                                     int col_begin, int col_end, const kvk_colreduce_req *req,
                                     double *col_attn, double *col_key) {
    for (int r0 = row_begin; r0 < row_end; r0 += RB)
        colreduce_block16(q + (size_t)r0 * q_stride, q_stride,
                          row_end - r0 < RB ? row_end - r0 : RB, k, v, type, d, kv_base + r0,
                          scale, row_max + r0, row_sum + r0, out + (size_t)r0 * out_stride,
                          out_stride, col_begin, col_end, req,
                          req->key ? req->out_sq + r0 : NULL, col_attn, col_key, true);
}
#endif
