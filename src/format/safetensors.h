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

typedef struct st_tensor {
    const char *name;
    const char *file;     /* path of the file holding it                      */
    char dtype[8];        /* as written: "F32", "BF16", "I64", ...            */
    uint32_t type;        /* GGML_TYPE_F32/F16/BF16, or ST_TYPE_OTHER          */
    int n_dims;
    int64_t shape[ST_MAX_DIMS]; /* row-major, shape[0] outermost              */
    const void *data;
    uint64_t n_bytes;
} st_tensor;

typedef struct st_file st_file;
kvp_status st_open(const char *path, bool use_mmap, st_file **out, kvp_error *err);
void st_close(st_file *f);
int64_t st_n_tensors(const st_file *f);
const st_tensor *st_tensor_at(const st_file *f, int64_t i);
const st_tensor *st_find(const st_file *f, const char *name);

/* All safetensors files of a model folder. */
typedef struct st_model st_model;
kvp_status st_model_open(const char *dir, bool use_mmap, st_model **out, kvp_error *err);
void st_model_close(st_model *m);
const st_tensor *st_model_find(const st_model *m, const char *name);
uint64_t st_model_bytes(const st_model *m);

#endif
