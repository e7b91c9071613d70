/* Broken model files and folders: each load fails with a message naming the
 * file and the problem (and, under ASan, without leaks). The broken copies
 * are made from the llama-mha fixture in a temporary folder. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/gguf.h"
#include "kvprune.h"
#include "test_util.h"

#define SRC "tests/data/model/llama-mha"

static char tmp[256];

static void spit(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(d, 1, n, f);
    fclose(f);
}

static void expect_load_fail(const char *label, const char *path, const char *needle1,
                             const char *needle2) {
    kvp_model *m = NULL;
    kvp_error err = {0};
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = 1;
    kvp_status s = kvp_model_load(path, &mp, &m, &err);
    CHECK_MSG(s != KVP_OK && m == NULL, "%s: loaded", label);
    CHECK_MSG(strstr(err.message, needle1) != NULL, "%s: '%s' lacks '%s'", label, err.message, needle1);
    if (needle2)
        CHECK_MSG(strstr(err.message, needle2) != NULL, "%s: '%s' lacks '%s'", label, err.message,
                  needle2);
    kvp_model_free(m);
}

/* A fresh folder dir/name with SRC's config.json, and a safetensors file
 * made from SRC's with the header edited by `edit` (may be NULL) and the data
 * cut to `cut` bytes (0: whole). */
typedef void (*header_edit)(json_t *h);

static void make_folder(const char *name, const char *config_text, header_edit edit, size_t cut,
                        char *out, size_t outn) {
    snprintf(out, outn, "%s/%s", tmp, name);
    mkdir(out, 0755);
    char p[600];
    size_t n = 0;
    uint8_t *cfg = kvp_test_read_file(SRC "/config.json", &n);
    if (!cfg) return;
    snprintf(p, sizeof p, "%s/config.json", out);
    if (config_text)
        spit(p, config_text, strlen(config_text));
    else
        spit(p, cfg, n);
    free(cfg);
    uint8_t *st = kvp_test_read_file(SRC "/model.safetensors", &n);
    if (!st || n < 8) {
        free(st);
        return;
    }
    uint64_t hl;
    memcpy(&hl, st, 8);
    json_t *h = json_loadb((const char *)st + 8, hl, 0, NULL);
    if (edit) edit(h);
    char *hs = json_dumps(h, JSON_COMPACT);
    size_t hn = strlen(hs);
    uint64_t nhl = hn;
    size_t data_n = n - 8 - hl;
    if (cut && cut < data_n) data_n = cut;
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    FILE *f = fopen(p, "wb");
    fwrite(&nhl, 8, 1, f);
    fwrite(hs, 1, hn, f);
    fwrite(st + 8 + hl, 1, data_n, f);
    fclose(f);
    free(hs);
    json_decref(h);
    free(st);
}

static void drop_up(json_t *h) { json_object_del(h, "model.layers.1.mlp.up_proj.weight"); }
static void bad_dtype(json_t *h) {
    json_object_set_new(json_object_get(h, "model.norm.weight"), "dtype", json_string("F99"));
}
static void int_dtype(json_t *h) {
    /* Same byte count, an integer type: valid file, unusable weight. */
    json_object_set_new(json_object_get(h, "model.layers.0.mlp.down_proj.weight"), "dtype",
                        json_string("I32"));
}
static void bad_shape(json_t *h) {
    json_t *t = json_object_get(h, "model.layers.0.self_attn.k_proj.weight");
    json_t *sh = json_object_get(t, "shape");
    /* Same element count, wrong shape. */
    json_int_t a = json_integer_value(json_array_get(sh, 0)), b = json_integer_value(json_array_get(sh, 1));
    json_array_set_new(sh, 0, json_integer(a * 2));
    json_array_set_new(sh, 1, json_integer(b / 2));
}
static void bad_count(json_t *h) {
    json_t *t = json_object_get(h, "model.norm.weight");
    json_array_set_new(json_object_get(t, "shape"), 0, json_integer(65));
}
static void past_eof(json_t *h) {
    json_t *t = json_object_get(h, "model.norm.weight");
    json_t *off = json_object_get(t, "data_offsets");
    json_array_set_new(off, 0, json_integer(1 << 30));
    json_array_set_new(off, 1, json_integer((1 << 30) + 256));
}

static char *config_without(const char *key) {
    json_t *c = json_load_file(SRC "/config.json", 0, NULL);
    json_object_del(c, key);
    char *s = json_dumps(c, 0);
    json_decref(c);
    return s;
}

static char *config_with(const char *key, json_t *val) {
    json_t *c = json_load_file(SRC "/config.json", 0, NULL);
    json_object_set_new(c, key, val);
    char *s = json_dumps(c, 0);
    json_decref(c);
    return s;
}

int main(void) {
    snprintf(tmp, sizeof tmp, "%s/kvp_test_bad_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir);
    if (!mkdtemp(tmp)) return 1;
    char d[512], p[700], cmd0[1400];

    /* Safetensors. */
    make_folder("ok", NULL, NULL, 0, d, sizeof d);
    {
        kvp_model *m = NULL;
        kvp_error err = {0};
        CHECK_MSG(kvp_model_load(d, NULL, &m, &err) == KVP_OK, "control folder: %s", err.message);
        kvp_model_free(m);
    }
    make_folder("trunc", NULL, NULL, 1000, d, sizeof d);
    expect_load_fail("truncated safetensors", d, "model.safetensors", "past the end");
    make_folder("missing", NULL, drop_up, 0, d, sizeof d);
    expect_load_fail("missing tensor", d, "missing tensor 'model.layers.1.mlp.up_proj.weight'", tmp);
    make_folder("dtype", NULL, bad_dtype, 0, d, sizeof d);
    expect_load_fail("unknown dtype", d, "unknown dtype 'F99'", "model.safetensors");
    make_folder("idtype", NULL, int_dtype, 0, d, sizeof d);
    expect_load_fail("integer dtype", d, "type I32, which kvprune does not support (supported: F32, F16, BF16)", "down_proj");
    make_folder("shape", NULL, bad_shape, 0, d, sizeof d);
    expect_load_fail("mis-shaped tensor", d, "'model.layers.0.self_attn.k_proj.weight' has shape",
                     "expected [64 x 64]");
    make_folder("count", NULL, bad_count, 0, d, sizeof d);
    expect_load_fail("count vs bytes", d, "model.norm.weight", "need");
    make_folder("eof", NULL, past_eof, 0, d, sizeof d);
    expect_load_fail("offsets past EOF", d, "runs past the end", "model.safetensors");
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    uint64_t huge = (uint64_t)1 << 62;
    spit(p, &huge, 8);
    expect_load_fail("absurd header length", d, "header length", "model.safetensors");
    spit(p, "\x10\0\0\0\0\0\0\0{not json at all", 24);
    expect_load_fail("corrupt header", d, "not valid JSON", "model.safetensors");
    spit(p, "", 0);
    expect_load_fail("empty safetensors", d, "empty", "model.safetensors");

    /* config.json. */
    const char *required[] = {"hidden_size", "num_hidden_layers", "vocab_size", "rms_norm_eps",
                              "num_attention_heads", "intermediate_size"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        char *cfg = config_without(required[i]);
        char name[64];
        snprintf(name, sizeof name, "cfg%zu", i);
        make_folder(name, cfg, NULL, 0, d, sizeof d);
        char needle[96];
        snprintf(needle, sizeof needle, "missing required key \"%s\"", required[i]);
        expect_load_fail(required[i], d, needle, "config.json");
        free(cfg);
    }
    json_t *arr = json_array();
    json_array_append_new(arr, json_string("GPT2LMHeadModel"));
    char *cfg = config_with("architectures", arr);
    make_folder("arch", cfg, NULL, 0, d, sizeof d);
    expect_load_fail("unknown architecture", d, "unknown architecture 'GPT2LMHeadModel'", "config.json");
    free(cfg);
    cfg = config_with("hidden_size", json_string("sixty-four"));
    make_folder("cfgtype", cfg, NULL, 0, d, sizeof d);
    expect_load_fail("key of wrong type", d, "\"hidden_size\" must be an integer", "config.json");
    free(cfg);
    cfg = config_with("hidden_size", json_integer(80));
    make_folder("cfgdim", cfg, NULL, 0, d, sizeof d);
    expect_load_fail("config disagrees with tensors", d, "expected", "model.embed_tokens.weight");
    free(cfg);
    /* A fuzzer finding: 1e300 was cast to int (undefined behaviour). */
    cfg = config_with("rope_scaling",
                      json_pack("{s:s, s:f, s:f, s:f, s:f}", "rope_type", "llama3", "factor", 8.0,
                                "low_freq_factor", 1.0, "high_freq_factor", 4.0,
                                "original_max_position_embeddings", 1e300));
    make_folder("cfgomp", cfg, NULL, 0, d, sizeof d);
    expect_load_fail("huge original_max_position_embeddings", d, "original_max_position_embeddings",
                     "config.json");
    free(cfg);
    make_folder("cfgjson", "{\"hidden_size\": 64,", NULL, 0, d, sizeof d);
    expect_load_fail("corrupt config", d, "invalid JSON", "config.json");
    snprintf(d, sizeof d, "%s/empty_dir", tmp);
    mkdir(d, 0755);
    expect_load_fail("folder without config", d, "config.json", "missing");

    /* Sharded: an index naming a shard that is not there. */
    make_folder("shards", NULL, NULL, 0, d, sizeof d);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", d);
    const char *idx = "{\"weight_map\": {\"model.norm.weight\": \"model-00001-of-00002.safetensors\","
                      " \"lm_head.weight\": \"model-00002-of-00002.safetensors\"}}";
    spit(p, idx, strlen(idx));
    char shard[700];
    snprintf(shard, sizeof shard, "%s/model.safetensors", d);
    char shard1[720];
    snprintf(shard1, sizeof shard1, "%s/model-00001-of-00002.safetensors", d);
    CHECK(rename(shard, shard1) == 0);
    expect_load_fail("missing shard", d, "model-00002-of-00002.safetensors", "which is missing");
    expect_load_fail("missing shard names index", d, "model.safetensors.index.json", NULL);

    /* GGUF: convert the fixture, then break the result. */
    snprintf(p, sizeof p, "%s/ok.gguf", tmp);
    kvp_error err = {0};
    CHECK(kvp_convert_to_gguf(SRC, p, KVP_FTYPE_F32, &err) == KVP_OK);
    size_t n = 0;
    uint8_t *g = kvp_test_read_file(p, &n);
    CHECK(g != NULL);
    if (g) {
        snprintf(p, sizeof p, "%s/bad.gguf", tmp);
        spit(p, g, n - 100);
        expect_load_fail("truncated GGUF", p, "past the end", "bad.gguf");
        spit(p, g, 40);
        expect_load_fail("truncated GGUF header", p, "truncated", "bad.gguf");
        uint8_t *c = malloc(n);
        memcpy(c, g, n);
        c[1] = 'X';
        spit(p, c, n);
        expect_load_fail("wrong magic", p, "bad magic", "bad.gguf");
        free(c);
        free(g);
    }
    /* GGUFs built with the writer: unknown architecture, unsupported
     * tensor type, missing tensor, missing hyperparameter. */
    float zeros[64 * 64] = {0};
    uint64_t ne[2] = {64, 64};
    for (int variant = 0; variant < 4; variant++) {
        gguf_writer *w = kvgguf_writer_new();
        kvgguf_writer_set_str(w, "general.architecture", variant == 0 ? "gpt2" : "llama");
        const char *keys[] = {"llama.embedding_length", "llama.block_count",
                              "llama.feed_forward_length", "llama.attention.head_count"};
        for (int k = 0; k < 4; k++)
            if (!(variant == 3 && k == 1)) kvgguf_writer_set_u32(w, keys[k], k == 1 ? 1 : k == 3 ? 4 : 64);
        kvgguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
        kvgguf_writer_add_tensor(w, "token_embd.weight", 2, ne, GGML_TYPE_F32, zeros, sizeof zeros);
        kvgguf_writer_add_tensor(w, "output_norm.weight", 1, ne, GGML_TYPE_F32, zeros, 256);
        if (variant == 1) {
            /* MXFP4 (a type kvprune does not multiply): 64 elements = 2
             * blocks of 17 bytes. */
            kvgguf_writer_add_tensor(w, "blk.0.attn_norm.weight", 1, ne, GGML_TYPE_MXFP4, zeros, 34);
        }
        snprintf(p, sizeof p, "%s/v%d.gguf", tmp, variant);
        CHECK(kvgguf_writer_write(w, p, &err) == KVP_OK);
        kvgguf_writer_free(w);
    }
    snprintf(p, sizeof p, "%s/v0.gguf", tmp);
    expect_load_fail("unknown GGUF architecture", p, "unknown architecture 'gpt2'", "v0.gguf");
    snprintf(p, sizeof p, "%s/v1.gguf", tmp);
    expect_load_fail("unsupported tensor type", p, "tensor blk.0.attn_norm.weight has type MXFP4, which kvprune does not support", "v1.gguf");
    snprintf(p, sizeof p, "%s/v2.gguf", tmp);
    expect_load_fail("missing GGUF tensor", p, "missing tensor 'blk.0.attn_norm.weight'", "v2.gguf");
    snprintf(p, sizeof p, "%s/v3.gguf", tmp);
    expect_load_fail("missing hyperparameter", p, "'llama.block_count'", "v3.gguf");
    snprintf(p, sizeof p, "%s/nonexistent.gguf", tmp);
    expect_load_fail("no such file", p, "no such file", "nonexistent.gguf");

    /* Weights that load but hold NaN/Inf (or garbage bytes): generation is
     * an error naming the model, not token 0. */
    const uint32_t fill[2] = {0x7fc00000u, 0x7f800000u}; /* NaN, +Inf */
    for (int v = 0; v < 2; v++) {
        make_folder(v ? "inf" : "nan", NULL, NULL, 0, d, sizeof d);
        snprintf(p, sizeof p, "%s/model.safetensors", d);
        size_t sn = 0;
        uint8_t *st = kvp_test_read_file(p, &sn);
        uint64_t hl = 0;
        if (st && sn > 8) memcpy(&hl, st, 8);
        /* every float of the data region (F32 fixture) */
        for (size_t o = 8 + hl; st && o + 4 <= sn; o += 4) memcpy(st + o, &fill[v], 4);
        if (st) spit(p, st, sn);
        free(st);
        kvp_model *m = NULL;
        kvp_cache *c = NULL;
        CHECK(kvp_model_load(d, NULL, &m, &err) == KVP_OK);
        CHECK(m && kvp_cache_new(m, NULL, &c, &err) == KVP_OK);
        int32_t ids[3] = {1, 2, 3};
        kvp_gen_result res;
        if (m && c) {
            CHECK(kvp_generate(m, c, ids, 3, NULL, &res, &err) == KVP_ERR_FORMAT);
            CHECK_MSG(strstr(err.message, d) && strstr(err.message, "not finite"), "%s",
                      err.message);
            float *logits = malloc(sizeof(float) * 4096);
            kvp_cache_reset(c);
            CHECK(kvp_eval(m, c, ids, 3, logits, &err) == KVP_ERR_FORMAT);
            free(logits);
        }
        kvp_cache_free(c);
        kvp_model_free(m);
    }

    /* A bad tokenizer.json is a format error even without an error struct
     * to carry the message. */
    snprintf(d, sizeof d, "%s/badtok", tmp);
    snprintf(cmd0, sizeof cmd0, "cp -r tests/data/model/llama-tok-bf16 '%s' && echo '{\"model\": 3' > '%s/tokenizer.json'",
             d, d);
    CHECK(system(cmd0) == 0);
    {
        kvp_model *m = NULL;
        CHECK(kvp_model_load(d, NULL, &m, NULL) == KVP_ERR_FORMAT);
        CHECK(m == NULL);
        CHECK(kvp_model_load(d, NULL, &m, &err) == KVP_ERR_FORMAT);
        CHECK(strstr(err.message, "tokenizer") != NULL);
    }
    /* a tiny tokenizer.json whose ids reach millions: refused before any
     * table of that size is allocated (found by fuzzing) */
    snprintf(d, sizeof d, "%s/sparse", tmp);
    mkdir(d, 0755);
    snprintf(p, sizeof p, "%s/tokenizer.json", d);
    const char *sparse = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 7801747}, "
                         "\"merges\": []}}";
    spit(p, sparse, strlen(sparse));
    {
        kvp_tokenizer *tk = NULL;
        CHECK(kvp_tokenizer_load(d, &tk, &err) == KVP_ERR_FORMAT && tk == NULL);
        CHECK_MSG(strstr(err.message, "ids must be dense") != NULL, "%s", err.message);
    }
    /* NULL handles are no crash */
    kvp_model_info info;
    memset(&info, 0xab, sizeof info);
    kvp_model_get_info(NULL, &info);
    CHECK(info.n_layer == 0 && info.n_vocab == 0 && info.name[0] == '\0');

    /* A failed conversion leaves no file behind. */
    snprintf(p, sizeof p, "%s/out.gguf", tmp);
    snprintf(d, sizeof d, "%s/missing", tmp);
    CHECK(kvp_convert_to_gguf(d, p, KVP_FTYPE_F32, &err) != KVP_OK);
    CHECK(access(p, F_OK) != 0);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
    return kvp_test_done("test_bad_input");
}
