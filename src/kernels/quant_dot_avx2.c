/* Integer dot kernels for the avx2 instruction set (see quant_dot_isa.h). */

#define KVQD_FN(name) name##_avx2
#include "kernels/quant_dot_isa.h"
