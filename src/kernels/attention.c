#include "kernels/attention.h"

#include <math.h>
#include <string.h>

/* Keys are visited in tiles of TILE columns. Each tile of K (and of V for
 * the key score) is transposed once into [d][TILE] so that a query row's
 * logits for the whole tile are computed as broadcast-multiply-adds along
 * the keys (vectorised over keys, no horizontal sums), and the transpose is
 * shared by every row of the call. All loops run in a fixed order, so the
 * results depend on the inputs only, never on the caller's threading. */
#define TILE 64
#define MAX_D KVP_ATTN_MAX_HEAD_DIM
/* Below this many rows per call (decode) the transpose costs more than it
 * saves: logits are then plain dot products. */
#define MIN_ROWS_TRANSPOSED 8

static inline float dotf(const float *restrict a, const float *restrict b, int d) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int t = 0; t < d; t++) s += a[t] * b[t];
    return s;
}

/* z[t] = scale * q . k_(j0+t), straight from the row-major keys. */
static inline void direct_logits(const float *restrict q, const float *restrict k, int d,
                                 int nt, float scale, float *restrict z) {
    for (int t = 0; t < nt; t++) z[t] = scale * dotf(q, k + (size_t)t * d, d);
}

/* z[t] = scale * q . k_(j0+t) for t < nt, from the transposed tile kt. */
static inline void tile_logits(const float *restrict q, const float *restrict kt, int d,
                               int nt, float scale, float *restrict z) {
    float acc[TILE];
    for (int t = 0; t < TILE; t++) acc[t] = 0.0f;
    for (int u = 0; u < d; u++) {
        const float qu = q[u];
        const float *restrict row = kt + (size_t)u * TILE;
#pragma omp simd
        for (int t = 0; t < TILE; t++) acc[t] += qu * row[t];
    }
    for (int t = 0; t < nt; t++) z[t] = scale * acc[t];
}

static void transpose_tile(const float *src, int d, int nt, float *restrict dst) {
    for (int t = 0; t < nt; t++) {
        const float *s = src + (size_t)t * d;
        for (int u = 0; u < d; u++) dst[(size_t)u * TILE + t] = s[u];
    }
    for (int t = nt; t < TILE; t++)
        for (int u = 0; u < d; u++) dst[(size_t)u * TILE + t] = 0.0f;
}

void kvp_attn_forward(const float *q, size_t q_stride, int n_q,
                      const float *k, const float *v, int d, int kv_base,
                      float scale, float *out, size_t out_stride,
                      float *row_max, float *row_sum) {
    float kt[MAX_D * TILE];
    float z[TILE];
    for (int i = 0; i < n_q; i++) {
        float *oi = out + (size_t)i * out_stride;
        memset(oi, 0, sizeof(float) * (size_t)d);
        row_max[i] = -INFINITY;
        row_sum[i] = 0.0f;
    }
    int n_see_max = kv_base + n_q; /* the last row sees the most keys */
    const bool transposed = n_q >= MIN_ROWS_TRANSPOSED;
    for (int j0 = 0; j0 < n_see_max; j0 += TILE) {
        int nt_all = n_see_max - j0 < TILE ? n_see_max - j0 : TILE;
        if (transposed) transpose_tile(k + (size_t)j0 * d, d, nt_all, kt);
        /* rows that see none of this tile are skipped */
        int i0 = j0 - kv_base > 0 ? j0 - kv_base : 0;
        for (int i = i0; i < n_q; i++) {
            const float *qi = q + (size_t)i * q_stride;
            float *oi = out + (size_t)i * out_stride;
            int n_see = kv_base + i + 1 - j0;
            int nt = n_see < nt_all ? n_see : nt_all;
            if (transposed) tile_logits(qi, kt, d, nt, scale, z);
            else direct_logits(qi, k + (size_t)j0 * d, d, nt, scale, z);
            float m = row_max[i], l = row_sum[i];
            float tmax = -INFINITY;
            for (int t = 0; t < nt; t++)
                if (z[t] > tmax) tmax = z[t];
            if (tmax > m) {
                float c = expf(m - tmax); /* m = -inf on the first tile: 0 */
                l *= c;
#pragma omp simd
                for (int u = 0; u < d; u++) oi[u] *= c;
                m = tmax;
            }
            for (int t = 0; t < nt; t++) {
                float w = expf(z[t] - m);
                const float *vj = v + (size_t)(j0 + t) * d;
                l += w;
#pragma omp simd
                for (int u = 0; u < d; u++) oi[u] += w * vj[u];
            }
            row_max[i] = m;
            row_sum[i] = l;
        }
    }
    for (int i = 0; i < n_q; i++) {
        float *oi = out + (size_t)i * out_stride;
        float inv = 1.0f / row_sum[i];
        for (int t = 0; t < d; t++) oi[t] *= inv;
    }
}

void kvp_attn_colreduce(const float *q, size_t q_stride, int row_begin,
                        int row_end, const float *k, const float *v, int d,
                        int kv_base, float scale, const float *row_max,
                        const float *row_sum, const float *out,
                        size_t out_stride, int col_begin, int col_end,
                        const kvp_colreduce_req *req, double *col_attn,
                        double *col_key) {
    float kt[MAX_D * TILE], vt[MAX_D * TILE];
    float z[TILE], vo[TILE];
    const bool transposed = row_end - row_begin >= MIN_ROWS_TRANSPOSED;
    for (int j0 = col_begin; j0 < col_end; j0 += TILE) {
        int nt_all = col_end - j0 < TILE ? col_end - j0 : TILE;
        if (transposed) {
            transpose_tile(k + (size_t)j0 * d, d, nt_all, kt);
            if (req->key) transpose_tile(v + (size_t)j0 * d, d, nt_all, vt);
        }
        /* row i sees key j when j <= kv_base + i */
        int i0 = j0 - kv_base > row_begin ? j0 - kv_base : row_begin;
        for (int i = i0; i < row_end; i++) {
            const float *qi = q + (size_t)i * q_stride;
            int nt = kv_base + i + 1 - j0;
            if (nt > nt_all) nt = nt_all;
            const float *oi = out + (size_t)i * out_stride;
            if (transposed) {
                tile_logits(qi, kt, d, nt, 1.0f, z);
                /* v_j . o_i for the tile, vectorised over keys like z */
                if (req->key) tile_logits(oi, vt, d, nt, 1.0f, vo);
            } else {
                direct_logits(qi, k + (size_t)j0 * d, d, nt, 1.0f, z);
                if (req->key) direct_logits(oi, v + (size_t)j0 * d, d, nt, 1.0f, vo);
            }
            const float m = row_max[i], inv_l = 1.0f / row_sum[i];
            for (int t = 0; t < nt; t++) {
                float zz = scale * z[t];
                double a = (double)(expf(zz - m) * inv_l);
                int j = j0 + t;
                if (req->p == 1)
                    col_attn[j] += a;
                else if (req->p == 2)
                    col_attn[j] += a * a;
                if (req->key) {
                    double v2 = (double)req->v2[j], dvo = (double)vo[t];
                    double az = a * (double)zz;
                    double s = az * az * (v2 + (double)req->out_sq[i] - 2.0 * dvo);
                    if (req->cross) s += 2.0 * a * a * (double)zz * (v2 - dvo);
                    col_key[j] += s;
                }
            }
        }
    }
}
