/* The LongBench jsonl readers: the input is a data file (trec.jsonl: byte 0
 * even; hotpotqa.jsonl: odd) for `longbench pred` on the tiny test model
 * with the fixture configs, and the same bytes as a prediction file scored
 * by `longbench eval` (scan, table, result.json). */
#include "kvprune_eval/jsonl.h"
#include "kvprune_eval/longbench.h"
#include "fuzz_eval.h"

static kvp_model *model;
static char config_dir[1024];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    model = fz_tiny_model();
    snprintf(config_dir, sizeof config_dir, "%s/tests/data/longbench/config", KVP_SOURCE_DIR);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    kvp_error err;
    const char *dataset = data[0] & 1 ? "hotpotqa" : "trec";
    char dir[600], path[1000], save[600];
    snprintf(dir, sizeof dir, "%s/data", fz_dir());
    snprintf(save, sizeof save, "%s/save", fz_dir());
    (void)kvev_mkdirs(dir, &err);
    snprintf(path, sizeof path, "%s/%s.jsonl", dir, dataset);
    fz_write(path, data + 1, size - 1);

    kvlb_pred_params p;
    kvlb_pred_default_params(&p);
    const char *datasets[1] = {dataset};
    const char *methods[2] = {"full", "h2o"};
    const double ratios[1] = {0.5};
    p.data_dir = dir;
    p.config_dir = config_dir;
    p.save_dir = save;
    p.model_name = "tiny";
    p.max_length = 200;
    p.datasets = datasets;
    p.n_datasets = 1;
    p.methods = methods;
    p.n_methods = 2;
    p.ratios = ratios;
    p.n_ratios = 1;
    p.n_threads = 1;
    kvlb_pred_summary sum;
    (void)kvlb_pred(model, &p, &sum, &err);

    /* the same bytes as a prediction file of an experiment, scored */
    char exp[800];
    snprintf(exp, sizeof exp, "%s/pred/tiny-x", save);
    (void)kvev_mkdirs(exp, &err);
    snprintf(path, sizeof path, "%s/%s-h2o.jsonl", exp, dataset);
    fz_write(path, data + 1, size - 1);
    kvlb_eval_params ep = {save, "tiny", false, NULL, false};
    kvlb_exp_scores *scores = NULL;
    size_t n = 0;
    if (kvlb_eval_scan(&ep, &scores, &n, &err) == KVP_OK) {
        char *table = kvlb_eval_table(scores, n, false);
        free(table);
        for (size_t i = 0; i < n; i++) (void)kvlb_eval_write_result(&scores[i], false, &err);
        kvlb_exp_scores_free(scores, n);
    }
    fz_remove_tree(save);
    return 0;
}
