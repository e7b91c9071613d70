/* Cache files (kvp_cache_save / kvp_cache_load). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store.h"
#include "kernels/attention.h"
#include "model/model.h"
#include "util/error.h"
#include "util/file.h"

/* A cache file (all integers little-endian, as this library only builds on
 * little-endian machines):
 *   "KVPCACHE" u32 version u32 0
 *   u64 model identity (kvm_model_identity)  u32 kv element bytes  u32 kv_type
 *   char method[64]  i32 gqa_mode decode_evict streaming max_tokens
 *   i32 num_recent num_heavy [i32 num_sink: version 2 on; version 1 files
 *   mean 4]  f64 recent_ratio heavy_ratio cache_ratio
 *   [version 3 on: i32 budget_alloc layer_alloc  f64 safeguard pyramid_beta;
 *   older files mean uniform, uniform]
 *   i32 budget_set n_recent n_heavy window num_sink
 *   i32 n_layer n_streams head_dim  i64 n_seen prompt_end held_peak
 *   per stream, layer-major: i32 len, then in position order
 *     i32 pos[len], K rows, V rows (len x head_dim elements each),
 *     f64 sattn[len] skey[len] vnorm[len], f32 v2[len]
 *   u64 n_history, i32 history[n]; u64 app_len, app bytes
 *   u64 FNV-1a of everything before it. */
#define CACHE_MAGIC "KVPCACHE"
#define CACHE_VERSION 3u
/* Versions 1 (no num_sink) and 2 (no budget allocation) are still read. */
#define CACHE_VERSION_MIN 1u
/* Bytes one saved token takes besides its K and V rows: i32 pos, f64
 * sattn, skey, vnorm and f32 v2 (bounds a stream's length by the bytes
 * left before anything is allocated). */
#define SAVED_TOKEN_EXTRA_BYTES (4 + 3 * 8 + 4)

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
    int32_t alloc[] = {(int32_t)p->budget_alloc, (int32_t)p->layer_alloc};
    wput(&b, alloc, sizeof alloc);
    f = p->safeguard;
    WPUT(&b, f);
    f = p->pyramid_beta;
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
    if (!RGET(&b, version) || !RGET(&b, pad) || version < CACHE_VERSION_MIN || version > CACHE_VERSION) {
        st = kvu_fail(err, KVP_ERR_UNSUPPORTED,
                      "%s: cache file format version %u; this build reads versions %u to %u", path, version,
                      CACHE_VERSION_MIN, CACHE_VERSION);
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
    double ratios[3], alloc_f[2] = {0.2, 20.0};
    int32_t alloc[2] = {KVP_BUDGET_UNIFORM, KVP_LAYER_UNIFORM};
    if (!rget(&b, method, sizeof method) || !rget(&b, ints, n_ints * sizeof ints[0]) || !rget(&b, ratios, sizeof ratios) ||
        (version >= 3 && (!rget(&b, alloc, sizeof alloc) || !rget(&b, alloc_f, sizeof alloc_f))) ||
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
    p.budget_alloc = (kvp_budget_alloc)alloc[0];
    p.layer_alloc = (kvp_layer_alloc)alloc[1];
    p.safeguard = alloc_f[0];
    p.pyramid_beta = alloc_f[1];
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
    if (c->budget_set) kvc_set_layer_budgets(c);
    c->n_seen = counts[0];
    c->prompt_end = counts[1];
    c->held = 0;
    const size_t rb = c->row_bytes;
    for (size_t si = 0; si < (size_t)c->n_layer * c->n_streams; si++) {
        kvc_stream *s = &c->streams[si];
        int32_t n;
        if (!RGET(&b, n)) goto trunc;
        if (n < 0 || (size_t)n > (b.n - b.off) / (2 * rb + SAVED_TOKEN_EXTRA_BYTES)) goto trunc;
        if (n > 0 && !kvc_stream_reserve(s, n, rb)) {
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
