/* The attention kernels for the scalar instruction set (see attention_isa.h). */
#define KVA_FN(name) name##_scalar
#include "kernels/attention_isa.h"
