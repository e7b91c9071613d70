/* The forward pass of Llama-family decoders over a block of tokens. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/quant.h"
#include "model/model.h"
#include "util/error.h"
#include "util/pool.h"

/* The MLP runs over token sub-blocks so its scratch stays bounded for long
 * prompts (it is per token, so blocking does not change results). 512 is
 * the oneDNN path's token block: each converted (dequantized) weight panel
 * then serves 512 rows, not 256 (at 512 tokens the MLP weights were
 * converted twice per prefill). */
#define MLP_BLOCK 512

/* y (=|+=) x W^T: products of many tokens through oneDNN when the model
 * has it, the rest (and every product without it) on kvk_matmul; both on
 * the cache's pool. */
static bool product(const kvp_model *m, float *y, const float *x, int T, const kvm_weight *w, int N,
                    int K, bool accumulate, kvu_pool *pool) {
    int r = w->packed ? kvdn_matmul(m->dnnl, y, x, T, w->packed, w->packed_type, N, K, accumulate, pool)
                      : kvdn_matmul(m->dnnl, y, x, T, w->data, w->type, N, K, accumulate, pool);
    if (r) return r > 0;
    return kvk_matmul(y, x, T, w->data, w->type, N, K, accumulate, pool);
}

static void add_bias(float *y, const kvm_weight *b, int T, int n) {
    if (!b->data) return;
    const float *bv = b->data;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++) y[(size_t)t * n + i] += bv[i];
}

/* The per-token steps between the products (RMSNorm, RoPE, SwiGLU) over
 * many tokens run on the pool too: on one thread they left the second core
 * idle for about a fifth of a prefill. Each works row by row (one scalar
 * expf per element), so any split of the rows gives the same bits. */
#define EW_MIN_ROWS 8

typedef enum { EW_RMSNORM, EW_ROPE, EW_SWIGLU } ew_op;

/* One of those steps over `rows` rows of n floats (RoPE: rows are tokens
 * of heads x hd floats, with half cos/sin pairs per token in w). */
typedef struct {
    ew_op op;
    float *out;
    const float *x, *w;
    int rows, n, heads, hd, half;
    float eps;
} ew_job;

static void ew_worker(void *arg, int ith, int nth) {
    const ew_job *j = arg;
    int64_t lo, hi;
    kvu_pool_share(j->rows, ith, nth, &lo, &hi);
    if (hi <= lo) return;
    const int rows = (int)(hi - lo);
    switch (j->op) {
    case EW_RMSNORM: kvk_rmsnorm(j->out + lo * j->n, j->x + lo * j->n, j->w, rows, j->n, j->eps); break;
    case EW_ROPE:
        kvk_rope_apply(j->out + lo * j->heads * j->hd, rows, j->heads, j->hd, j->w + lo * j->half * 2, j->half);
        break;
    case EW_SWIGLU: kvk_swiglu(j->out + lo * j->n, j->x + lo * j->n, (int64_t)rows * j->n); break;
    }
}

static void ew_run(kvu_pool *pool, const ew_job *j) {
    kvu_pool_run(pool, j->rows >= EW_MIN_ROWS ? kvu_pool_threads(pool) : 1, ew_worker, (void *)j);
}

static void rmsnorm_rows(kvu_pool *pool, float *out, const float *x, const float *w, int rows, int n,
                         float eps) {
    ew_run(pool, &(ew_job){.op = EW_RMSNORM, .out = out, .x = x, .w = w, .rows = rows, .n = n, .eps = eps});
}

static void rope_rows(kvu_pool *pool, float *x, int T, int heads, int hd, const float *cs, int half) {
    ew_run(pool, &(ew_job){.op = EW_ROPE, .out = x, .w = cs, .rows = T, .heads = heads, .hd = hd, .half = half});
}

static void swiglu_rows(kvu_pool *pool, float *g, const float *u, int rows, int n) {
    ew_run(pool, &(ew_job){.op = EW_SWIGLU, .out = g, .x = u, .rows = rows, .n = n});
}

kvp_status kvm_forward(const kvp_model *m, kvp_cache *c, const int32_t *ids, int T,
                       int n_prompt_total, float *logits, int nt, kvp_error *err) {
    const kvp_model_info *I = &m->info;
    if (T <= 0) return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_eval: no tokens");
    for (int t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= I->n_vocab)
            return kvu_fail(err, KVP_ERR_INVALID_ARG, "token id %d at index %d is out of range [0, %d)",
                            ids[t], t, I->n_vocab);
    const int E = I->n_embd, F = I->n_ff, hd = I->head_dim, half = hd / 2;
    const int H = I->n_head, Hk = I->n_head_kv, qd = H * hd, kd = Hk * hd;
    const int TB = T < MLP_BLOCK ? T : MLP_BLOCK;
    /* The decode path's workers belong to the cache (one sequence, one
     * caller at a time), so a model shared by several sequences never
     * shares threads between them. */
    kvu_pool *pool = NULL;
    kvp_status ps = kvc_thread_pool(c, nt, &pool, err);
    if (ps) return ps;
    size_t TE = (size_t)T * E;
    float *x = malloc(TE * sizeof(float));
    float *xn = malloc(TE * sizeof(float));
    float *q = malloc((size_t)T * qd * sizeof(float));
    float *k = malloc((size_t)T * kd * sizeof(float));
    float *v = malloc((size_t)T * kd * sizeof(float));
    float *att = malloc((size_t)T * qd * sizeof(float));
    float *gate = malloc((size_t)TB * F * sizeof(float));
    float *up = malloc((size_t)TB * F * sizeof(float));
    float *cs = malloc((size_t)T * half * 2 * sizeof(float));
    float *erow = malloc((size_t)E * sizeof(float));
    kvp_status s = KVP_OK;
    if (!x || !xn || !q || !k || !v || !att || !gate || !up || !cs || !erow) {
        s = kvu_fail(err, KVP_ERR_NOMEM, "out of memory for a block of %d tokens", T);
        goto done;
    }
    /* The embedding lookup converts only the rows it needs (quantized rows
     * whole, as stored). */
    const size_t erb = kvq_row_bytes(m->tok_embd.type, E);
    for (int t = 0; t < T; t++)
        kvk_to_f32(x + (size_t)t * E, (const char *)m->tok_embd.data + (size_t)ids[t] * erb,
                   m->tok_embd.type, E);
    int32_t pos0 = kvc_next_pos(c);
    kvk_rope_table(cs, T, pos0, m->inv_freq, half);
    /* prefill attention computes in the compute type of the layer products */
    kvc_set_attn_bf16(c, m->dnnl && kvdn_compute_for(m->dnnl, m->layers[0].wq.type) == KVDN_COMPUTE_BF16);
    if ((s = kvc_begin(c, T, n_prompt_total, err))) goto done;
    bool ok = true;
    for (int l = 0; l < I->n_layer && ok; l++) {
        const kvm_layer *y = &m->layers[l];
        rmsnorm_rows(pool, xn, x, y->attn_norm.data, T, E, I->rms_norm_eps);
        ok = product(m, q, xn, T, &y->wq, qd, E, false, pool) &&
             product(m, k, xn, T, &y->wk, kd, E, false, pool) &&
             product(m, v, xn, T, &y->wv, kd, E, false, pool);
        if (!ok) break;
        add_bias(q, &y->bq, T, qd);
        add_bias(k, &y->bk, T, kd);
        add_bias(v, &y->bv, T, kd);
        if (y->q_norm.data) rmsnorm_rows(pool, q, q, y->q_norm.data, T * H, hd, I->rms_norm_eps);
        if (y->k_norm.data) rmsnorm_rows(pool, k, k, y->k_norm.data, T * Hk, hd, I->rms_norm_eps);
        rope_rows(pool, q, T, H, hd, cs, half);
        rope_rows(pool, k, T, Hk, hd, cs, half);
        if ((s = kvc_attend(c, l, q, k, v, att, pool, err))) goto done;
        ok = product(m, x, att, T, &y->wo, E, qd, true, pool);
        add_bias(x, &y->bo, T, E);
        rmsnorm_rows(pool, xn, x, y->ffn_norm.data, T, E, I->rms_norm_eps);
        for (int t0 = 0; t0 < T && ok; t0 += TB) {
            int tb = T - t0 < TB ? T - t0 : TB;
            const float *xb = xn + (size_t)t0 * E;
            ok = product(m, gate, xb, tb, &y->w_gate, F, E, false, pool) &&
                 product(m, up, xb, tb, &y->w_up, F, E, false, pool);
            if (!ok) break;
            swiglu_rows(pool, gate, up, tb, F);
            ok = product(m, x + (size_t)t0 * E, gate, tb, &y->w_down, E, F, true, pool);
        }
    }
    if (!ok) {
        s = kvu_fail(err, KVP_ERR_NOMEM, "out of memory in a matrix product");
        goto done;
    }
    kvc_end(c);
    if (logits) {
        kvk_rmsnorm(erow, x + (size_t)(T - 1) * E, m->output_norm.data, 1, E, I->rms_norm_eps);
        if (!kvk_matmul(logits, erow, 1, m->output.data, m->output.type, I->n_vocab, E, false, pool)) {
            s = kvu_fail(err, KVP_ERR_NOMEM, "out of memory in the LM head");
            goto done;
        }
        /* NaN/Inf weights (or garbage bytes read as floats) would otherwise
         * quietly become token 0 in every sampler. */
        for (int i = 0; i < I->n_vocab; i++)
            if (!isfinite(logits[i])) {
                s = kvu_fail(err, KVP_ERR_FORMAT,
                             "%s: the logits at position %d are not finite (logit %d is %g): "
                             "the model's weights hold NaN/Inf or corrupt data",
                             m->path, (int)kvc_next_pos(c) - 1, i, (double)logits[i]);
                break;
            }
    }
done:
    /* A failed block leaves the cache mid-block; callers reset it. */
    free(x);
    free(xn);
    free(q);
    free(k);
    free(v);
    free(att);
    free(gate);
    free(up);
    free(cs);
    free(erow);
    return s;
}
