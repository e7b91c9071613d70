/* Weight products of many rows (prefill, chunked prefill, decode blocks)
 * through oneDNN matmul primitives (internal).
 *
 * The weight matrix is cut into panels of rows whose size depends only on
 * K, and the tokens into blocks of fixed size; each (panel, block) product
 * is one single-threaded primitive call made by one of the pool's workers
 * (util/pool.h; each sets its own OpenMP limit to 1 for the call, so
 * oneDNN's OpenMP runtime starts no threads of its own). Every output element therefore comes from the same primitive on
 * the same operands whatever the thread count: results depend on the build,
 * the CPU's instruction set and the compute type, never on the threads.
 *
 * Weights are read in their stored type: F32 (f32 compute) and BF16 (bf16
 * compute) rows are passed to oneDNN where they lie (the mapped file); other
 * combinations, block-quantized types included (kernels/quant.h), are
 * converted one panel at a time into a per-thread buffer that stays in
 * cache. Primitives are created on first use of a shape and
 * kept in a small cache owned by the context (thread-safe). */
#ifndef KVP_KERNELS_MATMUL_DNNL_H
#define KVP_KERNELS_MATMUL_DNNL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/pool.h"

typedef struct kvdn_ctx kvdn_ctx;

/* Compute types of the products (values of kvp_compute in kvprune.h). */
enum { KVDN_COMPUTE_AUTO = 0, KVDN_COMPUTE_F32 = 1, KVDN_COMPUTE_BF16 = 2 };

/* True when this build links oneDNN. */
bool kvdn_available(void);

/* A context for one model; NULL when oneDNN is not built in or its CPU
 * engine cannot be created (callers then use kvk_matmul's kernels). */
kvdn_ctx *kvdn_new(int compute);
void kvdn_free(kvdn_ctx *ctx);

/* The compute type the products of weights of `wtype` run in. */
int kvdn_compute_for(const kvdn_ctx *ctx, uint32_t wtype);

/* The fewest tokens a product goes through oneDNN for (below it the
 * project's own kernels are faster). */
int kvdn_min_rows(void);

/* y[t][n] (=|+=) sum_k x[t][k] * W[n][k], as kvk_matmul, for W of any type
 * kvq_type_supported accepts (K a multiple of its block). Returns 1 when
 * the product was done, 0 when this context does not handle it (too few
 * rows or a weight type it does not know: use kvk_matmul), -1 when memory
 * or a primitive could not be created. */
int kvdn_matmul(kvdn_ctx *ctx, float *y, const float *x, int T, const void *w, uint32_t wtype, int N,
                int K, bool accumulate, kvu_pool *pool);

/* The implementation oneDNN picked for the last primitive created (for
 * benchmarks), e.g. "brg:avx512_core_bf16"; "" when none. */
const char *kvdn_impl_name(const kvdn_ctx *ctx);

#endif
