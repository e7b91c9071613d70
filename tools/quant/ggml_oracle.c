/* Test vectors for the quantized types, produced by ggml itself.
 *
 * Links libggml-base (type traits: to_float, from_float_ref) and one
 * libggml-cpu (ggml_vec_dot_*_generic, the CPU from_float) of
 * node-llama-cpp 3.21.1 and writes, for seeded random and edge-case rows:
 *   - the rows (float32),
 *   - ggml's reference quantization of each row in every type,
 *   - a hash of ggml's dequantization of those blocks and of random blocks,
 *   - ggml's generic vec_dot of weight rows with quantized activations.
 *
 * usage: ggml_oracle OUT.bin
 *
 * Record stream (little-endian): u32 tag, u32 type, u32 a, u32 b, u32 len,
 * then len payload bytes. Tags:
 *   1 ROW       a = row id; payload float32[n]
 *   2 QUANT     type, a = row id; payload: ggml's blocks
 *   3 DEQ_HASH  type, a = row id; payload u64 FNV-1a of to_float's bits
 *   4 RAND      type; payload: random blocks (finite scales)
 *   5 RAND_DEQ  type; payload u64 FNV-1a of to_float's bits on RAND
 *   6 DOT       type, a = weight row id (or RAND_ROW for the random blocks),
 *               b = activation row id; payload float32 generic vec_dot
 */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-cpu.h"
#include "ggml.h"

#define RAND_ROW 1000u
enum { T_ROW = 1, T_QUANT, T_DEQ_HASH, T_RAND, T_RAND_DEQ, T_DOT };

static FILE *out;

static void rec(uint32_t tag, uint32_t type, uint32_t a, uint32_t b, const void *p, uint32_t len) {
    uint32_t h[5] = {tag, type, a, b, len};
    fwrite(h, 4, 5, out);
    fwrite(p, 1, len, out);
}

static uint64_t fnv(const void *p, size_t n) {
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_u64(void) {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double uni(void) { return (next_u64() >> 11) * (1.0 / 9007199254740992.0); }
static float gauss(void) {
    double u = uni(), v = uni();
    if (u < 1e-300) u = 1e-300;
    return (float)(sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}

typedef struct row {
    int n;
    float *x;
} row;

#define N_ROWS 11
static row rows[N_ROWS];

static void make_rows(void) {
    static const int ns[N_ROWS] = {512, 512, 512, 256, 256, 256, 256, 896, 256, 256, 1024};
    for (int r = 0; r < N_ROWS; r++) {
        rows[r].n = ns[r];
        rows[r].x = calloc((size_t)ns[r], sizeof(float));
    }
    for (int i = 0; i < 512; i++) rows[0].x[i] = gauss();                /* unit gaussian */
    for (int i = 0; i < 512; i++) rows[1].x[i] = 0.02f * gauss();        /* weight-like   */
    for (int i = 0; i < 512; i++)                                        /* outliers      */
        rows[2].x[i] = gauss() * (uni() < 0.03 ? 40.0f : 0.5f);
    for (int i = 0; i < 256; i++) {                                      /* extremes      */
        double u = uni();
        float mag = u < 0.3 ? 6.0e4f * (float)uni() : u < 0.6 ? 1e-3f * (float)uni() : (float)uni();
        rows[3].x[i] = uni() < 0.5 ? -mag : mag;
    }
    /* rows[4]: zeros */
    for (int i = 0; i < 256; i++) rows[5].x[i] = 1e-5f * gauss();       /* small, normal */
    for (int b = 0; b < 8; b++)                                          /* flat blocks   */
        for (int i = 0; i < 32; i++) {
            float *x = &rows[6].x[b * 32 + i];
            switch (b % 4) {
            case 0: *x = 0.75f; break;                                     /* constant      */
            case 1: *x = i == 7 ? -3.0f : 0.0f; break;                     /* one-hot       */
            case 2: *x = 0.0f; break;                                      /* zero block    */
            default: *x = i % 2 ? 1.0f : -1.0f; break;                     /* alternating   */
            }
        }
    for (int i = 0; i < 896; i++) rows[7].x[i] = 0.05f * gauss();       /* Qwen-width    */
    for (int i = 0; i < 256; i++) rows[8].x[i] = 0.5f + (float)uni();   /* all positive  */
    for (int i = 0; i < 256; i++) rows[9].x[i] = -0.5f - (float)uni();  /* all negative  */
    for (int i = 0; i < 1024; i++) rows[10].x[i] = gauss();             /* activations   */
}

/* Weight types and their generic vec_dot names. */
typedef struct wtype {
    enum ggml_type t;
    const char *dot; /* NULL: activation type, no dot */
    int half_offsets[2]; /* byte offsets of ggml_half fields; -1 none */
} wtype;

static const wtype types[] = {
    {GGML_TYPE_Q4_0, "ggml_vec_dot_q4_0_q8_0_generic", {0, -1}},
    {GGML_TYPE_Q4_1, "ggml_vec_dot_q4_1_q8_1_generic", {0, 2}},
    {GGML_TYPE_Q5_0, "ggml_vec_dot_q5_0_q8_0_generic", {0, -1}},
    {GGML_TYPE_Q5_1, "ggml_vec_dot_q5_1_q8_1_generic", {0, 2}},
    {GGML_TYPE_Q8_0, "ggml_vec_dot_q8_0_q8_0_generic", {0, -1}},
    {GGML_TYPE_Q8_1, NULL, {0, 2}},
    {GGML_TYPE_Q2_K, "ggml_vec_dot_q2_K_q8_K_generic", {80, 82}},
    {GGML_TYPE_Q3_K, "ggml_vec_dot_q3_K_q8_K_generic", {108, -1}},
    {GGML_TYPE_Q4_K, "ggml_vec_dot_q4_K_q8_K_generic", {0, 2}},
    {GGML_TYPE_Q5_K, "ggml_vec_dot_q5_K_q8_K_generic", {0, 2}},
    {GGML_TYPE_Q6_K, "ggml_vec_dot_q6_K_q8_K_generic", {208, -1}},
    {GGML_TYPE_Q8_K, NULL, {-1, -1}},
    {GGML_TYPE_IQ4_NL, "ggml_vec_dot_iq4_nl_q8_0_generic", {0, -1}},
    {GGML_TYPE_IQ4_XS, "ggml_vec_dot_iq4_xs_q8_K_generic", {0, -1}},
};

static uint16_t random_half(void) {
    /* Finite, normal or subnormal, magnitude up to ~2^3: exponent field
     * 0..18, random mantissa and sign. */
    uint16_t e = (uint16_t)(next_u64() % 19), m = (uint16_t)(next_u64() & 0x3ff);
    uint16_t s = (uint16_t)(next_u64() & 1) << 15;
    return (uint16_t)(s | (e << 10) | m);
}

/* Q8_K has no conversions in the base traits (only the CPU backend uses
 * it); the exported reference functions stand in. Q8_1 has no to_float. */
static ggml_from_float_t quantizer(enum ggml_type t) {
    const struct ggml_type_traits *tr = ggml_get_type_traits(t);
    if (tr->from_float_ref) return tr->from_float_ref;
    return t == GGML_TYPE_Q8_K ? (ggml_from_float_t)dlsym(RTLD_DEFAULT, "quantize_row_q8_K_ref") : NULL;
}
static ggml_to_float_t dequantizer(enum ggml_type t) {
    const struct ggml_type_traits *tr = ggml_get_type_traits(t);
    if (tr->to_float) return tr->to_float;
    return t == GGML_TYPE_Q8_K ? (ggml_to_float_t)dlsym(RTLD_DEFAULT, "dequantize_row_q8_K") : NULL;
}

static void *quantize(enum ggml_type t, const float *x, int n) {
    const struct ggml_type_traits *tr = ggml_get_type_traits(t);
    size_t bytes = (size_t)(n / tr->blck_size) * tr->type_size;
    void *q = calloc(1, bytes);
    quantizer(t)(x, q, n);
    return q;
}

static int fail(const char *msg) {
    fprintf(stderr, "ggml_oracle: %s\n", msg);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) return fail("usage: ggml_oracle OUT.bin");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        if (!quantizer(types[ti].t)) return fail("a type has no reference quantizer");
    ggml_cpu_init();
    out = fopen(argv[1], "wb");
    if (!out) return fail("cannot write the output file");
    make_rows();
    for (int r = 0; r < N_ROWS; r++) rec(T_ROW, 0, (uint32_t)r, 0, rows[r].x, (uint32_t)rows[r].n * 4);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const wtype *w = &types[ti];
        const struct ggml_type_traits *tr = ggml_get_type_traits(w->t);
        const int be = (int)tr->blck_size;
        for (int r = 0; r < N_ROWS; r++) {
            const int n = rows[r].n;
            if (n % be) continue;
            void *q = quantize(w->t, rows[r].x, n);
            size_t bytes = (size_t)(n / be) * tr->type_size;
            rec(T_QUANT, w->t, (uint32_t)r, 0, q, (uint32_t)bytes);
            if (dequantizer(w->t)) {
                float *y = calloc((size_t)n, sizeof(float));
                dequantizer(w->t)(q, y, n);
                uint64_t h = fnv(y, (size_t)n * 4);
                rec(T_DEQ_HASH, w->t, (uint32_t)r, 0, &h, 8);
                free(y);
            }
            free(q);
        }
        /* Random blocks over 1024 elements: every scale and level pattern. */
        const int n = 1024;
        const size_t bytes = (size_t)(n / be) * tr->type_size;
        uint8_t *rb = malloc(bytes);
        for (size_t i = 0; i < bytes; i++) rb[i] = (uint8_t)next_u64();
        for (size_t b = 0; b < bytes / tr->type_size; b++) {
            uint8_t *blk = rb + b * tr->type_size;
            for (int k = 0; k < 2; k++)
                if (w->half_offsets[k] >= 0) {
                    uint16_t hv = random_half();
                    memcpy(blk + w->half_offsets[k], &hv, 2);
                }
            if (w->t == GGML_TYPE_Q8_K) {
                float d = (float)(uni() * 0.01);
                memcpy(blk, &d, 4);
            }
        }
        if (dequantizer(w->t)) {
            rec(T_RAND, w->t, 0, 0, rb, (uint32_t)bytes);
            float *y = calloc((size_t)n, sizeof(float));
            dequantizer(w->t)(rb, y, n);
            uint64_t h = fnv(y, (size_t)n * 4);
            rec(T_RAND_DEQ, w->t, 0, 0, &h, 8);
            free(y);
        }

        if (w->dot) {
            ggml_vec_dot_t dot = (ggml_vec_dot_t)dlsym(RTLD_DEFAULT, w->dot);
            const struct ggml_type_traits_cpu *ct = ggml_get_type_traits_cpu(w->t);
            if (!dot || !ct) return fail(w->dot);
            const enum ggml_type vt = ct->vec_dot_type;
            const struct ggml_type_traits_cpu *vct = ggml_get_type_traits_cpu(vt);
            for (int wr = 0; wr < N_ROWS; wr++) {
                for (int xr = 0; xr < N_ROWS; xr++) {
                    const bool rnd = wr == N_ROWS - 1;
                    const int nn = rows[xr].n;
                    if (nn % be || (rnd ? nn != n : rows[wr].n != nn)) continue;
                    void *wq = rnd ? NULL : quantize(w->t, rows[wr].x, nn);
                    void *xq = quantize(vt, rows[xr].x, nn);
                    /* The activations as ggml's CPU matmul makes them must
                     * be the reference ones (checked by the tests). */
                    const struct ggml_type_traits *vtr = ggml_get_type_traits(vt);
                    size_t xb = (size_t)(nn / vtr->blck_size) * vtr->type_size;
                    void *xc = calloc(1, xb);
                    vct->from_float(rows[xr].x, xc, nn);
                    if (memcmp(xc, xq, xb)) return fail("CPU activation quantization differs from _ref");
                    float s = 0;
                    dot(nn, &s, 0, rnd ? (const void *)rb : wq, 0, xq, 0, 1);
                    rec(T_DOT, w->t, rnd ? RAND_ROW : (uint32_t)wr, (uint32_t)xr, &s, 4);
                    free(xc);
                    free(xq);
                    free(wq);
                }
            }
        }
        free(rb);
    }
    if (fclose(out)) return fail("write failed");
    return 0;
}
