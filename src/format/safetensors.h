/*
 * Safetensors reader (internal): one file, or a Hugging Face model folder
 * (model.safetensors, or shards listed by model.safetensors.index.json).
 * Headers are validated on open: dtypes, shapes, offsets against the file
 * size and element counts against the byte ranges.
 */
#ifndef KVP_FORMAT_SAFETENSORS_H
#define KVP_FORMAT_SAFETENSORS_H

#include <stdbool.h>
#include <stdint.h>

#include "kvprune.h"

#define ST_MAX_DIMS 8
#define ST_TYPE_OTHER 0xffffffffu

typedef struct kvst_tensor {
    const char *name;
    const char *file;     /* path of the file holding it                      */
    char dtype[8];        /* as written: "F32", "BF16", "I64", ...            */
    uint32_t type;        /* GGML_TYPE_F32/F16/BF16, or ST_TYPE_OTHER          */
    int n_dims;
    int64_t shape[ST_MAX_DIMS]; /* row-major, shape[0] outermost              */
    const void *data;
    uint64_t n_bytes;
} kvst_tensor;

typedef struct kvst_file kvst_file;
kvp_status kvst_open(const char *path, bool use_mmap, kvst_file **out, kvp_error *err);
void kvst_close(kvst_file *f);
int64_t kvst_n_tensors(const kvst_file *f);
const kvst_tensor *kvst_tensor_at(const kvst_file *f, int64_t i);
const kvst_tensor *kvst_find(const kvst_file *f, const char *name);

/* All safetensors files of a model folder. */
typedef struct kvst_model kvst_model;
kvp_status kvst_model_open(const char *dir, bool use_mmap, kvst_model **out, kvp_error *err);
void kvst_model_close(kvst_model *m);
const kvst_tensor *kvst_model_find(const kvst_model *m, const char *name);
uint64_t kvst_model_bytes(const kvst_model *m);

#endif
