/* The attention kernels for AVX512-BF16 (see attention_isa.h): the avx512
 * kernels plus the bf16 prefill tiles (vdpbf16ps) of the compute type bf16. */
#define KVA_ISA_AVX512 1
#define KVA_BF16 1
#define KVA_FN(name) name##_avx512bf16
#include "kernels/attention_isa.h"
