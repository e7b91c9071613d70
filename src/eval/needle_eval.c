#include "kvprune_eval/needle_eval.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kvprune_eval/jsonl.h"
#include "kvprune_eval/metrics.h"
#include "kvprune_eval/plot_svg.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

/* A number as the tags write it: digits, '.', 'e', '+', '-' (a finite
 * strtod of the whole span). */
static bool tag_number(const char *s, size_t n) {
    char buf[48];
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    double v = strtod(buf, &end);
    return *end == '\0' && isfinite(v) && (buf[0] >= '0' && buf[0] <= '9');
}

/* True when s[0..n) is an allocation tag: '+'-joined parts "adaptive" or
 * "adaptive_sg<x>", "pyramid" or "pyramid_beta<x>", each at most once. */
static bool is_alloc_tag(const char *s, size_t n) {
    bool seen_a = false, seen_p = false;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != '+') j++;
        const char *part = s + i;
        size_t len = j - i;
        static const char ad[] = "adaptive", py[] = "pyramid";
        if (len >= sizeof ad - 1 && !strncmp(part, ad, sizeof ad - 1) && !seen_a) {
            size_t rest = len - (sizeof ad - 1);
            const char *r = part + sizeof ad - 1;
            if (rest && !(rest > 3 && !strncmp(r, "_sg", 3) && tag_number(r + 3, rest - 3)))
                return false;
            seen_a = true;
        } else if (len >= sizeof py - 1 && !strncmp(part, py, sizeof py - 1) && !seen_p) {
            size_t rest = len - (sizeof py - 1);
            const char *r = part + sizeof py - 1;
            if (rest && !(rest > 5 && !strncmp(r, "_beta", 5) && tag_number(r + 5, rest - 5)))
                return false;
            seen_p = true;
        } else {
            return false;
        }
        if (j == n) return true;
        i = j + 1;
        if (i == n) return false; /* a trailing '+' */
    }
    return false;
}

/* "<method>-cr<ratio>[-no_decode_evict]" in name[0..n): the method's
 * length, the ratio (NAN when there is none) and the suffix. */
static size_t split_ratio(const char *name, size_t n, double *ratio, bool *no_decode_evict) {
    static const char suffix[] = "-no_decode_evict";
    size_t ls = sizeof suffix - 1;
    *no_decode_evict = n > ls && strncmp(name + n - ls, suffix, ls) == 0;
    if (*no_decode_evict) n -= ls;
    *ratio = NAN;
    size_t mlen = n;
    for (size_t i = n; i-- > 0;) {
        if (i + 3 <= n && strncmp(name + i, "-cr", 3) == 0) {
            char buf[64];
            size_t k = n - i - 3;
            if (k == 0 || k >= sizeof buf) break;
            memcpy(buf, name + i + 3, k);
            buf[k] = '\0';
            char *end;
            double r = strtod(buf, &end);
            if (*end == '\0' && isfinite(r)) {
                *ratio = r;
                mlen = i;
            }
            break;
        }
    }
    return mlen;
}

void kvev_needle_parse_exp_name(const char *name, char **method, double *ratio,
                               bool *no_decode_evict, char **alloc) {
    size_t n = strlen(name), mlen;
    /* The allocation tag is the last '-' part, after the ratio; a name with
     * no ratio before it has no allocation (the tag is part of the name). */
    const char *dash = strrchr(name, '-');
    if (dash && is_alloc_tag(dash + 1, strlen(dash + 1))) {
        mlen = split_ratio(name, (size_t)(dash - name), ratio, no_decode_evict);
        if (!isnan(*ratio)) {
            *alloc = strdup(dash + 1);
            *method = strndup(name, mlen);
            return;
        }
    }
    mlen = split_ratio(name, n, ratio, no_decode_evict);
    *alloc = strdup("uniform");
    *method = strndup(name, mlen);
}

kvp_status kvev_needle_score_file(const char *pred_path, double *score, size_t *n,
                                 kvp_error *err) {
    size_t torn = 0;
    kvp_status st = kvev_needle_score_partial(pred_path, score, n, &torn, err);
    if (st != KVP_OK) return st;
    if (torn) return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: torn last line", pred_path, torn);
    if (*n == 0) return kvu_fail(err, KVP_ERR_FORMAT, "%s: no predictions", pred_path);
    return KVP_OK;
}

kvp_status kvev_needle_score_partial(const char *pred_path, double *score, size_t *n,
                                     size_t *torn_line, kvp_error *err) {
    *score = -1;
    *n = 0;
    kvev_jsonl j;
    kvp_status st = kvev_jsonl_read_partial(pred_path, &j, torn_line, err);
    if (st != KVP_OK) return st;
    kvev_match_acc acc = {0, 0};
    for (size_t i = 0; i < j.n; i++) {
        const json_t *o = j.items[i].value;
        size_t line = j.items[i].line;
        const char *resp;
        json_t *rv = json_object_get(o, "response");
        st = kvev_json_get_string(o, rv ? "response" : "pred", true, pred_path, line, &resp, err);
        if (st != KVP_OK) break;
        size_t resp_len = json_string_length(json_object_get(o, rv ? "response" : "pred"));
        char **refs;
        size_t nr;
        st = kvev_json_get_string_list(o, "outputs", pred_path, line, &refs, &nr, err);
        if (st != KVP_OK) break;
        double f = kvev_match_fraction(resp, resp_len, refs, NULL, nr);
        kvev_strv_free(refs, nr);
        if (f == -1) {
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: field 'outputs' is empty", pred_path,
                          line);
            break;
        }
        if (f < 0) {
            st = kvu_fail(err, KVP_ERR_NOMEM, "%s:%zu: out of memory", pred_path, line);
            break;
        }
        acc.sum += f;
        acc.n++;
    }
    kvev_jsonl_free(&j);
    if (st != KVP_OK) return st;
    if (acc.n > 0) *score = kvev_match_acc_score(&acc);
    *n = acc.n;
    return KVP_OK;
}

bool kvev_exp_complete(const kvev_exp_score *e) {
    return !e->error && e->n_samples > 0 && e->n_samples >= e->n_expected && !e->torn_line;
}

/* The sample count pred recorded for an experiment (its run.json), 0 when
 * there is none; out of memory is an error, not "none". */
static kvp_status recorded_samples(const char *exp_dir, size_t *n, kvp_error *err) {
    *n = 0;
    char *path = kvfile_join(exp_dir, "run.json");
    if (!path) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", exp_dir);
    json_error_t je;
    json_t *o = kvu_json_load_file(path, 0, &je);
    free(path);
    if (!o && kvu_json_oom(&je))
        return kvu_fail(err, KVP_ERR_NOMEM, "%s/run.json: out of memory", exp_dir);
    json_t *v = json_object_get(o, "samples");
    if (json_is_integer(v) && json_integer_value(v) > 0) *n = (size_t)json_integer_value(v);
    json_decref(o);
    return KVP_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the sub-folders of dir (hidden ones skipped). */
static kvp_status list_subdirs(const char *dir, char ***out, size_t *n, kvp_error *err) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return kvu_fail(err, KVP_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    size_t cap = 0;
    struct dirent *e;
    kvp_status st = KVP_OK;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = kvfile_join(dir, e->d_name);
        if (!p) {
            st = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        bool sub = kvfile_is_dir(p);
        free(p);
        if (!sub) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(*out, cap * sizeof *nv);
            if (!nv) {
                st = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", dir);
                break;
            }
            *out = nv;
        }
        (*out)[*n] = strdup(e->d_name);
        if (!(*out)[*n]) {
            st = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (st != KVP_OK) {
        kvev_strv_free(*out, *n);
        *out = NULL;
        *n = 0;
        return st;
    }
    if (*n) qsort(*out, *n, sizeof **out, cmp_str);
    return KVP_OK;
}

static void task_free_one(kvev_task_scores *t) {
    for (size_t i = 0; i < t->n; i++) {
        free(t->exps[i].name);
        free(t->exps[i].method);
        free(t->exps[i].alloc);
        free(t->exps[i].error);
    }
    free(t->exps);
    free(t->name);
    free(t->dir);
}

void kvev_task_scores_free(kvev_task_scores *t, size_t n) {
    if (!t) return;
    for (size_t i = 0; i < n; i++) task_free_one(&t[i]);
    free(t);
}

kvp_status kvev_needle_score_task(const char *task_dir, const char *task_name,
                                 kvev_task_scores *out, kvp_error *err) {
    memset(out, 0, sizeof *out);
    char **subs;
    size_t ns;
    kvp_status st = list_subdirs(task_dir, &subs, &ns, err);
    if (st != KVP_OK) return st;
    out->name = strdup(task_name);
    out->dir = strdup(task_dir);
    out->exps = calloc(ns ? ns : 1, sizeof *out->exps);
    if (!out->name || !out->dir || !out->exps) {
        kvev_strv_free(subs, ns);
        task_free_one(out);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", task_dir);
    }
    for (size_t i = 0; i < ns && st == KVP_OK; i++) {
        kvev_exp_score *e = &out->exps[out->n++];
        e->name = subs[i];
        subs[i] = NULL;
        kvev_needle_parse_exp_name(e->name, &e->method, &e->ratio, &e->no_decode_evict,
                                  &e->alloc);
        char *exp_dir = kvfile_join(task_dir, e->name);
        char *pred = exp_dir ? kvfile_join(exp_dir, "pred.jsonl") : NULL;
        if (!pred || !e->method || !e->alloc) {
            free(exp_dir);
            free(pred);
            st = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", task_dir);
            break;
        }
        st = recorded_samples(exp_dir, &e->n_expected, err);
        free(exp_dir);
        if (st != KVP_OK) {
            free(pred);
            break;
        }
        e->score = -1;
        if (kvfile_is_file(pred)) {
            kvp_error ferr = {0};
            kvp_status fs = kvev_needle_score_partial(pred, &e->score, &e->n_samples,
                                                      &e->torn_line, &ferr);
            if (fs == KVP_ERR_NOMEM) {
                st = err ? (*err = ferr, fs) : fs;
            } else if (fs != KVP_OK) {
                /* one bad file is that experiment's problem, not the sweep's */
                e->score = -1;
                e->n_samples = 0;
                e->error = strdup(ferr.message);
                if (!e->error) st = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", task_dir);
            }
        }
        free(pred);
    }
    kvev_strv_free(subs, ns);
    if (st != KVP_OK) {
        task_free_one(out);
        return st;
    }
    /* Folders pred did not describe (older runs): the task's largest count. */
    size_t most = 0;
    for (size_t i = 0; i < out->n; i++)
        if (out->exps[i].n_samples > most) most = out->exps[i].n_samples;
    for (size_t i = 0; i < out->n; i++)
        if (out->exps[i].n_expected == 0) out->exps[i].n_expected = most;
    return KVP_OK;
}

kvp_status kvev_needle_scan(const char *save_dir, kvev_task_scores **tasks, size_t *n,
                           kvp_error *err) {
    *tasks = NULL;
    *n = 0;
    if (!kvfile_is_dir(save_dir))
        return kvu_fail(err, KVP_ERR_IO, "save_dir: '%s' is not a folder", save_dir);
    char **subs;
    size_t ns;
    kvp_status st = list_subdirs(save_dir, &subs, &ns, err);
    if (st != KVP_OK) return st;
    kvev_task_scores *t = calloc(ns ? ns : 1, sizeof *t);
    if (!t) {
        kvev_strv_free(subs, ns);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", save_dir);
    }
    size_t nt = 0;
    for (size_t i = 0; i < ns && st == KVP_OK; i++) {
        char *dir = kvfile_join(save_dir, subs[i]);
        char **inner = NULL;
        size_t ni = 0;
        if (!dir) {
            st = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", save_dir);
            break;
        }
        st = list_subdirs(dir, &inner, &ni, err);
        kvev_strv_free(inner, ni);
        if (st == KVP_OK && ni > 0) {
            st = kvev_needle_score_task(dir, subs[i], &t[nt], err);
            if (st == KVP_OK) nt++;
        }
        free(dir);
    }
    kvev_strv_free(subs, ns);
    if (st != KVP_OK) {
        kvev_task_scores_free(t, nt);
        return st;
    }
    *tasks = t;
    *n = nt;
    return KVP_OK;
}

/* A growing string (result.json, the table). */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool failed;
} sbuf;

static void sb_put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_put(sbuf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 256) + (size_t)n;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->failed = true;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
}

/* A JSON string literal as Python's json.dumps writes it (ASCII only). */
static bool sb_json_str(sbuf *b, const char *text) {
    json_t *k = json_string(text);
    char *ks = k ? json_dumps(k, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
    json_decref(k);
    if (!ks) return false;
    sb_put(b, "%s", ks);
    free(ks);
    return true;
}

kvp_status kvev_needle_write_result(const kvev_task_scores *t, kvp_error *err) {
    sbuf b = {0};
    sb_put(&b, "{\n");
    bool ok = true;
    for (size_t i = 0; i < t->n && ok; i++) {
        char num[40];
        if (t->exps[i].score == -1)
            snprintf(num, sizeof num, "-1");
        else
            kvev_py_float_repr(t->exps[i].score, num, sizeof num);
        sb_put(&b, "    ");
        ok = sb_json_str(&b, t->exps[i].name);
        sb_put(&b, ": %s,\n", num);
    }
    sb_put(&b, "    \"_samples\": {%s", t->n ? "\n" : "}\n");
    for (size_t i = 0; i < t->n && ok; i++) {
        const kvev_exp_score *e = &t->exps[i];
        sb_put(&b, "        ");
        ok = sb_json_str(&b, e->name);
        sb_put(&b, ": {\n            \"scored\": %zu,\n            \"expected\": %zu,\n"
                   "            \"complete\": %s",
               e->n_samples, e->n_expected, kvev_exp_complete(e) ? "true" : "false");
        if (e->error) {
            sb_put(&b, ",\n            \"error\": ");
            ok = ok && sb_json_str(&b, e->error);
        }
        sb_put(&b, "\n        }%s\n", i + 1 < t->n ? "," : "");
    }
    if (t->n) sb_put(&b, "    }\n");
    sb_put(&b, "}");
    char *path = kvfile_join(t->dir, "result.json");
    if (!ok || b.failed || !path) {
        free(b.s);
        free(path);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", t->dir);
    }
    kvp_status st = kvu_write_file_atomic(path, b.s, b.len, err);
    free(path);
    free(b.s);
    return st;
}

bool kvev_task_has_allocs(const kvev_task_scores *t) {
    for (size_t i = 0; i < t->n; i++)
        if (t->exps[i].alloc && strcmp(t->exps[i].alloc, "uniform")) return true;
    return false;
}

/* Rows (method label, allocation) and column ratios of the table/plot. */
typedef struct grid {
    char **rows;    /* "h2o", "snapkv no_decode_evict"                       */
    char **allocs;  /* per row: "uniform", "adaptive", ...                   */
    size_t nr;
    double *cols;
    size_t nc;
} grid;

static char *row_label(const kvev_exp_score *e) {
    size_t n = strlen(e->method) + 24;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s", e->method, e->no_decode_evict ? " no_decode_evict" : "");
    return s;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static size_t method_rank(const char *label) {
    size_t len = strcspn(label, " ");
    const char *const *names = kvp_cache_method_names();
    size_t i;
    for (i = 0; names[i]; i++)
        if (strlen(names[i]) == len && !strncmp(names[i], label, len)) return i;
    return i;
}

/* uniform, adaptive, pyramid, adaptive+pyramid, then the others by name. */
static size_t alloc_rank(const char *alloc) {
    static const char *const order[] = {"uniform", "adaptive", "pyramid", "adaptive+pyramid"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (!strcmp(alloc, order[i])) return i;
    return sizeof order / sizeof order[0];
}

static int row_cmp(const char *a, const char *aa, const char *b, const char *ba) {
    size_t ra = method_rank(a), rb = method_rank(b);
    if (ra != rb) return ra < rb ? -1 : 1;
    int c = strcmp(a, b);
    if (c) return c;
    ra = alloc_rank(aa), rb = alloc_rank(ba);
    if (ra != rb) return ra < rb ? -1 : 1;
    return strcmp(aa, ba);
}

static bool grid_build(const kvev_task_scores *t, grid *g) {
    memset(g, 0, sizeof *g);
    g->rows = calloc(t->n + 1, sizeof *g->rows);
    g->allocs = calloc(t->n + 1, sizeof *g->allocs);
    g->cols = calloc(t->n + 1, sizeof *g->cols);
    if (!g->rows || !g->allocs || !g->cols) return false;
    for (size_t i = 0; i < t->n; i++) {
        const kvev_exp_score *e = &t->exps[i];
        char *l = row_label(e);
        if (!l) return false;
        bool dup = false;
        for (size_t r = 0; r < g->nr; r++)
            dup = dup || (!strcmp(g->rows[r], l) && !strcmp(g->allocs[r], e->alloc));
        if (dup) {
            free(l);
            continue;
        }
        g->allocs[g->nr] = strdup(e->alloc);
        g->rows[g->nr++] = l;
        if (!g->allocs[g->nr - 1]) return false;
    }
    /* Rows in the method table's order (full, sink, h2o, tova, snapkv, kvc*),
     * names it does not know after them; allocations in their order. */
    for (size_t a = 1; a < g->nr; a++)
        for (size_t b = a; b > 0 && row_cmp(g->rows[b - 1], g->allocs[b - 1], g->rows[b],
                                            g->allocs[b]) > 0; b--) {
            char *tmp = g->rows[b];
            g->rows[b] = g->rows[b - 1];
            g->rows[b - 1] = tmp;
            tmp = g->allocs[b];
            g->allocs[b] = g->allocs[b - 1];
            g->allocs[b - 1] = tmp;
        }
    for (size_t i = 0; i < t->n; i++) {
        double r = t->exps[i].ratio;
        if (isnan(r)) continue;
        bool dup = false;
        for (size_t c = 0; c < g->nc; c++) dup = dup || g->cols[c] == r;
        if (!dup) g->cols[g->nc++] = r;
    }
    qsort(g->cols, g->nc, sizeof *g->cols, cmp_double);
    return true;
}

static void grid_free(grid *g) {
    if (g->rows) kvev_strv_free(g->rows, g->nr);
    if (g->allocs) kvev_strv_free(g->allocs, g->nr);
    free(g->cols);
}

/* The experiment shown at (row, ratio), or NULL when there is none. */
static const kvev_exp_score *grid_exp(const kvev_task_scores *t, const grid *g, size_t row,
                                      double ratio) {
    for (size_t i = 0; i < t->n; i++) {
        const kvev_exp_score *e = &t->exps[i];
        if (strcmp(e->alloc, g->allocs[row])) continue;
        char *l = row_label(e);
        bool same = l && !strcmp(l, g->rows[row]);
        free(l);
        if (same && (isnan(e->ratio) || e->ratio == ratio)) return e;
    }
    return NULL;
}

/* The score shown for (row, ratio), or NAN when there is none. */
static double grid_value(const kvev_task_scores *t, const grid *g, size_t row, double ratio) {
    const kvev_exp_score *e = grid_exp(t, g, row, ratio);
    return e ? e->score : NAN;
}

/* A row of a method without a ratio (full): a reference level. */
static bool grid_is_reference(const kvev_task_scores *t, const grid *g, size_t row) {
    const kvev_exp_score *e = grid_exp(t, g, row, NAN);
    return e && isnan(e->ratio);
}

char *kvev_needle_table(const kvev_task_scores *t) {
    grid g;
    if (!grid_build(t, &g)) {
        grid_free(&g);
        return NULL;
    }
    bool with_alloc = kvev_task_has_allocs(t);
    size_t w0 = strlen("method"), w1 = strlen("alloc");
    for (size_t r = 0; r < g.nr; r++) {
        if (strlen(g.rows[r]) > w0) w0 = strlen(g.rows[r]);
        if (strlen(g.allocs[r]) > w1) w1 = strlen(g.allocs[r]);
    }
    size_t ncols = g.nc ? g.nc : 1;
    size_t cap = (w0 + w1 + 16 * ncols + 8) * (g.nr + 4) + strlen(t->name) + 64, len = 0;
    for (size_t i = 0; i < t->n; i++)
        cap += strlen(t->exps[i].name) + (t->exps[i].error ? strlen(t->exps[i].error) : 0) + 96;
    char *s = malloc(cap);
    if (!s) {
        grid_free(&g);
        return NULL;
    }
#define PUT(...) len += (size_t)snprintf(s + len, cap - len, __VA_ARGS__)
    PUT("task %s (string_match_all, %%)\n", t->name);
    PUT("%-*s", (int)w0, "method");
    if (with_alloc) PUT("  %-*s", (int)w1, "alloc");
    for (size_t c = 0; c < g.nc; c++) {
        char h[40];
        snprintf(h, sizeof h, "cr=%g", g.cols[c]);
        PUT("  %10s", h);
    }
    if (g.nc == 0) PUT("  %10s", "score");
    PUT("\n");
    for (size_t r = 0; r < g.nr; r++) {
        PUT("%-*s", (int)w0, g.rows[r]);
        if (with_alloc)
            PUT("  %-*s", (int)w1, grid_is_reference(t, &g, r) ? "-" : g.allocs[r]);
        for (size_t c = 0; c < ncols; c++) {
            const kvev_exp_score *e = grid_exp(t, &g, r, g.nc ? g.cols[c] : NAN);
            double v = e ? e->score : NAN;
            char cell[40];
            if (isnan(v))
                PUT("  %10s", "-");
            else if (e->error)
                PUT("  %10s", "error");
            else if (v == -1)
                PUT("  %10s", "missing");
            else {
                snprintf(cell, sizeof cell, "%.2f%s", v, kvev_exp_complete(e) ? "" : "*");
                PUT("  %10s", cell);
            }
        }
        PUT("\n");
    }
    /* How many samples each score covers; the incomplete ones by name. */
    size_t most = 0;
    bool all_complete = true;
    for (size_t i = 0; i < t->n; i++) {
        if (t->exps[i].n_expected > most) most = t->exps[i].n_expected;
        all_complete = all_complete && kvev_exp_complete(&t->exps[i]);
    }
    if (all_complete && t->n) PUT("every score covers its %zu samples\n", most);
    for (size_t i = 0; i < t->n && !all_complete; i++) {
        const kvev_exp_score *e = &t->exps[i];
        if (kvev_exp_complete(e)) continue;
        if (e->error)
            PUT("error: %s: %s\n", e->name, e->error);
        else
            PUT("* %s: %zu of %zu samples%s\n", e->name, e->n_samples, e->n_expected,
                e->torn_line ? " (a torn last line ignored)" : "");
    }
#undef PUT
    grid_free(&g);
    return s;
}

/* Row r's points (ratio, score) over the columns with a score, or for a
 * reference row a level from xmin to xmax; false when it has none. */
static bool row_series(const kvev_task_scores *t, const grid *g, size_t r, double xmin,
                       double xmax, double *x, double *y, kvev_plot_series *out) {
    double ref = grid_value(t, g, r, NAN);
    if (grid_is_reference(t, g, r)) {
        if (ref < 0) return false;
        x[0] = xmin, y[0] = ref, x[1] = xmax, y[1] = ref;
        *out = (kvev_plot_series){g->rows[r], x, y, 2, true};
        return true;
    }
    size_t k = 0;
    for (size_t c = 0; c < g->nc; c++) {
        double v = grid_value(t, g, r, g->cols[c]);
        if (isnan(v) || v < 0) continue;
        x[k] = g->cols[c];
        y[k] = v;
        k++;
    }
    *out = (kvev_plot_series){g->rows[r], x, y, k, false};
    return k > 0;
}

/* One panel per method label with one line per allocation; the reference
 * rows (full) are dashed in every panel. */
static kvp_status plot_panels(const kvev_task_scores *t, const grid *g, const char *svg_path,
                              const kvev_line_plot *p, double xmin, double xmax, kvp_error *err) {
    size_t nr = g->nr, per = g->nc + 2;
    kvev_plot_series *se = calloc(nr * (nr + 1) + 1, sizeof *se);
    kvev_plot_panel *panels = calloc(nr + 1, sizeof *panels);
    const char **legend = calloc(nr + 1, sizeof *legend);
    double *xs = calloc((nr + 1) * per, sizeof *xs), *ys = calloc((nr + 1) * per, sizeof *ys);
    kvp_status st = KVP_OK;
    if (!se || !panels || !legend || !xs || !ys) {
        st = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", svg_path);
        goto out;
    }
    /* Legend: the allocations in their order (so an allocation keeps its
     * colour from plot to plot), then the reference rows. */
    size_t nl = 0, n_alloc = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t r = 0; r < nr; r++) {
            bool ref = grid_is_reference(t, g, r);
            if (ref != (pass == 1)) continue;
            const char *l = ref ? g->rows[r] : g->allocs[r];
            bool dup = false;
            for (size_t k = 0; k < nl; k++) dup = dup || !strcmp(legend[k], l);
            if (dup) continue;
            legend[nl++] = l;
            if (!ref) n_alloc = nl;
        }
    for (size_t a = 1; a < n_alloc; a++)
        for (size_t b = a; b > 0; b--) {
            size_t ra = alloc_rank(legend[b - 1]), rb = alloc_rank(legend[b]);
            if (ra < rb || (ra == rb && strcmp(legend[b - 1], legend[b]) <= 0)) break;
            const char *tmp = legend[b];
            legend[b] = legend[b - 1];
            legend[b - 1] = tmp;
        }
    size_t np = 0, ns = 0;
    for (size_t r = 0; r < nr; r++) {
        if (grid_is_reference(t, g, r)) continue;
        if (np && !strcmp(panels[np - 1].title, g->rows[r])) continue; /* rows are grouped */
        kvev_plot_panel *pn = &panels[np++];
        pn->title = g->rows[r];
        pn->series = se + ns;
        for (size_t q = r; q < nr && !strcmp(g->rows[q], g->rows[r]); q++) {
            if (grid_is_reference(t, g, q)) continue;
            if (row_series(t, g, q, xmin, xmax, xs + q * per, ys + q * per, &se[ns])) {
                se[ns].label = g->allocs[q];
                ns++;
                pn->n++;
            }
        }
        for (size_t q = 0; q < nr; q++)
            if (grid_is_reference(t, g, q) &&
                row_series(t, g, q, xmin, xmax, xs + q * per, ys + q * per, &se[ns])) {
                ns++;
                pn->n++;
            }
    }
    st = kvev_svg_panel_plot(svg_path, p, panels, np, legend, nl, err);
out:
    free(se), free(panels), free(legend), free(xs), free(ys);
    return st;
}

kvp_status kvev_needle_plot_ratio(const kvev_task_scores *t, const char *svg_path,
                                 kvp_error *err) {
    grid g;
    if (!grid_build(t, &g)) {
        grid_free(&g);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", svg_path);
    }
    double xmin = 0, xmax = g.nc ? g.cols[g.nc - 1] : 1;
    xmax = xmax > 0 ? xmax * 1.05 : 1;
    bool panels = kvev_task_has_allocs(t);
    char title[300];
    snprintf(title, sizeof title, panels ? "Needle retrieval accuracy vs cache ratio by budget "
                                           "allocation (%s)"
                                         : "Needle retrieval accuracy vs cache ratio (%s)",
             t->name);
    kvev_line_plot p = {title, "cache ratio (kept fraction of the prompt, + recent tokens)",
                       "accuracy (string_match_all, %)", xmin, xmax, -2, 102, g.cols, g.nc};
    if (panels) {
        p.xlabel = "cache ratio";
        kvp_status st = plot_panels(t, &g, svg_path, &p, xmin, xmax, err);
        grid_free(&g);
        return st;
    }
    kvev_plot_series *se = calloc(g.nr + 1, sizeof *se);
    double *xs = calloc((g.nr + 1) * (g.nc + 2), sizeof *xs);
    double *ys = calloc((g.nr + 1) * (g.nc + 2), sizeof *ys);
    if (!se || !xs || !ys) {
        free(se), free(xs), free(ys);
        grid_free(&g);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", svg_path);
    }
    size_t ns = 0;
    for (size_t r = 0; r < g.nr; r++)
        if (row_series(&t[0], &g, r, xmin, xmax, xs + r * (g.nc + 2), ys + r * (g.nc + 2),
                       &se[ns]))
            ns++;
    kvp_status st = kvev_svg_line_plot(svg_path, &p, se, ns, err);
    free(se), free(xs), free(ys);
    grid_free(&g);
    return st;
}

static size_t index_of(double *v, size_t *n, double x) {
    for (size_t i = 0; i < *n; i++)
        if (v[i] == x) return i;
    v[*n] = x;
    return (*n)++;
}

kvp_status kvev_needle_plot_heatmap(const char *pred_path, const char *title,
                                   const char *svg_path, kvp_error *err) {
    kvev_jsonl j;
    kvp_status st = kvev_jsonl_read(pred_path, &j, err);
    if (st != KVP_OK) return st;
    size_t n = j.n;
    double *dep = malloc((n + 1) * sizeof *dep), *len = malloc((n + 1) * sizeof *len);
    double *sd = malloc((n + 1) * sizeof *sd), *sl = malloc((n + 1) * sizeof *sl);
    double *frac = malloc((n + 1) * sizeof *frac);
    size_t nd = 0, nl = 0;
    if (!dep || !len || !sd || !sl || !frac) st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == KVP_OK; i++) {
        const json_t *o = j.items[i].value;
        size_t line = j.items[i].line;
        const json_t *others = json_object_get(o, "others");
        const json_t *d = others ? json_object_get(others, "depth") : NULL;
        if (!d || !json_is_number(d)) {
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: missing number 'others.depth' (needed "
                          "for the heatmap)", pred_path, line);
            break;
        }
        const json_t *l = others ? json_object_get(others, "target_length") : NULL;
        if (!l || !json_is_number(l)) l = json_object_get(o, "length");
        if (!l || !json_is_number(l)) {
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: missing number 'others.target_length' or "
                          "'length' (needed for the heatmap)", pred_path, line);
            break;
        }
        dep[i] = json_number_value(d);
        len[i] = json_number_value(l);
        const char *resp;
        json_t *rv = json_object_get(o, "response");
        st = kvev_json_get_string(o, rv ? "response" : "pred", true, pred_path, line, &resp, err);
        if (st != KVP_OK) break;
        char **refs;
        size_t nr;
        st = kvev_json_get_string_list(o, "outputs", pred_path, line, &refs, &nr, err);
        if (st != KVP_OK) break;
        frac[i] = kvev_match_fraction(resp, json_string_length(json_object_get(o, rv ? "response" : "pred")), refs, NULL, nr);
        kvev_strv_free(refs, nr);
        if (frac[i] < 0) {
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: field 'outputs' is empty", pred_path, line);
            break;
        }
        index_of(sd, &nd, dep[i]);
        index_of(sl, &nl, len[i]);
    }
    kvev_match_acc *acc = NULL;
    char **xl = NULL, **yl = NULL;
    double *vals = NULL;
    if (st == KVP_OK && n == 0) st = kvu_fail(err, KVP_ERR_FORMAT, "%s: no predictions", pred_path);
    if (st == KVP_OK) {
        qsort(sd, nd, sizeof *sd, cmp_double);
        qsort(sl, nl, sizeof *sl, cmp_double);
        acc = calloc(nd * nl, sizeof *acc);
        vals = malloc(nd * nl * sizeof *vals);
        xl = calloc(nl, sizeof *xl);
        yl = calloc(nd, sizeof *yl);
        if (!acc || !vals || !xl || !yl) st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    }
    if (st == KVP_OK) {
        for (size_t i = 0; i < n; i++) {
            size_t r = 0, c = 0;
            while (sd[r] != dep[i]) r++;
            while (sl[c] != len[i]) c++;
            acc[r * nl + c].sum += frac[i];
            acc[r * nl + c].n++;
        }
        for (size_t k = 0; k < nd * nl; k++)
            vals[k] = acc[k].n ? kvev_match_acc_score(&acc[k]) : NAN;
        for (size_t c = 0; c < nl; c++) {
            xl[c] = malloc(32);
            if (xl[c]) snprintf(xl[c], 32, "%g", sl[c]);
        }
        for (size_t r = 0; r < nd; r++) {
            yl[r] = malloc(32);
            if (yl[r]) snprintf(yl[r], 32, "%g%%", sd[r]);
        }
        bool ok = true;
        for (size_t c = 0; c < nl; c++) ok = ok && xl[c];
        for (size_t r = 0; r < nd; r++) ok = ok && yl[r];
        if (!ok) st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    }
    if (st == KVP_OK) {
        kvev_heatmap hm = {title, "context length (tokens)", "needle depth",
                          (const char *const *)xl, nl, (const char *const *)yl, nd, vals, 0, 100,
                          "accuracy (%)"};
        st = kvev_svg_heatmap(svg_path, &hm, err);
    }
    if (xl) kvev_strv_free(xl, nl);
    if (yl) kvev_strv_free(yl, nd);
    free(acc), free(vals), free(dep), free(len), free(sd), free(sl), free(frac);
    kvev_jsonl_free(&j);
    return st;
}
