#include "format/hfconfig.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/error.h"
#include "util/json.h"

static kvp_status get_int(json_t *root, const char *path, const char *key, bool required, int def,
                          int min, int *out, kvp_error *err) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required)
            return kvu_fail(err, KVP_ERR_FORMAT, "%s: missing required key \"%s\"", path, key);
        *out = def;
        return KVP_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > (1 << 30))
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: \"%s\" must be an integer >= %d", path, key, min);
    *out = (int)json_integer_value(v);
    return KVP_OK;
}

static kvp_status get_num(json_t *obj, const char *path, const char *key, bool required, double def,
                          double *out, kvp_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            return kvu_fail(err, KVP_ERR_FORMAT, "%s: missing required key \"%s\"", path, key);
        *out = def;
        return KVP_OK;
    }
    if (!json_is_number(v) || !(json_number_value(v) > 0))
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: \"%s\" must be a positive number", path, key);
    *out = json_number_value(v);
    return KVP_OK;
}

static void add_eos(kvhf_config *c, json_int_t id) {
    if (id < 0 || id > INT32_MAX) return;
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == id) return;
    if (c->n_eos < 8) c->eos_ids[c->n_eos++] = (int32_t)id;
}

static void read_eos(kvhf_config *c, json_t *v) {
    if (json_is_integer(v)) add_eos(c, json_integer_value(v));
    if (json_is_array(v))
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *e = json_array_get(v, i);
            if (json_is_integer(e)) add_eos(c, json_integer_value(e));
        }
}

kvp_status kvhf_config_load(const char *dir, kvhf_config *c, kvp_error *err) {
    memset(c, 0, sizeof *c);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t je;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return kvu_fail(err, KVP_ERR_IO, "%s: missing (a model folder needs config.json)", path);
    json_t *root = kvu_json_load_file(path, 0, &je);
    if (!root && kvu_json_oom(&je))
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory while reading it", path);
    if (!root)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: invalid JSON: %s (line %d)", path, je.text, je.line);
    kvp_status s = KVP_OK;
    if (!json_is_object(root)) {
        s = kvu_fail(err, KVP_ERR_FORMAT, "%s: not a JSON object", path);
        goto done;
    }
    json_t *archs = json_object_get(root, "architectures");
    const char *a = json_is_array(archs) ? json_string_value(json_array_get(archs, 0)) : NULL;
    json_t *mt = json_object_get(root, "model_type");
    const char *model_type = json_string_value(mt);
    if (!a && !model_type) {
        s = kvu_fail(err, KVP_ERR_FORMAT, "%s: missing required key \"architectures\"", path);
        goto done;
    }
    snprintf(c->architecture, sizeof c->architecture, "%s", a ? a : model_type);
    if ((a && (!strcmp(a, "LlamaForCausalLM") || !strcmp(a, "MistralForCausalLM"))) ||
        (!a && (!strcmp(model_type, "llama") || !strcmp(model_type, "mistral"))))
        strcpy(c->arch, "llama");
    else if ((a && !strcmp(a, "Qwen2ForCausalLM")) || (!a && !strcmp(model_type, "qwen2")))
        strcpy(c->arch, "qwen2");
    else if ((a && !strcmp(a, "Qwen3ForCausalLM")) || (!a && !strcmp(model_type, "qwen3")))
        strcpy(c->arch, "qwen3");
    else {
        s = kvu_fail(err, KVP_ERR_UNSUPPORTED,
                     "%s: unknown architecture '%s' (supported: LlamaForCausalLM, "
                     "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)",
                     path, c->architecture);
        goto done;
    }
    if ((s = get_int(root, path, "vocab_size", true, 0, 1, &c->vocab_size, err)) ||
        (s = get_int(root, path, "hidden_size", true, 0, 1, &c->hidden_size, err)) ||
        (s = get_int(root, path, "intermediate_size", true, 0, 1, &c->intermediate_size, err)) ||
        (s = get_int(root, path, "num_hidden_layers", true, 0, 1, &c->num_layers, err)) ||
        (s = get_int(root, path, "num_attention_heads", true, 0, 1, &c->num_heads, err)) ||
        (s = get_int(root, path, "num_key_value_heads", false, c->num_heads, 1, &c->num_kv_heads,
                     err)) ||
        (s = get_int(root, path, "head_dim", false, c->hidden_size / c->num_heads, 2, &c->head_dim,
                     err)) ||
        (s = get_int(root, path, "max_position_embeddings", false, 2048, 1, &c->max_position, err)) ||
        (s = get_num(root, path, "rms_norm_eps", true, 0, &c->rms_norm_eps, err)) ||
        (s = get_num(root, path, "rope_theta", false, 10000.0, &c->rope_theta, err)))
        goto done;
    if (c->num_heads % c->num_kv_heads) {
        s = kvu_fail(err, KVP_ERR_FORMAT, "%s: num_attention_heads %d is not a multiple of "
                     "num_key_value_heads %d", path, c->num_heads, c->num_kv_heads);
        goto done;
    }
    if (c->head_dim % 2) {
        s = kvu_fail(err, KVP_ERR_FORMAT, "%s: head_dim %d must be even for rotary embeddings", path,
                     c->head_dim);
        goto done;
    }
    /* Features that would change the math: refuse rather than ignore. */
    if (json_is_true(json_object_get(root, "mlp_bias"))) {
        s = kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: \"mlp_bias\": true is not supported", path);
        goto done;
    }
    if (json_is_true(json_object_get(root, "use_sliding_window"))) {
        s = kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: \"use_sliding_window\": true is not supported",
                     path);
        goto done;
    }
    json_t *tie = json_object_get(root, "tie_word_embeddings");
    c->tie_word_embeddings = json_is_true(tie);
    json_t *bos = json_object_get(root, "bos_token_id");
    c->bos_id = json_is_integer(bos) ? (int32_t)json_integer_value(bos) : -1;
    read_eos(c, json_object_get(root, "eos_token_id"));
    json_t *rs = json_object_get(root, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        const char *type = json_string_value(json_object_get(rs, "rope_type"));
        if (!type) type = json_string_value(json_object_get(rs, "type"));
        if (!json_is_object(rs) || !type) {
            s = kvu_fail(err, KVP_ERR_FORMAT, "%s: \"rope_scaling\" needs a \"rope_type\"", path);
            goto done;
        }
        if (!strcmp(type, "default")) {
            c->rope_kind = KVP_ROPE_DEFAULT;
        } else if (!strcmp(type, "linear")) {
            c->rope_kind = KVP_ROPE_LINEAR;
            if ((s = get_num(rs, path, "factor", true, 0, &c->rope_factor, err))) goto done;
        } else if (!strcmp(type, "llama3")) {
            c->rope_kind = KVP_ROPE_LLAMA3;
            double omp = 0;
            if ((s = get_num(rs, path, "factor", true, 0, &c->rope_factor, err)) ||
                (s = get_num(rs, path, "low_freq_factor", true, 0, &c->rope_low_freq_factor, err)) ||
                (s = get_num(rs, path, "high_freq_factor", true, 0, &c->rope_high_freq_factor, err)) ||
                (s = get_num(rs, path, "original_max_position_embeddings", true, 0, &omp, err)))
                goto done;
            if (omp > (1 << 30) || omp != floor(omp)) {
                s = kvu_fail(err, KVP_ERR_FORMAT,
                             "%s: rope_scaling \"original_max_position_embeddings\" must be an "
                             "integer in 1..%d", path, 1 << 30);
                goto done;
            }
            c->rope_original_max_position = (int)omp;
            if (c->rope_high_freq_factor == c->rope_low_freq_factor) {
                s = kvu_fail(err, KVP_ERR_FORMAT,
                             "%s: rope_scaling high_freq_factor equals low_freq_factor", path);
                goto done;
            }
        } else {
            s = kvu_fail(err, KVP_ERR_UNSUPPORTED,
                         "%s: rope_scaling type '%s' is not supported (default, linear, llama3)",
                         path, type);
            goto done;
        }
    }
    /* generation_config.json may list more stop ids (e.g. Llama-3 chat). */
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    if (stat(path, &sb) == 0) {
        json_t *gc = kvu_json_load_file(path, 0, &je);
        if (!gc && kvu_json_oom(&je)) { /* else: not JSON, ignored as before */
            s = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory while reading it", path);
            goto done;
        }
        if (gc) {
            read_eos(c, json_object_get(gc, "eos_token_id"));
            if (c->bos_id < 0 && json_is_integer(json_object_get(gc, "bos_token_id")))
                c->bos_id = (int32_t)json_integer_value(json_object_get(gc, "bos_token_id"));
            json_decref(gc);
        }
    }
done:
    json_decref(root);
    return s;
}
