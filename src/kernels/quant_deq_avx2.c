/* Dequantization compiled for AVX2 + F16C (see quant_deq_isa.h). */

#define KVQ_DEQ_FN(name) name##_avx2
#include "kernels/quant_deq_isa.h"
