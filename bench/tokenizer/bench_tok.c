/* Tokenizer throughput: tokenizes a text file chunk by chunk (chunks are
 * separated by blank lines) and prints MB/s.
 * Usage: bench_tok TOKENIZER TEXT_FILE [REPEATS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvprune.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TOKENIZER TEXT_FILE [REPEATS]\n", argv[0]);
        return 2;
    }
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 1; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    if (!text || fread(text, 1, (size_t)n, f) != (size_t)n) return 1;
    fclose(f);
    text[n] = '\0';
    kvp_error err = {0};
    kvp_tokenizer *tok = NULL;
    double t0 = now();
    if (kvp_tokenizer_load(argv[1], &tok, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
    double t_load = now() - t0;
    kvp_tokenize_params p = kvp_tokenize_default_params();
    double best = 1e30;
    size_t total_ids = 0;
    for (int r = 0; r < reps; r++) {
        total_ids = 0;
        t0 = now();
        for (char *s = text; *s;) {
            char *e = strstr(s, "\n\n");
            size_t len = e ? (size_t)(e - s) + 2 : strlen(s);
            int32_t *ids; size_t k;
            if (kvp_tokenize(tok, s, len, &p, &ids, &k, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
            total_ids += k;
            kvp_free(ids);
            s += len;
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("C   %-10s %8.2f MB/s  %9zu tokens  (load %.2f s)\n", "", (double)n / 1e6 / best, total_ids, t_load);
    kvp_tokenizer_free(tok);
    free(text);
    return 0;
}
