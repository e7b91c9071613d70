/* GGUF: the reader (keys, arrays, tensor infos), then the model loader and
 * the tokenizer loader on the same bytes. */
#include "format/gguf.h"
#include "fuzz_common.h"
#include "kvprune.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_path(0, "m.gguf");
    fz_write(path, data, size);
    kvp_error err;
    for (int mm = 0; mm < 2; mm++) {
        gguf_file *g = NULL;
        if (kvgguf_open(path, mm == 1, &g, &err) != KVP_OK) continue;
        for (int64_t i = 0; i < kvgguf_n_kv(g); i++) {
            const char *key = kvgguf_key(g, i);
            size_t len;
            gguf_type et;
            uint64_t n;
            (void)kvgguf_get_str(g, key, &len);
            if (kvgguf_get_arr_info(g, key, &et, &n)) {
                (void)kvgguf_get_arr_data(g, key);
                if (n) (void)kvgguf_get_arr_str(g, key, n - 1, &len);
            }
        }
        for (int64_t i = 0; i < kvgguf_n_tensors(g); i++) {
            const gguf_tensor_info *t = kvgguf_tensor(g, i);
            if (!t) continue;
            (void)kvgguf_find_tensor(g, t->name);
            /* the data a tensor claims must lie inside the file */
            if (t->n_bytes) {
                volatile uint8_t first = ((const uint8_t *)t->data)[0];
                volatile uint8_t last = ((const uint8_t *)t->data)[t->n_bytes - 1];
                (void)first;
                (void)last;
            }
        }
        kvgguf_close(g);
    }
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = 1;
    kvp_model *m = NULL;
    if (kvp_model_load(path, &mp, &m, &err) == KVP_OK) kvp_model_free(m);
    kvp_tokenizer *tok = NULL;
    if (kvp_tokenizer_load(path, &tok, &err) == KVP_OK) {
        int32_t *ids = NULL;
        size_t n = 0;
        kvp_tokenize_params tp = kvp_tokenize_default_params();
        if (kvp_tokenize(tok, "Hello <s> world 123", 19, &tp, &ids, &n, &err) == KVP_OK) {
            char *text = NULL;
            size_t tl;
            if (kvp_detokenize(tok, ids, n, false, &text, &tl, &err) == KVP_OK) kvp_free(text);
            kvp_free(ids);
        }
        kvp_tokenizer_free(tok);
    }
    return 0;
}
