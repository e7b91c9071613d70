/* Integer dot kernels for the avx512vnni instruction set (see quant_dot_isa.h). */
#define KVQD_VNNI 1
#define KVQD_FN(name) name##_avx512vnni
#include "kernels/quant_dot_isa.h"
