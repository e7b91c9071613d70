/*
 * One forward block through the cache: kvc_begin sets the block up,
 * kvc_attend runs one layer's attention over each stream (append, outputs,
 * scores, eviction) and schedules the streams over threads, kvc_end
 * advances the position counter.
 *
 * Chunked prefill (kvc_begin with n_prompt_total > n_new): the budgets come
 * from the whole prompt; before each chunk after the first, every stream is
 * evicted with num_coming = the chunk's length (spec "Streaming arrival"),
 * each chunk is scored like a prefill of its own (its last `window` rows,
 * or all of its rows for full history), and after the last chunk the cache
 * is evicted to the budget. A single chunk covering the whole prompt is
 * therefore exactly the unchunked prefill.
 *
 * Every step touches only its own stream (and its heads' rows of the
 * scratch), so streams run in parallel and the bits do not depend on the
 * thread count. The streams and tiles run on the cache's thread pool
 * (util/pool.h).
 */
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "cache/store.h"
#include "kernels/attention.h"
#include "util/clock.h"
#include "util/error.h"

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

/* Parallel regions only pay off above some work (a fork/join costs a few
 * microseconds); thresholds in multiply-adds of the attention unless said.
 * None of them changes a bit of the result, only the speed. */
/* few-row blocks (decode): one task per stream above this work */
#define PAR_MIN_WORK_FEW_ROWS ((int64_t)1 << 18)
/* many-row blocks: outputs and scores in parallel above this work */
#define PAR_MIN_WORK ((int64_t)1 << 21)
/* appending: in parallel above this many K/V floats copied... */
#define PAR_MIN_APPEND_FLOATS ((int64_t)1 << 16)
/* ...or when a chunk's pre-eviction sorts streams longer than this */
#define PAR_MIN_PRE_EVICT_LEN 4096
/* post-attention eviction: in parallel for blocks of more rows than this
 * (a prefill's large selection) or streams longer than this */
#define PAR_MIN_EVICT_ROWS 64
#define PAR_MIN_EVICT_LEN 8192

/* Rows a stream keeps free after a many-token eviction: the next block's
 * appends (decode steps, or a chunk of about the same length) then need no
 * reallocation; capped so a long chunk does not pin memory. */
#define SLACK_MAX 64
#define SLACK_EXTRA 16

static float sum_sq(const float *x, int d) {
    float s2 = 0.0f;
    for (int t = 0; t < d; t++) s2 += x[t] * x[t];
    return s2;
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
        kvc_set_layer_budgets(c);
    }
    bool pruned = c->method.kind != KVC_KIND_FULL;
    int pre = prefill && !first && pruned ? n_new : 0;
    /* Capacity: a full cache holds everything it has seen; a pruned one
     * holds at most what survives the eviction before this block. */
    if (c->capacity > 0) {
        int64_t maxlen = 0;
        for (size_t i = 0; i < (size_t)c->n_layer * c->n_streams; i++)
            if (c->streams[i].len > maxlen) maxlen = c->streams[i].len;
        /* the longest a stream can be after the pre-eviction: its recent
         * window and the largest layer's heavy budget (with adaptive
         * budgets, a whole layer's) */
        int max_heavy = 0;
        for (int l = 0; l < c->n_layer; l++)
            if (c->layer_heavy[l] > max_heavy) max_heavy = c->layer_heavy[l];
        if (c->params.budget_alloc == KVP_BUDGET_ADAPTIVE) max_heavy *= c->n_streams;
        int64_t budget = (int64_t)c->budget.n_recent + max_heavy;
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
    c->blk_layerwise = pruned && c->params.budget_alloc == KVP_BUDGET_ADAPTIVE;
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
    kvu_pool *pool = NULL;
    kvp_status st = kvc_thread_pool(cache, n_threads > 0 ? n_threads : omp_get_max_threads(), &pool, err);
    if (st != KVP_OK) return st;
    return kvc_attend(cache, layer, q, k, v, out, pool, err);
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

/* The steps of kvc_attend for one stream. */
typedef struct attend_ctx {
    kvp_cache *c;
    kvc_stream *ss;
    const float *q, *k, *v;
    float *out;
    float scale;
    size_t qs;            /* floats per query/output row                    */
    int layer, n_new, slack, heads_per_stream;
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
    if (c->blk_pre_coming > 0 && !c->blk_layerwise) {
        int r = kvc_stream_evict(c, a->layer, st, c->blk_pre_coming, n_new + a->slack);
        if (r > 0) return APPEND_FAILED;
        delta += r;
    }
    if (!kvc_stream_reserve(st, st->len + n_new, c->row_bytes)) return APPEND_FAILED;
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

/* A few-row block's streams over the pool: workers take the next stream
 * from a shared counter (streams differ in length under pruning); the sums
 * are integers, so the order they are added in does not matter. */
typedef struct {
    const attend_ctx *a;
    bool scored;
    bool layerwise;      /* adaptive budgets: the layer evicts after the pass */
    int plan;            /* > 0: each stream collects its eviction candidates */
    atomic_int next;
    atomic_int failed;
    atomic_llong delta, evicted;
} few_rows_job;

static void few_rows_worker(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    few_rows_job *j = arg;
    const attend_ctx *a = j->a;
    kvp_cache *c = a->c;
    for (int s; (s = atomic_fetch_add(&j->next, 1)) < c->n_streams;) {
        int64_t dl = step_append(a, s);
        if (dl == APPEND_FAILED) {
            atomic_fetch_add(&j->failed, 1);
            continue;
        }
        atomic_fetch_add(&j->delta, dl);
        for (int r = 0; r < a->n_new; r++) step_rows_grouped(a, s, r);
        if (j->scored) step_score_cols(a, s, 0, a->ss[s].len);
        if (j->plan > 0) kvc_layer_evict_collect(c, a->layer, s);
        if (c->blk_post_evict && !j->layerwise) {
            int r = kvc_stream_evict(c, a->layer, &a->ss[s], 0, a->slack);
            if (r > 0) atomic_fetch_add(&j->failed, 1);
            else atomic_fetch_add(&j->evicted, r);
        }
    }
}

/* The four steps of a many-row block (prefill), each a region of its own
 * over the pool, tasks taken from a shared counter. */
typedef struct {
    const attend_ctx *a;
    int row_tile, n_tiles, max_blocks;
    atomic_int next;
    atomic_int failed;
    atomic_llong delta;
} many_rows_job;

static void append_worker(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    many_rows_job *j = arg;
    for (int s; (s = atomic_fetch_add(&j->next, 1)) < j->a->c->n_streams;) {
        int64_t dl = step_append(j->a, s);
        if (dl == APPEND_FAILED) atomic_fetch_add(&j->failed, 1);
        else atomic_fetch_add(&j->delta, dl);
    }
}

static void rows_worker(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    many_rows_job *j = arg;
    const int n_new = j->a->n_new, n_tiles = j->n_tiles, n_tasks = j->a->c->n_head * n_tiles;
    const int row_tile = j->row_tile;
    for (int task; (task = atomic_fetch_add(&j->next, 1)) < n_tasks;) {
        int h = task / n_tiles, r0 = (task % n_tiles) * row_tile;
        step_rows_tile(j->a, h, r0, n_new - r0 < row_tile ? n_new - r0 : row_tile);
    }
}

static void score_worker(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    many_rows_job *j = arg;
    const kvc_stream *ss = j->a->ss;
    const int max_blocks = j->max_blocks, n_tasks = j->a->c->n_streams * max_blocks;
    for (int task; (task = atomic_fetch_add(&j->next, 1)) < n_tasks;) {
        int s = task / max_blocks, c0 = (task % max_blocks) * COL_BLOCK;
        if (c0 >= ss[s].len) continue;
        step_score_cols(j->a, s, c0, c0 + COL_BLOCK < ss[s].len ? c0 + COL_BLOCK : ss[s].len);
    }
}

static void evict_worker(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    many_rows_job *j = arg;
    kvp_cache *c = j->a->c;
    for (int s; (s = atomic_fetch_add(&j->next, 1)) < c->n_streams;) {
        int r = kvc_stream_evict(c, j->a->layer, &j->a->ss[s], 0, j->a->slack);
        if (r > 0) atomic_fetch_add(&j->failed, 1);
        else atomic_fetch_add(&j->delta, r);
    }
}

kvp_status kvc_attend(kvp_cache *c, int layer, const float *q, const float *k,
                      const float *v, float *out, kvu_pool *pool,
                      kvp_error *err) {
    if (!c->in_block)
        return kvu_fail(err, KVP_ERR_INTERNAL, "cache: kvc_attend outside kvc_begin/kvc_end");
    if (layer != c->blk_next_layer)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "cache: layer %d attended out of order (layers 0..%d attend in order, "
                        "each once per block; expected %d)",
                        layer, c->n_layer - 1, c->blk_next_layer);
    c->blk_next_layer++;
    double t0 = kvu_now_ms();
    const int n_new = c->blk_n_new, d = c->head_dim, H = c->n_head;
    const int S = c->n_streams;
    const bool scored = c->method.kind == KVC_KIND_SCORED;
    attend_ctx a = {c, stream_at(c, layer, 0), q, k, v, out, 1.0f / sqrtf((float)d),
                    (size_t)H * d, layer, n_new, n_new > SLACK_MAX ? SLACK_MAX : n_new + SLACK_EXTRA, H / S,
                    NULL, 0};
    kvc_stream *ss = a.ss;
    int failed = 0;
    /* Adaptive budgets evict a layer's streams together: before the chunk
     * arrives (here) and after the attention (below), between the
     * per-stream parallel steps. */
    const bool layerwise = c->blk_layerwise;
    if (layerwise && c->blk_pre_coming > 0) {
        int64_t r = kvc_layer_evict(c, layer, c->blk_pre_coming, n_new + a.slack);
        if (r > 0) {
            c->attn_ms += kvu_now_ms() - t0;
            return kvu_fail(err, KVP_ERR_NOMEM, "cache: out of memory (layer %d)", layer);
        }
        c->held += r;
    }

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
    const int64_t kv_len = a.max_len; /* the longest stream, block included */
    const int64_t work = (int64_t)H * n_new * kv_len * d;

    if (n_new < GROUP_ROWS) {
        /* Few rows (decode, tiny chunks): one task per stream runs all four
         * steps, so a block costs one fork/join on the cache's pool, not
         * four, and both cores share even a pruned cache's attention.
         * Adaptive budgets: plan the layer's eviction for the lengths after
         * the append, let each stream's task collect its candidates. */
        int plan = 0;
        if (c->blk_post_evict && layerwise) {
            plan = kvc_layer_evict_plan(c, layer, 0, n_new);
            if (plan < 0) {
                c->attn_ms += kvu_now_ms() - t0;
                return kvu_fail(err, KVP_ERR_NOMEM, "cache: out of memory (layer %d)", layer);
            }
        }
        few_rows_job j = {&a, scored, layerwise, plan, 0, 0, 0, 0};
        kvu_pool_run(pool, work > PAR_MIN_WORK_FEW_ROWS ? S : 1, few_rows_worker, &j);
        /* the peak counts the block appended, before its eviction */
        c->held += atomic_load(&j.delta);
        if (c->held > c->held_peak) c->held_peak = c->held;
        c->held += atomic_load(&j.evicted);
        if (plan > 0 && !atomic_load(&j.failed)) {
            int64_t r = kvc_layer_evict_apply(c, layer, a.slack);
            if (r > 0) failed++;
            else c->held += r;
        }
        c->attn_ms += kvu_now_ms() - t0;
        if (atomic_load(&j.failed) || failed)
            return kvu_fail(err, KVP_ERR_NOMEM, "cache: out of memory (layer %d)", layer);
        return KVP_OK;
    }

    const bool par_copy = (int64_t)n_new * S * d > PAR_MIN_APPEND_FLOATS ||
                          (c->blk_pre_coming > 0 && kv_len > PAR_MIN_PRE_EVICT_LEN);
    many_rows_job j = {&a, 0, 0, 0, 0, 0, 0};

    /* 1. evict before the chunk arrives, then append. */
    kvu_pool_run(pool, par_copy ? S : 1, append_worker, &j);
    c->held += atomic_load(&j.delta);
    if (c->held > c->held_peak) c->held_peak = c->held;
    if (atomic_load(&j.failed)) {
        c->attn_ms += kvu_now_ms() - t0;
        return kvu_fail(err, KVP_ERR_NOMEM, "cache: out of memory (layer %d)", layer);
    }

    /* 2. outputs, row maxima and normalisers. */
    j.row_tile = c->attn_bf16 ? ROW_TILE_BF16 : ROW_TILE;
    j.n_tiles = (n_new + j.row_tile - 1) / j.row_tile;
    atomic_store(&j.next, 0);
    kvu_pool_run(pool, work > PAR_MIN_WORK ? H * j.n_tiles : 1, rows_worker, &j);

    /* 3. scores: owned column blocks, so every column is reduced by one
     * thread in row order. */
    if (scored) {
        j.max_blocks = (a.max_len + COL_BLOCK - 1) / COL_BLOCK;
        const int64_t rows = n_new - c->blk_row_begin;
        const bool par_score = (int64_t)H * rows * kv_len * d > PAR_MIN_WORK;
        atomic_store(&j.next, 0);
        kvu_pool_run(pool, par_score ? S * j.max_blocks : 1, score_worker, &j);
    }

    /* 4. evict to budget (prefill; decode when decode_evict). */
    if (c->blk_post_evict && layerwise) {
        int64_t r = kvc_layer_evict(c, layer, 0, a.slack);
        if (r > 0) failed++;
        else c->held += r;
    } else if (c->blk_post_evict) {
        atomic_store(&j.next, 0);
        atomic_store(&j.delta, 0);
        kvu_pool_run(pool, n_new > PAR_MIN_EVICT_ROWS || kv_len > PAR_MIN_EVICT_LEN ? S : 1,
                     evict_worker, &j);
        c->held += atomic_load(&j.delta);
    }
    c->attn_ms += kvu_now_ms() - t0;
    if (atomic_load(&j.failed) || failed)
        return kvu_fail(err, KVP_ERR_NOMEM, "cache: out of memory (layer %d)", layer);
    return KVP_OK;
}

void kvc_set_attn_bf16(kvp_cache *c, bool on) { c->attn_bf16 = on && kvk_attn_bf16_active(c->head_dim); }
