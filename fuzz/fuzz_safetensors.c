/* Safetensors: byte 0 picks what the rest is: (even) a model.safetensors
 * file, or (odd) a model.safetensors.index.json naming shards (the seeds
 * name model-00001-of-00001.safetensors, a valid shard written once). */
#include "format/safetensors.h"
#include "fuzz_common.h"
#include "kvprune.h"

static void touch_tensor(const kvst_tensor *t) {
    if (!t || !t->n_bytes) return;
    volatile uint8_t a = ((const uint8_t *)t->data)[0];
    volatile uint8_t b = ((const uint8_t *)t->data)[t->n_bytes - 1];
    (void)a;
    (void)b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool ready;
    const char *dir = fz_dir();
    if (!ready) {
        /* a valid one-tensor shard for the index to name */
        static const char hdr[] = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        uint8_t buf[8 + sizeof hdr - 1 + 8] = {0};
        uint64_t hl = sizeof hdr - 1;
        memcpy(buf, &hl, 8);
        memcpy(buf + 8, hdr, sizeof hdr - 1);
        fz_write(fz_path(0, "model-00001-of-00001.safetensors"), buf, sizeof buf);
        ready = true;
    }
    if (size < 1) return 0;
    const char *st_path = fz_path(1, "model.safetensors");
    const char *idx_path = fz_path(2, "model.safetensors.index.json");
    kvp_error err;
    if ((data[0] & 1) == 0) {
        unlink(idx_path);
        fz_write(st_path, data + 1, size - 1);
        for (int mm = 0; mm < 2; mm++) {
            kvst_file *f = NULL;
            if (kvst_open(st_path, mm == 1, &f, &err) != KVP_OK) continue;
            for (int64_t i = 0; i < kvst_n_tensors(f); i++) {
                const kvst_tensor *t = kvst_tensor_at(f, i);
                touch_tensor(t);
                if (t) (void)kvst_find(f, t->name);
            }
            kvst_close(f);
        }
    } else {
        unlink(st_path);
        fz_write(idx_path, data + 1, size - 1);
    }
    kvst_model *m = NULL;
    if (kvst_model_open(dir, false, &m, &err) == KVP_OK) {
        (void)kvst_model_find(m, "w");
        (void)kvst_model_bytes(m);
        kvst_model_close(m);
    }
    return 0;
}
