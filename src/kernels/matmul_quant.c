/* Matrix products against block-quantized weights (kvk_matmul's quantized
 * branch).
 *
 * Few activation rows (decode, short blocks): kvqd_matmul (quant_dot.c),
 * each row quantized once to the weight type's vec_dot_type and every
 * output one integer dot, as ggml does. More rows: panels of weight rows are
 * dequantized to float32 and multiplied with the float32 kernel, whose
 * per-element order does not depend on the panel.
 *
 * Either way one worker of the pool computes each output element in a fixed order, so
 * results are identical for any thread count. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "kernels/quant_dot.h"

/* Rows of W per dequantized panel (PANEL x K floats stay in L2). */
#define PANEL 64

typedef struct {
    float *y;
    const float *x;
    const uint8_t *w;
    uint32_t wtype;
    size_t wrb;
    int T, N, K, n_panels;
    bool accumulate;
    atomic_int failed;
} panel_job;

static void panel_worker(void *arg, int ith, int nth) {
    panel_job *j = arg;
    const int T = j->T, N = j->N, K = j->K;
    float *panel = malloc(sizeof(float) * (size_t)PANEL * K);
    float *yp = malloc(sizeof(float) * (size_t)PANEL * T);
    int64_t lo, hi;
    kvu_pool_share(j->n_panels, ith, nth, &lo, &hi);
    if (!panel || !yp) {
        atomic_store(&j->failed, 1);
        lo = hi;
    }
    for (int p = (int)lo; p < (int)hi; p++) {
        const int n0 = p * PANEL, nr = N - n0 < PANEL ? N - n0 : PANEL;
        kvq_dequantize_rows_f32(j->wtype, j->w + j->wrb * (size_t)n0, panel, nr, K);
        if (!kvk_matmul(yp, j->x, T, panel, GGML_TYPE_F32, nr, K, false, NULL)) {
            atomic_store(&j->failed, 1);
            continue;
        }
        for (int t = 0; t < T; t++) {
            float *dst = j->y + (size_t)t * N + n0;
            const float *src = yp + (size_t)t * nr;
            if (j->accumulate)
                for (int r = 0; r < nr; r++) dst[r] += src[r];
            else
                memcpy(dst, src, sizeof(float) * (size_t)nr);
        }
    }
    free(panel);
    free(yp);
}

static bool matmul_panels(float *y, const float *x, int T, const uint8_t *w, uint32_t wtype, int N,
                          int K, bool accumulate, kvu_pool *pool) {
    panel_job j = {y, x, w, wtype, kvq_row_bytes(wtype, K), T, N, K, (N + PANEL - 1) / PANEL, accumulate, 0};
    int n_threads = kvu_pool_threads(pool);
    if (n_threads > j.n_panels) n_threads = j.n_panels;
    /* Below ~1M multiply-adds waking threads costs more than it saves. */
    if ((int64_t)T * N * K < (1 << 20)) n_threads = 1;
    kvu_pool_run(pool, n_threads, panel_worker, &j);
    return !atomic_load(&j.failed);
}

bool kvq_matmul(float *y, const float *x, int T, const void *w, uint32_t wtype, int N, int K,
                bool accumulate, kvu_pool *pool) {
    if (T <= KVQ_DOT_MAX_ROWS) return kvqd_matmul(y, x, T, w, wtype, N, K, accumulate, pool);
    return matmul_panels(y, x, T, w, wtype, N, K, accumulate, pool);
}
