#include "kvprune_eval/longbench.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvprune_eval/jsonl.h"
#include "kvprune_eval/metrics.h"
#include "eval/pystr.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

const char *const kvlb_datasets[] = {
    "narrativeqa", "qasper", "multifieldqa_en", "multifieldqa_zh", "hotpotqa", "2wikimqa",
    "musique", "dureader", "gov_report", "qmsum", "multi_news", "vcsum", "trec", "triviaqa",
    "samsum", "lsht", "passage_count", "passage_retrieval_en", "passage_retrieval_zh", "lcc",
    "repobench-p", NULL};
const char *const kvlb_datasets_e[] = {
    "qasper", "multifieldqa_en", "hotpotqa", "2wikimqa", "gov_report", "multi_news", "trec",
    "triviaqa", "samsum", "passage_count", "passage_retrieval_en", "lcc", "repobench-p", NULL};

bool kvlb_dataset_known(const char *name) { return kvlb_dataset_metric(name, NULL); }

bool kvlb_dataset_no_chat(const char *d) {
    return !strcmp(d, "trec") || !strcmp(d, "triviaqa") || !strcmp(d, "samsum") ||
           !strcmp(d, "lsht") || !strcmp(d, "lcc") || !strcmp(d, "repobench-p");
}

static kvp_status oom(kvp_error *err) { return kvu_fail(err, KVP_ERR_NOMEM, "out of memory"); }

/* -------------------------------------------------------------- config --- */

static kvp_status load_object(const char *dir, const char *name, json_t **out, kvp_error *err) {
    char *path = kvfile_join(dir, name);
    if (!path) return oom(err);
    json_error_t jerr;
    *out = kvu_json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    kvp_status st = KVP_OK;
    if (!*out) {
        if (access(path, R_OK) != 0)
            st = kvu_fail(err, KVP_ERR_IO, "config_dir: cannot read %s: %s", path,
                          strerror(errno));
        else if (kvu_json_oom(&jerr))
            st = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory while reading it", path);
        else
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s:%d: invalid JSON: %s", path, jerr.line,
                          jerr.text);
    } else if (!json_is_object(*out)) {
        st = kvu_fail(err, KVP_ERR_FORMAT, "%s: expected a JSON object", path);
        json_decref(*out);
        *out = NULL;
    }
    free(path);
    return st;
}

kvp_status kvlb_config_load(const char *dir, kvlb_config *c, kvp_error *err) {
    memset(c, 0, sizeof *c);
    c->dir = strdup(dir);
    if (!c->dir) return oom(err);
    kvp_status st = load_object(dir, "dataset2prompt.json", &c->prompt, err);
    if (st == KVP_OK) st = load_object(dir, "dataset2maxlen.json", &c->maxlen, err);
    if (st == KVP_OK) st = load_object(dir, "model2maxlen.json", &c->model2maxlen, err);
    if (st != KVP_OK) kvlb_config_free(c);
    return st;
}

void kvlb_config_free(kvlb_config *c) {
    json_decref(c->prompt);
    json_decref(c->maxlen);
    json_decref(c->model2maxlen);
    free(c->dir);
    memset(c, 0, sizeof *c);
}

static kvp_status config_int(const kvlb_config *c, const json_t *obj, const char *file,
                             const char *key, int *out, kvp_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v) return kvu_fail(err, KVP_ERR_FORMAT, "%s/%s: no key '%s'", c->dir, file, key);
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > (1 << 24))
        return kvu_fail(err, KVP_ERR_FORMAT, "%s/%s: '%s' must be a positive integer", c->dir,
                        file, key);
    *out = (int)json_integer_value(v);
    return KVP_OK;
}

kvp_status kvlb_config_max_length(const kvlb_config *c, const char *model_name, int *out,
                                  kvp_error *err) {
    if (json_object_get(c->model2maxlen, model_name))
        return config_int(c, c->model2maxlen, "model2maxlen.json", model_name, out, err);
    char known[2048];
    size_t off = 0;
    const char *k;
    json_t *v;
    known[0] = '\0';
    json_object_foreach(c->model2maxlen, k, v) {
        (void)v;
        if (off < sizeof known)
            off += (size_t)snprintf(known + off, sizeof known - off, "%s%s", off ? ", " : "", k);
    }
    return kvu_fail(err, KVP_ERR_INVALID_ARG,
                    "model_name: '%s' is not in %s/model2maxlen.json (known: %s); set "
                    "max_length", model_name, c->dir, known);
}

/* -------------------------------------------------------------- prompt --- */

typedef struct strbuf {
    char *p;
    size_t n, cap;
} strbuf;

static bool sb_put(strbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) return false;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return true;
}

kvp_status kvlb_format_prompt(const char *tmpl, const json_t *fields, char **out,
                              kvp_error *err) {
    strbuf b = {0};
    kvp_status st = KVP_OK;
    if (!sb_put(&b, "", 0)) return oom(err);
    for (const char *s = tmpl; *s && st == KVP_OK;) {
        if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
            if (!sb_put(&b, s, 1)) st = oom(err);
            s += 2;
        } else if (s[0] == '{') {
            const char *e = strchr(s, '}');
            if (!e) {
                st = kvu_fail(err, KVP_ERR_FORMAT, "the prompt template has an unclosed '{'");
                break;
            }
            char name[128];
            size_t nl = (size_t)(e - s - 1);
            if (nl == 0 || nl >= sizeof name || memchr(s + 1, '{', nl)) {
                st = kvu_fail(err, KVP_ERR_FORMAT, "the prompt template has a bad field '%.*s'",
                              (int)(nl + 2 < 60 ? nl + 2 : 60), s);
                break;
            }
            memcpy(name, s + 1, nl);
            name[nl] = '\0';
            json_t *v = json_object_get(fields, name);
            if (!v) {
                st = kvu_fail(err, KVP_ERR_FORMAT, "missing field '%s' (the prompt uses {%s})",
                              name, name);
            } else if (json_is_string(v)) {
                if (!sb_put(&b, json_string_value(v), json_string_length(v))) st = oom(err);
            } else if (json_is_integer(v)) {
                char num[32];
                snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
                if (!sb_put(&b, num, strlen(num))) st = oom(err);
            } else {
                st = kvu_fail(err, KVP_ERR_FORMAT, "field '%s' must be a string", name);
            }
            s = e + 1;
        } else if (s[0] == '}') {
            st = kvu_fail(err, KVP_ERR_FORMAT, "the prompt template has a single '}'");
        } else {
            const char *e = s;
            while (*e && *e != '{' && *e != '}') e++;
            if (!sb_put(&b, s, (size_t)(e - s))) st = oom(err);
            s = e;
        }
    }
    if (st != KVP_OK) {
        free(b.p);
        return st;
    }
    *out = b.p;
    return KVP_OK;
}

kvp_status kvlb_truncate_middle(const kvp_tokenizer *tok, const char *prompt, int max_length,
                                char **out, size_t *n_tokens, kvp_error *err) {
    kvp_tokenize_params tp = kvp_tokenize_default_params();
    int32_t *ids = NULL;
    size_t n = 0;
    kvp_status st = kvp_tokenize(tok, prompt, strlen(prompt), &tp, &ids, &n, err);
    if (st != KVP_OK) return st;
    *n_tokens = n;
    if (n <= (size_t)max_length) {
        kvp_free(ids);
        *out = strdup(prompt);
        return *out ? KVP_OK : oom(err);
    }
    size_t half = (size_t)(max_length / 2);
    char *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    st = kvp_detokenize(tok, ids, half, true, &a, &al, err);
    if (st == KVP_OK) st = kvp_detokenize(tok, ids + n - half, half, true, &b, &bl, err);
    kvp_free(ids);
    if (st == KVP_OK) {
        *out = malloc(al + bl + 1);
        if (!*out) {
            st = oom(err);
        } else {
            memcpy(*out, a, al);
            memcpy(*out + al, b, bl);
            (*out)[al + bl] = '\0';
        }
    }
    kvp_free(a);
    kvp_free(b);
    return st;
}

/* --------------------------------------------------------- post-process --- */

static bool icontains(const char *h, const char *n) {
    size_t nl = strlen(n);
    for (; *h; h++) {
        size_t i = 0;
        while (i < nl && h[i] && (h[i] | 0x20) == (n[i] | 0x20)) i++;
        if (i == nl) return true;
    }
    return false;
}

kvlb_postprocess kvlb_postprocess_for(const char *m) {
    if (icontains(m, "llama-3") || icontains(m, "llama3")) return KVLB_POST_LLAMA3;
    if (icontains(m, "xgen")) return KVLB_POST_XGEN;
    if (icontains(m, "internlm")) return KVLB_POST_INTERNLM;
    return KVLB_POST_NONE;
}

bool kvlb_postprocess_parse(const char *s, kvlb_postprocess *out) {
    static const char *const names[] = {"none", "llama3", "xgen", "internlm"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *out = (kvlb_postprocess)i;
            return true;
        }
    return false;
}

size_t kvlb_postprocess_apply(kvlb_postprocess pp, char *s, size_t len) {
    switch (pp) {
    case KVLB_POST_LLAMA3:
        return kvev_niah_postprocess(s, len);
    case KVLB_POST_XGEN: { /* response.strip().replace("Assistant:", "") */
        size_t end, b = kvpy_strip(s, len, &end);
        memmove(s, s + b, end - b);
        len = end - b;
        size_t k = 0;
        for (size_t i = 0; i < len;) {
            if (len - i >= 10 && !memcmp(s + i, "Assistant:", 10)) {
                i += 10;
                continue;
            }
            s[k++] = s[i++];
        }
        s[k] = '\0';
        return k;
    }
    case KVLB_POST_INTERNLM: { /* response.split("<eoa>")[0] */
        char *e = strstr(s, "<eoa>");
        if (e) {
            *e = '\0';
            len = (size_t)(e - s);
        }
        return len;
    }
    case KVLB_POST_NONE:
        break;
    }
    return len;
}

void kvlb_exp_name(const char *model_name, bool full, bool no_decode_evict, bool absolute,
                   double heavy, double recent, char *buf, size_t size) {
    if (full) {
        snprintf(buf, size, "%s-full", model_name);
        return;
    }
    const char *nde = no_decode_evict ? "-no_decode_evict" : "";
    if (absolute)
        snprintf(buf, size, "%s%s-%d+%d", model_name, nde, (int)heavy, (int)recent);
    else
        snprintf(buf, size, "%s%s-%.4f+%.4f", model_name, nde, heavy, recent);
}

/* ---------------------------------------------------------------- pred --- */

void kvlb_pred_default_params(kvlb_pred_params *p) {
    memset(p, 0, sizeof *p);
    p->num_recent = -1;
    p->num_heavy = -1;
    p->base = kvp_cache_default_params();
    p->post = KVLB_POST_NONE;
    p->shard_index = 0;
    p->shard_count = 1;
    p->sync_every = 16;
}

typedef struct lb_data {
    const char *name;
    char *path;
    kvev_jsonl j;
    const char *tmpl;
    int max_gen;
} lb_data;

typedef struct lb_exp {
    char name[320];
    const char *method;
    bool full;
    double heavy, recent;
    char *dir;
} lb_exp;

typedef struct lb_part {
    char *path;
    size_t a;         /* first sample it holds */
    kvev_jsonl j;      /* its rows, samples a, a+1, ... */
} lb_part;

typedef struct lb_file {
    lb_exp *e;
    lb_data *d;
    char *path;       /* the dataset file of the experiment               */
    char *target;     /* what this run appends to: path or its shard part */
    size_t start, end;/* this run's samples                               */
    size_t done;      /* rows already in target                           */
    lb_part *parts;   /* shard parts to merge (unsharded runs)            */
    size_t n_parts;
} lb_file;

/* Validates the fields pred.py reads, and the prompt formatting. */
static kvp_status check_data(lb_data *d, kvp_error *err) {
    if (d->j.n == 0) return kvu_fail(err, KVP_ERR_FORMAT, "%s: no samples", d->path);
    for (size_t i = 0; i < d->j.n; i++) {
        const json_t *o = d->j.items[i].value;
        size_t line = d->j.items[i].line;
        char **v;
        size_t nv;
        kvp_status st = kvev_json_get_string_list(o, "answers", d->path, line, &v, &nv, err);
        if (st != KVP_OK) return st;
        kvev_strv_free(v, nv);
        json_t *ac = json_object_get(o, "all_classes");
        if (!ac)
            return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: missing field 'all_classes'", d->path,
                            line);
        if (!json_is_null(ac)) {
            st = kvev_json_get_string_list(o, "all_classes", d->path, line, &v, &nv, err);
            if (st != KVP_OK) return st;
            kvev_strv_free(v, nv);
        }
        long long len;
        st = kvev_json_get_int(o, "length", true, d->path, line, &len, NULL, err);
        if (st != KVP_OK) return st;
        char *prompt = NULL;
        st = kvlb_format_prompt(d->tmpl, o, &prompt, err);
        free(prompt);
        if (st != KVP_OK) return kvu_fail_prefix(err, st, "%s:%zu", d->path, line);
    }
    return KVP_OK;
}

static kvp_status count_rows(const char *path, kvev_jsonl *j, size_t *torn, kvp_error *err) {
    memset(j, 0, sizeof *j);
    size_t dropped = 0;
    kvp_status st = kvev_jsonl_repair(path, &dropped, err);
    if (st != KVP_OK) return st;
    *torn += dropped > 0;
    if (access(path, F_OK) != 0) return KVP_OK;
    return kvev_jsonl_read(path, j, err);
}

/* Shard parts of `base` (file name) in dir: "<base>.part-I-of-N". */
static kvp_status find_parts(const char *dir, const char *base, size_t n, lb_file *f,
                             size_t *torn, kvp_error *err) {
    DIR *dp = opendir(dir);
    if (!dp) return KVP_OK;
    size_t bl = strlen(base);
    struct dirent *de;
    kvp_status st = KVP_OK;
    while ((de = readdir(dp)) && st == KVP_OK) {
        if (strncmp(de->d_name, base, bl) || strncmp(de->d_name + bl, ".part-", 6)) continue;
        unsigned long si, sn;
        int used = 0;
        if (sscanf(de->d_name + bl + 6, "%lu-of-%lu%n", &si, &sn, &used) != 2 ||
            de->d_name[bl + 6 + used] || sn == 0 || si >= sn)
            continue;
        lb_part *np = realloc(f->parts, (f->n_parts + 1) * sizeof *np);
        if (!np) {
            st = oom(err);
            break;
        }
        f->parts = np;
        lb_part *pt = &f->parts[f->n_parts];
        memset(pt, 0, sizeof *pt);
        pt->path = kvfile_join(dir, de->d_name);
        if (!pt->path) {
            st = oom(err);
            break;
        }
        f->n_parts++;
        pt->a = si * n / sn;
        size_t b = (si + 1) * n / sn;
        st = count_rows(pt->path, &pt->j, torn, err);
        if (st == KVP_OK && pt->j.n > b - pt->a)
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s: %zu rows, more than the %zu samples of its "
                          "shard (a different data file?)", pt->path, pt->j.n, b - pt->a);
    }
    closedir(dp);
    return st;
}

static void file_free(lb_file *f) {
    free(f->path);
    if (f->target != f->path) free(f->target);
    for (size_t i = 0; i < f->n_parts; i++) {
        free(f->parts[i].path);
        kvev_jsonl_free(&f->parts[i].j);
    }
    free(f->parts);
}

static const json_t *part_row(const lb_file *f, size_t i) {
    for (size_t k = 0; k < f->n_parts; k++) {
        const lb_part *pt = &f->parts[k];
        if (i >= pt->a && i - pt->a < pt->j.n) return pt->j.items[i - pt->a].value;
    }
    return NULL;
}

static kvp_status sample_ids(const kvev_prompt_style *ps0,
                             const lb_data *d, size_t i, int max_length, int32_t **ids,
                             size_t *n, bool *truncated, kvp_error *err) {
    char *prompt = NULL, *cut = NULL;
    size_t n_tok = 0;
    kvp_status st = kvlb_format_prompt(d->tmpl, d->j.items[i].value, &prompt, err);
    if (st == KVP_OK) st = kvlb_truncate_middle(ps0->tok, prompt, max_length, &cut, &n_tok, err);
    if (st == KVP_OK) {
        *truncated = n_tok > (size_t)max_length;
        kvev_prompt_style ps = *ps0;
        if (kvlb_dataset_no_chat(d->name)) ps.no_chat = true;
        st = kvev_prompt_ids(&ps, cut, ids, n, err);
    }
    free(prompt);
    free(cut);
    return st;
}

static kvp_status write_row(kvev_jsonl_writer *w, const json_t *sample, const char *text,
                            size_t len, kvp_error *err) {
    json_t *o = json_object();
    if (!o) return oom(err);
    json_object_set_new(o, "pred", json_stringn(text, len));
    json_object_set(o, "answers", json_object_get(sample, "answers"));
    json_object_set(o, "all_classes", json_object_get(sample, "all_classes"));
    json_object_set(o, "length", json_object_get(sample, "length"));
    kvp_status st = kvev_jsonl_writer_put(w, o, err);
    json_decref(o);
    return st;
}

static kvp_status generate_one(const kvp_model *model, kvp_cache *cache, const kvlb_pred_params *p,
                               const kvev_prompt_style *ps, const lb_data *d, size_t i,
                               int max_length, kvev_jsonl_writer *w, bool *truncated,
                               bool *interrupted, kvp_error *err) {
    int32_t *ids = NULL;
    size_t n = 0;
    kvp_status st = sample_ids(ps, d, i, max_length, &ids, &n, truncated, err);
    if (st != KVP_OK) return st;
    kvp_gen_params gp = kvp_gen_default_params();
    gp.max_new_tokens = d->max_gen;
    gp.temperature = 0;
    gp.n_threads = p->n_threads;
    if (p->stop) {
        gp.on_token = kvev_stop_token_cb;
        gp.user = (void *)p->stop;
    }
    kvp_gen_result res;
    memset(&res, 0, sizeof res);
    st = kvp_generate(model, cache, ids, n, &gp, &res, err);
    kvp_free(ids);
    if (st != KVP_OK) return st;
    if (kvev_stop_requested(p->stop)) { /* cut short: not written */
        kvp_gen_result_free(&res);
        *interrupted = true;
        return KVP_OK;
    }
    char *text = NULL;
    size_t tl = 0;
    st = kvp_detokenize(ps->tok, res.ids, res.n_ids, true, &text, &tl, err);
    kvp_gen_result_free(&res);
    if (st != KVP_OK) return st;
    tl = kvlb_postprocess_apply(p->post, text, tl);
    st = write_row(w, d->j.items[i].value, text, tl, err);
    kvp_free(text);
    return st;
}

static kvp_status check_params(const kvlb_pred_params *p, kvp_error *err) {
    if (p->n_methods == 0) return kvu_fail(err, KVP_ERR_INVALID_ARG, "methods: no method given");
    bool pruned = false;
    for (size_t m = 0; m < p->n_methods; m++) {
        if (!kvev_needle_method_known(p->methods[m]))
            return kvu_fail(err, KVP_ERR_INVALID_ARG, "methods: unknown method '%s'",
                            p->methods[m]);
        pruned |= strcmp(p->methods[m], "full") != 0;
    }
    for (size_t r = 0; r < p->n_ratios; r++)
        if (!(p->ratios[r] > 0 && p->ratios[r] <= 1))
            return kvu_fail(err, KVP_ERR_INVALID_ARG, "ratios: %g is outside (0, 1]",
                            p->ratios[r]);
    bool absolute = p->num_recent >= 0 || p->num_heavy >= 0;
    if (absolute && (p->num_recent < 0 || p->num_heavy < 0))
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "num_recent and num_heavy go together");
    if (absolute && p->n_ratios)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "give ratios or num_recent/num_heavy, not both");
    if (pruned && !absolute && p->n_ratios == 0)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "pruning methods need ratios or num_recent and num_heavy");
    if (p->shard_count < 1 || p->shard_index < 0 || p->shard_index >= p->shard_count)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "shard_index/shard_count: %d/%d is not i/n with 0 <= i < n",
                        p->shard_index, p->shard_count);
    if (!p->model_name || !*p->model_name)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "model_name: empty");
    if (strchr(p->model_name, '/'))
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "model_name: '%s' holds a '/'",
                        p->model_name);
    return KVP_OK;
}

kvp_status kvlb_pred(const kvp_model *model, const kvlb_pred_params *p, kvlb_pred_summary *sum,
                     kvp_error *err) {
    memset(sum, 0, sizeof *sum);
    kvp_status st = check_params(p, err);
    if (st != KVP_OK) return st;
    kvev_prompt_style ps = p->prompt;
    if (!ps.tok) ps.tok = kvp_model_tokenizer(model);
    if (!ps.tok) return kvu_fail(err, KVP_ERR_INVALID_ARG, "the model has no tokenizer");

    kvlb_config cfg;
    st = kvlb_config_load(p->config_dir, &cfg, err);
    if (st != KVP_OK) return st;
    int max_length = p->max_length;
    if (max_length <= 0) st = kvlb_config_max_length(&cfg, p->model_name, &max_length, err);
    if (st != KVP_OK) {
        kvlb_config_free(&cfg);
        return st;
    }
    sum->max_length = max_length;
    if (!ps.no_chat) { /* a model without a usable chat template fails here, not mid-run */
        kvp_chat_message msg = {"user", "x"};
        char *rendered = NULL;
        st = kvp_chat_apply(ps.tok, ps.chat_template, &msg, 1, true, &rendered, err);
        kvp_free(rendered);
        if (st != KVP_OK) {
            kvu_fail_prefix(err, st, "the chat template (set prompt.chat_template, or prompt.no_chat)");
            kvlb_config_free(&cfg);
            return st;
        }
    }

    const char *const *names = p->datasets ? p->datasets : p->e ? kvlb_datasets_e : kvlb_datasets;
    size_t nd = p->datasets ? p->n_datasets : 0;
    if (!p->datasets)
        while (names[nd]) nd++;
    bool absolute = p->num_recent >= 0;
    size_t n_exp_max = p->n_methods * (absolute ? 1 : (p->n_ratios ? p->n_ratios : 1));
    lb_data *data = calloc(nd + 1, sizeof *data);
    lb_exp *ex = calloc(n_exp_max + 1, sizeof *ex);
    lb_file *files = calloc(nd * n_exp_max + 1, sizeof *files);
    size_t nex = 0, nf = 0;
    kvp_cache *cache = NULL;
    if (!data || !ex || !files) {
        st = oom(err);
        goto out;
    }
    /* Datasets: names, config keys, data files, fields, prompts. */
    for (size_t i = 0; i < nd && st == KVP_OK; i++) {
        lb_data *d = &data[i];
        d->name = names[i];
        if (!kvlb_dataset_known(d->name)) {
            char list[1024];
            size_t off = 0;
            for (const char *const *k = kvlb_datasets; *k && off < sizeof list; k++)
                off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", off ? ", " : "",
                                        *k);
            st = kvu_fail(err, KVP_ERR_INVALID_ARG, "datasets: unknown dataset '%s' (known: %s)",
                          d->name, list);
            break;
        }
        for (size_t k = 0; k < i && st == KVP_OK; k++)
            if (!strcmp(data[k].name, d->name))
                st = kvu_fail(err, KVP_ERR_INVALID_ARG, "datasets: '%s' is listed twice", d->name);
        if (st != KVP_OK) break;
        json_t *t = json_object_get(cfg.prompt, d->name);
        if (!t) {
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s/dataset2prompt.json: no key '%s'", cfg.dir,
                          d->name);
            break;
        }
        if (!json_is_string(t)) {
            st = kvu_fail(err, KVP_ERR_FORMAT, "%s/dataset2prompt.json: '%s' must be a string",
                          cfg.dir, d->name);
            break;
        }
        d->tmpl = json_string_value(t);
        st = config_int(&cfg, cfg.maxlen, "dataset2maxlen.json", d->name, &d->max_gen, err);
        if (st != KVP_OK) break;
        char fname[128];
        snprintf(fname, sizeof fname, "%s%s.jsonl", d->name, p->e ? "_e" : "");
        d->path = kvfile_join(p->data_dir, fname);
        if (!d->path) {
            st = oom(err);
            break;
        }
        if (access(d->path, R_OK) != 0) {
            st = kvu_fail(err, KVP_ERR_IO, "data_dir: cannot read %s: %s", d->path,
                          strerror(errno));
            break;
        }
        st = kvev_jsonl_read(d->path, &d->j, err);
        if (st == KVP_OK) st = check_data(d, err);
        sum->n_samples += d->j.n;
    }
    if (st != KVP_OK) goto out;

    /* Experiments, method-major. */
    for (size_t m = 0; m < p->n_methods; m++) {
        bool full = !strcmp(p->methods[m], "full");
        size_t nr = full || absolute ? 1 : p->n_ratios;
        for (size_t r = 0; r < nr; r++) {
            lb_exp *e = &ex[nex];
            e->method = p->methods[m];
            e->full = full;
            if (absolute) {
                e->heavy = p->num_heavy;
                e->recent = p->num_recent;
            } else if (!full) {
                e->recent = kvev_py_round(0.05 * p->ratios[r], 4);
                e->heavy = kvev_py_round(0.95 * p->ratios[r], 4);
            }
            kvlb_exp_name(p->model_name, full, p->no_decode_evict, absolute, e->heavy, e->recent,
                          e->name, sizeof e->name);
            bool dup = false;
            for (size_t q = 0; q < nex; q++)
                dup |= !strcmp(ex[q].name, e->name) && !strcmp(ex[q].method, e->method);
            if (dup) continue;
            char sub[64];
            snprintf(sub, sizeof sub, "%s", p->e ? "pred_e" : "pred");
            char *root = kvfile_join(p->save_dir, sub);
            e->dir = root ? kvfile_join(root, e->name) : NULL;
            free(root);
            if (!e->dir) {
                st = oom(err);
                goto out;
            }
            nex++;
        }
    }

    /* Files, dataset-major (a dataset's prompts are built once per sample and
     * experiment), and what earlier runs and shards left. */
    for (size_t i = 0; i < nd; i++)
        for (size_t q = 0; q < nex; q++) {
            lb_file *f = &files[nf++];
            f->d = &data[i];
            f->e = &ex[q];
            size_t n = f->d->j.n;
            char base[256];
            snprintf(base, sizeof base, "%s-%s.jsonl", f->d->name, f->e->method);
            f->path = kvfile_join(f->e->dir, base);
            if (!f->path) {
                st = oom(err);
                goto out;
            }
            kvev_jsonl rows;
            st = count_rows(f->path, &rows, &sum->torn_lines, err);
            size_t have = rows.n;
            kvev_jsonl_free(&rows);
            if (st != KVP_OK) goto out;
            if (have > n) {
                st = kvu_fail(err, KVP_ERR_FORMAT,
                              "%s: %zu rows, more than the %zu samples of %s (a different data "
                              "file was used for this folder?)", f->path, have, n, f->d->path);
                goto out;
            }
            if (p->shard_count > 1) {
                size_t a = (size_t)p->shard_index * n / (size_t)p->shard_count;
                size_t b = ((size_t)p->shard_index + 1) * n / (size_t)p->shard_count;
                f->start = f->end = a;
                f->target = f->path;
                if (have >= n) continue; /* merged already */
                size_t tl = strlen(f->path) + 64;
                f->target = malloc(tl);
                if (!f->target) {
                    st = oom(err);
                    goto out;
                }
                snprintf(f->target, tl, "%s.part-%d-of-%d", f->path, p->shard_index,
                         p->shard_count);
                st = count_rows(f->target, &rows, &sum->torn_lines, err);
                size_t got = rows.n;
                kvev_jsonl_free(&rows);
                if (st != KVP_OK) goto out;
                if (got > b - a) {
                    st = kvu_fail(err, KVP_ERR_FORMAT, "%s: %zu rows, more than the %zu samples "
                                  "of this shard", f->target, got, b - a);
                    goto out;
                }
                f->done = got;
                f->end = b;
                f->start = a + got;
            } else {
                f->target = f->path;
                f->done = have;
                f->start = have;
                f->end = n;
                st = find_parts(f->e->dir, base, n, f, &sum->torn_lines, err);
                if (st != KVP_OK) goto out;
            }
        }
    sum->n_files = nf;
    sum->n_datasets = nd;
    sum->n_exps = nex;

    /* What runs: rows to generate (merged rows are not counted). */
    kvlb_progress prog = {0};
    for (size_t k = 0; k < nf; k++) {
        lb_file *f = &files[k];
        sum->skipped += f->done;
        for (size_t i = f->start; i < f->end; i++)
            if (!part_row(f, i)) prog.total++;
    }
    prog.skipped = sum->skipped;
    double t0 = kvu_now_s();
    for (size_t k = 0; k < nf && st == KVP_OK && !sum->interrupted; k++) {
        lb_file *f = &files[k];
        bool complete_now = f->start >= f->end;
        if (f->start < f->end) {
            st = kvev_mkdirs(f->e->dir, err);
            if (st != KVP_OK) break;
            prog.experiment = f->e->name;
            prog.dataset = f->d->name;
            prog.method = f->e->method;
            kvev_jsonl_writer w;
            st = kvev_jsonl_writer_open(&w, f->target, p->sync_every > 0 ? p->sync_every : 16,
                                       err);
            if (st != KVP_OK) break;
            for (size_t i = f->start; i < f->end && st == KVP_OK; i++) {
                if (kvev_stop_requested(p->stop)) {
                    sum->interrupted = true;
                    break;
                }
                const json_t *row = part_row(f, i);
                if (row) {
                    st = kvev_jsonl_writer_put(&w, row, err);
                    sum->merged++;
                    continue;
                }
                if (!cache) {
                    kvp_cache_params cp = p->base;
                    cp.method = f->e->method;
                    cp.num_recent = cp.num_heavy = -1;
                    cp.recent_ratio = cp.heavy_ratio = cp.cache_ratio = -1;
                    if (!f->e->full) {
                        if (absolute) {
                            cp.num_recent = (int)f->e->recent;
                            cp.num_heavy = (int)f->e->heavy;
                        } else {
                            cp.recent_ratio = f->e->recent;
                            cp.heavy_ratio = f->e->heavy;
                        }
                        cp.decode_evict = !p->no_decode_evict;
                    }
                    st = kvp_cache_new(model, &cp, &cache, err);
                    if (st != KVP_OK) {
                        kvu_fail_prefix(err, st, "experiment %s, method %s", f->e->name,
                                        f->e->method);
                        break;
                    }
                }
                bool truncated = false;
                st = generate_one(model, cache, p, &ps, f->d, i, max_length, &w, &truncated,
                                  &sum->interrupted, err);
                if (st != KVP_OK) {
                    kvu_fail_prefix(err, st, "%s:%zu (%s, %s)", f->d->path, f->d->j.items[i].line,
                                    f->e->name, f->e->method);
                    break;
                }
                if (sum->interrupted) break;
                sum->truncated += truncated;
                sum->generated++;
                prog.done++;
                prog.elapsed_s = kvu_now_s() - t0;
                if (p->on_progress) p->on_progress(p->user, &prog);
            }
            st = kvjl_writer_finish(&w, st, err);
            kvp_cache_free(cache);
            cache = NULL;
            complete_now = st == KVP_OK && !sum->interrupted;
        }
        /* A complete file makes its shard parts redundant. */
        if (complete_now && p->shard_count == 1)
            for (size_t q = 0; q < f->n_parts; q++) unlink(f->parts[q].path);
    }
out:
    kvp_cache_free(cache);
    for (size_t k = 0; k < nf; k++) file_free(&files[k]);
    free(files);
    for (size_t q = 0; q < nex; q++) free(ex[q].dir);
    free(ex);
    if (data)
        for (size_t i = 0; i < nd; i++) {
            free(data[i].path);
            kvev_jsonl_free(&data[i].j);
        }
    free(data);
    kvlb_config_free(&cfg);
    return st;
}
