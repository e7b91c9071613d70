/* llama.cpp's side of bench/quant_vs_llamacpp.sh, over the libllama that
 * node-llama-cpp ships (built by that script against its llama.h).
 *
 *   llama_bench BINS quantize IN.gguf OUT.gguf q8_0|q4_k_m
 *       llama_model_quantize with llama.cpp's defaults for that preset.
 *   llama_bench BINS run MODEL.gguf PROMPT_TOKENS NEW_TOKENS THREADS
 *       prompt ids 10..PROMPT_TOKENS+9 in one batch (timed: prefill), then
 *       NEW_TOKENS greedy steps (timed: decode; the first step's token comes
 *       from the prefill's logits, as in kvprune generate). Default context
 *       settings (F16 KV cache, flash attention auto). Prints one JSON line:
 *       wall and process-CPU milliseconds of prefill and decode,
 *       decode_tokens, peak_rss_kb. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "llama_common.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: llama_bench BINS quantize IN OUT TYPE | run MODEL P N THREADS\n");
        return 2;
    }
    llc_init(argv[1]);
    if (!strcmp(argv[2], "quantize") && argc == 6) {
        llama_model_quantize_params qp = llama_model_quantize_default_params();
        qp.nthread = 2;
        if (!strcmp(argv[5], "q8_0"))
            qp.ftype = LLAMA_FTYPE_MOSTLY_Q8_0;
        else if (!strcmp(argv[5], "q4_k_m"))
            qp.ftype = LLAMA_FTYPE_MOSTLY_Q4_K_M;
        else {
            fprintf(stderr, "llama_bench: unknown type %s\n", argv[5]);
            return 2;
        }
        uint32_t rc = llama_model_quantize(argv[3], argv[4], &qp);
        if (rc) fprintf(stderr, "llama_bench: llama_model_quantize failed (%u)\n", rc);
        return rc ? 1 : 0;
    }
    if (strcmp(argv[2], "run") || argc != 7) {
        fprintf(stderr, "llama_bench: bad arguments\n");
        return 2;
    }
    const int P = atoi(argv[4]), N = atoi(argv[5]), threads = atoi(argv[6]);
    struct llama_model *model = llc_load_model(argv[3], "llama_bench: ");
    if (!model) return 1;
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(P + N + 16);
    cp.n_batch = (uint32_t)P;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    cp.no_perf = true;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "llama_bench: could not create a context\n");
        return 1;
    }
    llama_token *ids = malloc(sizeof(llama_token) * (size_t)(P + N));
    for (int i = 0; i < P; i++) ids[i] = 10 + i;
    double t0 = now_ms(), c0 = cpu_ms();
    if (llama_decode(ctx, llama_batch_get_one(ids, P))) {
        fprintf(stderr, "llama_bench: prefill failed\n");
        return 1;
    }
    llama_token tok = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
    double t1 = now_ms(), c1 = cpu_ms();
    /* N tokens generated: the first from the prefill, N - 1 decode steps. */
    for (int s = 1; s < N; s++) {
        if (llama_decode(ctx, llama_batch_get_one(&tok, 1))) {
            fprintf(stderr, "llama_bench: decode failed at step %d\n", s);
            return 1;
        }
        tok = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
    }
    double t2 = now_ms(), c2 = cpu_ms();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"prefill_ms\":%.3f,\"decode_ms\":%.3f,\"prefill_cpu_ms\":%.3f,\"decode_cpu_ms\":%.3f,"
           "\"decode_tokens\":%d,\"peak_rss_kb\":%ld}\n",
           t1 - t0, t2 - t1, c1 - c0, c2 - c1, N - 1, ru.ru_maxrss);
    free(ids);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
