/*
 * Method table and budgets (policy.c) and the method math over column
 * reductions (score.c). Internal to the library; the public face is
 * kvp_cache_* and kvp_score_tokens in kvprune.h.
 */
#ifndef KVP_CACHE_POLICY_H
#define KVP_CACHE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvprune.h"

typedef enum kvc_kind {
    KVC_KIND_FULL,   /* never evicts                                        */
    KVC_KIND_SINK,   /* first n_heavy + last n_recent, no scores            */
    KVC_KIND_SCORED  /* the tracker's scores choose the heavy tokens        */
} kvc_kind;

typedef enum kvc_window {
    KVC_WINDOW_RECENT, /* last n_recent prompt queries (all if n_recent = 0) */
    KVC_WINDOW_ALL,    /* every prompt query (_fullhist)                     */
    KVC_WINDOW_ONE     /* the last query (TOVA)                              */
} kvc_window;

typedef enum kvc_pool { KVC_POOL_NONE, KVC_POOL_MAX, KVC_POOL_AVG } kvc_pool;

/* One row of the spec's method table. */
typedef struct kvc_method {
    char name[64];     /* canonical name (obc* aliases become kvc*)         */
    kvc_kind kind;
    bool use_attn;     /* value score: Sattn (times Vnorm when use_vnorm)   */
    bool use_key;      /* key score Skey                                    */
    bool use_cross;    /* cross term added into Skey                        */
    bool use_vnorm;    /* Vnorm_j = sum |v_j|^p                             */
    int p;             /* 1 or 2                                            */
    kvc_window window;
    kvc_pool pool;
    bool recent_only;  /* TOVA: scores replaced, not accumulated            */
    bool moves_recent; /* TOVA: the recent budget is moved into heavy       */
} kvc_method;

/* Parses a method name (see kvp_cache_method_names); the error lists the
 * valid names. */
kvp_status kvc_method_parse(const char *name, kvc_method *m, kvp_error *err);

/* Effective budgets of one sequence. */
typedef struct kvc_budget {
    int n_recent;
    int n_heavy;
    int window;   /* prefill window rows; 0: all rows                       */
    int num_sink; /* candidates that always win                             */
} kvc_budget;

/* Checks the budget parameters once, when the cache is created (so a
 * missing budget fails before any model work). */
kvp_status kvc_budget_check(const kvc_method *m, const kvp_cache_params *p,
                            kvp_error *err);

/* Resolves the budgets for a prompt of n tokens. *warn (if not NULL, of
 * warn_len bytes) receives a warning or an empty string. */
kvp_status kvc_budget_resolve(const kvc_method *m, const kvp_cache_params *p,
                              int n_prompt, kvc_budget *b, char *warn,
                              size_t warn_len, kvp_error *err);

/* PyramidKV's split of a heavy budget b per stream over n_layer layers
 * (docs/cache.md, "Budget allocation"): out[l] for layer l (0 = bottom),
 * non-increasing, summing to exactly n_layer x b. beta >= 1. */
void kvc_pyramid_split(int b, int n_layer, double beta, int *out);

/* ---- score.c ----------------------------------------------------------- */

/* Vnorm_j = sum_dims |v_j|^p. */
double kvc_value_norm(const float *v, int d, int p);

/* score_j = Sattn_j * Vnorm_j (or Sattn_j without value norms) + Skey_j. */
double kvc_selection_score(const kvc_method *m, double sattn, double vnorm,
                           double skey);

/* out[i] = kvc_selection_score of token i, whose values sit at index
 * row[i] of sattn/vnorm/skey. */
void kvc_selection_scores(const kvc_method *m, const double *sattn, const double *vnorm,
                          const double *skey, const int32_t *row, int n, double *out);

/* The spec's 1-D pool over n values: kernel 7, stride 1, padding 3; max
 * pads with -inf, avg pads with 0 and divides by 7. out != in. */
void kvc_pool_scores(kvc_pool pool, const double *in, int n, double *out);

/* Eviction choice for a cache of L tokens with selection scores score[0..L)
 * (NULL: all equal, e.g. the sink method). Writes the kept indices in cache
 * order to keep[] (room for L) and returns their count, or -1 when out of
 * memory; returns L (keep = 0..L-1) when nothing is evicted (also when
 * n_recent < 0: a full cache). num_coming: tokens about to be appended
 * (chunked prefill). Ties: higher (pooled) score first, then lower index. */
int kvc_select(kvc_pool pool, const double *score, int L, int n_recent,
               int n_heavy, int num_sink, int num_coming, int32_t *keep);

/* The column reductions from explicit arrays (the standalone scorer): for
 * rows [row_begin, n_q) adds sum a^p into col_attn and the key (+cross)
 * terms into col_key, exactly as the attention kernel does. */
void kvc_colreduce_arrays(const kvc_method *m, const float *attn,
                          const float *logits, const float *values,
                          const float *outputs, int n_q, int n_kv, int d,
                          int row_begin, double *col_attn, double *col_key);

#endif
