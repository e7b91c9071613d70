/* Dequantization compiled for AVX-512 (see quant_deq_isa.h). */

#define KVQ_DEQ_FN(name) name##_avx512
#include "kernels/quant_deq_isa.h"
