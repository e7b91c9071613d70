/*
 * GGUF v2/v3 reader and writer.
 *
 * The reader checks every count and length against the bytes that remain
 * before allocating anything, so a corrupt header fails with a message
 * instead of a huge allocation or a read past the end. Values stay in the
 * mapped (or read) file; only keys, tensor names and string-array offsets
 * are copied.
 */
#include "format/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/quant.h"
#include "util/error.h"
#include "util/file.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

typedef struct gguf_kv {
    char *key;
    gguf_type type;
    const uint8_t *data;   /* scalar bytes / string bytes / array elements */
    uint64_t len;          /* string length or array element count        */
    gguf_type elem_type;   /* arrays only                                 */
    uint64_t *str_offs;    /* string arrays: offset of element j's length */
    void *aligned;         /* numeric arrays not aligned in the file: a copy */
} gguf_kv;

typedef struct gguf_tensor_rec {
    gguf_tensor_info info;
    char *name;
} gguf_tensor_rec;

struct gguf_file {
    char *path;
    const uint8_t *base;
    size_t size;
    bool mapped;
    uint32_t version;
    int64_t n_kv;
    gguf_kv *kvs;
    int64_t n_tensors;
    gguf_tensor_rec *tensors;
    int64_t *sorted; /* tensor indices sorted by name, for lookup */
    uint64_t alignment;
    uint64_t data_start;
};

/* ------------------------------------------------------------------------ */
/* Type tables                                                              */
/* ------------------------------------------------------------------------ */

static size_t scalar_size(gguf_type t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

/* ggml's block size and bytes per block; false for numbers ggml does not use. */
static bool ggml_type_layout(uint32_t t, uint64_t *blck, uint64_t *bytes) {
    const kvq_type_traits *tr = kvq_type_traits_of(t);
    if (!tr->block_elems) return false;
    *blck = (uint64_t)tr->block_elems;
    *bytes = (uint64_t)tr->block_bytes;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Reader                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct cursor {
    const uint8_t *p;
    uint64_t pos, size;
    const char *path;
    kvp_error *err;
} cursor;

static uint64_t remaining(const cursor *c) { return c->size - c->pos; }

static kvp_status need(cursor *c, uint64_t n, const char *what) {
    if (n > remaining(c))
        return kvu_fail(c->err, KVP_ERR_FORMAT,
                        "%s: truncated GGUF: %s needs %llu bytes at offset %llu, file has %llu",
                        c->path, what, (unsigned long long)n, (unsigned long long)c->pos,
                        (unsigned long long)c->size);
    return KVP_OK;
}

static kvp_status rd(cursor *c, void *dst, uint64_t n, const char *what) {
    kvp_status s = need(c, n, what);
    if (s) return s;
    memcpy(dst, c->p + c->pos, n);
    c->pos += n;
    return KVP_OK;
}

/* A GGUF string: u64 length + bytes. Returns a pointer into the file. */
static kvp_status rd_str(cursor *c, const uint8_t **s, uint64_t *len, const char *what) {
    kvp_status st = rd(c, len, 8, what);
    if (st) return st;
    if ((st = need(c, *len, what))) return st;
    *s = c->p + c->pos;
    c->pos += *len;
    return KVP_OK;
}

static char *dup_n(const uint8_t *s, uint64_t n) {
    char *r = malloc(n + 1);
    if (!r) return NULL;
    memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

static int cmp_tensor_idx(const void *a, const void *b, void *ctx);

/* qsort_r is not portable C11; a tiny merge sort keeps the order deterministic. */
static void sort_indices(int64_t *idx, int64_t *tmp, int64_t n, const gguf_file *g) {
    if (n < 2) return;
    int64_t h = n / 2;
    sort_indices(idx, tmp, h, g);
    sort_indices(idx + h, tmp, n - h, g);
    int64_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = cmp_tensor_idx(&idx[i], &idx[j], (void *)g) <= 0 ? idx[i++] : idx[j++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

static int cmp_tensor_idx(const void *a, const void *b, void *ctx) {
    const gguf_file *g = ctx;
    return strcmp(g->tensors[*(const int64_t *)a].name, g->tensors[*(const int64_t *)b].name);
}

static kvp_status parse_kv(cursor *c, gguf_kv *kv, int64_t i) {
    const uint8_t *ks;
    uint64_t klen;
    char what[64];
    snprintf(what, sizeof what, "key of metadata entry %lld", (long long)i);
    kvp_status s = rd_str(c, &ks, &klen, what);
    if (s) return s;
    if (!(kv->key = dup_n(ks, klen)))
        return kvu_fail(c->err, KVP_ERR_NOMEM, "%s: out of memory", c->path);
    uint32_t type;
    if ((s = rd(c, &type, 4, "metadata value type"))) return s;
    if (type >= GGUF_TYPE_COUNT)
        return kvu_fail(c->err, KVP_ERR_FORMAT, "%s: metadata key '%s' has unknown value type %u",
                        c->path, kv->key, type);
    kv->type = (gguf_type)type;
    if (type == GGUF_TYPE_STRING) {
        return rd_str(c, &kv->data, &kv->len, kv->key);
    }
    if (type != GGUF_TYPE_ARRAY) {
        size_t n = scalar_size(kv->type);
        if ((s = need(c, n, kv->key))) return s;
        kv->data = c->p + c->pos;
        kv->len = 1;
        c->pos += n;
        return KVP_OK;
    }
    uint32_t et;
    if ((s = rd(c, &et, 4, "array element type"))) return s;
    if ((s = rd(c, &kv->len, 8, "array length"))) return s;
    if (et >= GGUF_TYPE_COUNT)
        return kvu_fail(c->err, KVP_ERR_FORMAT,
                        "%s: metadata array '%s' has unknown element type %u", c->path, kv->key, et);
    if (et == GGUF_TYPE_ARRAY)
        return kvu_fail(c->err, KVP_ERR_UNSUPPORTED,
                        "%s: metadata array '%s' holds arrays (nested arrays are not supported)",
                        c->path, kv->key);
    kv->elem_type = (gguf_type)et;
    if (et == GGUF_TYPE_STRING) {
        /* Each element takes at least its 8-byte length: refuse absurd counts
         * before allocating the offset table. */
        if (kv->len > remaining(c) / 8)
            return kvu_fail(c->err, KVP_ERR_FORMAT,
                            "%s: metadata array '%s' claims %llu strings but only %llu bytes remain",
                            c->path, kv->key, (unsigned long long)kv->len,
                            (unsigned long long)remaining(c));
        kv->str_offs = malloc((kv->len ? kv->len : 1) * sizeof *kv->str_offs);
        if (!kv->str_offs) return kvu_fail(c->err, KVP_ERR_NOMEM, "%s: out of memory", c->path);
        kv->data = c->p + c->pos;
        for (uint64_t j = 0; j < kv->len; j++) {
            kv->str_offs[j] = c->pos;
            const uint8_t *sp;
            uint64_t sl;
            if ((s = rd_str(c, &sp, &sl, kv->key))) return s;
        }
        return KVP_OK;
    }
    size_t es = scalar_size(kv->elem_type);
    if (kv->len > remaining(c) / es)
        return kvu_fail(c->err, KVP_ERR_FORMAT,
                        "%s: metadata array '%s' claims %llu elements but only %llu bytes remain",
                        c->path, kv->key, (unsigned long long)kv->len,
                        (unsigned long long)remaining(c));
    kv->data = c->p + c->pos;
    c->pos += kv->len * es;
    /* Metadata is packed, so arrays may sit at odd offsets: give callers an
     * aligned copy they can index as int32_t / float. */
    if ((uintptr_t)kv->data % es && kv->len) {
        if (!(kv->aligned = malloc(kv->len * es)))
            return kvu_fail(c->err, KVP_ERR_NOMEM, "%s: out of memory", c->path);
        memcpy(kv->aligned, kv->data, kv->len * es);
        kv->data = kv->aligned;
    }
    return KVP_OK;
}

static kvp_status parse_tensor(cursor *c, gguf_tensor_rec *t, int64_t i) {
    const uint8_t *ns;
    uint64_t nlen;
    char what[64];
    snprintf(what, sizeof what, "name of tensor %lld", (long long)i);
    kvp_status s = rd_str(c, &ns, &nlen, what);
    if (s) return s;
    if (!(t->name = dup_n(ns, nlen)))
        return kvu_fail(c->err, KVP_ERR_NOMEM, "%s: out of memory", c->path);
    t->info.name = t->name;
    if ((s = rd(c, &t->info.n_dims, 4, t->name))) return s;
    if (t->info.n_dims < 1 || t->info.n_dims > GGUF_MAX_DIMS)
        return kvu_fail(c->err, KVP_ERR_FORMAT, "%s: tensor '%s' has %u dimensions (1 to %d allowed)",
                        c->path, t->name, t->info.n_dims, GGUF_MAX_DIMS);
    uint64_t n_el = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < t->info.n_dims && (s = rd(c, &ne, 8, t->name))) return s;
        if (ne == 0 || ne > (uint64_t)INT64_MAX / n_el)
            return kvu_fail(c->err, KVP_ERR_FORMAT, "%s: tensor '%s' has an invalid shape (dim %u = %llu)",
                            c->path, t->name, d, (unsigned long long)ne);
        t->info.ne[d] = ne;
        n_el *= ne;
    }
    if ((s = rd(c, &t->info.type, 4, t->name))) return s;
    if ((s = rd(c, &t->info.offset, 8, t->name))) return s;
    uint64_t blck, bytes;
    if (!ggml_type_layout(t->info.type, &blck, &bytes))
        return kvu_fail(c->err, KVP_ERR_FORMAT, "%s: tensor '%s' has unknown type %u", c->path,
                        t->name, t->info.type);
    if (t->info.ne[0] % blck)
        return kvu_fail(c->err, KVP_ERR_FORMAT,
                        "%s: tensor '%s': row length %llu is not a multiple of its type's block %llu",
                        c->path, t->name, (unsigned long long)t->info.ne[0], (unsigned long long)blck);
    uint64_t nb = n_el / blck;
    if (nb > UINT64_MAX / bytes)
        return kvu_fail(c->err, KVP_ERR_FORMAT, "%s: tensor '%s' is impossibly large", c->path, t->name);
    t->info.n_bytes = nb * bytes;
    return KVP_OK;
}

static kvp_status parse(gguf_file *g, kvp_error *err) {
    cursor c = {g->base, 0, g->size, g->path, err};
    char magic[4];
    kvp_status s;
    if (g->size < 4 || memcmp(g->base, GGUF_MAGIC, 4) != 0)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: not a GGUF file (bad magic)", g->path);
    if ((s = rd(&c, magic, 4, "magic"))) return s;
    if ((s = rd(&c, &g->version, 4, "version"))) return s;
    if (g->version != 2 && g->version != 3) {
        if (g->version == 1)
            return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: GGUF version 1 is not supported (2 or 3)",
                            g->path);
        return kvu_fail(err, KVP_ERR_FORMAT,
                        "%s: unsupported GGUF version %u (2 or 3; a big-endian file?)", g->path,
                        g->version);
    }
    uint64_t n_tensors, n_kv;
    if ((s = rd(&c, &n_tensors, 8, "tensor count"))) return s;
    if ((s = rd(&c, &n_kv, 8, "metadata count"))) return s;
    /* Smallest possible entries: a key/value is 8+4+1 bytes, a tensor info
     * 8+4+8+4+8 bytes. */
    if (n_kv > remaining(&c) / 13)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: truncated or corrupt GGUF: metadata count %llu is impossible for a %llu-byte file",
                        g->path, (unsigned long long)n_kv, (unsigned long long)g->size);
    if (n_tensors > remaining(&c) / 32)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: truncated or corrupt GGUF: tensor count %llu is impossible for a %llu-byte file",
                        g->path, (unsigned long long)n_tensors, (unsigned long long)g->size);
    g->kvs = calloc(n_kv ? n_kv : 1, sizeof *g->kvs);
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    g->sorted = calloc(n_tensors ? n_tensors : 1, sizeof *g->sorted);
    if (!g->kvs || !g->tensors || !g->sorted)
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", g->path);
    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv = (int64_t)i + 1;
        if ((s = parse_kv(&c, &g->kvs[i], (int64_t)i))) return s;
    }
    g->n_kv = (int64_t)n_kv;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = kvgguf_find_key(g, "general.alignment");
    if (ai >= 0) {
        uint32_t a;
        if (!kvgguf_get_u32(g, "general.alignment", &a) || a == 0 || (a & (a - 1)))
            return kvu_fail(err, KVP_ERR_FORMAT,
                            "%s: general.alignment must be a power of two (u32)", g->path);
        g->alignment = a;
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        g->n_tensors = (int64_t)i + 1;
        if ((s = parse_tensor(&c, &g->tensors[i], (int64_t)i))) return s;
    }
    g->n_tensors = (int64_t)n_tensors;
    uint64_t data_start = (c.pos + g->alignment - 1) / g->alignment * g->alignment;
    if (n_tensors && data_start > g->size)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: truncated GGUF: tensor data section missing",
                        g->path);
    g->data_start = data_start;
    uint64_t data_size = g->size > data_start ? g->size - data_start : 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor_info *t = &g->tensors[i].info;
        if (t->offset % g->alignment)
            return kvu_fail(err, KVP_ERR_FORMAT, "%s: tensor '%s' offset %llu is not aligned to %llu",
                            g->path, t->name, (unsigned long long)t->offset,
                            (unsigned long long)g->alignment);
        if (t->offset > data_size || t->n_bytes > data_size - t->offset)
            return kvu_fail(err, KVP_ERR_FORMAT,
                            "%s: tensor '%s' data (offset %llu, %llu bytes) runs past the end of "
                            "the file (data section holds %llu bytes)",
                            g->path, t->name, (unsigned long long)t->offset,
                            (unsigned long long)t->n_bytes, (unsigned long long)data_size);
        t->data = g->base + data_start + t->offset;
        g->sorted[i] = i;
    }
    if (g->n_tensors > 1) {
        int64_t *tmp = malloc((size_t)g->n_tensors * sizeof *tmp);
        if (!tmp) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", g->path);
        sort_indices(g->sorted, tmp, g->n_tensors, g);
        free(tmp);
        for (int64_t i = 1; i < g->n_tensors; i++)
            if (!strcmp(g->tensors[g->sorted[i]].name, g->tensors[g->sorted[i - 1]].name))
                return kvu_fail(err, KVP_ERR_FORMAT, "%s: duplicate tensor name '%s'", g->path,
                                g->tensors[g->sorted[i]].name);
    }
    return KVP_OK;
}

kvp_status kvgguf_open(const char *path, bool use_mmap, gguf_file **out, kvp_error *err) {
    *out = NULL;
    gguf_file *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", path);
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        kvp_status s = kvu_fail(err, KVP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        kvgguf_close(g);
        return s;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        kvgguf_close(g);
        return kvu_fail(err, KVP_ERR_IO, "%s: not a regular file", path);
    }
    g->size = (size_t)st.st_size;
    if (g->size == 0) {
        close(fd);
        kvgguf_close(g);
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: empty file (not a GGUF file)", path);
    }
    kvp_status s = KVP_OK;
    if (use_mmap) {
        void *m = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            s = kvu_fail(err, KVP_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
        } else {
            g->base = m;
            g->mapped = true;
        }
    } else {
        uint8_t *buf = malloc(g->size);
        if (!buf) {
            s = kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, g->size);
        } else {
            size_t got = 0;
            while (got < g->size) {
                ssize_t r = read(fd, buf + got, g->size - got);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) break;
                got += (size_t)r;
            }
            g->base = buf;
            if (got != g->size)
                s = kvu_fail(err, KVP_ERR_IO, "%s: read failed", path);
        }
    }
    close(fd);
    if (s == KVP_OK) s = parse(g, err);
    if (s != KVP_OK) {
        kvgguf_close(g);
        return s;
    }
    *out = g;
    return KVP_OK;
}

void kvgguf_close(gguf_file *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) {
        free(g->kvs[i].key);
        free(g->kvs[i].str_offs);
        free(g->kvs[i].aligned);
    }
    for (int64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kvs);
    free(g->tensors);
    free(g->sorted);
    if (g->base) {
        if (g->mapped)
            munmap((void *)g->base, g->size);
        else
            free((void *)g->base);
    }
    free(g->path);
    free(g);
}

const char *kvgguf_path(const gguf_file *g) { return g->path; }
uint32_t kvgguf_version(const gguf_file *g) { return g->version; }
int64_t kvgguf_n_kv(const gguf_file *g) { return g->n_kv; }

int64_t kvgguf_find_key(const gguf_file *g, const char *key) {
    for (int64_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kvs[i].key, key)) return i;
    return -1;
}

const char *kvgguf_key(const gguf_file *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? g->kvs[i].key : NULL;
}

gguf_type kvgguf_kv_type(const gguf_file *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? g->kvs[i].type : GGUF_TYPE_COUNT;
}

static const gguf_kv *find(const gguf_file *g, const char *key) {
    int64_t i = kvgguf_find_key(g, key);
    return i < 0 ? NULL : &g->kvs[i];
}

/* Integer value of a scalar of any integer type; false for other types. */
static bool kv_int(const gguf_kv *kv, bool *neg, uint64_t *mag) {
    const uint8_t *d = kv->data;
    int64_t sv = 0;
    uint64_t uv = 0;
    bool is_signed = false;
    switch (kv->type) {
    case GGUF_TYPE_UINT8: uv = d[0]; break;
    case GGUF_TYPE_INT8: { int8_t v; memcpy(&v, d, 1); sv = v; is_signed = true; break; }
    case GGUF_TYPE_UINT16: { uint16_t v; memcpy(&v, d, 2); uv = v; break; }
    case GGUF_TYPE_INT16: { int16_t v; memcpy(&v, d, 2); sv = v; is_signed = true; break; }
    case GGUF_TYPE_UINT32: { uint32_t v; memcpy(&v, d, 4); uv = v; break; }
    case GGUF_TYPE_INT32: { int32_t v; memcpy(&v, d, 4); sv = v; is_signed = true; break; }
    case GGUF_TYPE_UINT64: memcpy(&uv, d, 8); break;
    case GGUF_TYPE_INT64: memcpy(&sv, d, 8); is_signed = true; break;
    default: return false;
    }
    if (is_signed) {
        *neg = sv < 0;
        *mag = sv < 0 ? (uint64_t)(-(sv + 1)) + 1 : (uint64_t)sv;
    } else {
        *neg = false;
        *mag = uv;
    }
    return true;
}

bool kvgguf_get_u32(const gguf_file *g, const char *key, uint32_t *out) {
    const gguf_kv *kv = find(g, key);
    bool neg;
    uint64_t mag;
    if (!kv || !kv_int(kv, &neg, &mag) || neg || mag > UINT32_MAX) return false;
    *out = (uint32_t)mag;
    return true;
}

bool kvgguf_get_i64(const gguf_file *g, const char *key, int64_t *out) {
    const gguf_kv *kv = find(g, key);
    bool neg;
    uint64_t mag;
    if (!kv || !kv_int(kv, &neg, &mag)) return false;
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1) return false;
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)mag;
    }
    return true;
}

bool kvgguf_get_f32(const gguf_file *g, const char *key, float *out) {
    const gguf_kv *kv = find(g, key);
    if (!kv) return false;
    if (kv->type == GGUF_TYPE_FLOAT32) {
        memcpy(out, kv->data, 4);
        return true;
    }
    if (kv->type == GGUF_TYPE_FLOAT64) {
        double d;
        memcpy(&d, kv->data, 8);
        *out = (float)d;
        return true;
    }
    return false;
}

bool kvgguf_get_bool(const gguf_file *g, const char *key, bool *out) {
    const gguf_kv *kv = find(g, key);
    if (!kv || kv->type != GGUF_TYPE_BOOL) return false;
    *out = kv->data[0] != 0;
    return true;
}

const char *kvgguf_get_str(const gguf_file *g, const char *key, size_t *len) {
    const gguf_kv *kv = find(g, key);
    if (!kv || kv->type != GGUF_TYPE_STRING) return NULL;
    if (len) *len = (size_t)kv->len;
    return (const char *)kv->data;
}

bool kvgguf_get_arr_info(const gguf_file *g, const char *key, gguf_type *elem_type, uint64_t *n) {
    const gguf_kv *kv = find(g, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY) return false;
    if (elem_type) *elem_type = kv->elem_type;
    if (n) *n = kv->len;
    return true;
}

const void *kvgguf_get_arr_data(const gguf_file *g, const char *key) {
    const gguf_kv *kv = find(g, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY || kv->elem_type == GGUF_TYPE_STRING) return NULL;
    return kv->data;
}

const char *kvgguf_get_arr_str(const gguf_file *g, const char *key, uint64_t j, size_t *len) {
    const gguf_kv *kv = find(g, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY || kv->elem_type != GGUF_TYPE_STRING || j >= kv->len)
        return NULL;
    uint64_t sl;
    memcpy(&sl, g->base + kv->str_offs[j], 8);
    if (len) *len = (size_t)sl;
    return (const char *)(g->base + kv->str_offs[j] + 8);
}

int64_t kvgguf_n_tensors(const gguf_file *g) { return g->n_tensors; }

const gguf_tensor_info *kvgguf_tensor(const gguf_file *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i].info : NULL;
}

const gguf_tensor_info *kvgguf_find_tensor(const gguf_file *g, const char *name) {
    int64_t lo = 0, hi = g->n_tensors;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->tensors[g->sorted[mid]].name, name);
        if (c == 0) return &g->tensors[g->sorted[mid]].info;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
} wbuf;

static bool wb_put(wbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) return false;
        b->p = np;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
    return true;
}

static bool wb_str(wbuf *b, const char *s, size_t n) {
    uint64_t len = n;
    return wb_put(b, &len, 8) && wb_put(b, s, n);
}

typedef struct wkv {
    char *key;
    wbuf val; /* type + value, serialized */
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint32_t type;
    const void *data;
    uint64_t n_bytes;
} wtensor;

struct gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *tensors;
    size_t n_t, cap_t;
};

gguf_writer *kvgguf_writer_new(void) { return calloc(1, sizeof(gguf_writer)); }

void kvgguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].val.p);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->tensors[i].name);
    free(w->kvs);
    free(w->tensors);
    free(w);
}

/* Returns the entry for key (replacing an earlier value), with val emptied. */
static wkv *w_slot(gguf_writer *w, const char *key) {
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kvs[i].key, key)) {
            w->kvs[i].val.n = 0;
            return &w->kvs[i];
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        wkv *nk = realloc(w->kvs, cap * sizeof *nk);
        if (!nk) return NULL;
        w->kvs = nk;
        w->cap_kv = cap;
    }
    wkv *kv = &w->kvs[w->n_kv];
    memset(kv, 0, sizeof *kv);
    if (!(kv->key = strdup(key))) return NULL;
    w->n_kv++;
    return kv;
}

static kvp_status w_scalar(gguf_writer *w, const char *key, gguf_type t, const void *v) {
    if (!w || !key) return KVP_ERR_INVALID_ARG;
    wkv *kv = w_slot(w, key);
    uint32_t tt = t;
    if (!kv || !wb_put(&kv->val, &tt, 4) || !wb_put(&kv->val, v, scalar_size(t)))
        return KVP_ERR_NOMEM;
    return KVP_OK;
}

kvp_status kvgguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    return w_scalar(w, key, GGUF_TYPE_UINT32, &v);
}
kvp_status kvgguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
    return w_scalar(w, key, GGUF_TYPE_INT32, &v);
}
kvp_status kvgguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    return w_scalar(w, key, GGUF_TYPE_FLOAT32, &v);
}
kvp_status kvgguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return w_scalar(w, key, GGUF_TYPE_BOOL, &b);
}

kvp_status kvgguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    if (!w || !key || !v) return KVP_ERR_INVALID_ARG;
    wkv *kv = w_slot(w, key);
    uint32_t tt = GGUF_TYPE_STRING;
    if (!kv || !wb_put(&kv->val, &tt, 4) || !wb_str(&kv->val, v, strlen(v))) return KVP_ERR_NOMEM;
    return KVP_OK;
}

kvp_status kvgguf_writer_set_arr(gguf_writer *w, const char *key, gguf_type elem_type,
                               const void *data, uint64_t n) {
    size_t es = scalar_size(elem_type);
    if (!w || !key || es == 0 || (n && !data) || n > SIZE_MAX / es) return KVP_ERR_INVALID_ARG;
    wkv *kv = w_slot(w, key);
    uint32_t tt = GGUF_TYPE_ARRAY, et = elem_type;
    if (!kv || !wb_put(&kv->val, &tt, 4) || !wb_put(&kv->val, &et, 4) ||
        !wb_put(&kv->val, &n, 8) || !wb_put(&kv->val, data, (size_t)n * es))
        return KVP_ERR_NOMEM;
    return KVP_OK;
}

kvp_status kvgguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                                   const size_t *lens, uint64_t n) {
    if (!w || !key || (n && !strs)) return KVP_ERR_INVALID_ARG;
    for (uint64_t j = 0; j < n; j++)
        if (!strs[j] && (!lens || lens[j])) return KVP_ERR_INVALID_ARG;
    wkv *kv = w_slot(w, key);
    uint32_t tt = GGUF_TYPE_ARRAY, et = GGUF_TYPE_STRING;
    if (!kv || !wb_put(&kv->val, &tt, 4) || !wb_put(&kv->val, &et, 4) || !wb_put(&kv->val, &n, 8))
        return KVP_ERR_NOMEM;
    for (uint64_t j = 0; j < n; j++) {
        size_t l = lens ? lens[j] : strlen(strs[j]);
        if (!wb_str(&kv->val, strs[j] ? strs[j] : "", l)) return KVP_ERR_NOMEM;
    }
    return KVP_OK;
}

kvp_status kvgguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t n_dims,
                                  const uint64_t *ne, uint32_t type, const void *data,
                                  uint64_t n_bytes) {
    if (!w || !name || n_dims < 1 || n_dims > GGUF_MAX_DIMS || !ne) return KVP_ERR_INVALID_ARG;
    uint64_t blck, bytes, n_el = 1;
    if (!ggml_type_layout(type, &blck, &bytes)) return KVP_ERR_INVALID_ARG;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] == 0) return KVP_ERR_INVALID_ARG;
        n_el *= ne[d];
    }
    if (ne[0] % blck || n_el / blck * bytes != n_bytes || (n_bytes && !data))
        return KVP_ERR_INVALID_ARG;
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->tensors[i].name, name)) return KVP_ERR_INVALID_ARG;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *nt = realloc(w->tensors, cap * sizeof *nt);
        if (!nt) return KVP_ERR_NOMEM;
        w->tensors = nt;
        w->cap_t = cap;
    }
    wtensor *t = &w->tensors[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return KVP_ERR_NOMEM;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->type = type;
    t->data = data;
    t->n_bytes = n_bytes;
    w->n_t++;
    return KVP_OK;
}

static uint64_t align_up(uint64_t x) {
    return (x + GGUF_DEFAULT_ALIGNMENT - 1) / GGUF_DEFAULT_ALIGNMENT * GGUF_DEFAULT_ALIGNMENT;
}

static bool write_all(FILE *f, const void *d, size_t n) { return fwrite(d, 1, n, f) == n; }

kvp_status kvgguf_writer_write(gguf_writer *w, const char *path, kvp_error *err) {
    if (!w || !path) return kvu_fail(err, KVP_ERR_INVALID_ARG, "gguf writer: no writer or path");
    wbuf hdr = {0};
    uint32_t version = 3;
    uint64_t n_t = w->n_t, n_kv = w->n_kv;
    bool ok = wb_put(&hdr, GGUF_MAGIC, 4) && wb_put(&hdr, &version, 4) && wb_put(&hdr, &n_t, 8) &&
              wb_put(&hdr, &n_kv, 8);
    for (size_t i = 0; ok && i < w->n_kv; i++)
        ok = wb_str(&hdr, w->kvs[i].key, strlen(w->kvs[i].key)) &&
             wb_put(&hdr, w->kvs[i].val.p, w->kvs[i].val.n);
    uint64_t off = 0;
    for (size_t i = 0; ok && i < w->n_t; i++) {
        const wtensor *t = &w->tensors[i];
        ok = wb_str(&hdr, t->name, strlen(t->name)) && wb_put(&hdr, &t->n_dims, 4) &&
             wb_put(&hdr, t->ne, 8 * (size_t)t->n_dims) && wb_put(&hdr, &t->type, 4) &&
             wb_put(&hdr, &off, 8);
        off = align_up(off + t->n_bytes);
    }
    static const uint8_t zeros[GGUF_DEFAULT_ALIGNMENT];
    if (ok) ok = wb_put(&hdr, zeros, align_up(hdr.n) - hdr.n);
    if (!ok) {
        free(hdr.p);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory building the GGUF header", path);
    }
    /* written in full or not at all (util/file.h) */
    kvf_atomic out;
    kvp_status s = kvf_atomic_open(&out, path, err);
    if (s != KVP_OK) {
        free(hdr.p);
        return s;
    }
    FILE *f = out.f;
    ok = write_all(f, hdr.p, hdr.n);
    free(hdr.p);
    for (size_t i = 0; ok && i < w->n_t; i++) {
        const wtensor *t = &w->tensors[i];
        ok = write_all(f, t->data, (size_t)t->n_bytes);
        if (ok)
            ok = write_all(f, zeros, (size_t)(align_up(t->n_bytes) - t->n_bytes));
    }
    if (!ok) {
        s = kvu_fail(err, KVP_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        kvf_atomic_abort(&out);
        return s;
    }
    return kvf_atomic_commit(&out, err);
}
