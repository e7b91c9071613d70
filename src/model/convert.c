/* Writing GGUF files that llama.cpp loads: its key names, tensor names and
 * its Q/K row permutation for arch llama. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format/gguf.h"
#include "format/hfconfig.h"
#include "kernels/fp16.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

typedef struct conv {
    gguf_writer *w;
    void **bufs;
    size_t n_bufs, cap_bufs;
    kvp_error *err;
    const char *out;
} conv;

static void *keep(conv *c, size_t n) {
    if (c->n_bufs == c->cap_bufs) {
        size_t cap = c->cap_bufs ? c->cap_bufs * 2 : 64;
        void **nb = realloc(c->bufs, cap * sizeof *nb);
        if (!nb) return NULL;
        c->bufs = nb;
        c->cap_bufs = cap;
    }
    void *p = malloc(n ? n : 1);
    if (p) c->bufs[c->n_bufs++] = p;
    return p;
}

/* Adds weight w as `name` in type `type` (1-D weights always F32; a
 * quantized type's block must divide the row), with
 * llama.cpp's row permutation over n_heads when permute_heads > 0. */
static kvp_status put(conv *c, const char *name, const kvm_weight *w, uint32_t type, bool vec,
                      int permute_heads) {
    if (!w->data) return KVP_OK;
    if (vec) type = GGML_TYPE_F32;
    int64_t rows = w->rows, cols = w->cols, n = rows * cols;
    const size_t row_bytes = kvq_row_bytes(type, cols); /* the caller picked a type that fits */
    float *f = malloc((size_t)n * sizeof(float));
    uint8_t *dst = keep(c, (size_t)rows * row_bytes);
    if (!f || !dst) {
        free(f);
        return kvu_fail(c->err, KVP_ERR_NOMEM, "%s: out of memory converting '%s'", c->out, name);
    }
    kvk_to_f32(f, w->data, w->type, n);
    if (permute_heads > 0) {
        /* HF row h*hd + j*hd/2 + i goes to row h*hd + 2i + j. For a bias
         * (one row), permute elements instead of rows. */
        int64_t R = vec ? cols : rows, rc = vec ? 1 : cols;
        int64_t hd = R / permute_heads, half = hd / 2;
        float *g = malloc((size_t)n * sizeof(float));
        if (!g) {
            free(f);
            return kvu_fail(c->err, KVP_ERR_NOMEM, "%s: out of memory", c->out);
        }
        for (int64_t h = 0; h < permute_heads; h++)
            for (int64_t i = 0; i < half; i++)
                for (int64_t j = 0; j < 2; j++)
                    memcpy(g + (h * hd + 2 * i + j) * rc, f + (h * hd + j * half + i) * rc,
                           (size_t)rc * sizeof(float));
        free(f);
        f = g;
    }
    if (kvq_type_traits_of(type)->quantized) {
        /* Row by row with the reference quantizer: llama.cpp's blocks. */
        for (int64_t r = 0; r < rows; r++)
            kvq_quantize_row_ref(type, f + r * cols, dst + (size_t)r * row_bytes, cols);
    } else {
        for (int64_t i = 0; i < n; i++) {
            if (type == GGML_TYPE_F32)
                memcpy(dst + i * 4, &f[i], 4);
            else {
                uint16_t h = type == GGML_TYPE_F16 ? kvk_f32_to_f16(f[i]) : kvk_f32_to_bf16(f[i]);
                memcpy(dst + i * 2, &h, 2);
            }
        }
    }
    free(f);
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    kvp_status s = kvgguf_writer_add_tensor(c->w, name, vec ? 1 : 2, ne, type, dst,
                                          (uint64_t)rows * row_bytes);
    if (s) return kvu_fail(c->err, s, "%s: cannot add tensor '%s'", c->out, name);
    return KVP_OK;
}

/* A --type: the matrices' base type, llama.cpp's general.file_type for
 * it, and whether llama.cpp's per-tensor mix applies (else every matrix is
 * the base type, rows permitting). */
typedef struct preset {
    uint32_t base;
    uint32_t file_type;
    bool mix;
} preset;

static bool preset_of(kvp_ftype ft, preset *p) {
    static const preset tab[] = {
        [KVP_FTYPE_F32] = {GGML_TYPE_F32, 0, false},     [KVP_FTYPE_F16] = {GGML_TYPE_F16, 1, false},
        [KVP_FTYPE_BF16] = {GGML_TYPE_BF16, 32, false},  [KVP_FTYPE_Q8_0] = {GGML_TYPE_Q8_0, 7, true},
        [KVP_FTYPE_Q4_0] = {GGML_TYPE_Q4_0, 2, true},    [KVP_FTYPE_Q4_K] = {GGML_TYPE_Q4_K, 15, false},
        [KVP_FTYPE_Q5_K] = {GGML_TYPE_Q5_K, 17, false},  [KVP_FTYPE_Q6_K] = {GGML_TYPE_Q6_K, 18, true},
        [KVP_FTYPE_Q4_K_M] = {GGML_TYPE_Q4_K, 15, true}, [KVP_FTYPE_Q5_K_M] = {GGML_TYPE_Q5_K, 17, true},
    };
    if ((int)ft < 0 || (size_t)ft >= sizeof tab / sizeof tab[0]) return false;
    *p = tab[ft];
    return true;
}

typedef enum role { ROLE_OTHER, ROLE_TOKEN_EMBD, ROLE_OUTPUT, ROLE_ATTN_V, ROLE_FFN_DOWN } role;

/* llama.cpp's use_more_bits: the first and last eighth of the layers and
 * every third one between. */
static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* llama.cpp's tensor_type_fallback: a type whose block does not divide the
 * row falls back to a 32-element block type, then to F16. */
static uint32_t fit_row(uint32_t t, int64_t cols) {
    if (cols % kvq_type_traits_of(t)->block_elems == 0) return t;
    switch (t) {
    case GGML_TYPE_Q2_K: case GGML_TYPE_Q3_K: t = GGML_TYPE_Q4_0; break;
    case GGML_TYPE_Q4_K: t = GGML_TYPE_Q5_0; break;
    case GGML_TYPE_Q5_K: t = GGML_TYPE_Q5_1; break;
    case GGML_TYPE_Q6_K: t = GGML_TYPE_Q8_0; break;
    case GGML_TYPE_IQ4_XS: t = GGML_TYPE_IQ4_NL; break;
    default: break;
    }
    return cols % kvq_type_traits_of(t)->block_elems ? GGML_TYPE_F16 : t;
}

typedef struct mix {
    kvp_ftype ft;
    preset p;
    bool tied;       /* no output.weight: the embedding is quantized as it */
    bool big70;      /* llama.cpp's LLM_TYPE_70B (80 layers, llama with GQA or qwen2) */
    int n_layer;
} mix;

/* The type of a 2-D weight: llama_tensor_get_type for these presets
 * (dense llama/qwen models, no importance matrix). */
static uint32_t matrix_type(const mix *x, role r, int layer, int64_t cols) {
    uint32_t t = x->p.base;
    if (!kvq_type_traits_of(t)->quantized) return t;
    if (x->p.mix) {
        const bool km = x->ft == KVP_FTYPE_Q4_K_M || x->ft == KVP_FTYPE_Q5_K_M;
        if (r == ROLE_OUTPUT || (x->tied && r == ROLE_TOKEN_EMBD)) {
            if (cols % kvq_type_traits_of(t)->block_elems)
                t = GGML_TYPE_Q8_0;
            else if (t != GGML_TYPE_Q8_0)
                t = GGML_TYPE_Q6_K;
        } else if (r == ROLE_ATTN_V) {
            if (km && more_bits(layer, x->n_layer)) t = GGML_TYPE_Q6_K;
            if (x->big70 && (t == GGML_TYPE_Q3_K || t == GGML_TYPE_Q4_K)) t = GGML_TYPE_Q5_K;
        } else if (r == ROLE_FFN_DOWN) {
            if (km && more_bits(layer, x->n_layer)) t = GGML_TYPE_Q6_K;
        }
    }
    return fit_row(t, cols);
}

#define TRY(x)                                                                         \
    do {                                                                               \
        kvp_status s_ = (x);                                                           \
        if (s_) {                                                                      \
            st = kvu_fail(err, s_, "%s: cannot set GGUF metadata (out of memory)", out_path); \
            goto done;                                                                 \
        }                                                                              \
    } while (0)

kvp_status kvp_convert_to_gguf(const char *in_path, const char *out_path, kvp_ftype type,
                               kvp_error *err) {
    kvu_error_clear(err);
    if (!in_path || !out_path)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_convert_to_gguf: no input or output path");
    preset pre;
    if (!preset_of(type, &pre))
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_convert_to_gguf: bad type %d", type);
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = 1;
    kvp_model *m = NULL;
    kvp_status st = kvp_model_load(in_path, &mp, &m, err);
    if (st) return st;
    conv c = {kvgguf_writer_new(), NULL, 0, 0, err, out_path};
    if (!c.w) {
        st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
        goto done;
    }
    const kvp_model_info *I = &m->info;
    const char *a = kvm_arch_name(m->arch);
    char k[128];
#define KEY(suffix) (snprintf(k, sizeof k, "%s." suffix, a), k)
    TRY(kvgguf_writer_set_str(c.w, "general.architecture", a));
    TRY(kvgguf_writer_set_str(c.w, "general.name", I->name));
    TRY(kvgguf_writer_set_u32(c.w, "general.file_type", pre.file_type));
    if (kvq_type_traits_of(pre.base)->quantized)
        TRY(kvgguf_writer_set_u32(c.w, "general.quantization_version", 2)); /* ggml's GGML_QNT_VERSION */
    TRY(kvgguf_writer_set_u32(c.w, KEY("context_length"), (uint32_t)I->n_ctx_train));
    TRY(kvgguf_writer_set_u32(c.w, KEY("embedding_length"), (uint32_t)I->n_embd));
    TRY(kvgguf_writer_set_u32(c.w, KEY("block_count"), (uint32_t)I->n_layer));
    TRY(kvgguf_writer_set_u32(c.w, KEY("feed_forward_length"), (uint32_t)I->n_ff));
    TRY(kvgguf_writer_set_u32(c.w, KEY("attention.head_count"), (uint32_t)I->n_head));
    TRY(kvgguf_writer_set_u32(c.w, KEY("attention.head_count_kv"), (uint32_t)I->n_head_kv));
    TRY(kvgguf_writer_set_u32(c.w, KEY("attention.key_length"), (uint32_t)I->head_dim));
    TRY(kvgguf_writer_set_u32(c.w, KEY("attention.value_length"), (uint32_t)I->head_dim));
    TRY(kvgguf_writer_set_u32(c.w, KEY("rope.dimension_count"), (uint32_t)I->head_dim));
    TRY(kvgguf_writer_set_f32(c.w, KEY("rope.freq_base"), I->rope_theta));
    TRY(kvgguf_writer_set_f32(c.w, KEY("attention.layer_norm_rms_epsilon"), I->rms_norm_eps));
    TRY(kvgguf_writer_set_u32(c.w, KEY("vocab_size"), (uint32_t)I->n_vocab));
    if (m->rope_kind == KVP_ROPE_LINEAR) {
        TRY(kvgguf_writer_set_str(c.w, KEY("rope.scaling.type"), "linear"));
        TRY(kvgguf_writer_set_f32(c.w, KEY("rope.scaling.factor"), (float)m->rope_factor));
    }
#undef KEY
    if (I->bos_id >= 0) TRY(kvgguf_writer_set_u32(c.w, "tokenizer.ggml.bos_token_id", (uint32_t)I->bos_id));
    if (I->n_eos > 0)
        TRY(kvgguf_writer_set_u32(c.w, "tokenizer.ggml.eos_token_id", (uint32_t)I->eos_ids[0]));
    if (m->tok && (st = kvt_tokenizer_to_gguf(m->tok, c.w, err))) {
        kvu_fail_prefix(err, st, "%s: writing tokenizer metadata", out_path);
        goto done;
    }
    /* llama.cpp requires the key; "none" is its name for a vocabulary-less
     * model (it then takes the size from {arch}.vocab_size). */
    if (!m->tok) TRY(kvgguf_writer_set_str(c.w, "tokenizer.ggml.model", "none"));
    bool permute = m->arch == KVP_ARCH_LLAMA;
    const mix x = {type, pre, m->tied,
                   I->n_layer == 80 && ((m->arch == KVP_ARCH_LLAMA && I->n_head != I->n_head_kv) ||
                                        m->arch == KVP_ARCH_QWEN2),
                   I->n_layer};
    const uint32_t vt = GGML_TYPE_F32; /* vectors */
    if ((st = put(&c, "token_embd.weight", &m->tok_embd,
                  matrix_type(&x, ROLE_TOKEN_EMBD, 0, m->tok_embd.cols), false, 0)))
        goto done;
    if (m->rope_factors) {
        kvm_weight rf = {.type = GGML_TYPE_F32, .rows = 1, .cols = I->head_dim / 2, .data = m->rope_factors};
        if ((st = put(&c, "rope_freqs.weight", &rf, vt, true, 0))) goto done;
    }
    for (int l = 0; l < I->n_layer && !st; l++) {
        const kvm_layer *y = &m->layers[l];
        char n[128];
#define N(s) (snprintf(n, sizeof n, "blk.%d." s, l), n)
#define MT(r, wt) matrix_type(&x, r, l, (wt)->cols)
        if ((st = put(&c, N("attn_norm.weight"), &y->attn_norm, vt, true, 0)) ||
            (st = put(&c, N("attn_q.weight"), &y->wq, MT(ROLE_OTHER, &y->wq), false,
                      permute ? I->n_head : 0)) ||
            (st = put(&c, N("attn_k.weight"), &y->wk, MT(ROLE_OTHER, &y->wk), false,
                      permute ? I->n_head_kv : 0)) ||
            (st = put(&c, N("attn_v.weight"), &y->wv, MT(ROLE_ATTN_V, &y->wv), false, 0)) ||
            (st = put(&c, N("attn_output.weight"), &y->wo, MT(ROLE_OTHER, &y->wo), false, 0)) ||
            (st = put(&c, N("attn_q.bias"), &y->bq, vt, true, permute ? I->n_head : 0)) ||
            (st = put(&c, N("attn_k.bias"), &y->bk, vt, true, permute ? I->n_head_kv : 0)) ||
            (st = put(&c, N("attn_v.bias"), &y->bv, vt, true, 0)) ||
            (st = put(&c, N("attn_output.bias"), &y->bo, vt, true, 0)) ||
            (st = put(&c, N("attn_q_norm.weight"), &y->q_norm, vt, true, 0)) ||
            (st = put(&c, N("attn_k_norm.weight"), &y->k_norm, vt, true, 0)) ||
            (st = put(&c, N("ffn_norm.weight"), &y->ffn_norm, vt, true, 0)) ||
            (st = put(&c, N("ffn_gate.weight"), &y->w_gate, MT(ROLE_OTHER, &y->w_gate), false, 0)) ||
            (st = put(&c, N("ffn_up.weight"), &y->w_up, MT(ROLE_OTHER, &y->w_up), false, 0)) ||
            (st = put(&c, N("ffn_down.weight"), &y->w_down, MT(ROLE_FFN_DOWN, &y->w_down), false,
                      0)))
            goto done;
#undef MT
#undef N
    }
    if ((st = put(&c, "output_norm.weight", &m->output_norm, vt, true, 0))) goto done;
    if (!m->tied && (st = put(&c, "output.weight", &m->output,
                              matrix_type(&x, ROLE_OUTPUT, 0, m->output.cols), false, 0)))
        goto done;
    st = kvgguf_writer_write(c.w, out_path, err);
done:
    kvgguf_writer_free(c.w);
    for (size_t i = 0; i < c.n_bufs; i++) free(c.bufs[i]);
    free(c.bufs);
    kvp_model_free(m);
    return st;
}

kvp_status kvp_convert_vocab_only(const char *in_path, const char *out_path, kvp_error *err) {
    kvu_error_clear(err);
    if (!in_path || !out_path)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_convert_vocab_only: no input or output path");
    kvp_tokenizer *tok = NULL;
    kvp_status st = kvp_tokenizer_load(in_path, &tok, err);
    if (st) return st;
    if (!tok) return kvu_fail(err, KVP_ERR_FORMAT, "%s: has no tokenizer", in_path);
    /* The architecture key tells llama.cpp which hparams prefix to read. */
    char arch[32] = "llama";
    struct stat sb;
    if (stat(in_path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        kvhf_config cfg;
        kvp_error e2;
        if (kvhf_config_load(in_path, &cfg, &e2) == KVP_OK) snprintf(arch, sizeof arch, "%s", cfg.arch);
    } else {
        gguf_file *g = NULL;
        kvp_error e2;
        if (kvgguf_open(in_path, true, &g, &e2) == KVP_OK) {
            size_t l;
            const char *a = kvgguf_get_str(g, "general.architecture", &l);
            if (a && l < sizeof arch) snprintf(arch, sizeof arch, "%.*s", (int)l, a);
            kvgguf_close(g);
        }
    }
    gguf_writer *w = kvgguf_writer_new();
    if (!w || kvgguf_writer_set_str(w, "general.architecture", arch) ||
        kvgguf_writer_set_u32(w, "general.file_type", 0)) {
        st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    } else if ((st = kvt_tokenizer_to_gguf(tok, w, err))) {
        kvu_fail_prefix(err, st, "%s: writing tokenizer metadata", out_path);
    } else {
        st = kvgguf_writer_write(w, out_path, err);
    }
    kvgguf_writer_free(w);
    kvp_tokenizer_free(tok);
    return st;
}
