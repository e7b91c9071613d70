#include "util/json.h"

#include <pthread.h>

static json_malloc_t next_malloc;
static _Thread_local bool alloc_failed;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *tracking_malloc(size_t n) {
    void *p = next_malloc(n);
    if (!p) alloc_failed = true;
    return p;
}

static void install(void) {
    json_free_t next_free;
    json_get_alloc_funcs(&next_malloc, &next_free);
    json_set_alloc_funcs(tracking_malloc, next_free);
}

json_t *kvu_json_load_file(const char *path, size_t flags, json_error_t *je) {
    pthread_once(&once, install);
    alloc_failed = false;
    return json_load_file(path, flags, je);
}

json_t *kvu_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *je) {
    pthread_once(&once, install);
    alloc_failed = false;
    return json_loadb(buf, len, flags, je);
}

bool kvu_json_oom(const json_error_t *je) {
    return alloc_failed || json_error_code(je) == json_error_out_of_memory || je->text[0] == '\0';
}
