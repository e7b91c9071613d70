/*
 * K/V storage, the attention <-> cache contract (cache.h) and the public
 * kvp_cache_* functions.
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
 *
 * Chunked prefill (kvc_begin with n_prompt_total > n_new): the budgets come
 * from the whole prompt; before each chunk after the first, every stream is
 * evicted with num_coming = the chunk's length (spec "Streaming arrival"),
 * each chunk is scored like a prefill of its own (its last `window` rows,
 * or all of its rows for full history), and after the last chunk the cache
 * is evicted to the budget. A single chunk covering the whole prompt is
 * therefore exactly the unchunked prefill.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "cache/policy.h"
#include "kernels/attention.h"
#include "model/model.h"
#include "util/error.h"
#include "util/file.h"

/* Key columns per pass-2 task: each task owns its columns, so every column
 * is reduced by one thread in row order (deterministic for any thread
 * count). */
#define COL_BLOCK 256
/* Query rows per pass-1 task (bf16 tiles: several 16-row blocks share each
 * converted key/value chunk). */
#define ROW_TILE 16
#define ROW_TILE_BF16 64
/* Blocks of fewer rows (decode) run per stream, its heads together. */
#define GROUP_ROWS 8

static float sum_sq(const float *x, int d) {
    float s2 = 0.0f;
    for (int t = 0; t < d; t++) s2 += x[t] * x[t];
    return s2;
}

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
    float *row_max, *row_sum, *out_sq; /* [n_head][n_new]                  */
    size_t scratch_cap;
    float *z_rows;       /* decode: each head's logits, pass 1 -> pass 2   */
    size_t z_cap;
    bool attn_bf16;      /* blocks of GROUP_ROWS+ rows: bf16 tiles         */
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* ---- storage ------------------------------------------------------------ */

static void stream_free(kvc_stream *s) {
    free(s->k);
    free(s->v);
    free(s->pos);
    free(s->slot);
    free(s->sattn);
    free(s->skey);
    free(s->vnorm);
    free(s->v2);
    memset(s, 0, sizeof *s);
}

/* rb: bytes of one K (or V) row. */
static bool stream_realloc(kvc_stream *s, int cap, size_t rb) {
    if (cap == s->cap) return true;
    if (cap == 0) {
        stream_free(s);
        return true;
    }
    size_t n = (size_t)cap;
#define GROW(field, type, per)                                               \
    do {                                                                     \
        type *p_ = realloc(s->field, sizeof(type) * n * (size_t)(per));      \
        if (!p_) return false;                                               \
        s->field = p_;                                                       \
    } while (0)
    GROW(k, char, rb);
    GROW(v, char, rb);
    GROW(pos, int32_t, 1);
    GROW(slot, int32_t, 1);
    GROW(sattn, double, 1);
    GROW(skey, double, 1);
    GROW(vnorm, double, 1);
    GROW(v2, float, 1);
#undef GROW
    s->cap = cap;
    return true;
}

static bool stream_reserve(kvc_stream *s, int need, size_t rb) {
    if (need <= s->cap) return true;
    int cap = s->cap + s->cap / 2;
    if (cap < need) cap = need;
    if (cap < 16) cap = 16;
    return stream_realloc(s, cap, rb);
}

static void row_copy(kvc_stream *s, int to, int from, size_t rb) {
    memcpy((char *)s->k + (size_t)to * rb, (char *)s->k + (size_t)from * rb, rb);
    memcpy((char *)s->v + (size_t)to * rb, (char *)s->v + (size_t)from * rb, rb);
    s->sattn[to] = s->sattn[from];
    s->skey[to] = s->skey[from];
    s->vnorm[to] = s->vnorm[from];
    s->v2[to] = s->v2[from];
}

/* Drops the token at position index w: the last storage row fills its
 * row, and the position-order lists close up. */
static void stream_drop_one(kvc_stream *s, int w, size_t rb) {
    const int L = s->len, hole = s->slot[w], last = L - 1;
    if (hole != last) {
        row_copy(s, hole, last, rb);
        for (int i = L - 1; i >= 0; i--) /* the newest token, as a rule */
            if (s->slot[i] == last) {
                s->slot[i] = hole;
                break;
            }
    }
    memmove(s->pos + w, s->pos + w + 1, sizeof(int32_t) * (size_t)(L - 1 - w));
    memmove(s->slot + w, s->slot + w + 1, sizeof(int32_t) * (size_t)(L - 1 - w));
    s->len = L - 1;
    if (w != L - 1) s->permuted = true;
}

/* Keeps the tokens keep[0..n) (position indices, ascending), rows
 * rewritten in position order, then gives back memory when the stream is
 * far larger than what it now holds. False when out of memory (the stream
 * is unchanged). */
static bool stream_compact(kvc_stream *s, const int32_t *keep, int n, size_t rb, int slack) {
    if (s->permuted) {
        /* rows out of position order: gather into fresh storage */
        kvc_stream t = {0};
        if (!stream_realloc(&t, n + slack > 16 ? n + slack : 16, rb)) {
            stream_free(&t);
            return false;
        }
        for (int i = 0; i < n; i++) {
            int j = s->slot[keep[i]];
            memcpy((char *)t.k + (size_t)i * rb, (char *)s->k + (size_t)j * rb, rb);
            memcpy((char *)t.v + (size_t)i * rb, (char *)s->v + (size_t)j * rb, rb);
            t.sattn[i] = s->sattn[j];
            t.skey[i] = s->skey[j];
            t.vnorm[i] = s->vnorm[j];
            t.v2[i] = s->v2[j];
            t.pos[i] = s->pos[keep[i]];
            t.slot[i] = i;
        }
        t.len = n;
        stream_free(s);
        *s = t;
        return true;
    }
    for (int t = 0; t < n; t++) {
        int j = keep[t];
        s->slot[t] = t;
        if (j == t) continue;
        row_copy(s, t, j, rb);
        s->pos[t] = s->pos[j];
    }
    s->len = n;
    int target = n + slack;
    if (s->cap > target + target / 2 + 64) stream_realloc(s, target, rb);
    return true;
}

static kvc_stream *stream_at(kvp_cache *c, int layer, int s) {
    return &c->streams[(size_t)layer * c->n_streams + s];
}

static int stream_of_head(const kvp_cache *c, int h) {
    return c->params.gqa_mode == KVP_GQA_PER_KV_HEAD ? h / c->group : h;
}

static int kv_head_of_stream(const kvp_cache *c, int s) {
    return c->params.gqa_mode == KVP_GQA_PER_KV_HEAD ? s : s / c->group;
}

/* Evicts one stream to its budget (num_coming tokens about to arrive).
 * Returns the change in held tokens (<= 0), or 1 when out of memory. */
static int stream_evict(const kvp_cache *c, kvc_stream *s, int num_coming,
                        int slack) {
    if (c->method.kind == KVC_KIND_FULL || s->len == 0) return 0;
    const kvc_budget *b = &c->budget;
    if ((int64_t)s->len + num_coming <= (int64_t)b->n_recent + b->n_heavy)
        return 0;
    int L = s->len;
    int32_t *keep = malloc(sizeof(int32_t) * (size_t)L);
    double *score = NULL;
    if (!keep) return 1;
    if (c->method.kind == KVC_KIND_SCORED) {
        score = malloc(sizeof(double) * (size_t)L);
        if (!score) {
            free(keep);
            return 1;
        }
        kvc_selection_scores(&c->method, s->sattn, s->vnorm, s->skey, s->slot, L, score);
    }
    int n = kvc_select(c->method.pool, score, L, b->n_recent, b->n_heavy,
                       b->num_sink, num_coming, keep);
    free(score);
    bool ok = n >= 0;
    if (ok && n == L - 1) { /* a decode step: one token out */
        int w = 0;
        while (w < n && keep[w] == w) w++;
        stream_drop_one(s, w, c->row_bytes);
    } else if (ok && n < L) {
        ok = stream_compact(s, keep, n, c->row_bytes, slack);
    }
    free(keep);
    return ok ? n - L : 1;
}

/* ---- creation ----------------------------------------------------------- */

kvp_cache_params kvp_cache_default_params(void) {
    kvp_cache_params p;
    memset(&p, 0, sizeof p);
    p.method = "full";
    p.num_recent = -1;
    p.num_heavy = -1;
    p.recent_ratio = -1.0;
    p.heavy_ratio = -1.0;
    p.cache_ratio = -1.0;
    p.decode_evict = true;
    p.streaming = false;
    p.num_sink = 4;
    /* per-kv-head: at equal KV memory its outputs agree with the full
     * cache's far more often than the seed's per-query-head mode, at equal
     * token budgets about as often (BENCHMARKS.md); the seed's mode stays
     * available for parity. */
    p.gqa_mode = KVP_GQA_PER_KV_HEAD;
    p.max_tokens = 0;
    /* f16 like llama.cpp: half the memory and half the bytes a decode step
     * reads; outputs move by ~1e-3 relative (docs/cache.md) */
    p.kv_type = KVP_KV_F16;
    return p;
}

kvp_status kvc_new_dims(int n_layer, int n_head, int n_head_kv, int head_dim,
                        int n_ctx, const kvp_cache_params *params,
                        kvp_cache **out, kvp_error *err) {
    *out = NULL;
    kvp_cache_params p = params ? *params : kvp_cache_default_params();
    if (n_layer <= 0 || n_head <= 0 || n_head_kv <= 0 || head_dim <= 0 ||
        n_head % n_head_kv != 0)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "cache: bad model shape (layers %d, heads %d, kv heads "
                        "%d, head dim %d)",
                        n_layer, n_head, n_head_kv, head_dim);
    if (head_dim > KVP_ATTN_MAX_HEAD_DIM)
        return kvu_fail(err, KVP_ERR_UNSUPPORTED,
                        "cache: head dim %d is larger than the %d the attention "
                        "kernel supports",
                        head_dim, KVP_ATTN_MAX_HEAD_DIM);
    if (p.gqa_mode != KVP_GQA_PER_QUERY_HEAD && p.gqa_mode != KVP_GQA_PER_KV_HEAD)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "cache: unknown gqa_mode %d",
                        (int)p.gqa_mode);
    if (!kvp_kv_type_name(p.kv_type))
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "cache: unknown kv_type %d (f32, f16 or bf16)", (int)p.kv_type);
    if (p.max_tokens < 0)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "cache: max_tokens must be >= 0 (got %d)", p.max_tokens);
    if (p.num_sink < 0)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "cache: num_sink must be >= 0 (got %d)", p.num_sink);
    kvc_method m;
    kvp_status st = kvc_method_parse(p.method, &m, err);
    if (st != KVP_OK) return st;
    st = kvc_budget_check(&m, &p, err);
    if (st != KVP_OK) return st;
    kvp_cache *c = calloc(1, sizeof *c);
    if (!c) return kvu_fail(err, KVP_ERR_NOMEM, "cache: out of memory");
    c->method = m;
    c->params = p;
    c->params.method = c->method.name; /* no pointer into the caller's data */
    c->n_layer = n_layer;
    c->n_head = n_head;
    c->n_head_kv = n_head_kv;
    c->head_dim = head_dim;
    c->group = n_head / n_head_kv;
    c->row_bytes = (size_t)head_dim * kva_elem_size(p.kv_type);
    c->n_streams = p.gqa_mode == KVP_GQA_PER_KV_HEAD ? n_head_kv : n_head;
    /* Unset, a full cache grows with what arrives (prompt + new tokens):
     * the model's context length is no limit, only worth a warning. */
    c->capacity = p.max_tokens;
    c->n_ctx_train = n_ctx > 0 ? n_ctx : 0;
    c->streams = calloc((size_t)n_layer * c->n_streams, sizeof(kvc_stream));
    if (!c->streams) {
        free(c);
        return kvu_fail(err, KVP_ERR_NOMEM, "cache: out of memory");
    }
    *out = c;
    return KVP_OK;
}

kvp_status kvp_cache_new(const kvp_model *model, const kvp_cache_params *params,
                         kvp_cache **out, kvp_error *err) {
    if (!out) return kvu_fail(err, KVP_ERR_INVALID_ARG, "cache: out is NULL");
    *out = NULL;
    if (!model) return kvu_fail(err, KVP_ERR_INVALID_ARG, "cache: model is NULL");
    kvp_model_info info;
    kvp_model_get_info(model, &info);
    return kvc_new_dims(info.n_layer, info.n_head, info.n_head_kv,
                        info.head_dim, info.n_ctx_train, params, out, err);
}

void kvp_cache_reset(kvp_cache *c) {
    if (!c) return;
    for (size_t i = 0; i < (size_t)c->n_layer * c->n_streams; i++)
        stream_free(&c->streams[i]);
    c->budget_set = false;
    c->n_seen = 0;
    c->prompt_end = 0;
    c->held = c->held_peak = 0;
    c->attn_ms = 0.0;
    c->in_block = false;
    c->ctx_warned = false;
    c->warning[0] = '\0';
}

void kvp_cache_free(kvp_cache *c) {
    if (!c) return;
    kvp_cache_reset(c);
    free(c->streams);
    free(c->row_max);
    free(c->row_sum);
    free(c->out_sq);
    free(c->z_rows);
    free(c);
}

const char *kvp_cache_warning(const kvp_cache *c) {
    return c && c->warning[0] ? c->warning : NULL;
}

void kvp_cache_get_stats(const kvp_cache *c, kvp_cache_stats *st) {
    memset(st, 0, sizeof *st);
    if (!c) return;
    size_t tok_bytes = 2 * c->row_bytes;
    st->n_layer = c->n_layer;
    st->n_streams = c->n_streams;
    st->n_seen = c->n_seen;
    st->n_kept_total = c->held;
    if (c->method.kind == KVC_KIND_FULL) {
        st->num_recent = st->num_heavy = -1;
    } else if (c->budget_set) {
        st->num_recent = c->budget.n_recent;
        st->num_heavy = c->budget.n_heavy;
    } else {
        st->num_recent = c->params.num_recent;
        st->num_heavy = c->params.num_heavy;
    }
    st->kv_bytes = (size_t)c->held * tok_bytes;
    st->kv_bytes_peak = (size_t)c->held_peak * tok_bytes;
    st->kv_bytes_full =
        (size_t)c->n_seen * (size_t)c->n_layer * c->n_streams * tok_bytes;
    st->attn_ms = c->attn_ms;
}

size_t kvp_cache_token_bytes(const kvp_cache *c) {
    if (!c) return 0;
    return 2 * c->row_bytes * (size_t)c->n_layer * (size_t)c->n_streams;
}

kvp_status kvp_cache_kept_positions(const kvp_cache *c, int layer, int stream,
                                    const int32_t **pos, size_t *n,
                                    kvp_error *err) {
    if (c && c->in_block)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "cache: a failed kvp_eval left the cache half-updated; "
                        "call kvp_cache_reset before using it again");
    if (!c || layer < 0 || layer >= c->n_layer || stream < 0 ||
        stream >= c->n_streams)
        return kvu_fail(err, KVP_ERR_RANGE,
                        "cache: no stream (layer %d, stream %d); the cache has "
                        "%d layers x %d streams",
                        layer, stream, c ? c->n_layer : 0, c ? c->n_streams : 0);
    const kvc_stream *s = &c->streams[(size_t)layer * c->n_streams + stream];
    *pos = s->pos;
    *n = (size_t)s->len;
    return KVP_OK;
}

/* ---- the forward-pass contract ------------------------------------------ */

int32_t kvc_next_pos(const kvp_cache *c) { return (int32_t)c->n_seen; }

bool kvc_is_full(const kvp_cache *c) { return c->method.kind == KVC_KIND_FULL; }

double kvc_attn_ms(const kvp_cache *c) { return c->attn_ms; }

kvp_status kvc_check_fits(const kvp_cache *c, int64_t n_tokens, kvp_error *err) {
    double bytes = (double)n_tokens * (double)c->n_layer * c->n_streams * 2.0 *
                   (double)c->row_bytes;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return KVP_OK; /* unknown: let allocation decide */
    double mem = (double)pages * (double)page;
    if (bytes <= mem) return KVP_OK;
    return kvu_fail(err, KVP_ERR_NOMEM,
                    "cache: %lld tokens of K/V (%s cache, %d layers x %d streams) need "
                    "%.2f GiB, more than this machine's %.2f GiB of memory; use a pruned "
                    "method or a shorter prompt",
                    (long long)n_tokens, c->method.name, c->n_layer, c->n_streams,
                    bytes / 1073741824.0, mem / 1073741824.0);
}

size_t kvc_alloc_bytes(const kvp_cache *c) {
    size_t cap = 0;
    for (size_t i = 0; i < (size_t)c->n_layer * c->n_streams; i++)
        cap += (size_t)c->streams[i].cap;
    return cap * 2 * c->row_bytes;
}

kvp_status kvc_begin(kvp_cache *c, int n_new, int n_prompt_total,
                     kvp_error *err) {
    if (n_new <= 0)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "cache: a block needs at least one token (got %d)", n_new);
    /* A block that never reached kvc_end (a failed kvp_eval) left some
     * layers updated and others not: nothing may build on that. */
    if (c->in_block)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "cache: a failed kvp_eval left the cache half-updated; "
                        "call kvp_cache_reset before using it again");
    bool first = c->n_seen == 0;
    bool prefill = n_prompt_total > 0 || first;
    int n_prompt = n_prompt_total > 0 ? n_prompt_total : n_new;
    /* A prompt block after the previous prompt has been read starts a new
     * prompt (a conversation's next turn): its chunks are read like the
     * chunks of the first prompt, with the budgets that one set. */
    if (prefill && c->n_seen >= c->prompt_end) c->prompt_end = c->n_seen + n_prompt;
    if (first) {
        kvp_status st = kvc_budget_resolve(&c->method, &c->params, n_prompt,
                                           &c->budget, c->warning,
                                           sizeof c->warning, err);
        if (st != KVP_OK) return st;
        c->budget_set = true;
    }
    bool pruned = c->method.kind != KVC_KIND_FULL;
    int pre = prefill && !first && pruned ? n_new : 0;
    /* Capacity: a full cache holds everything it has seen; a pruned one
     * holds at most what survives the eviction before this block. */
    if (c->capacity > 0) {
        int64_t maxlen = 0;
        for (size_t i = 0; i < (size_t)c->n_layer * c->n_streams; i++)
            if (c->streams[i].len > maxlen) maxlen = c->streams[i].len;
        int64_t budget = (int64_t)c->budget.n_recent + c->budget.n_heavy;
        if (pre > 0 && maxlen + n_new > budget)
            maxlen = budget - n_new > 0 ? budget - n_new : 0;
        if (maxlen + n_new > c->capacity)
            return kvu_fail(err, KVP_ERR_RANGE,
                            "cache: %lld cached + %d new tokens exceed the "
                            "cache capacity of %d tokens per stream "
                            "(max_tokens)",
                            (long long)maxlen, n_new, c->capacity);
    }
    if (c->n_ctx_train > 0 && !c->ctx_warned &&
        c->n_seen + n_new > (int64_t)c->n_ctx_train) {
        c->ctx_warned = true;
        size_t used = strlen(c->warning);
        snprintf(c->warning + used, sizeof c->warning - used,
                 "%spositions reach %lld, past the model's trained context of "
                 "%d tokens: quality may degrade",
                 used ? "; " : "", (long long)(c->n_seen + n_new), c->n_ctx_train);
    }
    size_t need = (size_t)c->n_head * (size_t)n_new;
    if (need > c->scratch_cap) {
        float *a = realloc(c->row_max, need * sizeof(float));
        if (a) c->row_max = a;
        float *b = realloc(c->row_sum, need * sizeof(float));
        if (b) c->row_sum = b;
        float *o = realloc(c->out_sq, need * sizeof(float));
        if (o) c->out_sq = o;
        if (!a || !b || !o) return kvu_fail(err, KVP_ERR_NOMEM, "cache: out of memory");
        c->scratch_cap = need;
    }
    c->blk_n_new = n_new;
    c->blk_next_layer = 0;
    c->blk_pre_coming = pre;
    if (prefill) {
        int w = c->budget.window;
        c->blk_row_begin = (w > 0 && w < n_new) ? n_new - w : 0;
        c->blk_post_evict = c->n_seen + n_new >= c->prompt_end;
    } else {
        /* decode: every new query scores (TOVA: the last one) */
        c->blk_row_begin = c->method.window == KVC_WINDOW_ONE ? n_new - 1 : 0;
        c->blk_post_evict = c->params.decode_evict;
    }
    c->blk_post_evict = c->blk_post_evict && pruned;
    c->in_block = true;
    return KVP_OK;
}

void kvc_end(kvp_cache *c) {
    if (!c->in_block) return;
    c->n_seen += c->blk_n_new;
    c->in_block = false;
}

/* ---- the same contract for other engines (kvprune.h) --------------------- */

kvp_status kvp_cache_new_dims(int n_layer, int n_head, int n_head_kv, int head_dim, int n_ctx,
                              const kvp_cache_params *params, kvp_cache **out, kvp_error *err) {
    kvu_error_clear(err);
    if (!out) return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_cache_new_dims: no output pointer");
    if (n_ctx < 0)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "cache: n_ctx must be >= 0 (got %d)", n_ctx);
    return kvc_new_dims(n_layer, n_head, n_head_kv, head_dim, n_ctx, params, out, err);
}

kvp_status kvp_cache_begin(kvp_cache *cache, int n_new, int n_prompt_total, kvp_error *err) {
    kvu_error_clear(err);
    if (!cache) return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_cache_begin: no cache");
    if (n_prompt_total < 0 || (n_prompt_total > 0 && n_prompt_total < n_new))
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "cache: n_prompt_total %d must be 0 (decode) or at least the block's "
                        "%d tokens",
                        n_prompt_total, n_new);
    return kvc_begin(cache, n_new, n_prompt_total, err);
}

kvp_status kvp_cache_attend(kvp_cache *cache, int layer, const float *q, const float *k,
                            const float *v, float *out, int n_threads, kvp_error *err) {
    kvu_error_clear(err);
    if (!cache || !q || !k || !v || !out)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_cache_attend: a NULL cache or array");
    if (!cache->in_block)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "cache: kvp_cache_attend outside kvp_cache_begin/kvp_cache_end");
    return kvc_attend(cache, layer, q, k, v, out, n_threads, err);
}

kvp_status kvp_cache_end(kvp_cache *cache, kvp_error *err) {
    kvu_error_clear(err);
    if (!cache) return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_cache_end: no cache");
    if (!cache->in_block)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "cache: kvp_cache_end without kvp_cache_begin");
    if (cache->blk_next_layer != cache->n_layer)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "cache: kvp_cache_end after %d of %d layers; the block is incomplete "
                        "(kvp_cache_reset to use the cache again)",
                        cache->blk_next_layer, cache->n_layer);
    kvc_end(cache);
    return KVP_OK;
}

/* The steps of kvc_attend for one stream. Every step touches only its own
 * stream (and its heads' rows of the scratch), so streams run in parallel
 * and the bits do not depend on the thread count. */
typedef struct attend_ctx {
    kvp_cache *c;
    kvc_stream *ss;
    const float *q, *k, *v;
    float *out;
    float scale;
    size_t qs;            /* floats per query/output row                    */
    int n_new, slack, heads_per_stream;
    float *z_rows;        /* decode: [n_head][max_len] logits, or NULL      */
    int max_len;
} attend_ctx;

/* 1. evict before the chunk arrives (chunked prefill), then append.
 * Returns the change in tokens held, or APPEND_FAILED (out of memory). */
#define APPEND_FAILED INT64_MIN
static int64_t step_append(const attend_ctx *a, int s) {
    kvp_cache *c = a->c;
    const kvc_method *m = &c->method;
    kvc_stream *st = &a->ss[s];
    const int d = c->head_dim, n_new = a->n_new;
    int64_t delta = 0;
    if (c->blk_pre_coming > 0) {
        int r = stream_evict(c, st, c->blk_pre_coming, n_new + a->slack);
        if (r > 0) return APPEND_FAILED;
        delta += r;
    }
    if (!stream_reserve(st, st->len + n_new, c->row_bytes)) return APPEND_FAILED;
    int kvh = kv_head_of_stream(c, s);
    const kvp_kv_type type = c->params.kv_type;
    float vr[KVP_ATTN_MAX_HEAD_DIM]; /* the value as stored (rounded) */
    for (int i = 0; i < n_new; i++) {
        int j = st->len + i;
        const float *ki = a->k + ((size_t)i * c->n_head_kv + kvh) * d;
        const float *vi = a->v + ((size_t)i * c->n_head_kv + kvh) * d;
        void *vrow = (char *)st->v + (size_t)j * c->row_bytes;
        kva_store_rows((char *)st->k + (size_t)j * c->row_bytes, ki, (size_t)d, type);
        kva_store_rows(vrow, vi, (size_t)d, type);
        /* the value norms see the rounded values, as the attention does */
        if (type != KVP_KV_F32 && (m->use_vnorm || m->use_key)) {
            kva_load_rows(vr, vrow, (size_t)d, type);
            vi = vr;
        }
        st->pos[j] = (int32_t)(c->n_seen + i);
        st->slot[j] = j;
        st->sattn[j] = 0.0;
        st->skey[j] = 0.0;
        st->vnorm[j] = m->use_vnorm ? kvc_value_norm(vi, d, m->p) : 0.0;
        st->v2[j] = m->use_key ? (float)kvc_value_norm(vi, d, 2) : 0.0f;
    }
    st->len += n_new;
    return delta + n_new;
}

/* 2 (few rows). Row r of a stream: the heads that share the stream run
 * together, so its K/V are read once per row, not once per head. */
static void step_rows_grouped(const attend_ctx *a, int s, int r) {
    kvp_cache *c = a->c;
    const int d = c->head_dim, n_new = a->n_new, h0 = s * a->heads_per_stream;
    const kvc_stream *st = &a->ss[s];
    float *out = a->out + (size_t)r * a->qs + (size_t)h0 * d;
    kvk_attn_forward_heads(a->q + (size_t)r * a->qs + (size_t)h0 * d, (size_t)d,
                           a->heads_per_stream, st->k, st->v, c->params.kv_type, d,
                           st->len - n_new + r + 1,
                           a->scale, out, (size_t)d, c->row_max + (size_t)h0 * n_new + r,
                           c->row_sum + (size_t)h0 * n_new + r, (size_t)n_new,
                           a->z_rows ? a->z_rows + (size_t)h0 * a->max_len : NULL,
                           (size_t)a->max_len);
    if (c->method.kind == KVC_KIND_SCORED && c->method.use_key)
        for (int g = 0; g < a->heads_per_stream; g++)
            c->out_sq[(size_t)(h0 + g) * n_new + r] = sum_sq(out + (size_t)g * d, d);
}

/* 2 (many rows). Rows [r0, r0 + nr) of head h, flash style. */
static void step_rows_tile(const attend_ctx *a, int h, int r0, int nr) {
    kvp_cache *c = a->c;
    const int d = c->head_dim, n_new = a->n_new;
    const kvc_stream *st = &a->ss[stream_of_head(c, h)];
    if (c->attn_bf16)
        kvk_attn_forward_bf16(a->q + (size_t)r0 * a->qs + (size_t)h * d, a->qs, nr, st->k, st->v,
                              c->params.kv_type, d, st->len - n_new + r0, a->scale,
                              a->out + (size_t)r0 * a->qs + (size_t)h * d, a->qs,
                              c->row_max + (size_t)h * n_new + r0,
                              c->row_sum + (size_t)h * n_new + r0);
    else
        kvk_attn_forward(a->q + (size_t)r0 * a->qs + (size_t)h * d, a->qs, nr, st->k, st->v,
                         c->params.kv_type, d,
                         st->len - n_new + r0, a->scale, a->out + (size_t)r0 * a->qs + (size_t)h * d,
                         a->qs, c->row_max + (size_t)h * n_new + r0,
                         c->row_sum + (size_t)h * n_new + r0,
                         a->z_rows ? a->z_rows + (size_t)h * a->max_len : NULL);
    if (c->method.kind == KVC_KIND_SCORED && c->method.use_key)
        for (int i = r0; i < r0 + nr; i++)
            c->out_sq[(size_t)h * n_new + i] = sum_sq(a->out + (size_t)i * a->qs + (size_t)h * d, d);
}

/* 3. the scoring rows revisit key columns [c0, c1) of stream s with the
 * final normalisers: per-column reductions in row order, the heads of a
 * group summed. */
static void step_score_cols(const attend_ctx *a, int s, int c0, int c1) {
    kvp_cache *c = a->c;
    const kvc_method *m = &c->method;
    const int d = c->head_dim, n_new = a->n_new;
    kvc_stream *st = &a->ss[s];
    if (m->recent_only)
        for (int j = c0; j < c1; j++) st->sattn[j] = st->skey[j] = 0.0;
    kvk_colreduce_req req = {m->use_attn ? m->p : 0, m->use_key, m->use_cross, st->v2, NULL};
    for (int g = 0; g < a->heads_per_stream; g++) {
        int h = s * a->heads_per_stream + g;
        req.out_sq = c->out_sq + (size_t)h * n_new;
        if (c->attn_bf16 && n_new >= GROUP_ROWS) {
            kvk_attn_colreduce_bf16(a->q + (size_t)h * d, a->qs, c->blk_row_begin, n_new, st->k,
                                    st->v, c->params.kv_type, d, st->len - n_new, a->scale,
                                    c->row_max + (size_t)h * n_new, c->row_sum + (size_t)h * n_new,
                                    a->out + (size_t)h * d, a->qs, c0, c1, &req, st->sattn,
                                    st->skey);
            continue;
        }
        kvk_attn_colreduce(a->q + (size_t)h * d, a->qs, c->blk_row_begin, n_new, st->k, st->v,
                           c->params.kv_type, d, st->len - n_new, a->scale, c->row_max + (size_t)h * n_new,
                           c->row_sum + (size_t)h * n_new, a->out + (size_t)h * d, a->qs, c0,
                           c1, &req, a->z_rows ? a->z_rows + (size_t)h * a->max_len : NULL,
                           st->sattn, st->skey);
    }
}

kvp_status kvc_attend(kvp_cache *c, int layer, const float *q, const float *k,
                      const float *v, float *out, int n_threads,
                      kvp_error *err) {
    if (!c->in_block)
        return kvu_fail(err, KVP_ERR_INTERNAL, "cache: kvc_attend outside kvc_begin/kvc_end");
    if (layer != c->blk_next_layer)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "cache: layer %d attended out of order (layers 0..%d attend in order, "
                        "each once per block; expected %d)",
                        layer, c->n_layer - 1, c->blk_next_layer);
    c->blk_next_layer++;
    double t0 = now_ms();
    const int n_new = c->blk_n_new, d = c->head_dim, H = c->n_head;
    const int S = c->n_streams;
    const int nt = n_threads > 0 ? n_threads : omp_get_max_threads();
    const bool scored = c->method.kind == KVC_KIND_SCORED;
    attend_ctx a = {c, stream_at(c, layer, 0), q, k, v, out, 1.0f / sqrtf((float)d),
                    (size_t)H * d, n_new, n_new > 64 ? 64 : n_new + 16, H / S, NULL, 0};
    kvc_stream *ss = a.ss;
    int failed = 0;
    int64_t delta = 0;

    /* A scored decode step keeps each head's logits for the scoring pass
     * instead of recomputing them. */
    for (int s = 0; s < S; s++)
        if (ss[s].len + n_new > a.max_len) a.max_len = ss[s].len + n_new;
    if (scored && n_new == 1) {
        size_t need = (size_t)H * (size_t)a.max_len;
        if (need > c->z_cap) {
            float *z = realloc(c->z_rows, need * sizeof(float));
            if (z) {
                c->z_rows = z;
                c->z_cap = need;
            }
        }
        if (need <= c->z_cap) a.z_rows = c->z_rows; /* else recompute: slower, same bits */
    }
    /* Parallel regions only pay off above some work; thresholds are in
     * multiply-adds of the attention. */
    const int64_t kv_len = ss[0].len + n_new;
    const int64_t work = (int64_t)H * n_new * kv_len * d;

    if (n_new < GROUP_ROWS) {
        /* Few rows (decode, tiny chunks): one task per stream runs all four
         * steps, so a block costs one fork/join, not four, and both cores
         * share even a pruned cache's attention. */
        int64_t evicted = 0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) reduction(+ : failed, delta, evicted) if (work > ((int64_t)1 << 18))
        for (int s = 0; s < S; s++) {
            int64_t dl = step_append(&a, s);
            if (dl == APPEND_FAILED) {
                failed++;
                continue;
            }
            delta += dl;
            for (int r = 0; r < n_new; r++) step_rows_grouped(&a, s, r);
            if (scored) step_score_cols(&a, s, 0, ss[s].len);
            if (c->blk_post_evict) {
                int r = stream_evict(c, &ss[s], 0, a.slack);
                if (r > 0) failed++;
                else evicted += r;
            }
        }
        /* the peak counts the block appended, before its eviction */
        c->held += delta;
        if (c->held > c->held_peak) c->held_peak = c->held;
        c->held += evicted;
        c->attn_ms += now_ms() - t0;
        if (failed)
            return kvu_fail(err, KVP_ERR_NOMEM, "cache: out of memory (layer %d)", layer);
        return KVP_OK;
    }

    const int64_t par_min = (int64_t)1 << 21;
    const bool par_copy = (int64_t)n_new * S * d > (1 << 16) ||
                          (c->blk_pre_coming > 0 && kv_len > 4096);

    /* 1. evict before the chunk arrives, then append. */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) reduction(+ : failed, delta) if (par_copy)
    for (int s = 0; s < S; s++) {
        int64_t dl = step_append(&a, s);
        if (dl == APPEND_FAILED) failed++;
        else delta += dl;
    }
    c->held += delta;
    if (c->held > c->held_peak) c->held_peak = c->held;
    if (failed) {
        c->attn_ms += now_ms() - t0;
        return kvu_fail(err, KVP_ERR_NOMEM, "cache: out of memory (layer %d)", layer);
    }

    /* 2. outputs, row maxima and normalisers. */
    const int row_tile = c->attn_bf16 ? ROW_TILE_BF16 : ROW_TILE;
    const int n_tiles = (n_new + row_tile - 1) / row_tile;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (work > par_min)
    for (int task = 0; task < H * n_tiles; task++) {
        int h = task / n_tiles, r0 = (task % n_tiles) * row_tile;
        step_rows_tile(&a, h, r0, n_new - r0 < row_tile ? n_new - r0 : row_tile);
    }

    /* 3. scores: owned column blocks, so every column is reduced by one
     * thread in row order. */
    if (scored) {
        const int max_blocks = (a.max_len + COL_BLOCK - 1) / COL_BLOCK;
        const int64_t rows = n_new - c->blk_row_begin;
        const bool par_score = (int64_t)H * rows * kv_len * d > par_min;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (par_score)
        for (int task = 0; task < S * max_blocks; task++) {
            int s = task / max_blocks, c0 = (task % max_blocks) * COL_BLOCK;
            if (c0 >= ss[s].len) continue;
            step_score_cols(&a, s, c0, c0 + COL_BLOCK < ss[s].len ? c0 + COL_BLOCK : ss[s].len);
        }
    }

    /* 4. evict to budget (prefill; decode when decode_evict). */
    if (c->blk_post_evict) {
        delta = 0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) reduction(+ : failed, delta) if (n_new > 64 || kv_len > 8192)
        for (int s = 0; s < S; s++) {
            int r = stream_evict(c, &ss[s], 0, a.slack);
            if (r > 0) failed++;
            else delta += r;
        }
        c->held += delta;
    }
    c->attn_ms += now_ms() - t0;
    if (failed)
        return kvu_fail(err, KVP_ERR_NOMEM, "cache: out of memory (layer %d)", layer);
    return KVP_OK;
}

/* ---- kv types ------------------------------------------------------------ */

const char *kvp_kv_type_name(kvp_kv_type t) {
    switch (t) {
    case KVP_KV_F32: return "f32";
    case KVP_KV_F16: return "f16";
    case KVP_KV_BF16: return "bf16";
    }
    return NULL;
}

bool kvp_kv_type_parse(const char *name, kvp_kv_type *out) {
    static const kvp_kv_type all[] = {KVP_KV_F32, KVP_KV_F16, KVP_KV_BF16};
    for (size_t i = 0; name && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, kvp_kv_type_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    return false;
}

/* ---- cache files ---------------------------------------------------------- */

/* A cache file (all integers little-endian, as this library only builds on
 * little-endian machines):
 *   "KVPCACHE" u32 version u32 0
 *   u64 model identity (kvm_model_identity)  u32 kv element bytes  u32 kv_type
 *   char method[64]  i32 gqa_mode decode_evict streaming max_tokens
 *   i32 num_recent num_heavy [i32 num_sink: version 2 on; version 1 files
 *   mean 4]  f64 recent_ratio heavy_ratio cache_ratio
 *   i32 budget_set n_recent n_heavy window num_sink
 *   i32 n_layer n_streams head_dim  i64 n_seen prompt_end held_peak
 *   per stream, layer-major: i32 len, then in position order
 *     i32 pos[len], K rows, V rows (len x head_dim elements each),
 *     f64 sattn[len] skey[len] vnorm[len], f32 v2[len]
 *   u64 n_history, i32 history[n]; u64 app_len, app bytes
 *   u64 FNV-1a of everything before it. */
#define CACHE_MAGIC "KVPCACHE"
#define CACHE_VERSION 2u

typedef struct wbuf {
    char *p;
    size_t n, cap;
    bool oom;
} wbuf;

static void wput(wbuf *b, const void *d, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
#define WPUT(b, v) wput((b), &(v), sizeof(v))

static uint64_t fnv1a(const void *d, size_t n) {
    const unsigned char *p = d;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

kvp_status kvp_cache_save(const kvp_model *model, const kvp_cache *c, const char *path,
                          const int32_t *history, size_t n_history, const char *app_data,
                          kvp_error *err) {
    if (!model || !c || !path || (!history && n_history))
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_cache_save: NULL argument");
    if (c->in_block)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "%s: the cache is half-updated by a failed kvp_eval; reset it first", path);
    wbuf b = {0};
    uint32_t u;
    int32_t i32;
    uint64_t u64;
    double f;
    wput(&b, CACHE_MAGIC, 8);
    u = CACHE_VERSION;
    WPUT(&b, u);
    u = 0;
    WPUT(&b, u);
    u64 = kvm_model_identity(model);
    WPUT(&b, u64);
    u = (uint32_t)(c->row_bytes / (size_t)c->head_dim);
    WPUT(&b, u);
    u = (uint32_t)c->params.kv_type;
    WPUT(&b, u);
    char method[64] = {0};
    snprintf(method, sizeof method, "%s", c->method.name);
    wput(&b, method, sizeof method);
    const kvp_cache_params *p = &c->params;
    int32_t ints[] = {(int32_t)p->gqa_mode, p->decode_evict, p->streaming, p->max_tokens, p->num_recent,
                      p->num_heavy, p->num_sink};
    wput(&b, ints, sizeof ints);
    f = p->recent_ratio;
    WPUT(&b, f);
    f = p->heavy_ratio;
    WPUT(&b, f);
    f = p->cache_ratio;
    WPUT(&b, f);
    int32_t bud[] = {c->budget_set, c->budget.n_recent, c->budget.n_heavy, c->budget.window, c->budget.num_sink};
    wput(&b, bud, sizeof bud);
    int32_t shape[] = {c->n_layer, c->n_streams, c->head_dim};
    wput(&b, shape, sizeof shape);
    int64_t counts[] = {c->n_seen, c->prompt_end, c->held_peak};
    wput(&b, counts, sizeof counts);
    const size_t rb = c->row_bytes;
    for (size_t si = 0; si < (size_t)c->n_layer * c->n_streams; si++) {
        const kvc_stream *s = &c->streams[si];
        i32 = s->len;
        WPUT(&b, i32);
        wput(&b, s->pos, sizeof(int32_t) * (size_t)s->len);
        for (int t = 0; t < s->len; t++) wput(&b, (const char *)s->k + (size_t)s->slot[t] * rb, rb);
        for (int t = 0; t < s->len; t++) wput(&b, (const char *)s->v + (size_t)s->slot[t] * rb, rb);
        for (int t = 0; t < s->len; t++) WPUT(&b, s->sattn[s->slot[t]]);
        for (int t = 0; t < s->len; t++) WPUT(&b, s->skey[s->slot[t]]);
        for (int t = 0; t < s->len; t++) WPUT(&b, s->vnorm[s->slot[t]]);
        for (int t = 0; t < s->len; t++) WPUT(&b, s->v2[s->slot[t]]);
    }
    u64 = n_history;
    WPUT(&b, u64);
    wput(&b, history, sizeof(int32_t) * n_history);
    u64 = app_data ? strlen(app_data) : 0;
    WPUT(&b, u64);
    if (app_data) wput(&b, app_data, strlen(app_data));
    if (!b.oom) {
        u64 = fnv1a(b.p, b.n);
        WPUT(&b, u64);
    }
    if (b.oom) {
        free(b.p);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory while writing the cache", path);
    }
    kvp_status st = kvu_write_file_atomic(path, b.p, b.n, err);
    free(b.p);
    return st;
}

typedef struct rbuf {
    const char *p;
    size_t n, off;
} rbuf;

static bool rget(rbuf *b, void *d, size_t n) {
    if (b->n - b->off < n) return false;
    memcpy(d, b->p + b->off, n);
    b->off += n;
    return true;
}
#define RGET(b, v) rget((b), &(v), sizeof(v))

kvp_status kvp_cache_load(const kvp_model *model, const char *path, kvp_cache **out, int32_t **history,
                          size_t *n_history, char **app_data, kvp_error *err) {
    if (!model || !path || !out) return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_cache_load: NULL argument");
    *out = NULL;
    if (history) *history = NULL;
    if (n_history) *n_history = 0;
    if (app_data) *app_data = NULL;
    char *data = NULL;
    size_t len = 0;
    kvp_status st = kvu_read_file(path, &data, &len, err);
    if (st) return st;
    kvp_cache *c = NULL;
    int32_t *hist = NULL;
    char *app = NULL;
    rbuf b = {data, len, 0};
    char magic[8];
    uint32_t version = 0, pad = 0, esz = 0, kvt = 0;
    uint64_t ident, sum;
    if (!rget(&b, magic, 8) || memcmp(magic, CACHE_MAGIC, 8)) {
        st = kvu_fail(err, KVP_ERR_FORMAT, "%s: not a kvprune cache file", path);
        goto fail;
    }
    if (!RGET(&b, version) || !RGET(&b, pad) || version < 1 || version > CACHE_VERSION) {
        st = kvu_fail(err, KVP_ERR_UNSUPPORTED,
                      "%s: cache file format version %u; this build reads versions 1 to %u", path, version,
                      CACHE_VERSION);
        goto fail;
    }
    if (len < 8 + 8 || (memcpy(&sum, data + len - 8, 8), sum != fnv1a(data, len - 8))) {
        st = kvu_fail(err, KVP_ERR_FORMAT, "%s: the cache file is corrupt or truncated (checksum mismatch)", path);
        goto fail;
    }
    b.n = len - 8;
    if (!RGET(&b, ident) || !RGET(&b, esz) || !RGET(&b, kvt)) goto trunc;
    if (kvt > (uint32_t)KVP_KV_BF16 || esz != kva_elem_size((kvp_kv_type)kvt)) {
        st = kvu_fail(err, KVP_ERR_FORMAT, "%s: unknown K/V element type %u (%u bytes)", path, kvt, esz);
        goto fail;
    }
    if (ident != kvm_model_identity(model)) {
        st = kvu_fail(err, KVP_ERR_INVALID_ARG,
                      "%s: the cache was saved with another model (identity %016llx, this model %016llx)", path,
                      (unsigned long long)ident, (unsigned long long)kvm_model_identity(model));
        goto fail;
    }
    char method[64];
    /* version 1 has no num_sink (its streaming caches kept 4) */
    int32_t ints[7] = {0, 0, 0, 0, 0, 0, 4}, bud[5], shape[3];
    const size_t n_ints = version >= 2 ? 7 : 6;
    int64_t counts[3];
    double ratios[3];
    if (!rget(&b, method, sizeof method) || !rget(&b, ints, n_ints * sizeof ints[0]) || !rget(&b, ratios, sizeof ratios) ||
        !rget(&b, bud, sizeof bud) || !rget(&b, shape, sizeof shape) || !rget(&b, counts, sizeof counts))
        goto trunc;
    method[63] = '\0';
    kvp_cache_params p = kvp_cache_default_params();
    p.method = method;
    p.gqa_mode = (kvp_gqa_mode)ints[0];
    p.decode_evict = ints[1] != 0;
    p.streaming = ints[2] != 0;
    p.max_tokens = ints[3];
    p.num_recent = ints[4];
    p.num_heavy = ints[5];
    p.num_sink = ints[6];
    p.recent_ratio = ratios[0];
    p.heavy_ratio = ratios[1];
    p.cache_ratio = ratios[2];
    p.kv_type = (kvp_kv_type)kvt;
    if ((st = kvp_cache_new(model, &p, &c, err))) {
        kvu_fail_prefix(err, st, "%s: ", path);
        goto fail;
    }
    if (shape[0] != c->n_layer || shape[1] != c->n_streams || shape[2] != c->head_dim ||
        esz * (size_t)c->head_dim != c->row_bytes) {
        st = kvu_fail(err, KVP_ERR_FORMAT, "%s: the cache's shape (%d layers x %d streams x %d, %u-byte elements) "
                      "does not match the model's", path, shape[0], shape[1], shape[2], esz);
        goto fail;
    }
    c->budget_set = bud[0] != 0;
    c->budget.n_recent = bud[1];
    c->budget.n_heavy = bud[2];
    c->budget.window = bud[3];
    c->budget.num_sink = bud[4];
    c->n_seen = counts[0];
    c->prompt_end = counts[1];
    c->held = 0;
    const size_t rb = c->row_bytes;
    for (size_t si = 0; si < (size_t)c->n_layer * c->n_streams; si++) {
        kvc_stream *s = &c->streams[si];
        int32_t n;
        if (!RGET(&b, n)) goto trunc;
        if (n < 0 || (size_t)n > (b.n - b.off) / (2 * rb + 28)) goto trunc;
        if (n > 0 && !stream_reserve(s, n, rb)) {
            st = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory for %d cached tokens", path, n);
            goto fail;
        }
        if (!rget(&b, s->pos, sizeof(int32_t) * (size_t)n) || !rget(&b, s->k, rb * (size_t)n) ||
            !rget(&b, s->v, rb * (size_t)n) || !rget(&b, s->sattn, 8 * (size_t)n) ||
            !rget(&b, s->skey, 8 * (size_t)n) || !rget(&b, s->vnorm, 8 * (size_t)n) ||
            !rget(&b, s->v2, 4 * (size_t)n))
            goto trunc;
        for (int t = 0; t < n; t++) {
            s->slot[t] = t;
            if (s->pos[t] < 0 || s->pos[t] >= c->n_seen || (t && s->pos[t] <= s->pos[t - 1])) {
                st = kvu_fail(err, KVP_ERR_FORMAT, "%s: stream %zu lists position %d out of order", path, si,
                              s->pos[t]);
                goto fail;
            }
        }
        s->len = n;
        s->permuted = false;
        c->held += n;
    }
    c->held_peak = counts[2] > c->held ? counts[2] : c->held;
    uint64_t nh, na;
    if (!RGET(&b, nh) || nh > (b.n - b.off) / 4) goto trunc;
    hist = malloc(sizeof(int32_t) * (nh ? nh : 1));
    if (!hist || !rget(&b, hist, 4 * nh)) goto trunc;
    if (!RGET(&b, na) || na > b.n - b.off) goto trunc;
    app = malloc(na + 1);
    if (!app || !rget(&b, app, na)) goto trunc;
    app[na] = '\0';
    if (b.off != b.n) goto trunc;
    free(data);
    *out = c;
    if (history) *history = hist;
    else free(hist);
    if (n_history) *n_history = nh;
    if (app_data) *app_data = app;
    else free(app);
    return KVP_OK;
trunc:
    st = kvu_fail(err, KVP_ERR_FORMAT, "%s: the cache file is inconsistent (a section runs past its end)", path);
fail:
    free(data);
    free(hist);
    free(app);
    kvp_cache_free(c);
    return st;
}

void kvc_set_attn_bf16(kvp_cache *c, bool on) { c->attn_bf16 = on && kvk_attn_bf16_active(c->head_dim); }
