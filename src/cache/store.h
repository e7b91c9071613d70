/*
 * The cache's state, shared by its files (internal):
 *   store.c       stream storage, compaction and eviction
 *   cache_api.c   creation, reset, statistics, kept positions (kvp_cache_*)
 *   schedule.c    one forward block: kvc_begin / kvc_attend / kvc_end and
 *                 the per-step parallel schedule over streams
 *   cache_file.c  kvp_cache_save / kvp_cache_load
 *
 * One stream per (layer, head of the head mode). A token's key (after
 * RoPE), value and tracker scores (Sattn, Skey, Vnorm, V2) live in one
 * storage row; `pos` and `slot` list the tokens in position order (the
 * order the spec's pooling, recent window and ties refer to) with each
 * one's row. Rows stay dense: a decode step's single eviction moves the
 * newest row into the hole (one row copied, not half the cache), and an
 * eviction of many tokens rewrites the rows in position order. Attention
 * is a sum over keys, so it reads the rows in storage order. Evicted
 * memory is returned: a stream's capacity shrinks back after a long
 * prefill is evicted, so a pruned cache holds O(budget + block) tokens.
 */
#ifndef KVP_CACHE_STORE_H
#define KVP_CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/policy.h"
#include "util/pool.h"
#include "kvprune.h"

typedef struct kvc_stream {
    /* per storage row */
    void *k, *v;    /* [cap][head_dim] in the cache's kv_type             */
    double *sattn;  /* sum of a^p over the windows seen                   */
    double *skey;   /* key (+ cross) score                                */
    double *vnorm;  /* sum |v|^p                                          */
    float *v2;      /* sum v^2 (for the key score)                        */
    /* per token, in position order */
    int32_t *pos;   /* absolute positions                                 */
    int32_t *slot;  /* storage row                                        */
    int len, cap;
    bool permuted;  /* slot[i] != i for some i                            */
} kvc_stream;

struct kvp_cache {
    kvp_cache_params params;
    kvc_method method;
    int n_layer, n_head, n_head_kv, head_dim;
    int n_streams, group; /* group: query heads per KV head               */
    size_t row_bytes;     /* one K (or V) row: head_dim elements of kv_type */
    int capacity;         /* max tokens per stream (max_tokens), 0: unlimited */
    int n_ctx_train;      /* the model's trained context (0: unknown)      */
    bool ctx_warned;      /* positions went past n_ctx_train (warned once) */
    kvc_stream *streams;  /* [n_layer][n_streams]                          */
    kvc_budget budget;
    bool budget_set;
    int *layer_heavy;     /* [n_layer] heavy budget per stream of each layer
                             (budget.n_heavy, or its pyramid split)        */
    char warning[512];
    int64_t n_seen;
    int64_t prompt_end;   /* position where the prompt being read ends     */
    int64_t held, held_peak; /* tokens held, summed over all streams       */
    double attn_ms;
    /* the current block */
    bool in_block;
    int blk_n_new;
    int blk_next_layer;  /* layers attend in order, each once per block    */
    int blk_row_begin;   /* rows that score: [row_begin, n_new)            */
    int blk_pre_coming;  /* num_coming of the eviction before appending    */
    bool blk_post_evict; /* evict to budget after the attention            */
    bool blk_layerwise;  /* adaptive: a layer's streams evict together     */
    float *row_max, *row_sum, *out_sq; /* [n_head][n_new]                  */
    size_t scratch_cap;
    float *z_rows;       /* decode: each head's logits, pass 1 -> pass 2   */
    size_t z_cap;
    bool attn_bf16;      /* blocks of GROUP_ROWS+ rows: bf16 tiles         */
    /* adaptive eviction of one layer (plan, per-stream collect, apply) */
    bool ev_active;
    int64_t ev_E;        /* candidates the layer gives up                  */
    int ev_recent;       /* recent tail per stream                         */
    int ev_sink;         /* sink candidates per stream                     */
    size_t *ev_off;      /* [n_streams] each stream's slice of the scratch */
    int *ev_k;           /* [n_streams] its most evictable to collect      */
    double *ev_score;    /* per stream 2 x candidates: raw, pooled scores  */
    size_t ev_score_cap;
    struct kvc_cand *ev_cand; /* per stream its candidates' slice          */
    size_t ev_cand_cap;
    kvu_pool *pool;      /* the workers of this sequence's forward passes  */
};

/* Frees a stream's storage and zeroes it. */
void kvc_stream_free(kvc_stream *s);

/* Room for `need` tokens (rows of rb bytes); false when out of memory. */
bool kvc_stream_reserve(kvc_stream *s, int need, size_t rb);

/* Evicts one stream to the cache's budget (num_coming tokens about to
 * arrive); after a many-token eviction the stream keeps room for `slack`
 * more rows. Returns the change in held tokens (<= 0), or 1 when out of
 * memory. */
int kvc_stream_evict(const kvp_cache *c, int layer, kvc_stream *s, int num_coming, int slack);

/* Fills layer_heavy from the resolved budget and the layer allocation. */
void kvc_set_layer_budgets(kvp_cache *c);

/* A layer's heavy budget per stream and its sink count (the sink method
 * keeps its heavy budget as sinks). */
void kvc_layer_budget(const kvp_cache *c, int layer, int *heavy, int *num_sink);

/* Adaptive (Ada-KV) eviction of all streams of one layer to the layer's
 * shared budget (docs/cache.md, "Budget allocation"); num_coming and slack
 * as in kvc_stream_evict. Returns the change in held tokens (<= 0), or 1
 * when out of memory. */
int64_t kvc_layer_evict(kvp_cache *c, int layer, int num_coming, int slack);

/* The same in three steps, so that the per-stream part runs in the
 * parallel per-stream tasks of a decode step: the plan before the streams
 * append n_new tokens each (1 when the layer will evict, 0 when not, -1
 * when out of memory); each stream's collect once it has appended and
 * scored (any thread, one stream each); the apply after all of them
 * (returns as kvc_layer_evict). */
int kvc_layer_evict_plan(kvp_cache *c, int layer, int num_coming, int n_new);
void kvc_layer_evict_collect(kvp_cache *c, int layer, int stream);
int64_t kvc_layer_evict_apply(kvp_cache *c, int layer, int slack);

#endif
