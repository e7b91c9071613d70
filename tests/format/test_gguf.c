/* GGUF reader/writer: a round trip through every value type, then corrupt
 * files that must each fail with a message naming the file and the problem. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/gguf.h"
#include "test_util.h"

static char tmpdir[256];

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", tmpdir, name); }

static void write_bytes(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(d, 1, n, f) == n);
    fclose(f);
}

/* Opens bytes as a GGUF and expects failure with `needle` in the message. */
static void expect_fail(const char *label, const void *d, size_t n, const char *needle) {
    char p[512];
    path_of(p, sizeof p, "bad.gguf");
    write_bytes(p, d, n);
    for (int mm = 0; mm < 2; mm++) {
        gguf_file *g = NULL;
        kvp_error err = {0};
        kvp_status s = kvgguf_open(p, mm == 1, &g, &err);
        CHECK_MSG(s != KVP_OK && g == NULL, "%s: opened", label);
        CHECK_MSG(strstr(err.message, needle) != NULL, "%s: message '%s' lacks '%s'", label,
                  err.message, needle);
        CHECK_MSG(strstr(err.message, p) != NULL, "%s: message '%s' lacks the path", label,
                  err.message);
        kvgguf_close(g);
    }
}

/* Little builder for hand-made headers. */
typedef struct { uint8_t b[4096]; size_t n; } buf;
static void put(buf *b, const void *d, size_t n) { memcpy(b->b + b->n, d, n); b->n += n; }
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }
static void header(buf *b, uint32_t version, uint64_t n_t, uint64_t n_kv) {
    b->n = 0;
    put(b, "GGUF", 4);
    put_u32(b, version);
    put_u64(b, n_t);
    put_u64(b, n_kv);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/kvp_test_gguf_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir);
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    char p[512];
    path_of(p, sizeof p, "ok.gguf");

    /* Round trip. */
    gguf_writer *w = kvgguf_writer_new();
    float t0[6] = {1, 2, 3, 4, 5, 6};
    uint16_t t1[64];
    for (int i = 0; i < 64; i++) t1[i] = (uint16_t)(0x3c00 + i);
    int32_t arr_i[3] = {-1, 7, 1 << 30};
    const char *strs[3] = {"a", "", "hello \xe2\x96\x81world"};
    uint64_t ne0[2] = {3, 2}, ne1[1] = {64};
    CHECK(kvgguf_writer_set_str(w, "general.architecture", "llama") == KVP_OK);
    CHECK(kvgguf_writer_set_u32(w, "llama.block_count", 12) == KVP_OK);
    CHECK(kvgguf_writer_set_i32(w, "neg", -5) == KVP_OK);
    CHECK(kvgguf_writer_set_f32(w, "eps", 1e-5f) == KVP_OK);
    CHECK(kvgguf_writer_set_bool(w, "flag", true) == KVP_OK);
    CHECK(kvgguf_writer_set_u32(w, "replaced", 1) == KVP_OK);
    CHECK(kvgguf_writer_set_u32(w, "replaced", 2) == KVP_OK);
    CHECK(kvgguf_writer_set_arr(w, "ints", GGUF_TYPE_INT32, arr_i, 3) == KVP_OK);
    CHECK(kvgguf_writer_set_arr_str(w, "strs", strs, NULL, 3) == KVP_OK);
    CHECK(kvgguf_writer_set_arr(w, "bad", GGUF_TYPE_STRING, arr_i, 3) == KVP_ERR_INVALID_ARG);
    CHECK(kvgguf_writer_add_tensor(w, "t0", 2, ne0, GGML_TYPE_F32, t0, sizeof t0) == KVP_OK);
    CHECK(kvgguf_writer_add_tensor(w, "t1", 1, ne1, GGML_TYPE_F16, t1, sizeof t1) == KVP_OK);
    CHECK(kvgguf_writer_add_tensor(w, "t1", 1, ne1, GGML_TYPE_F16, t1, sizeof t1) == KVP_ERR_INVALID_ARG);
    CHECK(kvgguf_writer_add_tensor(w, "t2", 1, ne1, GGML_TYPE_F16, t1, 10) == KVP_ERR_INVALID_ARG);
    CHECK(kvgguf_writer_add_tensor(w, "t3", 1, ne1, 77, t1, sizeof t1) == KVP_ERR_INVALID_ARG);
    kvp_error err = {0};
    CHECK(kvgguf_writer_write(w, p, &err) == KVP_OK);
    kvgguf_writer_free(w);

    for (int mm = 0; mm < 2; mm++) {
        gguf_file *g = NULL;
        CHECK(kvgguf_open(p, mm == 1, &g, &err) == KVP_OK);
        if (!g) break;
        CHECK_EQ_INT(kvgguf_version(g), 3);
        CHECK_EQ_INT(kvgguf_n_kv(g), 8);
        size_t len;
        const char *s = kvgguf_get_str(g, "general.architecture", &len);
        CHECK(s && len == 5 && !memcmp(s, "llama", 5));
        uint32_t u;
        CHECK(kvgguf_get_u32(g, "llama.block_count", &u) && u == 12);
        CHECK(kvgguf_get_u32(g, "replaced", &u) && u == 2);
        CHECK(!kvgguf_get_u32(g, "neg", &u));
        int64_t i64;
        CHECK(kvgguf_get_i64(g, "neg", &i64) && i64 == -5);
        CHECK(!kvgguf_get_i64(g, "eps", &i64));
        float f;
        CHECK(kvgguf_get_f32(g, "eps", &f) && f == 1e-5f);
        bool b;
        CHECK(kvgguf_get_bool(g, "flag", &b) && b);
        CHECK(!kvgguf_get_bool(g, "missing", &b));
        CHECK(kvgguf_find_key(g, "missing") == -1);
        CHECK(kvgguf_kv_type(g, kvgguf_find_key(g, "strs")) == GGUF_TYPE_ARRAY);
        gguf_type et;
        uint64_t n;
        CHECK(kvgguf_get_arr_info(g, "ints", &et, &n) && et == GGUF_TYPE_INT32 && n == 3);
        const int32_t *ai = kvgguf_get_arr_data(g, "ints");
        CHECK(ai && ai[0] == -1 && ai[1] == 7 && ai[2] == 1 << 30);
        CHECK(kvgguf_get_arr_info(g, "strs", &et, &n) && et == GGUF_TYPE_STRING && n == 3);
        CHECK(kvgguf_get_arr_data(g, "strs") == NULL);
        for (int j = 0; j < 3; j++) {
            s = kvgguf_get_arr_str(g, "strs", (uint64_t)j, &len);
            CHECK(s && len == strlen(strs[j]) && !memcmp(s, strs[j], len));
        }
        CHECK(kvgguf_get_arr_str(g, "strs", 3, &len) == NULL);
        CHECK_EQ_INT(kvgguf_n_tensors(g), 2);
        const gguf_tensor_info *ti = kvgguf_find_tensor(g, "t0");
        CHECK(ti && ti->n_dims == 2 && ti->ne[0] == 3 && ti->ne[1] == 2 && ti->type == GGML_TYPE_F32 &&
              ti->n_bytes == sizeof t0 && !memcmp(ti->data, t0, sizeof t0));
        CHECK(((uintptr_t)ti->data - (uintptr_t)kvgguf_tensor(g, 0)->data) % 32 == 0);
        ti = kvgguf_find_tensor(g, "t1");
        CHECK(ti && ti->type == GGML_TYPE_F16 && ti->offset % 32 == 0 && !memcmp(ti->data, t1, sizeof t1));
        CHECK(kvgguf_find_tensor(g, "t9") == NULL);
        kvgguf_close(g);
    }

    /* Corruptions of the valid file. */
    size_t n_ok;
    uint8_t *ok = kvp_test_read_file(p, &n_ok);
    CHECK(ok != NULL);
    if (ok) {
        uint8_t *c = malloc(n_ok);
        memcpy(c, ok, n_ok);
        c[0] = 'X';
        expect_fail("magic", c, n_ok, "bad magic");
        memcpy(c, ok, n_ok);
        c[4] = 9;
        expect_fail("version", c, n_ok, "version 9");
        memcpy(c, ok, n_ok);
        c[4] = 1;
        expect_fail("version1", c, n_ok, "version 1");
        /* Every truncation must fail cleanly (data truncations included). */
        for (size_t cut = 0; cut < n_ok; cut += (cut < 400 ? 1 : 7)) {
            gguf_file *g = NULL;
            char bp[512];
            path_of(bp, sizeof bp, "cut.gguf");
            write_bytes(bp, ok, cut);
            kvp_error e = {0};
            CHECK_MSG(kvgguf_open(bp, true, &g, &e) != KVP_OK, "truncated to %zu bytes opened", cut);
            kvgguf_close(g);
        }
        free(c);
        expect_fail("empty", ok, 0, "empty");
        expect_fail("truncated", ok, n_ok - 5, "past the end");
        expect_fail("truncated-header", ok, 30, "truncated");
        free(ok);
    }

    buf b;
    header(&b, 3, 0, (uint64_t)1 << 60);
    expect_fail("absurd kv count", b.b, b.n, "metadata count");
    header(&b, 3, (uint64_t)1 << 60, 0);
    expect_fail("absurd tensor count", b.b, b.n, "tensor count");
    header(&b, 3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, 9);
    put_u32(&b, GGUF_TYPE_UINT32);
    put_u64(&b, (uint64_t)1 << 61);
    expect_fail("absurd array", b.b, b.n, "claims");
    header(&b, 3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, 9);
    put_u32(&b, GGUF_TYPE_STRING);
    put_u64(&b, (uint64_t)1 << 40);
    expect_fail("absurd string array", b.b, b.n, "claims");
    header(&b, 3, 0, 1);
    put_u64(&b, (uint64_t)1 << 50);
    for (int k = 0; k < 16; k++) b.b[b.n++] = 0;
    expect_fail("absurd key length", b.b, b.n, "truncated");
    header(&b, 3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, 42);
    put_u32(&b, 0);
    expect_fail("unknown value type", b.b, b.n, "unknown value type 42");
    header(&b, 3, 0, 1);
    put_str(&b, "k");
    put_u32(&b, 9);
    put_u32(&b, 9);
    put_u64(&b, 1);
    expect_fail("nested array", b.b, b.n, "nested");
    header(&b, 3, 0, 1);
    put_str(&b, "general.alignment");
    put_u32(&b, GGUF_TYPE_UINT32);
    put_u32(&b, 3);
    expect_fail("alignment", b.b, b.n, "alignment");

    /* Tensor infos. */
    struct { uint32_t type, n_dims; uint64_t ne0, off; const char *msg; } tc[] = {
        {99, 1, 4, 0, "unknown type 99"},
        {GGML_TYPE_F32, 5, 4, 0, "dimensions"},
        {GGML_TYPE_F32, 1, 0, 0, "invalid shape"},
        {GGML_TYPE_F32, 1, 4, 64, "past the end"},
        {GGML_TYPE_F32, 1, 4, 4, "not aligned"},
        {GGML_TYPE_Q8_0, 1, 4, 0, "multiple"},
        {GGML_TYPE_F32, 1, (uint64_t)1 << 62, 0, "impossibly large"},
        {GGML_TYPE_F32, 1, (uint64_t)1 << 40, 0, "past the end"},
    };
    for (size_t i = 0; i < sizeof tc / sizeof tc[0]; i++) {
        header(&b, 2, 1, 0);
        put_str(&b, "w");
        put_u32(&b, tc[i].n_dims);
        for (uint32_t d = 0; d < tc[i].n_dims; d++) put_u64(&b, d == 0 ? tc[i].ne0 : 1);
        put_u32(&b, tc[i].type);
        put_u64(&b, tc[i].off);
        while (b.n % 32) b.b[b.n++] = 0;
        for (int k = 0; k < 16; k++) b.b[b.n++] = 0; /* 16 data bytes */
        expect_fail(tc[i].msg, b.b, b.n, tc[i].msg);
    }
    header(&b, 3, 2, 0);
    for (int k = 0; k < 2; k++) {
        put_str(&b, "dup");
        put_u32(&b, 1);
        put_u64(&b, 1);
        put_u32(&b, GGML_TYPE_F32);
        put_u64(&b, 0);
    }
    while (b.n % 32) b.b[b.n++] = 0;
    for (int k = 0; k < 4; k++) b.b[b.n++] = 0;
    expect_fail("duplicate", b.b, b.n, "duplicate tensor name 'dup'");

    gguf_file *g = NULL;
    path_of(p, sizeof p, "missing.gguf");
    CHECK(kvgguf_open(p, true, &g, &err) == KVP_ERR_IO && strstr(err.message, p));

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CHECK(system(cmd) == 0);
    return kvp_test_done("test_gguf");
}
