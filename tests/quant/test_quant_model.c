/* Quantized models end to end, on a seeded random llama GGUF written here
 * (hidden 256, so every type's block divides the rows; Q/K rows in
 * llama.cpp's permuted order, so un-permutation moves quantized rows; tied
 * embedding, so the LM head is quantized too):
 *
 *  - for every supported quantized type, the model with all matrices in
 *    that type against its dequantized F32 twin (the same values as F32):
 *    the logits of the prompt and of every decode step stay within
 *    TWIN_TOL of the twin's, relative to the step's largest |logit| (the
 *    prompt's 20 tokens run through dequantized panels, exact up to float
 *    order; one-token products quantize the activations to Q8 as ggml does,
 *    which is what the tolerance covers);
 *  - identical ids and logits for 1, 2 and 3 threads;
 *  - every cache method runs on a quantized model;
 *  - `convert --type` output loads and carries llama.cpp's tensor types for
 *    this shape (the peer test compares them with llama.cpp's own choice);
 *  - an unsupported type is an error naming the tensor and the type. */
#include <stdint.h>
#include <unistd.h>

#include "format/gguf.h"
#include "kernels/quant.h"
#include "kvprune.h"
#include "test_util.h"

#define E 256
#define H 4
#define HK 2
#define HD 64
#define FF 512
#define NL 2
#define V 256
#define N_PROMPT 20 /* more than KVQ_DOT_MAX_ROWS: the prompt takes the panel path */
#define N_STEPS 12

/* Max |logit - twin logit| / max |twin logit| per step. Measured on this
 * model: 7.7e-3 (IQ4_NL) to 1.7e-2 (Q5_K). */
#define TWIN_TOL 0.03

static uint64_t rng = 12345;
static float gauss(void) {
    double s = 0;
    for (int i = 0; i < 12; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        s += (double)(rng >> 11) / 9007199254740992.0;
    }
    return (float)(s - 6.0);
}

typedef struct mat {
    const char *name;
    int rows, cols;
    float *w;
} mat;

static mat mats[1 + NL * 7];
static float norm_w[E];

static void make_weights(void) {
    int k = 0;
    mats[k++] = (mat){"token_embd.weight", V, E, NULL};
    static char names[NL * 7][40];
    const char *nm[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    const int rows[7] = {H * HD, HK * HD, HK * HD, E, FF, FF, E};
    const int cols[7] = {E, E, E, H * HD, E, E, FF};
    for (int l = 0; l < NL; l++)
        for (int j = 0; j < 7; j++) {
            snprintf(names[l * 7 + j], sizeof names[0], "blk.%d.%s.weight", l, nm[j]);
            mats[k++] = (mat){names[l * 7 + j], rows[j], cols[j], NULL};
        }
    for (int i = 0; i < k; i++) {
        const size_t n = (size_t)mats[i].rows * mats[i].cols;
        mats[i].w = malloc(n * sizeof(float));
        /* The embedding (also the LM head) larger, so logits spread. */
        const float sc = i == 0 ? 0.5f : 0.06f;
        for (size_t j = 0; j < n; j++) mats[i].w[j] = sc * gauss();
    }
    for (int i = 0; i < E; i++) norm_w[i] = 1.0f + 0.1f * gauss();
}

/* Writes the model with every matrix in `type`; twin: the dequantized
 * values of that type, stored as F32. */
static bool write_model(const char *path, uint32_t type, bool twin) {
    gguf_writer *w = kvgguf_writer_new();
    kvgguf_writer_set_str(w, "general.architecture", "llama");
    kvgguf_writer_set_u32(w, "llama.embedding_length", E);
    kvgguf_writer_set_u32(w, "llama.block_count", NL);
    kvgguf_writer_set_u32(w, "llama.feed_forward_length", FF);
    kvgguf_writer_set_u32(w, "llama.attention.head_count", H);
    kvgguf_writer_set_u32(w, "llama.attention.head_count_kv", HK);
    kvgguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    kvgguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    kvgguf_writer_set_str(w, "tokenizer.ggml.model", "none");
    void *bufs[64];
    int nb = 0;
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
        const mat *m = &mats[i];
        const size_t rb = kvq_row_bytes(type, m->cols);
        uint8_t *q = malloc(rb * m->rows);
        if (type == GGML_TYPE_F32)
            memcpy(q, m->w, rb * m->rows);
        else
            for (int r = 0; r < m->rows; r++)
                kvq_quantize_row_ref(type, m->w + (size_t)r * m->cols, q + rb * r, m->cols);
        uint64_t ne[2] = {(uint64_t)m->cols, (uint64_t)m->rows};
        if (twin) {
            float *f = malloc(sizeof(float) * m->rows * m->cols);
            kvq_dequantize_rows_f32(type, q, f, m->rows, m->cols);
            free(q);
            kvgguf_writer_add_tensor(w, m->name, 2, ne, GGML_TYPE_F32, f, sizeof(float) * m->rows * m->cols);
            bufs[nb++] = f;
        } else {
            kvgguf_writer_add_tensor(w, m->name, 2, ne, type, q, rb * m->rows);
            bufs[nb++] = q;
        }
    }
    uint64_t ne1[1] = {E};
    char n[64];
    for (int l = 0; l < NL; l++) {
        snprintf(n, sizeof n, "blk.%d.attn_norm.weight", l);
        kvgguf_writer_add_tensor(w, n, 1, ne1, GGML_TYPE_F32, norm_w, sizeof norm_w);
        snprintf(n, sizeof n, "blk.%d.ffn_norm.weight", l);
        kvgguf_writer_add_tensor(w, n, 1, ne1, GGML_TYPE_F32, norm_w, sizeof norm_w);
    }
    kvgguf_writer_add_tensor(w, "output_norm.weight", 1, ne1, GGML_TYPE_F32, norm_w, sizeof norm_w);
    kvp_error err = {0};
    bool ok = kvgguf_writer_write(w, path, &err) == KVP_OK;
    if (!ok) fprintf(stderr, "%s: %s\n", path, err.message);
    kvgguf_writer_free(w);
    for (int i = 0; i < nb; i++) free(bufs[i]);
    return ok;
}

typedef struct run {
    int32_t ids[N_STEPS];
    float logits[N_STEPS][V];
    int n;
} run;

static bool collect(void *user, int32_t id, const float *logits, int n_vocab) {
    run *r = user;
    if (r->n >= N_STEPS) return false;
    r->ids[r->n] = id;
    memcpy(r->logits[r->n], logits, sizeof(float) * n_vocab);
    r->n++;
    return true;
}

static const int32_t prompt[N_PROMPT] = {3, 17, 99, 254, 4, 128, 77, 5, 9, 200,
                                        31, 64, 150, 2, 88, 240, 12, 6, 190, 45};

/* Greedy generation with `method` (NULL: full cache). */
static bool generate(const char *path, int threads, const char *method, run *r) {
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = threads;
    kvp_model *m = NULL;
    kvp_error err = {0};
    if (kvp_model_load(path, &mp, &m, &err)) {
        fprintf(stderr, "load %s: %s\n", path, err.message);
        return false;
    }
    kvp_cache *c = NULL;
    kvp_cache_params cp = kvp_cache_default_params();
    if (method) {
        cp.method = method;
        cp.num_recent = 2;
        cp.num_heavy = 3;
    }
    bool ok = kvp_cache_new(m, &cp, &c, &err) == KVP_OK;
    if (!ok) fprintf(stderr, "cache %s: %s\n", method ? method : "full", err.message);
    memset(r, 0, sizeof *r);
    kvp_gen_params gp = kvp_gen_default_params();
    gp.max_new_tokens = N_STEPS;
    gp.ignore_eos = true;
    gp.on_token = collect;
    gp.user = r;
    kvp_gen_result res = {0};
    if (ok) {
        ok = kvp_generate(m, c, prompt, N_PROMPT, &gp, &res, &err) == KVP_OK;
        if (!ok) fprintf(stderr, "generate %s (%s): %s\n", path, method ? method : "full", err.message);
        kvp_gen_result_free(&res);
    }
    kvp_cache_free(c);
    kvp_model_free(m);
    return ok && r->n == N_STEPS;
}

/* The twin's logits along the quantized model's ids (kvp_eval). */
static bool twin_logits(const char *path, const run *q, float out[N_STEPS][V]) {
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = 1;
    kvp_model *m = NULL;
    kvp_error err = {0};
    if (kvp_model_load(path, &mp, &m, &err)) return false;
    kvp_cache *c = NULL;
    kvp_cache_params cp = kvp_cache_default_params();
    bool ok = kvp_cache_new(m, &cp, &c, &err) == KVP_OK &&
              kvp_eval(m, c, prompt, N_PROMPT, out[0], &err) == KVP_OK;
    for (int s = 1; ok && s < N_STEPS; s++) ok = kvp_eval(m, c, &q->ids[s - 1], 1, out[s], &err) == KVP_OK;
    kvp_cache_free(c);
    kvp_model_free(m);
    return ok;
}

static void test_types(const char *tmp) {
    static const uint32_t types[] = {GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1,
                                     GGML_TYPE_Q8_0, GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K,
                                     GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_IQ4_NL, GGML_TYPE_IQ4_XS};
    char qp[512], tp[512];
    static run r1, r2, r3;
    static float tw[N_STEPS][V];
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const uint32_t t = types[ti];
        const char *name = kvq_type_traits_of(t)->name;
        snprintf(qp, sizeof qp, "%s/%s.gguf", tmp, name);
        snprintf(tp, sizeof tp, "%s/%s-twin.gguf", tmp, name);
        CHECK(write_model(qp, t, false) && write_model(tp, t, true));
        if (!generate(qp, 1, NULL, &r1)) {
            CHECK_MSG(0, "%s: generation failed", name);
            continue;
        }
        CHECK(twin_logits(tp, &r1, tw));
        double worst = 0;
        for (int s = 0; s < N_STEPS; s++) {
            double range = 0, d = 0;
            for (int i = 0; i < V; i++) {
                if (fabs(tw[s][i]) > range) range = fabs(tw[s][i]);
                if (fabs(r1.logits[s][i] - tw[s][i]) > d) d = fabs(r1.logits[s][i] - tw[s][i]);
            }
            if (d / range > worst) worst = d / range;
        }
        printf("%-7s logits vs dequantized F32 twin: max |diff| / max |logit| = %.2e\n", name, worst);
        CHECK_MSG(worst <= TWIN_TOL, "%s: %.3g > %g", name, worst, TWIN_TOL);
        /* Thread counts. */
        CHECK(generate(qp, 2, NULL, &r2) && generate(qp, 3, NULL, &r3));
        CHECK_MSG(memcmp(&r1, &r2, sizeof r1) == 0 && memcmp(&r1, &r3, sizeof r1) == 0,
                  "%s: results depend on the thread count", name);
        unlink(qp);
        unlink(tp);
    }
}

static void test_methods(const char *tmp) {
    char qp[512];
    snprintf(qp, sizeof qp, "%s/methods.gguf", tmp);
    CHECK(write_model(qp, GGML_TYPE_Q4_K, false));
    static run r;
    int n = 0;
    for (const char *const *m = kvp_cache_method_names(); *m; m++, n++)
        CHECK_MSG(generate(qp, 2, *m, &r), "method %s on a Q4_K model", *m);
    CHECK(n >= 12);
    unlink(qp);
}

/* Tensor types `convert` picks for this shape (E = 256: no fallbacks;
 * attn_v / ffn_down of layer 1 of 2 get more bits in the _m presets). */
static void test_convert(const char *tmp) {
    char src[512], out[512];
    snprintf(src, sizeof src, "%s/src.gguf", tmp);
    CHECK(write_model(src, GGML_TYPE_F32, false));
    static const struct {
        kvp_ftype ft;
        const char *types;
    } cases[] = {
        {KVP_FTYPE_Q8_0, "F32 x5, Q8_0 x15"},
        {KVP_FTYPE_Q4_0, "F32 x5, Q4_0 x14, Q6_K x1"},
        {KVP_FTYPE_Q4_K, "F32 x5, Q4_K x15"},
        {KVP_FTYPE_Q6_K, "F32 x5, Q6_K x15"},
        {KVP_FTYPE_Q4_K_M, "F32 x5, Q4_K x12, Q6_K x3"},
        {KVP_FTYPE_Q5_K_M, "F32 x5, Q5_K x12, Q6_K x3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(out, sizeof out, "%s/conv%zu.gguf", tmp, i);
        kvp_error err = {0};
        CHECK_MSG(kvp_convert_to_gguf(src, out, cases[i].ft, &err) == KVP_OK, "%s", err.message);
        kvp_model *m = NULL;
        kvp_model_params mp = kvp_model_default_params();
        CHECK(kvp_model_load(out, &mp, &m, &err) == KVP_OK);
        if (!m) continue;
        kvp_model_info I;
        kvp_model_get_info(m, &I);
        CHECK_STR(I.weight_types, cases[i].types);
        kvp_model_free(m);
        unlink(out);
    }
    unlink(src);
}

static void test_unsupported(const char *tmp) {
    char p[512];
    snprintf(p, sizeof p, "%s/iq2.gguf", tmp);
    gguf_writer *w = kvgguf_writer_new();
    kvgguf_writer_set_str(w, "general.architecture", "llama");
    kvgguf_writer_set_u32(w, "llama.embedding_length", E);
    kvgguf_writer_set_u32(w, "llama.block_count", 1);
    kvgguf_writer_set_u32(w, "llama.feed_forward_length", FF);
    kvgguf_writer_set_u32(w, "llama.attention.head_count", H);
    kvgguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    static uint8_t zeros[V * 66];
    uint64_t ne[2] = {E, V};
    kvgguf_writer_add_tensor(w, "token_embd.weight", 2, ne, GGML_TYPE_IQ2_XXS, zeros, sizeof zeros);
    kvp_error err = {0};
    CHECK(kvgguf_writer_write(w, p, &err) == KVP_OK);
    kvgguf_writer_free(w);
    kvp_model *m = NULL;
    kvp_model_params mp = kvp_model_default_params();
    CHECK(kvp_model_load(p, &mp, &m, &err) == KVP_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(err.message, "iq2.gguf: tensor token_embd.weight has type IQ2_XXS, which kvprune "
                                  "does not support (supported: F32, F16, BF16, Q4_0") != NULL,
              "%s", err.message);
    kvp_model_free(m);
    unlink(p);
}

int main(void) {
    char tmp[] = "/tmp/kvp_quant_model_XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    make_weights();
    test_unsupported(tmp);
    test_convert(tmp);
    test_types(tmp);
    test_methods(tmp);
    rmdir(tmp);
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) free(mats[i].w);
    return kvp_test_done("test_quant_model");
}
