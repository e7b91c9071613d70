/* What the targets of the evaluations' readers (needle and LongBench jsonl)
 * share: the tiny test model, and the removal of the folders a run wrote. */
#ifndef KVP_FUZZ_EVAL_H
#define KVP_FUZZ_EVAL_H

#include <dirent.h>

#include "fuzz_common.h"
#include "kvprune.h"

#ifndef KVP_SOURCE_DIR
#error "KVP_SOURCE_DIR must name the source tree (set by fuzz/CMakeLists.txt)"
#endif

/* tests/data/eval/tiny-model, on one thread (aborts when it does not load:
 * the fixture is part of the tree). */
static inline kvp_model *fz_tiny_model(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/eval/tiny-model", KVP_SOURCE_DIR);
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = 1;
    kvp_model *model = NULL;
    kvp_error err;
    if (kvp_model_load(path, &mp, &model, &err) != KVP_OK) abort();
    return model;
}

/* Removes path and everything below it, following no links. In-process:
 * a fork per input would cost more than the input. */
static inline void fz_remove_tree(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            const struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                char child[4096];
                const int k = snprintf(child, sizeof child, "%s/%s", path, e->d_name);
                if (k > 0 && (size_t)k < sizeof child) fz_remove_tree(child);
            }
            closedir(d);
        }
    }
    remove(path);
}

#endif
