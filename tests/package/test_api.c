/* Parts of the API made for programs outside the project, through the
 * shared library as such a program links it: the model info's size
 * versioning, the attention time in the cache statistics, the sink count
 * of streaming, vocab-only conversion's argument errors, the contract of
 * the cache under another engine (its results are checked against the
 * reference in tests/cache/test_cache_golden). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kvprune.h"
#include "test_util.h"

int main(int argc, char **argv) {
    const char *model_path = argc > 1 ? argv[1] : "models/kvp-mini.gguf";
    kvp_error err = {0};
    kvp_model *model = NULL;
    CHECK_MSG(kvp_model_load(model_path, NULL, &model, &err) == KVP_OK, "%s", err.message);

    /* A caller built against a shorter kvp_model_info gets its prefix and
     * nothing past it. */
    kvp_model_info full, part;
    kvp_model_get_info(model, &full);
    memset(&part, 0xAB, sizeof part);
    kvp_model_get_info_sized(model, &part, offsetof(kvp_model_info, n_ctx_train));
    CHECK_STR(part.arch, full.arch);
    CHECK_STR(part.name, full.name);
    CHECK_EQ_INT(part.n_vocab, full.n_vocab);
    unsigned char past[sizeof part - offsetof(kvp_model_info, n_ctx_train)];
    memset(past, 0xAB, sizeof past);
    CHECK(memcmp((const unsigned char *)&part + offsetof(kvp_model_info, n_ctx_train), past,
                 sizeof past) == 0);
    /* strings and EOS ids point into the model */
    CHECK(full.n_eos >= 1 && full.eos_ids != NULL && full.eos_ids[0] >= 0);
    CHECK(full.weight_types[0] != '\0' && full.compute[0] != '\0');
    kvp_model_info none;
    kvp_model_get_info(NULL, &none);
    CHECK(none.n_vocab == 0 && none.name && none.name[0] == '\0' && none.eos_ids == NULL);

    /* attn_ms: 0 after a reset, the generation's own attention time when
     * the generation started from an empty cache, growing with decoding */
    kvp_cache_params cp = kvp_cache_default_params();
    cp.method = "h2o";
    cp.num_recent = 8;
    cp.num_heavy = 8;
    kvp_cache *cache = NULL;
    CHECK_MSG(kvp_cache_new(model, &cp, &cache, &err) == KVP_OK, "%s", err.message);
    kvp_cache_stats st;
    kvp_cache_get_stats(cache, &st);
    CHECK(st.attn_ms == 0.0);
    int32_t prompt[40];
    for (int i = 0; i < 40; i++) prompt[i] = 3 + (i * 7) % 200;
    kvp_gen_params gp = kvp_gen_default_params();
    gp.max_new_tokens = 8;
    gp.ignore_eos = true;
    kvp_gen_result res;
    CHECK_MSG(kvp_generate(model, cache, prompt, 40, &gp, &res, &err) == KVP_OK, "%s",
              err.message);
    CHECK(res.attn_ms > 0.0);
    CHECK(res.cache.attn_ms == res.attn_ms);
    kvp_cache_get_stats(cache, &st);
    CHECK(st.attn_ms == res.attn_ms);
    CHECK(kvp_eval(model, cache, &res.ids[res.n_ids - 1], 1, NULL, &err) == KVP_OK);
    kvp_cache_stats st2;
    kvp_cache_get_stats(cache, &st2);
    CHECK(st2.attn_ms > st.attn_ms);
    kvp_gen_result_free(&res);
    kvp_cache_reset(cache);
    kvp_cache_get_stats(cache, &st);
    CHECK(st.attn_ms == 0.0);
    kvp_cache_free(cache);

    /* num_sink: default 4, negative refused with the parameter's name */
    CHECK_EQ_INT(kvp_cache_default_params().num_sink, 4);
    cp.streaming = true;
    cp.num_sink = -1;
    CHECK(kvp_cache_new(model, &cp, &cache, &err) == KVP_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "num_sink") != NULL);
    cp.num_sink = 2;
    CHECK_MSG(kvp_cache_new(model, &cp, &cache, &err) == KVP_OK, "%s", err.message);
    CHECK_MSG(kvp_eval(model, cache, prompt, 40, NULL, &err) == KVP_OK, "%s", err.message);
    const int32_t *pos;
    size_t n;
    CHECK(kvp_cache_kept_positions(cache, 0, 0, &pos, &n, &err) == KVP_OK);
    CHECK_EQ_INT(n, 16);
    CHECK(pos[0] == 0 && pos[1] == 1);
    kvp_cache_free(cache);

    /* the cache under another engine: layers in order, each once */
    enum { L = 2, H = 4, HKV = 2, D = 8, T = 3 };
    float q[T * H * D], k[T * HKV * D], v[T * HKV * D], o[T * H * D];
    for (int i = 0; i < T * H * D; i++) q[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
    for (int i = 0; i < T * HKV * D; i++) {
        k[i] = (float)((i * 13) % 7) / 7.0f - 0.5f;
        v[i] = (float)((i * 5) % 9) / 9.0f;
    }
    kvp_cache_params ep = kvp_cache_default_params();
    ep.kv_type = KVP_KV_F32; /* exact rows for the check of one output below */
    CHECK(kvp_cache_new_dims(L, H, 3, D, 0, &ep, &cache, &err) == KVP_ERR_INVALID_ARG);
    CHECK(kvp_cache_new_dims(L, H, HKV, D, -1, &ep, &cache, &err) == KVP_ERR_INVALID_ARG);
    CHECK_MSG(kvp_cache_new_dims(L, H, HKV, D, 0, &ep, &cache, &err) == KVP_OK, "%s", err.message);
    CHECK(kvp_cache_attend(cache, 0, q, k, v, o, 1, &err) == KVP_ERR_INVALID_ARG);
    CHECK(kvp_cache_end(cache, &err) == KVP_ERR_INVALID_ARG);
    CHECK(kvp_cache_begin(cache, T, 2, &err) == KVP_ERR_INVALID_ARG); /* prompt < block */
    CHECK(kvp_cache_begin(cache, T, T, &err) == KVP_OK);
    CHECK(kvp_cache_attend(cache, 1, q, k, v, o, 1, &err) == KVP_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "order") != NULL);
    kvp_cache_reset(cache);
    CHECK(kvp_cache_begin(cache, T, T, &err) == KVP_OK);
    CHECK(kvp_cache_attend(cache, 0, q, k, v, o, 1, &err) == KVP_OK);
    /* one token attends only to itself: its output is its value row */
    for (int h = 0; h < H; h++)
        for (int d = 0; d < D; d++) CHECK(o[h * D + d] == v[(h / (H / HKV)) * D + d]);
    CHECK(kvp_cache_end(cache, &err) == KVP_ERR_INVALID_ARG); /* layer 1 missing */
    CHECK(kvp_cache_begin(cache, 1, 0, &err) == KVP_ERR_INVALID_ARG);
    kvp_cache_reset(cache);
    CHECK(kvp_cache_begin(cache, T, T, &err) == KVP_OK);
    for (int l = 0; l < L; l++) CHECK(kvp_cache_attend(cache, l, q, k, v, o, 0, &err) == KVP_OK);
    CHECK(kvp_cache_attend(cache, 1, q, k, v, o, 0, &err) == KVP_ERR_INVALID_ARG);
    kvp_cache_reset(cache);
    CHECK(kvp_cache_begin(cache, T, T, &err) == KVP_OK);
    for (int l = 0; l < L; l++) CHECK(kvp_cache_attend(cache, l, q, k, v, o, 0, &err) == KVP_OK);
    CHECK(kvp_cache_end(cache, &err) == KVP_OK);
    kvp_cache_get_stats(cache, &st);
    CHECK_EQ_INT(st.n_seen, T);
    kvp_cache_free(cache);

    CHECK(kvp_convert_vocab_only(NULL, "x.gguf", &err) == KVP_ERR_INVALID_ARG);
    CHECK(kvp_convert_vocab_only("no/such/folder", "x.gguf", &err) != KVP_OK);
    CHECK(strstr(err.message, "no/such/folder") != NULL);

    kvp_model_free(model);
    return kvp_test_done("test_api");
}
