/* The attention kernels: the variant for the instruction set
 * kvcpu_current() chose (attention_isa.h, compiled per set). */
#include "kernels/attention.h"

#include <stdint.h>

#include "kernels/attention_variants.h"
#include "kernels/cpu.h"

size_t kva_elem_size(kvp_kv_type t) { return t == KVP_KV_F32 ? sizeof(float) : sizeof(uint16_t); }

/* KVA_CALL(fn, args): fn_avx512 / fn_avx2 / fn_scalar by the CPU level. */
#define KVA_CALL(fn, ...)                                                                         \
    do {                                                                                          \
        switch (kvcpu_current()) {                                                                \
        case KVCPU_AVX512VNNI:                                                                    \
        case KVCPU_AVX512: fn##_avx512(__VA_ARGS__); return;                                      \
        case KVCPU_AVX2: fn##_avx2(__VA_ARGS__); return;                                          \
        default: fn##_scalar(__VA_ARGS__); return;                                                \
        }                                                                                         \
    } while (0)

void kva_load_rows(float *dst, const void *src, size_t n, kvp_kv_type t) {
    KVA_CALL(kva_load_rows, dst, src, n, t);
}

void kva_store_rows(void *dst, const float *src, size_t n, kvp_kv_type t) {
    KVA_CALL(kva_store_rows, dst, src, n, t);
}

void kvk_attn_forward(const float *q, size_t q_stride, int n_q, const void *k, const void *v,
                      kvp_kv_type kv_type, int d, int kv_base, float scale, float *out,
                      size_t out_stride, float *row_max, float *row_sum, float *z_row) {
    KVA_CALL(kvk_attn_forward, q, q_stride, n_q, k, v, kv_type, d, kv_base, scale, out, out_stride,
             row_max, row_sum, z_row);
}

void kvk_attn_forward_heads(const float *q, size_t q_hstride, int n_heads, const void *k,
                            const void *v, kvp_kv_type kv_type, int d, int n_keys, float scale,
                            float *out, size_t out_hstride, float *row_max, float *row_sum,
                            size_t rs_hstride, float *z_rows, size_t z_hstride) {
    KVA_CALL(kvk_attn_forward_heads, q, q_hstride, n_heads, k, v, kv_type, d, n_keys, scale, out,
             out_hstride, row_max, row_sum, rs_hstride, z_rows, z_hstride);
}

void kvk_attn_colreduce(const float *q, size_t q_stride, int row_begin, int row_end,
                        const void *k, const void *v, kvp_kv_type kv_type, int d, int kv_base,
                        float scale, const float *row_max, const float *row_sum,
                        const float *out, size_t out_stride, int col_begin, int col_end,
                        const kvk_colreduce_req *req, const float *z_row, double *col_attn,
                        double *col_key) {
    KVA_CALL(kvk_attn_colreduce, q, q_stride, row_begin, row_end, k, v, kv_type, d, kv_base,
             scale, row_max, row_sum, out, out_stride, col_begin, col_end, req, z_row, col_attn,
             col_key);
}

bool kvk_attn_bf16_active(int d) {
    return d % 2 == 0 && d <= KVP_ATTN_MAX_HEAD_DIM && kvcpu_current() >= KVCPU_AVX512 &&
           kvcpu_has_avx512bf16();
}

void kvk_attn_forward_bf16(const float *q, size_t q_stride, int n_q, const void *k, const void *v,
                           kvp_kv_type kv_type, int d, int kv_base, float scale, float *out,
                           size_t out_stride, float *row_max, float *row_sum) {
    if (kvk_attn_bf16_active(d))
        kvk_attn_forward_bf16_avx512bf16(q, q_stride, n_q, k, v, kv_type, d, kv_base, scale, out,
                                         out_stride, row_max, row_sum);
    else
        kvk_attn_forward(q, q_stride, n_q, k, v, kv_type, d, kv_base, scale, out, out_stride,
                         row_max, row_sum, NULL);
}

void kvk_attn_colreduce_bf16(const float *q, size_t q_stride, int row_begin, int row_end,
                             const void *k, const void *v, kvp_kv_type kv_type, int d,
                             int kv_base, float scale, const float *row_max, const float *row_sum,
                             const float *out, size_t out_stride, int col_begin, int col_end,
                             const kvk_colreduce_req *req, double *col_attn, double *col_key) {
    if (kvk_attn_bf16_active(d))
        kvk_attn_colreduce_bf16_avx512bf16(q, q_stride, row_begin, row_end, k, v, kv_type, d,
                                           kv_base, scale, row_max, row_sum, out, out_stride,
                                           col_begin, col_end, req, col_attn, col_key);
    else
        kvk_attn_colreduce(q, q_stride, row_begin, row_end, k, v, kv_type, d, kv_base, scale,
                           row_max, row_sum, out, out_stride, col_begin, col_end, req, NULL,
                           col_attn, col_key);
}
