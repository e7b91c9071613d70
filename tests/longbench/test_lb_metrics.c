/* LongBench metrics against the Python reference (tools/eval/longbench_ref.py,
 * vectors from tools/eval/make_longbench_vectors.py): every score must be the
 * same double. With argument "zh" it checks the jieba-based metrics, and
 * exits 77 (skipped) when no jieba dictionary is installed. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvprune_eval/lb_cut.h"
#include "kvprune_eval/lb_metrics.h"
#include "test_util.h"

static double hexd(const json_t *v) { return strtod(json_string_value(v), NULL); }

static const char *str(const json_t *o, const char *k, size_t *n) {
    const json_t *v = json_object_get(o, k);
    *n = json_string_length(v);
    return json_string_value(v);
}

/* Runs one vector file; returns the number of vectors checked. */
static int run_file(const char *metric, kvlb_metric m, const kvlb_score_opts *opts) {
    char path[256];
    snprintf(path, sizeof path, "tests/data/longbench/metrics/%s.jsonl", metric);
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "%s", path);
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int n = 0, bad = 0, lineno = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        lineno++;
        json_error_t jerr;
        json_t *o = json_loadb(line, (size_t)got, 0, &jerr);
        CHECK_MSG(o != NULL, "%s:%d: %s", path, lineno, jerr.text);
        if (!o) continue;
        size_t pl, gl;
        const char *p = str(o, "pred", &pl), *g = str(o, "gt", &gl);
        json_t *cl = json_object_get(o, "classes");
        char **classes = NULL;
        size_t nc = 0;
        if (cl) {
            nc = json_array_size(cl);
            classes = calloc(nc + 1, sizeof *classes);
            for (size_t i = 0; i < nc; i++)
                classes[i] = (char *)json_string_value(json_array_get(cl, i));
        }
        kvlb_score_opts o2 = *opts;
        for (int pass = 0; pass < 2; pass++) {
            const char *key = pass ? "exact" : "score";
            if (!json_object_get(o, key)) continue;
            o2.rouge_exact = pass == 1;
            double want = hexd(json_object_get(o, key)), s = -1;
            kvp_error err;
            kvp_status st = kvlb_score(m, p, pl, g, gl, classes, nc, &o2, &s, &err);
            if (st != KVP_OK || s != want) {
                bad++;
                if (bad <= 10)
                    CHECK_MSG(0, "%s:%d (%s): got %.17g want %.17g%s%s", path, lineno, key, s,
                              want, st ? ": " : "", st ? err.message : "");
            }
        }
        free(classes);
        json_decref(o);
        n++;
    }
    free(line);
    fclose(f);
    if (bad > 10) CHECK_MSG(0, "%s: %d vectors differ in all", path, bad);
    printf("%-16s %5d vectors, %d differ\n", metric, n, bad);
    return n;
}

static void test_numpy(void) {
    FILE *f = fopen("tests/data/longbench/metrics/numpy.jsonl", "rb");
    CHECK(f != NULL);
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int n = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        json_t *o = json_loadb(line, (size_t)got, 0, NULL);
        json_t *x = json_object_get(o, "x");
        size_t k = json_array_size(x);
        double *v = malloc((k + 1) * sizeof *v);
        for (size_t i = 0; i < k; i++) v[i] = hexd(json_array_get(x, i));
        double want = hexd(json_object_get(o, "score"));
        double got_s = kvlb_np_round2(100 * kvlb_np_mean(v, k));
        CHECK_MSG(got_s == want || (isnan(got_s) && isnan(want)), "n=%zu: %.17g vs %.17g", k,
                  got_s, want);
        free(v);
        json_decref(o);
        n++;
    }
    free(line);
    fclose(f);
    printf("%-16s %5d vectors\n", "numpy mean", n);
    CHECK(n >= 300);
}

/* Errors where Python raises. */
static void test_errors(void) {
    double s;
    kvp_error err;
    CHECK(kvlb_score(KVLB_RETRIEVAL, "1", 1, "no number", 9, NULL, 0, NULL, &s, &err) ==
          KVP_ERR_FORMAT);
    CHECK(kvlb_score(KVLB_CLASSIFICATION, "x", 1, "x", 1, NULL, 0, NULL, &s, &err) ==
          KVP_ERR_FORMAT);
    kvlb_score_opts none = {0};
    CHECK(kvlb_score(KVLB_QA_F1_ZH, "x", 1, "x", 1, NULL, 0, &none, &s, &err) != KVP_OK);
    CHECK(strstr(err.message, "jieba's dictionary") != NULL);
}

int main(int argc, char **argv) {
    kvlb_score_opts opts = {0};
    if (argc > 1 && !strcmp(argv[1], "zh")) {
        kvlb_cutter *c = NULL;
        kvp_error err;
        kvp_status st = kvlb_cutter_default(NULL, &c, &err);
        if (st != KVP_OK) {
            printf("skipped: %s\n", err.message);
            return 77;
        }
        opts.cutter = c;
        CHECK(run_file("qa_f1_zh", KVLB_QA_F1_ZH, &opts) >= 2000);
        CHECK(run_file("rouge_zh", KVLB_ROUGE_ZH, &opts) >= 2000);
        kvlb_cutter_free(c);
        return kvp_test_done("test_lb_metrics zh");
    }
    CHECK(run_file("qa_f1", KVLB_QA_F1, &opts) >= 2000);
    CHECK(run_file("rouge", KVLB_ROUGE, &opts) >= 2000);
    CHECK(run_file("classification", KVLB_CLASSIFICATION, &opts) >= 2000);
    CHECK(run_file("retrieval", KVLB_RETRIEVAL, &opts) >= 2000);
    CHECK(run_file("retrieval_zh", KVLB_RETRIEVAL_ZH, &opts) >= 2000);
    CHECK(run_file("count", KVLB_COUNT, &opts) >= 2000);
    CHECK(run_file("code_sim", KVLB_CODE_SIM, &opts) >= 2000);
    test_numpy();
    test_errors();
    return kvp_test_done("test_lb_metrics");
}
