/* The matrix product for the avx2 instruction set (see matmul_isa.h). */
#include "kernels/matmul_variants.h"

#define KVMM_AVX2 1
#define KVMM_FN(name) name##_avx2
#include "kernels/matmul_isa.h"
