/* Matrix products against weights stored as F32, F16 or BF16 rows (and,
 * through kvq_matmul in kernels/quant.h, ggml's quantized types).
 *
 * Every output element is computed by one thread with one fixed summation
 * order, so the results are bit-identical for any thread count and any
 * blocking: for F32/F16/BF16 weights 16 interleaved partial sums over the
 * k multiple of 16 (fused multiply-adds), added in lane order, then the k
 * tail in order (matmul_isa.h); for quantized weights ggml's block dot
 * products of rows quantized to the weight's dot type (few rows), or
 * panels dequantized to float32 and the float kernel (matmul_quant.c). */
#ifndef KVP_KERNELS_MATMUL_H
#define KVP_KERNELS_MATMUL_H

#include <stdbool.h>
#include <stdint.h>

#include "util/pool.h"

/* y[t][n] (=|+=) sum_k x[t][k] * W[n][k] for t < T, n < N.
 * W has N rows of K elements of ggml type wtype (F32/F16/BF16, or any type
 * kvq_type_supported accepts, rows of kvq_row_bytes(wtype, K) bytes, 2-byte
 * aligned); F32 rows must be 4-byte aligned. The rows are split over the
 * pool's workers (NULL: the calling thread alone). Returns false only when
 * scratch memory could not be allocated. */
bool kvk_matmul(float *y, const float *x, int T, const void *w, uint32_t wtype, int N, int K,
                bool accumulate, kvu_pool *pool);

/* Converts n elements of type `type` to float32 (quantized types: n a
 * multiple of the block). */
void kvk_to_f32(float *dst, const void *src, uint32_t type, int64_t n);

/* True for the weight types kvk_matmul handles (kvq_type_supported). */
bool kvk_matmul_type_ok(uint32_t type);

#endif
