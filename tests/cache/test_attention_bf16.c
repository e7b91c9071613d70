/* The bf16 prefill attention (kvk_attn_forward_bf16 / kvk_attn_colreduce_bf16)
 * against the independent numpy float64 reference of
 * tools/attnref/make_bf16_goldens.py (tests/data/attn/bf16_goldens.bin):
 * q and the stored K/V rounded to bf16, everything else exact. Stated bounds:
 *   outputs   |o - o_ref| <= 2^-8 B + 2e-5, B = sum_j a_ij |v_j| (the PV
 *             weights are rounded to bf16: relative 2^-8 each, the unit
 *             roundoff of 8 significant bits);
 *   m_i, l_i  1e-5, 1e-4 (float32 sums of exact bf16 products);
 *   columns   1e-4 relative (the scores see the float32 softmax of the
 *             bf16-product logits, not rounded weights).
 * Cases: GQA (heads sharing a stream, column sums over the group), causal
 * blocks after cached tokens (later chunks), head sizes 24..256, f32/f16/
 * bf16 K/V, cut column ranges, p = 1/2 with the key and cross terms. Any
 * split of the rows into calls (chunks, the cache's row tiles) gives the
 * same bits. Without AVX512-BF16 (or at KVP_CPU below avx512) the functions
 * must be the float32 kernels, bit for bit. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/attention.h"
#include "test_util.h"

static uint64_t st = 0x5EED0B16u;
static float frand(void) { return kvp_test_frand(&st); }

typedef struct rd {
    const char *p, *end;
} rd;
/* The next n bytes as an aligned copy (the file packs arrays of 4- and
 * 8-byte values back to back); NULL past the end. */
static void *take(rd *r, size_t n) {
    if ((size_t)(r->end - r->p) < n) return NULL;
    void *x = malloc(n ? n : 1);
    memcpy(x, r->p, n);
    r->p += n;
    return x;
}

static void forward_all(const float *q, int H, int n_q, const void *ks, const void *vs,
                        kvp_kv_type t, int d, int kv_base, float scale, float *o, float *m,
                        float *l, const int *cuts, int n_cuts) {
    for (int h = 0; h < H; h++) {
        int r0 = 0;
        for (int c = 0; c <= n_cuts; c++) {
            int r1 = c < n_cuts && cuts[c] < n_q ? cuts[c] : n_q;
            if (r1 <= r0) continue;
            kvk_attn_forward_bf16(q + ((size_t)r0 * H + h) * d, (size_t)H * d, r1 - r0, ks, vs, t, d,
                                  kv_base + r0, scale, o + ((size_t)r0 * H + h) * d, (size_t)H * d,
                                  m + (size_t)h * n_q + r0, l + (size_t)h * n_q + r0);
            r0 = r1;
        }
    }
}

static int run_case(rd *r, bool active_expected) {
    int32_t *hdr = take(r, 11 * sizeof(int32_t));
    if (!hdr) return 0;
    const int n_q = hdr[0], kv_base = hdr[1], d = hdr[2], H = hdr[3], row_begin = hdr[5];
    const int c0 = hdr[6], c1 = hdr[7];
    const kvp_kv_type t = (kvp_kv_type)hdr[4];
    const int n_kv = kv_base + n_q;
    const size_t no = (size_t)n_q * H * d;
    float *o_ref = take(r, no * 4), *b_ref = take(r, no * 4);
    double *m_ref = take(r, (size_t)H * n_q * 8), *l_ref = take(r, (size_t)H * n_q * 8);
    double *ca_ref = take(r, (size_t)n_kv * 8), *ck_ref = take(r, (size_t)n_kv * 8);
    if (!o_ref || !b_ref || !m_ref || !l_ref || !ca_ref || !ck_ref) {
        free(hdr), free(o_ref), free(b_ref), free(m_ref), free(l_ref), free(ca_ref), free(ck_ref);
        return 0;
    }

    float *q = malloc(sizeof(float) * no), *kv = malloc(sizeof(float) * 2 * n_kv * d);
    float *k = malloc(sizeof(float) * n_kv * d), *v = malloc(sizeof(float) * n_kv * d);
    for (size_t i = 0; i < no; i++) q[i] = 1.5f * frand();
    for (size_t i = 0; i < 2 * (size_t)n_kv * d; i++) kv[i] = frand();
    for (int j = 0; j < n_kv; j++) {
        memcpy(k + (size_t)j * d, kv + (size_t)j * 2 * d, sizeof(float) * d);
        memcpy(v + (size_t)j * d, kv + (size_t)j * 2 * d + d, sizeof(float) * d);
    }
    void *ks = malloc(kva_elem_size(t) * n_kv * d), *vs = malloc(kva_elem_size(t) * n_kv * d);
    kva_store_rows(ks, k, (size_t)n_kv * d, t);
    kva_store_rows(vs, v, (size_t)n_kv * d, t);
    const float scale = 1.0f / sqrtf((float)d);
    float *o = malloc(sizeof(float) * no), *m = malloc(sizeof(float) * H * n_q);
    float *l = malloc(sizeof(float) * H * n_q);
    forward_all(q, H, n_q, ks, vs, t, d, kv_base, scale, o, m, l, NULL, 0);
    const bool active = kvk_attn_bf16_active(d);
    CHECK_MSG(active == active_expected, "d %d: bf16 active %d, other head sizes %d", d, active,
              active_expected);
    char what[96];
    snprintf(what, sizeof what, "n_q %d kv_base %d d %d H %d %s", n_q, kv_base, d, H,
             kvp_kv_type_name(t));

    /* bf16: any split of the rows gives the same bits (chunks, row tiles) */
    const int cuts[] = {23, 41, 64};
    float *o2 = malloc(sizeof(float) * no), *m2 = malloc(sizeof(float) * H * n_q);
    float *l2 = malloc(sizeof(float) * H * n_q);
    forward_all(q, H, n_q, ks, vs, t, d, kv_base, scale, o2, m2, l2, cuts, 3);
    CHECK_MSG(!active || (memcmp(o, o2, sizeof(float) * no) == 0 && memcmp(m, m2, sizeof(float) * H * n_q) == 0 &&
                  memcmp(l, l2, sizeof(float) * H * n_q) == 0),
              "%s: splitting the rows changes the bits", what);

    if (!active) {
        /* the float32 kernels, bit for bit */
        for (int h = 0; h < H; h++)
            kvk_attn_forward(q + (size_t)h * d, (size_t)H * d, n_q, ks, vs, t, d, kv_base, scale,
                             o2 + (size_t)h * d, (size_t)H * d, m2 + (size_t)h * n_q,
                             l2 + (size_t)h * n_q, NULL);
        CHECK_MSG(memcmp(o, o2, sizeof(float) * no) == 0, "%s: fallback differs from float32", what);
    } else {
        double worst = 0;
        for (size_t i = 0; i < no; i++) {
            double e = fabs((double)o[i] - o_ref[i]) - (ldexp(1.0, -8) * b_ref[i] + 2e-5);
            if (e > worst) worst = e;
        }
        CHECK_MSG(worst <= 0, "%s: an output is %.3g past its bound", what, worst);
        for (int i = 0; i < H * n_q; i++) {
            CHECK_NEAR(m[i], m_ref[i], 1e-5);
            CHECK_NEAR(l[i], l_ref[i], 1e-4);
        }
    }

    /* pass 2 over the reference outputs (so the key scores do not inherit
     * the PV rounding), with pass 1's m and l */
    const int p = hdr[8];
    const bool key = hdr[9] != 0, cross = hdr[10] != 0;
    float *v2 = malloc(sizeof(float) * n_kv), *osq = malloc(sizeof(float) * H * n_q);
    float *ot = malloc(sizeof(float) * no);
    double *ca = calloc((size_t)n_kv, sizeof(double)), *ck = calloc((size_t)n_kv, sizeof(double));
    {
        float *vr = malloc(sizeof(float) * n_kv * d);
        kva_load_rows(vr, vs, (size_t)n_kv * d, t);
        for (int j = 0; j < n_kv; j++) {
            double s = 0;
            for (int u = 0; u < d; u++) s += (double)vr[(size_t)j * d + u] * vr[(size_t)j * d + u];
            v2[j] = (float)s;
        }
        free(vr);
    }
    for (int h = 0; h < H; h++)
        for (int i = 0; i < n_q; i++) {
            double s = 0;
            for (int u = 0; u < d; u++) {
                double x = o_ref[((size_t)i * H + h) * d + u];
                s += x * x;
            }
            osq[(size_t)h * n_q + i] = (float)s;
        }
    memcpy(ot, o_ref, sizeof(float) * no);
    for (int h = 0; h < H; h++) {
        kvk_colreduce_req req = {p, key, cross, v2, osq + (size_t)h * n_q};
        kvk_attn_colreduce_bf16(q + (size_t)h * d, (size_t)H * d, row_begin, n_q, ks, vs, t, d,
                                kv_base, scale, m + (size_t)h * n_q, l + (size_t)h * n_q,
                                ot + (size_t)h * d, (size_t)H * d, c0, c1, &req, ca, ck);
    }
    if (active) {
        double worst = 0;
        for (int j = 0; j < n_kv; j++) {
            bool in = j >= c0 && j < c1;
            if (!in) CHECK(ca[j] == 0.0 && ck[j] == 0.0);
            double e = fabs(ca[j] - ca_ref[j]) / (fabs(ca_ref[j]) > 1e-3 ? fabs(ca_ref[j]) : 1e-3);
            double e2 = fabs(ck[j] - ck_ref[j]) / (fabs(ck_ref[j]) > 1e-2 ? fabs(ck_ref[j]) : 1e-2);
            if (e > worst) worst = e;
            if (e2 > worst) worst = e2;
        }
        CHECK_MSG(worst < 1e-4, "%s: column error %.3g", what, worst);
        if (p == 1 && c0 == 0 && c1 >= n_kv) {
            /* pass 2 recomputes pass 1's logits: each row's weights sum to 1 */
            double sum = 0;
            for (int j = 0; j < n_kv; j++) sum += ca[j];
            double rows = (double)H * (n_q - row_begin);
            CHECK_MSG(fabs(sum - rows) < 1e-5 * rows, "%s: weights sum to %.9g, not %.0f", what,
                      sum, rows);
        }
    }
    free(q), free(kv), free(k), free(v), free(ks), free(vs), free(o), free(m), free(l);
    free(o2), free(m2), free(l2), free(v2), free(osq), free(ot), free(ca), free(ck);
    free(hdr), free(o_ref), free(b_ref), free(m_ref), free(l_ref), free(ca_ref), free(ck_ref);
    return 1;
}

int main(void) {
    size_t n = 0;
    char *buf = kvp_test_read_file("tests/data/attn/bf16_goldens.bin", &n);
    CHECK_MSG(buf != NULL, "tests/data/attn/bf16_goldens.bin: cannot read");
    if (!buf) return kvp_test_done("test_attention_bf16");
    rd r = {buf, buf + n};
    char *magic = take(&r, 4);
    int32_t *nc = take(&r, 4);
    CHECK(magic && memcmp(magic, "KVAB", 4) == 0 && nc);
    const bool active = kvk_attn_bf16_active(64);
    printf("test_attention_bf16: bf16 tiles %s\n", active ? "active" : "inactive (float32 kernels)");
    int done = 0;
    for (int c = 0; nc && c < *nc; c++) done += run_case(&r, active);
    CHECK_MSG(nc && done == *nc && r.p == r.end, "read %d of %d cases", done, nc ? *nc : -1);
    free(magic), free(nc), free(buf);
    return kvp_test_done("test_attention_bf16");
}
