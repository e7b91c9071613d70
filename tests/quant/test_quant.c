/* The quantized types against ggml itself: tests/data/quant/ggml_vectors.bin
 * (tools/quant/make_vectors.sh) holds ggml's reference quantization of
 * seeded random and edge-case rows, hashes of ggml's dequantization of
 * those blocks and of random blocks, and ggml's generic vec_dot results.
 *
 * Exact: reference quantizers (bytes), dequantization (bits), the scalar
 * dot products (bits). The dispatched kvq_vec_dot may sum in another order:
 * within 1e-5 of sum |w_i x_i| of the dequantized operands. */
#include <stdint.h>

#include "format/gguf.h"
#include "kernels/quant.h"
#include "kernels/quant_blocks.h"
#include "test_util.h"

enum { T_ROW = 1, T_QUANT, T_DEQ_HASH, T_RAND, T_RAND_DEQ, T_DOT };
#define RAND_ROW 1000u
#define MAX_REC 4096

typedef struct rec {
    uint32_t tag, type, a, b, len;
    const uint8_t *p;
} rec;

static rec recs[MAX_REC];
static int n_recs;

static uint64_t fnv(const void *p, size_t n) {
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static const rec *find(uint32_t tag, uint32_t type, uint32_t a) {
    for (int i = 0; i < n_recs; i++)
        if (recs[i].tag == tag && recs[i].type == type && recs[i].a == a) return &recs[i];
    return NULL;
}

static const char *tn(uint32_t t) { return kvq_type_traits_of(t)->name; }

/* IQ4_NL blocks whose scale is 0: ggml leaves the levels of an all-zero
 * first block uninitialised (any bytes dequantize to 0 there). */
static bool same_blocks(uint32_t type, const uint8_t *a, const uint8_t *b, size_t n) {
    if (type != GGML_TYPE_IQ4_NL) return memcmp(a, b, n) == 0;
    for (size_t off = 0; off < n; off += sizeof(block_iq4_nl)) {
        if (memcmp(a + off, b + off, 2)) return false;
        uint16_t d;
        memcpy(&d, b + off, 2);
        if (d && memcmp(a + off, b + off, sizeof(block_iq4_nl))) return false;
    }
    return true;
}

static void test_traits(void) {
    CHECK_EQ_INT(kvq_row_bytes(GGML_TYPE_Q4_K, 896), 0);
    CHECK_EQ_INT(kvq_row_bytes(GGML_TYPE_Q4_K, 1024), 4 * 144);
    CHECK_EQ_INT(kvq_row_bytes(GGML_TYPE_Q5_0, 896), 28 * 22);
    CHECK_EQ_INT(kvq_row_bytes(GGML_TYPE_F16, 3), 6);
    CHECK_STR(kvq_type_traits_of(GGML_TYPE_IQ2_XXS)->name, "IQ2_XXS");
    CHECK(!kvq_type_supported(GGML_TYPE_IQ2_XXS));
    CHECK(kvq_type_supported(GGML_TYPE_IQ4_XS));
    CHECK(kvq_type_traits_of(4)->name == NULL); /* retired Q4_2 */
    CHECK(kvq_type_traits_of(GGML_TYPE_COUNT)->block_elems == 0);
    CHECK_EQ_INT(kvq_type_traits_of(GGML_TYPE_Q4_1)->vec_dot_type, GGML_TYPE_Q8_1);
    CHECK_EQ_INT(kvq_type_traits_of(GGML_TYPE_IQ4_NL)->vec_dot_type, GGML_TYPE_Q8_0);
    CHECK_EQ_INT(kvq_type_traits_of(GGML_TYPE_Q6_K)->vec_dot_type, GGML_TYPE_Q8_K);
}

int main(void) {
    test_traits();
    FILE *f = fopen("tests/data/quant/ggml_vectors.bin", "rb");
    if (!f) {
        fprintf(stderr, "cannot open tests/data/quant/ggml_vectors.bin\n");
        return 1;
    }
    static uint8_t data[1 << 20];
    size_t size = fread(data, 1, sizeof data, f);
    fclose(f);
    for (size_t off = 0; off + 20 <= size && n_recs < MAX_REC;) {
        rec *r = &recs[n_recs++];
        memcpy(&r->tag, data + off, 20);
        r->p = data + off + 20;
        off += 20 + r->len;
        CHECK(off <= size);
    }
    int n_quant = 0, n_deq = 0, n_dot = 0;
    float *y = malloc(sizeof(float) * 4096);
    uint8_t *q = malloc(1 << 16);
    for (int i = 0; i < n_recs; i++) {
        const rec *r = &recs[i];
        if (r->tag == T_QUANT) {
            const rec *row = find(T_ROW, 0, r->a);
            const int64_t n = row->len / 4;
            float *x = malloc(row->len);
            memcpy(x, row->p, row->len);
            memset(q, 0xA5, r->len);
            CHECK_MSG(kvq_row_bytes(r->type, n) == r->len, "%s row %u size", tn(r->type), r->a);
            CHECK(kvq_quantize_row_ref(r->type, x, q, n));
            CHECK_MSG(same_blocks(r->type, q, r->p, r->len), "%s: quantization of row %u differs from ggml's",
                      tn(r->type), r->a);
            free(x);
            n_quant++;
        } else if (r->tag == T_DEQ_HASH || r->tag == T_RAND_DEQ) {
            const rec *src = r->tag == T_DEQ_HASH ? find(T_QUANT, r->type, r->a) : find(T_RAND, r->type, 0);
            const int be = kvq_type_traits_of(r->type)->block_elems;
            const int64_t n = (int64_t)(src->len / kvq_type_traits_of(r->type)->block_bytes) * be;
            memcpy(q, src->p, src->len);
            kvq_dequantize_rows_f32(r->type, q, y, 1, n);
            uint64_t h;
            memcpy(&h, r->p, 8);
            CHECK_MSG(fnv(y, (size_t)n * 4) == h, "%s: dequantization of %s %u differs from ggml's",
                      tn(r->type), r->tag == T_DEQ_HASH ? "row" : "random blocks", r->a);
            /* bf16 output: the float result rounded to nearest even. */
            uint16_t *bf = malloc((size_t)n * 2);
            kvq_dequantize_rows_bf16(r->type, q, bf, 1, n);
            bool bf_ok = true;
            for (int64_t k = 0; k < n; k++) {
                uint32_t bits;
                memcpy(&bits, &y[k], 4);
                uint16_t want = (uint16_t)((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
                bf_ok &= bf[k] == want;
            }
            CHECK_MSG(bf_ok, "%s: bf16 dequantization", tn(r->type));
            free(bf);
            n_deq++;
        } else if (r->tag == T_DOT) {
            const uint32_t vdt = kvq_type_traits_of(r->type)->vec_dot_type;
            const rec *w = r->a == RAND_ROW ? find(T_RAND, r->type, 0) : find(T_QUANT, r->type, r->a);
            const rec *xq = find(T_QUANT, vdt, r->b);
            const rec *xrow = find(T_ROW, 0, r->b);
            CHECK(w && xq && xrow);
            if (!w || !xq || !xrow) continue;
            const int64_t n = xrow->len / 4;
            uint8_t *wb = malloc(w->len), *xb = malloc(xq->len);
            memcpy(wb, w->p, w->len);
            memcpy(xb, xq->p, xq->len);
            float want;
            memcpy(&want, r->p, 4);
            const float got = kvq_vec_dot_scalar(r->type, n, wb, xb);
            CHECK_MSG(memcmp(&got, &want, 4) == 0, "%s: scalar dot of row %u with row %u: %.9g vs ggml %.9g",
                      tn(r->type), r->a, r->b, got, want);
            /* The dispatched kernel: float reordering only. */
            float *wf = malloc((size_t)n * 4), *xf = malloc((size_t)n * 4);
            kvq_dequantize_rows_f32(r->type, wb, wf, 1, n);
            kvq_dequantize_rows_f32(vdt == GGML_TYPE_Q8_1 ? GGML_TYPE_Q8_1 : vdt, xb, xf, 1, n);
            double mag = 0;
            for (int64_t k = 0; k < n; k++) mag += fabs((double)wf[k] * xf[k]);
            const float fast = kvq_vec_dot(r->type, n, wb, xb);
            /* Overflowing rows (fp16 scales of the extreme row) give
             * inf/NaN in ggml too: the same class is enough there. */
            const bool fin = isfinite(want);
            CHECK_MSG(fin ? fabs((double)fast - want) <= 1e-5 * mag + 1e-30
                          : (isnan(want) ? isnan(fast) : fast == want), "%s (%s path): dot %.9g vs ggml %.9g",
                      tn(r->type), kvq_cpu_path(), fast, want);
            free(wf);
            free(xf);
            free(wb);
            free(xb);
            n_dot++;
        }
    }
    free(y);
    free(q);
    printf("test_quant: %d quantized rows, %d dequantizations, %d dot products checked against ggml "
           "(%s path); %d checks, %d failures\n",
           n_quant, n_deq, n_dot, kvq_cpu_path(), kvp_test_checks, kvp_test_failures);
    CHECK(n_quant > 100 && n_deq > 100 && n_dot > 300);
    return kvp_test_failures ? 1 : 0;
}
