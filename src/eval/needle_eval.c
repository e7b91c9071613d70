#include "eval/needle_eval.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/jsonl.h"
#include "eval/metrics.h"
#include "eval/plot_svg.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

void kvev_needle_parse_exp_name(const char *name, char **method, double *ratio,
                               bool *no_decode_evict) {
    static const char suffix[] = "-no_decode_evict";
    size_t n = strlen(name), ls = sizeof suffix - 1;
    *no_decode_evict = n > ls && strcmp(name + n - ls, suffix) == 0;
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
        kvev_needle_parse_exp_name(e->name, &e->method, &e->ratio, &e->no_decode_evict);
        char *exp_dir = kvfile_join(task_dir, e->name);
        char *pred = exp_dir ? kvfile_join(exp_dir, "pred.jsonl") : NULL;
        if (!pred || !e->method) {
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
        return kvu_fail(err, KVP_ERR_IO, "--save-dir: '%s' is not a folder", save_dir);
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

/* Row labels and column ratios of the table/plot. */
typedef struct grid {
    char **rows;
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

static int row_cmp(const char *a, const char *b) {
    size_t ra = method_rank(a), rb = method_rank(b);
    if (ra != rb) return ra < rb ? -1 : 1;
    return strcmp(a, b);
}

static bool grid_build(const kvev_task_scores *t, grid *g) {
    memset(g, 0, sizeof *g);
    g->rows = calloc(t->n + 1, sizeof *g->rows);
    g->cols = calloc(t->n + 1, sizeof *g->cols);
    if (!g->rows || !g->cols) return false;
    for (int pass = 0; pass < 1; pass++)
        for (size_t i = 0; i < t->n; i++) {
            const kvev_exp_score *e = &t->exps[i];
            char *l = row_label(e);
            if (!l) return false;
            bool dup = false;
            for (size_t r = 0; r < g->nr; r++) dup = dup || !strcmp(g->rows[r], l);
            if (dup)
                free(l);
            else
                g->rows[g->nr++] = l;
        }
    /* Rows in the method table's order (full, sink, h2o, tova, snapkv, kvc*),
     * names it does not know after them. */
    for (size_t a = 1; a < g->nr; a++)
        for (size_t b = a; b > 0 && row_cmp(g->rows[b - 1], g->rows[b]) > 0; b--) {
            char *tmp = g->rows[b];
            g->rows[b] = g->rows[b - 1];
            g->rows[b - 1] = tmp;
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
    kvev_strv_free(g->rows, g->nr);
    free(g->cols);
}

/* The experiment shown at (row, ratio), or NULL when there is none. */
static const kvev_exp_score *grid_exp(const kvev_task_scores *t, const char *row, double ratio) {
    for (size_t i = 0; i < t->n; i++) {
        const kvev_exp_score *e = &t->exps[i];
        char *l = row_label(e);
        bool same = l && !strcmp(l, row);
        free(l);
        if (same && (isnan(e->ratio) || e->ratio == ratio)) return e;
    }
    return NULL;
}

/* The score shown for (row, ratio), or NAN when there is none. */
static double grid_value(const kvev_task_scores *t, const char *row, double ratio) {
    const kvev_exp_score *e = grid_exp(t, row, ratio);
    return e ? e->score : NAN;
}

char *kvev_needle_table(const kvev_task_scores *t) {
    grid g;
    if (!grid_build(t, &g)) {
        grid_free(&g);
        return NULL;
    }
    size_t w0 = strlen("method");
    for (size_t r = 0; r < g.nr; r++)
        if (strlen(g.rows[r]) > w0) w0 = strlen(g.rows[r]);
    size_t ncols = g.nc ? g.nc : 1;
    size_t cap = (w0 + 16 * ncols + 8) * (g.nr + 4) + strlen(t->name) + 64, len = 0;
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
    for (size_t c = 0; c < g.nc; c++) {
        char h[40];
        snprintf(h, sizeof h, "cr=%g", g.cols[c]);
        PUT("  %10s", h);
    }
    if (g.nc == 0) PUT("  %10s", "score");
    PUT("\n");
    for (size_t r = 0; r < g.nr; r++) {
        PUT("%-*s", (int)w0, g.rows[r]);
        for (size_t c = 0; c < ncols; c++) {
            const kvev_exp_score *e = grid_exp(t, g.rows[r], g.nc ? g.cols[c] : NAN);
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

kvp_status kvev_needle_plot_ratio(const kvev_task_scores *t, const char *svg_path,
                                 kvp_error *err) {
    grid g;
    if (!grid_build(t, &g)) {
        grid_free(&g);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", svg_path);
    }
    double xmin = 0, xmax = g.nc ? g.cols[g.nc - 1] : 1;
    xmax = xmax > 0 ? xmax * 1.05 : 1;
    kvev_plot_series *se = calloc(g.nr + 1, sizeof *se);
    double *xs = calloc((g.nr + 1) * (g.nc + 2), sizeof *xs);
    double *ys = calloc((g.nr + 1) * (g.nc + 2), sizeof *ys);
    if (!se || !xs || !ys) {
        free(se), free(xs), free(ys);
        grid_free(&g);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", svg_path);
    }
    size_t ns = 0;
    for (size_t r = 0; r < g.nr; r++) {
        double *x = xs + r * (g.nc + 2), *y = ys + r * (g.nc + 2);
        size_t k = 0;
        double ref = grid_value(t, g.rows[r], NAN);
        if (!isnan(ref) && ref >= 0) { /* a method without ratio: reference line */
            x[0] = xmin, y[0] = ref, x[1] = xmax, y[1] = ref;
            se[ns++] = (kvev_plot_series){g.rows[r], x, y, 2, true};
            continue;
        }
        for (size_t c = 0; c < g.nc; c++) {
            double v = grid_value(t, g.rows[r], g.cols[c]);
            if (isnan(v) || v < 0) continue;
            x[k] = g.cols[c];
            y[k] = v;
            k++;
        }
        if (k) se[ns++] = (kvev_plot_series){g.rows[r], x, y, k, false};
    }
    char title[300];
    snprintf(title, sizeof title, "Needle retrieval accuracy vs cache ratio (%s)", t->name);
    kvev_line_plot p = {title, "cache ratio (kept fraction of the prompt, + recent tokens)",
                       "accuracy (string_match_all, %)", xmin, xmax, -2, 102, g.cols, g.nc};
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
