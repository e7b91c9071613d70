/* kvprune serve: an OpenAI-compatible HTTP server over the library.
 *
 * Layers (all in the CLI; the library knows nothing of HTTP):
 *   serve_http.c   libmicrohttpd: routing, body limit, responses, SSE
 *   serve_api.c    OpenAI request JSON -> kvsrv_job, results -> JSON
 *   serve_sched.c  the fair queue, worker threads, sessions, memory cap
 * One kvp_model is shared read-only by every worker; each request runs on
 * a cache of its own (or its session's). */
#ifndef KVP_CLI_SERVE_H
#define KVP_CLI_SERVE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conversation.h"
#include "kvprune.h"

typedef struct kvsrv_config {
    const char *host;
    int port;
    int parallel;            /* requests generating at once                */
    int queue_max;           /* requests waiting; more: 503                */
    int max_sessions;        /* sessions kept; LRU idle ones are dropped   */
    double max_kv_mib;       /* all caches together; 0: unlimited          */
    size_t max_body;         /* request body bytes; more: 413              */
    int max_prompt_tokens;   /* more: 400 (default: the model's context)   */
    int max_tokens_limit;    /* the most max_tokens a request may ask      */
    int threads;             /* threads per request (0: cores / parallel)  */
    int connections;         /* open connections at once                   */
    /* request defaults (the server's flags) */
    kvp_cache_params cache;
    kvp_gen_params gen;      /* max_new_tokens, temperature, top_p, seed, prefill_chunk */
} kvsrv_config;

typedef enum kvsrv_kind { KVSRV_CHAT, KVSRV_COMPLETION } kvsrv_kind;
typedef enum kvsrv_state { KVSRV_QUEUED, KVSRV_RUNNING, KVSRV_DONE } kvsrv_state;

typedef struct kvsrv_session kvsrv_session;
typedef struct kvsrv_server kvsrv_server;

/* One request, shared by its HTTP connection and the worker that runs it
 * (reference counted; the connection and the worker each hold one). */
typedef struct kvsrv_job {
    /* the request (set before queuing, read-only afterwards) */
    kvsrv_kind kind;
    bool stream, include_usage;
    kvp_cache_params cp;
    char method[64];
    kvp_gen_params gp;
    char **stop;
    size_t n_stop, max_stop;
    kvp_chat_message *msgs;  /* chat: owned strings                        */
    size_t n_msgs;
    char *prompt;            /* completion                                 */
    int32_t *ids;            /* completion: the prompt's ids               */
    size_t n_ids;
    char *session_id;        /* NULL: none                                 */
    char id[48];
    long long created;
    size_t reserve;          /* bytes of KV reserved while it runs         */
    int fd;                  /* the client's socket, to notice it leaving  */
    /* progress, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    kvsrv_state state;
    bool cancelled;          /* the client left or the server stops        */
    char *out;               /* bytes ready for the client (SSE or body)   */
    size_t out_len, out_cap, out_sent;
    int status;              /* HTTP status of a non-streamed answer       */
    int refs;
    struct kvsrv_job *next;  /* queue link (under the server's lock)       */
    kvsrv_server *srv;
} kvsrv_job;

/* serve_sched.c */
kvsrv_server *kvsrv_start(kvp_model *model, const kvsrv_config *cfg, char *msg, size_t msg_len);
/* Marks the server stopping: queued jobs are cancelled, running ones stop at
 * their next token, waiting connections give up. */
void kvsrv_shutdown(kvsrv_server *s);
/* Stops the workers, cancels what is queued, frees sessions. */
void kvsrv_stop(kvsrv_server *s);
const kvsrv_config *kvsrv_cfg(const kvsrv_server *s);
kvp_model *kvsrv_model(const kvsrv_server *s);
/* Queues a job (taking one reference for the worker). Returns 0, or an HTTP
 * status (503) with a message. */
int kvsrv_submit(kvsrv_server *s, kvsrv_job *j, char *msg, size_t msg_len);
/* Marks a job cancelled (queued: dropped; running: stops at its next token). */
void kvsrv_cancel(kvsrv_job *j);
void kvsrv_job_unref(kvsrv_job *j);
/* Appends bytes for the client (under the job's lock) and wakes it. */
bool kvsrv_job_emit(kvsrv_job *j, const char *data, size_t n);
void kvsrv_health(kvsrv_server *s, int *queued, int *running, int *sessions, size_t *kv_bytes);
/* Whether the server is stopping. */
bool kvsrv_stopping(const kvsrv_server *s);

/* serve_api.c */
/* Parses a request body into a new job (one reference). Returns NULL with
 * an HTTP status (4xx) and an OpenAI error object in *error (caller frees). */
kvsrv_job *kvsrv_parse(kvsrv_server *s, kvsrv_kind kind, const char *body, size_t len, int *status,
                       char **error);
/* An OpenAI error object: {"error":{"message","type","param","code"}}. */
char *kvsrv_error_json(const char *message, const char *type, const char *param, const char *code);
/* Runs a job on a conversation (its session's, or a fresh one) and emits
 * its answer: the whole body, or the SSE events. */
void kvsrv_run(kvsrv_server *s, kvsrv_job *j, conv *c, uint64_t *digest, size_t *n_read);
/* Marks a job finished and wakes its connection. */
void kvsrv_job_done(kvsrv_job *j);
/* Fails a job that never ran (status and message), e.g. no session free. */
void kvsrv_fail(kvsrv_job *j, int status, const char *message, const char *type, const char *code);
char *kvsrv_models_json(kvsrv_server *s);

/* Sessions (serve_sched.c): the conversation and a digest of the messages
 * it has read, so a request whose messages extend them appends only the
 * new ones. */
uint64_t kvsrv_digest(const kvp_chat_message *m, size_t n);

#endif
