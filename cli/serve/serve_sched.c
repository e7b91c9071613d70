/* The queue, the workers, sessions and the KV memory cap of kvprune serve.
 *
 * Fairness: jobs start in arrival order. A job whose session is busy waits
 * without holding others back (a session runs one request at a time); a
 * job that does not fit in the memory cap holds back the jobs behind it, so
 * a large request is never starved by a stream of small ones. Memory is
 * the KV bytes reserved by running jobs (their estimated peak) plus what
 * idle sessions hold; idle sessions are dropped, least recently used
 * first, to make room, and a request that could not fit even alone is
 * refused with 503 at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

struct kvsrv_session {
    char *id;
    conv c;
    bool conv_ok;
    char sig[160];      /* the cache settings it was made with            */
    uint64_t digest;    /* of the messages it has read (chat)             */
    size_t n_read;
    bool busy;
    uint64_t last_used;
    size_t kv_bytes;    /* held while idle                                */
    struct kvsrv_session *next;
};

struct kvsrv_server {
    kvp_model *model;
    kvsrv_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    kvsrv_job *head, *tail;
    int n_queued, n_running;
    kvsrv_session *sessions;
    int n_sessions;
    size_t running_bytes;
    size_t cap;
    bool stop;
    pthread_t *workers;
    int n_workers;
    uint64_t tick;
};

const kvsrv_config *kvsrv_cfg(const kvsrv_server *s) { return &s->cfg; }
kvp_model *kvsrv_model(const kvsrv_server *s) { return s->model; }

bool kvsrv_stopping(const kvsrv_server *s) {
    return __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
}

uint64_t kvsrv_digest(const kvp_chat_message *m, size_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        const char *parts[2] = {m[i].role, m[i].content};
        for (int k = 0; k < 2; k++) {
            for (const unsigned char *p = (const unsigned char *)parts[k]; p && *p; p++) {
                h ^= *p;
                h *= 1099511628211ULL;
            }
            h ^= 0xff; /* separator */
            h *= 1099511628211ULL;
        }
    }
    return h;
}

static void cache_sig(const kvp_cache_params *p, char *out, size_t n) {
    snprintf(out, n, "%s|%d|%d|%.17g|%.17g|%.17g|%d|%d|%d|%d|%d", p->method, p->num_recent, p->num_heavy,
             p->recent_ratio, p->heavy_ratio, p->cache_ratio, p->decode_evict, p->streaming,
             p->num_sink, (int)p->gqa_mode, p->max_tokens);
}

static void session_free(kvsrv_session *ss) {
    if (ss->conv_ok) conv_free(&ss->c);
    free(ss->id);
    free(ss);
}

/* ---- jobs -------------------------------------------------------------- */

void kvsrv_job_unref(kvsrv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0) return;
    for (size_t i = 0; i < j->n_msgs; i++) {
        free((char *)j->msgs[i].role);
        free((char *)j->msgs[i].content);
    }
    free(j->msgs);
    for (size_t i = 0; i < j->n_stop; i++) free(j->stop[i]);
    free(j->stop);
    free(j->prompt);
    kvp_free(j->ids);
    free(j->session_id);
    free(j->out);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

bool kvsrv_job_emit(kvsrv_job *j, const char *data, size_t n) {
    pthread_mutex_lock(&j->mu);
    bool ok = true;
    if (j->out_len + n + 1 > j->out_cap) {
        size_t cap = (j->out_len + n + 1) * 2;
        char *o = realloc(j->out, cap);
        if (!o) ok = false;
        else {
            j->out = o;
            j->out_cap = cap;
        }
    }
    if (ok) {
        memcpy(j->out + j->out_len, data, n);
        j->out_len += n;
        j->out[j->out_len] = '\0';
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return ok;
}

void kvsrv_job_done(kvsrv_job *j) {
    pthread_mutex_lock(&j->mu);
    j->state = KVSRV_DONE;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

void kvsrv_fail(kvsrv_job *j, int status, const char *message, const char *type, const char *code) {
    char *e = kvsrv_error_json(message, type, NULL, code);
    if (j->stream) {
        /* the stream has begun with 200: the error is its last event */
        kvsrv_job_emit(j, "data: ", 6);
        if (e) kvsrv_job_emit(j, e, strlen(e));
        kvsrv_job_emit(j, "\n\ndata: [DONE]\n\n", 16);
    } else {
        pthread_mutex_lock(&j->mu);
        j->status = status;
        pthread_mutex_unlock(&j->mu);
        if (e) kvsrv_job_emit(j, e, strlen(e));
    }
    free(e);
    kvsrv_job_done(j);
}

void kvsrv_cancel(kvsrv_job *j) {
    pthread_mutex_lock(&j->mu);
    __atomic_store_n(&j->cancelled, true, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    /* a queued job is dropped by the next worker that looks at the queue */
    kvsrv_server *s = j->srv;
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- the queue ----------------------------------------------------------- */

static size_t idle_session_bytes(const kvsrv_server *s, const kvsrv_session *except) {
    size_t b = 0;
    for (const kvsrv_session *ss = s->sessions; ss; ss = ss->next)
        if (!ss->busy && ss != except) b += ss->kv_bytes;
    return b;
}

static kvsrv_session *find_session(kvsrv_server *s, const char *id) {
    for (kvsrv_session *ss = s->sessions; ss; ss = ss->next)
        if (!strcmp(ss->id, id)) return ss;
    return NULL;
}

static void drop_session(kvsrv_server *s, kvsrv_session *victim) {
    for (kvsrv_session **pp = &s->sessions; *pp; pp = &(*pp)->next)
        if (*pp == victim) {
            *pp = victim->next;
            s->n_sessions--;
            session_free(victim);
            return;
        }
}

static kvsrv_session *lru_idle(kvsrv_server *s, const kvsrv_session *except) {
    kvsrv_session *best = NULL;
    for (kvsrv_session *ss = s->sessions; ss; ss = ss->next)
        if (!ss->busy && ss != except && (!best || ss->last_used < best->last_used)) best = ss;
    return best;
}

static void unlink_job(kvsrv_server *s, kvsrv_job *prev, kvsrv_job *j) {
    if (prev) prev->next = j->next;
    else s->head = j->next;
    if (s->tail == j) s->tail = prev;
    j->next = NULL;
    s->n_queued--;
}

/* The next job to run (under s->mu), or NULL. *fail_status is set when the
 * returned job must be failed instead of run. */
static kvsrv_job *pick(kvsrv_server *s, kvsrv_session **sess_out, int *fail_status) {
    *fail_status = 0;
    *sess_out = NULL;
    kvsrv_job *prev = NULL;
    for (kvsrv_job *j = s->head; j;) {
        kvsrv_job *next = j->next;
        if (__atomic_load_n(&j->cancelled, __ATOMIC_ACQUIRE)) {
            unlink_job(s, prev, j);
            kvsrv_job_done(j);
            kvsrv_job_unref(j);
            j = next;
            continue;
        }
        kvsrv_session *ss = j->session_id ? find_session(s, j->session_id) : NULL;
        if (ss && ss->busy) { /* its session is in use: let others pass */
            prev = j;
            j = next;
            continue;
        }
        /* memory: evict idle sessions (least recently used first) to fit;
         * the job's own session counts with the job */
        size_t need = j->reserve + (ss ? ss->kv_bytes : 0);
        if (s->cap) {
            while (s->running_bytes + idle_session_bytes(s, ss) + need > s->cap) {
                kvsrv_session *v = lru_idle(s, ss);
                if (!v) break;
                drop_session(s, v);
            }
            if (s->running_bytes + idle_session_bytes(s, ss) + need > s->cap) return NULL;
        }
        if (j->session_id && !ss) {
            if (s->n_sessions >= s->cfg.max_sessions) {
                kvsrv_session *v = lru_idle(s, NULL);
                if (!v) {
                    unlink_job(s, prev, j);
                    *fail_status = 503;
                    return j;
                }
                drop_session(s, v);
            }
            ss = calloc(1, sizeof *ss);
            if (ss) ss->id = strdup(j->session_id);
            if (!ss || !ss->id) {
                free(ss);
                unlink_job(s, prev, j);
                *fail_status = 500;
                return j;
            }
            ss->next = s->sessions;
            s->sessions = ss;
            s->n_sessions++;
        }
        unlink_job(s, prev, j);
        if (ss) ss->busy = true;
        *sess_out = ss;
        return j;
    }
    return NULL;
}

static void *worker(void *arg) {
    kvsrv_server *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        kvsrv_session *ss = NULL;
        int fail = 0;
        kvsrv_job *j = pick(s, &ss, &fail);
        if (!j) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        if (fail) {
            pthread_mutex_unlock(&s->mu);
            char msg[160];
            snprintf(msg, sizeof msg, "all %d sessions are busy; retry later", s->cfg.max_sessions);
            kvsrv_fail(j, fail, fail == 503 ? msg : "out of memory", "server_error",
                       fail == 503 ? "sessions_busy" : "out_of_memory");
            kvsrv_job_unref(j);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        size_t reserved = j->reserve + (ss ? ss->kv_bytes : 0);
        s->n_running++;
        s->running_bytes += reserved;
        pthread_mutex_unlock(&s->mu);

        pthread_mutex_lock(&j->mu);
        j->state = KVSRV_RUNNING;
        pthread_mutex_unlock(&j->mu);
        char sig[160];
        cache_sig(&j->cp, sig, sizeof sig);
        conv fresh;
        conv *c = NULL;
        kvp_error err = {0};
        if (ss) {
            if (ss->conv_ok && strcmp(ss->sig, sig)) { /* other cache settings: start over */
                conv_free(&ss->c);
                ss->conv_ok = false;
            }
            if (!ss->conv_ok && conv_init(&ss->c, s->model, &j->cp, NULL, NULL, &err) == KVP_OK) {
                ss->conv_ok = true;
                ss->n_read = 0;
                ss->digest = 0;
                memcpy(ss->sig, sig, sizeof sig);
            }
            if (ss->conv_ok) c = &ss->c;
        } else if (conv_init(&fresh, s->model, &j->cp, NULL, NULL, &err) == KVP_OK) {
            c = &fresh;
        }
        if (c) kvsrv_run(s, j, c, ss ? &ss->digest : NULL, ss ? &ss->n_read : NULL);
        else kvsrv_fail(j, 400, err.message, "invalid_request_error", "invalid_cache_settings");
        size_t held = 0;
        if (c) {
            kvp_cache_stats st;
            kvp_cache_get_stats(c->cache, &st);
            held = st.kv_bytes;
        }
        if (c == &fresh) conv_free(&fresh);
        kvsrv_job_unref(j);

        pthread_mutex_lock(&s->mu);
        s->n_running--;
        s->running_bytes -= reserved;
        if (ss) {
            ss->busy = false;
            ss->kv_bytes = held;
            ss->last_used = ++s->tick;
        }
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int kvsrv_submit(kvsrv_server *s, kvsrv_job *j, char *msg, size_t msg_len) {
    j->srv = s;
    if (s->cap && j->reserve > s->cap) {
        snprintf(msg, msg_len,
                 "this request needs about %.2f MiB of KV cache, more than the server's cap of "
                 "%.2f MiB (--max-kv-mib); ask for fewer tokens or a smaller kv budget",
                 (double)j->reserve / 1048576.0, (double)s->cap / 1048576.0);
        return 503;
    }
    pthread_mutex_lock(&s->mu);
    if (s->stop) {
        pthread_mutex_unlock(&s->mu);
        snprintf(msg, msg_len, "the server is shutting down");
        return 503;
    }
    if (s->n_queued >= s->cfg.queue_max) {
        pthread_mutex_unlock(&s->mu);
        snprintf(msg, msg_len, "the queue is full (%d requests waiting); retry later", s->cfg.queue_max);
        return 503;
    }
    pthread_mutex_lock(&j->mu);
    j->refs++;
    j->state = KVSRV_QUEUED;
    pthread_mutex_unlock(&j->mu);
    if (s->tail) s->tail->next = j;
    else s->head = j;
    s->tail = j;
    s->n_queued++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void kvsrv_health(kvsrv_server *s, int *queued, int *running, int *sessions, size_t *kv_bytes) {
    pthread_mutex_lock(&s->mu);
    *queued = s->n_queued;
    *running = s->n_running;
    *sessions = s->n_sessions;
    *kv_bytes = s->running_bytes + idle_session_bytes(s, NULL);
    pthread_mutex_unlock(&s->mu);
}

kvsrv_server *kvsrv_start(kvp_model *model, const kvsrv_config *cfg, char *msg, size_t msg_len) {
    kvsrv_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, msg_len, "out of memory");
        return NULL;
    }
    s->model = model;
    s->cfg = *cfg;
    s->cap = cfg->max_kv_mib > 0 ? (size_t)(cfg->max_kv_mib * 1048576.0) : 0;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->workers = calloc((size_t)cfg->parallel, sizeof *s->workers);
    if (!s->workers) {
        snprintf(msg, msg_len, "out of memory");
        kvsrv_stop(s);
        return NULL;
    }
    for (int i = 0; i < cfg->parallel; i++) {
        if (pthread_create(&s->workers[i], NULL, worker, s)) {
            snprintf(msg, msg_len, "cannot start worker thread %d", i);
            kvsrv_stop(s);
            return NULL;
        }
        s->n_workers++;
    }
    return s;
}

void kvsrv_shutdown(kvsrv_server *s) {
    pthread_mutex_lock(&s->mu);
    __atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
    for (kvsrv_job *j = s->head; j; j = j->next) __atomic_store_n(&j->cancelled, true, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void kvsrv_stop(kvsrv_server *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    __atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
    for (kvsrv_job *j = s->head; j; j = j->next) __atomic_store_n(&j->cancelled, true, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_workers; i++) pthread_join(s->workers[i], NULL);
    while (s->head) {
        kvsrv_job *j = s->head;
        unlink_job(s, NULL, j);
        kvsrv_job_done(j);
        kvsrv_job_unref(j);
    }
    while (s->sessions) drop_session(s, s->sessions);
    free(s->workers);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
