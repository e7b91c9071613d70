/* A conversation kept in one cache (see conversation.h). */
#include "conversation.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void set_error(kvp_error *err, kvp_status s, const char *msg) {
    if (!err) return;
    err->status = s;
    snprintf(err->message, sizeof err->message, "%s", msg);
}

kvp_status conv_init(conv *c, const kvp_model *model, const kvp_cache_params *cp,
                     const char *template_name, const char *system, kvp_error *err) {
    memset(c, 0, sizeof *c);
    c->pending = -1;
    c->model = model;
    c->tok = kvp_model_tokenizer(model);
    if (!c->tok) {
        set_error(err, KVP_ERR_INVALID_ARG, "the model has no tokenizer, so it cannot chat");
        return KVP_ERR_INVALID_ARG;
    }
    kvp_status s = kvp_cache_new(model, cp, &c->cache, err);
    if (s) return s;
    c->template_name = dup_str(template_name);
    c->system = dup_str(system);
    if ((template_name && !c->template_name) || (system && !c->system)) {
        conv_free(c);
        set_error(err, KVP_ERR_NOMEM, "out of memory");
        return KVP_ERR_NOMEM;
    }
    return KVP_OK;
}

void conv_reset(conv *c) {
    kvp_cache_reset(c->cache);
    free(c->last_user);
    free(c->last_reply);
    c->last_user = c->last_reply = NULL;
    c->started = false;
    c->pending = -1;
    c->n_turns = 0;
}

void conv_free(conv *c) {
    if (!c) return;
    conv_reset(c);
    kvp_cache_free(c->cache);
    free(c->template_name);
    free(c->system);
    memset(c, 0, sizeof *c);
    c->pending = -1;
}

bool conv_set_reply(conv *c, const char *text, size_t len) {
    char *r = malloc(len + 1);
    if (!r) return false;
    memcpy(r, text, len);
    r[len] = '\0';
    free(c->last_reply);
    c->last_reply = r;
    return true;
}

static bool is_eos(const conv *c, int32_t id) {
    kvp_model_info info;
    kvp_model_get_info(c->model, &info);
    for (int i = 0; i < info.n_eos; i++)
        if (info.eos_ids[i] == id) return true;
    return false;
}

/* The tokens of the new messages: the whole rendering for the first turn,
 * else the reply's pending id and what follows the reply. */
static kvp_status turn_tokens(conv *c, const kvp_chat_message *msgs, size_t n_new, int32_t **ids,
                              size_t *n_ids, kvp_error *err) {
    size_t n = n_new + 3;
    kvp_chat_message *m = malloc(n * sizeof *m);
    if (!m) {
        set_error(err, KVP_ERR_NOMEM, "out of memory");
        return KVP_ERR_NOMEM;
    }
    size_t k = 0, n_old = 0;
    kvp_status s;
    if (!c->started) {
        if (c->system && (n_new == 0 || strcmp(msgs[0].role, "system")))
            m[k++] = (kvp_chat_message){"system", c->system};
    } else {
        /* the built-in templates render a turn from the previous user
         * message and reply alone (test_chat_turns checks it) */
        if (c->last_user) m[k++] = (kvp_chat_message){"user", c->last_user};
        m[k++] = (kvp_chat_message){"assistant", c->last_reply ? c->last_reply : ""};
        n_old = k;
    }
    memcpy(m + k, msgs, n_new * sizeof *m);
    k += n_new;
    int32_t *t = NULL;
    size_t nt = 0;
    s = kvp_chat_tokenize_next(c->tok, c->template_name, m, n_old, k, true, &t, &nt, err);
    free(m);
    if (s) return s;
    if (c->started && c->pending >= 0) {
        int32_t *u = realloc(t, (nt + 1) * sizeof *u);
        if (!u) {
            kvp_free(t);
            set_error(err, KVP_ERR_NOMEM, "out of memory");
            return KVP_ERR_NOMEM;
        }
        memmove(u + 1, u, nt * sizeof *u);
        u[0] = c->pending;
        t = u;
        nt++;
    }
    *ids = t;
    *n_ids = nt;
    return KVP_OK;
}

kvp_status conv_turn(conv *c, const kvp_chat_message *msgs, size_t n_new, const kvp_gen_params *gp,
                     kvp_gen_result *res, char **reply, kvp_error *err) {
    *reply = NULL;
    memset(res, 0, sizeof *res);
    const char *user = NULL;
    for (size_t i = 0; i < n_new; i++)
        if (msgs[i].role && !strcmp(msgs[i].role, "user")) user = msgs[i].content;
    if (n_new == 0 || !user) {
        set_error(err, KVP_ERR_INVALID_ARG, "a turn needs a user message");
        return KVP_ERR_INVALID_ARG;
    }
    int32_t *ids = NULL;
    size_t n_ids = 0;
    kvp_status s = turn_tokens(c, msgs, n_new, &ids, &n_ids, err);
    if (s) return s;
    kvp_gen_params p = *gp;
    p.keep_cache = c->started;
    s = kvp_generate(c->model, c->cache, ids, n_ids, &p, res, err);
    kvp_free(ids);
    if (s) {
        /* a failed block leaves the cache mid-block */
        conv_reset(c);
        return s;
    }
    size_t n_text = res->n_ids;
    if (res->stopped_at_eos && n_text > 0) n_text--;
    char *text = NULL;
    size_t len = 0;
    char *u = malloc(strlen(user) + 1);
    if (u) strcpy(u, user);
    if (!u || kvp_detokenize(c->tok, res->ids, n_text, true, &text, &len, err)) {
        free(u);
        kvp_gen_result_free(res);
        conv_reset(c);
        if (!text) set_error(err, KVP_ERR_NOMEM, "out of memory");
        return err ? err->status : KVP_ERR_NOMEM;
    }
    free(c->last_user);
    c->last_user = u;
    free(c->last_reply);
    c->last_reply = malloc(len + 1);
    if (!c->last_reply) {
        kvp_free(text);
        kvp_gen_result_free(res);
        conv_reset(c);
        set_error(err, KVP_ERR_NOMEM, "out of memory");
        return KVP_ERR_NOMEM;
    }
    memcpy(c->last_reply, text, len + 1);
    /* the reply's last id has not gone through the cache; an EOS is
     * replaced by the template's own end of turn */
    c->pending = res->n_ids > 0 && !(res->stopped_at_eos && is_eos(c, res->ids[res->n_ids - 1]))
                     ? res->ids[res->n_ids - 1]
                     : -1;
    c->started = true;
    c->n_turns++;
    c->last_prompt_tokens = n_ids;
    c->last_gen_tokens = res->n_ids;
    c->last_prefill_ms = res->prefill_ms;
    c->last_decode_ms = res->decode_ms;
    *reply = malloc(len + 1);
    if (*reply) memcpy(*reply, text, len + 1);
    kvp_free(text);
    if (!*reply) {
        set_error(err, KVP_ERR_NOMEM, "out of memory");
        return KVP_ERR_NOMEM;
    }
    return KVP_OK;
}

kvp_status conv_budget_from_mib(const kvp_model *model, kvp_cache_params *cp, double mib, int block,
                                int first_chunk, kvp_error *err) {
    char msg[256];
    if (cp->recent_ratio >= 0 || cp->heavy_ratio >= 0 || cp->cache_ratio >= 0) {
        set_error(err, KVP_ERR_INVALID_ARG, "--max-kv-mib sets the budgets: drop the ratio flags");
        return KVP_ERR_INVALID_ARG;
    }
    /* bytes per token in the requested head mode */
    kvp_cache_params probe = kvp_cache_default_params();
    probe.gqa_mode = cp->gqa_mode;
    kvp_cache *c = NULL;
    kvp_status s = kvp_cache_new(model, &probe, &c, err);
    if (s) return s;
    size_t tb = kvp_cache_token_bytes(c);
    kvp_cache_free(c);
    double tokens_d = mib * 1048576.0 / (double)tb;
    int tokens = tokens_d > 1e9 ? 1000000000 : (int)tokens_d;
    if (!strcmp(cp->method, "full")) {
        if (tokens < 1) {
            snprintf(msg, sizeof msg, "--max-kv-mib %g holds no token (%zu bytes each)", mib, tb);
            set_error(err, KVP_ERR_INVALID_ARG, msg);
            return KVP_ERR_INVALID_ARG;
        }
        cp->max_tokens = tokens;
        return KVP_OK;
    }
    if (first_chunk > tokens) {
        snprintf(msg, sizeof msg, "--max-kv-mib %g holds %d tokens (%zu bytes each): a prefill chunk of %d does "
                 "not fit", mib, tokens, tb, first_chunk);
        set_error(err, KVP_ERR_INVALID_ARG, msg);
        return KVP_ERR_INVALID_ARG;
    }
    bool sink = !strcmp(cp->method, "sink");
    int budget = tokens - block;
    int fixed = sink ? (cp->num_heavy >= 0 ? cp->num_heavy : 4) : (cp->num_recent >= 0 ? cp->num_recent : 16);
    if (budget <= fixed) {
        snprintf(msg, sizeof msg,
                 "--max-kv-mib %g holds %d tokens (%zu bytes each): not enough for %d %s tokens and %d "
                 "more during decoding",
                 mib, tokens, tb, fixed, sink ? "sink" : "recent", block);
        set_error(err, KVP_ERR_INVALID_ARG, msg);
        return KVP_ERR_INVALID_ARG;
    }
    if (sink) {
        cp->num_heavy = fixed;
        cp->num_recent = budget - fixed;
    } else {
        cp->num_recent = fixed;
        cp->num_heavy = budget - fixed;
    }
    cp->max_tokens = tokens;
    return KVP_OK;
}

/* The conversation's state rides in the cache file's application data. */
kvp_status conv_save(const conv *c, const char *path, kvp_error *err) {
    json_t *o = json_pack("{s:s, s:b, s:I, s:o, s:o, s:o, s:o}", "kind", "kvprune-chat", "started", c->started,
                          "turns", (json_int_t)c->n_turns, "template",
                          c->template_name ? json_string(c->template_name) : json_null(), "system",
                          c->system ? json_string(c->system) : json_null(), "last_user",
                          c->last_user ? json_string(c->last_user) : json_null(), "last_reply",
                          c->last_reply ? json_string(c->last_reply) : json_null());
    char *app = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!app) {
        set_error(err, KVP_ERR_NOMEM, "out of memory");
        return KVP_ERR_NOMEM;
    }
    int32_t pending = c->pending;
    kvp_status s = kvp_cache_save(c->model, c->cache, path, &pending, pending >= 0 ? 1 : 0, app, err);
    free(app);
    return s;
}

static char *json_dup(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? dup_str(json_string_value(v)) : NULL;
}

kvp_status conv_load(conv *c, const char *path, kvp_error *err) {
    kvp_cache *cache = NULL;
    int32_t *hist = NULL;
    size_t n_hist = 0;
    char *app = NULL;
    kvp_status s = kvp_cache_load(c->model, path, &cache, &hist, &n_hist, &app, err);
    if (s) return s;
    /* a cache saved by another program (e.g. generate --save-cache after a
     * document) continues as a conversation whose last reply was empty */
    json_t *o = app && *app ? json_loads(app, 0, NULL) : NULL;
    kvp_cache_stats st;
    kvp_cache_get_stats(cache, &st);
    conv_reset(c);
    kvp_cache_free(c->cache);
    c->cache = cache;
    c->started = st.n_seen > 0;
    c->pending = n_hist > 0 ? hist[n_hist - 1] : -1;
    if (o && json_is_object(o)) {
        json_t *t = json_object_get(o, "turns");
        c->n_turns = json_is_integer(t) ? (int64_t)json_integer_value(t) : 0;
        c->last_user = json_dup(o, "last_user");
        c->last_reply = json_dup(o, "last_reply");
        char *sys = json_dup(o, "system");
        if (sys) {
            free(c->system);
            c->system = sys;
        }
        char *tm = json_dup(o, "template");
        if (tm) {
            free(c->template_name);
            c->template_name = tm;
        }
    }
    json_decref(o);
    kvp_free(hist);
    kvp_free(app);
    return KVP_OK;
}
