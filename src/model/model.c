/* Model loading: GGUF files and Hugging Face folders into one layout. */
#include "model/model.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/fp16.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

const char *kvm_arch_name(kvm_arch a) {
    switch (a) {
    case KVP_ARCH_LLAMA: return "llama";
    case KVP_ARCH_QWEN2: return "qwen2";
    case KVP_ARCH_QWEN3: return "qwen3";
    }
    return "?";
}

kvp_model_params kvp_model_default_params(void) {
    kvp_model_params p = {0, true, true, KVP_COMPUTE_AUTO, false};
    return p;
}

/* Where a tensor comes from, whatever the container. */
typedef struct src_tensor {
    const char *name;
    const char *file;
    uint32_t type;
    const char *type_str;
    int n_dims;
    int64_t rows, cols; /* 1-D: rows = 1, cols = n */
    const void *data;
} src_tensor;

typedef struct loader {
    kvp_model *m;
    kvp_error *err;
    bool gguf;
} loader;

static bool find_src(loader *L, const char *name, src_tensor *s) {
    memset(s, 0, sizeof *s);
    s->name = name;
    if (L->gguf) {
        const gguf_tensor_info *t = kvgguf_find_tensor(L->m->gguf, name);
        if (!t) return false;
        s->file = kvgguf_path(L->m->gguf);
        s->type = t->type;
        s->type_str = kvq_type_traits_of(t->type)->name; /* known: kvgguf_open checked */
        s->n_dims = (int)t->n_dims;
        for (uint32_t d = 2; d < t->n_dims; d++)
            if (t->ne[d] != 1) s->n_dims = 3; /* rejected as mis-shaped below */
        if (t->n_dims == 1) {
            s->rows = 1;
            s->cols = (int64_t)t->ne[0];
        } else {
            s->rows = (int64_t)t->ne[1];
            s->cols = (int64_t)t->ne[0];
            if (s->n_dims == 2 && t->n_dims > 2) s->n_dims = 2;
        }
        s->data = t->data;
        return true;
    }
    const kvst_tensor *t = kvst_model_find(L->m->st, name);
    if (!t) return false;
    s->file = t->file;
    s->type = t->type;
    s->type_str = t->dtype;
    s->n_dims = t->n_dims;
    if (t->n_dims == 1) {
        s->rows = 1;
        s->cols = t->shape[0];
    } else if (t->n_dims == 2) {
        s->rows = t->shape[0];
        s->cols = t->shape[1];
    }
    s->data = t->data;
    return true;
}

/* Loads `name` as a rows x cols matrix (rows == 0: a vector of cols).
 * as_f32: make a float32 copy (norms, biases). permute_heads > 0: undo
 * llama.cpp's Q/K row permutation for that many heads. */
static kvp_status load_w(loader *L, kvm_weight *w, const char *name, int64_t rows, int64_t cols,
                         bool required, bool as_f32, int permute_heads) {
    memset(w, 0, sizeof *w);
    src_tensor s;
    if (!find_src(L, name, &s)) {
        if (!required) return KVP_OK;
        return kvu_fail(L->err, KVP_ERR_FORMAT, "%s: missing tensor '%s'",
                        L->gguf ? kvgguf_path(L->m->gguf) : L->m->path, name);
    }
    bool vec = rows == 0;
    bool shape_ok = vec ? (s.n_dims == 1 && s.cols == cols)
                        : (s.n_dims == 2 && s.rows == rows && s.cols == cols);
    if (!shape_ok) {
        if (vec)
            return kvu_fail(L->err, KVP_ERR_FORMAT,
                            "%s: tensor '%s' has shape %dD [%lld x %lld], expected a vector of %lld",
                            s.file, name, s.n_dims, (long long)s.rows, (long long)s.cols,
                            (long long)cols);
        return kvu_fail(L->err, KVP_ERR_FORMAT,
                        "%s: tensor '%s' has shape %dD [%lld x %lld], expected [%lld x %lld]", s.file,
                        name, s.n_dims, (long long)s.rows, (long long)s.cols, (long long)rows,
                        (long long)cols);
    }
    /* Safetensors carry only F32/F16/BF16 here; GGUF every ggml type. */
    if (!kvk_matmul_type_ok(s.type) ||
        (!L->gguf && kvq_type_traits_of(s.type)->quantized))
        return kvu_fail(L->err, KVP_ERR_UNSUPPORTED,
                        "%s: tensor %s has type %s, which kvprune does not support (supported: %s)",
                        s.file, name, s.type_str,
                        L->gguf ? kvq_supported_type_names() : "F32, F16, BF16");
    size_t row_bytes = kvq_row_bytes(s.type, cols);
    if (!row_bytes)
        return kvu_fail(L->err, KVP_ERR_FORMAT,
                        "%s: tensor %s: row length %lld is not a multiple of the %s block (%d)",
                        s.file, name, (long long)cols, s.type_str,
                        kvq_type_traits_of(s.type)->block_elems);
    if (vec) rows = 1;
    w->rows = rows;
    w->cols = cols;
    w->type = s.type;
    L->m->type_counts[s.type]++;
    /* Element (F32: 4, F16/BF16: 2) or block scale (2) alignment. */
    size_t esz = s.type == GGML_TYPE_F32 ? 4 : 2;
    if (as_f32) {
        float *f = malloc((size_t)rows * cols * sizeof(float));
        if (!f) return kvu_fail(L->err, KVP_ERR_NOMEM, "%s: out of memory", name);
        if (((uintptr_t)s.data % esz) == 0) {
            kvk_to_f32(f, s.data, s.type, rows * cols);
        } else {
            void *tmp = malloc((size_t)rows * row_bytes);
            if (!tmp) {
                free(f);
                return kvu_fail(L->err, KVP_ERR_NOMEM, "%s: out of memory", name);
            }
            memcpy(tmp, s.data, (size_t)rows * row_bytes);
            kvk_to_f32(f, tmp, s.type, rows * cols);
            free(tmp);
        }
        w->type = GGML_TYPE_F32;
        w->owned = f;
        w->data = f;
    } else if (permute_heads > 0 || ((uintptr_t)s.data % esz) != 0) {
        uint8_t *d = malloc((size_t)rows * row_bytes);
        if (!d) return kvu_fail(L->err, KVP_ERR_NOMEM, "%s: out of memory", name);
        memcpy(d, s.data, (size_t)rows * row_bytes);
        w->owned = d;
        w->data = d;
    } else {
        w->data = s.data;
    }
    if (permute_heads > 0) {
        /* GGUF row h*hd + 2i + j holds HF row h*hd + j*hd/2 + i. */
        /* A bias (one row) permutes elements the way a matrix permutes rows. */
        int64_t R = vec ? cols : rows;
        int64_t hd = R / permute_heads, half = hd / 2;
        size_t rb = vec ? 4 : as_f32 ? (size_t)cols * 4 : row_bytes;
        uint8_t *src = malloc((size_t)R * rb);
        if (!src) return kvu_fail(L->err, KVP_ERR_NOMEM, "%s: out of memory", name);
        memcpy(src, w->owned, (size_t)R * rb);
        for (int64_t h = 0; h < permute_heads; h++)
            for (int64_t i = 0; i < half; i++)
                for (int64_t j = 0; j < 2; j++)
                    memcpy((uint8_t *)w->owned + (size_t)(h * hd + j * half + i) * rb,
                           src + (size_t)(h * hd + 2 * i + j) * rb, rb);
        free(src);
    }
    return KVP_OK;
}

static void free_w(kvm_weight *w) {
    free(w->owned);
    w->owned = NULL;
    free(w->packed);
    w->packed = NULL;
}

void kvp_model_free(kvp_model *m) {
    if (!m) return;
    kvdn_free(m->dnnl);
    kvp_tokenizer_free(m->tok);
    if (m->layers)
        for (int l = 0; l < m->info.n_layer; l++) {
            kvm_weight *ws[] = {&m->layers[l].attn_norm, &m->layers[l].ffn_norm, &m->layers[l].wq,
                                &m->layers[l].wk,        &m->layers[l].wv,       &m->layers[l].wo,
                                &m->layers[l].bq,        &m->layers[l].bk,       &m->layers[l].bv,
                                &m->layers[l].bo,        &m->layers[l].q_norm,   &m->layers[l].k_norm,
                                &m->layers[l].w_gate,    &m->layers[l].w_up,     &m->layers[l].w_down};
            for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) free_w(ws[i]);
        }
    free(m->layers);
    free_w(&m->tok_embd);
    free_w(&m->output_norm);
    if (!m->tied) free_w(&m->output);
    free(m->inv_freq);
    free(m->rope_factors);
    kvgguf_close(m->gguf);
    kvst_model_close(m->st);
    free(m->path);
    free(m);
}

/* inv_freq from theta and the scaling rule; llama3 also records llama.cpp's
 * per-dimension factors (rope_freqs) for conversion. */
static kvp_status setup_rope(kvp_model *m, kvp_error *err) {
    int half = m->info.head_dim / 2;
    m->inv_freq = calloc((size_t)half, sizeof(double));
    if (!m->inv_freq) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", m->path);
    if (m->rope_kind == KVP_ROPE_LLAMA3 && !m->rope_factors) {
        m->rope_factors = calloc((size_t)half, sizeof(float));
        if (!m->rope_factors) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", m->path);
    }
    for (int i = 0; i < half; i++) {
        double theta = m->hf_rope_theta > 0 ? m->hf_rope_theta : (double)m->info.rope_theta;
        double f = pow(theta, -2.0 * i / m->info.head_dim);
        double nf = f;
        if (m->rope_kind == KVP_ROPE_LINEAR) {
            nf = f / m->rope_factor;
        } else if (m->rope_kind == KVP_ROPE_LLAMA3) {
            /* Hugging Face's _compute_llama3_parameters. */
            double low_wl = m->rope_orig_ctx / m->rope_low;
            double high_wl = m->rope_orig_ctx / m->rope_high;
            double wl = 2 * M_PI / f;
            if (wl < high_wl)
                nf = f;
            else if (wl > low_wl)
                nf = f / m->rope_factor;
            else {
                double smooth = (m->rope_orig_ctx / wl - m->rope_low) / (m->rope_high - m->rope_low);
                nf = (1 - smooth) * f / m->rope_factor + smooth * f;
            }
            m->rope_factors[i] = (float)(f / nf);
        } else if (m->rope_factors) {
            nf = f / m->rope_factors[i];
        }
        m->inv_freq[i] = nf;
    }
    return KVP_OK;
}

static kvp_status load_weights(loader *L) {
    kvp_model *m = L->m;
    const kvp_model_info *I = &m->info;
    int64_t E = I->n_embd, V = I->n_vocab, F = I->n_ff, hd = I->head_dim;
    int64_t qd = (int64_t)I->n_head * hd, kd = (int64_t)I->n_head_kv * hd;
    bool g = L->gguf;
    kvp_status s;
    if ((s = load_w(L, &m->tok_embd, g ? "token_embd.weight" : "model.embed_tokens.weight", V, E,
                    true, false, 0)) ||
        (s = load_w(L, &m->output_norm, g ? "output_norm.weight" : "model.norm.weight", 0, E, true,
                    true, 0)))
        return s;
    if ((s = load_w(L, &m->output, g ? "output.weight" : "lm_head.weight", V, E, false, false, 0)))
        return s;
    if (!m->output.data || (!g && m->tied)) {
        free_w(&m->output);
        m->output = m->tok_embd;
        m->output.owned = NULL;
        m->tied = true;
    }
    m->layers = calloc((size_t)I->n_layer, sizeof *m->layers);
    if (!m->layers) return kvu_fail(L->err, KVP_ERR_NOMEM, "%s: out of memory", m->path);
    bool permute = g && m->arch == KVP_ARCH_LLAMA;
    for (int l = 0; l < I->n_layer; l++) {
        kvm_layer *y = &m->layers[l];
        char n[128];
#define NAME(gg, hf) (snprintf(n, sizeof n, g ? "blk.%d." gg : "model.layers.%d." hf, l), n)
        if ((s = load_w(L, &y->attn_norm, NAME("attn_norm.weight", "input_layernorm.weight"), 0, E,
                        true, true, 0)) ||
            (s = load_w(L, &y->ffn_norm,
                        NAME("ffn_norm.weight", "post_attention_layernorm.weight"), 0, E, true, true,
                        0)) ||
            (s = load_w(L, &y->wq, NAME("attn_q.weight", "self_attn.q_proj.weight"), qd, E, true,
                        false, permute ? I->n_head : 0)) ||
            (s = load_w(L, &y->wk, NAME("attn_k.weight", "self_attn.k_proj.weight"), kd, E, true,
                        false, permute ? I->n_head_kv : 0)) ||
            (s = load_w(L, &y->wv, NAME("attn_v.weight", "self_attn.v_proj.weight"), kd, E, true,
                        false, 0)) ||
            (s = load_w(L, &y->wo, NAME("attn_output.weight", "self_attn.o_proj.weight"), E, qd,
                        true, false, 0)) ||
            (s = load_w(L, &y->bq, NAME("attn_q.bias", "self_attn.q_proj.bias"), 0, qd,
                        m->arch == KVP_ARCH_QWEN2, true, permute ? I->n_head : 0)) ||
            (s = load_w(L, &y->bk, NAME("attn_k.bias", "self_attn.k_proj.bias"), 0, kd,
                        m->arch == KVP_ARCH_QWEN2, true, permute ? I->n_head_kv : 0)) ||
            (s = load_w(L, &y->bv, NAME("attn_v.bias", "self_attn.v_proj.bias"), 0, kd,
                        m->arch == KVP_ARCH_QWEN2, true, 0)) ||
            (s = load_w(L, &y->bo, NAME("attn_output.bias", "self_attn.o_proj.bias"), 0, E, false,
                        true, 0)) ||
            (s = load_w(L, &y->q_norm, NAME("attn_q_norm.weight", "self_attn.q_norm.weight"), 0, hd,
                        m->arch == KVP_ARCH_QWEN3, true, 0)) ||
            (s = load_w(L, &y->k_norm, NAME("attn_k_norm.weight", "self_attn.k_norm.weight"), 0, hd,
                        m->arch == KVP_ARCH_QWEN3, true, 0)) ||
            (s = load_w(L, &y->w_gate, NAME("ffn_gate.weight", "mlp.gate_proj.weight"), F, E, true,
                        false, 0)) ||
            (s = load_w(L, &y->w_up, NAME("ffn_up.weight", "mlp.up_proj.weight"), F, E, true, false,
                        0)) ||
            (s = load_w(L, &y->w_down, NAME("ffn_down.weight", "mlp.down_proj.weight"), E, F, true,
                        false, 0)))
            return s;
#undef NAME
    }
    return KVP_OK;
}

static uint64_t weight_elems(const kvm_weight *w) { return w->data ? (uint64_t)(w->rows * w->cols) : 0; }

static void count_params(kvp_model *m) {
    uint64_t n = weight_elems(&m->tok_embd) + weight_elems(&m->output_norm) +
                 (m->tied ? 0 : weight_elems(&m->output));
    for (int l = 0; l < m->info.n_layer; l++) {
        const kvm_layer *y = &m->layers[l];
        const kvm_weight *ws[] = {&y->attn_norm, &y->ffn_norm, &y->wq,     &y->wk,     &y->wv,
                                  &y->wo,        &y->bq,       &y->bk,     &y->bv,     &y->bo,
                                  &y->q_norm,    &y->k_norm,   &y->w_gate, &y->w_up,   &y->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) n += weight_elems(ws[i]);
    }
    m->info.n_params = n;
}

/* Adds a copy of a matrix in the type its products of many tokens compute
 * in (single-token products keep reading the stored weights). */
static kvp_status repack_weight(kvp_model *m, kvm_weight *w, kvp_error *err) {
    if (!w->data || w->rows <= 1) return KVP_OK;
    const bool bf16 = kvdn_compute_for(m->dnnl, w->type) == KVDN_COMPUTE_BF16;
    const uint32_t to = bf16 ? GGML_TYPE_BF16 : GGML_TYPE_F32;
    if (w->type == to) return KVP_OK;
    const int64_t n = w->rows * w->cols;
    void *copy = malloc((size_t)n * (bf16 ? 2 : 4));
    if (!copy) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory repacking a %lld x %lld matrix",
                               m->path, (long long)w->rows, (long long)w->cols);
    /* ggml's dequantization: every loaded type, F32/F16/BF16 included. */
    if (bf16)
        kvq_dequantize_rows_bf16(w->type, w->data, copy, w->rows, w->cols);
    else
        kvq_dequantize_rows_f32(w->type, w->data, copy, w->rows, w->cols);
    w->packed = copy;
    w->packed_type = to;
    m->info.repack_bytes += (uint64_t)n * (bf16 ? 2 : 4);
    return KVP_OK;
}

/* The products' engine: oneDNN when built in, the compute type, and the
 * repacked copies the caller asked for. */
static kvp_status setup_products(kvp_model *m, const kvp_model_params *p, kvp_error *err) {
    if (p->compute < KVP_COMPUTE_AUTO || p->compute > KVP_COMPUTE_BF16)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "compute type %d is not auto, f32 or bf16",
                        (int)p->compute);
    static const char *names[] = {"auto", "f32", "bf16"};
    snprintf(m->text.compute, sizeof m->text.compute, "%s", names[p->compute]);
    if (kvdn_available()) m->dnnl = kvdn_new((int)p->compute);
    m->info.onednn = m->dnnl != NULL;
    if (!m->dnnl && p->compute == KVP_COMPUTE_BF16)
        return kvu_fail(err, KVP_ERR_UNSUPPORTED,
                        "compute type bf16 needs oneDNN (a build with KVP_ONEDNN=ON) and a CPU "
                        "with AVX-512 (oneDNN's bf16 kernels)");
    if (!p->repack || !m->dnnl) return KVP_OK;
    kvp_status s = KVP_OK;
    for (int l = 0; l < m->info.n_layer && !s; l++) {
        kvm_layer *y = &m->layers[l];
        kvm_weight *ws[] = {&y->wq, &y->wk, &y->wv, &y->wo, &y->w_gate, &y->w_up, &y->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0] && !s; i++) s = repack_weight(m, ws[i], err);
    }
    return s;
}

static kvp_status check_dims(const kvp_model *m, const char *file, kvp_error *err) {
    const kvp_model_info *I = &m->info;
    if (I->n_embd <= 0 || I->n_layer <= 0 || I->n_head <= 0 || I->n_head_kv <= 0 || I->n_ff <= 0 ||
        I->head_dim <= 0 || I->n_vocab <= 0)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: model dimensions missing or not positive", file);
    if (I->n_head % I->n_head_kv)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: %d query heads are not a multiple of %d KV heads",
                        file, I->n_head, I->n_head_kv);
    if (I->head_dim % 2)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: head dimension %d is odd", file, I->head_dim);
    if (I->n_layer > 4096 || I->n_embd > (1 << 20) || I->n_ff > (1 << 22) || I->n_head > 4096 ||
        I->head_dim > 4096 || I->n_vocab > (1 << 24))
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: implausible model dimensions", file);
    if (!(I->rms_norm_eps > 0) || !(I->rope_theta > 0))
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: rms_norm_eps and rope theta must be positive",
                        file);
    return KVP_OK;
}

static kvp_status gguf_u32_req(const gguf_file *g, const char *arch, const char *key, int *out,
                               kvp_error *err) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    uint32_t v;
    if (!kvgguf_get_u32(g, k, &v) || v > (1u << 30))
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: missing or invalid metadata key '%s'", kvgguf_path(g),
                        k);
    *out = (int)v;
    return KVP_OK;
}

static kvp_status load_gguf(kvp_model *m, const kvp_model_params *p, kvp_error *err) {
    kvp_status s = kvgguf_open(m->path, p->use_mmap, &m->gguf, err);
    if (s) return s;
    gguf_file *g = m->gguf;
    size_t alen;
    const char *arch = kvgguf_get_str(g, "general.architecture", &alen);
    if (!arch)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: missing metadata key 'general.architecture'",
                        m->path);
    char a[32];
    snprintf(a, sizeof a, "%.*s", (int)(alen < 31 ? alen : 31), arch);
    if (!strcmp(a, "llama") || !strcmp(a, "mistral"))
        m->arch = KVP_ARCH_LLAMA;
    else if (!strcmp(a, "qwen2"))
        m->arch = KVP_ARCH_QWEN2;
    else if (!strcmp(a, "qwen3"))
        m->arch = KVP_ARCH_QWEN3;
    else
        return kvu_fail(err, KVP_ERR_UNSUPPORTED,
                        "%s: unknown architecture '%s' (supported: llama, mistral, qwen2, qwen3)",
                        m->path, a);
    kvp_model_info *I = &m->info;
    snprintf(m->text.arch, sizeof m->text.arch, "%s", kvm_arch_name(m->arch));
    if ((s = gguf_u32_req(g, a, "embedding_length", &I->n_embd, err)) ||
        (s = gguf_u32_req(g, a, "block_count", &I->n_layer, err)) ||
        (s = gguf_u32_req(g, a, "feed_forward_length", &I->n_ff, err)) ||
        (s = gguf_u32_req(g, a, "attention.head_count", &I->n_head, err)))
        return s;
    char k[128];
    uint32_t u;
    snprintf(k, sizeof k, "%s.attention.head_count_kv", a);
    I->n_head_kv = kvgguf_get_u32(g, k, &u) ? (int)u : I->n_head;
    snprintf(k, sizeof k, "%s.context_length", a);
    I->n_ctx_train = kvgguf_get_u32(g, k, &u) ? (int)u : 2048;
    I->head_dim = I->n_head ? I->n_embd / I->n_head : 0;
    snprintf(k, sizeof k, "%s.attention.key_length", a);
    if (kvgguf_get_u32(g, k, &u)) I->head_dim = (int)u;
    snprintf(k, sizeof k, "%s.attention.value_length", a);
    if (kvgguf_get_u32(g, k, &u) && (int)u != I->head_dim)
        return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: value_length %u differs from key_length %d",
                        m->path, u, I->head_dim);
    snprintf(k, sizeof k, "%s.rope.dimension_count", a);
    if (kvgguf_get_u32(g, k, &u) && (int)u != I->head_dim)
        return kvu_fail(err, KVP_ERR_UNSUPPORTED,
                        "%s: partial rotary embeddings (%u of %d dims) are not supported", m->path, u,
                        I->head_dim);
    float f;
    snprintf(k, sizeof k, "%s.rope.freq_base", a);
    I->rope_theta = kvgguf_get_f32(g, k, &f) ? f : 10000.0f;
    snprintf(k, sizeof k, "%s.attention.layer_norm_rms_epsilon", a);
    if (!kvgguf_get_f32(g, k, &I->rms_norm_eps))
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: missing metadata key '%s'", m->path, k);
    snprintf(k, sizeof k, "%s.rope.scaling.type", a);
    size_t tl;
    const char *st = kvgguf_get_str(g, k, &tl);
    if (st && !(tl == 4 && !memcmp(st, "none", 4))) {
        snprintf(k, sizeof k, "%s.rope.scaling.factor", a);
        if (tl == 6 && !memcmp(st, "linear", 6) && kvgguf_get_f32(g, k, &f) && f > 0) {
            m->rope_kind = KVP_ROPE_LINEAR;
            m->rope_factor = f;
        } else {
            return kvu_fail(err, KVP_ERR_UNSUPPORTED,
                            "%s: rope scaling type '%.*s' is not supported (none, linear, or "
                            "llama3 via rope_freqs)",
                            m->path, (int)tl, st);
        }
    }
    const gguf_tensor_info *ti = kvgguf_find_tensor(g, "token_embd.weight");
    if (!ti || ti->n_dims != 2)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: missing or mis-shaped tensor 'token_embd.weight'",
                        m->path);
    I->n_vocab = (int)(ti->ne[1] > (1u << 30) ? 0 : ti->ne[1]);
    if ((s = check_dims(m, m->path, err))) return s;
    const gguf_tensor_info *rf = kvgguf_find_tensor(g, "rope_freqs.weight");
    if (rf) {
        if (rf->type != GGML_TYPE_F32 || rf->n_dims != 1 || (int)rf->ne[0] != I->head_dim / 2)
            return kvu_fail(err, KVP_ERR_FORMAT,
                            "%s: tensor 'rope_freqs.weight' must be F32 of %d elements", m->path,
                            I->head_dim / 2);
        m->rope_factors = malloc(sizeof(float) * (size_t)(I->head_dim / 2));
        if (!m->rope_factors) return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
        memcpy(m->rope_factors, rf->data, sizeof(float) * (size_t)(I->head_dim / 2));
        for (int i = 0; i < I->head_dim / 2; i++)
            if (!(m->rope_factors[i] > 0))
                return kvu_fail(err, KVP_ERR_FORMAT, "%s: rope_freqs.weight has a non-positive entry",
                                m->path);
    }
    int64_t i64;
    I->bos_id = kvgguf_get_i64(g, "tokenizer.ggml.bos_token_id", &i64) && i64 >= 0 ? (int32_t)i64 : -1;
    const char *eos_keys[] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                              "tokenizer.ggml.eom_token_id"};
    for (size_t i = 0; i < 3; i++) {
        if (!kvgguf_get_i64(g, eos_keys[i], &i64) || i64 < 0 || i64 > INT32_MAX) continue;
        bool dup = false;
        for (int j = 0; j < I->n_eos; j++) dup |= I->eos_ids[j] == i64;
        if (!dup && I->n_eos < 8) m->text.eos_ids[I->n_eos++] = (int32_t)i64;
    }
    size_t nl;
    const char *name = kvgguf_get_str(g, "general.name", &nl);
    if (name) {
        snprintf(m->text.name, sizeof m->text.name, "%.*s", (int)(nl < 255 ? nl : 255), name);
    } else {
        const char *base = strrchr(m->path, '/');
        snprintf(m->text.name, sizeof m->text.name, "%s", base ? base + 1 : m->path);
    }
    loader L = {m, err, true};
    if ((s = load_weights(&L))) return s;
    for (int64_t i = 0; i < kvgguf_n_tensors(g); i++) I->weight_bytes += kvgguf_tensor(g, i)->n_bytes;
    /* "none"/"no_vocab": llama.cpp's marker for a model without a vocabulary. */
    size_t tml;
    const char *tm = kvgguf_get_str(g, "tokenizer.ggml.model", &tml);
    bool no_vocab = tm && ((tml == 4 && !memcmp(tm, "none", 4)) || (tml == 8 && !memcmp(tm, "no_vocab", 8)));
    if (p->load_tokenizer && !no_vocab && (s = kvt_tokenizer_from_gguf(g, &m->tok, err)))
        return kvu_fail_prefix(err, s, "%s: tokenizer", m->path);
    return KVP_OK;
}

static kvp_status load_hf(kvp_model *m, const kvp_model_params *p, kvp_error *err) {
    kvhf_config c;
    kvp_status s = kvhf_config_load(m->path, &c, err);
    if (s) return s;
    kvp_model_info *I = &m->info;
    m->arch = !strcmp(c.arch, "qwen2") ? KVP_ARCH_QWEN2
              : !strcmp(c.arch, "qwen3") ? KVP_ARCH_QWEN3 : KVP_ARCH_LLAMA;
    snprintf(m->text.arch, sizeof m->text.arch, "%s", c.arch);
    I->n_vocab = c.vocab_size;
    I->n_ctx_train = c.max_position;
    I->n_embd = c.hidden_size;
    I->n_layer = c.num_layers;
    I->n_head = c.num_heads;
    I->n_head_kv = c.num_kv_heads;
    I->head_dim = c.head_dim;
    I->n_ff = c.intermediate_size;
    I->rope_theta = (float)c.rope_theta;
    I->rms_norm_eps = (float)c.rms_norm_eps;
    I->bos_id = c.bos_id;
    I->n_eos = c.n_eos;
    memcpy(m->text.eos_ids, c.eos_ids, sizeof m->text.eos_ids);
    m->tied = c.tie_word_embeddings;
    m->rope_kind = c.rope_kind;
    m->rope_factor = c.rope_factor;
    m->rope_low = c.rope_low_freq_factor;
    m->rope_high = c.rope_high_freq_factor;
    m->rope_orig_ctx = c.rope_original_max_position;
    m->hf_rope_theta = c.rope_theta;
    m->hf_eps = c.rms_norm_eps;
    char cfgpath[4096];
    snprintf(cfgpath, sizeof cfgpath, "%s/config.json", m->path);
    if ((s = check_dims(m, cfgpath, err))) return s;
    const char *base = strrchr(m->path, '/');
    base = base && base[1] ? base + 1 : m->path;
    snprintf(m->text.name, sizeof m->text.name, "%s", base);
    if ((s = kvst_model_open(m->path, p->use_mmap, &m->st, err))) return s;
    loader L = {m, err, false};
    if ((s = load_weights(&L))) return s;
    I->weight_bytes = kvst_model_bytes(m->st);
    if (p->load_tokenizer && (s = kvt_tokenizer_from_hf_dir(m->path, &m->tok, err)))
        return kvu_fail_prefix(err, s, "%s: tokenizer", m->path);
    return KVP_OK;
}

kvp_status kvp_model_load(const char *path, const kvp_model_params *params, kvp_model **out,
                          kvp_error *err) {
    kvu_error_clear(err);
    if (!path || !out) return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_model_load: no path or output");
    *out = NULL;
    kvp_model_params p = params ? *params : kvp_model_default_params();
    struct stat sb;
    if (stat(path, &sb) != 0)
        return kvu_fail(err, KVP_ERR_IO, "%s: no such file or folder", path);
    kvp_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", path);
    }
    m->info.arch = m->text.arch;
    m->info.name = m->text.name;
    m->info.weight_types = m->text.weight_types;
    m->info.compute = m->text.compute;
    m->info.eos_ids = m->text.eos_ids;
    /* Trailing slashes would make the folder's name empty. */
    for (size_t n = strlen(m->path); n > 1 && m->path[n - 1] == '/'; n--) m->path[n - 1] = '\0';
    m->n_threads = p.n_threads > 0 ? p.n_threads : omp_get_num_procs();
    kvp_status s = S_ISDIR(sb.st_mode) ? load_hf(m, &p, err) : load_gguf(m, &p, err);
    if (!s) s = setup_rope(m, err);
    if (s) {
        kvp_model_free(m);
        return s;
    }
    count_params(m);
    size_t used = 0;
    for (uint32_t t = 0; t < GGML_TYPE_COUNT; t++) {
        if (!m->type_counts[t]) continue;
        int k = snprintf(m->text.weight_types + used, sizeof m->text.weight_types - used, "%s%s x%d",
                         used ? ", " : "", kvq_type_traits_of(t)->name, m->type_counts[t]);
        if (k < 0 || (size_t)k >= sizeof m->text.weight_types - used) break;
        used += (size_t)k;
    }
    if ((s = setup_products(m, &p, err))) {
        kvp_model_free(m);
        return s;
    }
    *out = m;
    return KVP_OK;
}

void kvp_model_get_info_sized(const kvp_model *model, kvp_model_info *info, size_t info_size) {
    if (!info) return;
    kvp_model_info all;
    if (model) {
        all = model->info;
    } else {
        memset(&all, 0, sizeof all);
        all.arch = all.name = all.weight_types = all.compute = "";
    }
    /* A caller built against an older, shorter struct gets its prefix. */
    memcpy(info, &all, info_size < sizeof all ? info_size : sizeof all);
}

const kvp_tokenizer *kvp_model_tokenizer(const kvp_model *model) { return model ? model->tok : NULL; }

static uint64_t fnv_mix(uint64_t h, const void *d, size_t n) {
    const unsigned char *p = d;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t fnv_weight(uint64_t h, const kvm_weight *w) {
    if (!w->data || w->type != GGML_TYPE_F32) return fnv_mix(h, "-", 1);
    return fnv_mix(h, w->data, sizeof(float) * (size_t)(w->rows * w->cols));
}

uint64_t kvm_model_identity(const kvp_model *m) {
    const kvp_model_info *I = &m->info;
    int32_t shape[] = {(int32_t)m->arch, I->n_vocab, I->n_embd, I->n_layer, I->n_head, I->n_head_kv,
                       I->head_dim, I->n_ff, (int32_t)m->rope_kind};
    uint64_t h = fnv_mix(1469598103934665603ULL, shape, sizeof shape);
    for (int i = 0; i < I->head_dim / 2; i++) h = fnv_mix(h, &m->inv_freq[i], sizeof(double));
    h = fnv_weight(h, &m->output_norm);
    for (int l = 0; l < I->n_layer; l++) {
        h = fnv_weight(h, &m->layers[l].attn_norm);
        h = fnv_weight(h, &m->layers[l].ffn_norm);
    }
    return h;
}
