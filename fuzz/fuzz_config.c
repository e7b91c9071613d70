/* config.json: the Hugging Face configuration reader, then a whole model
 * load of the folder (config + a fixed tiny safetensors file), so every
 * dimension the config can claim meets the weights' checks. */
#include "format/hfconfig.h"
#include "fuzz_common.h"
#include "kvprune.h"

#ifndef KVP_SOURCE_DIR
#error "KVP_SOURCE_DIR must name the source tree (set by fuzz/CMakeLists.txt)"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool ready;
    const char *dir = fz_dir();
    if (!ready) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "cp %s/tests/data/model/llama-gqa/model.safetensors %s/",
                 KVP_SOURCE_DIR, dir);
        if (system(cmd) != 0) abort();
        ready = true;
    }
    fz_write(fz_path(0, "config.json"), data, size);
    kvp_error err;
    kvhf_config c;
    if (kvhf_config_load(dir, &c, &err) != KVP_OK) return 0;
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = 1;
    kvp_model *m = NULL;
    if (kvp_model_load(dir, &mp, &m, &err) == KVP_OK) {
        kvp_model_info info;
        kvp_model_get_info(m, &info);
        kvp_cache *cache = NULL;
        if (kvp_cache_new(m, NULL, &cache, &err) == KVP_OK) {
            int32_t ids[2] = {1, 2};
            float *logits = malloc(sizeof(float) * (size_t)(info.n_vocab > 0 ? info.n_vocab : 1));
            (void)kvp_eval(m, cache, ids, 2, logits, &err);
            free(logits);
            kvp_cache_free(cache);
        }
        kvp_model_free(m);
    }
    return 0;
}
