/* The per-instruction-set integer dot kernels behind kvq_vec_dot and the
 * quantized matrix-vector products (quant_dot_isa.h), and their driver.
 *
 * A dot function takes one weight row of n elements (whole blocks) and the
 * activations quantized to the type's vec_dot_type; a quantize function
 * quantizes n floats to Q8_0, Q8_1 or Q8_K blocks exactly as ggml's
 * reference quantizers do. */
#ifndef KVP_KERNELS_QUANT_DOT_H
#define KVP_KERNELS_QUANT_DOT_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/cpu.h"
#include "util/pool.h"

typedef float (*kvqd_dot_fn)(int64_t n, const void *w_row, const void *xq);
typedef void (*kvqd_quantize_fn)(const float *x, void *xq, int64_t n);

/* NULL for a type the variant has no kernel for. */
kvqd_dot_fn kvqd_dot_avx2(uint32_t type);
kvqd_dot_fn kvqd_dot_avx512(uint32_t type);
kvqd_dot_fn kvqd_dot_avx512vnni(uint32_t type);
kvqd_quantize_fn kvqd_quantize_avx2(uint32_t vec_dot_type);
kvqd_quantize_fn kvqd_quantize_avx512(uint32_t vec_dot_type);
kvqd_quantize_fn kvqd_quantize_avx512vnni(uint32_t vec_dot_type);

/* The kernels of one level; NULL for the scalar level and where a level
 * has none for the type: then the portable kvq_vec_dot_scalar /
 * kvq_quantize_activations_scalar (quant.c) run. */
kvqd_dot_fn kvqd_dot_for(kvcpu_level level, uint32_t type);
kvqd_quantize_fn kvqd_quantize_for(kvcpu_level level, uint32_t vec_dot_type);

/* y[t][n] (=|+=) W[n] . x[t] for a block-quantized W (N rows of K
 * elements of wtype, K a multiple of its block) through the integer dot of
 * the current CPU level: each x[t] quantized once to the type's
 * vec_dot_type, rows split over the pool's workers (NULL: the caller alone). Meant for small T (decode and
 * decode blocks); results are identical for any thread count. False when
 * the type has no dot kernel or memory ran out. */
bool kvqd_matmul(float *y, const float *x, int T, const void *w, uint32_t wtype, int N, int K,
                 bool accumulate, kvu_pool *pool);

/* kvqd_matmul with the kernels of a given level (benchmarks and tests). */
bool kvqd_matmul_at(kvcpu_level level, float *y, const float *x, int T, const void *w, uint32_t wtype,
                    int N, int K, bool accumulate, kvu_pool *pool);

#endif
