/* The NIAH jsonl readers: the input is a data file for `needle pred` (run
 * on the tiny test model, one new token per sample) and a pred.jsonl for
 * `needle eval` (scoring with a torn last line, the heatmap, the scan of a
 * sweep folder), and a file for the torn-line repair. */
#include "kvprune_eval/jsonl.h"
#include "kvprune_eval/needle_eval.h"
#include "kvprune_eval/needle_pred.h"
#include "fuzz_eval.h"

static kvp_model *model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    model = fz_tiny_model();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    kvp_error err;
    const char *data_path = fz_path(0, "data.jsonl");
    fz_write(data_path, data, size);
    kvev_jsonl j;
    if (kvev_jsonl_read(data_path, &j, &err) == KVP_OK) kvev_jsonl_free(&j);
    size_t dropped;
    (void)kvev_jsonl_repair(data_path, &dropped, &err);
    fz_write(data_path, data, size);

    /* needle pred over it (full and one pruned method) */
    char save[600], cmd[700];
    snprintf(save, sizeof save, "%s/sweep", fz_dir());
    kvev_needle_pred_params p;
    kvev_needle_pred_default_params(&p);
    const char *methods[2] = {"full", "h2o"};
    const double ratios[1] = {0.5};
    p.data_path = data_path;
    p.save_dir = save;
    p.task = "t";
    p.methods = methods;
    p.n_methods = 2;
    p.ratios = ratios;
    p.n_ratios = 1;
    p.gen.max_new_tokens = 1;
    kvev_needle_pred_summary sum;
    (void)kvev_needle_pred(model, &p, &sum, &err);

    /* the same bytes as a pred.jsonl of the sweep, then eval */
    snprintf(cmd, sizeof cmd, "%s/t/x-cr0.1", save);
    (void)kvev_mkdirs(cmd, &err);
    snprintf(cmd, sizeof cmd, "%s/t/x-cr0.1/pred.jsonl", save);
    fz_write(cmd, data, size);
    double score;
    size_t n, torn;
    (void)kvev_needle_score_partial(cmd, &score, &n, &torn, &err);
    (void)kvev_needle_plot_heatmap(cmd, "t", fz_path(1, "heat.svg"), &err);
    kvev_task_scores *tasks = NULL;
    size_t nt = 0;
    if (kvev_needle_scan(save, &tasks, &nt, &err) == KVP_OK) {
        for (size_t t = 0; t < nt; t++) {
            char *table = kvev_needle_table(&tasks[t]);
            free(table);
            (void)kvev_needle_write_result(&tasks[t], &err);
            (void)kvev_needle_plot_ratio(&tasks[t], fz_path(2, "ratio.svg"), &err);
        }
        kvev_task_scores_free(tasks, nt);
    }
    fz_remove_tree(save);
    return 0;
}
