/* Dequantization compiled for plain C (any CPU) (see quant_deq_isa.h). */

#define KVQ_DEQ_FN(name) name##_scalar
#include "kernels/quant_deq_isa.h"
