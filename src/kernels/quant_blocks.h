/* GGUF block layouts of ggml's quantized types (internal).
 *
 * Byte for byte what GGUF files hold (ggml-common.h): every struct is
 * packed by construction (no member needs padding), which the static
 * assertions below check. Halves (ggml_half) are IEEE binary16 bit
 * patterns, read with kvk_f16_to_f32. */
#ifndef KVP_KERNELS_QUANT_BLOCKS_H
#define KVP_KERNELS_QUANT_BLOCKS_H

#include <stdint.h>
#include <string.h>

/* Elements per block. */
#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK4_NL 32
#define QK_K 256          /* K-quant and IQ4_XS super-blocks */
#define K_SCALE_SIZE 12   /* packed 6-bit scales and mins of Q4_K / Q5_K */

/* x = d * (q - 8), q in 0..15 */
typedef struct {
    uint16_t d;
    uint8_t qs[QK4_0 / 2]; /* element j in the low nibble of qs[j], j+16 in the high */
} block_q4_0;

/* x = d * q + m, q in 0..15 */
typedef struct {
    uint16_t d, m;
    uint8_t qs[QK4_1 / 2];
} block_q4_1;

/* x = d * (q - 16), q in 0..31; bit 4 of element j is bit j of qh */
typedef struct {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
} block_q5_0;

/* x = d * q + m, q in 0..31 */
typedef struct {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
} block_q5_1;

/* x = d * q */
typedef struct {
    uint16_t d;
    int8_t qs[QK8_0];
} block_q8_0;

/* Activations for Q4_1 / Q5_1: s = d * sum(qs). */
typedef struct {
    uint16_t d, s;
    int8_t qs[QK8_1];
} block_q8_1;

/* 16 sub-blocks of 16: x = d * (scales & 15) * q - dmin * (scales >> 4),
 * q in 0..3. */
typedef struct {
    uint8_t scales[QK_K / 16];
    uint8_t qs[QK_K / 4];
    uint16_t d, dmin;
} block_q2_K;

/* 16 sub-blocks of 16: x = d * (scale6 - 32) * (q - 4 * !high bit),
 * low 2 bits in qs, high bit in hmask, 6-bit scales packed in 12 bytes. */
typedef struct {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
} block_q3_K;

/* 8 sub-blocks of 32: x = d * sc * q - dmin * m, q in 0..15, 6-bit sc/m. */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
} block_q4_K;

/* As Q4_K with a fifth bit per element in qh. */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;

/* 16 sub-blocks of 16: x = d * scales * (q - 32), q in 0..63. */
typedef struct {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
} block_q6_K;

/* Activations for the K-quants and IQ4_XS: float scale, per-16 sums. */
typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
} block_q8_K;

/* x = d * kvalues_iq4nl[q] */
typedef struct {
    uint16_t d;
    uint8_t qs[QK4_NL / 2];
} block_iq4_nl;

/* 8 sub-blocks of 32: x = d * (scale6 - 32) * kvalues_iq4nl[q]; scale
 * low 4 bits in scales_l, high 2 bits in scales_h. */
typedef struct {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[QK_K / 64];
    uint8_t qs[QK_K / 2];
} block_iq4_xs;

_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 layout");
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 layout");
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 layout");
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 layout");
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 layout");
_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1 layout");
_Static_assert(sizeof(block_q2_K) == 84, "block_q2_K layout");
_Static_assert(sizeof(block_q3_K) == 110, "block_q3_K layout");
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K layout");
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K layout");
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K layout");
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K layout");
_Static_assert(sizeof(block_iq4_nl) == 18, "block_iq4_nl layout");
_Static_assert(sizeof(block_iq4_xs) == 136, "block_iq4_xs layout");

/* Helpers of the K-quant layouts, shared by dequantization and the
 * reference quantizers. */

/* Sub-block j's 6-bit scale and min of Q4_K / Q5_K. */
static inline void kvq_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* The 16 signed 6-bit scales of Q3_K (each still offset by 32). */
static inline void kvq_q3k_scales(const uint8_t packed[12], int8_t out[16]) {
    uint32_t a[4];
    memcpy(a, packed, 12);
    const uint32_t m1 = 0x03030303, m2 = 0x0f0f0f0f, tmp = a[2];
    a[2] = ((a[0] >> 4) & m2) | (((tmp >> 4) & m1) << 4);
    a[3] = ((a[1] >> 4) & m2) | (((tmp >> 6) & m1) << 4);
    a[0] = (a[0] & m2) | (((tmp >> 0) & m1) << 4);
    a[1] = (a[1] & m2) | (((tmp >> 2) & m1) << 4);
    memcpy(out, a, 16);
}

/* IQ4_NL / IQ4_XS non-linear code book. */
extern const int8_t kvq_iq4nl_values[16];

#endif
