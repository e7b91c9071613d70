/* Hugging Face config.json (+ generation_config.json) for the causal LM
 * architectures this project runs (internal). */
#ifndef KVP_FORMAT_HFCONFIG_H
#define KVP_FORMAT_HFCONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "kvprune.h"

typedef enum kvk_rope_kind {
    KVP_ROPE_DEFAULT = 0,
    KVP_ROPE_LINEAR,
    KVP_ROPE_LLAMA3
} kvk_rope_kind;

typedef struct kvhf_config {
    char architecture[64];  /* architectures[0]                 */
    char arch[16];          /* "llama", "qwen2", "qwen3"        */
    int vocab_size;
    int hidden_size;
    int intermediate_size;
    int num_layers;
    int num_heads;
    int num_kv_heads;
    int head_dim;
    int max_position;
    double rms_norm_eps;
    double rope_theta;
    bool tie_word_embeddings;
    int32_t bos_id;
    int32_t eos_ids[8];
    int n_eos;
    kvk_rope_kind rope_kind;
    double rope_factor;
    double rope_low_freq_factor;
    double rope_high_freq_factor;
    int rope_original_max_position;
} kvhf_config;

/* Reads dir/config.json (and dir/generation_config.json for extra EOS ids
 * when present). */
kvp_status kvhf_config_load(const char *dir, kvhf_config *cfg, kvp_error *err);

#endif
