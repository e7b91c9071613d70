/* Matrix products against block-quantized weights (kvk_matmul's quantized
 * branch).
 *
 * Few activation rows (decode, short blocks): kvqd_matmul (quant_dot.c),
 * each row quantized once to the weight type's vec_dot_type and every
 * output one integer dot, as ggml does. More rows: panels of weight rows are
 * dequantized to float32 and multiplied with the float32 kernel, whose
 * per-element order does not depend on the panel.
 *
 * Either way one thread computes each output element in a fixed order, so
 * results are identical for any thread count. */
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "kernels/quant_dot.h"

/* Rows of W per dequantized panel (PANEL x K floats stay in L2). */
#define PANEL 64

static int clamp_threads(int n_threads, int n_tasks, int64_t work) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > n_tasks) n_threads = n_tasks;
    /* Below ~1M multiply-adds waking threads costs more than it saves. */
    if (work < (1 << 20)) n_threads = 1;
    return n_threads;
}

static bool matmul_panels(float *y, const float *x, int T, const uint8_t *w, uint32_t wtype, int N,
                          int K, bool accumulate, int n_threads) {
    const size_t wrb = kvq_row_bytes(wtype, K);
    const int n_panels = (N + PANEL - 1) / PANEL;
    n_threads = clamp_threads(n_threads, n_panels, (int64_t)T * N * K);
    int failed = 0;
#pragma omp parallel num_threads(n_threads)
    {
        float *panel = malloc(sizeof(float) * (size_t)PANEL * K);
        float *yp = malloc(sizeof(float) * (size_t)PANEL * T);
        if (!panel || !yp) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int p = 0; p < n_panels; p++) {
            if (!panel || !yp) continue;
            const int n0 = p * PANEL, nr = N - n0 < PANEL ? N - n0 : PANEL;
            kvq_dequantize_rows_f32(wtype, w + wrb * (size_t)n0, panel, nr, K);
            if (!kvk_matmul(yp, x, T, panel, GGML_TYPE_F32, nr, K, false, 1)) {
#pragma omp atomic write
                failed = 1;
                continue;
            }
            for (int t = 0; t < T; t++) {
                float *dst = y + (size_t)t * N + n0;
                const float *src = yp + (size_t)t * nr;
                if (accumulate)
                    for (int r = 0; r < nr; r++) dst[r] += src[r];
                else
                    memcpy(dst, src, sizeof(float) * (size_t)nr);
            }
        }
        free(panel);
        free(yp);
    }
    return !failed;
}

bool kvq_matmul(float *y, const float *x, int T, const void *w, uint32_t wtype, int N, int K,
                bool accumulate, int n_threads) {
    if (T <= KVQ_DOT_MAX_ROWS) return kvqd_matmul(y, x, T, w, wtype, N, K, accumulate, n_threads);
    return matmul_panels(y, x, T, w, wtype, N, K, accumulate, n_threads);
}
