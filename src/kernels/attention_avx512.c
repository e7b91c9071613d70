/* The attention kernels for the avx512 instruction set (see attention_isa.h). */
#define KVA_ISA_AVX512 1
#define KVA_FN(name) name##_avx512
#include "kernels/attention_isa.h"
