/*
 * Tiled causal attention for one query head over one key/value stream, in
 * two passes so that the pruning cache can score tokens from the exact
 * softmax weights without ever holding an n x n matrix:
 *
 *   1. kvk_attn_forward: flash-style online softmax per query row -> the
 *      outputs o_i and each row's final maximum m_i and normaliser l_i.
 *   2. kvk_attn_colreduce: for the rows that score, revisit the logits with
 *      the final m_i, l_i (a_ij = exp(z_ij - m_i) / l_i) and add per key
 *      column the reductions the tracker needs (see below). Memory is O(n).
 *
 * Causality is expressed with kv_base: query row i sees keys 0..kv_base+i
 * (the cached tokens plus the block's tokens up to itself).
 * Both passes are single-threaded and deterministic; the caller parallelises
 * over heads, query tiles (pass 1) and key-column blocks (pass 2), so each
 * column is always summed by one thread in increasing row order.
 *
 * K and V rows are stored in a kvp_kv_type (float32, f16 or bf16; rows of d
 * elements, row j at element j*d) and widened to float32 exactly, so the
 * results are those of float32 rows holding the rounded values. Queries,
 * outputs, logits and scores are float32/float64 whatever the type.
 */
#ifndef KVP_KERNELS_ATTENTION_H
#define KVP_KERNELS_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>

#include "kvprune.h"

/* Largest head dimension the kernels take (tiles live on the stack). */
#define KVP_ATTN_MAX_HEAD_DIM 256

/* Bytes of one element of type t (4 or 2). */
size_t kva_elem_size(kvp_kv_type t);
/* n elements of type t to float32 (exact) and float32 to type t (round to
 * nearest even; f32: a copy). */
void kva_load_rows(float *dst, const void *src, size_t n, kvp_kv_type t);
void kva_store_rows(void *dst, const float *src, size_t n, kvp_kv_type t);

/* q rows at q + i*q_stride; k, v rows (of type kv_type) at row j*d; out rows at
 * out + i*out_stride. row_max/row_sum receive m_i and l_i for rows 0..n_q-1.
 * z_row (NULL, or used only when n_q == 1: decode) receives the row's
 * scaled logits z_0j for j <= kv_base, so that pass 2 need not recompute
 * them. */
void kvk_attn_forward(const float *q, size_t q_stride, int n_q,
                      const void *k, const void *v, kvp_kv_type kv_type, int d, int kv_base,
                      float scale, float *out, size_t out_stride,
                      float *row_max, float *row_sum, float *z_row);

/* One query row per head for several heads that share one K/V stream
 * (GQA decode): head h's query at q + h*q_hstride sees keys 0..n_keys-1;
 * its output goes to out + h*out_hstride, m and l to row_max/row_sum at
 * h*rs_hstride, its logits (when z_rows is not NULL) to z_rows +
 * h*z_hstride. The same bits as kvk_attn_forward on each head with
 * n_q = 1 and kv_base = n_keys - 1; K/V are read once for the group. */
void kvk_attn_forward_heads(const float *q, size_t q_hstride, int n_heads,
                            const void *k, const void *v, kvp_kv_type kv_type, int d, int n_keys,
                            float scale, float *out, size_t out_hstride,
                            float *row_max, float *row_sum, size_t rs_hstride,
                            float *z_rows, size_t z_hstride);

/* What pass 2 accumulates per key column j over rows i in [row_begin,
 * row_end) that see j (i >= j - kv_base):
 *   col_attn[j] += a_ij^p                               (p = 1 or 2; p = 0: skip)
 *   col_key[j]  += (a_ij z_ij)^2 (V2_j + |o_i|^2 - 2 v_j.o_i)      (key)
 *               +  2 a_ij^2 z_ij (V2_j - v_j.o_i)                   (cross)
 * with z_ij = scale * q_i.k_j, V2_j = v2[j], |o_i|^2 = out_sq[i].
 * z_row: NULL, or for a single row (row_end - row_begin == 1) the logits
 * kvk_attn_forward saved for it (the same bits it would recompute). */
typedef struct kvk_colreduce_req {
    int p;
    bool key;
    bool cross;
    const float *v2;     /* [n_kv], needed when key                       */
    const float *out_sq; /* [n_q] |o_i|^2, needed when key                */
} kvk_colreduce_req;

void kvk_attn_colreduce(const float *q, size_t q_stride, int row_begin,
                        int row_end, const void *k, const void *v, kvp_kv_type kv_type, int d,
                        int kv_base, float scale, const float *row_max,
                        const float *row_sum, const float *out,
                        size_t out_stride, int col_begin, int col_end,
                        const kvk_colreduce_req *req, const float *z_row,
                        double *col_attn, double *col_key);

/* Pass 1 and pass 2 with the compute type bf16 (prefill blocks; the
 * callers keep the float32 kernels above for decode and short blocks):
 * queries, keys and values are rounded to bfloat16 (nearest even) and
 * QK^T and PV multiply in pairs with float32 sums (AVX512-BF16
 * vdpbf16ps); the softmax itself (scaled logits, max, exp, normaliser l) is
 * float32 as in kvk_attn_forward, and only the weights entering PV are
 * rounded to bf16. kvk_attn_colreduce_bf16 recomputes
 * kvk_attn_forward_bf16's logits bit for bit, so the column reductions see
 * exactly the softmax whose m_i, l_i pass 1 returned. Any split of rows into
 * calls gives the same bits (keys pair from absolute chunk starts).
 * kvk_attn_bf16_active(d): these run in bf16 (a CPU with AVX512-BF16, the
 * level avx512 or above, d even); otherwise they ARE kvk_attn_forward /
 * kvk_attn_colreduce in float32. */
bool kvk_attn_bf16_active(int d);
void kvk_attn_forward_bf16(const float *q, size_t q_stride, int n_q, const void *k, const void *v,
                           kvp_kv_type kv_type, int d, int kv_base, float scale, float *out,
                           size_t out_stride, float *row_max, float *row_sum);
void kvk_attn_colreduce_bf16(const float *q, size_t q_stride, int row_begin, int row_end,
                             const void *k, const void *v, kvp_kv_type kv_type, int d,
                             int kv_base, float scale, const float *row_max, const float *row_sum,
                             const float *out, size_t out_stride, int col_begin, int col_end,
                             const kvk_colreduce_req *req, double *col_attn, double *col_key);

#endif
