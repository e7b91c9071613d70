/* Minimal assertions for the C tests: each failure prints where and why,
 * and the test's exit code is the number of failures (capped). */
#ifndef KVP_TEST_UTIL_H
#define KVP_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int kvp_test_failures;
static int kvp_test_checks;

#define CHECK(cond)                                                              \
    do {                                                                         \
        kvp_test_checks++;                                                       \
        if (!(cond)) {                                                           \
            kvp_test_failures++;                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define CHECK_MSG(cond, ...)                                                     \
    do {                                                                         \
        kvp_test_checks++;                                                       \
        if (!(cond)) {                                                           \
            kvp_test_failures++;                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
        }                                                                        \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                       \
    do {                                                                         \
        long long va_ = (long long)(a), vb_ = (long long)(b);                    \
        CHECK_MSG(va_ == vb_, "%lld != %lld", va_, vb_);                         \
    } while (0)

#define CHECK_STR(a, b)                                                          \
    do {                                                                         \
        const char *sa_ = (a), *sb_ = (b);                                       \
        CHECK_MSG(sa_ && sb_ && strcmp(sa_, sb_) == 0, "'%s' != '%s'",          \
                  sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                   \
    } while (0)

/* Relative-or-absolute closeness: |a-b| <= tol * max(1, |b|). */
#define CHECK_NEAR(a, b, tol)                                                    \
    do {                                                                         \
        double da_ = (a), db_ = (b);                                             \
        double m_ = fabs(db_) > 1.0 ? fabs(db_) : 1.0;                          \
        CHECK_MSG(fabs(da_ - db_) <= (tol) * m_, "%.9g vs %.9g", da_, db_);      \
    } while (0)

/* xorshift64: the next state of a test's random stream (state not 0). */
static inline uint64_t kvp_test_xorshift(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* A uniform float in [-1, 1) from the stream. */
static inline float kvp_test_frand(uint64_t *state) {
    return (float)((kvp_test_xorshift(state) >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* The whole file at path, NUL-terminated (malloc'd; *n its size when n is
 * not NULL); NULL when it cannot be read. */
static inline void *kvp_test_read_file(const char *path, size_t *n) {
    if (n) *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0, got;
    char *b = malloc(cap);
    while (b && (got = fread(b + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
        }
    }
    if (b && ferror(f)) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (!b) return NULL;
    b[len] = '\0';
    if (n) *n = len;
    return b;
}

/* Runs a shell command; returns its stdout (malloc'd, NUL-terminated; NULL
 * if it could not start) and its raw pclose status in *status. */
static inline char *kvp_test_capture(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    *status = pclose(p);
    return buf;
}

/* A test that ran no check proves nothing: it fails. */
static inline int kvp_test_done(const char *name) {
    printf("%s: %d checks, %d failed\n", name, kvp_test_checks, kvp_test_failures);
    if (kvp_test_checks == 0) {
        fprintf(stderr, "%s: no checks ran\n", name);
        return 1;
    }
    return kvp_test_failures > 100 ? 100 : kvp_test_failures;
}

#endif
