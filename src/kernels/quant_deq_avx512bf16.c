/* Dequantization compiled for AVX-512 + AVX512-BF16 (see quant_deq_isa.h). */

#define KVQ_DEQ_FN(name) name##_avx512bf16
#define KVQ_DEQ_WANT_BF16
#include "kernels/quant_deq_isa.h"
