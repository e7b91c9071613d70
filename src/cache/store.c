/* Stream storage: growth, the one-row drop of a decode step, compaction
 * after a many-token eviction, and the eviction of one stream to its
 * budget (store.h describes the layout). */
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

int kvc_stream_evict(const kvp_cache *c, kvc_stream *s, int num_coming, int slack) {
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
