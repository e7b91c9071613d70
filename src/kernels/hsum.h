/* Horizontal sums of AVX-512 float vectors with one fixed addition tree, so
 * that a sum taken alone (hsum1) and the same sum taken among 16 (hsum16)
 * are the same bits: per 128-bit lane L, q_L = (e0 + e2) + (e1 + e3), then
 * (q_0 + q_1) + (q_2 + q_3). */
#ifndef KVP_KERNELS_HSUM_H
#define KVP_KERNELS_HSUM_H

#ifdef __AVX512F__
#include <immintrin.h>

/* Lane t of the result is the sum of v[t] (a transpose-and-add tree: one
 * pass for 16 sums instead of 16 reductions). */
static inline __m512 kvk_hsum16(const __m512 v[16]) {
    __m512 x[8], y[4];
    for (int i = 0; i < 8; i++)
        x[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                             _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++)
        y[i] = _mm512_add_ps(_mm512_shuffle_ps(x[2 * i], x[2 * i + 1], 0x44),
                             _mm512_shuffle_ps(x[2 * i], x[2 * i + 1], 0xEE));
    const __m512 w0 = _mm512_add_ps(_mm512_shuffle_f32x4(y[0], y[1], 0x88),
                                    _mm512_shuffle_f32x4(y[0], y[1], 0xDD));
    const __m512 w1 = _mm512_add_ps(_mm512_shuffle_f32x4(y[2], y[3], 0x88),
                                    _mm512_shuffle_f32x4(y[2], y[3], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w0, w1, 0x88), _mm512_shuffle_f32x4(w0, w1, 0xDD));
}

/* The sum of one vector, in kvk_hsum16's order. */
static inline float kvk_hsum1(__m512 v) {
    float l[16];
    _mm512_storeu_ps(l, v);
    float q[4];
    for (int L = 0; L < 4; L++) q[L] = (l[4 * L] + l[4 * L + 2]) + (l[4 * L + 1] + l[4 * L + 3]);
    return (q[0] + q[1]) + (q[2] + q[3]);
}
#endif

#endif
