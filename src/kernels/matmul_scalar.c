/* The matrix product for the scalar instruction set (see matmul_isa.h). */
#include "kernels/matmul_variants.h"


#define KVMM_FN(name) name##_scalar
#include "kernels/matmul_isa.h"
