/* GGML block-quantized weight types (internal): layouts, conversion, and
 * the quantized dot products of matrix-vector products.
 *
 * Block layouts are exactly GGUF's (ggml-common.h): a row of n elements of
 * a quantized type is n / block_elems(type) blocks, back to back, with no
 * padding. The numbering of the types is ggml's (enum in format/gguf.h).
 *
 * Layers:
 *   - type traits                 kvq_type_*        (quant.c)
 *   - dequantization, reference   kvq_dequantize_*  (quant.c, scalar, bit-exact
 *     quantizers                  kvq_quantize_*     to ggml's *_ref functions)
 *   - activation quantization and kvq_vec_dot_*     (quant_dot*.c, dispatched
 *     integer dot products                           at run time from cpuid)
 *
 * The prefill path (oneDNN or the f32 tile) needs only
 * kvq_dequantize_rows_f32 / kvq_dequantize_rows_bf16 from this header. */
#ifndef KVP_KERNELS_QUANT_H
#define KVP_KERNELS_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/pool.h"

/* Type traits. Unknown types: block_elems 0, name NULL. */
typedef struct kvq_type_traits {
    const char *name;       /* ggml's spelling: "Q4_K", "IQ4_NL", "F16", ... */
    int block_elems;        /* elements per block (1 for F32/F16/BF16)      */
    int block_bytes;        /* bytes per block                              */
    uint32_t vec_dot_type;  /* type the activations are quantized to for the
                               integer dot (Q8_0, Q8_1 or Q8_K); the type
                               itself for F32/F16/BF16                      */
    bool quantized;
} kvq_type_traits;

const kvq_type_traits *kvq_type_traits_of(uint32_t type);

/* True for every weight type the engine loads and multiplies. */
bool kvq_type_supported(uint32_t type);
/* Those types' names, comma-separated, for error messages. */
const char *kvq_supported_type_names(void);

/* Bytes of a row of n elements; 0 when n is not a multiple of the block. */
size_t kvq_row_bytes(uint32_t type, int64_t n);

/* rows x n elements (n a multiple of the block size; rows back to back) to
 * float32 / bfloat16 (round to nearest even, as kvk_f32_to_bf16). */
void kvq_dequantize_rows_f32(uint32_t type, const void *src, float *dst, int64_t rows, int64_t n);
void kvq_dequantize_rows_bf16(uint32_t type, const void *src, uint16_t *dst, int64_t rows,
                              int64_t n);

/* True for the types the two functions above convert (the supported
 * weight types and the activation types Q8_0 / Q8_1 / Q8_K). */
bool kvq_can_dequantize(uint32_t type);

/* Reference quantizer of one row (n a multiple of the block size):
 * bit-identical to ggml's quantize_row_<type>_ref. False for a type that
 * has no reference quantizer here. */
bool kvq_quantize_row_ref(uint32_t type, const float *src, void *dst, int64_t n);

/* Quantized matrix-vector products: activations x (n floats) are quantized
 * once to the weight type's vec_dot_type into xq (kvq_row_bytes of that
 * type), then each output is one integer dot of a weight row with xq. */
void kvq_quantize_activations(uint32_t vec_dot_type, const float *x, void *xq, int64_t n);
float kvq_vec_dot(uint32_t type, int64_t n, const void *w_row, const void *xq);

/* The portable versions of the two above, always available (the
 * dispatched kernels are tested against them): the same arithmetic as
 * ggml's quantize_row_q8_*_ref and ggml_vec_dot_*_generic, so their results
 * equal ggml's generic CPU code bit for bit. */
void kvq_quantize_activations_scalar(uint32_t vec_dot_type, const float *x, void *xq, int64_t n);
float kvq_vec_dot_scalar(uint32_t type, int64_t n, const void *w_row, const void *xq);

/* y[t][n] (=|+=) sum_k x[t][k] * W[n][k] for a quantized W of N rows of
 * kvq_row_bytes(wtype, K) bytes (kvk_matmul's quantized branch;
 * matmul_quant.c). Up to KVQ_DOT_MAX_ROWS activation rows: kvqd_matmul
 * (quant_dot.h), each row quantized once and every output one integer
 * dot. More rows: panels of W dequantized to float32 and the
 * float32 kernel. One thread computes each output in a fixed order, so
 * results do not depend on the thread count. False only when scratch
 * memory could not be allocated. */
/* 16: the integer path stays faster than dequantized panels up to 16
 * rows here (Q8_0 / Q4_K, 2048 x 1024, one thread: 1.2 vs 1.8 ms and 0.9 vs
 * 1.8 ms at 16 rows; at 32 Q8_0 ties, Q4_K is still ahead). */
#define KVQ_DOT_MAX_ROWS 16
bool kvq_matmul(float *y, const float *x, int T, const void *w, uint32_t wtype, int N, int K,
                bool accumulate, kvu_pool *pool);

/* The instruction set the dot kernels run on: the best the CPU has, or the
 * one KVP_CPU (scalar | avx2 | avx512 | avx512vnni) asks for. */
const char *kvq_cpu_path(void);

#endif
