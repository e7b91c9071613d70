/* Stream storage: growth, the one-row drop of a decode step, compaction
 * after a many-token eviction, and the eviction of one stream to its
 * budget (store.h describes the layout). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store.h"

/* Smallest capacity a stream allocates: appends of a few decode tokens
 * should not reallocate every step. */
#define STREAM_MIN_CAP 16
/* After compaction, capacity is given back once it exceeds 1.5x what is
 * needed plus this many rows (so a stream hovering at its budget does not
 * reallocate back and forth). */
#define STREAM_SHRINK_MARGIN 64
/* An adaptive eviction taking at most this many tokens from a stream drops
 * them one by one (one row moved each, no allocation: the decode case);
 * more are compacted. */
#define DROP_ONE_MAX 4
/* Per-stream choice of the k most evictable candidates: insertion into a
 * sorted list of k while k is at most this, a full sort beyond. */
#define INSERT_SELECT_MAX 32

void kvc_stream_free(kvc_stream *s) {
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
        kvc_stream_free(s);
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

bool kvc_stream_reserve(kvc_stream *s, int need, size_t rb) {
    if (need <= s->cap) return true;
    int cap = s->cap + s->cap / 2;
    if (cap < need) cap = need;
    if (cap < STREAM_MIN_CAP) cap = STREAM_MIN_CAP;
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
        if (!stream_realloc(&t, n + slack > STREAM_MIN_CAP ? n + slack : STREAM_MIN_CAP, rb)) {
            kvc_stream_free(&t);
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
        kvc_stream_free(s);
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
    if (s->cap > target + target / 2 + STREAM_SHRINK_MARGIN) stream_realloc(s, target, rb);
    return true;
}

int kvc_stream_evict(const kvp_cache *c, int layer, kvc_stream *s, int num_coming, int slack) {
    if (c->method.kind == KVC_KIND_FULL || s->len == 0) return 0;
    const kvc_budget *b = &c->budget;
    int n_heavy, num_sink;
    kvc_layer_budget(c, layer, &n_heavy, &num_sink);
    if ((int64_t)s->len + num_coming <= (int64_t)b->n_recent + n_heavy)
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
    int n = kvc_select(c->method.pool, score, L, b->n_recent, n_heavy,
                       num_sink, num_coming, keep);
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

void kvc_set_layer_budgets(kvp_cache *c) {
    const int h = c->budget.n_heavy;
    if (c->params.layer_alloc == KVP_LAYER_PYRAMID && h > 0)
        kvc_pyramid_split(h, c->n_layer, c->params.pyramid_beta, c->layer_heavy);
    else
        for (int l = 0; l < c->n_layer; l++) c->layer_heavy[l] = h;
}

void kvc_layer_budget(const kvp_cache *c, int layer, int *heavy, int *num_sink) {
    *heavy = c->layer_heavy[layer];
    *num_sink = c->method.kind == KVC_KIND_SINK ? *heavy : c->budget.num_sink;
}

/* A candidate of the adaptive choice: its (pooled) selection score, its
 * absolute position, its stream and its index in the stream. */
typedef struct kvc_cand {
    double s;
    int32_t pos;
    int32_t stream;
    int32_t idx;
} kvc_cand;

/* The eviction order: lower score first, then the newer position, then the
 * higher stream index -- the exact reverse of the keep order (higher score,
 * older position, lower stream). */
static bool evicts_before(const kvc_cand *a, const kvc_cand *b) {
    if (a->s != b->s) return a->s < b->s;
    if (a->pos != b->pos) return a->pos > b->pos;
    return a->stream > b->stream;
}

static int evict_cmp(const void *pa, const void *pb) {
    const kvc_cand *a = pa, *b = pb;
    return evicts_before(a, b) ? -1 : evicts_before(b, a) ? 1 : 0;
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    void *q = realloc(*p, need * elem);
    if (!q) return false;
    *p = q;
    *cap = need;
    return true;
}

/* Writes stream st's k most evictable candidates among its first n_cand
 * tokens, in eviction order, to out[0..k) (out has room for n_cand);
 * score: the candidates' selection scores (pooled, NaN as -inf, sinks as
 * +inf). */
static void most_evictable(const double *score, const kvc_stream *s, int st, int n_cand,
                           int k, kvc_cand *out) {
    if (k <= 0) return;
    if (k > INSERT_SELECT_MAX) {
        for (int j = 0; j < n_cand; j++) out[j] = (kvc_cand){score[j], s->pos[j], st, j};
        qsort(out, (size_t)n_cand, sizeof *out, evict_cmp);
        return;
    }
    int n = 0;
    for (int j = 0; j < n_cand; j++) {
        kvc_cand x = {score[j], s->pos[j], st, j};
        if (n == k && !evicts_before(&x, &out[n - 1])) continue;
        int i = n < k ? n++ : n - 1;
        while (i > 0 && evicts_before(&x, &out[i - 1])) {
            out[i] = out[i - 1];
            i--;
        }
        out[i] = x;
    }
}

/* Drops the n tokens at position indices idx[0..n) (ascending) from s. */
static bool stream_drop(kvc_stream *s, const int32_t *idx, int n, size_t rb, int slack) {
    if (n <= DROP_ONE_MAX) {
        for (int t = n - 1; t >= 0; t--) stream_drop_one(s, idx[t], rb);
        return true;
    }
    int32_t *keep = malloc(sizeof(int32_t) * (size_t)(s->len - n));
    if (!keep) return false;
    int m = 0, t = 0;
    for (int j = 0; j < s->len; j++) {
        if (t < n && idx[t] == j) t++;
        else keep[m++] = j;
    }
    bool ok = stream_compact(s, keep, m, rb, slack);
    free(keep);
    return ok;
}

static int cand_by_stream_idx(const void *pa, const void *pb) {
    const kvc_cand *a = pa, *b = pb;
    if (a->stream != b->stream) return a->stream < b->stream ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

int kvc_layer_evict_plan(kvp_cache *c, int layer, int num_coming, int n_new) {
    c->ev_active = false;
    if (c->method.kind == KVC_KIND_FULL) return 0;
    const int S = c->n_streams;
    const kvc_stream *ss = &c->streams[(size_t)layer * S];
    const int r = c->budget.n_recent;
    int h;
    kvc_layer_budget(c, layer, &h, &c->ev_sink);
    /* the spec's streaming arrival, per stream, as in kvc_select */
    int heavy = h - (num_coming > r ? num_coming - r : 0);
    if (heavy < 0) heavy = 0;
    c->ev_recent = r - num_coming < 0 ? 0 : r - num_coming;
    int64_t total = 0;
    for (int st = 0; st < S; st++) {
        const int len = ss[st].len + n_new;
        const int n_cand = len - (c->ev_recent < len ? c->ev_recent : len);
        c->ev_off[st] = (size_t)total;
        total += n_cand;
    }
    const int64_t B = (int64_t)S * heavy;
    if (total <= B) return 0;
    const int64_t E = total - B; /* tokens the layer gives up */
    const int floor_k = (int)floor(c->params.safeguard * (double)heavy);
    for (int st = 0; st < S; st++) {
        const int len = ss[st].len + n_new;
        int64_t k = len - (c->ev_recent < len ? c->ev_recent : len) - floor_k;
        c->ev_k[st] = (int)(k > E ? E : k > 0 ? k : 0);
    }
    /* scratch: per stream its raw and pooled scores and its candidates */
    if (!grow((void **)&c->ev_score, &c->ev_score_cap, 2 * (size_t)total, sizeof(double)) ||
        !grow((void **)&c->ev_cand, &c->ev_cand_cap, (size_t)total, sizeof(kvc_cand)))
        return -1;
    c->ev_E = E;
    c->ev_active = true;
    return 1;
}

void kvc_layer_evict_collect(kvp_cache *c, int layer, int st) {
    const int k = c->ev_k[st];
    if (!c->ev_active || k <= 0) return;
    const kvc_stream *s = &c->streams[(size_t)layer * c->n_streams + st];
    const int n_cand = s->len - (c->ev_recent < s->len ? c->ev_recent : s->len);
    double *raw = c->ev_score + 2 * c->ev_off[st], *pooled = raw + n_cand;
    if (c->method.kind == KVC_KIND_SCORED) {
        kvc_selection_scores(&c->method, s->sattn, s->vnorm, s->skey, s->slot, n_cand, raw);
        kvc_pool_scores(c->method.pool, raw, n_cand, pooled);
        for (int j = 0; j < n_cand; j++)
            if (isnan(pooled[j])) pooled[j] = -INFINITY;
    } else {
        memset(pooled, 0, sizeof(double) * (size_t)n_cand);
    }
    for (int j = 0; j < c->ev_sink && j < n_cand; j++) pooled[j] = INFINITY;
    most_evictable(pooled, s, st, n_cand, k, c->ev_cand + c->ev_off[st]);
}

int64_t kvc_layer_evict_apply(kvp_cache *c, int layer, int slack) {
    if (!c->ev_active) return 0;
    c->ev_active = false;
    const int S = c->n_streams;
    kvc_stream *ss = &c->streams[(size_t)layer * S];
    /* each stream's most evictable candidates beyond its floor, together;
     * then the layer's E most evictable of those */
    size_t n_list = 0;
    for (int st = 0; st < S; st++) {
        if (c->ev_k[st] <= 0) continue;
        memmove(c->ev_cand + n_list, c->ev_cand + c->ev_off[st], sizeof(kvc_cand) * (size_t)c->ev_k[st]);
        n_list += (size_t)c->ev_k[st];
    }
    const int64_t E = c->ev_E;
    qsort(c->ev_cand, n_list, sizeof(kvc_cand), evict_cmp);
    qsort(c->ev_cand, (size_t)E, sizeof(kvc_cand), cand_by_stream_idx);
    int64_t delta = 0;
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)(E > 0 ? E : 1));
    if (!idx) return 1;
    bool ok = true;
    for (int64_t a = 0; a < E && ok;) {
        int st = c->ev_cand[a].stream, n = 0;
        while (a < E && c->ev_cand[a].stream == st) idx[n++] = c->ev_cand[a++].idx;
        ok = stream_drop(&ss[st], idx, n, c->row_bytes, slack);
        delta -= n;
    }
    free(idx);
    return ok ? delta : 1;
}

int64_t kvc_layer_evict(kvp_cache *c, int layer, int num_coming, int slack) {
    int plan = kvc_layer_evict_plan(c, layer, num_coming, 0);
    if (plan <= 0) return plan < 0 ? 1 : 0;
    for (int st = 0; st < c->n_streams; st++) kvc_layer_evict_collect(c, layer, st);
    return kvc_layer_evict_apply(c, layer, slack);
}
