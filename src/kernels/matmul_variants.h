/* The per-instruction-set variants of kvk_matmul / kvk_to_f32 (same bits in
 * every variant); matmul.c picks one from kvcpu_current(). */
#ifndef KVP_KERNELS_MATMUL_VARIANTS_H
#define KVP_KERNELS_MATMUL_VARIANTS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/pool.h"

#define KVMM_DECLARE(isa)                                                                     \
    bool kvmm_matmul_##isa(float *y, const float *x, int T, const void *w, uint32_t wtype,   \
                           int N, int K, bool accumulate, kvu_pool *pool);                    \
    void kvmm_to_f32_##isa(float *dst, const void *src, uint32_t type, int64_t n);

KVMM_DECLARE(scalar)
KVMM_DECLARE(avx2)
KVMM_DECLARE(avx512)

#endif
