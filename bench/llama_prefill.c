/* llama.cpp's prefill time, for side-by-side benchmarks: loads a GGUF with
 * the libllama that node-llama-cpp ships (CPU only), then REPS times runs a
 * prompt of N token ids (10, 11, ...: the ids bench/prefill_vs_llamacpp.sh
 * gives kvprune) in a fresh context and takes the greedy first token.
 * Prints one line per rep: "prefill_ms <ms> cpu_ms <ms> first_id <id>" (the
 * wall time from the first llama_decode call to the first token's id, the
 * time to first token without loading, and the process CPU time in it). Context defaults are llama.cpp's own except the
 * size (N + 16) and the batch (N, so the whole prompt is one llama_decode).
 *
 * usage: llama_prefill BINS_DIR MODEL.gguf N THREADS REPS */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "llama_common.h"

static double now_ms(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: llama_prefill BINS MODEL N THREADS REPS\n");
        return 2;
    }
    const int n = atoi(argv[3]), threads = atoi(argv[4]), reps = atoi(argv[5]);
    llc_init(argv[1]);
    struct llama_model *model = llc_load_model(argv[2], "");
    if (!model) return 1;
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    llama_token *ids = malloc(sizeof(llama_token) * (size_t)n);
    for (int i = 0; i < n; i++) ids[i] = 10 + i % (n_vocab - 10);
    for (int r = 0; r < reps; r++) {
        struct llama_context_params cp = llama_context_default_params();
        cp.n_ctx = (uint32_t)n + 16;
        cp.n_batch = (uint32_t)n;
        cp.n_threads = threads;
        cp.n_threads_batch = threads;
        struct llama_context *ctx = llama_init_from_model(model, cp);
        if (!ctx) {
            fprintf(stderr, "llama.cpp could not create a context of %d tokens\n", n);
            return 1;
        }
        double t0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
        if (llama_decode(ctx, llama_batch_get_one(ids, n))) {
            fprintf(stderr, "llama_decode failed\n");
            return 1;
        }
        const float *lg = llama_get_logits_ith(ctx, -1);
        int best = 0;
        for (int i = 1; i < n_vocab; i++)
            if (lg[i] > lg[best]) best = i;
        double t1 = now_ms(CLOCK_MONOTONIC), c1 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
        printf("prefill_ms %.1f cpu_ms %.1f first_id %d\n", t1 - t0, c1 - c0, best);
        fflush(stdout);
        llama_free(ctx);
    }
    free(ids);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
