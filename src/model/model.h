/*
 * The loaded model (internal). Weights are kept in the Hugging Face layout
 * whatever the source: [out][in] rows, Q/K rows in rotate_half order (GGUF
 * llama files are un-permuted on load, whole rows at a time, so quantized
 * rows move intact). Large matrices, quantized or not, point into the
 * mapped file when their layout allows; small vectors (norms, biases) are
 * float32 copies.
 */
#ifndef KVP_MODEL_MODEL_H
#define KVP_MODEL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "format/gguf.h"
#include "format/hfconfig.h"
#include "format/safetensors.h"
#include "kernels/matmul_dnnl.h"
#include "kvprune.h"

typedef enum kvm_arch { KVP_ARCH_LLAMA, KVP_ARCH_QWEN2, KVP_ARCH_QWEN3 } kvm_arch;

/* A 2-D (rows x cols) or 1-D (rows = 1) weight. */
typedef struct kvm_weight {
    uint32_t type;     /* GGML_TYPE_*: F32/F16/BF16 or a quantized type
                          (kvq_type_supported), rows of kvq_row_bytes */
    int64_t rows, cols;
    const void *data;  /* NULL: absent (optional weights) */
    void *owned;       /* non-NULL when data is our own copy */
    void *packed;      /* repack: a copy in the compute type of products of
                          many tokens (packed_type), or NULL               */
    uint32_t packed_type;
} kvm_weight;

typedef struct kvm_layer {
    kvm_weight attn_norm, ffn_norm;     /* F32 [n_embd]           */
    kvm_weight wq, wk, wv, wo;          /* [out][in]              */
    kvm_weight bq, bk, bv, bo;          /* F32, optional          */
    kvm_weight q_norm, k_norm;          /* F32 [head_dim], qwen3  */
    kvm_weight w_gate, w_up, w_down;
} kvm_layer;

struct kvp_model {
    char *path;
    kvm_arch arch;
    kvp_model_info info;   /* its strings and eos ids point into text   */
    struct {
        char arch[32], name[256], weight_types[512], compute[16];
        int32_t eos_ids[8];
    } text;
    double *inv_freq;      /* [head_dim/2], scaling applied             */
    float *rope_factors;   /* llama.cpp rope_freqs (llama3), or NULL    */
    double hf_rope_theta, hf_eps; /* the config's values in double (HF)  */
    kvk_rope_kind rope_kind;
    double rope_factor, rope_low, rope_high;
    int rope_orig_ctx;
    kvm_weight tok_embd;   /* [n_vocab][n_embd]                          */
    kvm_weight output_norm;
    kvm_weight output;     /* [n_vocab][n_embd]; data == tok_embd's when tied */
    bool tied;
    kvm_layer *layers;
    gguf_file *gguf;
    kvst_model *st;
    kvp_tokenizer *tok;
    int n_threads;
    int type_counts[GGML_TYPE_COUNT]; /* loaded tensors per stored type */
    kvdn_ctx *dnnl;        /* oneDNN products, or NULL (own kernels)     */
};

const char *kvm_arch_name(kvm_arch a);

/* A 64-bit identity of the model for cache files: its shape, RoPE and the
 * values of every normalisation weight (float32 copies, a few KB, distinct
 * for any two trained models), so a cache is never loaded into a model
 * whose keys and values would differ. */
uint64_t kvm_model_identity(const kvp_model *m);

/* Runs n tokens through the model appended to the cache (kvc_begin ..
 * kvc_end). n_prompt_total: see kvc_begin. logits (may be NULL): the last
 * token's n_vocab logits. */
kvp_status kvm_forward(const kvp_model *m, kvp_cache *c, const int32_t *ids, int n,
                       int n_prompt_total, float *logits, int n_threads, kvp_error *err);

#endif
