/* kvprune's side of bench/quant_vs_llamacpp.sh, symmetric to llama_bench.c:
 *
 *   kvp_bench MODEL PROMPT_TOKENS NEW_TOKENS THREADS [snapkv5] [f32|f16|bf16]
 *
 * prompt ids 10..PROMPT_TOKENS+9, NEW_TOKENS greedy tokens (the first from
 * the prefill's logits, then NEW_TOKENS - 1 decode steps), the full cache
 * or snapkv keeping 5% of the prompt (1/8 of it recent), K/V stored as the
 * cache's default (f16) or the type given. Prints one JSON
 * line: wall and process-CPU milliseconds of prefill and decode,
 * decode_tokens, peak_rss_kb. CPU time is the robust figure on a shared
 * machine for one thread (it leaves out the time spent waiting for a core). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "kvprune.h"

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

typedef struct {
    double cpu_first;
    int calls;
} marks;

static bool on_token(void *user, int32_t id, const float *logits, int n_vocab) {
    (void)id, (void)logits, (void)n_vocab;
    marks *m = user;
    if (m->calls++ == 0) m->cpu_first = cpu_ms();
    return true;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: kvp_bench MODEL P N THREADS [snapkv5] [f32|f16|bf16]\n");
        return 2;
    }
    const int P = atoi(argv[2]), N = atoi(argv[3]), threads = atoi(argv[4]);
    bool snap = false;
    kvp_cache_params cp = kvp_cache_default_params();
    for (int i = 5; i < argc; i++) {
        if (!strcmp(argv[i], "snapkv5")) {
            snap = true;
        } else if (!kvp_kv_type_parse(argv[i], &cp.kv_type)) {
            fprintf(stderr, "kvp_bench: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    kvp_error err = {0};
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = threads;
    mp.load_tokenizer = false;
    kvp_model *model = NULL;
    if (kvp_model_load(argv[1], &mp, &model, &err)) {
        fprintf(stderr, "kvp_bench: %s\n", err.message);
        return 1;
    }
    if (snap) {
        const int budget = P * 5 / 100, recent = budget / 8;
        cp.method = "snapkv";
        cp.num_recent = recent;
        cp.num_heavy = budget - recent;
    }
    kvp_cache *cache = NULL;
    if (kvp_cache_new(model, &cp, &cache, &err)) {
        fprintf(stderr, "kvp_bench: %s\n", err.message);
        return 1;
    }
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)P);
    for (int i = 0; i < P; i++) ids[i] = 10 + i;
    marks m = {0, 0};
    kvp_gen_params gp = kvp_gen_default_params();
    gp.max_new_tokens = N;
    gp.ignore_eos = true;
    gp.n_threads = threads;
    gp.on_token = on_token;
    gp.user = &m;
    kvp_gen_result res;
    const double c0 = cpu_ms();
    if (kvp_generate(model, cache, ids, (size_t)P, &gp, &res, &err)) {
        fprintf(stderr, "kvp_bench: %s\n", err.message);
        return 1;
    }
    const double c2 = cpu_ms();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"prefill_ms\":%.3f,\"decode_ms\":%.3f,\"prefill_cpu_ms\":%.3f,\"decode_cpu_ms\":%.3f,"
           "\"decode_tokens\":%d,\"peak_rss_kb\":%ld}\n",
           res.prefill_ms, res.decode_ms, m.cpu_first - c0, c2 - m.cpu_first, (int)res.n_ids - 1,
           ru.ru_maxrss);
    kvp_gen_result_free(&res);
    kvp_cache_free(cache);
    kvp_model_free(model);
    free(ids);
    return 0;
}
