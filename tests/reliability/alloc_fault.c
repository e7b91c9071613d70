#include "alloc_fault.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

static atomic_long count, fail_at, fired;

static int should_fail(void) {
    long c = atomic_fetch_add(&count, 1) + 1;
    if (c == atomic_load(&fail_at)) {
        atomic_store(&fired, 1);
        return 1;
    }
    return 0;
}

void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t a, size_t b) { return should_fail() ? NULL : __real_calloc(a, b); }
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return should_fail() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return should_fail() ? NULL : __real_strndup(s, n); }

void alloc_fault_arm(long n) {
    atomic_store(&count, 0);
    atomic_store(&fired, 0);
    atomic_store(&fail_at, n);
}

long alloc_fault_count(void) { return atomic_load(&count); }
int alloc_fault_fired(void) { return (int)atomic_load(&fired); }

json_t *__real_json_load_file(const char *path, size_t flags, json_error_t *error);
json_t *__real_json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error);

static atomic_long json_calls, json_fail_call, json_fail_alloc, json_allocs, json_in_call;

/* jansson's allocator for the whole test (installed before the library
 * wraps it): fails from the armed allocation on inside the armed call. */
static void *json_test_malloc(size_t n) {
    if (atomic_load(&json_in_call) &&
        atomic_fetch_add(&json_allocs, 1) + 1 >= atomic_load(&json_fail_alloc)) {
        atomic_store(&fired, 1);
        return NULL;
    }
    return __real_malloc(n);
}

static void json_test_free(void *p) { free(p); }

/* Runs one jansson call, its allocations failing from the armed one on
 * when it is the armed call. */
#define JSON_CALL(call)                                      \
    do {                                                     \
        long c_ = atomic_fetch_add(&json_calls, 1) + 1;      \
        if (c_ != atomic_load(&json_fail_call)) return call; \
        atomic_store(&json_allocs, 0);                       \
        atomic_store(&json_in_call, 1);                      \
        json_t *r_ = call;                                   \
        atomic_store(&json_in_call, 0);                      \
        return r_;                                           \
    } while (0)

json_t *__wrap_json_load_file(const char *path, size_t flags, json_error_t *error) {
    JSON_CALL(__real_json_load_file(path, flags, error));
}

json_t *__wrap_json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error) {
    JSON_CALL(__real_json_loadb(buffer, buflen, flags, error));
}

void alloc_fault_json_install(void) { json_set_alloc_funcs(json_test_malloc, json_test_free); }

void alloc_fault_json_arm(long n, long k) {
    atomic_store(&json_calls, 0);
    atomic_store(&fired, 0);
    atomic_store(&json_fail_call, n);
    atomic_store(&json_fail_alloc, k);
}

long alloc_fault_json_calls(void) { return atomic_load(&json_calls); }
