/* LongBench prediction and scoring (the seed's evaluation/longbench pred.py
 * and eval.py): configs, prompts, the sweep driver and the scorer. */
#ifndef KVP_EVAL_LONGBENCH_H
#define KVP_EVAL_LONGBENCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "kvprune_eval/lb_metrics.h"
#include "kvprune_eval/needle_pred.h"
#include "kvprune.h"

/* LongBench's dataset lists (pred.py): all 21, and the 13 of LongBench-E. */
extern const char *const kvlb_datasets[];
extern const char *const kvlb_datasets_e[];
bool kvlb_dataset_known(const char *name);
/* Datasets predicted without the chat template (pred.py's list). */
bool kvlb_dataset_no_chat(const char *name);

/* The config folder: dataset2prompt.json, dataset2maxlen.json,
 * model2maxlen.json (JSON objects). */
typedef struct kvlb_config {
    json_t *prompt, *maxlen, *model2maxlen;
    char *dir;
} kvlb_config;

kvp_status kvlb_config_load(const char *dir, kvlb_config *c, kvp_error *err);
void kvlb_config_free(kvlb_config *c);
/* max_length for a model name; the error lists the known names. */
kvp_status kvlb_config_max_length(const kvlb_config *c, const char *model_name, int *out,
                                  kvp_error *err);

/* Python's str.format(**fields) for "{name}" fields ("{{", "}}" escape).
 * Strings are inserted as they are, integers as decimal text. Errors name
 * the missing field or its wrong type. */
kvp_status kvlb_format_prompt(const char *tmpl, const json_t *fields, char **out,
                              kvp_error *err);

/* The seed's middle truncation: tokenized (special tokens added) longer
 * than max_length -> decode(first int(max_length/2)) + decode(last
 * int(max_length/2)), special tokens skipped. *out is malloc'ed (the prompt
 * itself when short enough); *n_tokens gets the untruncated token count. */
kvp_status kvlb_truncate_middle(const kvp_tokenizer *tok, const char *prompt, int max_length,
                                char **out, size_t *n_tokens, kvp_error *err);

/* Response clean-up per model family (pred.py's post_process and the
 * seed's Llama-3 rule). */
typedef enum kvlb_postprocess {
    KVLB_POST_NONE,
    KVLB_POST_LLAMA3,   /* cut ".assistant", "\n\nQuestion", "</s>", strip */
    KVLB_POST_XGEN,     /* strip, drop "Assistant:"                      */
    KVLB_POST_INTERNLM  /* cut at "<eoa>"                                */
} kvlb_postprocess;

/* From the model name: llama-3 / llama3 (any case), xgen, internlm. */
kvlb_postprocess kvlb_postprocess_for(const char *model_name);
bool kvlb_postprocess_parse(const char *s, kvlb_postprocess *out);
/* In place; returns the new length. */
size_t kvlb_postprocess_apply(kvlb_postprocess pp, char *s, size_t len);

/* The experiment folder: "<model>-full" for the full cache, else
 * "<model>[-no_decode_evict]-<heavy>+<recent>" with the budget ratios
 * written with 4 decimals, or the absolute token counts. */
void kvlb_exp_name(const char *model_name, bool full, bool no_decode_evict, bool absolute,
                   double heavy, double recent, char *buf, size_t size);

typedef struct kvlb_progress {
    const char *experiment, *dataset, *method;
    size_t done, total;       /* samples generated in this run / to generate */
    size_t skipped;           /* already present (earlier runs, shard parts) */
    double elapsed_s;
} kvlb_progress;

typedef struct kvlb_pred_params {
    const char *data_dir, *config_dir, *save_dir;
    const char *model_name;       /* config key and folder prefix              */
    int max_length;               /* > 0 overrides model2maxlen                */
    const char *const *datasets;  /* NULL: the full list (LongBench-E's with e) */
    size_t n_datasets;
    bool e;                       /* <name>_e.jsonl -> save_dir/pred_e/          */
    const char *const *methods;
    size_t n_methods;
    const double *ratios;         /* cache ratios, each in (0, 1]               */
    size_t n_ratios;
    int num_recent, num_heavy;    /* absolute budgets when >= 0 (no ratios)     */
    bool no_decode_evict;
    kvp_cache_params base;        /* gqa mode etc.                              */
    kvev_prompt_style prompt;      /* chat template; tok filled from the model    */
    kvlb_postprocess post;
    int n_threads;
    int shard_index, shard_count; /* contiguous sample blocks of every file      */
    int sync_every;
    void (*on_progress)(void *user, const kvlb_progress *p);
    void *user;
    /* As in kvev_needle_pred_params: once set, the run stops at the next
     * token, the row in progress is not written, the finished ones are kept
     * (a rerun resumes), and kvlb_pred returns KVP_OK with `interrupted`. */
    const volatile sig_atomic_t *stop;
} kvlb_pred_params;

void kvlb_pred_default_params(kvlb_pred_params *p);

typedef struct kvlb_pred_summary {
    size_t n_datasets, n_exps;
    size_t n_files;       /* (experiment, dataset) files of this run          */
    size_t n_samples;     /* samples over all datasets                        */
    size_t generated, skipped, merged;
    size_t torn_lines;    /* torn last lines dropped                          */
    size_t truncated;     /* prompts cut in the middle                        */
    int max_length;
    bool interrupted;     /* stopped by params->stop before the end           */
} kvlb_pred_summary;

/* Everything (configs, data files and their fields, prompts, existing
 * prediction files) is checked before the first line is written. */
kvp_status kvlb_pred(const kvp_model *model, const kvlb_pred_params *p, kvlb_pred_summary *sum,
                     kvp_error *err);

/* ---------------------------------------------------------------- eval --- */

typedef struct kvlb_file_score {
    char *file;           /* "<dataset>-<method>.jsonl"                       */
    char *dataset, *method;
    size_t n_rows;
    bool scored;
    double score;         /* without e                                        */
    double buckets[3];    /* e: 0-4k, 4-8k, 8k+ (NaN when empty)              */
    char *note;           /* why it was not scored                            */
} kvlb_file_score;

typedef struct kvlb_exp_scores {
    char *name, *dir;
    kvlb_file_score *files;  /* sorted by file name                          */
    size_t n;
    size_t n_parts;          /* unmerged shard parts seen                    */
} kvlb_exp_scores;

typedef struct kvlb_eval_params {
    const char *save_dir;
    const char *model_name;  /* an experiment folder, or the prefix of several */
    bool e;
    const kvlb_cutter *cutter; /* NULL: zh datasets are not scored             */
    bool rouge_exact;
} kvlb_eval_params;

/* Scores the experiment folders (writes nothing). */
kvp_status kvlb_eval_scan(const kvlb_eval_params *p, kvlb_exp_scores **out, size_t *n,
                          kvp_error *err);
void kvlb_exp_scores_free(kvlb_exp_scores *e, size_t n);
/* <exp dir>/result.json: file name -> score (or bucket object), keys
 * sorted, indent 2, NaN as NaN; written atomically. */
kvp_status kvlb_eval_write_result(const kvlb_exp_scores *e, bool is_e, kvp_error *err);
/* Datasets x experiments (one column per experiment and method), plus the
 * average per column. malloc'ed. */
char *kvlb_eval_table(const kvlb_exp_scores *e, size_t n, bool is_e);

#endif
