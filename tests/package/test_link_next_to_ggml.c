/* A program that defines ggml's public GGUF functions itself (as one linked
 * with llama.cpp does) links against the library, static or shared, and
 * both sets of functions keep working: the library's GGUF reader has names
 * of its own. */
#include <stdint.h>
#include <string.h>

#include "kvprune.h"
#include "test_util.h"

/* ggml's names (signatures simplified: only the symbol names matter). */
struct gguf_context;
int64_t gguf_find_key(const struct gguf_context *ctx, const char *key);
int64_t gguf_find_tensor(const struct gguf_context *ctx, const char *name);
const void *gguf_get_arr_data(const struct gguf_context *ctx, int64_t key_id);
const char *gguf_get_arr_str(const struct gguf_context *ctx, int64_t key_id, size_t i);

int64_t gguf_find_key(const struct gguf_context *ctx, const char *key) {
    (void)ctx;
    return (int64_t)strlen(key) + 1000;
}
int64_t gguf_find_tensor(const struct gguf_context *ctx, const char *name) {
    (void)ctx;
    return (int64_t)strlen(name) + 2000;
}
const void *gguf_get_arr_data(const struct gguf_context *ctx, int64_t key_id) {
    (void)ctx;
    return key_id == 7 ? "data" : NULL;
}
const char *gguf_get_arr_str(const struct gguf_context *ctx, int64_t key_id, size_t i) {
    (void)ctx;
    return key_id == 7 && i == 0 ? "str" : NULL;
}

int main(int argc, char **argv) {
    const char *model_path = argc > 1 ? argv[1] : "models/kvp-mini.gguf";
    CHECK_EQ_INT(gguf_find_key(NULL, "abc"), 1003);
    CHECK_EQ_INT(gguf_find_tensor(NULL, "ab"), 2002);
    CHECK_STR((const char *)gguf_get_arr_data(NULL, 7), "data");
    CHECK_STR(gguf_get_arr_str(NULL, 7, 0), "str");

    /* Loading a GGUF model runs the library's own reader. */
    kvp_error err = {0};
    kvp_model *model = NULL;
    kvp_model_params mp = kvp_model_default_params();
    CHECK_MSG(kvp_model_load(model_path, &mp, &model, &err) == KVP_OK, "%s", err.message);
    kvp_model_info info;
    kvp_model_get_info(model, &info);
    CHECK_STR(info.arch, "llama");
    CHECK(info.n_vocab > 0 && info.n_layer > 0);
    kvp_model_free(model);
    CHECK_STR(kvp_version(), KVP_VERSION);
    return kvp_test_done("test_link_next_to_ggml");
}
