/* Run-time CPU dispatch: which instruction set the kernels use.
 *
 * The library is built for plain x86-64. Kernels that need a newer
 * instruction set live in files named by it, and CMake compiles each such
 * file with exactly that set's flags (see CMakeLists.txt):
 *   *_avx2.c        -mavx2 -mfma -mf16c
 *   *_avx512.c      the above + -mavx512f -mavx512bw -mavx512vl -mavx512dq
 *   *_avx512vnni.c  the above + -mavx512vnni
 *   *_avx512bf16.c  avx512's flags + -mavx512bf16 (run only where
 *                   kvcpu_has_avx512bf16() and the level is avx512+)
 * Code in such a file may only run after kvcpu_current() said that level (or
 * a higher one) is in use; the caller picks the variant once per call:
 *
 *     switch (kvcpu_current()) {
 *     case KVCPU_AVX512VNNI:
 *     case KVCPU_AVX512: return kernel_avx512(...);
 *     case KVCPU_AVX2:   return kernel_avx2(...);
 *     default:           return kernel_scalar(...);
 *     }
 *
 * The level is detected once (cpuid for the instructions, xgetbv for the
 * register state the operating system saves) and cached; the environment
 * variable KVP_CPU=scalar|avx2|avx512|avx512vnni, read at that moment,
 * lowers it (a level the CPU lacks falls back to the best it has). */
#ifndef KVP_KERNELS_CPU_H
#define KVP_KERNELS_CPU_H

#include <stdbool.h>

typedef enum kvcpu_level {
    KVCPU_SCALAR = 0,     /* portable C                                        */
    KVCPU_AVX2 = 1,       /* AVX2 + FMA + F16C                                 */
    KVCPU_AVX512 = 2,     /* + AVX-512 F/BW/VL/DQ                              */
    KVCPU_AVX512VNNI = 3  /* + AVX512-VNNI (vpdpbusd)                          */
} kvcpu_level;

#define KVCPU_N_LEVELS 4

/* The level the kernels run at: the best the CPU and OS support, lowered by
 * KVP_CPU. Thread-safe; detected on the first call. */
kvcpu_level kvcpu_current(void);

/* The best level this CPU and OS support (KVP_CPU ignored). */
kvcpu_level kvcpu_level_best(void);

/* AVX512-BF16 (vdpbf16ps) is present and its state enabled. */
bool kvcpu_has_avx512bf16(void);

/* "scalar", "avx2", "avx512", "avx512vnni". */
const char *kvcpu_level_name(kvcpu_level level);

/* Parses a KVP_CPU value; false when it names no level. */
bool kvcpu_level_parse(const char *s, kvcpu_level *out);

#endif
