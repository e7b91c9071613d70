#include "format/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/gguf.h"
#include "util/error.h"
#include "util/json.h"

/* A header larger than this is not a model header (the format's own cap). */
#define ST_MAX_HEADER (100u << 20)

struct kvst_file {
    char *path;
    const uint8_t *base;
    size_t size;
    bool mapped;
    int64_t n;
    kvst_tensor *tensors;
    char **names;
};

static int64_t dtype_size(const char *d, uint32_t *type) {
    static const struct { const char *name; int size; uint32_t type; } tab[] = {
        {"F32", 4, GGML_TYPE_F32},      {"F16", 2, GGML_TYPE_F16},
        {"BF16", 2, GGML_TYPE_BF16},    {"F64", 8, ST_TYPE_OTHER},
        {"I64", 8, ST_TYPE_OTHER},      {"I32", 4, ST_TYPE_OTHER},
        {"I16", 2, ST_TYPE_OTHER},      {"I8", 1, ST_TYPE_OTHER},
        {"U64", 8, ST_TYPE_OTHER},      {"U32", 4, ST_TYPE_OTHER},
        {"U16", 2, ST_TYPE_OTHER},      {"U8", 1, ST_TYPE_OTHER},
        {"BOOL", 1, ST_TYPE_OTHER},     {"F8_E4M3", 1, ST_TYPE_OTHER},
        {"F8_E5M2", 1, ST_TYPE_OTHER},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(d, tab[i].name)) {
            *type = tab[i].type;
            return tab[i].size;
        }
    return 0;
}

static kvp_status parse_header(kvst_file *f, kvp_error *err) {
    if (f->size < 8)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: truncated safetensors file (%zu bytes, no header)",
                        f->path, f->size);
    uint64_t hlen;
    memcpy(&hlen, f->base, 8);
    if (hlen > f->size - 8)
        return kvu_fail(err, KVP_ERR_FORMAT,
                        "%s: truncated or not a safetensors file: header length %llu exceeds the "
                        "file size %zu",
                        f->path, (unsigned long long)hlen, f->size);
    if (hlen > ST_MAX_HEADER || hlen < 2)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: implausible safetensors header length %llu",
                        f->path, (unsigned long long)hlen);
    json_error_t je;
    json_t *root = kvu_json_loadb((const char *)f->base + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root && kvu_json_oom(&je))
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory while reading the header", f->path);
    if (!root)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: safetensors header is not valid JSON: %s",
                        f->path, je.text);
    kvp_status s = KVP_OK;
    if (!json_is_object(root)) {
        s = kvu_fail(err, KVP_ERR_FORMAT, "%s: safetensors header is not a JSON object", f->path);
        goto done;
    }
    size_t cap = json_object_size(root);
    f->tensors = calloc(cap ? cap : 1, sizeof *f->tensors);
    f->names = calloc(cap ? cap : 1, sizeof *f->names);
    if (!f->tensors || !f->names) {
        s = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", f->path);
        goto done;
    }
    uint64_t data_size = f->size - 8 - hlen;
    const uint8_t *data = f->base + 8 + hlen;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) continue;
        kvst_tensor *t = &f->tensors[f->n];
        json_t *dt = json_object_get(val, "dtype"), *sh = json_object_get(val, "shape"),
               *off = json_object_get(val, "data_offsets");
        if (!json_is_object(val) || !json_is_string(dt) || !json_is_array(sh) ||
            !json_is_array(off) || json_array_size(off) != 2) {
            s = kvu_fail(err, KVP_ERR_FORMAT,
                         "%s: tensor '%s' needs dtype, shape and data_offsets [begin, end]", f->path,
                         key);
            goto done;
        }
        if (!(f->names[f->n] = strdup(key))) {
            s = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", f->path);
            goto done;
        }
        t->name = f->names[f->n];
        t->file = f->path;
        f->n++;
        const char *dts = json_string_value(dt);
        int64_t esz = dtype_size(dts, &t->type);
        if (!esz) {
            s = kvu_fail(err, KVP_ERR_FORMAT, "%s: tensor '%s' has unknown dtype '%s'", f->path, key,
                         dts);
            goto done;
        }
        snprintf(t->dtype, sizeof t->dtype, "%s", dts);
        if (json_array_size(sh) > ST_MAX_DIMS) {
            s = kvu_fail(err, KVP_ERR_FORMAT, "%s: tensor '%s' has %zu dimensions (max %d)", f->path,
                         key, json_array_size(sh), ST_MAX_DIMS);
            goto done;
        }
        t->n_dims = (int)json_array_size(sh);
        uint64_t n_el = 1;
        for (int d = 0; d < t->n_dims; d++) {
            json_t *e = json_array_get(sh, (size_t)d);
            json_int_t v = json_is_integer(e) ? json_integer_value(e) : -1;
            if (v < 0 || (v > 0 && n_el > (UINT64_MAX / 8) / (uint64_t)v)) {
                s = kvu_fail(err, KVP_ERR_FORMAT, "%s: tensor '%s' has an invalid shape", f->path, key);
                goto done;
            }
            t->shape[d] = v;
            n_el *= (uint64_t)v;
        }
        json_t *b = json_array_get(off, 0), *e = json_array_get(off, 1);
        json_int_t bv = json_is_integer(b) ? json_integer_value(b) : -1;
        json_int_t ev = json_is_integer(e) ? json_integer_value(e) : -1;
        if (bv < 0 || ev < bv) {
            s = kvu_fail(err, KVP_ERR_FORMAT, "%s: tensor '%s' has invalid data_offsets", f->path, key);
            goto done;
        }
        if ((uint64_t)ev > data_size) {
            s = kvu_fail(err, KVP_ERR_FORMAT,
                         "%s: tensor '%s' data [%lld, %lld) runs past the end of the file (data "
                         "section holds %llu bytes; truncated?)",
                         f->path, key, (long long)bv, (long long)ev, (unsigned long long)data_size);
            goto done;
        }
        if ((uint64_t)(ev - bv) != n_el * (uint64_t)esz) {
            s = kvu_fail(err, KVP_ERR_FORMAT,
                         "%s: tensor '%s' holds %lld bytes but its shape and dtype %s need %llu",
                         f->path, key, (long long)(ev - bv), dts,
                         (unsigned long long)(n_el * (uint64_t)esz));
            goto done;
        }
        t->data = data + bv;
        t->n_bytes = (uint64_t)(ev - bv);
    }
done:
    json_decref(root);
    return s;
}

kvp_status kvst_open(const char *path, bool use_mmap, kvst_file **out, kvp_error *err) {
    *out = NULL;
    kvst_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", path);
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        kvp_status s = kvu_fail(err, KVP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        kvst_close(f);
        return s;
    }
    struct stat sb;
    kvp_status s = KVP_OK;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        s = kvu_fail(err, KVP_ERR_IO, "%s: not a regular file", path);
    } else if (sb.st_size == 0) {
        s = kvu_fail(err, KVP_ERR_FORMAT, "%s: empty file (not a safetensors file)", path);
    } else {
        f->size = (size_t)sb.st_size;
        if (use_mmap) {
            void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (m == MAP_FAILED)
                s = kvu_fail(err, KVP_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
            else {
                f->base = m;
                f->mapped = true;
            }
        } else {
            uint8_t *buf = malloc(f->size);
            size_t got = 0;
            while (buf && got < f->size) {
                ssize_t r = read(fd, buf + got, f->size - got);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) break;
                got += (size_t)r;
            }
            f->base = buf;
            if (!buf)
                s = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, f->size);
            else if (got != f->size)
                s = kvu_fail(err, KVP_ERR_IO, "%s: read failed", path);
        }
    }
    close(fd);
    if (!s) s = parse_header(f, err);
    if (s) {
        kvst_close(f);
        return s;
    }
    *out = f;
    return KVP_OK;
}

void kvst_close(kvst_file *f) {
    if (!f) return;
    for (int64_t i = 0; i < f->n; i++) free(f->names[i]);
    free(f->names);
    free(f->tensors);
    if (f->base) {
        if (f->mapped)
            munmap((void *)f->base, f->size);
        else
            free((void *)f->base);
    }
    free(f->path);
    free(f);
}

int64_t kvst_n_tensors(const kvst_file *f) { return f->n; }
const kvst_tensor *kvst_tensor_at(const kvst_file *f, int64_t i) {
    return i >= 0 && i < f->n ? &f->tensors[i] : NULL;
}
const kvst_tensor *kvst_find(const kvst_file *f, const char *name) {
    for (int64_t i = 0; i < f->n; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

/* ------------------------------------------------------------------------ */

struct kvst_model {
    kvst_file **files;
    size_t n_files;
};

void kvst_model_close(kvst_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_files; i++) kvst_close(m->files[i]);
    free(m->files);
    free(m);
}

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static bool file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static kvp_status add_file(kvst_model *m, const char *path, bool use_mmap, kvp_error *err) {
    kvst_file **nf = realloc(m->files, (m->n_files + 1) * sizeof *nf);
    if (!nf) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", path);
    m->files = nf;
    kvst_file *f;
    kvp_status s = kvst_open(path, use_mmap, &f, err);
    if (s) return s;
    m->files[m->n_files++] = f;
    return KVP_OK;
}

kvp_status kvst_model_open(const char *dir, bool use_mmap, kvst_model **out, kvp_error *err) {
    *out = NULL;
    kvst_model *m = calloc(1, sizeof *m);
    if (!m) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", dir);
    kvp_status s = KVP_OK;
    char *single = join(dir, "model.safetensors");
    char *index = join(dir, "model.safetensors.index.json");
    if (!single || !index) {
        s = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", dir);
    } else if (file_exists(index)) {
        json_error_t je;
        json_t *root = kvu_json_load_file(index, JSON_REJECT_DUPLICATES, &je);
        json_t *wm = root ? json_object_get(root, "weight_map") : NULL;
        if (!root && kvu_json_oom(&je)) {
            s = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory while reading it", index);
        } else if (!root) {
            s = kvu_fail(err, KVP_ERR_FORMAT, "%s: invalid JSON: %s (line %d)", index, je.text,
                         je.line);
        } else if (!json_is_object(wm) || json_object_size(wm) == 0) {
            s = kvu_fail(err, KVP_ERR_FORMAT, "%s: missing or empty \"weight_map\" object", index);
        } else {
            /* Open each shard once, in the order first named. */
            const char *key;
            json_t *val;
            char **seen = calloc(json_object_size(wm), sizeof *seen);
            size_t n_seen = 0;
            if (!seen) s = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", index);
            json_object_foreach(wm, key, val) {
                if (s) break;
                const char *shard = json_string_value(val);
                if (!shard || !*shard || strchr(shard, '/')) {
                    s = kvu_fail(err, KVP_ERR_FORMAT, "%s: weight_map entry '%s' is not a file name",
                                 index, key);
                    break;
                }
                bool dup = false;
                for (size_t i = 0; i < n_seen && !dup; i++) dup = !strcmp(seen[i], shard);
                if (dup) continue;
                seen[n_seen++] = (char *)shard;
                char *sp = join(dir, shard);
                if (!sp) {
                    s = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", index);
                } else if (!file_exists(sp)) {
                    s = kvu_fail(err, KVP_ERR_IO, "%s: names shard '%s' (for '%s'), which is missing",
                                 index, shard, key);
                } else {
                    s = add_file(m, sp, use_mmap, err);
                }
                free(sp);
            }
            /* Every tensor the index names must be in the shard it names. */
            json_object_foreach(wm, key, val) {
                if (s) break;
                const kvst_tensor *t = kvst_model_find(m, key);
                if (!t) {
                    s = kvu_fail(err, KVP_ERR_FORMAT, "%s: tensor '%s' is not in shard '%s'", index,
                                 key, json_string_value(val));
                }
            }
            free(seen);
        }
        json_decref(root);
    } else if (file_exists(single)) {
        s = add_file(m, single, use_mmap, err);
    } else {
        s = kvu_fail(err, KVP_ERR_IO,
                     "%s: no model.safetensors or model.safetensors.index.json in the folder", dir);
    }
    free(single);
    free(index);
    if (s) {
        kvst_model_close(m);
        return s;
    }
    *out = m;
    return KVP_OK;
}

const kvst_tensor *kvst_model_find(const kvst_model *m, const char *name) {
    for (size_t i = 0; i < m->n_files; i++) {
        const kvst_tensor *t = kvst_find(m->files[i], name);
        if (t) return t;
    }
    return NULL;
}

uint64_t kvst_model_bytes(const kvst_model *m) {
    uint64_t b = 0;
    for (size_t i = 0; i < m->n_files; i++)
        for (int64_t j = 0; j < m->files[i]->n; j++) b += m->files[i]->tensors[j].n_bytes;
    return b;
}
