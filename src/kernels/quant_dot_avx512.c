/* Integer dot kernels for the avx512 instruction set (see quant_dot_isa.h). */

#define KVQD_FN(name) name##_avx512
#include "kernels/quant_dot_isa.h"
