/* The shipped model: the engine's logits for models/kvp-mini (HF folder and
 * GGUF) against the training framework's, recorded in a golden file by
 * tools/train/golden.py (torch, float32). Usage:
 *   test_kvp_mini MODEL_PATH GOLDEN_JSON
 * Row 0 of the golden logits is the prefill's last position; row k the
 * logits after feeding greedy id k-1. */
#include <jansson.h>
#include <stdlib.h>

#include "kvprune.h"
#include "test_util.h"

typedef struct rec {
    float *rows;
    int n_rows, cap, n_vocab;
} rec;

static bool on_token(void *user, int32_t id, const float *logits, int n_vocab) {
    (void)id;
    rec *r = user;
    if (r->n_rows < r->cap) {
        memcpy(r->rows + (size_t)r->n_rows * n_vocab, logits, sizeof(float) * n_vocab);
        r->n_rows++;
    }
    return true;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL GOLDEN_JSON\n", argv[0]);
        return 2;
    }
    json_error_t jerr;
    json_t *g = json_load_file(argv[2], 0, &jerr);
    if (!g) {
        fprintf(stderr, "%s:%d: %s\n", argv[2], jerr.line, jerr.text);
        return 1;
    }
    json_t *jp = json_object_get(g, "prompt_ids"), *jg = json_object_get(g, "greedy_ids"),
           *jl = json_object_get(g, "logits");
    CHECK(json_is_array(jp) && json_is_array(jg) && json_is_array(jl));
    size_t n_prompt = json_array_size(jp), n_gen = json_array_size(jg);
    CHECK_EQ_INT(json_array_size(jl), n_gen + 1);
    int32_t *prompt = malloc(sizeof(int32_t) * (n_prompt ? n_prompt : 1));
    for (size_t i = 0; i < n_prompt; i++) prompt[i] = (int32_t)json_integer_value(json_array_get(jp, i));

    kvp_model_params mp = kvp_model_default_params();
    kvp_model *m = NULL;
    kvp_error err;
    if (kvp_model_load(argv[1], &mp, &m, &err) != KVP_OK) {
        fprintf(stderr, "load: %s\n", err.message);
        return 1;
    }
    kvp_model_info info;
    kvp_model_get_info(m, &info);
    kvp_cache_params cp = kvp_cache_default_params();
    cp.kv_type = KVP_KV_F32; /* the reference keeps K/V exact */
    kvp_cache *c = NULL;
    CHECK(kvp_cache_new(m, &cp, &c, &err) == KVP_OK);
    rec r = {malloc(sizeof(float) * (n_gen + 1) * info.n_vocab), 0, (int)n_gen + 1, info.n_vocab};
    kvp_gen_params gp = kvp_gen_default_params();
    gp.max_new_tokens = (int)n_gen + 1;
    gp.ignore_eos = true;
    gp.on_token = on_token;
    gp.user = &r;
    kvp_gen_result res;
    CHECK(kvp_generate(m, c, prompt, n_prompt, &gp, &res, &err) == KVP_OK);

    double worst = 0;
    for (size_t k = 0; k < n_gen + 1 && (int)k < r.n_rows; k++) {
        json_t *row = json_array_get(jl, k);
        CHECK_EQ_INT(json_array_size(row), info.n_vocab);
        for (int v = 0; v < info.n_vocab && v < (int)json_array_size(row); v++) {
            double want = json_number_value(json_array_get(row, v));
            double got = r.rows[k * info.n_vocab + v];
            double rel = fabs(got - want) / (fabs(want) > 1 ? fabs(want) : 1);
            if (rel > worst) worst = rel;
        }
    }
    CHECK_MSG(worst <= 1e-3, "max relative logit difference %.3g > 1e-3", worst);
    for (size_t k = 0; k < n_gen && k < res.n_ids; k++)
        CHECK_EQ_INT(res.ids[k], json_integer_value(json_array_get(jg, k)));
    printf("%s: %zu prompt ids, %zu greedy ids, max relative logit difference %.3g\n", argv[1],
           n_prompt, n_gen, worst);

    kvp_gen_result_free(&res);
    free(r.rows);
    free(prompt);
    kvp_cache_free(c);
    kvp_model_free(m);
    json_decref(g);
    return kvp_test_done("test_kvp_mini");
}
