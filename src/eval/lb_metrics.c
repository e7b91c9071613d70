#include "kvprune_eval/lb_metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/pystr.h"
#include "util/error.h"

/* ------------------------------------------------------------ datasets --- */

static const struct {
    const char *name;
    kvlb_metric metric;
} dataset_metrics[] = {
    {"narrativeqa", KVLB_QA_F1},        {"qasper", KVLB_QA_F1},
    {"multifieldqa_en", KVLB_QA_F1},    {"multifieldqa_zh", KVLB_QA_F1_ZH},
    {"hotpotqa", KVLB_QA_F1},           {"2wikimqa", KVLB_QA_F1},
    {"musique", KVLB_QA_F1},            {"dureader", KVLB_ROUGE_ZH},
    {"gov_report", KVLB_ROUGE},         {"qmsum", KVLB_ROUGE},
    {"multi_news", KVLB_ROUGE},         {"vcsum", KVLB_ROUGE_ZH},
    {"trec", KVLB_CLASSIFICATION},      {"triviaqa", KVLB_QA_F1},
    {"samsum", KVLB_ROUGE},             {"lsht", KVLB_CLASSIFICATION},
    {"passage_retrieval_en", KVLB_RETRIEVAL}, {"passage_count", KVLB_COUNT},
    {"passage_retrieval_zh", KVLB_RETRIEVAL_ZH}, {"lcc", KVLB_CODE_SIM},
    {"repobench-p", KVLB_CODE_SIM},
};

bool kvlb_dataset_metric(const char *dataset, kvlb_metric *m) {
    for (size_t i = 0; i < sizeof dataset_metrics / sizeof dataset_metrics[0]; i++)
        if (!strcmp(dataset_metrics[i].name, dataset)) {
            if (m) *m = dataset_metrics[i].metric;
            return true;
        }
    return false;
}

const char *kvlb_metric_name(kvlb_metric m) {
    static const char *const names[] = {"qa_f1",          "qa_f1_zh",  "rouge",
                                        "rouge_zh",       "classification", "retrieval",
                                        "retrieval_zh",   "count",     "code_sim"};
    return (unsigned)m < sizeof names / sizeof names[0] ? names[m] : "?";
}

bool kvlb_dataset_first_line(const char *d) {
    return !strcmp(d, "trec") || !strcmp(d, "triviaqa") || !strcmp(d, "samsum") ||
           !strcmp(d, "lsht");
}

void kvlb_first_line(const char *s, size_t len, size_t *start, size_t *line_len) {
    size_t b = 0;
    while (b < len && s[b] == '\n') b++;
    const char *nl = memchr(s + b, '\n', len - b);
    *start = b;
    *line_len = nl ? (size_t)(nl - (s + b)) : len - b;
}

/* --------------------------------------------------------------- words --- */

/* A list of words as slices into buffers the caller owns. */
typedef struct slice {
    const char *p;
    size_t n;
} slice;

typedef struct slices {
    slice *v;
    size_t n, cap;
} slices;

static bool slices_push(slices *s, const char *p, size_t n) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        slice *nv = realloc(s->v, nc * sizeof *nv);
        if (!nv) return false;
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = (slice){p, n};
    return true;
}

/* str.split(): runs of non-whitespace. */
static bool split_ws(const char *s, size_t len, slices *out) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, adv;
    while (i < len) {
        while (i < len && kvpy_isspace(kvpy_utf8_next(u + i, len - i, &adv))) i += adv;
        if (i >= len) break;
        size_t b = i;
        while (i < len && !kvpy_isspace(kvpy_utf8_next(u + i, len - i, &adv))) i += adv;
        if (!slices_push(out, s + b, i - b)) return false;
    }
    return true;
}

static int slice_cmp(const void *a, const void *b) {
    const slice *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    if (c) return c;
    return (x->n > y->n) - (x->n < y->n);
}

/* LongBench's f1_score: Counter(pred) & Counter(gt). Sorts both lists. */
static double f1_slices(slices *p, slices *g) {
    if (p->n > 1) qsort(p->v, p->n, sizeof *p->v, slice_cmp);
    if (g->n > 1) qsort(g->v, g->n, sizeof *g->v, slice_cmp);
    size_t same = 0, i = 0, j = 0;
    while (i < p->n && j < g->n) {
        int c = slice_cmp(&p->v[i], &g->v[j]);
        if (c == 0) {
            same++;
            i++;
            j++;
        } else if (c < 0) {
            i++;
        } else {
            j++;
        }
    }
    if (same == 0) return 0.0;
    double precision = 1.0 * (double)same / (double)p->n;
    double recall = 1.0 * (double)same / (double)g->n;
    return (2 * precision * recall) / (precision + recall);
}

double kvlb_token_f1(char *const *pred, size_t n_pred, char *const *gt, size_t n_gt) {
    slices p = {0}, g = {0};
    bool ok = true;
    for (size_t i = 0; i < n_pred && ok; i++) ok = slices_push(&p, pred[i], strlen(pred[i]));
    for (size_t i = 0; i < n_gt && ok; i++) ok = slices_push(&g, gt[i], strlen(gt[i]));
    double f = ok ? f1_slices(&p, &g) : NAN;
    free(p.v);
    free(g.v);
    return f;
}

/* ---------------------------------------------------------------- qa_f1 --- */

static bool ascii_punct(uint32_t c) {
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
           (c >= 123 && c <= 126);
}

static kvp_status oom(kvp_error *err) { return kvu_fail(err, KVP_ERR_NOMEM, "out of memory"); }

/* normalize_answer: lower, drop string.punctuation, re.sub(r"\b(a|an|the)\b",
 * " "), " ".join(split()). Returns malloc'ed UTF-8. */
static char *normalize_en(const char *s, size_t len, size_t *out_len) {
    uint32_t *cp = NULL, *lo = NULL;
    size_t n, ln;
    char *res = NULL;
    if (!kvpy_decode(s, len, &cp, &n) || !kvpy_lower(cp, n, &lo, &ln)) goto out;
    size_t k = 0;
    for (size_t i = 0; i < ln; i++)
        if (!ascii_punct(lo[i])) lo[k++] = lo[i];
    ln = k;
    /* Articles: scanned left to right on the punctuation-free text like
     * re.sub; "a" is tried before "an" (at most one can end at a \b). */
    uint32_t *ar = malloc((ln + 1) * sizeof *ar);
    if (!ar) goto out;
    size_t an = 0;
    for (size_t p = 0; p < ln;) {
        size_t m = 0;
        if ((lo[p] == 'a' || lo[p] == 't') && (p == 0 || !kvpy_isword(lo[p - 1]))) {
            static const char *const arts[] = {"a", "an", "the"};
            for (int a = 0; a < 3 && !m; a++) {
                size_t al = strlen(arts[a]), q;
                if (p + al > ln) continue;
                for (q = 0; q < al && lo[p + q] == (uint32_t)arts[a][q]; q++) {}
                if (q == al && (p + al == ln || !kvpy_isword(lo[p + al]))) m = al;
            }
        }
        if (m) {
            ar[an++] = ' ';
            p += m;
        } else {
            ar[an++] = lo[p++];
        }
    }
    /* " ".join(text.split()) */
    k = 0;
    for (size_t i = 0; i < an;) {
        while (i < an && kvpy_isspace(ar[i])) i++;
        if (i >= an) break;
        if (k) ar[k++] = ' ';
        while (i < an && !kvpy_isspace(ar[i])) ar[k++] = ar[i++];
    }
    res = kvpy_encode(ar, k, out_len);
    free(ar);
out:
    free(cp);
    free(lo);
    return res;
}

kvp_status kvlb_qa_f1(const char *pred, size_t pred_len, const char *gt, size_t gt_len,
                      double *score, kvp_error *err) {
    size_t pl, gl;
    char *np = normalize_en(pred, pred_len, &pl);
    char *ng = normalize_en(gt, gt_len, &gl);
    slices p = {0}, g = {0};
    kvp_status st = KVP_OK;
    if (!np || !ng || !split_ws(np, pl, &p) || !split_ws(ng, gl, &g))
        st = oom(err);
    else
        *score = f1_slices(&p, &g);
    free(p.v);
    free(g.v);
    free(np);
    free(ng);
    return st;
}

/* normalize_zh_answer on one token: lower, drop ASCII and Chinese
 * punctuation, drop all whitespace. */
static const char zh_punct_utf8[] =
    "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏.";

static bool zh_punct(uint32_t c) {
    if (c < 0x80) return ascii_punct(c);
    const unsigned char *u = (const unsigned char *)zh_punct_utf8;
    size_t n = sizeof zh_punct_utf8 - 1, adv;
    for (size_t i = 0; i < n; i += adv)
        if (kvpy_utf8_next(u + i, n - i, &adv) == c) return true;
    return false;
}

static char *normalize_zh(const char *s, size_t len) {
    uint32_t *cp = NULL, *lo = NULL;
    size_t n, ln;
    char *res = NULL;
    if (kvpy_decode(s, len, &cp, &n) && kvpy_lower(cp, n, &lo, &ln)) {
        size_t k = 0;
        for (size_t i = 0; i < ln; i++)
            if (!zh_punct(lo[i]) && !kvpy_isspace(lo[i])) lo[k++] = lo[i];
        res = kvpy_encode(lo, k, NULL);
    }
    free(cp);
    free(lo);
    return res;
}

static kvp_status cut(const kvlb_score_opts *o, const char *s, size_t len, char ***w, size_t *n,
                      kvp_error *err) {
    if (!o || !o->cutter || !o->cutter->cut)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "the Chinese metrics need jieba's dictionary (a kvlb_cutter)");
    return o->cutter->cut(o->cutter->user, s, len, w, n, err);
}

static kvp_status qa_f1_zh(const char *pred, size_t pred_len, const char *gt, size_t gt_len,
                           const kvlb_score_opts *o, double *score, kvp_error *err) {
    char **w[2] = {NULL, NULL};
    size_t nw[2] = {0, 0};
    char **norm[2] = {NULL, NULL};
    size_t nn[2] = {0, 0};
    kvp_status st = cut(o, pred, pred_len, &w[0], &nw[0], err);
    if (st == KVP_OK) st = cut(o, gt, gt_len, &w[1], &nw[1], err);
    for (int s = 0; s < 2 && st == KVP_OK; s++) {
        norm[s] = calloc(nw[s] + 1, sizeof *norm[s]);
        if (!norm[s]) {
            st = oom(err);
            break;
        }
        for (size_t i = 0; i < nw[s]; i++) {
            char *t = normalize_zh(w[s][i], strlen(w[s][i]));
            if (!t) {
                st = oom(err);
                break;
            }
            if (*t)
                norm[s][nn[s]++] = t;
            else
                free(t);
        }
    }
    if (st == KVP_OK) {
        double f = kvlb_token_f1(norm[0], nn[0], norm[1], nn[1]);
        if (isnan(f))
            st = oom(err);
        else
            *score = f;
    }
    for (int s = 0; s < 2; s++) {
        if (w[s]) o->cutter->free_words(w[s], nw[s]);
        for (size_t i = 0; i < nn[s]; i++) free(norm[s][i]);
        free(norm[s]);
    }
    return st;
}

/* ---------------------------------------------------------------- rouge --- */

/* Word interning: each distinct word gets a small integer id. */
typedef struct interner {
    const char **keys;
    size_t *lens;
    int32_t *slot;  /* hash table of ids, -1 empty */
    size_t cap, n;
} interner;

static uint64_t hash_bytes(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

static bool intern_grow(interner *t) {
    size_t nc = t->cap ? t->cap * 2 : 256;
    int32_t *slot = malloc(nc * sizeof *slot);
    const char **keys = realloc(t->keys, nc / 2 * sizeof *keys);
    if (keys) t->keys = keys;
    size_t *lens = realloc(t->lens, nc / 2 * sizeof *lens);
    if (lens) t->lens = lens;
    if (!slot || !keys || !lens) {
        free(slot);
        return false;
    }
    for (size_t i = 0; i < nc; i++) slot[i] = -1;
    for (size_t id = 0; id < t->n; id++) {
        size_t h = (size_t)hash_bytes(t->keys[id], t->lens[id]) & (nc - 1);
        while (slot[h] >= 0) h = (h + 1) & (nc - 1);
        slot[h] = (int32_t)id;
    }
    free(t->slot);
    t->slot = slot;
    t->cap = nc;
    return true;
}

static int32_t intern(interner *t, const char *p, size_t n) {
    if ((t->n + 1) * 2 > t->cap && !intern_grow(t)) return -1;
    size_t h = (size_t)hash_bytes(p, n) & (t->cap - 1);
    while (t->slot[h] >= 0) {
        int32_t id = t->slot[h];
        if (t->lens[id] == n && memcmp(t->keys[id], p, n) == 0) return id;
        h = (h + 1) & (t->cap - 1);
    }
    t->keys[t->n] = p;
    t->lens[t->n] = n;
    t->slot[h] = (int32_t)t->n;
    return (int32_t)t->n++;
}

/* Sentences of a text as the package builds them: split on ".", drop empty
 * pieces, words of " ".join(piece.split()).split(" ") (a piece of only
 * whitespace is one empty word). */
typedef struct sentences {
    int32_t *words;
    size_t n_words, cap;
    size_t *start;  /* n + 1 offsets into words */
    size_t n;
} sentences;

static bool sentences_build(const char *s, size_t len, interner *t, sentences *out) {
    memset(out, 0, sizeof *out);
    size_t n_pieces = 1;
    for (size_t i = 0; i < len; i++) n_pieces += s[i] == '.';
    out->start = malloc((n_pieces + 1) * sizeof *out->start);
    if (!out->start) return false;
    slices w = {0};
    bool ok = true;
    for (size_t b = 0; b <= len && ok;) {
        const char *dot = memchr(s + b, '.', len - b);
        size_t e = dot ? (size_t)(dot - s) : len;
        if (e > b) {
            w.n = 0;
            ok = split_ws(s + b, e - b, &w);
            if (ok && w.n == 0) ok = slices_push(&w, s + b, 0);
            out->start[out->n] = out->n_words;
            for (size_t k = 0; k < w.n && ok; k++) {
                if (out->n_words == out->cap) {
                    size_t nc = out->cap ? out->cap * 2 : 64;
                    int32_t *nw = realloc(out->words, nc * sizeof *nw);
                    if (!nw) {
                        ok = false;
                        break;
                    }
                    out->words = nw;
                    out->cap = nc;
                }
                int32_t id = intern(t, w.v[k].p, w.v[k].n);
                if (id < 0) ok = false;
                out->words[out->n_words++] = id;
            }
            out->n++;
        }
        if (!dot) break;
        b = e + 1;
    }
    out->start[out->n] = out->n_words;
    free(w.v);
    return ok;
}

static void sentences_free(sentences *s) {
    free(s->words);
    free(s->start);
}

/* The LCS table of x (rows) and y (columns) is walked back from
 * (nx, ny) the way _recon does: diagonal on equal words, up when the cell
 * above is larger, else left. Rows are kept every k-th (k ~ sqrt(nx)) and a
 * block of k rows is recomputed from its checkpoint while walking it, so
 * memory is O(sqrt(nx) * ny), not O(nx * ny). Marks the words on the path
 * in `mark` (indexed by word id) and returns the number of _recon calls
 * (path steps + 1), or 0 when out of memory. */
static size_t lcs_walk(const int32_t *x, size_t nx, const int32_t *y, size_t ny,
                       unsigned char *mark, size_t *union_n) {
    size_t k = 1;
    while (k * k < nx) k++;
    size_t w = ny + 1, n_ck = nx / k + 1;
    int32_t *ck = malloc(n_ck * w * sizeof *ck);
    int32_t *blk = malloc((k + 1) * w * sizeof *blk);
    if (!ck || !blk) {
        free(ck);
        free(blk);
        return 0;
    }
    /* Forward pass, two rows at a time in blk. */
    int32_t *prev = blk, *cur = blk + w;
    memset(prev, 0, w * sizeof *prev);
    memcpy(ck, prev, w * sizeof *ck);
    for (size_t i = 1; i <= nx; i++) {
        cur[0] = 0;
        int32_t xi = x[i - 1];
        for (size_t j = 1; j <= ny; j++)
            cur[j] = xi == y[j - 1] ? prev[j - 1] + 1
                                    : (prev[j] > cur[j - 1] ? prev[j] : cur[j - 1]);
        if (i % k == 0) memcpy(ck + (i / k) * w, cur, w * sizeof *ck);
        int32_t *t = prev;
        prev = cur;
        cur = t;
    }
    size_t i = nx, j = ny, calls = 1;
    while (i > 0 && j > 0) {
        size_t b = (i - 1) / k, base = b * k, top = base + k < nx ? base + k : nx;
        memcpy(blk, ck + b * w, w * sizeof *blk);
        for (size_t r = base + 1; r <= top; r++) {
            int32_t *pr = blk + (r - base - 1) * w, *cr = blk + (r - base) * w;
            int32_t xi = x[r - 1];
            cr[0] = 0;
            for (size_t q = 1; q <= ny; q++)
                cr[q] = xi == y[q - 1] ? pr[q - 1] + 1 : (pr[q] > cr[q - 1] ? pr[q] : cr[q - 1]);
        }
        while (i > base && j > 0) {
            const int32_t *cr = blk + (i - base) * w, *pr = cr - w;
            if (x[i - 1] == y[j - 1]) {
                if (!mark[x[i - 1]]) {
                    mark[x[i - 1]] = 1;
                    (*union_n)++;
                }
                i--;
                j--;
            } else if (pr[j] > cr[j - 1]) {
                i--;
            } else {
                j--;
            }
            calls++;
        }
    }
    free(ck);
    free(blk);
    return calls;
}

kvp_status kvlb_rouge_l(const char *hyp, size_t hyp_len, const char *ref, size_t ref_len,
                        bool exact, double *score, bool *raised, kvp_error *err) {
    *score = 0.0;
    *raised = false;
    interner t = {0};
    sentences hs, rs;
    unsigned char *mark = NULL, *seen = NULL;
    kvp_status st = KVP_OK;
    bool okh = sentences_build(hyp, hyp_len, &t, &hs);
    bool okr = sentences_build(ref, ref_len, &t, &rs);
    if (!okh || !okr) {
        st = oom(err);
        goto out;
    }
    if (hs.n == 0 || rs.n == 0) { /* "Hypothesis is empty." / "Reference is empty." */
        *raised = true;
        goto out;
    }
    mark = calloc(t.n + 1, 1);
    seen = calloc(t.n + 1, 1);
    if (!mark || !seen) {
        st = oom(err);
        goto out;
    }
    size_t m = 0, n = 0;
    for (size_t i = 0; i < rs.n_words; i++)
        if (!seen[rs.words[i]]) seen[rs.words[i]] = 1, m++;
    memset(seen, 0, t.n + 1);
    for (size_t i = 0; i < hs.n_words; i++)
        if (!seen[hs.words[i]]) seen[hs.words[i]] = 1, n++;
    size_t llcs = 0;
    for (size_t r = 0; r < rs.n; r++)
        for (size_t h = 0; h < hs.n; h++) {
            size_t calls = lcs_walk(rs.words + rs.start[r], rs.start[r + 1] - rs.start[r],
                                    hs.words + hs.start[h], hs.start[h + 1] - hs.start[h], mark,
                                    &llcs);
            if (calls == 0) {
                st = oom(err);
                goto out;
            }
            if (!exact && calls > KVLB_ROUGE_MAX_RECON_CALLS) {
                *raised = true;
                goto out;
            }
        }
    double r_lcs = (double)llcs / (double)m, p_lcs = (double)llcs / (double)n;
    *score = 2.0 * ((p_lcs * r_lcs) / (p_lcs + r_lcs + 1e-8));
out:
    if (okh) sentences_free(&hs);
    if (okr) sentences_free(&rs);
    free(mark);
    free(seen);
    free(t.keys);
    free(t.lens);
    free(t.slot);
    return st;
}

/* " ".join(jieba.cut(s)) */
static kvp_status cut_join(const kvlb_score_opts *o, const char *s, size_t len, char **out,
                           size_t *out_len, kvp_error *err) {
    char **w = NULL;
    size_t nw = 0;
    kvp_status st = cut(o, s, len, &w, &nw, err);
    if (st != KVP_OK) return st;
    size_t total = nw + 1;
    for (size_t i = 0; i < nw; i++) total += strlen(w[i]);
    char *b = malloc(total);
    if (!b) {
        o->cutter->free_words(w, nw);
        return oom(err);
    }
    size_t k = 0;
    for (size_t i = 0; i < nw; i++) {
        if (i) b[k++] = ' ';
        size_t l = strlen(w[i]);
        memcpy(b + k, w[i], l);
        k += l;
    }
    b[k] = '\0';
    o->cutter->free_words(w, nw);
    *out = b;
    *out_len = k;
    return KVP_OK;
}

/* ------------------------------------------------------- classification --- */

static bool contains(const char *h, size_t hn, const char *n, size_t nn) {
    if (nn == 0) return true;
    if (nn > hn) return false;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == n[0] && memcmp(h + i, n, nn) == 0) return true;
    return false;
}

kvp_status kvlb_classification(const char *pred, size_t pred_len, const char *gt,
                               char *const *all_classes, size_t n_classes, double *score,
                               kvp_error *err) {
    if (!all_classes)
        return kvu_fail(err, KVP_ERR_FORMAT,
                        "classification needs 'all_classes' (it is null in the file's last row)");
    size_t gl = strlen(gt);
    const char **list = malloc((n_classes + 1) * sizeof *list);
    if (!list) return oom(err);
    size_t n = 0;
    for (size_t c = 0; c < n_classes; c++)
        if (contains(pred, pred_len, all_classes[c], strlen(all_classes[c])))
            list[n++] = all_classes[c];
    /* for match_term in em_match_list: ... em_match_list.remove(match_term)
     * -- Python's list iterator walks indices, so removing the current
     * element skips the next one; remove() drops the first equal item. */
    for (size_t idx = 0; idx < n; idx++) {
        const char *term = list[idx];
        if (contains(gt, gl, term, strlen(term)) && strcmp(term, gt) != 0) {
            size_t first = 0;
            while (strcmp(list[first], term) != 0) first++;
            memmove(list + first, list + first + 1, (n - first - 1) * sizeof *list);
            n--;
        }
    }
    bool in = false;
    for (size_t i = 0; i < n && !in; i++) in = strcmp(list[i], gt) == 0;
    *score = in ? 1.0 / (double)n : 0.0;
    free(list);
    return KVP_OK;
}

/* ------------------------------------------------- retrieval and count --- */

/* re.findall(r"\d+", s): runs of decimal digits as slices. */
static bool digit_runs(const char *s, size_t len, slices *out) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, adv;
    while (i < len) {
        if (!kvpy_isdecimal(kvpy_utf8_next(u + i, len - i, &adv))) {
            i += adv;
            continue;
        }
        size_t b = i;
        while (i < len && kvpy_isdecimal(kvpy_utf8_next(u + i, len - i, &adv))) i += adv;
        if (!slices_push(out, s + b, i - b)) return false;
    }
    return true;
}

kvp_status kvlb_number_match(const char *pred, size_t pred_len, const char *gt, size_t gt_len,
                             const char *prefix, double *score, kvp_error *err) {
    slice want = {gt, gt_len};
    if (prefix) {
        /* re.findall(prefix + r"(\d+)", gt)[0] */
        size_t pl = strlen(prefix), adv;
        const unsigned char *u = (const unsigned char *)gt;
        bool found = false;
        for (size_t i = 0; i + pl <= gt_len && !found; i++) {
            if (memcmp(gt + i, prefix, pl) != 0) continue;
            size_t e = i + pl;
            while (e < gt_len && kvpy_isdecimal(kvpy_utf8_next(u + e, gt_len - e, &adv))) e += adv;
            if (e > i + pl) {
                want = (slice){gt + i + pl, e - i - pl};
                found = true;
            }
        }
        if (!found)
            return kvu_fail(err, KVP_ERR_FORMAT, "the answer '%.60s' has no '%s<number>'", gt,
                            prefix);
    }
    slices nums = {0};
    if (!digit_runs(pred, pred_len, &nums)) return oom(err);
    size_t right = 0;
    for (size_t i = 0; i < nums.n; i++) right += slice_cmp(&nums.v[i], &want) == 0;
    *score = nums.n == 0 ? 0.0 : (double)right / (double)nums.n;
    free(nums.v);
    return KVP_OK;
}

/* ------------------------------------------------------------ code_sim --- */

int kvlb_fuzz_ratio(const char *a, size_t a_len, const char *b, size_t b_len, bool *oom_out) {
    *oom_out = false;
    /* fuzz.ratio's decorators: equal strings 100, then an empty one 0. */
    if (a_len == b_len && memcmp(a, b, a_len) == 0) return 100;
    if (a_len == 0 || b_len == 0) return 0;
    uint32_t *x = NULL, *y = NULL;
    size_t nx, ny;
    int32_t *row = NULL;
    int res = 0;
    if (!kvpy_decode(a, a_len, &x, &nx) || !kvpy_decode(b, b_len, &y, &ny)) goto fail;
    if (nx < ny) { /* the shorter string indexes the row */
        uint32_t *t = x;
        x = y;
        y = t;
        size_t tn = nx;
        nx = ny;
        ny = tn;
    }
    row = calloc(ny + 1, sizeof *row);
    if (!row) goto fail;
    /* Levenshtein.ratio = (lensum - indel distance) / lensum, and the indel
     * distance is lensum - 2 * LCS. */
    for (size_t i = 1; i <= nx; i++) {
        int32_t diag = 0;
        for (size_t j = 1; j <= ny; j++) {
            int32_t up = row[j];
            row[j] = x[i - 1] == y[j - 1] ? diag + 1 : (up > row[j - 1] ? up : row[j - 1]);
            diag = up;
        }
    }
    size_t lensum = nx + ny, dist = lensum - 2 * (size_t)row[ny];
    double r = (double)(lensum - dist) / (double)lensum;
    res = (int)rint(100 * r); /* utils.intr: int(round(x)), half to even */
    free(x);
    free(y);
    free(row);
    return res;
fail:
    free(x);
    free(y);
    free(row);
    *oom_out = true;
    return 0;
}

kvp_status kvlb_code_sim(const char *pred, size_t pred_len, const char *gt, size_t gt_len,
                         double *score, kvp_error *err) {
    size_t b = 0;
    while (b < pred_len && pred[b] == '\n') b++;
    const char *line = "";
    size_t ll = 0;
    for (size_t p = b; p <= pred_len;) {
        const char *nl = memchr(pred + p, '\n', pred_len - p);
        size_t e = nl ? (size_t)(nl - pred) : pred_len;
        const char *l = pred + p;
        size_t n = e - p;
        if (!memchr(l, '`', n) && !memchr(l, '#', n) && !contains(l, n, "//", 2)) {
            line = l;
            ll = n;
            break;
        }
        if (!nl) break;
        p = e + 1;
    }
    bool fail;
    int r = kvlb_fuzz_ratio(line, ll, gt, gt_len, &fail);
    if (fail) return oom(err);
    *score = (double)r / 100;
    return KVP_OK;
}

/* ---------------------------------------------------------------- score --- */

kvp_status kvlb_score(kvlb_metric m, const char *pred, size_t pred_len, const char *gt,
                      size_t gt_len, char *const *all_classes, size_t n_classes,
                      const kvlb_score_opts *opts, double *score, kvp_error *err) {
    bool exact = opts && opts->rouge_exact, raised;
    *score = 0.0;
    switch (m) {
    case KVLB_QA_F1:
        return kvlb_qa_f1(pred, pred_len, gt, gt_len, score, err);
    case KVLB_QA_F1_ZH:
        return qa_f1_zh(pred, pred_len, gt, gt_len, opts, score, err);
    case KVLB_ROUGE:
        return kvlb_rouge_l(pred, pred_len, gt, gt_len, exact, score, &raised, err);
    case KVLB_ROUGE_ZH: {
        char *p = NULL, *g = NULL;
        size_t pl = 0, gl = 0;
        kvp_status st = cut_join(opts, pred, pred_len, &p, &pl, err);
        if (st == KVP_OK) st = cut_join(opts, gt, gt_len, &g, &gl, err);
        if (st == KVP_OK) st = kvlb_rouge_l(p, pl, g, gl, exact, score, &raised, err);
        free(p);
        free(g);
        return st;
    }
    case KVLB_CLASSIFICATION:
        return kvlb_classification(pred, pred_len, gt, all_classes, n_classes, score, err);
    case KVLB_RETRIEVAL:
        return kvlb_number_match(pred, pred_len, gt, gt_len, "Paragraph ", score, err);
    case KVLB_RETRIEVAL_ZH:
        return kvlb_number_match(pred, pred_len, gt, gt_len, "段落", score, err);
    case KVLB_COUNT:
        return kvlb_number_match(pred, pred_len, gt, gt_len, NULL, score, err);
    case KVLB_CODE_SIM:
        return kvlb_code_sim(pred, pred_len, gt, gt_len, score, err);
    }
    return kvu_fail(err, KVP_ERR_INVALID_ARG, "unknown metric %d", (int)m);
}

/* ---------------------------------------------------------------- numpy --- */

/* numpy's pairwise_sum for float64 (blocks of 128, 8 accumulators). */
static double pairwise_sum(const double *a, size_t n) {
    if (n < 8) {
        double res = 0.;
        for (size_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; j++) r[j] = a[j];
        size_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + (size_t)j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

double kvlb_np_mean(const double *x, size_t n) {
    if (n == 0) return NAN;
    return (0.0 + pairwise_sum(x, n)) / (double)n;
}

double kvlb_np_round2(double x) {
    if (!isfinite(x)) return x;
    double y = rint(x * 100.0) / 100.0;
    return y;
}
