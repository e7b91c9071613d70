/*
 * GGUF v2/v3 reader and writer (internal).
 * Functions carry the kvgguf_ prefix so the library links next to ggml,
 * whose public gguf_* names these would otherwise duplicate. The reader validates the whole
 * header up front (counts, string lengths, tensor offsets against the file
 * size), so every accessor below is safe on a file that opened.
 */
#ifndef KVP_FORMAT_GGUF_H
#define KVP_FORMAT_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvprune.h"

typedef enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
} gguf_type;

/* ggml tensor types (numbering is ggml's; gaps are numbers ggml retired).
 * Which of them the engine multiplies: kvq_type_supported (kernels/quant.h). */
enum {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10,
    GGML_TYPE_Q3_K = 11,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14,
    GGML_TYPE_Q8_K = 15,
    GGML_TYPE_IQ2_XXS = 16,
    GGML_TYPE_IQ2_XS = 17,
    GGML_TYPE_IQ3_XXS = 18,
    GGML_TYPE_IQ1_S = 19,
    GGML_TYPE_IQ4_NL = 20,
    GGML_TYPE_IQ3_S = 21,
    GGML_TYPE_IQ2_S = 22,
    GGML_TYPE_IQ4_XS = 23,
    GGML_TYPE_I8 = 24,
    GGML_TYPE_I16 = 25,
    GGML_TYPE_I32 = 26,
    GGML_TYPE_I64 = 27,
    GGML_TYPE_F64 = 28,
    GGML_TYPE_IQ1_M = 29,
    GGML_TYPE_BF16 = 30,
    GGML_TYPE_TQ1_0 = 34,
    GGML_TYPE_TQ2_0 = 35,
    GGML_TYPE_MXFP4 = 39,
    GGML_TYPE_NVFP4 = 40,
    GGML_TYPE_Q1_0 = 41,
    GGML_TYPE_Q2_0 = 42,
    GGML_TYPE_COUNT = 43
};

typedef struct gguf_file gguf_file;

typedef struct gguf_tensor_info {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[4];       /* ggml order: ne[0] is the contiguous dimension */
    uint32_t type;        /* GGML_TYPE_* */
    uint64_t offset;      /* relative to the data section */
    uint64_t n_bytes;
    const void *data;     /* points into the mapped/read file */
} gguf_tensor_info;

kvp_status kvgguf_open(const char *path, bool use_mmap, gguf_file **out, kvp_error *err);
void kvgguf_close(gguf_file *g);
const char *kvgguf_path(const gguf_file *g);
uint32_t kvgguf_version(const gguf_file *g);

/* Key/value metadata. Index -1 means "not present". */
int64_t kvgguf_n_kv(const gguf_file *g);
int64_t kvgguf_find_key(const gguf_file *g, const char *key);
const char *kvgguf_key(const gguf_file *g, int64_t i);
gguf_type kvgguf_kv_type(const gguf_file *g, int64_t i);

/* Scalars: each returns false when the key is missing or has another type
 * (integers of any width convert when the value fits). */
bool kvgguf_get_u32(const gguf_file *g, const char *key, uint32_t *out);
bool kvgguf_get_i64(const gguf_file *g, const char *key, int64_t *out);
bool kvgguf_get_f32(const gguf_file *g, const char *key, float *out);
bool kvgguf_get_bool(const gguf_file *g, const char *key, bool *out);
/* Strings are not NUL-terminated in the file: use *len. */
const char *kvgguf_get_str(const gguf_file *g, const char *key, size_t *len);

/* Arrays. */
bool kvgguf_get_arr_info(const gguf_file *g, const char *key, gguf_type *elem_type, uint64_t *n);
/* Element data of a numeric array (little-endian, packed), aligned to the
 * element size so it can be indexed as int32_t*, float*, ... */
const void *kvgguf_get_arr_data(const gguf_file *g, const char *key);
/* Element j of a string array. */
const char *kvgguf_get_arr_str(const gguf_file *g, const char *key, uint64_t j, size_t *len);

/* Tensors. */
int64_t kvgguf_n_tensors(const gguf_file *g);
const gguf_tensor_info *kvgguf_tensor(const gguf_file *g, int64_t i);
const gguf_tensor_info *kvgguf_find_tensor(const gguf_file *g, const char *name);

/* Writer: collect metadata and tensors, then write in one go (to a temporary
 * file renamed into place on success). Data pointers must stay valid until
 * kvgguf_writer_write returns. */
typedef struct gguf_writer gguf_writer;
gguf_writer *kvgguf_writer_new(void);
void kvgguf_writer_free(gguf_writer *w);
kvp_status kvgguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
kvp_status kvgguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
kvp_status kvgguf_writer_set_f32(gguf_writer *w, const char *key, float v);
kvp_status kvgguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
kvp_status kvgguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* Numeric arrays: elem_type is a scalar gguf_type, data packed LE. */
kvp_status kvgguf_writer_set_arr(gguf_writer *w, const char *key, gguf_type elem_type,
                               const void *data, uint64_t n);
kvp_status kvgguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                                   const size_t *lens, uint64_t n);
kvp_status kvgguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t n_dims,
                                  const uint64_t *ne, uint32_t type, const void *data,
                                  uint64_t n_bytes);
kvp_status kvgguf_writer_write(gguf_writer *w, const char *path, kvp_error *err);

#endif
