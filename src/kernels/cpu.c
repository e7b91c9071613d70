#include "kernels/cpu.h"

#include "kvprune.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quant.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define KVCPU_X86 1
#endif

static const char *const level_names[KVCPU_N_LEVELS] = {"scalar", "avx2", "avx512", "avx512vnni"};

const char *kvcpu_level_name(kvcpu_level level) {
    return (unsigned)level < KVCPU_N_LEVELS ? level_names[level] : "unknown";
}

bool kvcpu_level_parse(const char *s, kvcpu_level *out) {
    for (int i = 0; i < KVCPU_N_LEVELS; i++)
        if (s && !strcmp(s, level_names[i])) {
            *out = (kvcpu_level)i;
            return true;
        }
    return false;
}

/* Bits 0-1: best level; bit 2: AVX512-BF16; bit 3: set once detected. */
#define DETECTED 8

#ifdef KVCPU_X86
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static int detect(void) {
    int level = KVCPU_SCALAR, bf16 = 0;
#ifdef KVCPU_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return DETECTED;
    const bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12),
               f16c = c & (1u << 29);
    if (!osxsave || !avx) return DETECTED;
    const uint64_t xcr0 = xgetbv0();
    const bool ymm_state = (xcr0 & 0x6) == 0x6;      /* XMM + YMM         */
    const bool zmm_state = (xcr0 & 0xe6) == 0xe6;    /* + opmask, ZMM0-31 */
    if (!ymm_state || __get_cpuid_max(0, NULL) < 7) return DETECTED;
    __cpuid_count(7, 0, a, b, c, d);
    const bool avx2 = b & (1u << 5), f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30),
               vl = b & (1u << 31), vnni = c & (1u << 11);
    unsigned a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    (void)b1, (void)c1, (void)d1;
    if (avx2 && fma && f16c) {
        level = KVCPU_AVX2;
        if (zmm_state && f && bw && vl && dq) {
            level = vnni ? KVCPU_AVX512VNNI : KVCPU_AVX512;
            bf16 = (a1 >> 5) & 1;
        }
    }
#endif
    return DETECTED | (bf16 << 2) | level;
}

/* Detection is deterministic, so racing first calls store the same value. */
static atomic_int detected;
static atomic_int chosen = -1;

static int features(void) {
    int v = atomic_load_explicit(&detected, memory_order_relaxed);
    if (!v) {
        v = detect();
        atomic_store_explicit(&detected, v, memory_order_relaxed);
    }
    return v;
}

kvcpu_level kvcpu_level_best(void) { return (kvcpu_level)(features() & 3); }

bool kvcpu_has_avx512bf16(void) { return features() & 4; }

kvcpu_level kvcpu_current(void) {
    int v = atomic_load_explicit(&chosen, memory_order_relaxed);
    if (v < 0) {
        kvcpu_level best = kvcpu_level_best(), want;
        v = best;
        if (kvcpu_level_parse(getenv("KVP_CPU"), &want) && want < best) v = want;
        atomic_store_explicit(&chosen, v, memory_order_relaxed);
    }
    return (kvcpu_level)v;
}

const char *kvq_cpu_path(void) { return kvcpu_level_name(kvcpu_current()); }

void kvp_get_system_info(kvp_system_info *info) {
    info->cpu_path = kvcpu_level_name(kvcpu_current());
    info->cpu_best = kvcpu_level_name(kvcpu_level_best());
    info->avx512_bf16 = kvcpu_has_avx512bf16();
}
