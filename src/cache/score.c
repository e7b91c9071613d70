/* The spec's method math (docs/cache.md: the per-token scores and
 * "Eviction") as plain functions over column reductions, plus the
 * standalone scorer kvp_score_tokens. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cache/policy.h"
#include "util/error.h"

double kvc_value_norm(const float *v, int d, int p) {
    double s = 0.0;
    if (p == 1)
        for (int t = 0; t < d; t++) s += fabs((double)v[t]);
    else
        for (int t = 0; t < d; t++) s += (double)v[t] * (double)v[t];
    return s;
}

double kvc_selection_score(const kvc_method *m, double sattn, double vnorm,
                           double skey) {
    double s = 0.0;
    if (m->use_attn) s = m->use_vnorm ? sattn * vnorm : sattn;
    if (m->use_key) s += skey;
    return s;
}

void kvc_selection_scores(const kvc_method *m, const double *sattn, const double *vnorm,
                          const double *skey, const int32_t *row, int n, double *out) {
    for (int i = 0; i < n; i++) {
        const int j = row[i];
        out[i] = kvc_selection_score(m, sattn[j], vnorm[j], skey[j]);
    }
}

static double max_of(const double *x, int n) {
    double m = -INFINITY; /* the -inf padding never wins; NaN never does */
    for (int t = 0; t < n; t++)
        if (x[t] > m) m = x[t];
    return m;
}

void kvc_pool_scores(kvc_pool pool, const double *in, int n, double *out) {
    if (pool == KVC_POOL_MAX) {
        for (int j = 0; j < n; j++) {
            if (j >= 3 && j + 3 < n) { /* whole window: a fixed-length loop */
                out[j] = max_of(in + j - 3, 7);
                continue;
            }
            int lo = j - 3 < 0 ? 0 : j - 3, hi = j + 3 >= n ? n - 1 : j + 3;
            out[j] = max_of(in + lo, hi - lo + 1);
        }
    } else if (pool == KVC_POOL_AVG) {
        for (int j = 0; j < n; j++) {
            int lo = j - 3 < 0 ? 0 : j - 3, hi = j + 3 >= n ? n - 1 : j + 3;
            double s = 0.0; /* zero padding, always divided by 7 */
            for (int t = lo; t <= hi; t++) s += in[t];
            out[j] = s / 7.0;
        }
    } else {
        memcpy(out, in, sizeof(double) * (size_t)n);
    }
}

typedef struct ranked {
    double s;
    int32_t i;
} ranked;

/* Higher score first, then lower index: a total order, so the choice never
 * depends on the sort algorithm. NaN ranks last. */
static int rank_cmp(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    if (a->s > b->s) return -1;
    if (a->s < b->s) return 1;
    return a->i < b->i ? -1 : (a->i > b->i);
}

static double clean(double s) { return isnan(s) ? -INFINITY : s; }

int kvc_select(kvc_pool pool, const double *score, int L, int n_recent,
               int n_heavy, int num_sink, int num_coming, int32_t *keep) {
    if (n_recent < 0 || (int64_t)L + num_coming <= (int64_t)n_recent + n_heavy) {
        for (int j = 0; j < L; j++) keep[j] = j;
        return L;
    }
    int recent = n_recent - num_coming;
    if (recent < 0) recent = 0;
    if (recent > L) recent = L;
    int heavy = n_heavy - (num_coming > n_recent ? num_coming - n_recent : 0);
    if (heavy < 0) heavy = 0;
    int n_cand = L - recent;
    if (heavy > n_cand) heavy = n_cand;
    int sinks = num_sink < heavy ? num_sink : heavy;
    int n = 0;
    for (int j = 0; j < sinks; j++) keep[n++] = j;
    int want = heavy - sinks, pool_n = n_cand - sinks;
    if (want > 0 && want == pool_n) {
        for (int j = sinks; j < n_cand; j++) keep[n++] = j;
    } else if (want > 0) {
        double *pooled = malloc(sizeof(double) * (size_t)n_cand);
        if (!pooled) return -1;
        if (score) kvc_pool_scores(pool, score, n_cand, pooled);
        else memset(pooled, 0, sizeof(double) * (size_t)n_cand);
        if (want == pool_n - 1) {
            /* One eviction (decode): drop the lowest rank, i.e. the lowest
             * score and, among equals, the highest index. */
            int worst = sinks;
            for (int j = sinks + 1; j < n_cand; j++)
                if (clean(pooled[j]) <= clean(pooled[worst])) worst = j;
            for (int j = sinks; j < n_cand; j++)
                if (j != worst) keep[n++] = j;
        } else {
            ranked *r = malloc(sizeof(ranked) * (size_t)pool_n);
            unsigned char *chosen = calloc((size_t)n_cand, 1);
            if (!r || !chosen) {
                free(r);
                free(chosen);
                free(pooled);
                return -1;
            }
            for (int j = sinks; j < n_cand; j++) {
                r[j - sinks].s = clean(pooled[j]);
                r[j - sinks].i = j;
            }
            qsort(r, (size_t)pool_n, sizeof *r, rank_cmp);
            for (int t = 0; t < want; t++) chosen[r[t].i] = 1;
            for (int j = sinks; j < n_cand; j++)
                if (chosen[j]) keep[n++] = j;
            free(r);
            free(chosen);
        }
        free(pooled);
    }
    for (int j = n_cand; j < L; j++) keep[n++] = j;
    return n;
}

void kvc_colreduce_arrays(const kvc_method *m, const float *attn,
                          const float *logits, const float *values,
                          const float *outputs, int n_q, int n_kv, int d,
                          int row_begin, double *col_attn, double *col_key) {
    for (int i = row_begin; i < n_q; i++) {
        const float *oi = outputs + (size_t)i * d;
        double o2 = 0.0;
        for (int t = 0; t < d; t++) o2 += (double)oi[t] * oi[t];
        for (int j = 0; j < n_kv; j++) {
            double a = attn[(size_t)i * n_kv + j];
            if (m->use_attn) col_attn[j] += m->p == 1 ? a : a * a;
            if (m->use_key) {
                const float *vj = values + (size_t)j * d;
                double z = logits[(size_t)i * n_kv + j], vo = 0.0, v2 = 0.0;
                for (int t = 0; t < d; t++) {
                    vo += (double)vj[t] * oi[t];
                    v2 += (double)vj[t] * vj[t];
                }
                double s = (a * z) * (a * z) * (v2 + o2 - 2.0 * vo);
                if (m->use_cross) s += 2.0 * a * a * z * (v2 - vo);
                col_key[j] += s;
            }
        }
    }
}

kvp_status kvp_score_tokens(const char *method, const kvp_score_input *in,
                            int n_recent, int n_heavy, int num_sink,
                            float *scores, int32_t *kept, int *n_kept,
                            kvp_error *err) {
    kvc_method m;
    kvp_status st = kvc_method_parse(method, &m, err);
    if (st != KVP_OK) return st;
    if (!in || in->n_q <= 0 || in->n_kv <= 0 || in->head_dim <= 0)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "kvp_score_tokens: n_q, n_kv and head_dim must be > 0");
    if (m.kind == KVC_KIND_SCORED &&
        (!in->attn || !in->values || (m.use_key && (!in->logits || !in->outputs))))
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "kvp_score_tokens: method %s needs attn, values%s",
                        m.name, m.use_key ? ", logits and outputs" : "");
    if (n_recent < 0 || n_heavy < 0 || num_sink < 0)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "kvp_score_tokens: budgets must be >= 0 (got %d, %d, "
                        "sink %d)",
                        n_recent, n_heavy, num_sink);
    int n_kv = in->n_kv, d = in->head_dim;
    double *ca = calloc((size_t)n_kv, sizeof(double));
    double *ck = calloc((size_t)n_kv, sizeof(double));
    double *sc = malloc(sizeof(double) * (size_t)n_kv);
    int32_t *kp = malloc(sizeof(int32_t) * (size_t)n_kv);
    if (!ca || !ck || !sc || !kp) {
        st = kvu_fail(err, KVP_ERR_NOMEM, "kvp_score_tokens: out of memory");
        goto done;
    }
    if (m.kind == KVC_KIND_SCORED) {
        int w = in->window;
        int row_begin = (w <= 0 || w > in->n_q) ? 0 : in->n_q - w;
        kvc_colreduce_arrays(&m, in->attn, in->logits, in->values, in->outputs,
                             in->n_q, n_kv, d, row_begin, ca, ck);
        for (int j = 0; j < n_kv; j++) {
            double vn = m.use_vnorm
                            ? kvc_value_norm(in->values + (size_t)j * d, d, m.p)
                            : 0.0;
            sc[j] = kvc_selection_score(&m, ca[j], vn, ck[j]);
        }
    } else {
        memset(sc, 0, sizeof(double) * (size_t)n_kv);
    }
    int n;
    if (m.kind == KVC_KIND_FULL)
        n = kvc_select(KVC_POOL_NONE, NULL, n_kv, -1, 0, 0, 0, kp);
    else
        n = kvc_select(m.pool, m.kind == KVC_KIND_SCORED ? sc : NULL, n_kv,
                       n_recent, n_heavy,
                       m.kind == KVC_KIND_SINK ? n_heavy : num_sink, 0, kp);
    if (n < 0) {
        st = kvu_fail(err, KVP_ERR_NOMEM, "kvp_score_tokens: out of memory");
        goto done;
    }
    if (scores)
        for (int j = 0; j < n_kv; j++) scores[j] = (float)sc[j];
    if (kept) memcpy(kept, kp, sizeof(int32_t) * (size_t)n);
    if (n_kept) *n_kept = n;
done:
    free(ca);
    free(ck);
    free(sc);
    free(kp);
    return st;
}
