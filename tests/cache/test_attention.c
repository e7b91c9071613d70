/* The attention kernel alone against a naive float64 computation: outputs,
 * row maxima/normalisers and the per-column reductions, for head sizes that
 * are not multiples of the vector width, both logit paths (few rows: dot
 * products; many rows: transposed key tiles), cached tokens before the
 * block (kv_base > 0) and column ranges that cut tiles; for K/V stored as
 * float32, f16 and bf16. The reference rounds K and V itself (the scalar
 * conversions of kernels/fp16.h) and computes in float64 from the rounded
 * values, so the tolerances are the same for every type; a half cache must
 * moreover give exactly the bits of float32 rows holding the rounded
 * values (widening is exact). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/attention.h"
#include "kernels/fp16.h"
#include "test_util.h"

static uint64_t st = 0x1234567u;
static float frand(void) { return kvp_test_frand(&st); }

/* x rounded to type t, as a float. */
static float round_to(float x, kvp_kv_type t) {
    if (t == KVP_KV_F16) return kvk_f16_to_f32(kvk_f32_to_f16(x));
    if (t == KVP_KV_BF16) return kvk_bf16_to_f32(kvk_f32_to_bf16(x));
    return x;
}

/* The rows x[0..n) stored as type t (a new buffer), and x rounded in place. */
static void *stored(float *x, size_t n, kvp_kv_type t) {
    void *s = malloc(kva_elem_size(t) * n);
    kva_store_rows(s, x, n, t);
    for (size_t i = 0; i < n; i++) x[i] = round_to(x[i], t);
    return s;
}

static void check_case(int n_q, int kv_base, int d, int col_begin, int col_end, kvp_kv_type t) {
    int n_kv = kv_base + n_q;
    float *q = malloc(sizeof(float) * (size_t)n_q * d), *k = malloc(sizeof(float) * (size_t)n_kv * d);
    float *v = malloc(sizeof(float) * (size_t)n_kv * d), *o = malloc(sizeof(float) * (size_t)n_q * d);
    float *mx = malloc(sizeof(float) * n_q), *sm = malloc(sizeof(float) * n_q);
    float *v2 = malloc(sizeof(float) * n_kv), *o2 = malloc(sizeof(float) * n_q);
    double *ca = calloc((size_t)n_kv, sizeof(double)), *ck = calloc((size_t)n_kv, sizeof(double));
    double *ra = calloc((size_t)n_kv, sizeof(double)), *rk = calloc((size_t)n_kv, sizeof(double));
    for (int i = 0; i < n_q * d; i++) q[i] = 1.5f * frand();
    for (int i = 0; i < n_kv * d; i++) k[i] = frand(), v[i] = frand();
    void *ks = stored(k, (size_t)n_kv * d, t), *vs = stored(v, (size_t)n_kv * d, t);
    float scale = 1.0f / sqrtf((float)d);
    float *zrow = malloc(sizeof(float) * n_kv);
    kvk_attn_forward(q, (size_t)d, n_q, ks, vs, t, d, kv_base, scale, o, (size_t)d, mx, sm,
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
    kvk_colreduce_req req = {2, true, true, v2, o2};
    kvk_attn_colreduce(q, (size_t)d, row_begin, n_q, ks, vs, t, d, kv_base, scale, mx, sm, o,
                       (size_t)d, col_begin, col_end, &req, NULL, ca, ck);
    if (t != KVP_KV_F32) {
        /* the same bits as float32 rows holding the rounded values */
        float *o3 = malloc(sizeof(float) * (size_t)n_q * d), *mx3 = malloc(sizeof(float) * n_q);
        float *sm3 = malloc(sizeof(float) * n_q);
        double *ca3 = calloc((size_t)n_kv, sizeof(double)), *ck3 = calloc((size_t)n_kv, sizeof(double));
        kvk_attn_forward(q, (size_t)d, n_q, k, v, KVP_KV_F32, d, kv_base, scale, o3, (size_t)d, mx3,
                         sm3, NULL);
        kvk_attn_colreduce(q, (size_t)d, row_begin, n_q, k, v, KVP_KV_F32, d, kv_base, scale, mx3,
                           sm3, o3, (size_t)d, col_begin, col_end, &req, NULL, ca3, ck3);
        CHECK_MSG(memcmp(o, o3, sizeof(float) * (size_t)n_q * d) == 0 &&
                      memcmp(mx, mx3, sizeof(float) * n_q) == 0 &&
                      memcmp(sm, sm3, sizeof(float) * n_q) == 0 &&
                      memcmp(ca, ca3, sizeof(double) * n_kv) == 0 &&
                      memcmp(ck, ck3, sizeof(double) * n_kv) == 0,
                  "%s n_q %d kv_base %d d %d: differs from float32 rows of the rounded values",
                  kvp_kv_type_name(t), n_q, kv_base, d);
        free(o3), free(mx3), free(sm3), free(ca3), free(ck3);
    }
    if (n_q == 1) {
        /* decode: pass 2 from pass 1's saved logits gives the same bits */
        double *ca2 = calloc((size_t)n_kv, sizeof(double)), *ck2 = calloc((size_t)n_kv, sizeof(double));
        kvk_attn_colreduce(q, (size_t)d, 0, 1, ks, vs, t, d, kv_base, scale, mx, sm, o, (size_t)d,
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
    CHECK_MSG(max_out < 1e-5, "%s n_q %d kv_base %d d %d: output error %.3g", kvp_kv_type_name(t),
              n_q, kv_base, d, max_out);
    CHECK_MSG(max_col < 1e-4, "%s n_q %d kv_base %d d %d: column error %.3g", kvp_kv_type_name(t),
              n_q, kv_base, d, max_col);
    free(q), free(k), free(v), free(o), free(mx), free(sm), free(v2), free(o2), free(ks), free(vs);
    free(ca), free(ck), free(ra), free(rk), free(zrow);
}

/* Heads sharing one K/V stream (decode) give, head by head, the bits of a
 * single-row call: output, max, normaliser and the saved logits. */
static void check_heads(int g, int n_keys, int d, kvp_kv_type t) {
    float *q = malloc(sizeof(float) * (size_t)g * d), *k = malloc(sizeof(float) * (size_t)n_keys * d);
    float *v = malloc(sizeof(float) * (size_t)n_keys * d);
    float *o1 = malloc(sizeof(float) * (size_t)g * d), *o2 = malloc(sizeof(float) * (size_t)g * d);
    float *z1 = malloc(sizeof(float) * (size_t)g * n_keys), *z2 = malloc(sizeof(float) * (size_t)g * n_keys);
    float m1[16], l1[16], m2[32], l2[32];
    for (int i = 0; i < g * d; i++) q[i] = 1.5f * frand();
    for (int i = 0; i < n_keys * d; i++) k[i] = frand(), v[i] = frand();
    void *ks = stored(k, (size_t)n_keys * d, t), *vs = stored(v, (size_t)n_keys * d, t);
    float scale = 1.0f / sqrtf((float)d);
    for (int h = 0; h < g; h++)
        kvk_attn_forward(q + (size_t)h * d, (size_t)d, 1, ks, vs, t, d, n_keys - 1, scale,
                         o1 + (size_t)h * d, (size_t)d, m1 + h, l1 + h, z1 + (size_t)h * n_keys);
    /* row_max/row_sum with a stride of 2, as the cache lays them out */
    kvk_attn_forward_heads(q, (size_t)d, g, ks, vs, t, d, n_keys, scale, o2, (size_t)d, m2, l2, 2,
                           z2, (size_t)n_keys);
    bool same = memcmp(o1, o2, sizeof(float) * (size_t)g * d) == 0 &&
                memcmp(z1, z2, sizeof(float) * (size_t)g * n_keys) == 0;
    for (int h = 0; h < g; h++) same = same && m1[h] == m2[2 * h] && l1[h] == l2[2 * h];
    if (t != KVP_KV_F32) { /* float32 rows of the rounded values: the same bits */
        kvk_attn_forward_heads(q, (size_t)d, g, k, v, KVP_KV_F32, d, n_keys, scale, o1, (size_t)d,
                               m1, l1, 1, z1, (size_t)n_keys);
        same = same && memcmp(o1, o2, sizeof(float) * (size_t)g * d) == 0 &&
               memcmp(z1, z2, sizeof(float) * (size_t)g * n_keys) == 0;
        for (int h = 0; h < g; h++) same = same && m1[h] == m2[2 * h] && l1[h] == l2[2 * h];
    }
    CHECK_MSG(same, "%s heads %d keys %d d %d: grouped decode differs from per head",
              kvp_kv_type_name(t), g, n_keys, d);
    free(q), free(k), free(v), free(o1), free(o2), free(z1), free(z2), free(ks), free(vs);
}

/* Round trips of the row conversions: every f16 and bf16 bit pattern that
 * is not a NaN widens and rounds back to itself, and float32 values round
 * to nearest even (vector and scalar tails agree with fp16.h). */
static void check_conversions(void) {
    enum { N = 65536 };
    uint16_t *h = malloc(sizeof(uint16_t) * N), *back = malloc(sizeof(uint16_t) * N);
    float *f = malloc(sizeof(float) * N);
    for (int t = KVP_KV_F16; t <= KVP_KV_BF16; t++) {
        int n = 0;
        for (uint32_t b = 0; b < N; b++) {
            float x = t == KVP_KV_F16 ? kvk_f16_to_f32((uint16_t)b) : kvk_bf16_to_f32((uint16_t)b);
            if (x != x) continue; /* NaN payloads are not kept */
            h[n++] = (uint16_t)b;
        }
        kva_load_rows(f, h, (size_t)n, (kvp_kv_type)t);
        kva_store_rows(back, f, (size_t)n, (kvp_kv_type)t);
        CHECK_MSG(memcmp(h, back, sizeof(uint16_t) * (size_t)n) == 0, "%s: round trip differs",
                  kvp_kv_type_name((kvp_kv_type)t));
        for (int i = 0; i < n; i++) {
            float want = t == KVP_KV_F16 ? kvk_f16_to_f32(h[i]) : kvk_bf16_to_f32(h[i]);
            if (memcmp(&f[i], &want, sizeof want) != 0) {
                CHECK_MSG(0, "%s: widening 0x%04x", kvp_kv_type_name((kvp_kv_type)t), h[i]);
                break;
            }
        }
        /* random floats of every magnitude: vector rounding == scalar */
        for (int i = 0; i < N; i++) f[i] = frand() * ldexpf(1.0f, (int)(frand() * 40.0f) - 20);
        kva_store_rows(back, f, N, (kvp_kv_type)t);
        int bad = 0;
        for (int i = 0; i < N; i++)
            bad += back[i] != (t == KVP_KV_F16 ? kvk_f32_to_f16(f[i]) : kvk_f32_to_bf16(f[i]));
        CHECK_MSG(bad == 0, "%s: %d roundings differ from fp16.h", kvp_kv_type_name((kvp_kv_type)t),
                  bad);
    }
    free(h), free(back), free(f);
}

int main(void) {
    check_conversions();
    for (int t = KVP_KV_F32; t <= KVP_KV_BF16; t++) {
        const kvp_kv_type kt = (kvp_kv_type)t;
        check_heads(3, 1000, 64, kt);
        check_heads(4, 1, 24, kt);
        check_heads(8, 130, 128, kt);
        check_heads(1, 64, 32, kt);
        check_case(3, 37, 80, 0, 40, kt);     /* few rows: dot products */
        check_case(20, 37, 80, 5, 57, kt);    /* transposed tiles, a cut column range */
        check_case(1, 200, 128, 64, 201, kt); /* a decode step */
        check_case(1, 0, 24, 0, 1, kt);       /* decode: one key, a masked head size */
        check_case(1, 1000, 64, 13, 777, kt); /* decode: columns not on a 16-key group */
        check_case(1, 63, 32, 0, 64, kt);
        check_case(70, 0, 40, 0, 70, kt);     /* a whole prefill, several tiles */
        check_case(9, 130, 256, 100, 139, kt); /* the largest head size */
        check_case(2, 50, 144, 0, 52, kt);    /* decode-like rows, a head size past 128 */
    }
    return kvp_test_done("test_attention");
}
