#include "kvprune_eval/needle_pred.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvprune_eval/jsonl.h"
#include "kvprune_eval/metrics.h"
#include "util/clock.h"
#include "util/error.h"

kvp_status kvev_prompt_ids(const kvev_prompt_style *ps, const char *input, int32_t **ids, size_t *n,
                          kvp_error *err) {
    if (!ps->tok) return kvu_fail(err, KVP_ERR_INVALID_ARG, "the model has no tokenizer");
    if (ps->no_chat) {
        kvp_tokenize_params tp = kvp_tokenize_default_params();
        return kvp_tokenize(ps->tok, input, strlen(input), &tp, ids, n, err);
    }
    kvp_chat_message msgs[2];
    size_t nm = 0;
    if (ps->system) msgs[nm++] = (kvp_chat_message){"system", ps->system};
    msgs[nm++] = (kvp_chat_message){"user", input};
    return kvp_chat_tokenize(ps->tok, ps->chat_template, msgs, nm, true, ids, n, err);
}

kvp_status kvev_prompt_measure(void *user, const char *input, bool chat, size_t *n_tokens,
                              kvp_error *err) {
    kvev_prompt_style ps = *(const kvev_prompt_style *)user;
    if (!chat) ps.no_chat = true;
    int32_t *ids = NULL;
    size_t n = 0;
    kvp_status st = kvev_prompt_ids(&ps, input, &ids, &n, err);
    kvp_free(ids);
    *n_tokens = n;
    return st;
}

bool kvev_needle_method_known(const char *name) {
    const char *n = strncmp(name, "obc", 3) == 0 ? name + 3 : name;
    for (const char *const *m = kvp_cache_method_names(); *m; m++)
        if (n != name ? (strncmp(*m, "kvc", 3) == 0 && strcmp(*m + 3, n) == 0) : !strcmp(*m, n))
            return true;
    return false;
}

bool kvev_alloc_parse(const char *s, kvev_alloc *out) {
    static const struct {
        const char *name;
        kvev_alloc a;
    } known[] = {{"uniform", {false, false}},
                 {"adaptive", {true, false}},
                 {"pyramid", {false, true}},
                 {"adaptive+pyramid", {true, true}},
                 {"pyramid+adaptive", {true, true}}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(s, known[i].name)) {
            *out = known[i].a;
            return true;
        }
    return false;
}

void kvev_alloc_tag(kvev_alloc a, const kvp_cache_params *cp, char *buf, size_t size) {
    (void)cp;
    snprintf(buf, size, "%s%s%s", a.adaptive ? "adaptive" : "", a.adaptive && a.pyramid ? "+" : "",
             a.pyramid ? "pyramid" : "");
}

kvp_status kvev_alloc_apply(kvev_alloc a, kvp_cache_params *cp, kvp_error *err) {
    (void)err;
    cp->budget_alloc = a.adaptive ? KVP_BUDGET_ADAPTIVE : KVP_BUDGET_UNIFORM;
    cp->layer_alloc = a.pyramid ? KVP_LAYER_PYRAMID : KVP_LAYER_UNIFORM;
    return KVP_OK;
}

void kvev_needle_exp_name(const char *method, double ratio, bool no_decode_evict,
                         const char *alloc_tag, char *buf, size_t size) {
    if (!strcmp(method, "full")) {
        snprintf(buf, size, "full");
        return;
    }
    char r[40];
    kvev_py_float_repr(ratio, r, sizeof r);
    snprintf(buf, size, "%s-cr%s%s%s%s", method, r, no_decode_evict ? "-no_decode_evict" : "",
             alloc_tag && *alloc_tag ? "-" : "", alloc_tag ? alloc_tag : "");
}

void kvev_needle_pred_default_params(kvev_needle_pred_params *p) {
    memset(p, 0, sizeof *p);
    p->num_recent = 16;
    p->base = kvp_cache_default_params();
    p->gen = kvp_gen_default_params();
    p->gen.max_new_tokens = 64;
    p->gen.temperature = 0;
    p->postprocess = true;
    p->shard_index = 0;
    p->shard_count = 1;
    p->sync_every = 16;
}

typedef struct sample {
    long long index;
    const json_t *line;   /* owned by the jsonl */
    int32_t *ids;
    size_t n_ids;
} sample;

typedef struct experiment {
    char name[256];
    const char *method;
    double ratio;
    kvev_alloc alloc;
    char *dir;
    char *pred_path;
    unsigned char *done;  /* per sample: already in pred.jsonl */
    size_t n_pending;
} experiment;

static char *join3(const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 3;
    char *p = malloc(n);
    if (!p) return NULL;
    if (c)
        snprintf(p, n, "%s/%s/%s", a, b, c);
    else
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* Validates the data lines: index (unique integer), input, outputs. */
static kvp_status check_data(const char *path, const kvev_jsonl *j, sample *s, kvp_error *err) {
    for (size_t i = 0; i < j->n; i++) {
        const json_t *o = j->items[i].value;
        size_t line = j->items[i].line;
        bool present;
        kvp_status st = kvev_json_get_int(o, "index", true, path, line, &s[i].index, &present, err);
        if (st != KVP_OK) return st;
        const char *input;
        st = kvev_json_get_string(o, "input", true, path, line, &input, err);
        if (st != KVP_OK) return st;
        char **outs;
        size_t no;
        st = kvev_json_get_string_list(o, "outputs", path, line, &outs, &no, err);
        if (st != KVP_OK) return st;
        kvev_strv_free(outs, no);
        if (no == 0) return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: field 'outputs' is empty", path, line);
        const json_t *others = json_object_get(o, "others");
        if (others && !json_is_object(others) && !json_is_null(others))
            return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: field 'others' must be an object", path,
                            line);
        for (size_t k = 0; k < i; k++)
            if (s[k].index == s[i].index)
                return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: index %lld repeats line %zu", path,
                                line, s[i].index, j->items[k].line);
        s[i].line = o;
    }
    return KVP_OK;
}

/* Reads what an earlier run wrote (after dropping a torn last line). */
static kvp_status load_done(experiment *e, const sample *s, size_t n, size_t *torn,
                            kvp_error *err) {
    size_t dropped = 0;
    kvp_status st = kvev_jsonl_repair(e->pred_path, &dropped, err);
    if (st != KVP_OK) return st;
    *torn += dropped;
    FILE *f = fopen(e->pred_path, "rb");
    if (!f) {
        e->n_pending = n;
        return KVP_OK;
    }
    fclose(f);
    kvev_jsonl j;
    st = kvev_jsonl_read(e->pred_path, &j, err);
    if (st != KVP_OK) return st;
    for (size_t i = 0; i < j.n && st == KVP_OK; i++) {
        long long idx;
        st = kvev_json_get_int(j.items[i].value, "index", true, e->pred_path, j.items[i].line, &idx,
                              NULL, err);
        if (st != KVP_OK) break;
        size_t k;
        for (k = 0; k < n; k++)
            if (s[k].index == idx) break;
        if (k == n)
            st = kvu_fail(err, KVP_ERR_FORMAT,
                          "%s:%zu: index %lld is not in the data file (a different data file "
                          "was used for this folder?)", e->pred_path, j.items[i].line, idx);
        else
            e->done[k] = 1;
    }
    kvev_jsonl_free(&j);
    if (st != KVP_OK) return st;
    e->n_pending = 0;
    for (size_t k = 0; k < n; k++) e->n_pending += !e->done[k];
    return KVP_OK;
}

static kvp_status write_run_json(const experiment *e, const char *task, size_t n,
                                 kvp_error *err) {
    kvp_status st = kvev_mkdirs(e->dir, err);
    if (st != KVP_OK) return st;
    char *path = join3(e->dir, "run.json", NULL);
    json_t *o = json_object();
    if (!path || !o || json_object_set_new(o, "task", json_string(task)) ||
        json_object_set_new(o, "experiment", json_string(e->name)) ||
        json_object_set_new(o, "samples", json_integer((json_int_t)n))) {
        free(path);
        json_decref(o);
        return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    }
    st = kvev_json_write_file_atomic(path, o, err);
    free(path);
    json_decref(o);
    return st;
}

static char *task_name_of(const char *data_path) {
    const char *b = strrchr(data_path, '/');
    b = b ? b + 1 : data_path;
    size_t n = strlen(b);
    if (n > 6 && !strcmp(b + n - 6, ".jsonl")) n -= 6;
    else if (n > 5 && !strcmp(b + n - 5, ".json")) n -= 5;
    return strndup(b, n);
}

bool kvev_stop_token_cb(void *user, int32_t id, const float *logits, int n_vocab) {
    (void)id;
    (void)logits;
    (void)n_vocab;
    const volatile sig_atomic_t *stop = user;
    return !*stop;
}

bool kvev_stop_requested(const volatile sig_atomic_t *stop) { return stop && *stop; }

/* Runs one sample and appends its line; *interrupted (nothing written) when
 * the stop flag ended the generation. */
static kvp_status run_one(const kvp_model *model, kvp_cache *cache, const kvev_needle_pred_params *p,
                          const kvp_tokenizer *tok, const sample *s, kvev_jsonl_writer *w,
                          bool *interrupted, kvp_error *err) {
    kvp_gen_result res;
    memset(&res, 0, sizeof res);
    kvp_gen_params gen = p->gen;
    if (p->stop) {
        gen.on_token = kvev_stop_token_cb;
        gen.user = (void *)p->stop;
    }
    kvp_status st = kvp_generate(model, cache, s->ids, s->n_ids, &gen, &res, err);
    if (st != KVP_OK) return st;
    if (kvev_stop_requested(p->stop)) {
        kvp_gen_result_free(&res);
        *interrupted = true;
        return KVP_OK;
    }
    char *text = NULL;
    size_t tl = 0;
    st = kvp_detokenize(tok, res.ids, res.n_ids, true, &text, &tl, err);
    kvp_gen_result_free(&res);
    if (st != KVP_OK) return st;
    if (p->postprocess) tl = kvev_niah_postprocess(text, tl);
    json_t *o = json_object();
    json_t *others = json_object_get(s->line, "others");
    json_t *trunc = json_object_get(s->line, "truncation");
    json_t *len = json_object_get(s->line, "length");
    json_object_set_new(o, "index", json_integer(s->index));
    json_object_set_new(o, "response", json_stringn(text, tl));
    json_object_set(o, "outputs", json_object_get(s->line, "outputs"));
    json_object_set_new(o, "others", others ? json_incref(others) : json_object());
    json_object_set_new(o, "truncation", trunc ? json_incref(trunc) : json_null());
    json_object_set_new(o, "length", len ? json_incref(len)
                                         : json_integer((json_int_t)(s->n_ids + (size_t)p->gen.max_new_tokens)));
    kvp_free(text);
    st = kvev_jsonl_writer_put(w, o, err);
    json_decref(o);
    return st;
}

kvp_status kvev_needle_pred(const kvp_model *model, const kvev_needle_pred_params *p,
                           kvev_needle_pred_summary *sum, kvp_error *err) {
    memset(sum, 0, sizeof *sum);
    if (p->n_methods == 0) return kvu_fail(err, KVP_ERR_INVALID_ARG, "methods: no method given");
    for (size_t m = 0; m < p->n_methods; m++)
        if (!kvev_needle_method_known(p->methods[m]))
            return kvu_fail(err, KVP_ERR_INVALID_ARG, "methods: unknown method '%s'",
                            p->methods[m]);
    for (size_t r = 0; r < p->n_ratios; r++)
        if (!(p->ratios[r] > 0 && p->ratios[r] <= 1))
            return kvu_fail(err, KVP_ERR_INVALID_ARG, "ratios: %g is outside (0, 1]",
                            p->ratios[r]);
    bool need_ratio = false;
    for (size_t m = 0; m < p->n_methods; m++) need_ratio |= strcmp(p->methods[m], "full") != 0;
    if (need_ratio && p->n_ratios == 0)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "ratios: needed for pruning methods");
    if (need_ratio)
        for (size_t a = 0; a < p->n_allocs; a++) {
            kvp_cache_params probe = p->base;
            kvp_status as = kvev_alloc_apply(p->allocs[a], &probe, err);
            if (as != KVP_OK) return as;
        }
    if (p->shard_count < 1 || p->shard_index < 0 || p->shard_index >= p->shard_count)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "shard_index/shard_count: %d/%d is not i/n with 0 <= i < n",
                        p->shard_index, p->shard_count);
    const kvp_tokenizer *tok = p->prompt.tok ? p->prompt.tok : kvp_model_tokenizer(model);
    if (!tok) return kvu_fail(err, KVP_ERR_INVALID_ARG, "the model has no tokenizer");
    kvev_prompt_style ps = p->prompt;
    ps.tok = tok;

    kvev_jsonl data;
    kvp_status st = kvev_jsonl_read(p->data_path, &data, err);
    if (st != KVP_OK) return st;
    size_t n = data.n;
    sample *s = calloc(n ? n : 1, sizeof *s);
    static const kvev_alloc uniform_only = {false, false};
    const kvev_alloc *allocs = p->n_allocs ? p->allocs : &uniform_only;
    size_t n_allocs = p->n_allocs ? p->n_allocs : 1;
    experiment *ex = calloc(p->n_methods * (p->n_ratios ? p->n_ratios : 1) * n_allocs + 1,
                            sizeof *ex);
    char *task = p->task ? strdup(p->task) : task_name_of(p->data_path);
    size_t nex = 0;
    kvp_cache *cache = NULL;
    if (!s || !ex || !task) {
        st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* The task becomes a folder under save_dir: a plain name only, so that
     * nothing is written outside it. */
    if (!*task || !strcmp(task, ".") || !strcmp(task, "..") || strchr(task, '/')) {
        st = kvu_fail(err, KVP_ERR_INVALID_ARG,
                      "task: '%s' is not a plain folder name (no '/', not '.' or '..')", task);
        goto out;
    }
    snprintf(sum->task, sizeof sum->task, "%s", task);
    sum->n_samples = n;
    if (n == 0) {
        st = kvu_fail(err, KVP_ERR_FORMAT, "%s: no samples", p->data_path);
        goto out;
    }
    st = check_data(p->data_path, &data, s, err);
    if (st != KVP_OK) goto out;

    /* Experiments of this shard, in method-major order (method, ratio,
     * allocation); the full cache once, whatever the ratios and allocations. */
    size_t k = 0;
    for (size_t m = 0; m < p->n_methods; m++) {
        bool full = !strcmp(p->methods[m], "full");
        size_t nr = full ? 1 : p->n_ratios, na = full ? 1 : n_allocs;
        for (size_t r = 0; r < nr; r++)
            for (size_t a = 0; a < na; a++, k++) {
                char name[256], tag[96];
                kvev_alloc_tag(allocs[a], &p->base, tag, sizeof tag);
                kvev_needle_exp_name(p->methods[m], full ? 0 : p->ratios[r], p->no_decode_evict,
                                    tag, name, sizeof name);
                bool dup = false;
                for (size_t q = 0; q < nex; q++) dup |= !strcmp(ex[q].name, name);
                if (dup || (int)(k % (size_t)p->shard_count) != p->shard_index) continue;
                experiment *e = &ex[nex++];
                snprintf(e->name, sizeof e->name, "%s", name);
                e->method = p->methods[m];
                e->ratio = full ? -1 : p->ratios[r];
                e->alloc = full ? (kvev_alloc){false, false} : allocs[a];
            }
    }
    sum->n_exps = nex;

    /* Prompts, checked against the model's context before anything runs. */
    kvp_model_info info;
    kvp_model_get_info(model, &info);
    for (size_t i = 0; i < n; i++) {
        const char *input = json_string_value(json_object_get(s[i].line, "input"));
        st = kvev_prompt_ids(&ps, input, &s[i].ids, &s[i].n_ids, err);
        if (st != KVP_OK) {
            kvu_fail_prefix(err, st, "%s:%zu", p->data_path, data.items[i].line);
            goto out;
        }
        size_t need = s[i].n_ids + (size_t)p->gen.max_new_tokens;
        if (info.n_ctx_train > 0 && need > (size_t)info.n_ctx_train) {
            st = kvu_fail(err, KVP_ERR_RANGE,
                          "%s:%zu: the prompt takes %zu tokens + %d to generate = %zu, more than "
                          "the model's context of %d tokens", p->data_path, data.items[i].line,
                          s[i].n_ids, p->gen.max_new_tokens, need, info.n_ctx_train);
            goto out;
        }
    }

    /* Earlier runs: repair torn lines, collect finished indices. */
    size_t total = 0;
    for (size_t q = 0; q < nex; q++) {
        experiment *e = &ex[q];
        char *tdir = join3(p->save_dir, task, NULL);
        e->dir = tdir ? join3(tdir, e->name, NULL) : NULL;
        free(tdir);
        e->pred_path = e->dir ? join3(e->dir, "pred.jsonl", NULL) : NULL;
        e->done = calloc(n, 1);
        if (!e->dir || !e->pred_path || !e->done) {
            st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
            goto out;
        }
        st = load_done(e, s, n, &sum->torn_bytes, err);
        if (st != KVP_OK) goto out;
        total += e->n_pending;
        sum->skipped += n - e->n_pending;
    }
    /* Each experiment records how many samples it is to have, so that eval
     * can tell a finished experiment from a partial one. */
    for (size_t q = 0; q < nex; q++) {
        st = write_run_json(&ex[q], task, n, err);
        if (st != KVP_OK) goto out;
    }

    kvev_needle_progress prog = {0};
    prog.n_exps = nex;
    prog.total = total;
    prog.skipped = sum->skipped;
    double t0 = kvu_now_s();
    for (size_t q = 0; q < nex && st == KVP_OK && !sum->interrupted; q++) {
        experiment *e = &ex[q];
        prog.experiment = e->name;
        prog.exp_index = q;
        if (e->n_pending == 0) continue;
        st = kvev_mkdirs(e->dir, err);
        if (st != KVP_OK) break;
        kvp_cache_params cp = p->base;
        cp.method = e->method;
        if (strcmp(e->method, "full") != 0) {
            cp.num_recent = p->num_recent;
            cp.cache_ratio = e->ratio;
            cp.num_heavy = -1;
            cp.recent_ratio = -1;
            cp.heavy_ratio = -1;
            cp.decode_evict = !p->no_decode_evict;
            st = kvev_alloc_apply(e->alloc, &cp, err);
            if (st != KVP_OK) break;
        }
        st = kvp_cache_new(model, &cp, &cache, err);
        if (st != KVP_OK) {
            kvu_fail_prefix(err, st, "experiment %s", e->name);
            break;
        }
        prog.elapsed_s = kvu_now_s() - t0;
        if (p->on_progress) p->on_progress(p->user, &prog); /* the experiment starts */
        kvev_jsonl_writer w;
        st = kvev_jsonl_writer_open(&w, e->pred_path, p->sync_every > 0 ? p->sync_every : 16, err);
        if (st != KVP_OK) break;
        for (size_t i = 0; i < n && st == KVP_OK && !sum->interrupted; i++) {
            if (e->done[i]) continue;
            if (kvev_stop_requested(p->stop)) {
                sum->interrupted = true;
                break;
            }
            double ts = kvu_now_s();
            st = run_one(model, cache, p, tok, &s[i], &w, &sum->interrupted, err);
            if (st != KVP_OK) {
                kvu_fail_prefix(err, st, "experiment %s, sample index %lld", e->name, s[i].index);
                break;
            }
            if (sum->interrupted) break;
            sum->generated++;
            prog.done++;
            prog.last_ms = (kvu_now_s() - ts) * 1000.0;
            prog.elapsed_s = kvu_now_s() - t0;
            if (p->on_progress) p->on_progress(p->user, &prog);
        }
        st = kvjl_writer_finish(&w, st, err);
        kvp_cache_free(cache);
        cache = NULL;
    }
out:
    kvp_cache_free(cache);
    for (size_t q = 0; q < nex; q++) {
        free(ex[q].dir);
        free(ex[q].pred_path);
        free(ex[q].done);
    }
    free(ex);
    if (s)
        for (size_t i = 0; i < n; i++) kvp_free(s[i].ids);
    free(s);
    free(task);
    kvev_jsonl_free(&data);
    return st;
}
