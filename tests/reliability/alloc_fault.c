#include "alloc_fault.h"

#include <stdatomic.h>
#include <stddef.h>
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
