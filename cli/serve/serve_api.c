/* kvprune serve: OpenAI request bodies -> jobs, jobs -> OpenAI answers. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

char *kvsrv_error_json(const char *message, const char *type, const char *param, const char *code) {
    json_t *o = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", message ? message : "error",
                          "type", type ? type : "invalid_request_error", "param",
                          param ? json_string(param) : json_null(), "code",
                          code ? json_string(code) : json_null());
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static char *model_name(kvsrv_server *s) {
    kvp_model_info info;
    kvp_model_get_info(kvsrv_model(s), &info);
    return strdup(info.name[0] ? info.name : "kvprune");
}

char *kvsrv_models_json(kvsrv_server *s) {
    char *name = model_name(s);
    json_t *o = json_pack("{s:s, s:[{s:s, s:s, s:I, s:s}]}", "object", "list", "data", "id",
                          name ? name : "kvprune", "object", "model", "created", (json_int_t)0,
                          "owned_by", "kvprune");
    free(name);
    char *r = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return r;
}

/* ---- parsing --------------------------------------------------------------- */

typedef struct perr {
    int status;
    char msg[400];
    const char *param;
    const char *code;
} perr;

static bool bad(perr *e, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool bad(perr *e, const char *param, const char *code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->status = 400;
    e->param = param;
    e->code = code;
    return false;
}

static bool get_num(json_t *o, const char *key, double lo, double hi, double *out, bool *set, perr *e) {
    json_t *v = json_object_get(o, key);
    if (set) *set = false;
    if (!v || json_is_null(v)) return true;
    if (!json_is_number(v)) return bad(e, key, "invalid_type", "'%s' must be a number", key);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi)) return bad(e, key, "invalid_value", "'%s' must be in [%g, %g] (got %g)", key, lo, hi, d);
    *out = d;
    if (set) *set = true;
    return true;
}

static bool get_int(json_t *o, const char *key, long long lo, long long hi, long long *out, bool *set, perr *e) {
    json_t *v = json_object_get(o, key);
    if (set) *set = false;
    if (!v || json_is_null(v)) return true;
    if (!json_is_integer(v)) return bad(e, key, "invalid_type", "'%s' must be an integer", key);
    long long d = json_integer_value(v);
    if (d < lo || d > hi) return bad(e, key, "invalid_value", "'%s' must be in [%lld, %lld] (got %lld)", key, lo, hi, d);
    *out = d;
    if (set) *set = true;
    return true;
}

static bool get_bool(json_t *o, const char *key, bool *out, perr *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return true;
    if (!json_is_boolean(v)) return bad(e, key, "invalid_type", "'%s' must be a boolean", key);
    *out = json_is_true(v);
    return true;
}

static bool get_str(json_t *o, const char *key, const char **out, perr *e) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return true;
    if (!json_is_string(v)) return bad(e, key, "invalid_type", "'%s' must be a string", key);
    *out = json_string_value(v);
    return true;
}

/* content: a string, null (an assistant's), or text parts */
static char *message_content(json_t *c, size_t k, perr *e) {
    if (!c || json_is_null(c)) return strdup("");
    if (json_is_string(c)) return strdup(json_string_value(c));
    if (!json_is_array(c)) {
        bad(e, "messages", "invalid_type", "messages[%zu].content must be a string or an array of text parts", k);
        return NULL;
    }
    size_t total = 0, i;
    json_t *part;
    json_array_foreach(c, i, part) {
        json_t *t = json_object_get(part, "text");
        json_t *ty = json_object_get(part, "type");
        if (!json_is_object(part) || !json_is_string(ty) || strcmp(json_string_value(ty), "text") || !json_is_string(t)) {
            bad(e, "messages", "invalid_type", "messages[%zu].content[%zu] must be {\"type\":\"text\",\"text\":...}", k, i);
            return NULL;
        }
        total += json_string_length(t);
    }
    char *r = malloc(total + 1);
    if (!r) return NULL;
    size_t off = 0;
    json_array_foreach(c, i, part) {
        json_t *t = json_object_get(part, "text");
        memcpy(r + off, json_string_value(t), json_string_length(t));
        off += json_string_length(t);
    }
    r[off] = '\0';
    return r;
}

static bool valid_session_id(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 128) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.' || *p == ':'))
            return false;
    return true;
}

static kvsrv_job *job_new(void) {
    kvsrv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 1;
    j->fd = -1;
    j->status = 200;
    return j;
}

static bool parse_cache(kvsrv_server *s, json_t *o, kvsrv_job *j, perr *e) {
    const kvsrv_config *cfg = kvsrv_cfg(s);
    j->cp = cfg->cache;
    const char *method = NULL, *gqa = NULL;
    if (!get_str(o, "kv_method", &method, e)) return false;
    if (method) {
        if (strlen(method) >= sizeof j->method) return bad(e, "kv_method", "invalid_value", "'kv_method' is too long");
        strcpy(j->method, method);
    } else {
        snprintf(j->method, sizeof j->method, "%s", cfg->cache.method);
    }
    j->cp.method = j->method;
    double r;
    long long n;
    bool set, any = false;
    kvp_cache_params b = kvp_cache_default_params();
    if (!get_num(o, "kv_cache_ratio", 0, 1, &r, &set, e)) return false;
    if (set) b.cache_ratio = r, any = true;
    if (!get_num(o, "kv_recent_ratio", 0, 1, &r, &set, e)) return false;
    if (set) b.recent_ratio = r, any = true;
    if (!get_num(o, "kv_heavy_ratio", 0, 1, &r, &set, e)) return false;
    if (set) b.heavy_ratio = r, any = true;
    if (!get_int(o, "kv_num_recent", 0, 1 << 24, &n, &set, e)) return false;
    if (set) b.num_recent = (int)n, any = true;
    if (!get_int(o, "kv_num_heavy", 0, 1 << 24, &n, &set, e)) return false;
    if (set) b.num_heavy = (int)n, any = true;
    /* budgets given by the request replace the server's as a whole */
    if (any) {
        j->cp.num_recent = b.num_recent;
        j->cp.num_heavy = b.num_heavy;
        j->cp.recent_ratio = b.recent_ratio;
        j->cp.heavy_ratio = b.heavy_ratio;
        j->cp.cache_ratio = b.cache_ratio;
    }
    if (!get_bool(o, "kv_decode_evict", &j->cp.decode_evict, e)) return false;
    if (!get_bool(o, "kv_streaming", &j->cp.streaming, e)) return false;
    if (!get_str(o, "kv_gqa_mode", &gqa, e)) return false;
    if (gqa) {
        if (!strcmp(gqa, "per-kv-head")) j->cp.gqa_mode = KVP_GQA_PER_KV_HEAD;
        else if (!strcmp(gqa, "per-query-head")) j->cp.gqa_mode = KVP_GQA_PER_QUERY_HEAD;
        else return bad(e, "kv_gqa_mode", "invalid_value", "'kv_gqa_mode' must be per-kv-head or per-query-head");
    }
    /* the library checks the method and the budgets */
    kvp_cache *probe = NULL;
    kvp_error err = {0};
    if (kvp_cache_new(kvsrv_model(s), &j->cp, &probe, &err))
        return bad(e, method ? "kv_method" : NULL, "invalid_cache_settings", "%s", err.message);
    kvp_cache_free(probe);
    return true;
}

/* Estimated peak KV bytes of a job reading n tokens. */
static size_t reserve_bytes(kvsrv_server *s, const kvsrv_job *j, size_t n) {
    kvp_cache *probe = NULL;
    if (kvp_cache_new(kvsrv_model(s), &j->cp, &probe, NULL)) return 0;
    size_t tb = kvp_cache_token_bytes(probe);
    kvp_cache_free(probe);
    const kvp_cache_params *p = &j->cp;
    double gen = j->gp.max_new_tokens;
    double tokens;
    if (!strcmp(p->method, "full")) {
        tokens = (double)n + gen;
    } else {
        double budget = p->num_recent >= 0 && p->num_heavy >= 0 ? p->num_recent + p->num_heavy
                        : p->cache_ratio >= 0 ? p->cache_ratio * (double)n
                                              : ((p->recent_ratio > 0 ? p->recent_ratio : 0) +
                                                 (p->heavy_ratio > 0 ? p->heavy_ratio : 0)) * (double)n;
        double chunk = j->gp.prefill_chunk > 0 && (size_t)j->gp.prefill_chunk < n ? j->gp.prefill_chunk : (double)n;
        tokens = (budget + chunk > chunk ? budget + chunk : chunk) + (p->decode_evict ? 1 : gen);
    }
    return (size_t)(tokens * (double)tb);
}

kvsrv_job *kvsrv_parse(kvsrv_server *s, kvsrv_kind kind, const char *body, size_t len, int *status,
                       char **error) {
    const kvsrv_config *cfg = kvsrv_cfg(s);
    perr e = {400, "", NULL, NULL};
    json_error_t je;
    kvsrv_job *j = NULL;
    json_t *o = json_loadb(body, len, 0, &je);
    if (!o) {
        bad(&e, NULL, "invalid_json", "the body is not valid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        goto fail;
    }
    if (!json_is_object(o)) {
        bad(&e, NULL, "invalid_json", "the body must be a JSON object");
        goto fail;
    }
    j = job_new();
    if (!j) {
        bad(&e, NULL, "out_of_memory", "out of memory");
        e.status = 500;
        goto fail;
    }
    j->kind = kind;
    j->gp = cfg->gen;
    j->created = (long long)time(NULL);
    const char *model = NULL, *session = NULL;
    double d;
    long long n;
    bool set;
    if (!get_str(o, "model", &model, &e)) goto fail;
    if (!get_int(o, "n", 1, 1, &n, NULL, &e)) goto fail;
    if (!get_bool(o, "stream", &j->stream, &e)) goto fail;
    json_t *so = json_object_get(o, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) {
            bad(&e, "stream_options", "invalid_type", "'stream_options' must be an object");
            goto fail;
        }
        if (!get_bool(so, "include_usage", &j->include_usage, &e)) goto fail;
    }
    if (!get_int(o, "max_tokens", 0, cfg->max_tokens_limit, &n, &set, &e)) goto fail;
    if (set) j->gp.max_new_tokens = (int)n;
    if (!get_int(o, "max_completion_tokens", 0, cfg->max_tokens_limit, &n, &set, &e)) goto fail;
    if (set) j->gp.max_new_tokens = (int)n;
    if (!get_num(o, "temperature", 0, 2, &d, &set, &e)) goto fail;
    if (set) j->gp.temperature = (float)d;
    if (!get_num(o, "top_p", 1e-9, 1, &d, &set, &e)) goto fail;
    if (set) j->gp.top_p = (float)d;
    if (!get_int(o, "seed", 0, (long long)1 << 62, &n, &set, &e)) goto fail;
    if (set) j->gp.seed = (uint64_t)n;
    json_t *stop = json_object_get(o, "stop");
    if (stop && !json_is_null(stop)) {
        size_t ns = json_is_string(stop) ? 1 : json_is_array(stop) ? json_array_size(stop) : 0;
        if ((!json_is_string(stop) && !json_is_array(stop)) || ns > 4) {
            bad(&e, "stop", "invalid_type", "'stop' must be a string or an array of up to 4 strings");
            goto fail;
        }
        j->stop = calloc(ns ? ns : 1, sizeof *j->stop);
        for (size_t i = 0; j->stop && i < ns; i++) {
            json_t *v = json_is_string(stop) ? stop : json_array_get(stop, i);
            if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 256) {
                bad(&e, "stop", "invalid_value", "'stop' strings must be 1 to 256 bytes");
                goto fail;
            }
            j->stop[j->n_stop++] = strdup(json_string_value(v));
            if (json_string_length(v) > j->max_stop) j->max_stop = json_string_length(v);
        }
    }
    if (!get_bool(o, "ignore_eos", &j->gp.ignore_eos, &e)) goto fail;
    if (!get_str(o, "session", &session, &e)) goto fail;
    if (session) {
        if (!valid_session_id(session)) {
            bad(&e, "session", "invalid_value", "'session' must be 1 to 128 characters of [A-Za-z0-9._:-]");
            goto fail;
        }
        j->session_id = strdup(session);
    }
    if (!parse_cache(s, o, j, &e)) goto fail;

    const kvp_tokenizer *tok = kvp_model_tokenizer(kvsrv_model(s));
    kvp_error err = {0};
    size_t n_tokens = 0;
    if (kind == KVSRV_CHAT) {
        json_t *msgs = json_object_get(o, "messages");
        if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
            bad(&e, "messages", "invalid_type", "'messages' must be a non-empty array");
            goto fail;
        }
        size_t nm = json_array_size(msgs);
        j->msgs = calloc(nm, sizeof *j->msgs);
        if (!j->msgs) goto nomem;
        bool has_user = false;
        size_t last_reply = 0; /* messages after the last assistant reply */
        for (size_t k = 0; k < nm; k++) {
            json_t *m = json_array_get(msgs, k);
            json_t *role = json_object_get(m, "role");
            if (!json_is_object(m) || !json_is_string(role)) {
                bad(&e, "messages", "invalid_type", "messages[%zu] must be an object with a string 'role'", k);
                goto fail;
            }
            const char *r = json_string_value(role);
            if (!strcmp(r, "developer")) r = "system";
            if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant")) {
                bad(&e, "messages", "invalid_value", "messages[%zu].role '%s' is not system, user or assistant", k, r);
                goto fail;
            }
            if (!strcmp(r, "system") && k != 0) {
                bad(&e, "messages", "invalid_value", "messages[%zu]: a system message must come first", k);
                goto fail;
            }
            char *content = message_content(json_object_get(m, "content"), k, &e);
            if (!content) {
                if (e.msg[0]) goto fail;
                goto nomem;
            }
            j->msgs[k].content = content;
            j->msgs[k].role = strdup(r);
            j->n_msgs++;
            if (!j->msgs[k].role) goto nomem;
            if (!strcmp(r, "user")) has_user = true;
            if (!strcmp(r, "assistant")) last_reply = k + 1;
        }
        if (!has_user) {
            bad(&e, "messages", "invalid_value", "'messages' needs a user message");
            goto fail;
        }
        /* what the request reads: everything, or for a session that goes on,
         * the messages after the last reply */
        size_t from = j->session_id ? last_reply : 0;
        int32_t *ids = NULL;
        if (from == j->n_msgs) from = 0;
        if (kvp_chat_tokenize(tok, NULL, j->msgs + from, j->n_msgs - from, true, &ids, &n_tokens, &err)) {
            bad(&e, "messages", "invalid_value", "%s", err.message);
            goto fail;
        }
        kvp_free(ids);
    } else {
        json_t *p = json_object_get(o, "prompt");
        if (json_is_array(p) && json_array_size(p) == 1) p = json_array_get(p, 0);
        if (!json_is_string(p)) {
            bad(&e, "prompt", "invalid_type", "'prompt' must be a string");
            goto fail;
        }
        j->prompt = strdup(json_string_value(p));
        if (!j->prompt) goto nomem;
        kvp_tokenize_params tp = kvp_tokenize_default_params();
        if (kvp_tokenize(tok, j->prompt, strlen(j->prompt), &tp, &j->ids, &j->n_ids, &err)) {
            bad(&e, "prompt", "invalid_value", "%s", err.message);
            goto fail;
        }
        if (j->n_ids == 0) {
            bad(&e, "prompt", "invalid_value", "'prompt' is empty");
            goto fail;
        }
        n_tokens = j->n_ids;
    }
    if (n_tokens > (size_t)cfg->max_prompt_tokens) {
        bad(&e, kind == KVSRV_CHAT ? "messages" : "prompt", "context_length_exceeded",
            "the prompt has %zu tokens, more than the server's limit of %d (--max-prompt-tokens)", n_tokens,
            cfg->max_prompt_tokens);
        goto fail;
    }
    j->reserve = reserve_bytes(s, j, n_tokens);
    json_decref(o);
    return j;
nomem:
    e.status = 500;
    bad(&e, NULL, "out_of_memory", "out of memory");
    e.status = 500;
fail:
    json_decref(o);
    kvsrv_job_unref(j);
    *status = e.status;
    *error = kvsrv_error_json(e.msg, e.status >= 500 ? "server_error" : "invalid_request_error", e.param, e.code);
    return NULL;
}

/* ---- running ---------------------------------------------------------------- */

typedef struct run_ctx {
    kvsrv_server *srv;
    kvsrv_job *j;
    kvp_detok *detok;
    char *model;
    char *text;           /* the reply so far                                */
    size_t len, cap;
    size_t emitted;       /* bytes of text streamed                          */
    bool stop_hit, aborted, oom;
} run_ctx;

static bool append(run_ctx *r, const char *s, size_t n) {
    if (r->len + n + 1 > r->cap) {
        size_t cap = (r->len + n + 1) * 2;
        char *t = realloc(r->text, cap);
        if (!t) return false;
        r->text = t;
        r->cap = cap;
    }
    memcpy(r->text + r->len, s, n);
    r->len += n;
    r->text[r->len] = '\0';
    return true;
}

static void emit_json(kvsrv_job *j, json_t *o, bool sse) {
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s) {
        if (sse) kvsrv_job_emit(j, "data: ", 6);
        kvsrv_job_emit(j, s, strlen(s));
        if (sse) kvsrv_job_emit(j, "\n\n", 2);
    }
    free(s);
    json_decref(o);
}

static json_t *chunk_base(run_ctx *r) {
    return json_pack("{s:s, s:s, s:I, s:s}", "id", r->j->id, "object",
                     r->j->kind == KVSRV_CHAT ? "chat.completion.chunk" : "text_completion", "created",
                     (json_int_t)r->j->created, "model", r->model);
}

/* Streams text[emitted..upto). */
static void emit_delta(run_ctx *r, size_t upto) {
    if (upto <= r->emitted) return;
    json_t *piece = json_stringn(r->text + r->emitted, upto - r->emitted);
    if (!piece) return; /* not yet a whole character */
    json_t *o = chunk_base(r);
    json_t *choice = r->j->kind == KVSRV_CHAT
                         ? json_pack("{s:i, s:{s:o}, s:n}", "index", 0, "delta", "content", piece, "finish_reason")
                         : json_pack("{s:i, s:o, s:n, s:n}", "index", 0, "text", piece, "logprobs", "finish_reason");
    json_object_set_new(o, "choices", json_pack("[o]", choice));
    emit_json(r->j, o, true);
    r->emitted = upto;
}

static bool on_token(void *user, int32_t id, const float *logits, int n_vocab) {
    (void)logits;
    (void)n_vocab;
    run_ctx *r = user;
    kvsrv_job *j = r->j;
    if (__atomic_load_n(&j->cancelled, __ATOMIC_ACQUIRE) || kvsrv_stopping(r->srv)) {
        r->aborted = true;
        return false;
    }
    const char *piece = NULL;
    size_t before = r->len;
    if (kvp_detok_push(r->detok, id, &piece, NULL) == KVP_OK && piece && !append(r, piece, strlen(piece))) {
        r->oom = true;
        return false;
    }
    if (j->n_stop) {
        size_t from = before + 1 > j->max_stop ? before + 1 - j->max_stop : 0;
        size_t cut = r->len;
        for (size_t k = 0; k < j->n_stop; k++) {
            size_t sl = strlen(j->stop[k]);
            for (size_t p = from; p + sl <= r->len && p < cut; p++)
                if (!memcmp(r->text + p, j->stop[k], sl)) {
                    cut = p;
                    break;
                }
        }
        if (cut < r->len) {
            r->len = cut;
            r->text[cut] = '\0';
            r->stop_hit = true;
        }
    }
    if (j->stream) {
        /* hold back what could be the start of a stop string, and never
         * split a UTF-8 character */
        size_t upto = r->len;
        if (!r->stop_hit && j->max_stop > 1) upto = upto > j->max_stop - 1 ? upto - (j->max_stop - 1) : 0;
        while (upto > r->emitted && upto < r->len && ((unsigned char)r->text[upto] & 0xC0) == 0x80) upto--;
        emit_delta(r, upto);
    }
    return !r->stop_hit;
}

static json_t *kv_json(run_ctx *r, conv *c, bool restarted) {
    kvp_cache_stats st;
    kvp_cache_get_stats(c->cache, &st);
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:o, s:b}", "method", r->j->method, "kv_bytes",
                     (json_int_t)st.kv_bytes, "kv_bytes_peak", (json_int_t)st.kv_bytes_peak, "kv_bytes_full",
                     (json_int_t)st.kv_bytes_full, "kept_tokens", (json_int_t)st.n_kept_total, "tokens_seen",
                     (json_int_t)st.n_seen, "budget_recent", st.num_recent, "budget_heavy", st.num_heavy,
                     "session", r->j->session_id ? json_string(r->j->session_id) : json_null(),
                     "session_restarted", restarted);
}

static bool is_eos_id(const kvp_model *m, int32_t id) {
    kvp_model_info info;
    kvp_model_get_info(m, &info);
    for (int i = 0; i < info.n_eos; i++)
        if (info.eos_ids[i] == id) return true;
    return false;
}

void kvsrv_run(kvsrv_server *s, kvsrv_job *j, conv *c, uint64_t *digest, size_t *n_read) {
    const kvsrv_config *cfg = kvsrv_cfg(s);
    run_ctx r = {s, j, NULL, model_name(s), NULL, 0, 0, 0, false, false, false};
    kvp_error err = {0};
    static int counter; /* ids only need to differ */
    snprintf(j->id, sizeof j->id, "%s-%lld%06d", j->kind == KVSRV_CHAT ? "chatcmpl" : "cmpl", j->created,
             __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) % 1000000);
    if (!r.model || kvp_detok_new(c->tok, true, &r.detok, &err)) {
        kvsrv_fail(j, 500, "out of memory", "server_error", "out_of_memory");
        goto out;
    }
    if (j->stream && j->kind == KVSRV_CHAT) {
        json_t *o = chunk_base(&r);
        json_object_set_new(o, "choices", json_pack("[{s:i, s:{s:s, s:s}, s:n}]", "index", 0, "delta", "role",
                                                    "assistant", "content", "", "finish_reason"));
        emit_json(j, o, true);
    }
    kvp_gen_params gp = j->gp;
    gp.on_token = on_token;
    gp.user = &r;
    gp.n_threads = cfg->threads;
    kvp_gen_result res;
    memset(&res, 0, sizeof res);
    bool restarted = false;
    size_t prompt_tokens = 0;
    kvp_status st;
    if (j->kind == KVSRV_CHAT) {
        const kvp_chat_message *m = j->msgs;
        size_t n = j->n_msgs;
        if (digest && c->started && *n_read > 0 && n > *n_read && !strcmp(m[*n_read - 1].role, "assistant") &&
            kvsrv_digest(m, *n_read) == *digest) {
            m += *n_read; /* the session has read the rest */
            n -= *n_read;
        } else if (c->started) {
            conv_reset(c);
            restarted = true;
        }
        char *reply = NULL;
        st = conv_turn(c, m, n, &gp, &res, &reply, &err);
        free(reply);
        prompt_tokens = c->last_prompt_tokens;
    } else {
        /* a completion continues the text its session has read */
        int32_t *ids = j->ids;
        size_t n = j->n_ids;
        int32_t *joined = NULL;
        if (c->started && c->pending >= 0) {
            joined = malloc((n + 1) * sizeof *joined);
            if (joined) {
                joined[0] = c->pending;
                memcpy(joined + 1, ids, n * sizeof *ids);
                ids = joined;
                n++;
            }
        }
        gp.keep_cache = c->started;
        st = kvp_generate((kvp_model *)c->model, c->cache, ids, n, &gp, &res, &err);
        free(joined);
        prompt_tokens = n;
        if (st) {
            conv_reset(c);
        } else {
            c->started = true;
            c->pending = res.n_ids > 0 && !(res.stopped_at_eos && is_eos_id(c->model, res.ids[res.n_ids - 1]))
                             ? res.ids[res.n_ids - 1]
                             : -1;
        }
    }
    if (r.aborted) {
        /* the client left (or the server stops): nobody reads the answer; a
         * session must not keep a reply its client never saw */
        if (digest) {
            conv_reset(c);
            *digest = 0;
            *n_read = 0;
        }
        kvp_gen_result_free(&res);
        kvsrv_job_done(j);
        goto out;
    }
    if (st || r.oom) {
        if (digest) *digest = 0, *n_read = 0;
        kvsrv_fail(j, st == KVP_ERR_INVALID_ARG || st == KVP_ERR_RANGE ? 400 : 500,
                   st ? err.message : "out of memory", st == KVP_ERR_INVALID_ARG || st == KVP_ERR_RANGE
                                                           ? "invalid_request_error" : "server_error",
                   st == KVP_ERR_RANGE ? "context_length_exceeded" : NULL);
        kvp_gen_result_free(&res);
        goto out;
    }
    if (!r.stop_hit) {
        const char *rest = kvp_detok_flush(r.detok);
        if (rest && *rest) append(&r, rest, strlen(rest));
    }
    if (j->kind == KVSRV_CHAT) {
        if (r.stop_hit) conv_set_reply(c, r.text ? r.text : "", r.len);
        if (digest) {
            /* the session has read the request's messages and the reply */
            kvp_chat_message *all = malloc((j->n_msgs + 1) * sizeof *all);
            if (all) {
                memcpy(all, j->msgs, j->n_msgs * sizeof *all);
                all[j->n_msgs] = (kvp_chat_message){"assistant", r.text ? r.text : ""};
                *digest = kvsrv_digest(all, j->n_msgs + 1);
                *n_read = j->n_msgs + 1;
                free(all);
            } else {
                *digest = 0;
                *n_read = 0;
            }
        }
    }
    const char *finish = r.stop_hit || res.stopped_at_eos || res.n_ids < (size_t)gp.max_new_tokens ? "stop" : "length";
    json_t *usage = json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)prompt_tokens, "completion_tokens",
                              (json_int_t)res.n_ids, "total_tokens", (json_int_t)(prompt_tokens + res.n_ids));
    json_t *kv = kv_json(&r, c, restarted);
    if (j->stream) {
        emit_delta(&r, r.len);
        json_t *o = chunk_base(&r);
        json_t *choice = j->kind == KVSRV_CHAT
                             ? json_pack("{s:i, s:{}, s:s}", "index", 0, "delta", "finish_reason", finish)
                             : json_pack("{s:i, s:s, s:n, s:s}", "index", 0, "text", "", "logprobs", "finish_reason", finish);
        json_object_set_new(o, "choices", json_pack("[o]", choice));
        json_object_set(o, "kv_cache", kv);
        emit_json(j, o, true);
        if (j->include_usage) {
            o = chunk_base(&r);
            json_object_set_new(o, "choices", json_array());
            json_object_set(o, "usage", usage);
            json_object_set(o, "kv_cache", kv);
            emit_json(j, o, true);
        }
        kvsrv_job_emit(j, "data: [DONE]\n\n", 14);
    } else {
        json_t *text = json_stringn(r.text ? r.text : "", r.len);
        if (!text) text = json_string("");
        json_t *o = chunk_base(&r);
        json_object_set_new(o, "object", json_string(j->kind == KVSRV_CHAT ? "chat.completion" : "text_completion"));
        json_t *choice = j->kind == KVSRV_CHAT
                             ? json_pack("{s:i, s:{s:s, s:o}, s:n, s:s}", "index", 0, "message", "role", "assistant",
                                         "content", text, "logprobs", "finish_reason", finish)
                             : json_pack("{s:i, s:o, s:n, s:s}", "index", 0, "text", text, "logprobs", "finish_reason", finish);
        json_object_set_new(o, "choices", json_pack("[o]", choice));
        json_object_set(o, "usage", usage);
        json_object_set(o, "kv_cache", kv);
        emit_json(j, o, false);
    }
    json_decref(usage);
    json_decref(kv);
    kvp_gen_result_free(&res);
    kvsrv_job_done(j);
out:
    kvp_detok_free(r.detok);
    free(r.text);
    free(r.model);
}
