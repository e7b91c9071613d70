/* kvk_matmul: the variant for the instruction set kvcpu_current() chose. */
#include "kernels/matmul.h"

#include "format/gguf.h"
#include "kernels/cpu.h"
#include "kernels/matmul_variants.h"
#include "kernels/quant.h"

bool kvk_matmul_type_ok(uint32_t type) { return kvq_type_supported(type); }

void kvk_to_f32(float *dst, const void *src, uint32_t type, int64_t n) {
    if (kvq_type_traits_of(type)->quantized) {
        kvq_dequantize_rows_f32(type, src, dst, 1, n);
        return;
    }
    switch (kvcpu_current()) {
    case KVCPU_AVX512VNNI:
    case KVCPU_AVX512: kvmm_to_f32_avx512(dst, src, type, n); return;
    case KVCPU_AVX2: kvmm_to_f32_avx2(dst, src, type, n); return;
    default: kvmm_to_f32_scalar(dst, src, type, n); return;
    }
}

bool kvk_matmul(float *y, const float *x, int T, const void *w, uint32_t wtype, int N, int K,
                bool accumulate, kvu_pool *pool) {
    if (kvq_type_traits_of(wtype)->quantized)
        return kvq_matmul(y, x, T, w, wtype, N, K, accumulate, pool);
    switch (kvcpu_current()) {
    case KVCPU_AVX512VNNI:
    case KVCPU_AVX512: return kvmm_matmul_avx512(y, x, T, w, wtype, N, K, accumulate, pool);
    case KVCPU_AVX2: return kvmm_matmul_avx2(y, x, T, w, wtype, N, K, accumulate, pool);
    default: return kvmm_matmul_scalar(y, x, T, w, wtype, N, K, accumulate, pool);
    }
}
