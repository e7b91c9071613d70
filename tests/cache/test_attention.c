/* The attention kernel alone against a naive float64 computation: outputs,
 * row maxima/normalisers and the per-column reductions, for head sizes that
 * are not multiples of the vector width, both logit paths (few rows: dot
 * products; many rows: transposed key tiles), cached tokens before the
 * block (kv_base > 0) and column ranges that cut tiles. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/attention.h"
#include "test_util.h"

static uint64_t st = 0x1234567u;
static float frand(void) {
    st ^= st << 13;
    st ^= st >> 7;
    st ^= st << 17;
    return (float)((st >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void check_case(int n_q, int kv_base, int d, int col_begin, int col_end) {
    int n_kv = kv_base + n_q;
    float *q = malloc(sizeof(float) * (size_t)n_q * d), *k = malloc(sizeof(float) * (size_t)n_kv * d);
    float *v = malloc(sizeof(float) * (size_t)n_kv * d), *o = malloc(sizeof(float) * (size_t)n_q * d);
    float *mx = malloc(sizeof(float) * n_q), *sm = malloc(sizeof(float) * n_q);
    float *v2 = malloc(sizeof(float) * n_kv), *o2 = malloc(sizeof(float) * n_q);
    double *ca = calloc((size_t)n_kv, sizeof(double)), *ck = calloc((size_t)n_kv, sizeof(double));
    double *ra = calloc((size_t)n_kv, sizeof(double)), *rk = calloc((size_t)n_kv, sizeof(double));
    for (int i = 0; i < n_q * d; i++) q[i] = 1.5f * frand();
    for (int i = 0; i < n_kv * d; i++) k[i] = frand(), v[i] = frand();
    float scale = 1.0f / sqrtf((float)d);
    float *zrow = malloc(sizeof(float) * n_kv);
    kvp_attn_forward(q, (size_t)d, n_q, k, v, d, kv_base, scale, o, (size_t)d, mx, sm,
                     n_q == 1 ? zrow : NULL);
    for (int j = 0; j < n_kv; j++) {
        double s = 0;
        for (int u = 0; u < d; u++) s += (double)v[j * d + u] * v[j * d + u];
        v2[j] = (float)s;
    }
    double max_out = 0, max_col = 0;
    int row_begin = n_q / 3;
    for (int i = 0; i < n_q; i++) {
        double s2 = 0;
        for (int u = 0; u < d; u++) s2 += (double)o[i * d + u] * o[i * d + u];
        o2[i] = (float)s2;
    }
    for (int i = 0; i < n_q; i++) {
        int see = kv_base + i + 1;
        double *z = malloc(sizeof(double) * see), m = -INFINITY, l = 0;
        for (int j = 0; j < see; j++) {
            double s = 0;
            for (int u = 0; u < d; u++) s += (double)q[i * d + u] * k[j * d + u];
            z[j] = s * scale;
            if (z[j] > m) m = z[j];
        }
        for (int j = 0; j < see; j++) l += exp(z[j] - m);
        double oo[512] = {0};
        for (int j = 0; j < see; j++)
            for (int u = 0; u < d; u++) oo[u] += exp(z[j] - m) / l * v[j * d + u];
        for (int u = 0; u < d; u++) {
            double e = fabs(oo[u] - o[i * d + u]);
            if (e > max_out) max_out = e;
        }
        CHECK_NEAR(mx[i], m, 1e-5);
        CHECK_NEAR(sm[i], l, 1e-4);
        if (i >= row_begin)
            for (int j = col_begin; j < col_end && j < see; j++) {
                double a = exp(z[j] - m) / l, vo = 0, o2d = 0;
                for (int u = 0; u < d; u++) vo += (double)v[j * d + u] * oo[u], o2d += oo[u] * oo[u];
                ra[j] += a * a;
                rk[j] += (a * z[j]) * (a * z[j]) * (v2[j] + o2d - 2 * vo) +
                         2 * a * a * z[j] * (v2[j] - vo);
            }
        free(z);
    }
    kvp_colreduce_req req = {2, true, true, v2, o2};
    kvp_attn_colreduce(q, (size_t)d, row_begin, n_q, k, v, d, kv_base, scale, mx, sm, o,
                       (size_t)d, col_begin, col_end, &req, NULL, ca, ck);
    if (n_q == 1) {
        /* decode: pass 2 from pass 1's saved logits gives the same bits */
        double *ca2 = calloc((size_t)n_kv, sizeof(double)), *ck2 = calloc((size_t)n_kv, sizeof(double));
        kvp_attn_colreduce(q, (size_t)d, 0, 1, k, v, d, kv_base, scale, mx, sm, o, (size_t)d,
                           col_begin, col_end, &req, zrow, ca2, ck2);
        CHECK_MSG(memcmp(ca, ca2, sizeof(double) * n_kv) == 0 &&
                      memcmp(ck, ck2, sizeof(double) * n_kv) == 0,
                  "kv_base %d d %d: saved logits change pass 2", kv_base, d);
        free(ca2), free(ck2);
    }
    for (int j = 0; j < n_kv; j++) {
        bool in = j >= col_begin && j < col_end;
        if (!in) CHECK(ca[j] == 0.0 && ck[j] == 0.0);
        double e = fabs(ca[j] - ra[j]) / (fabs(ra[j]) > 1e-3 ? fabs(ra[j]) : 1e-3);
        double e2 = fabs(ck[j] - rk[j]) / (fabs(rk[j]) > 1e-2 ? fabs(rk[j]) : 1e-2);
        if (e > max_col) max_col = e;
        if (e2 > max_col) max_col = e2;
    }
    CHECK_MSG(max_out < 1e-5, "n_q %d kv_base %d d %d: output error %.3g", n_q, kv_base, d, max_out);
    CHECK_MSG(max_col < 1e-4, "n_q %d kv_base %d d %d: column error %.3g", n_q, kv_base, d, max_col);
    free(q), free(k), free(v), free(o), free(mx), free(sm), free(v2), free(o2);
    free(ca), free(ck), free(ra), free(rk), free(zrow);
}

/* Heads sharing one K/V stream (decode) give, head by head, the bits of a
 * single-row call: output, max, normaliser and the saved logits. */
static void check_heads(int g, int n_keys, int d) {
    float *q = malloc(sizeof(float) * (size_t)g * d), *k = malloc(sizeof(float) * (size_t)n_keys * d);
    float *v = malloc(sizeof(float) * (size_t)n_keys * d);
    float *o1 = malloc(sizeof(float) * (size_t)g * d), *o2 = malloc(sizeof(float) * (size_t)g * d);
    float *z1 = malloc(sizeof(float) * (size_t)g * n_keys), *z2 = malloc(sizeof(float) * (size_t)g * n_keys);
    float m1[16], l1[16], m2[32], l2[32];
    for (int i = 0; i < g * d; i++) q[i] = 1.5f * frand();
    for (int i = 0; i < n_keys * d; i++) k[i] = frand(), v[i] = frand();
    float scale = 1.0f / sqrtf((float)d);
    for (int h = 0; h < g; h++)
        kvp_attn_forward(q + (size_t)h * d, (size_t)d, 1, k, v, d, n_keys - 1, scale,
                         o1 + (size_t)h * d, (size_t)d, m1 + h, l1 + h, z1 + (size_t)h * n_keys);
    /* row_max/row_sum with a stride of 2, as the cache lays them out */
    kvp_attn_forward_heads(q, (size_t)d, g, k, v, d, n_keys, scale, o2, (size_t)d, m2, l2, 2, z2,
                           (size_t)n_keys);
    bool same = memcmp(o1, o2, sizeof(float) * (size_t)g * d) == 0 &&
                memcmp(z1, z2, sizeof(float) * (size_t)g * n_keys) == 0;
    for (int h = 0; h < g; h++) same = same && m1[h] == m2[2 * h] && l1[h] == l2[2 * h];
    CHECK_MSG(same, "heads %d keys %d d %d: grouped decode differs from per head", g, n_keys, d);
    free(q), free(k), free(v), free(o1), free(o2), free(z1), free(z2);
}

int main(void) {
    check_heads(3, 1000, 64);
    check_heads(4, 1, 24);
    check_heads(8, 130, 128);
    check_heads(1, 64, 32);
    check_case(3, 37, 80, 0, 40);     /* few rows: dot products */
    check_case(20, 37, 80, 5, 57);    /* transposed tiles, a cut column range */
    check_case(1, 200, 128, 64, 201); /* a decode step */
    check_case(1, 0, 24, 0, 1);       /* decode: one key, a masked head size */
    check_case(1, 1000, 64, 13, 777); /* decode: columns not on a 16-key group */
    check_case(1, 63, 32, 0, 64);
    check_case(70, 0, 40, 0, 70);     /* a whole prefill, several tiles */
    check_case(9, 130, 256, 100, 139); /* the largest head size */
    return kvp_test_done("test_attention");
}
