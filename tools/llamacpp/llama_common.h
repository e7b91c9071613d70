/* What the programs that run llama.cpp share (node-llama-cpp's prebuilt
 * libllama; built by llamacpp_cc of node_llama_cpp.sh, which puts this
 * folder on the include path): llama.cpp's log cut to its errors, its CPU
 * backends loaded, a GGUF loaded on the CPU without progress output, and
 * "1,2,3" token lists. */
#ifndef KVP_LLAMA_COMMON_H
#define KVP_LLAMA_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ggml-backend.h"
#include "llama.h"

static inline void llc_quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static inline bool llc_no_progress(float p, void *user) {
    (void)p;
    (void)user;
    return true;
}

/* llama.cpp quiet, with the CPU backend variants of bins (the folder of
 * libggml-cpu-*.so) loaded when bins is not NULL. */
static inline void llc_init(const char *bins) {
    llama_log_set(llc_quiet, NULL);
    if (bins) ggml_backend_load_all_from_path(bins);
    llama_backend_init();
}

/* The model at path on the CPU; NULL after saying so on stderr (prefixed
 * by who, e.g. "llama_bench: ", or ""). */
static inline struct llama_model *llc_load_model(const char *path, const char *who) {
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.progress_callback = llc_no_progress;
    struct llama_model *model = llama_model_load_from_file(path, mp);
    if (!model) fprintf(stderr, "%sllama.cpp could not load %s\n", who, path);
    return model;
}

/* A context for comparing logits with kvprune's: n_ctx tokens, the prompt
 * in one batch, one thread, float32 K/V, no flash attention. NULL after
 * saying so on stderr. */
static inline struct llama_context *llc_compare_context(struct llama_model *model, int n_ctx) {
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)n_ctx;
    cp.n_batch = (uint32_t)n_ctx;
    cp.n_ubatch = (uint32_t)n_ctx;
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) fprintf(stderr, "llama.cpp could not create a context\n");
    return ctx;
}

/* kvprune's logits (generate --dump-logits): n_steps x n_vocab float32
 * (malloc'd); NULL after saying so on stderr. */
static inline float *llc_read_logits(const char *path, int n_steps, int n_vocab) {
    const size_t want = (size_t)n_vocab * (size_t)n_steps;
    FILE *f = fopen(path, "rb");
    float *ref = malloc(sizeof(float) * (want ? want : 1));
    size_t got = f && ref ? fread(ref, sizeof(float), want, f) : 0;
    if (f) fclose(f);
    if (got != want) {
        fprintf(stderr, "%s: expected %d x %d logits, read %zu\n", path, n_steps, n_vocab, got);
        free(ref);
        return NULL;
    }
    return ref;
}

/* "1,2,3" -> out (at most max ids); the count read. */
static inline int llc_parse_ids(const char *s, llama_token *out, int max) {
    int n = 0;
    while (*s && n < max) {
        char *end;
        out[n++] = (llama_token)strtol(s, &end, 10);
        if (end == s) break;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

#endif
