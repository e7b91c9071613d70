/* Cache files (kvp_cache_save / kvp_cache_load): a cache saved after a
 * prompt and loaded in a new process continues exactly where it was (the
 * ids of a question appended and answered equal an uninterrupted run's),
 * for the full cache and pruned ones, every K/V element type; a corrupt,
 * truncated or foreign file, or another model's cache, is a clear error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvprune.h"
#include "test_util.h"

#define MODEL "models/kvp-mini"

static const char *document =
    "The archive kept its maps in a long cold room. Every morning the keeper walked the shelves and "
    "counted the rolls, and every evening she counted them again. The river charts were the oldest; "
    "the harbor plans were the newest. One chart showed a lantern on an island that no longer exists. "
    "The secret number of the lantern is 4817. Nobody knew who had drawn it, but the ink was copper "
    "brown and the paper smelled of smoke. Visitors asked about the meadow maps and the granite "
    "quarries, and the keeper answered every question from memory.";

static kvp_model *model;

static int32_t *tokens(const char *text, bool bos, size_t *n) {
    kvp_tokenize_params tp = kvp_tokenize_default_params();
    tp.add_special = bos;
    int32_t *ids = NULL;
    kvp_error err = {0};
    CHECK_MSG(kvp_tokenize(kvp_model_tokenizer(model), text, strlen(text), &tp, &ids, n, &err) == KVP_OK, "%s",
              err.message);
    return ids;
}

/* prompt (no tokens generated), then the question appended and answered */
static kvp_status read_prompt(kvp_cache *c, const int32_t *p, size_t n) {
    kvp_gen_params gp = kvp_gen_default_params();
    gp.max_new_tokens = 0;
    gp.prefill_chunk = 64;
    kvp_gen_result r;
    kvp_error err = {0};
    kvp_status s = kvp_generate(model, c, p, n, &gp, &r, &err);
    CHECK_MSG(s == KVP_OK, "%s", err.message);
    kvp_gen_result_free(&r);
    return s;
}

static int32_t *answer(kvp_cache *c, const int32_t *q, size_t n, size_t *n_out) {
    kvp_gen_params gp = kvp_gen_default_params();
    gp.max_new_tokens = 12;
    gp.ignore_eos = true;
    gp.keep_cache = true;
    gp.prefill_chunk = 64;
    kvp_gen_result r;
    kvp_error err = {0};
    if (kvp_generate(model, c, q, n, &gp, &r, &err) != KVP_OK) {
        CHECK_MSG(0, "%s", err.message);
        return NULL;
    }
    *n_out = r.n_ids;
    return r.ids; /* freed by the caller */
}

static const char *question = "<|end|>\n<|user|>\nWhat is the secret number of the lantern?<|end|>\n<|assistant|>\n";

/* The child: loads the file, answers, prints the ids. */
static int child(const char *path) {
    kvp_error err = {0};
    kvp_cache *c = NULL;
    if (kvp_cache_load(model, path, &c, NULL, NULL, NULL, &err)) {
        fprintf(stderr, "load: %s\n", err.message);
        return 1;
    }
    size_t nq = 0, na = 0;
    int32_t *q = tokens(question, false, &nq);
    int32_t *a = answer(c, q, nq, &na);
    for (size_t i = 0; a && i < na; i++) printf("%s%d", i ? "," : "", a[i]);
    printf("\n");
    free(a);
    kvp_free(q);
    kvp_cache_free(c);
    return a ? 0 : 1;
}

static void write_bytes(const char *path, const char *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(d, 1, n, f);
        fclose(f);
    }
}

/* alloc: adaptive heads and pyramid layers (the file keeps the options,
 * and the streams' own lengths) */
static void round_trip(const char *method, int nr, int nh, double ratio, kvp_kv_type kt, bool alloc,
                       const char *dir) {
    kvp_cache_params cp = kvp_cache_default_params();
    if (alloc) {
        cp.budget_alloc = KVP_BUDGET_ADAPTIVE;
        cp.safeguard = 0.3;
        cp.layer_alloc = KVP_LAYER_PYRAMID;
        cp.pyramid_beta = 6.0;
    }
    cp.method = method;
    cp.num_recent = nr;
    cp.num_heavy = nh;
    cp.cache_ratio = ratio;
    cp.kv_type = kt;
    kvp_error err = {0};
    kvp_cache *a = NULL, *b = NULL;
    CHECK(kvp_cache_new(model, &cp, &a, &err) == KVP_OK);
    CHECK(kvp_cache_new(model, &cp, &b, &err) == KVP_OK);
    size_t np = 0, nq = 0, n_ref = 0;
    int32_t *p = tokens(document, true, &np);
    int32_t *q = tokens(question, false, &nq);
    if (!a || !b || !p || !q) return;
    /* uninterrupted */
    read_prompt(a, p, np);
    int32_t *ref = answer(a, q, nq, &n_ref);
    /* saved after the prompt, continued in a new process */
    read_prompt(b, p, np);
    char path[600], cmd[1400];
    snprintf(path, sizeof path, "%s/%s-%s%s.kvc", dir, method, kvp_kv_type_name(kt), alloc ? "-alloc" : "");
    int32_t hist[2] = {7, 9};
    CHECK_MSG(kvp_cache_save(model, b, path, hist, 2, "{\"note\":\"app\"}", &err) == KVP_OK, "%s", err.message);
    char self[512];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    self[sl > 0 ? sl : 0] = '\0';
    snprintf(cmd, sizeof cmd, "'%s' --continue '%s'", self, path);
    int status = 0;
    char *out = kvp_test_capture(cmd, &status);
    char want[4096] = "";
    size_t off = 0;
    for (size_t i = 0; ref && i < n_ref && off < sizeof want - 16; i++)
        off += (size_t)snprintf(want + off, sizeof want - off, "%s%d", i ? "," : "", ref[i]);
    snprintf(want + off, sizeof want - off, "\n");
    CHECK_MSG(status == 0 && out && !strcmp(out, want), "%s %s: new process '%s' vs uninterrupted '%s'", method,
              kvp_kv_type_name(kt), out ? out : "(none)", want);
    free(out);
    /* in this process: the same stats, the history and application data */
    kvp_cache *c = NULL;
    int32_t *h = NULL;
    size_t nh_ = 0;
    char *app = NULL;
    CHECK_MSG(kvp_cache_load(model, path, &c, &h, &nh_, &app, &err) == KVP_OK, "%s", err.message);
    if (c) {
        kvp_cache_stats s1, s2;
        kvp_cache_get_stats(b, &s1);
        kvp_cache_get_stats(c, &s2);
        CHECK(s1.n_seen == s2.n_seen && s1.n_kept_total == s2.n_kept_total && s1.kv_bytes == s2.kv_bytes &&
              s1.num_recent == s2.num_recent && s1.num_heavy == s2.num_heavy);
        for (int l = 0; l < s1.n_layer; l++) {
            kvp_cache_layer_stats l1, l2;
            CHECK(kvp_cache_get_layer_stats(b, l, &l1, &err) == KVP_OK &&
                  kvp_cache_get_layer_stats(c, l, &l2, &err) == KVP_OK);
            CHECK(l1.num_heavy == l2.num_heavy && l1.min_kept == l2.min_kept && l1.max_kept == l2.max_kept &&
                  l1.total_kept == l2.total_kept);
            if (alloc) CHECK(l1.num_heavy != s1.num_heavy || s1.n_layer == 1); /* pyramid */
        }
        CHECK(nh_ == 2 && h[0] == 7 && h[1] == 9 && app && !strcmp(app, "{\"note\":\"app\"}"));
        for (int l = 0; l < s1.n_layer; l++)
            for (int st = 0; st < s1.n_streams; st++) {
                const int32_t *p1, *p2;
                size_t n1, n2;
                kvp_cache_kept_positions(b, l, st, &p1, &n1, NULL);
                kvp_cache_kept_positions(c, l, st, &p2, &n2, NULL);
                CHECK(n1 == n2 && !memcmp(p1, p2, n1 * sizeof *p1));
            }
    }
    kvp_free(h);
    kvp_free(app);
    kvp_cache_free(c);
    free(ref);
    kvp_free(p);
    kvp_free(q);
    kvp_cache_free(a);
    kvp_cache_free(b);
}

int main(int argc, char **argv) {
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = 1;
    kvp_error err = {0};
    if (kvp_model_load(MODEL, &mp, &model, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    if (argc == 3 && !strcmp(argv[1], "--continue")) {
        int rc = child(argv[2]);
        kvp_model_free(model);
        return rc;
    }
    char dir[] = "/tmp/kvp_cache_file_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    round_trip("full", -1, -1, -1, KVP_KV_F16, false, dir);
    round_trip("snapkv", 8, 24, -1, KVP_KV_F16, false, dir);
    round_trip("kvcVK", 16, -1, 0.25, KVP_KV_F32, false, dir);
    round_trip("h2o", 4, 12, -1, KVP_KV_BF16, false, dir);
    round_trip("snapkv", 8, 24, -1, KVP_KV_F16, true, dir);
    round_trip("kvcVK", 16, -1, 0.25, KVP_KV_F32, true, dir);

    /* errors */
    char path[600], bad[600];
    snprintf(path, sizeof path, "%s/snapkv-f16.kvc", dir);
    snprintf(bad, sizeof bad, "%s/bad.kvc", dir);
    char *data = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        data = malloc(len);
        if (data && fread(data, 1, len, f) != len) len = 0;
        fclose(f);
    }
    CHECK(data && len > 1000);
    kvp_cache *c = NULL;
    if (data) {
        data[len / 2] ^= 0x10; /* one flipped bit */
        write_bytes(bad, data, len);
        CHECK(kvp_cache_load(model, bad, &c, NULL, NULL, NULL, &err) == KVP_ERR_FORMAT && !c);
        CHECK_MSG(strstr(err.message, "corrupt") && strstr(err.message, bad), "%s", err.message);
        data[len / 2] ^= 0x10;
        write_bytes(bad, data, len / 3); /* truncated */
        CHECK(kvp_cache_load(model, bad, &c, NULL, NULL, NULL, &err) == KVP_ERR_FORMAT && !c);
        write_bytes(bad, "hello, world", 12); /* foreign */
        CHECK(kvp_cache_load(model, bad, &c, NULL, NULL, NULL, &err) == KVP_ERR_FORMAT && !c);
        CHECK_MSG(strstr(err.message, "not a kvprune cache file"), "%s", err.message);
        memcpy(data + 8, "\x63\x00\x00\x00", 4); /* a future version */
        write_bytes(bad, data, len);
        CHECK(kvp_cache_load(model, bad, &c, NULL, NULL, NULL, &err) == KVP_ERR_UNSUPPORTED && !c);
        CHECK_MSG(strstr(err.message, "version 99"), "%s", err.message);
    }
    free(data);
    snprintf(bad, sizeof bad, "%s/missing.kvc", dir);
    CHECK(kvp_cache_load(model, bad, &c, NULL, NULL, NULL, &err) == KVP_ERR_IO && !c);
    /* another model: same tokenizer, other weights */
    kvp_model *other = NULL;
    CHECK(kvp_model_load("tests/data/eval/tiny-model", &mp, &other, &err) == KVP_OK);
    if (other) {
        CHECK(kvp_cache_load(other, path, &c, NULL, NULL, NULL, &err) == KVP_ERR_INVALID_ARG && !c);
        CHECK_MSG(strstr(err.message, "another model"), "%s", err.message);
        kvp_model_free(other);
    }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    kvp_model_free(model);
    return kvp_test_done("test_cache_file");
}
