/* The needle prediction driver (the seed's pred.py): one model, a sweep of
 * methods x cache ratios, resumable pred.jsonl files in the seed's layout
 * save_dir/<task>/<method>-cr<ratio>[-no_decode_evict]/pred.jsonl. */
#ifndef KVP_EVAL_NEEDLE_PRED_H
#define KVP_EVAL_NEEDLE_PRED_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvprune.h"

/* How a prompt text becomes model input: wrapped in the chat template
 * (NULL/"auto": the tokenizer's own) unless no_chat, then tokenized with
 * special tokens added and parsed (the same as `kvprune generate`). */
typedef struct kvev_prompt_style {
    const kvp_tokenizer *tok;
    const char *chat_template;
    const char *system;   /* optional system message                          */
    bool no_chat;
} kvev_prompt_style;

kvp_status kvev_prompt_ids(const kvev_prompt_style *ps, const char *input, int32_t **ids,
                          size_t *n, kvp_error *err);

/* A kvev_niah_measure_fn over a kvev_prompt_style (user = the style); with
 * chat == false the input is tokenized as is (BOS still added). */
kvp_status kvev_prompt_measure(void *user, const char *input, bool chat, size_t *n_tokens,
                              kvp_error *err);

/* The stop flag of the sweep drivers (needle and LongBench pred): a
 * kvp_token_cb with user = the flag, stopping the generation at the next
 * token once it is set, and the test of it (false for NULL). */
bool kvev_stop_token_cb(void *user, int32_t id, const float *logits, int n_vocab);
bool kvev_stop_requested(const volatile sig_atomic_t *stop);

/* True for the names kvp_cache_method_names() lists (and obc* = kvc*). */
bool kvev_needle_method_known(const char *name);

/* How a sweep experiment spreads the cache's budget: over the streams of a
 * layer (adaptive: head-adaptive, Ada-KV) and over the layers (pyramid:
 * PyramidKV). Both false: every stream gets the same budget (uniform). */
typedef struct kvev_alloc {
    bool adaptive;
    bool pyramid;
} kvev_alloc;

/* "uniform", "adaptive", "pyramid", "adaptive+pyramid" (or
 * "pyramid+adaptive"); false for anything else. */
bool kvev_alloc_parse(const char *s, kvev_alloc *out);

/* The allocation's part of an experiment name: "" for uniform, else
 * "adaptive", "pyramid" or "adaptive+pyramid", where "adaptive" carries
 * "_sg<safeguard>" and "pyramid" "_beta<beta>" when cp's values differ from
 * the library's defaults (numbers as Python's str(float) writes them), so
 * that sweeps with other settings never share a folder. `buf` >= 96 bytes. */
void kvev_alloc_tag(kvev_alloc a, const kvp_cache_params *cp, char *buf, size_t size);

/* Sets cp's allocation fields for `a` (the safeguard and beta stay cp's);
 * KVP_ERR_UNSUPPORTED when the library cannot allocate that way. */
kvp_status kvev_alloc_apply(kvev_alloc a, kvp_cache_params *cp, kvp_error *err);

/* The experiment folder: "full" for the full cache (budgets and allocations
 * do not apply), else "<method>-cr<ratio>" with the ratio as Python's
 * str(float) writes it, plus "-no_decode_evict" when decode eviction is off,
 * plus "-<alloc tag>" unless the tag is "" (uniform), so uniform sweeps keep
 * the names they always had. `buf` >= 256 bytes. */
void kvev_needle_exp_name(const char *method, double ratio, bool no_decode_evict,
                         const char *alloc_tag, char *buf, size_t size);

typedef struct kvev_needle_progress {
    const char *experiment;   /* current experiment folder                    */
    size_t exp_index, n_exps; /* position among this run's experiments       */
    size_t done, total;       /* samples generated in this run / to generate */
    size_t skipped;           /* samples already present from an earlier run */
    double elapsed_s;         /* since the first generated sample            */
    double last_ms;           /* time of the last sample                     */
} kvev_needle_progress;

typedef struct kvev_needle_pred_params {
    const char *data_path;
    const char *save_dir;
    const char *task;             /* NULL: data file name without .jsonl       */
    const char *const *methods;
    size_t n_methods;
    const double *ratios;         /* each in (0, 1]                            */
    size_t n_ratios;
    const kvev_alloc *allocs;     /* NULL/0: uniform only                      */
    size_t n_allocs;
    int num_recent;               /* default 16                                */
    bool no_decode_evict;
    kvp_cache_params base;        /* other cache settings (gqa mode, ...)     */
    kvp_gen_params gen;           /* max_new_tokens default 64, greedy        */
    kvev_prompt_style prompt;      /* tok is filled from the model when NULL    */
    bool postprocess;             /* cut ".assistant", "\n\nQuestion", "</s>" and strip */
    int shard_index, shard_count; /* experiments k with k % count == index    */
    int sync_every;               /* fsync every N lines (default 16)          */
    void (*on_progress)(void *user, const kvev_needle_progress *p);
    void *user;
    /* When not NULL and set (e.g. by a SIGINT handler), the run stops at the
     * next token: the sample in progress is not written, the finished ones
     * are kept, and kvev_needle_pred returns KVP_OK with `interrupted`. */
    const volatile sig_atomic_t *stop;
} kvev_needle_pred_params;

void kvev_needle_pred_default_params(kvev_needle_pred_params *p);

typedef struct kvev_needle_pred_summary {
    size_t n_samples;         /* lines of the data file                       */
    size_t n_exps;            /* experiments of this shard                    */
    size_t generated;         /* lines written now                            */
    size_t skipped;           /* lines found from an earlier run              */
    size_t torn_bytes;        /* bytes of torn last lines removed             */
    bool interrupted;         /* stopped by params->stop before the end       */
    char task[256];
} kvev_needle_pred_summary;

/* Runs the sweep. Everything is checked first (data fields, method names,
 * ratios, prompt lengths against the model's context, existing pred.jsonl
 * files) so that a bad input fails before any line is written. */
kvp_status kvev_needle_pred(const kvp_model *model, const kvev_needle_pred_params *p,
                           kvev_needle_pred_summary *summary, kvp_error *err);

#endif
