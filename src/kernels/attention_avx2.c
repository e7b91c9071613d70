/* The attention kernels for the avx2 instruction set (see attention_isa.h). */
#define KVA_ISA_AVX2 1
#define KVA_FN(name) name##_avx2
#include "kernels/attention_isa.h"
