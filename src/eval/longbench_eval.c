/* LongBench scoring: save_dir/pred[_e]/<exp>/<dataset>-<method>.jsonl ->
 * result.json per experiment and a table (the seed's eval.py). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kvprune_eval/jsonl.h"
#include "kvprune_eval/longbench.h"
#include "kvprune_eval/metrics.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

static kvp_status oom(kvp_error *err) { return kvu_fail(err, KVP_ERR_NOMEM, "out of memory"); }

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir (sorted) that pass keep(). */
static kvp_status list_dir(const char *dir, bool (*keep)(const char *dir, const char *name,
                                                         const void *u),
                           const void *u, char ***out, size_t *n, kvp_error *err) {
    *out = NULL;
    *n = 0;
    DIR *dp = opendir(dir);
    if (!dp) return kvu_fail(err, KVP_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
    struct dirent *de;
    size_t cap = 0;
    kvp_status st = KVP_OK;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.' || !keep(dir, de->d_name, u)) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(*out, cap * sizeof *nv);
            if (!nv) {
                st = oom(err);
                break;
            }
            *out = nv;
        }
        if (!((*out)[*n] = strdup(de->d_name))) {
            st = oom(err);
            break;
        }
        (*n)++;
    }
    closedir(dp);
    if (st != KVP_OK) {
        kvev_strv_free(*out, *n);
        *out = NULL;
        *n = 0;
        return st;
    }
    if (*n > 1) qsort(*out, *n, sizeof **out, cmp_str);
    return KVP_OK;
}

static bool keep_exp(const char *dir, const char *name, const void *u) {
    const char *prefix = u;
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) || name[pl] != '-') return false;
    char *p = kvfile_join(dir, name);
    bool d = p && kvfile_is_dir(p);
    free(p);
    return d;
}

static bool keep_jsonl(const char *dir, const char *name, const void *u) {
    (void)dir;
    (void)u;
    size_t n = strlen(name);
    return n >= 5 && !strcmp(name + n - 5, "jsonl");
}

static bool keep_part(const char *dir, const char *name, const void *u) {
    (void)dir;
    (void)u;
    return strstr(name, ".jsonl.part-") != NULL;
}

/* Reads the rows of a prediction file. A last line without its newline
 * that does not parse is what a killed writer leaves: it is dropped (and
 * reported), as `pred` drops it before resuming. */
static kvp_status read_rows(const char *path, kvev_jsonl *rows, bool *torn, kvp_error *err) {
    *torn = false;
    char *buf = NULL;
    size_t len = 0;
    kvp_status st = kvu_read_file(path, &buf, &len, err);
    if (st != KVP_OK) return st;
    size_t keep = len;
    if (len && buf[len - 1] != '\n') {
        size_t b = len;
        while (b > 0 && buf[b - 1] != '\n') b--;
        json_error_t je;
        json_t *v = kvu_json_loadb(buf + b, len - b, JSON_ALLOW_NUL, &je);
        if (!v && kvu_json_oom(&je)) {
            free(buf);
            return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory while reading it", path);
        }
        if (!v) {
            *torn = true;
            keep = b;
        }
        json_decref(v);
    }
    st = kvjl_parse(path, buf, keep, rows, err);
    free(buf);
    return st;
}

static kvp_status score_file(const kvlb_eval_params *p, const char *dir, kvlb_file_score *fs,
                             kvp_error *err) {
    const char *name = fs->file;
    size_t nl = strlen(name);
    const char *dash = strchr(name, '-');
    size_t dl = dash ? (size_t)(dash - name) : (nl > 6 ? nl - 6 : nl);
    fs->dataset = strndup(name, dl);
    if (!fs->dataset) return oom(err);
    if (!strcmp(fs->dataset, "repobench")) {
        free(fs->dataset);
        fs->dataset = strdup("repobench-p");
        if (!fs->dataset) return oom(err);
        dash = strchr(dash + 1, '-');
    }
    if (dash && nl > 6 && !strcmp(name + nl - 6, ".jsonl") && dash + 1 < name + nl - 6)
        fs->method = strndup(dash + 1, (size_t)(name + nl - 6 - dash - 1));
    else
        fs->method = strdup("");
    if (!fs->method) return oom(err);
    char note[600];
    kvlb_metric metric;
    if (!kvlb_dataset_metric(fs->dataset, &metric)) {
        snprintf(note, sizeof note, "unknown dataset '%s'", fs->dataset);
        return (fs->note = strdup(note)) ? KVP_OK : oom(err);
    }
    if ((metric == KVLB_QA_F1_ZH || metric == KVLB_ROUGE_ZH) && !p->cutter) {
        fs->note = strdup("needs jieba's dictionary");
        return fs->note ? KVP_OK : oom(err);
    }
    char *path = kvfile_join(dir, name);
    if (!path) return oom(err);
    kvev_jsonl rows;
    bool torn;
    kvp_error ferr;
    kvp_status st = read_rows(path, &rows, &torn, &ferr);
    if (st == KVP_ERR_NOMEM) {
        free(path);
        *err = ferr;
        return st;
    }
    if (st != KVP_OK) {
        fs->note = strdup(ferr.message);
        free(path);
        return fs->note ? KVP_OK : oom(err);
    }
    fs->n_rows = rows.n;
    kvlb_score_opts so = {p->cutter, p->rouge_exact};
    char **classes = NULL;
    size_t n_classes = 0;
    bool have_classes = false;
    double *scores = calloc(rows.n + 1, sizeof *scores);
    long long *lengths = calloc(rows.n + 1, sizeof *lengths);
    if (!scores || !lengths) {
        st = oom(err);
        goto done;
    }
    if (rows.n == 0) {
        snprintf(note, sizeof note, "no rows");
        goto noted;
    }
    /* all_classes comes from the last row (eval.py keeps overwriting it). */
    {
        const json_t *last = rows.items[rows.n - 1].value;
        json_t *ac = json_object_get(last, "all_classes");
        if (ac && !json_is_null(ac)) {
            if (kvev_json_get_string_list(last, "all_classes", path, rows.items[rows.n - 1].line,
                                         &classes, &n_classes, &ferr) != KVP_OK) {
                snprintf(note, sizeof note, "%s", ferr.message);
                goto noted;
            }
            have_classes = true;
        }
    }
    for (size_t i = 0; i < rows.n; i++) {
        const json_t *o = rows.items[i].value;
        size_t line = rows.items[i].line;
        const char *pred;
        char **ans = NULL;
        size_t na = 0;
        bool present = false;
        if (kvev_json_get_string(o, "pred", true, path, line, &pred, &ferr) != KVP_OK ||
            kvev_json_get_string_list(o, "answers", path, line, &ans, &na, &ferr) != KVP_OK ||
            kvev_json_get_int(o, "length", p->e, path, line, &lengths[i], &present, &ferr) !=
                KVP_OK) {
            kvev_strv_free(ans, na);
            snprintf(note, sizeof note, "%s", ferr.message);
            goto noted;
        }
        size_t pl = json_string_length(json_object_get(o, "pred")), ps = 0;
        if (kvlb_dataset_first_line(fs->dataset)) kvlb_first_line(pred, pl, &ps, &pl);
        double best = 0.0;
        for (size_t a = 0; a < na; a++) {
            double s;
            kvp_status ms = kvlb_score(metric, pred + ps, pl, ans[a], strlen(ans[a]),
                                       have_classes ? classes : NULL, n_classes, &so, &s, &ferr);
            if (ms == KVP_ERR_NOMEM) {
                kvev_strv_free(ans, na);
                st = oom(err);
                goto done;
            }
            if (ms != KVP_OK) {
                kvev_strv_free(ans, na);
                snprintf(note, sizeof note, "%s:%zu: %s", path, line, ferr.message);
                goto noted;
            }
            if (s > best) best = s;
        }
        kvev_strv_free(ans, na);
        scores[i] = best;
    }
    if (p->e) {
        double *b[3];
        size_t nb[3] = {0, 0, 0};
        double *tmp = malloc(3 * (rows.n + 1) * sizeof *tmp);
        if (!tmp) {
            st = oom(err);
            goto done;
        }
        for (int k = 0; k < 3; k++) b[k] = tmp + (size_t)k * (rows.n + 1);
        for (size_t i = 0; i < rows.n; i++) {
            int k = lengths[i] < 4000 ? 0 : lengths[i] < 8000 ? 1 : 2;
            b[k][nb[k]++] = scores[i];
        }
        for (int k = 0; k < 3; k++) fs->buckets[k] = kvlb_np_round2(100 * kvlb_np_mean(b[k], nb[k]));
        free(tmp);
    } else {
        double total = 0.;
        for (size_t i = 0; i < rows.n; i++) total += scores[i];
        fs->score = kvev_py_round(100 * total / (double)rows.n, 2);
    }
    fs->scored = true;
    if (torn) {
        snprintf(note, sizeof note, "a torn last line was ignored");
        goto noted;
    }
    goto done;
noted:
    fs->note = strdup(note);
    if (!fs->note) st = oom(err);
done:
    kvev_strv_free(classes, n_classes);
    free(scores);
    free(lengths);
    kvev_jsonl_free(&rows);
    free(path);
    return st;
}

kvp_status kvlb_eval_scan(const kvlb_eval_params *p, kvlb_exp_scores **out, size_t *n,
                          kvp_error *err) {
    *out = NULL;
    *n = 0;
    char *root = kvfile_join(p->save_dir, p->e ? "pred_e" : "pred");
    if (!root) return oom(err);
    if (!kvfile_is_dir(root)) {
        kvp_status st = kvu_fail(err, KVP_ERR_IO, "save_dir: no folder %s", root);
        free(root);
        return st;
    }
    char **names = NULL;
    size_t nn = 0;
    kvp_status st = KVP_OK;
    char *exact = kvfile_join(root, p->model_name);
    if (!exact) {
        free(root);
        return oom(err);
    }
    if (kvfile_is_dir(exact)) {
        names = malloc(sizeof *names);
        if (names && (names[0] = strdup(p->model_name))) nn = 1;
        else st = oom(err);
    } else {
        st = list_dir(root, keep_exp, p->model_name, &names, &nn, err);
        if (st == KVP_OK && nn == 0)
            st = kvu_fail(err, KVP_ERR_IO,
                          "model_name: no experiment folder %s or %s-* under %s",
                          p->model_name, p->model_name, root);
    }
    free(exact);
    kvlb_exp_scores *ex = NULL;
    if (st == KVP_OK && !(ex = calloc(nn, sizeof *ex))) st = oom(err);
    size_t done = 0;
    for (size_t i = 0; i < nn && st == KVP_OK; i++, done++) {
        kvlb_exp_scores *e = &ex[i];
        e->name = strdup(names[i]);
        e->dir = kvfile_join(root, names[i]);
        if (!e->name || !e->dir) {
            st = oom(err);
            break;
        }
        char **files = NULL, **parts = NULL;
        size_t nfl = 0;
        st = list_dir(e->dir, keep_jsonl, NULL, &files, &nfl, err);
        if (st != KVP_OK) break;
        st = list_dir(e->dir, keep_part, NULL, &parts, &e->n_parts, err);
        kvev_strv_free(parts, e->n_parts);
        if (st == KVP_OK && nfl && !(e->files = calloc(nfl, sizeof *e->files))) st = oom(err);
        for (size_t k = 0; k < nfl && st == KVP_OK; k++) {
            e->files[k].file = files[k];
            files[k] = NULL;
            e->n = k + 1;
            st = score_file(p, e->dir, &e->files[k], err);
        }
        kvev_strv_free(files, nfl);
    }
    kvev_strv_free(names, nn);
    free(root);
    if (st != KVP_OK) {
        kvlb_exp_scores_free(ex, done + (done < nn));
        return st;
    }
    *out = ex;
    *n = nn;
    return KVP_OK;
}

void kvlb_exp_scores_free(kvlb_exp_scores *e, size_t n) {
    if (!e) return;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < e[i].n; k++) {
            kvlb_file_score *f = &e[i].files[k];
            free(f->file), free(f->dataset), free(f->method), free(f->note);
        }
        free(e[i].files);
        free(e[i].name);
        free(e[i].dir);
    }
    free(e);
}

/* Python's json.dump float: repr, NaN as NaN. */
static void py_json_float(double x, char *buf, size_t size) {
    if (isnan(x))
        snprintf(buf, size, "NaN");
    else if (isinf(x))
        snprintf(buf, size, x < 0 ? "-Infinity" : "Infinity");
    else
        kvev_py_float_repr(x, buf, size);
}

kvp_status kvlb_eval_write_result(const kvlb_exp_scores *e, bool is_e, kvp_error *err) {
    static const char *const bucket[3] = {"0-4k", "4-8k", "8k+"};
    size_t cap = 256 + e->n * 256, len = 0;
    char *out = malloc(cap);
    if (!out) return oom(err);
    len += (size_t)snprintf(out + len, cap - len, "{");
    size_t k = 0;
    for (size_t i = 0; i < e->n; i++) {
        const kvlb_file_score *f = &e->files[i];
        if (!f->scored) continue;
        json_t *js = json_string(f->file);
        char *key = js ? json_dumps(js, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
        json_decref(js);
        if (!key || strlen(key) + 200 > cap - len) {
            free(key);
            free(out);
            return oom(err);
        }
        len += (size_t)snprintf(out + len, cap - len, "%s\n  %s: ", k++ ? "," : "", key);
        free(key);
        char num[40];
        if (is_e) {
            len += (size_t)snprintf(out + len, cap - len, "{");
            for (int b = 0; b < 3; b++) {
                py_json_float(f->buckets[b], num, sizeof num);
                len += (size_t)snprintf(out + len, cap - len, "%s\n    \"%s\": %s", b ? "," : "",
                                        bucket[b], num);
            }
            len += (size_t)snprintf(out + len, cap - len, "\n  }");
        } else {
            py_json_float(f->score, num, sizeof num);
            len += (size_t)snprintf(out + len, cap - len, "%s", num);
        }
    }
    len += (size_t)snprintf(out + len, cap - len, k ? "\n}" : "}");
    char *path = kvfile_join(e->dir, "result.json");
    kvp_status st = path ? kvu_write_file_atomic(path, out, len, err) : oom(err);
    free(path);
    free(out);
    return st;
}

typedef struct tcol {
    const kvlb_exp_scores *e;
    const char *method;
} tcol;

char *kvlb_eval_table(const kvlb_exp_scores *e, size_t n, bool is_e) {
    /* Columns: (experiment, method); rows: datasets in LongBench's order. */
    size_t nc = 0, cap = 0;
    tcol *cols = NULL;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < e[i].n; k++) {
            const char *m = e[i].files[k].method;
            bool seen = false;
            for (size_t c = 0; c < nc && !seen; c++)
                seen = cols[c].e == &e[i] && !strcmp(cols[c].method, m);
            if (seen) continue;
            if (nc == cap) {
                cap = cap ? cap * 2 : 8;
                tcol *nv = realloc(cols, cap * sizeof *nv);
                if (!nv) {
                    free(cols);
                    return NULL;
                }
                cols = nv;
            }
            cols[nc++] = (tcol){&e[i], m};
        }
    size_t ocap = 256 + nc * 700 + 25 * (40 + nc * 24), len = 0;
    char *o = malloc(ocap);
    if (!o) {
        free(cols);
        return NULL;
    }
    o[0] = '\0';
#define PUT(...) len += (size_t)snprintf(o + len, len < ocap ? ocap - len : 0, __VA_ARGS__)
    const int w = is_e ? 20 : 12;
    for (size_t c = 0; c < nc; c++)
        PUT("column %zu: %s / %s\n", c + 1, cols[c].e->name, cols[c].method);
    PUT("%-22s", is_e ? "dataset (0-4k/4-8k/8k+)" : "dataset");
    for (size_t c = 0; c < nc; c++) PUT(" %*zu", w, c + 1);
    PUT("\n");
    double *sum = calloc(nc * 3 + 1, sizeof *sum);
    size_t *cnt = calloc(nc * 3 + 1, sizeof *cnt);
    const char *const *order = kvlb_datasets;
    for (size_t r = 0; order[r] && sum && cnt; r++) {
        bool any = false;
        for (size_t i = 0; i < n && !any; i++)
            for (size_t k = 0; k < e[i].n && !any; k++) any = !strcmp(e[i].files[k].dataset, order[r]);
        if (!any) continue;
        PUT("%-22s", order[r]);
        for (size_t c = 0; c < nc; c++) {
            const kvlb_file_score *f = NULL;
            for (size_t k = 0; k < cols[c].e->n && !f; k++) {
                const kvlb_file_score *x = &cols[c].e->files[k];
                if (!strcmp(x->dataset, order[r]) && !strcmp(x->method, cols[c].method)) f = x;
            }
            char cell[64];
            if (!f || !f->scored) {
                snprintf(cell, sizeof cell, "-");
            } else if (is_e) {
                char b[3][16];
                for (int k = 0; k < 3; k++) {
                    if (isnan(f->buckets[k])) {
                        snprintf(b[k], sizeof b[k], "nan");
                    } else {
                        snprintf(b[k], sizeof b[k], "%.2f", f->buckets[k]);
                        sum[c * 3 + (size_t)k] += f->buckets[k];
                        cnt[c * 3 + (size_t)k]++;
                    }
                }
                snprintf(cell, sizeof cell, "%s/%s/%s", b[0], b[1], b[2]);
            } else {
                snprintf(cell, sizeof cell, "%.2f", f->score);
                sum[c * 3] += f->score;
                cnt[c * 3]++;
            }
            PUT(" %*s", w, cell);
        }
        PUT("\n");
    }
    if (sum && cnt) {
        PUT("%-22s", "average");
        for (size_t c = 0; c < nc; c++) {
            char cell[64], b[3][16];
            for (int k = 0; k < (is_e ? 3 : 1); k++) {
                size_t q = c * 3 + (size_t)k;
                if (cnt[q])
                    snprintf(b[k], sizeof b[k], "%.2f", sum[q] / (double)cnt[q]);
                else
                    snprintf(b[k], sizeof b[k], is_e ? "nan" : "-");
            }
            if (is_e)
                snprintf(cell, sizeof cell, "%s/%s/%s", b[0], b[1], b[2]);
            else
                snprintf(cell, sizeof cell, "%s", b[0]);
            PUT(" %*s", w, cell);
        }
        PUT("\n");
    }
#undef PUT
    free(sum);
    free(cnt);
    free(cols);
    return o;
}
