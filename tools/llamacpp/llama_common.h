/* What the programs that run llama.cpp share (node-llama-cpp's prebuilt
 * libllama; built by llamacpp_cc of node_llama_cpp.sh, which puts this
 * folder on the include path): llama.cpp's log cut to its errors, its CPU
 * backends loaded, a GGUF loaded on the CPU without progress output, and
 * "1,2,3" token lists. */
#ifndef KVP_LLAMA_COMMON_H
#define KVP_LLAMA_COMMON_H

#include <stdbool.h>
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
