/* Shared helpers of the libFuzzer targets: each input is written to files in
 * a private scratch folder (the parsers under test read paths, so the real
 * code paths, mmap included, are the ones fuzzed), and library errors are
 * expected outcomes, never crashes. */
#ifndef KVP_FUZZ_COMMON_H
#define KVP_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A scratch folder of this process (created once, under /dev/shm when
 * there is one: inputs are rewritten thousands of times a second). */
static inline const char *fz_dir(void) {
    static char dir[256];
    if (!dir[0]) {
        struct stat sb;
        const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/kvp_fuzz_XXXXXX", base);
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

/* dir/name, in a static buffer per slot. */
static inline const char *fz_path(int slot, const char *name) {
    static char paths[4][512];
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", fz_dir(), name);
    return paths[slot];
}

static inline void fz_write(const char *path, const uint8_t *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    if (fclose(f) != 0) abort();
}

/* The input up to the first NUL (or all of it) and what follows. */
static inline void fz_split(const uint8_t *data, size_t n, size_t *n1, const uint8_t **rest, size_t *n2) {
    const uint8_t *z = memchr(data, 0, n);
    *n1 = z ? (size_t)(z - data) : n;
    *rest = z ? z + 1 : data + n;
    *n2 = z ? n - *n1 - 1 : 0;
}

/* A NUL-terminated copy. */
static inline char *fz_str(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

#endif
