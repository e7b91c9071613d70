/* The engine against golden outputs of an independent numpy forward pass
 * (tools/fixtures/make_fixtures.py), on every fixture shape:
 *  - HF folder: 32 greedy ids identical, logits within 1e-4 (relative to
 *    max(1, |x|));
 *  - the GGUF written by kvp_convert_to_gguf: ids identical, logits within
 *    1e-5 of the HF folder's;
 *  - 1 vs 2 threads bit-identical; chunked prefill and kvp_eval agree. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/gguf.h"
#include "kvprune.h"
#include "test_util.h"

#define N_STEPS 32

static const char *fixtures[] = {
    "llama-mha",       "llama-gqa",       "llama-gqa-f16",   "llama-gqa-bf16",
    "llama3-rope-tied", "mistral-headdim", "qwen2-bias-tied", "qwen3-qknorm",
    "llama-hd64-bf16", "llama-tok-bf16", "llama-attnbias",
};

typedef struct golden {
    int32_t prompt[64];
    size_t n_prompt;
    int32_t ids[N_STEPS];
    int n_vocab;
    float *logits; /* [N_STEPS][n_vocab] */
} golden;

static bool load_golden(const char *dir, golden *g) {
    char p[512];
    snprintf(p, sizeof p, "tests/data/model/%s/golden.json", dir);
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    if (!j) return false;
    json_t *pr = json_object_get(j, "prompt_ids"), *ids = json_object_get(j, "ids");
    g->n_prompt = json_array_size(pr);
    for (size_t i = 0; i < g->n_prompt && i < 64; i++)
        g->prompt[i] = (int32_t)json_integer_value(json_array_get(pr, i));
    for (size_t i = 0; i < N_STEPS; i++) g->ids[i] = (int32_t)json_integer_value(json_array_get(ids, i));
    g->n_vocab = (int)json_integer_value(json_object_get(j, "n_vocab"));
    json_decref(j);
    snprintf(p, sizeof p, "tests/data/model/%s/golden_logits.f32", dir);
    FILE *f = fopen(p, "rb");
    if (!f) return false;
    g->logits = malloc((size_t)N_STEPS * g->n_vocab * sizeof(float));
    size_t got = fread(g->logits, sizeof(float), (size_t)N_STEPS * g->n_vocab, f);
    fclose(f);
    return got == (size_t)N_STEPS * g->n_vocab;
}

typedef struct run {
    int32_t ids[N_STEPS];
    int n;
    float *logits;
    int n_vocab;
} run;

static bool collect(void *user, int32_t id, const float *logits, int n_vocab) {
    run *r = user;
    if (r->n >= N_STEPS) return false;
    r->ids[r->n] = id;
    memcpy(r->logits + (size_t)r->n * n_vocab, logits, (size_t)n_vocab * sizeof(float));
    r->n++;
    return true;
}

static bool generate(const char *path, const golden *g, int threads, int chunk, run *r) {
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = threads;
    mp.compute = KVP_COMPUTE_F32; /* the goldens are float32 arithmetic */
    kvp_model *m = NULL;
    kvp_error err = {0};
    if (kvp_model_load(path, &mp, &m, &err)) {
        fprintf(stderr, "load %s: %s\n", path, err.message);
        return false;
    }
    kvp_cache *c = NULL;
    kvp_cache_params cp = kvp_cache_default_params();
    cp.kv_type = KVP_KV_F32; /* the reference keeps K/V exact */
    if (kvp_cache_new(m, &cp, &c, &err)) {
        fprintf(stderr, "cache: %s\n", err.message);
        kvp_model_free(m);
        return false;
    }
    memset(r, 0, sizeof *r);
    r->n_vocab = g->n_vocab;
    r->logits = calloc((size_t)N_STEPS * g->n_vocab, sizeof(float));
    kvp_gen_params gp = kvp_gen_default_params();
    gp.max_new_tokens = N_STEPS;
    gp.ignore_eos = true;
    gp.prefill_chunk = chunk;
    gp.on_token = collect;
    gp.user = r;
    kvp_gen_result res;
    bool ok = kvp_generate(m, c, g->prompt, g->n_prompt, &gp, &res, &err) == KVP_OK;
    if (!ok) fprintf(stderr, "generate %s: %s\n", path, err.message);
    if (ok) {
        CHECK_EQ_INT(res.n_ids, N_STEPS);
        CHECK_EQ_INT(res.n_prompt, g->n_prompt);
        CHECK_EQ_INT(res.cache.n_seen, (int64_t)g->n_prompt + N_STEPS - 1);
        CHECK(memcmp(res.ids, r->ids, sizeof r->ids) == 0);
    }
    kvp_gen_result_free(&res);
    kvp_cache_free(c);
    kvp_model_free(m);
    return ok;
}

static double max_diff(const float *a, const float *b, size_t n, double *worst_rel) {
    double worst = 0, rel = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        double m = fabs(b[i]) > 1 ? fabs(b[i]) : 1;
        if (d > worst) worst = d;
        if (d / m > rel) rel = d / m;
    }
    if (worst_rel) *worst_rel = rel;
    return worst;
}

/* kvp_eval token by token reproduces the generate logits. */
static void check_eval(const char *path, const golden *g, const run *ref) {
    kvp_model *m = NULL;
    kvp_error err = {0};
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = 1;
    mp.compute = KVP_COMPUTE_F32;
    if (kvp_model_load(path, &mp, &m, &err)) return;
    kvp_cache *c = NULL;
    kvp_cache_params cp = kvp_cache_default_params();
    cp.kv_type = KVP_KV_F32; /* the reference keeps K/V exact */
    CHECK(kvp_cache_new(m, &cp, &c, &err) == KVP_OK);
    float *lg = malloc((size_t)g->n_vocab * sizeof(float));
    CHECK(kvp_eval(m, c, g->prompt, g->n_prompt, lg, &err) == KVP_OK);
    double worst = max_diff(lg, ref->logits, (size_t)g->n_vocab, NULL);
    for (int s = 1; s < 4; s++) {
        CHECK(kvp_eval(m, c, &ref->ids[s - 1], 1, lg, &err) == KVP_OK);
        double d = max_diff(lg, ref->logits + (size_t)s * g->n_vocab, (size_t)g->n_vocab, NULL);
        if (d > worst) worst = d;
    }
    CHECK_MSG(worst == 0.0, "%s: kvp_eval differs from kvp_generate by %g", path, worst);
    /* Reading the file instead of mapping it changes nothing. */
    kvp_model *m2 = NULL;
    mp.use_mmap = false;
    CHECK(kvp_model_load(path, &mp, &m2, &err) == KVP_OK);
    if (m2) {
        kvp_cache *c2 = NULL;
        CHECK(kvp_cache_new(m2, &cp, &c2, &err) == KVP_OK);
        float *lg2 = malloc((size_t)g->n_vocab * sizeof(float));
        CHECK(kvp_eval(m2, c2, g->prompt, g->n_prompt, lg2, &err) == KVP_OK);
        CHECK(memcmp(lg2, ref->logits, (size_t)g->n_vocab * sizeof(float)) == 0);
        free(lg2);
        kvp_cache_free(c2);
        kvp_model_free(m2);
    }
    int32_t bad = g->n_vocab;
    CHECK(kvp_eval(m, c, &bad, 1, lg, &err) == KVP_ERR_INVALID_ARG && strstr(err.message, "out of range"));
    free(lg);
    kvp_cache_free(c);
    kvp_model_free(m);
}

int main(void) {
    char tmpdir[256];
    snprintf(tmpdir, sizeof tmpdir, "%s/kvp_test_model_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir);
    if (!mkdtemp(tmpdir)) return 1;
    double worst_golden = 0, worst_golden_rel = 0, worst_gguf = 0;
    for (size_t fi = 0; fi < sizeof fixtures / sizeof fixtures[0]; fi++) {
        const char *name = fixtures[fi];
        golden g = {0};
        CHECK_MSG(load_golden(name, &g), "%s: golden files", name);
        if (!g.logits) continue;
        char hf[512], gg[512];
        snprintf(hf, sizeof hf, "tests/data/model/%s", name);
        snprintf(gg, sizeof gg, "%s/%s.gguf", tmpdir, name);
        run r1, r2, rc, rg;
        if (!generate(hf, &g, 1, 0, &r1)) {
            CHECK_MSG(0, "%s: generate failed", name);
            free(g.logits);
            continue;
        }
        /* HF folder vs the numpy reference. */
        CHECK_MSG(memcmp(r1.ids, g.ids, sizeof g.ids) == 0, "%s: greedy ids differ from golden", name);
        double rel;
        double d = max_diff(r1.logits, g.logits, (size_t)N_STEPS * g.n_vocab, &rel);
        CHECK_MSG(rel <= 1e-4, "%s: logits differ from golden by %g (relative %g)", name, d, rel);
        if (d > worst_golden) worst_golden = d;
        if (rel > worst_golden_rel) worst_golden_rel = rel;
        /* Threads. */
        CHECK(generate(hf, &g, 2, 0, &r2));
        CHECK_MSG(memcmp(r1.logits, r2.logits, (size_t)N_STEPS * g.n_vocab * sizeof(float)) == 0,
                  "%s: 1 and 2 threads differ", name);
        /* Chunked prefill (chunks of 4: at the oneDNN crossover, so with or
         * without oneDNN every chunk takes the same products as one pass). */
        CHECK(generate(hf, &g, 2, 4, &rc));
        CHECK_MSG(memcmp(rc.ids, r1.ids, sizeof r1.ids) == 0, "%s: chunked prefill ids differ", name);
        double dc = max_diff(rc.logits, r1.logits, (size_t)N_STEPS * g.n_vocab, NULL);
        CHECK_MSG(dc <= 1e-5, "%s: chunked prefill logits differ by %g", name, dc);
        /* GGUF written by the converter. */
        kvp_error err = {0};
        CHECK_MSG(kvp_convert_to_gguf(hf, gg, KVP_FTYPE_F32, &err) == KVP_OK, "%s: convert: %s", name,
                  err.message);
        if (generate(gg, &g, 1, 0, &rg)) {
            CHECK_MSG(memcmp(rg.ids, r1.ids, sizeof r1.ids) == 0, "%s: GGUF ids differ", name);
            double dg = max_diff(rg.logits, r1.logits, (size_t)N_STEPS * g.n_vocab, NULL);
            CHECK_MSG(dg <= 1e-5, "%s: GGUF logits differ from HF by %g", name, dg);
            if (dg > worst_gguf) worst_gguf = dg;
            printf("%-18s golden max|diff| %.3g (rel %.3g)  gguf-vs-hf %.3g  chunked %.3g\n", name, d,
                   rel, dg, dc);
            free(rg.logits);
        } else {
            CHECK_MSG(0, "%s: GGUF generate failed", name);
        }
        /* The GGUF holds llama.cpp's names and types. */
        gguf_file *gf = NULL;
        if (kvgguf_open(gg, true, &gf, &err) == KVP_OK) {
            CHECK(kvgguf_find_tensor(gf, "token_embd.weight") != NULL);
            CHECK(kvgguf_find_tensor(gf, "blk.1.ffn_down.weight") != NULL);
            CHECK(kvgguf_find_tensor(gf, "output_norm.weight") != NULL);
            char cfgp[600];
            snprintf(cfgp, sizeof cfgp, "%s/config.json", hf);
            json_t *cfg = json_load_file(cfgp, 0, NULL);
            bool tied = json_is_true(json_object_get(cfg, "tie_word_embeddings"));
            json_decref(cfg);
            CHECK_MSG((kvgguf_find_tensor(gf, "output.weight") == NULL) == tied, "%s: output.weight", name);
            CHECK((kvgguf_find_tensor(gf, "rope_freqs.weight") != NULL) == (strstr(name, "llama3") != NULL));
            CHECK((kvgguf_find_tensor(gf, "blk.0.attn_q.bias") != NULL) ==
                  (strstr(name, "qwen2") != NULL || strstr(name, "attnbias") != NULL));
            CHECK((kvgguf_find_tensor(gf, "blk.0.attn_k_norm.weight") != NULL) ==
                  (strstr(name, "qwen3") != NULL));
            uint32_t u;
            CHECK(kvgguf_get_u32(gf, "general.file_type", &u) && u == 0);
            kvgguf_close(gf);
        }
        check_eval(hf, &g, &r1);
        /* Half-precision conversion: same model to within rounding. */
        if (fi == 0) {
            const char *types[2] = {"f16", "bf16"};
            for (int t = 0; t < 2; t++) {
                CHECK(kvp_convert_to_gguf(hf, gg, t == 0 ? KVP_FTYPE_F16 : KVP_FTYPE_BF16, &err) == KVP_OK);
                gguf_file *hf16 = NULL;
                if (kvgguf_open(gg, true, &hf16, &err) == KVP_OK) {
                    const gguf_tensor_info *ti = kvgguf_find_tensor(hf16, "blk.0.attn_q.weight");
                    CHECK(ti && ti->type == (t == 0 ? GGML_TYPE_F16 : GGML_TYPE_BF16));
                    ti = kvgguf_find_tensor(hf16, "blk.0.attn_norm.weight");
                    CHECK(ti && ti->type == GGML_TYPE_F32);
                    kvgguf_close(hf16);
                }
                run rh;
                if (generate(gg, &g, 1, 0, &rh)) {
                    double dh = max_diff(rh.logits, r1.logits, (size_t)g.n_vocab, NULL);
                    CHECK_MSG(dh < (t == 0 ? 0.02 : 0.2), "%s %s: prefill logits differ by %g", name,
                              types[t], dh);
                    printf("%-18s as %-4s GGUF: prefill logits within %.3g\n", name, types[t], dh);
                    free(rh.logits);
                }
            }
        }
        unlink(gg);
        free(r1.logits);
        free(r2.logits);
        free(rc.logits);
        free(g.logits);
    }
    printf("largest logit difference vs golden: %.3g (relative %.3g); GGUF vs HF: %.3g\n",
           worst_golden, worst_golden_rel, worst_gguf);
    rmdir(tmpdir);
    return kvp_test_done("test_model");
}
