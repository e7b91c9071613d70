/*
 * kvprune.h - the public API of kv-cache-pruner.
 *
 * Long-context inference for Llama-family models on CPU with a KV cache that
 * scores every cached token inside the attention loop and evicts the least
 * useful ones (H2O, TOVA, SnapKV, StreamingLLM sinks, OBC value/key/joint
 * saliency and their variants).
 *
 * Conventions (the same for every function):
 *  - Opaque handles, created by *_load / *_new and released by *_free.
 *    *_free(NULL) is a no-op.
 *  - Functions that can fail return a kvp_status and, when `err` is not NULL,
 *    fill it with the code and a message naming the file/parameter/value and the
 *    problem. Nothing is printed and the process is never terminated.
 *  - Memory returned through an output pointer (ids, strings, arrays) is
 *    owned by the caller and released with kvp_free().
 *  - Parameter structs come from *_default_params(); set only what you need.
 *  - No global mutable state. A kvp_model is read-only after loading and may
 *    be shared by any number of threads; a kvp_cache or a kvp_detok is used
 *    by one thread at a time.
 */
#ifndef KVPRUNE_H
#define KVPRUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "kvprune_version.h"

/* Marks the functions of the API: the shared library exports these and
 * nothing else. */
#if defined(_WIN32)
#  define KVP_API
#elif defined(__GNUC__) || defined(__clang__)
#  define KVP_API __attribute__((visibility("default")))
#else
#  define KVP_API
#endif

/* The version of the library linked, e.g. "0.2.0" (KVP_VERSION is the
 * version of these headers). */
KVP_API const char *kvp_version(void);

/* ------------------------------------------------------------------------ */
/* Status and errors                                                        */
/* ------------------------------------------------------------------------ */

typedef enum kvp_status {
    KVP_OK = 0,
    KVP_ERR_IO,          /* a file could not be opened, read or written      */
    KVP_ERR_FORMAT,      /* a file is malformed, truncated or inconsistent    */
    KVP_ERR_UNSUPPORTED, /* valid input that this build does not handle       */
    KVP_ERR_INVALID_ARG, /* a bad parameter value or method name              */
    KVP_ERR_NOMEM,       /* an allocation failed                              */
    KVP_ERR_RANGE,       /* e.g. a prompt longer than the model's context     */
    KVP_ERR_INTERNAL     /* a bug: please report it                           */
} kvp_status;

#define KVP_ERROR_MSG_MAX 512

typedef struct kvp_error {
    kvp_status status;
    char message[KVP_ERROR_MSG_MAX];
} kvp_error;

/* A static English name of a status code ("ok", "io error", ...). */
KVP_API const char *kvp_status_str(kvp_status s);

/* Releases memory returned by this library through an output pointer. */
KVP_API void kvp_free(void *p);

/* The instruction set the compute kernels run on. One build runs on any
 * x86-64: the kernels are chosen once, at run time, from what the CPU and
 * the operating system support. The environment variable
 * KVP_CPU=scalar|avx2|avx512|avx512vnni, read at the first call into the
 * kernels, lowers the choice (to compare paths or reproduce results); a
 * level the CPU lacks falls back to the best it has. */
typedef struct kvp_system_info {
    const char *cpu_path;   /* in use: "scalar", "avx2" (AVX2+FMA+F16C),
                               "avx512" (F/BW/VL/DQ) or "avx512vnni"        */
    const char *cpu_best;   /* the best this CPU supports                    */
    bool avx512_bf16;       /* the CPU has AVX512-BF16                       */
} kvp_system_info;

KVP_API void kvp_get_system_info(kvp_system_info *info);

/* ------------------------------------------------------------------------ */
/* Models                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct kvp_model kvp_model;

/* The arithmetic of the weight products of 4 or more tokens (prefill,
 * chunked prefill, decode blocks) in builds with oneDNN. Single-token decode
 * products always run in float32. */
typedef enum kvp_compute {
    KVP_COMPUTE_AUTO = 0, /* bf16 for BF16 (and quantized) weights, else f32 */
    KVP_COMPUTE_F32 = 1,  /* float32 products                                */
    KVP_COMPUTE_BF16 = 2  /* activations and weights rounded to bfloat16,
                             sums in float32 (llama.cpp's class for BF16)    */
} kvp_compute;

typedef struct kvp_model_params {
    int n_threads;      /* 0: all online cores. Results do not depend on it.  */
    bool use_mmap;      /* map GGUF/safetensors data instead of reading it    */
    bool load_tokenizer;/* load tokenizer data when the file/folder has it    */
    kvp_compute compute;/* default AUTO; BF16 needs a build with oneDNN       */
    bool repack;        /* keep a copy of every matrix whose stored type is
                           not its compute type, converted once at load
                           (faster prefill, more memory: repack_bytes)       */
} kvp_model_params;

KVP_API kvp_model_params kvp_model_default_params(void);

/* Loads a GGUF file or a Hugging Face folder (config.json + *.safetensors
 * [+ tokenizer.json]). A model without tokenizer data loads; only text input
 * needs a tokenizer. */
KVP_API kvp_status kvp_model_load(const char *path, const kvp_model_params *params,
                          kvp_model **out, kvp_error *err);
KVP_API void kvp_model_free(kvp_model *model);

/* Strings and the EOS ids point into the model (valid until
 * kvp_model_free). Later versions of the library only append fields. */
typedef struct kvp_model_info {
    const char *arch;       /* "llama", "qwen2", "qwen3"                     */
    const char *name;       /* general.name or the folder name               */
    int n_vocab;
    int n_ctx_train;        /* context length the model was trained for      */
    int n_embd;
    int n_layer;
    int n_head;             /* query heads                                   */
    int n_head_kv;
    int head_dim;
    int n_ff;
    float rope_theta;
    float rms_norm_eps;
    int32_t bos_id;         /* -1 if none                                    */
    const int32_t *eos_ids; /* n_eos ids: generation stops at any of these   */
    int n_eos;
    uint64_t n_params;
    uint64_t weight_bytes;  /* bytes of tensor data as stored                */
    const char *weight_types; /* stored types of the loaded tensors with
                               their counts, e.g. "F32 x49, Q4_K x97, Q6_K x16" */
    uint64_t repack_bytes;  /* bytes of repacked copies (kvp_model_params)   */
    const char *compute;    /* "f32", "bf16" or "auto" (per weight type)     */
    bool onednn;            /* products of many tokens run through oneDNN    */
} kvp_model_info;

/* Fills the first info_size bytes of *info (sizeof(kvp_model_info) of the
 * caller's headers), so that a program built against an older, shorter
 * struct keeps working with a newer library. model NULL: numbers zero,
 * strings "", no EOS ids. Call it through kvp_model_get_info. */
KVP_API void kvp_model_get_info_sized(const kvp_model *model, kvp_model_info *info,
                                      size_t info_size);
static inline void kvp_model_get_info(const kvp_model *model, kvp_model_info *info) {
    kvp_model_get_info_sized(model, info, sizeof *info);
}

typedef enum kvp_ftype {
    KVP_FTYPE_F32 = 0,   /* every matrix in the type (vectors stay F32) */
    KVP_FTYPE_F16 = 1,
    KVP_FTYPE_BF16 = 2,
    /* Quantized, with ggml's reference quantizers (the blocks llama.cpp's
     * llama-quantize writes without an importance matrix): */
    KVP_FTYPE_Q8_0 = 3,   /* llama.cpp's Q8_0 preset                       */
    KVP_FTYPE_Q4_0 = 4,   /* Q4_0 preset: output (and tied embedding) Q6_K */
    KVP_FTYPE_Q4_K = 5,   /* every matrix Q4_K (llama-quantize --pure Q4_K_M) */
    KVP_FTYPE_Q5_K = 6,   /* every matrix Q5_K (llama-quantize --pure Q5_K_M) */
    KVP_FTYPE_Q6_K = 7,   /* Q6_K preset                                   */
    KVP_FTYPE_Q4_K_M = 8, /* Q4_K_M preset: Q4_K, with Q6_K for the output
                             and half of attn_v / ffn_down                  */
    KVP_FTYPE_Q5_K_M = 9  /* Q5_K_M preset: as Q4_K_M with Q5_K            */
} kvp_ftype;

/* Converts a model (GGUF or HF folder) into a GGUF file that llama.cpp can
 * load, with tokenizer metadata when the source has a tokenizer. The output
 * is written to a temporary name and renamed, so a failed conversion never
 * leaves a partial file at out_path. Quantized types pick each tensor's
 * type as llama.cpp's llama_tensor_get_type does for the preset, including
 * its fallbacks for rows that are not a multiple of 256 (Q4_K -> Q5_0,
 * Q5_K -> Q5_1, Q6_K -> Q8_0), and write llama.cpp's general.file_type. */
KVP_API kvp_status kvp_convert_to_gguf(const char *in_path, const char *out_path,
                               kvp_ftype type, kvp_error *err);
/* Writes only the tokenizer of in_path (a GGUF file, a Hugging Face folder
 * or a tokenizer.json) as a GGUF file: general.architecture and the
 * tokenizer.ggml.* metadata, no tensors (llama.cpp's --vocab-only files).
 * Written atomically like kvp_convert_to_gguf. */
KVP_API kvp_status kvp_convert_vocab_only(const char *in_path, const char *out_path,
                                  kvp_error *err);

/* ------------------------------------------------------------------------ */
/* Tokenizers and chat templates                                            */
/* ------------------------------------------------------------------------ */

typedef struct kvp_tokenizer kvp_tokenizer;

/* The model's tokenizer, or NULL when it has none. Owned by the model. */
KVP_API const kvp_tokenizer *kvp_model_tokenizer(const kvp_model *model);

/* Loads a tokenizer alone: a tokenizer.json file, a folder holding one, or a
 * GGUF file's tokenizer metadata. */
KVP_API kvp_status kvp_tokenizer_load(const char *path, kvp_tokenizer **out,
                              kvp_error *err);
KVP_API void kvp_tokenizer_free(kvp_tokenizer *tok);

typedef struct kvp_tokenize_params {
    bool add_special;   /* add BOS/EOS as the tokenizer's own rule says      */
    bool parse_special; /* recognise special-token strings in the text       */
} kvp_tokenize_params;

KVP_API kvp_tokenize_params kvp_tokenize_default_params(void); /* true, true */

KVP_API kvp_status kvp_tokenize(const kvp_tokenizer *tok, const char *text,
                        size_t text_len, const kvp_tokenize_params *params,
                        int32_t **ids, size_t *n_ids, kvp_error *err);

/* Decodes ids to UTF-8 text (NUL-terminated, length in *text_len). */
KVP_API kvp_status kvp_detokenize(const kvp_tokenizer *tok, const int32_t *ids,
                          size_t n_ids, bool skip_special, char **text,
                          size_t *text_len, kvp_error *err);

KVP_API int kvp_tokenizer_n_vocab(const kvp_tokenizer *tok);
KVP_API int32_t kvp_tokenizer_bos(const kvp_tokenizer *tok); /* -1 if none */
KVP_API int32_t kvp_tokenizer_eos(const kvp_tokenizer *tok); /* -1 if none */
/* The stored string of a token (NULL if out of range). */
KVP_API const char *kvp_token_text(const kvp_tokenizer *tok, int32_t id);

/* Streaming decode: feed ids one at a time, get text that never splits a
 * UTF-8 character (bytes of an incomplete character are held back). */
typedef struct kvp_detok kvp_detok;
KVP_API kvp_status kvp_detok_new(const kvp_tokenizer *tok, bool skip_special,
                         kvp_detok **out, kvp_error *err);
/* Sets *piece to the text completed by `id` alone (possibly ""; NUL-
 * terminated, owned by d, replaced by the next call: copy it to keep it). */
KVP_API kvp_status kvp_detok_push(kvp_detok *d, int32_t id, const char **piece,
                          kvp_error *err);
/* Returns what is still held back (invalid bytes become U+FFFD). */
KVP_API const char *kvp_detok_flush(kvp_detok *d);
KVP_API void kvp_detok_free(kvp_detok *d);

/* Chat templates: NULL or "auto" picks the template recognised from the
 * model's own template string; names: "llama2", "llama3", "llama3.1",
 * "chatml", "mistral", "kvp-mini". */
typedef struct kvp_chat_message {
    const char *role;    /* "system", "user", "assistant" */
    const char *content;
} kvp_chat_message;

/* Renders messages to the exact string the model's template renders (with
 * the generation prompt when add_generation_prompt). */
KVP_API kvp_status kvp_chat_apply(const kvp_tokenizer *tok, const char *template_name,
                          const kvp_chat_message *msgs, size_t n_msgs,
                          bool add_generation_prompt, char **out,
                          kvp_error *err);
/* Renders messages with kvp_chat_apply and tokenizes the result the way the
 * model expects: special-token text is parsed, and BOS is added by the
 * tokenizer's rule unless the rendered text already starts with it (llama3,
 * llama3.1 and mistral templates write it themselves). */
KVP_API kvp_status kvp_chat_tokenize(const kvp_tokenizer *tok, const char *template_name,
                             const kvp_chat_message *msgs, size_t n_msgs,
                             bool add_generation_prompt, int32_t **ids,
                             size_t *n_ids, kvp_error *err);
/* A conversation rendered one turn at a time (chat sessions over one
 * cache): the text (tokens) that follows the assistant reply
 * msgs[n_old-1], given that msgs[0..n_old-1) were rendered with the
 * generation prompt and the reply's tokens came after them. That is the
 * template's end of the reply (its end-of-turn marker, which a reply that
 * stopped at EOS already generated) and msgs[n_old..n_msgs) with the
 * generation prompt. The pieces concatenate to kvp_chat_apply of the whole
 * conversation (whitespace the template puts before a reply's content, which
 * the model generates itself, aside). n_old 0: kvp_chat_apply /
 * kvp_chat_tokenize. Tokens are parsed with special tokens and no BOS but
 * the template's own. KVP_ERR_UNSUPPORTED when a later message changes how
 * earlier ones render (e.g. Qwen3 dropping past reasoning). */
KVP_API kvp_status kvp_chat_apply_next(const kvp_tokenizer *tok, const char *template_name,
                               const kvp_chat_message *msgs, size_t n_old, size_t n_msgs,
                               bool add_generation_prompt, char **out, kvp_error *err);
KVP_API kvp_status kvp_chat_tokenize_next(const kvp_tokenizer *tok, const char *template_name,
                                  const kvp_chat_message *msgs, size_t n_old, size_t n_msgs,
                                  bool add_generation_prompt, int32_t **ids, size_t *n_ids,
                                  kvp_error *err);
/* The name of the template recognised for this tokenizer, or NULL. */
KVP_API const char *kvp_chat_template_name(const kvp_tokenizer *tok);

/* ------------------------------------------------------------------------ */
/* The pruning KV cache                                                     */
/* ------------------------------------------------------------------------ */

/* One cache stream per (layer, query head) or (layer, KV head): keys after
 * RoPE, values, absolute positions and the method's per-token scores,
 * compacted together when tokens are evicted (memory is given back). The
 * attention of each layer runs inside the cache, so scores come from the
 * exact softmax weights of the forward pass (no second pass, no n x n
 * buffer). The semantics (docs/cache.md) in short:
 *
 *  - Methods: full, sink, h2o, h2o_fullhist, tova, snapkv, snapkv_avgpool,
 *    kvcV, kvcV_p1, kvcK, kvcVK, kvcVK_no_cross; each kvc* name also with
 *    +tova, +maxpool, +avgpool or _fullhist. obc* names are aliases of kvc*.
 *  - Eviction keeps the last num_recent tokens and the num_heavy best
 *    scored older ones. Ties: higher (pooled) score first, then the lower
 *    cache index (the older token), so selections are deterministic.
 *  - Budgets: absolute (num_recent + num_heavy), ratios of the prompt length
 *    (int(n * ratio) each), or num_recent + cache_ratio (heavy =
 *    int(n * cache_ratio) - num_recent). Missing, mixed, negative (other
 *    than -1, unset) or all-zero budgets fail in kvp_cache_new. One rule
 *    for short prompts, whatever the kind: nothing is evicted while the
 *    cache fits the budget (a prompt within budget is kept whole); a budget
 *    never resolves below its recent part (cache_ratio: int(n*cache_ratio)
 *    < num_recent keeps num_recent tokens, heavy 0) nor to 0 tokens (ratios
 *    of a tiny prompt: 1 token is kept), each with a warning
 *    (kvp_cache_warning). TOVA-style methods (tova, *+tova) keep no recent window:
 *    num_recent (recent_ratio) is moved into num_heavy (heavy_ratio) with a
 *    warning.
 *  - Prefill scoring window: the last num_recent prompt queries (all when
 *    num_recent is 0), all queries for *_fullhist, the last one for TOVA.
 *    With ratio budgets too, the _fullhist variants score with every
 *    query.
 *  - Chunked prefill (kvp_gen_params.prefill_chunk): budgets come from the
 *    whole prompt; before each chunk after the first the cache is evicted
 *    so that it plus the chunk fits the budget,
 *    each chunk is scored like a prefill of its own (its last `window`
 *    queries), and after the last chunk the cache is evicted to budget.
 *    Peak KV memory is budget + chunk; a chunk >= the prompt is exactly the
 *    unchunked prefill.
 *  - Conversations (kvp_gen_params.keep_cache): each new prompt is read
 *    like the chunks after the first of a chunked prefill, with the budgets
 *    the first prompt after the last reset fixed (a ratio budget is a
 *    fraction of that first prompt, not of the conversation).
 *  - Budget allocation (budget_alloc, layer_alloc; docs/cache.md): with
 *    pyramid layers the heavy budget of layer l is PyramidKV's share of
 *    n_layer x num_heavy (more at the bottom); with adaptive heads a
 *    layer's streams share streams x heavy tokens by score (each keeping
 *    at least floor(safeguard x heavy)) and evict together. Streams hold
 *    their own lengths (kvp_cache_get_layer_stats).
 *  - Decode: each step scores with its one query and, when decode_evict,
 *    evicts one token; otherwise the cache grows by one token per step.
 *  - Results do not depend on the number of threads.
 *  - A kvp_eval that fails leaves the cache refusing further use (an
 *    error naming kvp_cache_reset) until kvp_cache_reset.
 */
typedef struct kvp_cache kvp_cache;

typedef enum kvp_gqa_mode {
    KVP_GQA_PER_QUERY_HEAD = 0, /* one stream per query head                */
    KVP_GQA_PER_KV_HEAD = 1     /* one stream per KV head, group scores summed */
} kvp_gqa_mode;

/* How the cache stores K and V rows. Attention reads them in this type and
 * computes in float32; scores stay float64 and see the rounded K/V. */
typedef enum kvp_kv_type {
    KVP_KV_F32 = 0,  /* exact float32 rows                                 */
    KVP_KV_F16 = 1,  /* IEEE half (the default, as llama.cpp): half the
                        memory and bytes read per decode step; 11-bit
                        significand, |x| up to 65504                       */
    KVP_KV_BF16 = 2  /* bfloat16: float32's range, 8-bit significand       */
} kvp_kv_type;

/* How a layer's heavy budget is shared by its streams (docs/cache.md,
 * "Budget allocation"). */
typedef enum kvp_budget_alloc {
    KVP_BUDGET_UNIFORM = 0,  /* every stream keeps the same heavy budget     */
    KVP_BUDGET_ADAPTIVE = 1  /* Ada-KV: streams x heavy budget shared by
                                score, each stream keeping at least
                                floor(safeguard x heavy)                    */
} kvp_budget_alloc;

/* How the model's heavy budget is split over layers. */
typedef enum kvp_layer_alloc {
    KVP_LAYER_UNIFORM = 0,  /* every layer the same heavy budget            */
    KVP_LAYER_PYRAMID = 1   /* PyramidKV: an arithmetic sequence, more at
                               the bottom, same total (pyramid_beta)        */
} kvp_layer_alloc;

/* "uniform" / "adaptive" and "uniform" / "pyramid" (NULL for an unknown
 * value), and their parsers (false for an unknown name). */
KVP_API const char *kvp_budget_alloc_name(kvp_budget_alloc a);
KVP_API bool kvp_budget_alloc_parse(const char *name, kvp_budget_alloc *out);
KVP_API const char *kvp_layer_alloc_name(kvp_layer_alloc a);
KVP_API bool kvp_layer_alloc_parse(const char *name, kvp_layer_alloc *out);

/* "f32", "f16", "bf16" (NULL for an unknown value). */
KVP_API const char *kvp_kv_type_name(kvp_kv_type t);
/* Parses "f32", "f16" or "bf16"; false otherwise. */
KVP_API bool kvp_kv_type_parse(const char *name, kvp_kv_type *out);

typedef struct kvp_cache_params {
    const char *method;   /* "full", "h2o", "snapkv", "kvcVK+maxpool", ...   */
    /* Budgets: absolute (num_recent + num_heavy), ratios of the prompt
     * length (recent_ratio + heavy_ratio), or fixed recent + cache_ratio
     * (num_recent and cache_ratio). Unset: -1. */
    int num_recent;
    int num_heavy;
    double recent_ratio;
    double heavy_ratio;
    double cache_ratio;
    bool decode_evict;    /* evict one token per decode step (default true)  */
    bool streaming;       /* always keep the first num_sink tokens (attention
                             sinks; they count in the heavy budget)          */
    /* Default per-kv-head: group-size times less KV memory for the same
     * budget, and better agreement with the full cache at equal memory
     * (BENCHMARKS.md); per-query-head keeps one stream per query head. */
    kvp_gqa_mode gqa_mode;
    /* Tokens one stream may hold. 0 (default): unlimited, so a full cache
     * holds prompt + new tokens (kvp_generate refuses at once, with the
     * figures, when that would not fit in the machine's memory); positions
     * past the model's trained context give one warning. When set, a
     * pruned cache must fit budget + block in it (chunked prefill streams
     * longer prompts). */
    int max_tokens;
    /* Storage type of K and V (default KVP_KV_F16). */
    kvp_kv_type kv_type;
    /* Sink tokens of streaming (default 4, >= 0). */
    int num_sink;
    /* Budget allocation (docs/cache.md, "Budget allocation"); the defaults
     * (uniform, uniform) give every stream of every layer the same budget.
     * safeguard: adaptive's per-stream floor as a fraction of the heavy
     * budget, in [0, 1] (default 0.2). pyramid_beta: >= 1, the bottom
     * layer's heavy budget is about 2 - 1/beta times the mean, the top
     * layer's 1/beta of it (default 20, as PyramidKV). */
    kvp_budget_alloc budget_alloc;
    double safeguard;
    kvp_layer_alloc layer_alloc;
    double pyramid_beta;
} kvp_cache_params;

KVP_API kvp_cache_params kvp_cache_default_params(void);

/* The valid method names, NULL-terminated (static storage). */
KVP_API const char *const *kvp_cache_method_names(void);

/* Creates an empty cache shaped for the model (layers, heads, head size).
 * Fails on an unknown method (the message lists the valid names) or on
 * missing/invalid budgets. The params' strings are copied. A cache serves
 * one sequence at a time and one thread at a time (it parallelises its own
 * attention with the thread count the generation passes). */
KVP_API kvp_status kvp_cache_new(const kvp_model *model, const kvp_cache_params *params,
                         kvp_cache **out, kvp_error *err);
/* Clears cached tokens, scores and ratio-derived budgets (between samples). */
KVP_API void kvp_cache_reset(kvp_cache *cache);
KVP_API void kvp_cache_free(kvp_cache *cache);

/* Warnings raised since the last reset (TOVA moving recent into heavy, a
 * budget raised on a short prompt, positions past the trained context);
 * NULL if none. Owned by the cache. */
KVP_API const char *kvp_cache_warning(const kvp_cache *cache);

typedef struct kvp_cache_stats {
    int n_layer;
    int n_streams;          /* per layer: query heads or KV heads            */
    int64_t n_seen;         /* tokens that went through the cache            */
    int64_t n_kept_total;   /* kept tokens summed over layers and streams    */
    int num_recent;         /* effective budget (after ratios), -1 for full  */
    int num_heavy;
    size_t kv_bytes;        /* bytes of K/V held now (K and V rows in the
                               cache's kv_type: 2 or 4 bytes an element)     */
    size_t kv_bytes_peak;   /* high-water mark since the last reset          */
    size_t kv_bytes_full;   /* bytes a full cache in the same head mode would
                               hold for n_seen tokens (per-query-head mode
                               stores group-size copies of each KV head)     */
    double attn_ms;         /* milliseconds spent in the cache's attention
                               (scoring and eviction included) since the
                               last reset: taken before and after a decode,
                               the difference is the decode's share          */
} kvp_cache_stats;

KVP_API void kvp_cache_get_stats(const kvp_cache *cache, kvp_cache_stats *stats);

/* One layer's streams: how many tokens each keeps (with adaptive budgets
 * they differ) and the layer's heavy budget per stream (with pyramid
 * budgets it differs between layers; -1 for the full cache, 0 before the
 * first block resolves the budgets). */
typedef struct kvp_cache_layer_stats {
    int min_kept;
    int max_kept;
    double mean_kept;
    int64_t total_kept;
    int num_heavy;
} kvp_cache_layer_stats;

KVP_API kvp_status kvp_cache_get_layer_stats(const kvp_cache *cache, int layer,
                                             kvp_cache_layer_stats *stats, kvp_error *err);

/* Cache files: "read a long document once, ask many questions". Saves
 * everything the cache needs to continue exactly where it was (method and
 * budgets, K/V element type, positions, K/V rows, scores, counters) with
 * a header (magic, format version, the model's identity checksum) and a
 * checksum of the whole, written to a temporary name and renamed. The
 * caller may add a token history (e.g. a reply's last token, not yet fed)
 * and application data (a string). Loading builds a new cache; a file of
 * another model (KVP_ERR_INVALID_ARG), a corrupt, truncated or foreign
 * file (KVP_ERR_FORMAT) or a newer format (KVP_ERR_UNSUPPORTED) is an
 * error naming the file. history/app_data may be NULL (not wanted);
 * returned ones are freed with kvp_free. */
KVP_API kvp_status kvp_cache_save(const kvp_model *model, const kvp_cache *cache, const char *path,
                          const int32_t *history, size_t n_history, const char *app_data,
                          kvp_error *err);
KVP_API kvp_status kvp_cache_load(const kvp_model *model, const char *path, kvp_cache **out,
                          int32_t **history, size_t *n_history, char **app_data, kvp_error *err);

/* Bytes of K/V one token takes in every stream of every layer: a budget of
 * B tokens holds B times this (a memory cap divided by it is a budget). */
KVP_API size_t kvp_cache_token_bytes(const kvp_cache *cache);

/* Absolute positions of the tokens kept by (layer, stream), oldest first.
 * *pos points into the cache and is valid until the cache changes. */
KVP_API kvp_status kvp_cache_kept_positions(const kvp_cache *cache, int layer,
                                    int stream, const int32_t **pos,
                                    size_t *n, kvp_error *err);

/* The cache under an engine of the caller's own (its own weights,
 * projections and RoPE): a cache shaped by dimensions instead of a model,
 * driven one forward block of n_new tokens at a time:
 *
 *   kvp_cache_begin(cache, n_new, n_prompt_total)
 *   for layer = 0 .. n_layer-1, in order:
 *       kvp_cache_attend(cache, layer, q, k, v, out)
 *   kvp_cache_end(cache)
 *
 * The cache appends the block's keys and values, computes the block's
 * attention over the cached tokens and itself (causal), scores and evicts
 * exactly as under kvp_eval (all the semantics above). n_ctx: the context
 * past which positions raise a warning (0: none). A failed call leaves the
 * block unfinished: the cache refuses further blocks until kvp_cache_reset. */
KVP_API kvp_status kvp_cache_new_dims(int n_layer, int n_head, int n_head_kv, int head_dim,
                                      int n_ctx, const kvp_cache_params *params,
                                      kvp_cache **out, kvp_error *err);
/* n_prompt_total: the whole prompt's length when the block is a prompt or
 * a chunk of one (the first block after a reset sets ratio budgets from
 * it), 0 for decode blocks. */
KVP_API kvp_status kvp_cache_begin(kvp_cache *cache, int n_new, int n_prompt_total,
                                   kvp_error *err);
/* Row-major float32, positions in block order:
 *   q   [n_new][n_head][head_dim]     queries after RoPE
 *   k   [n_new][n_head_kv][head_dim]  keys after RoPE
 *   v   [n_new][n_head_kv][head_dim]
 *   out [n_new][n_head][head_dim]     softmax(q.k / sqrt(head_dim) + causal
 *                                     mask) v
 * n_threads 0: OpenMP's default. Results do not depend on it. */
KVP_API kvp_status kvp_cache_attend(kvp_cache *cache, int layer, const float *q, const float *k,
                                    const float *v, float *out, int n_threads, kvp_error *err);
/* Fails when a layer has not attended (the block stays unfinished). */
KVP_API kvp_status kvp_cache_end(kvp_cache *cache, kvp_error *err);

/* ------------------------------------------------------------------------ */
/* Standalone scorer (the method math over plain arrays, for tests and for  */
/* other engines).                                                          */
/* ------------------------------------------------------------------------ */

/* One head, one update. Arrays are row-major float32:
 *   attn   [n_q][n_kv]  softmax weights a_ij (causal zeros included)
 *   logits [n_q][n_kv]  z_ij = q_i.k_j / sqrt(d) (before the mask)
 *   values [n_kv][d]
 *   outputs[n_q][d]     o_i = sum_j a_ij v_j
 * The window is the last `window` query rows (<= 0 or > n_q: all rows).
 * scores[n_kv] receives the method's selection score (before pooling);
 * kept[] (room for n_kv) receives the indices kept for budget (n_recent,
 * n_heavy), in cache order, *n_kept their count; the method's pooling
 * applies to the choice only; the first num_sink candidates always win
 * (the "sink" method: num_sink = n_heavy). Ties: higher score first, then
 * lower index. scores and kept may be NULL. Only the method's scoring rule
 * is taken from its name: the window is the caller's. */
typedef struct kvp_score_input {
    const float *attn;
    const float *logits;
    const float *values;
    const float *outputs;
    int n_q, n_kv, head_dim;
    int window;
} kvp_score_input;

KVP_API kvp_status kvp_score_tokens(const char *method, const kvp_score_input *in,
                            int n_recent, int n_heavy, int num_sink,
                            float *scores, int32_t *kept, int *n_kept,
                            kvp_error *err);

/* ------------------------------------------------------------------------ */
/* Evaluation and generation                                                */
/* ------------------------------------------------------------------------ */

/* Runs the model over `n` tokens appended to what the cache holds (the first
 * call after a reset is the prefill and sets ratio budgets from n). When
 * logits is not NULL it receives n_vocab floats: the logits after the last
 * token. */
KVP_API kvp_status kvp_eval(const kvp_model *model, kvp_cache *cache, const int32_t *ids,
                    size_t n, float *logits, kvp_error *err);

/* Called once per generated token with the logits it was chosen from;
 * return false to stop. */
typedef bool (*kvp_token_cb)(void *user, int32_t id, const float *logits,
                             int n_vocab);

typedef struct kvp_gen_params {
    int max_new_tokens;   /* default 64                                      */
    float temperature;    /* 0: greedy (default)                             */
    int top_k;            /* 0: off                                          */
    float top_p;          /* 1: off                                          */
    uint64_t seed;
    bool ignore_eos;      /* keep generating past EOS                        */
    int prefill_chunk;    /* 0: whole prompt in one pass                     */
    int n_threads;        /* 0: the model's setting                          */
    /* Append the prompt to what the cache holds (a conversation's next
     * turn) instead of starting afresh. The prompt is read like the chunks
     * of a first prompt (evicted before each chunk arrives, scored over its
     * last `window` queries, evicted to budget after it) with the budgets
     * the first prompt after the last reset fixed; positions continue. An
     * empty cache makes it an ordinary first prompt. */
    bool keep_cache;
    kvp_token_cb on_token;
    void *user;
} kvp_gen_params;

KVP_API kvp_gen_params kvp_gen_default_params(void);

typedef struct kvp_gen_result {
    int32_t *ids;          /* generated ids (EOS included when it stopped)   */
    size_t n_ids;
    size_t n_prompt;
    double prefill_ms;
    double decode_ms;
    double attn_ms;        /* time inside attention + cache, all steps       */
    bool stopped_at_eos;
    kvp_cache_stats cache; /* after the last forward pass                    */
} kvp_gen_result;

/* Resets the cache (unless params->keep_cache), runs the prompt, then
 * generates. The last generated id has not gone through the cache: a
 * conversation feeds it at the start of its next turn. */
KVP_API kvp_status kvp_generate(const kvp_model *model, kvp_cache *cache,
                        const int32_t *prompt, size_t n_prompt,
                        const kvp_gen_params *params, kvp_gen_result *out,
                        kvp_error *err);
KVP_API void kvp_gen_result_free(kvp_gen_result *res);

#ifdef __cplusplus
}
#endif

#endif /* KVPRUNE_H */
