/* The per-instruction-set variants of the attention kernels (attention.h),
 * compiled from attention_isa.h; attention.c picks one from
 * kvcpu_current(). */
#ifndef KVP_KERNELS_ATTENTION_VARIANTS_H
#define KVP_KERNELS_ATTENTION_VARIANTS_H

#include "kernels/attention.h"

#define KVA_DECLARE(isa)                                                                          \
    void kva_load_rows_##isa(float *dst, const void *src, size_t n, kvp_kv_type t);              \
    void kva_store_rows_##isa(void *dst, const float *src, size_t n, kvp_kv_type t);             \
    void kvk_attn_forward_##isa(const float *q, size_t q_stride, int n_q, const void *k,         \
                                const void *v, kvp_kv_type kv_type, int d, int kv_base,          \
                                float scale, float *out, size_t out_stride, float *row_max,     \
                                float *row_sum, float *z_row);                                   \
    void kvk_attn_forward_heads_##isa(const float *q, size_t q_hstride, int n_heads,             \
                                      const void *k, const void *v, kvp_kv_type kv_type, int d,  \
                                      int n_keys, float scale, float *out, size_t out_hstride,   \
                                      float *row_max, float *row_sum, size_t rs_hstride,         \
                                      float *z_rows, size_t z_hstride);                          \
    void kvk_attn_colreduce_##isa(const float *q, size_t q_stride, int row_begin, int row_end,   \
                                  const void *k, const void *v, kvp_kv_type kv_type, int d,      \
                                  int kv_base, float scale, const float *row_max,                \
                                  const float *row_sum, const float *out, size_t out_stride,     \
                                  int col_begin, int col_end, const kvk_colreduce_req *req,      \
                                  const float *z_row, double *col_attn, double *col_key);

KVA_DECLARE(scalar)
KVA_DECLARE(avx2)
KVA_DECLARE(avx512)
KVA_DECLARE(avx512bf16)

/* The bf16 prefill tiles (attention_avx512bf16.c only). */
void kvk_attn_forward_bf16_avx512bf16(const float *q, size_t q_stride, int n_q, const void *k,
                                      const void *v, kvp_kv_type kv_type, int d, int kv_base,
                                      float scale, float *out, size_t out_stride, float *row_max,
                                      float *row_sum);
void kvk_attn_colreduce_bf16_avx512bf16(const float *q, size_t q_stride, int row_begin,
                                        int row_end, const void *k, const void *v,
                                        kvp_kv_type kv_type, int d, int kv_base, float scale,
                                        const float *row_max, const float *row_sum,
                                        const float *out, size_t out_stride, int col_begin,
                                        int col_end, const kvk_colreduce_req *req,
                                        double *col_attn, double *col_key);

#endif
