/* The integer dot kernels alone against ggml's, one thread, weights in
 * cache (2048-wide rows, 512 of them, quantized by our reference
 * quantizers, which match ggml's bit for bit): GB/s of weights for each
 * type, ours at the dispatched level and ggml's CPU variant for this
 * machine (the libggml-cpu-*.so with the highest ggml_backend_score, as
 * ggml itself chooses), on the same rows and the same activations (each
 * quantized by its own code). Built by bench/quant_vs_llamacpp.sh against
 * the node-llama-cpp package's headers.
 *
 * usage: qdot_vs_ggml BINS_DIR [K N REPS] */
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-cpu.h"
#include "kernels/cpu.h"
#include "kernels/quant.h"
#include "kernels/quant_dot.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef const struct ggml_type_traits_cpu *(*traits_fn)(enum ggml_type);

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: qdot_vs_ggml BINS_DIR [K N REPS]\n");
        return 2;
    }
    const int K = argc > 2 ? atoi(argv[2]) : 2048, N = argc > 3 ? atoi(argv[3]) : 512;
    const int reps = argc > 4 ? atoi(argv[4]) : 30;
    /* ggml's CPU variant for this machine. */
    void *best = NULL;
    int best_score = 0;
    char best_name[512] = "";
    DIR *d = opendir(argv[1]);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, "libggml-cpu-", 12)) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        int (*score)(void) = h ? (int (*)(void))dlsym(h, "ggml_backend_score") : NULL;
        const int s = score ? score() : 0;
        if (s > best_score) {
            best_score = s, best = h;
            snprintf(best_name, sizeof best_name, "%s", e->d_name);
        }
    }
    if (d) closedir(d);
    if (!best) {
        fprintf(stderr, "qdot_vs_ggml: no usable libggml-cpu-*.so in %s\n", argv[1]);
        return 1;
    }
    traits_fn traits = (traits_fn)dlsym(best, "ggml_get_type_traits_cpu");
    void (*cpu_init)(void) = (void (*)(void))dlsym(best, "ggml_cpu_init");
    cpu_init();
    printf("ggml: %s; ours: %s; K=%d N=%d, best of %d\n", best_name, kvcpu_level_name(kvcpu_current()), K,
           N, reps);
    const uint32_t types[] = {8, 2, 3, 6, 7, 10, 11, 12, 13, 14, 20, 23}; /* ggml numbering */
    float *x = malloc(sizeof(float) * K), *row = malloc(sizeof(float) * K);
    for (int i = 0; i < K; i++) x[i] = (float)((i * 7919) % 101 - 50) * 0.01f;
    printf("| type | ours GB/s | ggml GB/s | ours/ggml |\n|---|---:|---:|---:|\n");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const uint32_t t = types[ti];
        const size_t rb = kvq_row_bytes(t, K);
        if (!rb) continue;
        const uint32_t vdt = kvq_type_traits_of(t)->vec_dot_type;
        char *w = malloc(rb * N), *xq = malloc(kvq_row_bytes(vdt, K)), *xg = malloc(kvq_row_bytes(vdt, K));
        for (int r = 0; r < N; r++) {
            for (int k = 0; k < K; k++) row[k] = (float)(((r + 3) * (k + 5)) % 97 - 48) * 0.02f;
            kvq_quantize_row_ref(t, row, w + rb * r, K);
        }
        const struct ggml_type_traits_cpu *g = traits((enum ggml_type)t);
        kvq_quantize_activations(vdt, x, xq, K);
        traits((enum ggml_type)vdt)->from_float(x, xg, K);
        const kvqd_dot_fn f = kvqd_dot_for(kvcpu_current(), t);
        double bo = 1e30, bg = 1e30, so = 0, sg = 0;
        for (int rep = 0; rep < reps; rep++) {
            double t0 = now();
            for (int r = 0; r < N; r++) so += f ? f(K, w + rb * r, xq) : kvq_vec_dot_scalar(t, K, w + rb * r, xq);
            double t1 = now();
            for (int r = 0; r < N; r++) {
                float s;
                g->vec_dot(K, &s, 0, w + rb * r, 0, xg, 0, 1);
                sg += s;
            }
            double t2 = now();
            if (t1 - t0 < bo) bo = t1 - t0;
            if (t2 - t1 < bg) bg = t2 - t1;
        }
        printf("| %s | %.2f | %.2f | %.2f |\n", kvq_type_traits_of(t)->name, rb * N / bo / 1e9,
               rb * N / bg / 1e9, bg / bo);
        if (so != so || sg != sg) return 1; /* keep the sums alive */
        free(w), free(xq), free(xg);
    }
    free(x), free(row);
    return 0;
}
