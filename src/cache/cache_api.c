/* The public kvp_cache_* functions (creation, reset, statistics, kept
 * positions, K/V element types) and the small queries of the forward-pass
 * contract (cache.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache.h"
#include "cache/store.h"
#include "kernels/attention.h"
#include "util/error.h"

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
    p.budget_alloc = KVP_BUDGET_UNIFORM;
    p.safeguard = 0.2; /* Ada-KV's alpha */
    p.layer_alloc = KVP_LAYER_UNIFORM;
    p.pyramid_beta = 20.0; /* PyramidKV's beta */
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
    if (!kvp_budget_alloc_name(p.budget_alloc))
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "cache: unknown budget_alloc %d (uniform or adaptive)", (int)p.budget_alloc);
    if (!kvp_layer_alloc_name(p.layer_alloc))
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "cache: unknown layer_alloc %d (uniform or pyramid)", (int)p.layer_alloc);
    /* checked only where used, so params built without
     * kvp_cache_default_params keep working with uniform budgets */
    if (p.budget_alloc == KVP_BUDGET_ADAPTIVE && !(p.safeguard >= 0.0 && p.safeguard <= 1.0))
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "cache: safeguard must be in [0, 1] (got %g)", p.safeguard);
    if (p.layer_alloc == KVP_LAYER_PYRAMID && !(p.pyramid_beta >= 1.0 && p.pyramid_beta <= 1e9))
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "cache: pyramid_beta must be >= 1 (got %g)", p.pyramid_beta);
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
    c->layer_heavy = calloc((size_t)n_layer, sizeof(int));
    c->ev_off = calloc((size_t)c->n_streams, sizeof(size_t));
    c->ev_k = calloc((size_t)c->n_streams, sizeof(int));
    if (!c->streams || !c->layer_heavy || !c->ev_off || !c->ev_k) {
        free(c->streams);
        free(c->layer_heavy);
        free(c->ev_off);
        free(c->ev_k);
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
        kvc_stream_free(&c->streams[i]);
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
    free(c->ev_score);
    free(c->ev_cand);
    free(c->ev_off);
    free(c->ev_k);
    free(c->layer_heavy);
    kvu_pool_free(c->pool);
    free(c);
}

kvp_status kvc_thread_pool(kvp_cache *c, int n_threads, kvu_pool **out, kvp_error *err) {
    if (n_threads < 1) n_threads = 1;
    if (kvu_pool_threads(c->pool) != n_threads) {
        kvu_pool_free(c->pool);
        c->pool = NULL;
        /* One worker needs no threads: the caller runs everything. */
        kvp_status s = n_threads > 1 ? kvu_pool_new(n_threads, &c->pool, err) : KVP_OK;
        if (s) return s;
    }
    *out = c->pool;
    return KVP_OK;
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

kvp_status kvp_cache_get_layer_stats(const kvp_cache *c, int layer, kvp_cache_layer_stats *st,
                                     kvp_error *err) {
    if (!c || !st || layer < 0 || layer >= c->n_layer)
        return kvu_fail(err, KVP_ERR_RANGE, "cache: no layer %d; the cache has %d layers", layer,
                        c ? c->n_layer : 0);
    memset(st, 0, sizeof *st);
    const kvc_stream *ss = &c->streams[(size_t)layer * c->n_streams];
    st->min_kept = ss[0].len;
    for (int s = 0; s < c->n_streams; s++) {
        if (ss[s].len < st->min_kept) st->min_kept = ss[s].len;
        if (ss[s].len > st->max_kept) st->max_kept = ss[s].len;
        st->total_kept += ss[s].len;
    }
    st->mean_kept = (double)st->total_kept / c->n_streams;
    st->num_heavy = c->method.kind == KVC_KIND_FULL ? -1
                    : c->budget_set                 ? c->layer_heavy[layer]
                                                    : 0;
    return KVP_OK;
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
/* ---- kv types ------------------------------------------------------------ */

const char *kvp_kv_type_name(kvp_kv_type t) {
    switch (t) {
    case KVP_KV_F32: return "f32";
    case KVP_KV_F16: return "f16";
    case KVP_KV_BF16: return "bf16";
    }
    return NULL;
}

const char *kvp_budget_alloc_name(kvp_budget_alloc a) {
    switch (a) {
    case KVP_BUDGET_UNIFORM: return "uniform";
    case KVP_BUDGET_ADAPTIVE: return "adaptive";
    }
    return NULL;
}

bool kvp_budget_alloc_parse(const char *name, kvp_budget_alloc *out) {
    if (name && strcmp(name, "uniform") == 0) *out = KVP_BUDGET_UNIFORM;
    else if (name && strcmp(name, "adaptive") == 0) *out = KVP_BUDGET_ADAPTIVE;
    else return false;
    return true;
}

const char *kvp_layer_alloc_name(kvp_layer_alloc a) {
    switch (a) {
    case KVP_LAYER_UNIFORM: return "uniform";
    case KVP_LAYER_PYRAMID: return "pyramid";
    }
    return NULL;
}

bool kvp_layer_alloc_parse(const char *name, kvp_layer_alloc *out) {
    if (name && strcmp(name, "uniform") == 0) *out = KVP_LAYER_UNIFORM;
    else if (name && strcmp(name, "pyramid") == 0) *out = KVP_LAYER_PYRAMID;
    else return false;
    return true;
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
