/* kvprune serve: the command and its HTTP layer (libmicrohttpd, one thread
 * per connection). A connection thread parses and validates the request,
 * queues it, and then either waits for the whole answer or streams it as
 * Server-Sent Events; while it waits it watches the client's socket, and a
 * client that goes away cancels its request (dropped from the queue, or
 * stopped at its next token). */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "serve.h"

typedef struct http_req {
    char *body;
    size_t len;
    bool too_big;
} http_req;

static enum MHD_Result send_body(struct MHD_Connection *c, unsigned status, const char *body, size_t len) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *msg, const char *type,
                                  const char *code) {
    char *e = kvsrv_error_json(msg, type, NULL, code);
    if (!e) return MHD_NO;
    enum MHD_Result r = send_body(c, status, e, strlen(e));
    free(e);
    return r;
}

/* The peer has closed its end (or the socket failed). */
static bool client_gone(int fd) {
    if (fd < 0) return false;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return true;
    return false;
}

static void deadline_in(struct timespec *ts, long ms) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += ms * 1000000L;
    ts->tv_sec += ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

/* SSE: hands out what the worker has emitted; blocks (briefly, in turns)
 * until there is some. */
static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    kvsrv_job *j = cls;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        if (j->out_sent < j->out_len) {
            size_t n = j->out_len - j->out_sent;
            if (n > max) n = max;
            memcpy(buf, j->out + j->out_sent, n);
            j->out_sent += n;
            pthread_mutex_unlock(&j->mu);
            return (ssize_t)n;
        }
        if (j->state == KVSRV_DONE) {
            pthread_mutex_unlock(&j->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (j->cancelled || client_gone(j->fd) || kvsrv_stopping(j->srv)) {
            pthread_mutex_unlock(&j->mu);
            kvsrv_cancel(j);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        struct timespec ts;
        deadline_in(&ts, 100);
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    }
}

static void sse_free(void *cls) {
    kvsrv_job *j = cls;
    kvsrv_cancel(j); /* a no-op when it has finished */
    kvsrv_job_unref(j);
}

static enum MHD_Result post_job(kvsrv_server *srv, struct MHD_Connection *conn, kvsrv_kind kind, http_req *q) {
    int status = 400;
    char *error = NULL;
    kvsrv_job *j = kvsrv_parse(srv, kind, q->body ? q->body : "", q->len, &status, &error);
    if (!j) {
        enum MHD_Result r = error ? send_body(conn, (unsigned)status, error, strlen(error)) : MHD_NO;
        free(error);
        return r;
    }
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    j->fd = ci ? ci->connect_fd : -1;
    char msg[300];
    int rc = kvsrv_submit(srv, j, msg, sizeof msg);
    if (rc) {
        kvsrv_job_unref(j);
        return send_error(conn, (unsigned)rc, msg, "server_error", "unavailable");
    }
    if (j->stream) {
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_reader, j, sse_free);
        if (!r) {
            kvsrv_cancel(j);
            kvsrv_job_unref(j);
            return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
        MHD_destroy_response(r); /* the job is released by sse_free */
        return ret;
    }
    /* the whole answer, or nothing if the client leaves first */
    pthread_mutex_lock(&j->mu);
    while (j->state != KVSRV_DONE) {
        if (client_gone(j->fd) || kvsrv_stopping(srv)) break;
        struct timespec ts;
        deadline_in(&ts, 100);
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    }
    bool done = j->state == KVSRV_DONE;
    char *body = NULL;
    size_t len = j->out_len;
    unsigned st = (unsigned)j->status;
    if (done && j->out) body = strndup(j->out, len);
    pthread_mutex_unlock(&j->mu);
    if (!done) kvsrv_cancel(j);
    kvsrv_job_unref(j);
    if (!done) return MHD_NO;
    enum MHD_Result r = body ? send_body(conn, st, body, len) : MHD_NO;
    free(body);
    return r;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    kvsrv_server *srv = cls;
    const kvsrv_config *cfg = kvsrv_cfg(srv);
    http_req *q = *con_cls;
    if (!q) {
        q = calloc(1, sizeof *q);
        if (!q) return MHD_NO;
        *con_cls = q;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > cfg->max_body) {
            q->too_big = true;
            char msg[160];
            snprintf(msg, sizeof msg, "the request body is larger than the server's limit of %zu bytes (--max-body-kib)",
                     cfg->max_body);
            return send_error(conn, 413, msg, "invalid_request_error", "body_too_large");
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!q->too_big) {
            if (q->len + *upload_size > cfg->max_body) {
                q->too_big = true;
                free(q->body);
                q->body = NULL;
                q->len = 0;
            } else {
                char *b = realloc(q->body, q->len + *upload_size + 1);
                if (!b) return MHD_NO;
                memcpy(b + q->len, upload, *upload_size);
                q->body = b;
                q->len += *upload_size;
                q->body[q->len] = '\0';
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (!strcmp(url, "/health") || !strcmp(url, "/v1/models")) {
        if (!get) return send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET", "invalid_request_error", "method_not_allowed");
        char *body = NULL;
        if (url[1] == 'h') {
            int queued, running, sessions;
            size_t kv;
            kvsrv_health(srv, &queued, &running, &sessions, &kv);
            body = malloc(160);
            if (body)
                snprintf(body, 160, "{\"status\":\"ok\",\"queued\":%d,\"running\":%d,\"sessions\":%d,\"kv_bytes\":%zu}",
                         queued, running, sessions, kv);
        } else {
            body = kvsrv_models_json(srv);
        }
        enum MHD_Result r = body ? send_body(conn, MHD_HTTP_OK, body, strlen(body)) : MHD_NO;
        free(body);
        return r;
    }
    bool chat = !strcmp(url, "/v1/chat/completions"), compl = !strcmp(url, "/v1/completions");
    if (!chat && !compl) {
        char msg[200];
        snprintf(msg, sizeof msg, "no such endpoint: %.150s", url);
        return send_error(conn, MHD_HTTP_NOT_FOUND, msg, "invalid_request_error", "not_found");
    }
    if (!post) return send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST", "invalid_request_error", "method_not_allowed");
    if (q->too_big) {
        char msg[160];
        snprintf(msg, sizeof msg, "the request body is larger than the server's limit of %zu bytes (--max-body-kib)",
                 cfg->max_body);
        return send_error(conn, 413, msg, "invalid_request_error", "body_too_large");
    }
    return post_job(srv, conn, chat ? KVSRV_CHAT : KVSRV_COMPLETION, q);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)conn;
    (void)toe;
    http_req *q = *con_cls;
    if (q) {
        free(q->body);
        free(q);
    }
    *con_cls = NULL;
}

int cmd_serve(int argc, char **argv) {
    kvsrv_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 8080;
    cfg.parallel = 2;
    cfg.queue_max = 64;
    cfg.max_sessions = 16;
    cfg.max_body = 1024 * 1024;
    cfg.max_prompt_tokens = 0;
    cfg.max_tokens_limit = 4096;
    cfg.connections = 64;
    cfg.cache = kvp_cache_default_params();
    cfg.gen = kvp_gen_default_params();
    cfg.gen.max_new_tokens = 256;
    cfg.gen.prefill_chunk = 256;
    const char *model_path = NULL;
    int threads = 0, max_body_kib = 1024;
    const cli_option own[] = {
        CLI_OPT_STRING("-m|--model", "PATH", &model_path, "GGUF file or Hugging Face folder (with a tokenizer)",
                       .required = true),
        CLI_OPT_STRING("--host", "ADDR", &cfg.host, "IPv4 address to listen on"),
        CLI_OPT_INT("--port", "N", &cfg.port, 0, 65535, "port (0: any free port, printed)"),
        CLI_OPT_INT("--parallel", "N", &cfg.parallel, 1, 256, "requests generating at once"),
        CLI_OPT_INT("--queue", "N", &cfg.queue_max, 0, 1 << 20, "requests waiting at most (more: 503)"),
        CLI_OPT_INT("--max-sessions", "N", &cfg.max_sessions, 0, 1 << 20,
                    "sessions kept (least recently used dropped)"),
        CLI_OPT_FLOAT("--max-kv-mib", "N", &cfg.max_kv_mib, 0, 1e9,
                      "KV memory of all requests and sessions together (0: unlimited; a request "
                      "that cannot fit: 503)"),
        CLI_OPT_INT("--max-body-kib", "N", &max_body_kib, 1, 1 << 20, "request body limit (more: 413)"),
        CLI_OPT_INT("--max-prompt-tokens", "N", &cfg.max_prompt_tokens, 1, 1 << 30, "prompt limit (more: 400)",
                    .deflt = "the model's context"),
        CLI_OPT_INT("--max-tokens-limit", "N", &cfg.max_tokens_limit, 1, 1 << 24,
                    "the most max_tokens a request may ask"),
        CLI_OPT_INT("--connections", "N", &cfg.connections, 1, 4096, "open connections at once"),
        CLI_OPT_INT("-t|--threads", "N", &threads, 1, 1024,
                    "threads in all, split between the --parallel requests", .deflt = "all cores"),
    };
    const cli_option request[] = {
        CLI_OPT_INT("-n|--max-tokens", "N", &cfg.gen.max_new_tokens, 0, 1 << 24, "max_tokens"),
        CLI_OPT_FLOAT("--temperature", "T", &cfg.gen.temperature, 0, 2, "temperature (0: greedy)"),
        CLI_OPT_FLOAT("--top-p", "P", &cfg.gen.top_p, 1e-9, 1, "top_p (1: off)"),
        CLI_OPT_UINT("--seed", "S", &cfg.gen.seed, 0x7fffffff, "seed"),
        CLI_OPT_INT("--prefill-chunk", "N", &cfg.gen.prefill_chunk, 0, 1 << 30, "read prompts in chunks of N tokens"),
    };
    cli_option cache_opts[CLI_CACHE_MAX_OPTIONS];
    const cli_group groups[] = {
        {NULL, own, CLI_COUNT(own)},
        {"Request defaults (a request's own fields override them)", request, CLI_COUNT(request)},
        {"Cache (pruning) options (a request's kv_* fields override them)", cache_opts, cli_cache_options(&cfg.cache, CLI_CACHE_ALL, cache_opts)},
    };
    const cli_command cmd = {
        "serve", "-m PATH [--host ADDR] [--port N] [options]",
        "An OpenAI-compatible HTTP server: POST /v1/chat/completions, POST\n"
        "/v1/completions (streamed with \"stream\": true), GET /v1/models, GET /health.\n"
        "A request's kv_method, kv_num_recent, kv_num_heavy, kv_cache_ratio,\n"
        "kv_recent_ratio, kv_heavy_ratio, kv_decode_evict, kv_streaming and\n"
        "kv_gqa_mode fields override the cache flags.\n",
        groups, CLI_COUNT(groups), NULL};
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    cfg.max_body = (size_t)max_body_kib * 1024;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg.port);
    if (inet_pton(AF_INET, cfg.host, &addr.sin_addr) != 1)
        return cli_usage_error("serve", "--host: '%s' is not an IPv4 address", cfg.host);

    kvp_error err = {0};
    kvp_model *model = NULL;
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = (int)threads;
    if (kvp_model_load(model_path, &mp, &model, &err)) return cli_lib_error(&err);
    if (!kvp_model_tokenizer(model)) {
        kvp_model_free(model);
        return cli_error("%s: the model has no tokenizer, so it cannot serve text", model_path);
    }
    kvp_model_info info;
    kvp_model_get_info(model, &info);
    if (cfg.max_prompt_tokens == 0) cfg.max_prompt_tokens = info.n_ctx_train > 0 ? info.n_ctx_train : 4096;
    long cores = threads > 0 ? threads : sysconf(_SC_NPROCESSORS_ONLN);
    cfg.threads = cores / cfg.parallel > 0 ? (int)(cores / cfg.parallel) : 1;
    /* the server's own cache settings must be valid before anything listens */
    kvp_cache *probe = NULL;
    if (kvp_cache_new(model, &cfg.cache, &probe, &err)) {
        kvp_model_free(model);
        return cli_lib_error(&err);
    }
    kvp_cache_free(probe);

    /* Signals go to the main thread alone (sigwait), blocked before any
     * worker thread starts. */
    cli_stop_signals_block();

    char msg[300];
    kvsrv_server *srv = kvsrv_start(model, &cfg, msg, sizeof msg);
    if (!srv) {
        kvp_model_free(model);
        return cli_error("%s", msg);
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL, handle, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg.connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    if (!d) {
        kvsrv_stop(srv);
        kvp_model_free(model);
        return cli_error("serve: cannot listen on %s:%d (in use, or not an address of this machine)", cfg.host,
                         cfg.port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = di ? (int)di->port : cfg.port;
    printf("kvprune serve: listening on http://%s:%d (model %s, cache %s, %d at once, %d threads each)\n", cfg.host,
           port, info.name, cfg.cache.method, cfg.parallel, cfg.threads);
    fflush(stdout);
    int sig = cli_stop_signals_wait();
    fprintf(stderr, "kvprune serve: stopping (signal %d)\n", sig);
    kvsrv_shutdown(srv);
    MHD_stop_daemon(d);
    kvsrv_stop(srv);
    kvp_model_free(model);
    return 0;
}
