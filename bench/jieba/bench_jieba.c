/* kvjb throughput: load time of jieba's dictionary and cut speed over the
 * strings of a jsonl file ({"t": text} rows, e.g. the conformance corpus),
 * each cut separately as the LongBench scorer does.
 * Usage: bench_jieba JIEBA_DIR CORPUS.jsonl REPEATS */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvprune_eval/jieba.h"

static double now(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: bench_jieba JIEBA_DIR CORPUS.jsonl REPEATS\n");
        return 2;
    }
    int reps = atoi(argv[3]);
    if (reps < 1 || reps > 1000) reps = 3;
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    size_t cap = 0, n = 0, bytes = 0, ncap = 1024;
    char *line = NULL, **texts = malloc(ncap * sizeof *texts);
    size_t *lens = malloc(ncap * sizeof *lens);
    ssize_t got;
    while ((got = getline(&line, &cap, f)) > 0) {
        json_t *row = json_loadb(line, (size_t)got, 0, NULL);
        json_t *t = row ? json_object_get(row, "t") : NULL;
        if (json_is_string(t)) {
            if (n == ncap) {
                ncap *= 2;
                texts = realloc(texts, ncap * sizeof *texts);
                lens = realloc(lens, ncap * sizeof *lens);
            }
            lens[n] = json_string_length(t);
            texts[n] = malloc(lens[n] + 1);
            memcpy(texts[n], json_string_value(t), lens[n] + 1);
            bytes += lens[n++];
        }
        json_decref(row);
    }
    free(line);
    fclose(f);
    double load_wall[1000], load_cpu[1000], cut_wall[1000], cut_cpu[1000];
    size_t words = 0;
    for (int r = 0; r < reps; r++) {
        kvjb_dict *d = NULL;
        kvp_error err;
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        if (kvjb_load(argv[1], &d, &err) != KVP_OK) {
            fprintf(stderr, "bench_jieba: %s\n", err.message);
            return 1;
        }
        load_wall[r] = now(CLOCK_MONOTONIC) - w0;
        load_cpu[r] = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
        w0 = now(CLOCK_MONOTONIC);
        c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        words = 0;
        for (size_t i = 0; i < n; i++) {
            char **w;
            size_t nw;
            if (kvjb_cut(d, texts[i], lens[i], &w, &nw, &err) != KVP_OK) {
                fprintf(stderr, "bench_jieba: %s\n", err.message);
                return 1;
            }
            words += nw;
            kvjb_words_free(w, nw);
        }
        cut_wall[r] = now(CLOCK_MONOTONIC) - w0;
        cut_cpu[r] = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
        kvjb_free(d);
    }
    qsort(load_wall, (size_t)reps, sizeof(double), cmp);
    qsort(load_cpu, (size_t)reps, sizeof(double), cmp);
    qsort(cut_wall, (size_t)reps, sizeof(double), cmp);
    qsort(cut_cpu, (size_t)reps, sizeof(double), cmp);
    printf("kvprune: load %.3f s wall / %.3f s CPU; cut %zu strings (%zu bytes, %zu words) "
           "%.3f s wall / %.3f s CPU = %.2f MB/s CPU (medians of %d)\n",
           load_wall[reps / 2], load_cpu[reps / 2], n, bytes, words, cut_wall[reps / 2],
           cut_cpu[reps / 2], (double)bytes / cut_cpu[reps / 2] / 1e6, reps);
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(lens);
    return 0;
}
