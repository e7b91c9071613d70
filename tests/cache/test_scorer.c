/* kvp_score_tokens against the numpy reference (tools/cacheref/
 * make_scorer_goldens.py): every scoring rule, p = 1 and 2, windows of one
 * row, a few rows, all rows and more rows than the block, exact ties
 * (duplicated keys/values: the lower index must win), peaks at the
 * candidate edges (pooling pads), sinks, budgets larger than the block. */
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kvprune.h"
#include "test_util.h"

static float *floats(json_t *a) {
    size_t n = json_array_size(a);
    float *f = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) f[i] = (float)json_number_value(json_array_get(a, i));
    return f;
}

int main(void) {
    json_error_t jerr;
    json_t *doc = json_load_file("tests/data/cache/scorer.json", 0, &jerr);
    CHECK_MSG(doc != NULL, "tests/data/cache/scorer.json: %s", jerr.text);
    if (!doc) return kvp_test_done("test_scorer");
    json_t *problems = json_object_get(doc, "problems");
    json_t *cases = json_object_get(doc, "cases");
    int n_cases = (int)json_array_size(cases), n_bad = 0, n_sel = 0;
    double max_rel = 0.0;
    for (int c = 0; c < n_cases; c++) {
        json_t *cs = json_array_get(cases, (size_t)c);
        json_t *pb = json_object_get(problems, json_string_value(json_object_get(cs, "kind")));
        kvp_score_input in;
        float *attn = floats(json_object_get(pb, "attn"));
        float *logits = floats(json_object_get(pb, "logits"));
        float *values = floats(json_object_get(pb, "values"));
        float *outputs = floats(json_object_get(pb, "outputs"));
        in.attn = attn;
        in.logits = logits;
        in.values = values;
        in.outputs = outputs;
        in.n_q = (int)json_integer_value(json_object_get(pb, "n_q"));
        in.n_kv = (int)json_integer_value(json_object_get(pb, "n_kv"));
        in.head_dim = (int)json_integer_value(json_object_get(pb, "head_dim"));
        in.window = (int)json_integer_value(json_object_get(cs, "window"));
        const char *method = json_string_value(json_object_get(cs, "method"));
        float *scores = malloc(sizeof(float) * (size_t)in.n_kv);
        int32_t *kept = malloc(sizeof(int32_t) * (size_t)in.n_kv);
        json_t *sels = json_object_get(cs, "selections");
        int bad = 0;
        for (size_t si = 0; si < json_array_size(sels); si++) {
            json_t *sel = json_array_get(sels, si);
            int r = (int)json_integer_value(json_object_get(sel, "n_recent"));
            int h = (int)json_integer_value(json_object_get(sel, "n_heavy"));
            int sink = (int)json_integer_value(json_object_get(sel, "num_sink"));
            int n_kept = -1;
            kvp_error err;
            kvp_status st = kvp_score_tokens(method, &in, r, h, sink, scores, kept, &n_kept, &err);
            CHECK_MSG(st == KVP_OK, "case %d: %s", c, err.message);
            if (st != KVP_OK) {
                bad = 1;
                continue;
            }
            json_t *ws = json_object_get(cs, "scores");
            for (int j = 0; j < in.n_kv; j++) {
                double want = json_number_value(json_array_get(ws, (size_t)j));
                double rel = fabs(scores[j] - want) / (fabs(want) > 1e-3 ? fabs(want) : 1e-3);
                if (rel > max_rel) max_rel = rel;
                if (rel > 1e-4) {
                    if (!bad)
                        fprintf(stderr, "case %d (%s, %s, window %d): score[%d] %.9g vs %.9g\n",
                                c, json_string_value(json_object_get(cs, "kind")), method,
                                in.window, j, scores[j], want);
                    bad = 1;
                }
            }
            json_t *wk = json_object_get(sel, "kept");
            if (json_number_value(json_object_get(sel, "margin")) >= 1e-4) {
                bool same = (size_t)n_kept == json_array_size(wk);
                for (int t = 0; same && t < n_kept; t++)
                    same = kept[t] == json_integer_value(json_array_get(wk, (size_t)t));
                if (!same) {
                    fprintf(stderr,
                            "case %d (%s, %s, window %d, r %d h %d sink %d): kept differs\n", c,
                            json_string_value(json_object_get(cs, "kind")), method, in.window,
                            r, h, sink);
                    bad = 1;
                }
                n_sel++;
            }
        }
        CHECK(!bad);
        n_bad += bad;
        free(attn);
        free(logits);
        free(values);
        free(outputs);
        free(scores);
        free(kept);
    }
    printf("scorer: %d cases (method x problem x window), %d differ; %d selections compared, "
           "max relative score diff %.3g\n",
           n_cases, n_bad, n_sel, max_rel);
    json_decref(doc);

    /* errors are reported, not crashed on */
    kvp_score_input in = {0};
    kvp_error err;
    int n = 0;
    CHECK(kvp_score_tokens("h2o", &in, 1, 1, 0, NULL, NULL, &n, &err) == KVP_ERR_INVALID_ARG);
    CHECK(kvp_score_tokens("nope", &in, 1, 1, 0, NULL, NULL, &n, &err) == KVP_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "kvcVK_no_cross+avgpool") != NULL);
    return kvp_test_done("test_scorer");
}
