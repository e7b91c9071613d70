/* End to end: the fixture models (tests/data/cache/tiny-*, random Llama
 * weights) loaded through the public API and run with kvp_generate and each
 * cache configuration, against the float64 numpy reference
 * (tools/cacheref/make_model_goldens.py): kept positions after the prefill
 * and at the end, greedy ids for 16 steps, and the logits of the first and
 * last steps within 1e-3 relative; tiny-*.alloc.golden.json the same for
 * the budget allocations (head-adaptive, pyramid, both).
 *
 * float32 here vs float64 there: selections are compared where the
 * reference's smallest relative score gap at a selection boundary is
 * >= 1e-4, and ids up to the first step whose top-1/top-2 logit gap is
 * below 1e-3 (see the generator's docs). The first step's logits never
 * depend on a selection (prefill evicts after attending) and are always
 * compared. */
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "golden_params.h"
#include "kvprune.h"
#include "test_util.h"

#define MARGIN_MIN 1e-4
#define GAP_MIN 1e-3
#define LOGIT_TOL 1e-3

typedef struct capture {
    kvp_cache *cache;
    int n_vocab, steps;
    float *first, *last;
    char **masks; /* after prefill, [layer*stream] */
    int n_masks;
} capture;

static void hex_of(const int32_t *pos, size_t n, char *out) {
    int top = 0;
    for (size_t i = 0; i < n; i++)
        if (pos[i] / 4 + 1 > top) top = pos[i] / 4 + 1;
    unsigned char nib[512] = {0};
    for (size_t i = 0; i < n; i++) nib[pos[i] / 4] |= (unsigned char)(1u << (pos[i] % 4));
    int o = 0;
    for (int i = top - 1; i >= 0; i--) out[o++] = "0123456789abcdef"[nib[i]];
    if (o == 0) out[o++] = '0';
    out[o] = '\0';
}

static char **cache_masks(kvp_cache *c, int *count) {
    kvp_cache_stats st;
    kvp_cache_get_stats(c, &st);
    *count = st.n_layer * st.n_streams;
    char **m = calloc((size_t)*count, sizeof *m);
    for (int l = 0; l < st.n_layer; l++)
        for (int s = 0; s < st.n_streams; s++) {
            const int32_t *pos;
            size_t n = 0;
            kvp_error err;
            kvp_cache_kept_positions(c, l, s, &pos, &n, &err);
            m[l * st.n_streams + s] = malloc(520);
            hex_of(pos, n, m[l * st.n_streams + s]);
        }
    return m;
}

static void free_masks(char **m, int n) {
    for (int i = 0; i < n && m; i++) free(m[i]);
    free(m);
}

static bool on_token(void *user, int32_t id, const float *logits, int n_vocab) {
    (void)id;
    capture *c = user;
    if (c->steps == 0) {
        memcpy(c->first, logits, sizeof(float) * (size_t)n_vocab);
        c->masks = cache_masks(c->cache, &c->n_masks);
    }
    memcpy(c->last, logits, sizeof(float) * (size_t)n_vocab);
    c->steps++;
    return true;
}

static int masks_differ(char **got, int n, json_t *want) {
    int bad = 0, k = 0;
    for (size_t l = 0; l < json_array_size(want); l++) {
        json_t *layer = json_array_get(want, l);
        for (size_t s = 0; s < json_array_size(layer); s++, k++)
            if (k >= n || strcmp(got[k], json_string_value(json_array_get(layer, s))) != 0)
                bad++;
    }
    return bad + (k != n);
}

static double logits_diff(const float *got, json_t *want, int n) {
    double worst = 0.0;
    for (int i = 0; i < n; i++) {
        double w = json_number_value(json_array_get(want, (size_t)i));
        double d = fabs(got[i] - w) / (fabs(w) > 1 ? fabs(w) : 1);
        if (d > worst) worst = d;
    }
    return worst;
}

/* golden: "golden" or "alloc.golden" */
static void run_fixture(const char *name, const char *golden) {
    char path[256];
    snprintf(path, sizeof path, "tests/data/cache/%s.%s.json", name, golden);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    CHECK_MSG(doc != NULL, "%s: %s", path, jerr.text);
    if (!doc) return;
    snprintf(path, sizeof path, "tests/data/cache/%s", name);
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = 1; /* thread-count independence: test_cache_golden */
    kvp_model *model = NULL;
    kvp_error err;
    kvp_status st = kvp_model_load(path, &mp, &model, &err);
    CHECK_MSG(st == KVP_OK, "%s: %s", path, err.message);
    if (st != KVP_OK) {
        json_decref(doc);
        return;
    }
    kvp_model_info info;
    kvp_model_get_info(model, &info);
    json_t *jp = json_object_get(doc, "prompt");
    size_t n_prompt = json_array_size(jp);
    int32_t *prompt = malloc(sizeof(int32_t) * n_prompt);
    for (size_t i = 0; i < n_prompt; i++) prompt[i] = (int32_t)json_integer_value(json_array_get(jp, i));
    int steps = (int)json_integer_value(json_object_get(doc, "steps"));
    json_t *cfgs = json_object_get(doc, "configs");
    int n_cfg = (int)json_array_size(cfgs), n_full = 0, n_bad = 0, ids_compared = 0;
    double max_first = 0.0, max_last = 0.0;
    for (int ci = 0; ci < n_cfg; ci++) {
        json_t *cfg = json_array_get(cfgs, (size_t)ci);
        kvp_cache_params p;
        char why[128];
        if (!golden_cache_params(cfg, &p, why, sizeof why)) {
            CHECK_MSG(0, "%s: %s", name, why);
            continue;
        }
        const char *budget = json_string_value(json_object_get(cfg, "budget"));
        char label[200];
        snprintf(label, sizeof label, "%s: %s/%s/evict=%d/%s/stream=%d/chunk=%d/%s/%s/%s", name,
                 p.method, budget, p.decode_evict, p.gqa_mode ? "kv" : "q", p.streaming,
                 (int)json_integer_value(json_object_get(cfg, "chunk")), kvp_kv_type_name(p.kv_type),
                 kvp_budget_alloc_name(p.budget_alloc), kvp_layer_alloc_name(p.layer_alloc));
        kvp_cache *cache = NULL;
        st = kvp_cache_new(model, &p, &cache, &err);
        CHECK_MSG(st == KVP_OK, "%s: %s", label, err.message);
        if (st != KVP_OK) continue;
        capture cap = {cache, info.n_vocab, 0, malloc(sizeof(float) * info.n_vocab),
                       malloc(sizeof(float) * info.n_vocab), NULL, 0};
        kvp_gen_params g = kvp_gen_default_params();
        g.max_new_tokens = steps;
        g.ignore_eos = true;
        g.n_threads = 1;
        g.prefill_chunk = (int)json_integer_value(json_object_get(cfg, "chunk"));
        g.on_token = on_token;
        g.user = &cap;
        kvp_gen_result res;
        st = kvp_generate(model, cache, prompt, n_prompt, &g, &res, &err);
        CHECK_MSG(st == KVP_OK, "%s: %s", label, err.message);
        int bad = st != KVP_OK;
        if (st == KVP_OK) {
            double margin = json_number_value(json_object_get(cfg, "min_margin"));
            /* a chunked prefill's logits depend on the selections before its
             * later chunks (stored per configuration); an unchunked one's
             * never do (shared) */
            json_t *own_first = json_object_get(cfg, "logits_first");
            if (!own_first || margin >= MARGIN_MIN) {
                double d1 = logits_diff(cap.first,
                                        own_first ? own_first : json_object_get(doc, "logits_first"),
                                        info.n_vocab);
                if (d1 > max_first) max_first = d1;
                if (d1 > LOGIT_TOL) {
                    fprintf(stderr, "%s: first-step logits differ by %.3g\n", label, d1);
                    bad = 1;
                }
            }
            json_t *gaps = json_object_get(cfg, "gaps");
            json_t *ids = json_object_get(cfg, "ids");
            int safe = 0; /* steps whose choice cannot flip by rounding */
            while (safe < steps && json_number_value(json_array_get(gaps, (size_t)safe)) >= GAP_MIN)
                safe++;
            if (margin >= MARGIN_MIN) {
                if (masks_differ(cap.masks, cap.n_masks, json_object_get(cfg, "after_prefill"))) {
                    fprintf(stderr, "%s: kept positions after prefill differ\n", label);
                    bad = 1;
                }
                int same = 0;
                while (same < safe && same < (int)res.n_ids &&
                       res.ids[same] == json_integer_value(json_array_get(ids, (size_t)same)))
                    same++;
                if (same < safe) {
                    fprintf(stderr, "%s: ids differ at step %d\n", label, same);
                    bad = 1;
                }
                ids_compared++;
                if (safe == steps && !bad) {
                    int nm = 0;
                    char **fin = cache_masks(cache, &nm);
                    if (masks_differ(fin, nm, json_object_get(cfg, "final"))) {
                        fprintf(stderr, "%s: final kept positions differ\n", label);
                        bad = 1;
                    }
                    free_masks(fin, nm);
                    double d2 = logits_diff(cap.last, json_object_get(cfg, "logits_last"),
                                            info.n_vocab);
                    if (d2 > max_last) max_last = d2;
                    if (d2 > LOGIT_TOL) {
                        fprintf(stderr, "%s: last-step logits differ by %.3g\n", label, d2);
                        bad = 1;
                    }
                    n_full += !bad;
                }
            }
            CHECK_EQ_INT(res.n_ids, steps);
            CHECK_EQ_INT(res.cache.n_seen, (int64_t)n_prompt + steps - 1);
        }
        CHECK_MSG(!bad, "%s", label);
        n_bad += bad;
        kvp_gen_result_free(&res);
        free_masks(cap.masks, cap.n_masks);
        free(cap.first);
        free(cap.last);
        kvp_cache_free(cache);
    }
    printf("%s.%s: %d configurations, %d failed; %d with kept positions and ids compared, %d "
           "matched in full (kept after prefill and at the end, %d ids, last logits); max "
           "relative logit diff: first step %.3g, last step %.3g\n",
           name, golden, n_cfg, n_bad, ids_compared, n_full, steps, max_first, max_last);
    free(prompt);
    kvp_model_free(model);
    json_decref(doc);
}

int main(void) {
    run_fixture("tiny-gqa", "golden");
    run_fixture("tiny-mha", "golden");
    run_fixture("tiny-gqa", "alloc.golden");
    run_fixture("tiny-mha", "alloc.golden");
    return kvp_test_done("test_cache_model");
}
