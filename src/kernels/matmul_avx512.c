/* The matrix product for the avx512 instruction set (see matmul_isa.h). */
#include "kernels/matmul_variants.h"

#define KVMM_AVX512 1
#define KVMM_FN(name) name##_avx512
#include "kernels/matmul_isa.h"
