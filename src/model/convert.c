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

/* Adds weight w as `name` in type `type` (1-D weights always F32), with
 * llama.cpp's row permutation over n_heads when permute_heads > 0. */
static kvp_status put(conv *c, const char *name, const kvp_weight *w, uint32_t type, bool vec,
                      int permute_heads) {
    if (!w->data) return KVP_OK;
    if (vec) type = GGML_TYPE_F32;
    int64_t rows = w->rows, cols = w->cols, n = rows * cols;
    float *f = malloc((size_t)n * sizeof(float));
    size_t esz = type == GGML_TYPE_F32 ? 4 : 2;
    uint8_t *dst = keep(c, (size_t)n * esz);
    if (!f || !dst) {
        free(f);
        return kvp_fail(c->err, KVP_ERR_NOMEM, "%s: out of memory converting '%s'", c->out, name);
    }
    kvp_to_f32(f, w->data, w->type, n);
    if (permute_heads > 0) {
        /* HF row h*hd + j*hd/2 + i goes to row h*hd + 2i + j. For a bias
         * (one row), permute elements instead of rows. */
        int64_t R = vec ? cols : rows, rc = vec ? 1 : cols;
        int64_t hd = R / permute_heads, half = hd / 2;
        float *g = malloc((size_t)n * sizeof(float));
        if (!g) {
            free(f);
            return kvp_fail(c->err, KVP_ERR_NOMEM, "%s: out of memory", c->out);
        }
        for (int64_t h = 0; h < permute_heads; h++)
            for (int64_t i = 0; i < half; i++)
                for (int64_t j = 0; j < 2; j++)
                    memcpy(g + (h * hd + 2 * i + j) * rc, f + (h * hd + j * half + i) * rc,
                           (size_t)rc * sizeof(float));
        free(f);
        f = g;
    }
    for (int64_t i = 0; i < n; i++) {
        if (type == GGML_TYPE_F32)
            memcpy(dst + i * 4, &f[i], 4);
        else {
            uint16_t h = type == GGML_TYPE_F16 ? kvp_f32_to_f16(f[i]) : kvp_f32_to_bf16(f[i]);
            memcpy(dst + i * 2, &h, 2);
        }
    }
    free(f);
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    kvp_status s = gguf_writer_add_tensor(c->w, name, vec ? 1 : 2, ne, type, dst, (uint64_t)n * esz);
    if (s) return kvp_fail(c->err, s, "%s: cannot add tensor '%s'", c->out, name);
    return KVP_OK;
}

#define TRY(x)                                                                         \
    do {                                                                               \
        kvp_status s_ = (x);                                                           \
        if (s_) {                                                                      \
            st = kvp_fail(err, s_, "%s: cannot set GGUF metadata (out of memory)", out_path); \
            goto done;                                                                 \
        }                                                                              \
    } while (0)

kvp_status kvp_convert_to_gguf(const char *in_path, const char *out_path, kvp_ftype type,
                               kvp_error *err) {
    kvp_error_clear(err);
    if (!in_path || !out_path)
        return kvp_fail(err, KVP_ERR_INVALID_ARG, "kvp_convert_to_gguf: no input or output path");
    uint32_t gt = type == KVP_FTYPE_F32 ? GGML_TYPE_F32
                  : type == KVP_FTYPE_F16 ? GGML_TYPE_F16
                  : type == KVP_FTYPE_BF16 ? GGML_TYPE_BF16 : 0xffff;
    if (gt == 0xffff) return kvp_fail(err, KVP_ERR_INVALID_ARG, "kvp_convert_to_gguf: bad type %d", type);
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = 1;
    kvp_model *m = NULL;
    kvp_status st = kvp_model_load(in_path, &mp, &m, err);
    if (st) return st;
    conv c = {gguf_writer_new(), NULL, 0, 0, err, out_path};
    if (!c.w) {
        st = kvp_fail(err, KVP_ERR_NOMEM, "out of memory");
        goto done;
    }
    const kvp_model_info *I = &m->info;
    const char *a = kvp_arch_name(m->arch);
    char k[128];
#define KEY(suffix) (snprintf(k, sizeof k, "%s." suffix, a), k)
    TRY(gguf_writer_set_str(c.w, "general.architecture", a));
    TRY(gguf_writer_set_str(c.w, "general.name", I->name));
    TRY(gguf_writer_set_u32(c.w, "general.file_type", type == KVP_FTYPE_F32 ? 0
                                                     : type == KVP_FTYPE_F16 ? 1 : 32));
    TRY(gguf_writer_set_u32(c.w, KEY("context_length"), (uint32_t)I->n_ctx_train));
    TRY(gguf_writer_set_u32(c.w, KEY("embedding_length"), (uint32_t)I->n_embd));
    TRY(gguf_writer_set_u32(c.w, KEY("block_count"), (uint32_t)I->n_layer));
    TRY(gguf_writer_set_u32(c.w, KEY("feed_forward_length"), (uint32_t)I->n_ff));
    TRY(gguf_writer_set_u32(c.w, KEY("attention.head_count"), (uint32_t)I->n_head));
    TRY(gguf_writer_set_u32(c.w, KEY("attention.head_count_kv"), (uint32_t)I->n_head_kv));
    TRY(gguf_writer_set_u32(c.w, KEY("attention.key_length"), (uint32_t)I->head_dim));
    TRY(gguf_writer_set_u32(c.w, KEY("attention.value_length"), (uint32_t)I->head_dim));
    TRY(gguf_writer_set_u32(c.w, KEY("rope.dimension_count"), (uint32_t)I->head_dim));
    TRY(gguf_writer_set_f32(c.w, KEY("rope.freq_base"), I->rope_theta));
    TRY(gguf_writer_set_f32(c.w, KEY("attention.layer_norm_rms_epsilon"), I->rms_norm_eps));
    TRY(gguf_writer_set_u32(c.w, KEY("vocab_size"), (uint32_t)I->n_vocab));
    if (m->rope_kind == KVP_ROPE_LINEAR) {
        TRY(gguf_writer_set_str(c.w, KEY("rope.scaling.type"), "linear"));
        TRY(gguf_writer_set_f32(c.w, KEY("rope.scaling.factor"), (float)m->rope_factor));
    }
#undef KEY
    if (I->bos_id >= 0) TRY(gguf_writer_set_u32(c.w, "tokenizer.ggml.bos_token_id", (uint32_t)I->bos_id));
    if (I->n_eos > 0)
        TRY(gguf_writer_set_u32(c.w, "tokenizer.ggml.eos_token_id", (uint32_t)I->eos_ids[0]));
    if (m->tok && (st = kvp_tokenizer_to_gguf(m->tok, c.w, err))) {
        kvp_fail_prefix(err, st, "%s: writing tokenizer metadata", out_path);
        goto done;
    }
    /* llama.cpp requires the key; "none" is its name for a vocabulary-less
     * model (it then takes the size from {arch}.vocab_size). */
    if (!m->tok) TRY(gguf_writer_set_str(c.w, "tokenizer.ggml.model", "none"));
    bool permute = m->arch == KVP_ARCH_LLAMA;
    if ((st = put(&c, "token_embd.weight", &m->tok_embd, gt, false, 0))) goto done;
    if (m->rope_factors) {
        kvp_weight rf = {GGML_TYPE_F32, 1, I->head_dim / 2, m->rope_factors, NULL};
        if ((st = put(&c, "rope_freqs.weight", &rf, gt, true, 0))) goto done;
    }
    for (int l = 0; l < I->n_layer && !st; l++) {
        const kvp_layer *y = &m->layers[l];
        char n[128];
#define N(s) (snprintf(n, sizeof n, "blk.%d." s, l), n)
        if ((st = put(&c, N("attn_norm.weight"), &y->attn_norm, gt, true, 0)) ||
            (st = put(&c, N("attn_q.weight"), &y->wq, gt, false, permute ? I->n_head : 0)) ||
            (st = put(&c, N("attn_k.weight"), &y->wk, gt, false, permute ? I->n_head_kv : 0)) ||
            (st = put(&c, N("attn_v.weight"), &y->wv, gt, false, 0)) ||
            (st = put(&c, N("attn_output.weight"), &y->wo, gt, false, 0)) ||
            (st = put(&c, N("attn_q.bias"), &y->bq, gt, true, permute ? I->n_head : 0)) ||
            (st = put(&c, N("attn_k.bias"), &y->bk, gt, true, permute ? I->n_head_kv : 0)) ||
            (st = put(&c, N("attn_v.bias"), &y->bv, gt, true, 0)) ||
            (st = put(&c, N("attn_output.bias"), &y->bo, gt, true, 0)) ||
            (st = put(&c, N("attn_q_norm.weight"), &y->q_norm, gt, true, 0)) ||
            (st = put(&c, N("attn_k_norm.weight"), &y->k_norm, gt, true, 0)) ||
            (st = put(&c, N("ffn_norm.weight"), &y->ffn_norm, gt, true, 0)) ||
            (st = put(&c, N("ffn_gate.weight"), &y->w_gate, gt, false, 0)) ||
            (st = put(&c, N("ffn_up.weight"), &y->w_up, gt, false, 0)) ||
            (st = put(&c, N("ffn_down.weight"), &y->w_down, gt, false, 0)))
            goto done;
#undef N
    }
    if ((st = put(&c, "output_norm.weight", &m->output_norm, gt, true, 0))) goto done;
    if (!m->tied && (st = put(&c, "output.weight", &m->output, gt, false, 0))) goto done;
    st = gguf_writer_write(c.w, out_path, err);
done:
    gguf_writer_free(c.w);
    for (size_t i = 0; i < c.n_bufs; i++) free(c.bufs[i]);
    free(c.bufs);
    kvp_model_free(m);
    return st;
}

kvp_status kvp_convert_vocab_only(const char *in_path, const char *out_path, kvp_error *err) {
    kvp_error_clear(err);
    kvp_tokenizer *tok = NULL;
    kvp_status st = kvp_tokenizer_load(in_path, &tok, err);
    if (st) return st;
    if (!tok) return kvp_fail(err, KVP_ERR_FORMAT, "%s: has no tokenizer", in_path);
    /* The architecture key tells llama.cpp which hparams prefix to read. */
    char arch[32] = "llama";
    struct stat sb;
    if (stat(in_path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        hf_config cfg;
        kvp_error e2;
        if (hf_config_load(in_path, &cfg, &e2) == KVP_OK) snprintf(arch, sizeof arch, "%s", cfg.arch);
    } else {
        gguf_file *g = NULL;
        kvp_error e2;
        if (gguf_open(in_path, true, &g, &e2) == KVP_OK) {
            size_t l;
            const char *a = gguf_get_str(g, "general.architecture", &l);
            if (a && l < sizeof arch) snprintf(arch, sizeof arch, "%.*s", (int)l, a);
            gguf_close(g);
        }
    }
    gguf_writer *w = gguf_writer_new();
    if (!w || gguf_writer_set_str(w, "general.architecture", arch) ||
        gguf_writer_set_u32(w, "general.file_type", 0)) {
        st = kvp_fail(err, KVP_ERR_NOMEM, "out of memory");
    } else if ((st = kvp_tokenizer_to_gguf(tok, w, err))) {
        kvp_fail_prefix(err, st, "%s: writing tokenizer metadata", out_path);
    } else {
        st = gguf_writer_write(w, out_path, err);
    }
    gguf_writer_free(w);
    kvp_tokenizer_free(tok);
    return st;
}
