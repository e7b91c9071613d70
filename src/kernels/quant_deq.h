/* The per-instruction-set copies of the dequantization (quant_deq_isa.h);
 * kvq_dequantize_rows_f32 / _bf16 (quant.h) pick one from kvcpu_current()
 * (and kvcpu_has_avx512bf16()). Every copy gives the same bits. */
#ifndef KVP_KERNELS_QUANT_DEQ_H
#define KVP_KERNELS_QUANT_DEQ_H

#include <stdbool.h>
#include <stdint.h>

#define KVQ_DEQ_DECLARE(isa)                                                                   \
    bool kvq_deq_known_##isa(uint32_t type);                                                  \
    void kvq_deq_rows_f32_##isa(uint32_t type, const void *src, float *dst, int64_t rows,     \
                                int64_t n);                                                   \
    void kvq_deq_rows_bf16_##isa(uint32_t type, const void *src, uint16_t *dst, int64_t rows, \
                                 int64_t n);

KVQ_DEQ_DECLARE(scalar)
KVQ_DEQ_DECLARE(avx2)
KVQ_DEQ_DECLARE(avx512)
KVQ_DEQ_DECLARE(avx512bf16)

#undef KVQ_DEQ_DECLARE

#endif
