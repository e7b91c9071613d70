/* Checks kvjb_cut against a golden file of tools/jieba_goldens.py: one JSON
 * line per string, {"t": text, "w": [each word's length in code points]}. */
#ifndef KVP_TEST_JIEBA_GOLDEN_H
#define KVP_TEST_JIEBA_GOLDEN_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "kvprune_eval/jieba.h"
#include "test_util.h"

/* Byte length of the first ncp code points of s (valid UTF-8). */
static size_t jbt_cp_bytes(const char *s, size_t avail, size_t ncp) {
    size_t b = 0;
    while (ncp-- > 0 && b < avail) {
        b++;
        while (b < avail && ((unsigned char)s[b] & 0xC0) == 0x80) b++;
    }
    return b;
}

static double jbt_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Cuts every golden string; counts the identical ones in *same, all in
 * *total, the UTF-8 bytes cut in *bytes and the CPU seconds kvjb_cut took. */
static void jbt_check_goldens(const kvjb_dict *d, const char *path, size_t *same, size_t *total,
                              size_t *bytes, double *cpu) {
    *same = *total = *bytes = 0;
    *cpu = 0;
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f) return;
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) > 0) {
        lineno++;
        json_error_t jerr;
        json_t *row = json_loadb(line, (size_t)got, 0, &jerr);
        json_t *jt = row ? json_object_get(row, "t") : NULL;
        json_t *jw = row ? json_object_get(row, "w") : NULL;
        CHECK_MSG(json_is_string(jt) && json_is_array(jw), "%s:%zu: bad golden row", path, lineno);
        if (!json_is_string(jt) || !json_is_array(jw)) {
            json_decref(row);
            continue;
        }
        const char *text = json_string_value(jt);
        size_t len = json_string_length(jt);
        char **words = NULL;
        size_t n = 0;
        kvp_error err;
        double t0 = jbt_cpu_s();
        kvp_status st = kvjb_cut(d, text, len, &words, &n, &err);
        *cpu += jbt_cpu_s() - t0;
        (*total)++;
        *bytes += len;
        bool ok = st == KVP_OK && n == json_array_size(jw);
        size_t pos = 0;
        for (size_t i = 0; ok && i < n; i++) {
            size_t wl = jbt_cp_bytes(text + pos, len - pos,
                                     (size_t)json_integer_value(json_array_get(jw, i)));
            ok = strlen(words[i]) == wl && memcmp(words[i], text + pos, wl) == 0;
            pos += wl;
        }
        ok = ok && pos == len;
        if (ok) {
            (*same)++;
        } else {
            fprintf(stderr, "%s:%zu: cut differs%s%s\n  got:", path, lineno, st ? ": " : "",
                    st ? err.message : "");
            for (size_t i = 0; st == KVP_OK && i < n && i < 60; i++) fprintf(stderr, " [%s]", words[i]);
            fprintf(stderr, "\n  expected:");
            for (size_t i = 0, p = 0; i < json_array_size(jw) && i < 60; i++) {
                size_t wl = jbt_cp_bytes(text + p, len - p,
                                         (size_t)json_integer_value(json_array_get(jw, i)));
                fprintf(stderr, " [%.*s]", (int)wl, text + p);
                p += wl;
            }
            fputc('\n', stderr);
        }
        CHECK(ok);
        kvjb_words_free(words, n);
        json_decref(row);
    }
    free(line);
    fclose(f);
}

#endif
