/* Scoring of a needle sweep: save_dir/<task>/<experiment>/pred.jsonl ->
 * result.json per task, a text table, and SVG plots. */
#ifndef KVP_EVAL_NEEDLE_EVAL_H
#define KVP_EVAL_NEEDLE_EVAL_H

#include <stdbool.h>
#include <stddef.h>

#include "kvprune.h"

typedef struct kvev_exp_score {
    char *name;           /* the experiment folder, e.g. "h2o-cr0.05"          */
    char *method;         /* "h2o"; the whole name when it does not parse      */
    double ratio;         /* NAN when the name has no "-cr<ratio>" part        */
    bool no_decode_evict; /* the name has "-no_decode_evict"                   */
    char *alloc;          /* the budget allocation: the name's allocation tag
                             ("adaptive", "adaptive+pyramid", ...), else
                             "uniform"                                         */
    double score;         /* string_match_all; -1 when there is nothing to score
                             (no pred.jsonl, an empty one, or an error)        */
    size_t n_samples;     /* lines scored                                      */
    size_t n_expected;    /* lines the experiment should have: run.json's
                             "samples" (written by pred), else the most any
                             experiment of the task has                        */
    size_t torn_line;     /* a torn last line that was ignored (0: none)       */
    char *error;          /* why pred.jsonl could not be scored, or NULL       */
} kvev_exp_score;

typedef struct kvev_task_scores {
    char *name;
    char *dir;
    kvev_exp_score *exps;  /* sorted by folder name                             */
    size_t n;
} kvev_task_scores;

/* Splits "<method>-cr<ratio>[-no_decode_evict][-<alloc>]", where <alloc> is
 * an allocation tag (kvev_alloc_tag: "adaptive", "pyramid",
 * "adaptive+pyramid", each part optionally with "_sg<x>" / "_beta<x>");
 * *alloc is "uniform" when there is none. *method and *alloc are malloc'ed
 * (NULL when out of memory). */
void kvev_needle_parse_exp_name(const char *name, char **method, double *ratio,
                               bool *no_decode_evict, char **alloc);

/* True when some experiment of the task has a non-uniform allocation: the
 * table then has an allocation column and the plot one panel per method. */
bool kvev_task_has_allocs(const kvev_task_scores *t);

/* Scores one pred.jsonl (fields `response` or `pred`, and `outputs`). */
kvp_status kvev_needle_score_file(const char *pred_path, double *score, size_t *n,
                                 kvp_error *err);

/* The same, scoring what the file has: an empty file scores -1 with n = 0,
 * and a torn last line is skipped (*torn_line: its number, 0: none). */
kvp_status kvev_needle_score_partial(const char *pred_path, double *score, size_t *n,
                                     size_t *torn_line, kvp_error *err);

/* True when the experiment has every sample it should have. */
bool kvev_exp_complete(const kvev_exp_score *e);

/* Scores every experiment folder of one task folder (writes nothing). An
 * experiment whose pred.jsonl is malformed gets score -1 and `error`; only
 * I/O and memory failures fail the task. */
kvp_status kvev_needle_score_task(const char *task_dir, const char *task_name,
                                 kvev_task_scores *out, kvp_error *err);

/* Scores every task folder of save_dir: a task folder is a folder holding at
 * least one folder. Writes nothing; *n may be 0. */
kvp_status kvev_needle_scan(const char *save_dir, kvev_task_scores **tasks, size_t *n,
                           kvp_error *err);
void kvev_task_scores_free(kvev_task_scores *t, size_t n);

/* Writes <task dir>/result.json: {"<folder>": score, ...} in folder order,
 * then "_samples": {"<folder>": {"scored": n, "expected": m, "complete":
 * bool[, "error": msg]}}, formatted like Python's json.dump(.., indent=4). */
kvp_status kvev_needle_write_result(const kvev_task_scores *t, kvp_error *err);

/* The results as a fixed-width table: one row per method (with
 * " no_decode_evict" when set) and, when the task has allocations, per
 * allocation (an "alloc" column after the method; "-" for methods without a
 * ratio), one column per cache ratio; methods without a ratio (full) show
 * their score in every column. A score over fewer samples than expected is
 * marked '*' and listed under the table with its count. malloc'ed. */
char *kvev_needle_table(const kvev_task_scores *t);

/* Accuracy vs cache ratio, one line per method; methods without a ratio are
 * drawn as dashed horizontal reference lines. When the task has
 * allocations: one panel per method, one line per allocation, the methods
 * without a ratio dashed in every panel. */
kvp_status kvev_needle_plot_ratio(const kvev_task_scores *t, const char *svg_path,
                                 kvp_error *err);

/* Accuracy by others.depth (rows) and context length (columns:
 * others.target_length, else length) for one pred.jsonl. */
kvp_status kvev_needle_plot_heatmap(const char *pred_path, const char *title,
                                   const char *svg_path, kvp_error *err);

#endif
