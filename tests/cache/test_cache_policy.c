/* Method names, budgets and their errors, warnings, reset, positions, and
 * the memory bounds of the pruning cache (driven through the internal
 * contract with synthetic q/k/v; the numbers are the spec's rules applied
 * by hand). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "test_util.h"

static uint64_t rng_state = 88172645463325252ull;
static float frand(void) { return kvp_test_frand(&rng_state); }

enum { NL = 2, NH = 4, NKV = 2, D = 8 };

/* Feeds n tokens in blocks of `chunk` (0: one block) as prefill of a prompt
 * of n_total (0: decode). */
static kvp_status feed(kvp_cache *c, int n, int chunk, int n_total, kvp_error *err) {
    if (chunk <= 0) chunk = n;
    float *q = malloc(sizeof(float) * (size_t)chunk * NH * D);
    float *k = malloc(sizeof(float) * (size_t)chunk * NKV * D);
    float *v = malloc(sizeof(float) * (size_t)chunk * NKV * D);
    float *o = malloc(sizeof(float) * (size_t)chunk * NH * D);
    kvp_status st = KVP_OK;
    for (int s = 0; s < n && st == KVP_OK; s += chunk) {
        int m = n - s < chunk ? n - s : chunk;
        for (int i = 0; i < m * NH * D; i++) q[i] = frand();
        for (int i = 0; i < m * NKV * D; i++) k[i] = frand(), v[i] = frand();
        st = kvc_begin(c, m, n_total, err);
        for (int l = 0; l < NL && st == KVP_OK; l++)
            st = kvc_attend(c, l, q, k, v, o, NULL, err);
        if (st == KVP_OK) kvc_end(c);
    }
    free(q);
    free(k);
    free(v);
    free(o);
    return st;
}

/* The defaults, in per-query-head mode (one stream per query head), which
 * the counts below assume. */
static kvp_cache_params qparams(void) {
    kvp_cache_params p = kvp_cache_default_params();
    p.gqa_mode = KVP_GQA_PER_QUERY_HEAD;
    return p;
}

static kvp_cache *make(const char *method, int r, int h, kvp_error *err) {
    kvp_cache_params p = qparams();
    p.method = method;
    p.num_recent = r;
    p.num_heavy = h;
    kvp_cache *c = NULL;
    kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, err);
    return c;
}

static void test_names(void) {
    const char *const *names = kvp_cache_method_names();
    int n = 0;
    for (; names[n]; n++) {
        kvp_error err;
        kvp_cache *c = make(names[n], 2, 2, &err);
        CHECK_MSG(c != NULL, "%s: %s", names[n], err.message);
        kvp_cache_free(c);
    }
    CHECK_EQ_INT(n, 32); /* 7 + 5 kvc families x 5 spellings */
    const char *want[] = {"full", "sink", "h2o", "h2o_fullhist", "tova", "snapkv",
                          "snapkv_avgpool", "kvcV", "kvcV_p1+avgpool", "kvcK+tova",
                          "kvcVK_fullhist", "kvcVK_no_cross+maxpool", "kvcV_p1_fullhist"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        bool found = false;
        for (int j = 0; j < n; j++) found = found || strcmp(names[j], want[i]) == 0;
        CHECK_MSG(found, "%s missing", want[i]);
    }
    kvp_error err;
    kvp_cache *c = make("obcVK+tova", 2, 2, &err); /* alias */
    CHECK(c != NULL);
    kvp_cache_free(c);
    const char *bad[] = {"kvcX", "h2o+tova", "kvcV+tova_fullhist", "H2O", "kvc", "snapkv+maxpool"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        c = make(bad[i], 2, 2, &err);
        CHECK_MSG(c == NULL && err.status == KVP_ERR_INVALID_ARG, "%s accepted", bad[i]);
        CHECK(strstr(err.message, bad[i]) != NULL);
        CHECK(strstr(err.message, "kvcVK_no_cross_fullhist") != NULL); /* lists valid */
    }
}

static void test_budgets(void) {
    kvp_error err;
    kvp_cache_params p = kvp_cache_default_params();
    CHECK_STR(p.method, "full");
    CHECK(p.decode_evict && !p.streaming && p.num_recent == -1 && p.heavy_ratio < 0);
    CHECK(p.gqa_mode == KVP_GQA_PER_KV_HEAD);
    p.gqa_mode = KVP_GQA_PER_QUERY_HEAD;
    kvp_cache *c = NULL;
    /* full needs no budget */
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_OK);
    kvp_cache_free(c);
    /* missing / half budgets */
    p.method = "h2o";
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "num_recent") && strstr(err.message, "h2o"));
    p.num_recent = 4;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
    p.num_recent = -1;
    p.recent_ratio = 0.1;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "heavy_ratio") != NULL);
    p.heavy_ratio = 1.5;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
    p.heavy_ratio = 0.2;
    p.num_heavy = 3; /* mixed absolute and ratio */
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
    p.num_heavy = -1;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_OK);
    /* ratios: from the prompt length, again after a reset */
    CHECK(feed(c, 100, 0, 100, &err) == KVP_OK);
    kvp_cache_stats st;
    kvp_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.num_recent, 10);
    CHECK_EQ_INT(st.num_heavy, 20);
    CHECK_EQ_INT(st.n_kept_total, 30 * NL * NH);
    kvp_cache_reset(c);
    kvp_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.n_kept_total, 0);
    CHECK_EQ_INT(st.n_seen, 0);
    CHECK_EQ_INT(kvc_alloc_bytes(c), 0);
    CHECK(feed(c, 50, 0, 50, &err) == KVP_OK);
    kvp_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.num_recent, 5);
    CHECK_EQ_INT(st.num_heavy, 10);
    kvp_cache_free(c);
    /* fixed recent + cache ratio */
    p = qparams();
    p.method = "kvcVK";
    p.num_recent = 8;
    p.cache_ratio = 0.25;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_OK);
    CHECK(feed(c, 64, 0, 64, &err) == KVP_OK);
    kvp_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.num_recent, 8);
    CHECK_EQ_INT(st.num_heavy, 8);
    kvp_cache_reset(c);
    CHECK(feed(c, 32, 0, 32, &err) == KVP_OK); /* int(8) - 8 = 0: recent only */
    kvp_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.num_recent, 8);
    CHECK_EQ_INT(st.num_heavy, 0);
    CHECK_EQ_INT(st.n_kept_total, 8 * NL * NH);
    CHECK(kvp_cache_warning(c) == NULL);
    kvp_cache_free(c);
    p.num_recent = -1;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
    /* TOVA moves recent into heavy and says so */
    c = make("kvcV+tova", 4, 8, &err);
    CHECK(kvp_cache_warning(c) == NULL);
    CHECK(feed(c, 40, 0, 40, &err) == KVP_OK);
    kvp_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.num_recent, 0);
    CHECK_EQ_INT(st.num_heavy, 12);
    CHECK(kvp_cache_warning(c) && strstr(kvp_cache_warning(c), "num_recent"));
    kvp_cache_free(c);
    c = make("h2o", 4, 8, &err);
    CHECK(feed(c, 40, 0, 40, &err) == KVP_OK);
    CHECK(kvp_cache_warning(c) == NULL);
    kvp_cache_free(c);
    /* bad shapes and modes */
    p = qparams();
    CHECK(kvc_new_dims(NL, 3, 2, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
    p.gqa_mode = (kvp_gqa_mode)7;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
}

static void test_positions_and_modes(void) {
    kvp_error err;
    kvp_cache *c = make("h2o", 4, 6, &err);
    CHECK(feed(c, 30, 0, 30, &err) == KVP_OK);
    CHECK_EQ_INT(kvc_next_pos(c), 30);
    for (int step = 0; step < 5; step++) CHECK(feed(c, 1, 0, 0, &err) == KVP_OK);
    CHECK_EQ_INT(kvc_next_pos(c), 35);
    for (int l = 0; l < NL; l++)
        for (int s = 0; s < NH; s++) {
            const int32_t *pos;
            size_t n;
            CHECK(kvp_cache_kept_positions(c, l, s, &pos, &n, &err) == KVP_OK);
            CHECK_EQ_INT(n, 10);
            for (size_t i = 1; i < n; i++) CHECK(pos[i] > pos[i - 1]);
            for (int i = 0; i < 4; i++) CHECK_EQ_INT(pos[6 + i], 31 + i); /* recent tail */
        }
    const int32_t *pos;
    size_t n;
    CHECK(kvp_cache_kept_positions(c, NL, 0, &pos, &n, &err) == KVP_ERR_RANGE);
    CHECK(kvp_cache_kept_positions(c, 0, NH, &pos, &n, &err) == KVP_ERR_RANGE);
    kvp_cache_free(c);

    /* no decode eviction: the cache grows by one token per step */
    kvp_cache_params p = qparams();
    p.method = "kvcK";
    p.num_recent = 4;
    p.num_heavy = 6;
    p.decode_evict = false;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_OK);
    CHECK(feed(c, 30, 0, 30, &err) == KVP_OK);
    for (int step = 0; step < 5; step++) CHECK(feed(c, 1, 0, 0, &err) == KVP_OK);
    kvp_cache_stats st;
    kvp_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.n_kept_total, 15 * NL * NH);
    kvp_cache_free(c);

    /* streaming keeps the first 4 tokens */
    p.decode_evict = true;
    p.streaming = true;
    p.method = "kvcVK";
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_OK);
    CHECK(feed(c, 40, 0, 40, &err) == KVP_OK);
    for (int step = 0; step < 5; step++) CHECK(feed(c, 1, 0, 0, &err) == KVP_OK);
    CHECK(kvp_cache_kept_positions(c, 1, 3, &pos, &n, &err) == KVP_OK);
    CHECK_EQ_INT(n, 10);
    for (int i = 0; i < 4; i++) CHECK_EQ_INT(pos[i], i);
    kvp_cache_free(c);

    /* head modes: one stream per query head vs per KV head */
    p = qparams();
    kvp_cache *cq = NULL, *ck = NULL;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &cq, &err) == KVP_OK);
    p.gqa_mode = KVP_GQA_PER_KV_HEAD;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &ck, &err) == KVP_OK);
    CHECK(feed(cq, 20, 0, 20, &err) == KVP_OK);
    CHECK(feed(ck, 20, 0, 20, &err) == KVP_OK);
    kvp_cache_stats sq, sk;
    kvp_cache_get_stats(cq, &sq);
    kvp_cache_get_stats(ck, &sk);
    CHECK_EQ_INT(sq.n_streams, NH);
    CHECK_EQ_INT(sk.n_streams, NKV);
    /* the default kv_type is f16: 2 bytes an element */
    CHECK_EQ_INT(sq.kv_bytes, (size_t)20 * NL * NH * 2 * D * 2);
    CHECK_EQ_INT(sk.kv_bytes * (NH / NKV), sq.kv_bytes);
    CHECK_EQ_INT(sq.kv_bytes_full, sq.kv_bytes);
    CHECK_EQ_INT(sq.num_recent, -1);
    CHECK_EQ_INT(kvc_alloc_bytes(cq) % ((size_t)2 * D * 2), 0);
    kvp_cache_free(cq);
    kvp_cache_free(ck);
    /* kv_type: float32 doubles the bytes, bf16 matches f16, others fail */
    kvp_kv_type types[] = {KVP_KV_F32, KVP_KV_F16, KVP_KV_BF16};
    size_t per[] = {4, 2, 2};
    for (int i = 0; i < 3; i++) {
        p = qparams();
        p.kv_type = types[i];
        CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &cq, &err) == KVP_OK);
        CHECK(feed(cq, 20, 0, 20, &err) == KVP_OK);
        kvp_cache_get_stats(cq, &sq);
        CHECK_EQ_INT(sq.kv_bytes, (size_t)20 * NL * NH * 2 * D * per[i]);
        CHECK_EQ_INT(sq.kv_bytes_peak, sq.kv_bytes);
        kvp_cache_free(cq);
        kvp_kv_type back;
        CHECK(kvp_kv_type_parse(kvp_kv_type_name(types[i]), &back) && back == types[i]);
    }
    kvp_kv_type back = KVP_KV_F16;
    CHECK(!kvp_kv_type_parse("f8", &back) && !kvp_kv_type_parse(NULL, &back));
    CHECK(kvp_kv_type_name((kvp_kv_type)7) == NULL);
    p = qparams();
    p.kv_type = (kvp_kv_type)7;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &cq, &err) == KVP_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "kv_type") != NULL);
}

/* Budgets on short prompts: one rule for every kind (kvprune.h). */
static void test_short_prompts(void) {
    kvp_error err;
    kvp_cache_stats st;
    kvp_cache *c = NULL;
    /* h2o at 5% + 5% of a 10-token prompt resolves to 0 + 0: 1 token kept */
    kvp_cache_params p = qparams();
    p.method = "h2o";
    p.recent_ratio = 0.05;
    p.heavy_ratio = 0.05;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_OK);
    CHECK(feed(c, 10, 0, 10, &err) == KVP_OK);
    kvp_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.num_recent + st.num_heavy, 1);
    CHECK_EQ_INT(st.n_kept_total, 1 * NL * NH);
    CHECK(kvp_cache_warning(c) && strstr(kvp_cache_warning(c), "keeps 1"));
    /* ... and a prompt long enough resolves exactly as before, no warning */
    kvp_cache_reset(c);
    CHECK(feed(c, 100, 0, 100, &err) == KVP_OK);
    kvp_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.num_recent, 5);
    CHECK_EQ_INT(st.num_heavy, 5);
    CHECK(kvp_cache_warning(c) == NULL);
    kvp_cache_free(c);
    /* TOVA-style: the kept token is a heavy one */
    p.method = "tova";
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_OK);
    CHECK(feed(c, 10, 0, 10, &err) == KVP_OK);
    kvp_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.num_recent, 0);
    CHECK_EQ_INT(st.num_heavy, 1);
    kvp_cache_free(c);
    /* cache_ratio + num_recent on a prompt shorter than the recent window:
     * nothing evicted (the README's library example on a short prompt) */
    p = qparams();
    p.method = "snapkv";
    p.num_recent = 32;
    p.cache_ratio = 0.1;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_OK);
    CHECK_MSG(feed(c, 20, 0, 20, &err) == KVP_OK, "%s", err.message);
    kvp_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.num_recent, 32);
    CHECK_EQ_INT(st.num_heavy, 0);
    CHECK_EQ_INT(st.n_kept_total, 20 * NL * NH);
    CHECK(kvp_cache_warning(c) && strstr(kvp_cache_warning(c), "below num_recent 32"));
    /* ... longer than the window but below its recent part: the window */
    kvp_cache_reset(c);
    CHECK(kvp_cache_warning(c) == NULL);
    CHECK(feed(c, 100, 0, 100, &err) == KVP_OK);
    kvp_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.num_heavy, 0);
    CHECK_EQ_INT(st.n_kept_total, 32 * NL * NH);
    CHECK(kvp_cache_warning(c) != NULL);
    /* ... and long enough: the seed's int(n * r) - num_recent */
    kvp_cache_reset(c);
    CHECK(feed(c, 400, 0, 400, &err) == KVP_OK);
    kvp_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.num_heavy, 8);
    CHECK(kvp_cache_warning(c) == NULL);
    kvp_cache_free(c);
    /* a negative ratio other than -1, NaN, and all-zero budgets are errors */
    const double bad[] = {-0.5, -2.0, NAN};
    for (size_t i = 0; i < 3; i++) {
        p = qparams();
        p.method = "h2o";
        p.recent_ratio = bad[i];
        p.heavy_ratio = 0.1;
        CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
        CHECK(strstr(err.message, "recent_ratio") != NULL);
        p.recent_ratio = -1;
        p.heavy_ratio = -1;
        p.num_recent = 4;
        p.cache_ratio = bad[i];
        CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
    }
    p = qparams();
    p.method = "h2o";
    p.num_recent = 4;
    p.cache_ratio = 0.0;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "cache_ratio must be > 0") != NULL);
    p = qparams();
    p.method = "h2o";
    p.recent_ratio = 0.0;
    p.heavy_ratio = 0.0;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
}

/* A block that fails midway (here: never ended) leaves the cache refusing
 * further blocks and position queries until a reset. */
static void test_failed_block(void) {
    kvp_error err;
    kvp_cache *c = make("h2o", 4, 4, &err);
    CHECK(feed(c, 16, 0, 16, &err) == KVP_OK);
    float q[NH * D] = {0}, k[NKV * D] = {0}, v[NKV * D] = {0}, o[NH * D];
    CHECK(kvc_begin(c, 1, 0, &err) == KVP_OK);
    CHECK(kvc_attend(c, 0, q, k, v, o, NULL, &err) == KVP_OK); /* layer 1 never runs */
    CHECK(kvc_begin(c, 1, 0, &err) == KVP_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "kvp_cache_reset") != NULL);
    const int32_t *pos;
    size_t n;
    CHECK(kvp_cache_kept_positions(c, 0, 0, &pos, &n, &err) == KVP_ERR_INVALID_ARG);
    kvp_cache_reset(c);
    CHECK(feed(c, 16, 0, 16, &err) == KVP_OK);
    CHECK(kvp_cache_kept_positions(c, 1, 0, &pos, &n, &err) == KVP_OK);
    CHECK_EQ_INT(n, 8);
    kvp_cache_free(c);
}

/* The full cache grows with what arrives; the trained context only warns,
 * once. */
static void test_full_growth(void) {
    kvp_error err;
    kvp_cache_params p = qparams();
    kvp_cache *c = NULL;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 64, &p, &c, &err) == KVP_OK);
    CHECK(feed(c, 60, 0, 60, &err) == KVP_OK);
    CHECK(kvp_cache_warning(c) == NULL);
    for (int i = 0; i < 10; i++) CHECK(feed(c, 1, 0, 0, &err) == KVP_OK);
    kvp_cache_stats st;
    kvp_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.n_kept_total, 70 * NL * NH);
    const char *w = kvp_cache_warning(c);
    CHECK(w && strstr(w, "positions reach 65") && strstr(w, "64 tokens"));
    CHECK(w && strstr(strstr(w, "positions reach") + 1, "positions reach") == NULL); /* once */
    /* fits in memory: a few tokens do, 2^40 tokens do not, and the message
     * gives the figure */
    CHECK(kvc_check_fits(c, 1000, &err) == KVP_OK);
    CHECK(kvc_check_fits(c, (int64_t)1 << 40, &err) == KVP_ERR_NOMEM);
    CHECK(strstr(err.message, "GiB") != NULL);
    kvp_cache_free(c);
}

static void test_memory(void) {
    kvp_error err;
    /* a full cache with room for 512 tokens refuses a prompt 10x longer ... */
    kvp_cache_params p = qparams();
    p.max_tokens = 512;
    kvp_cache *c = NULL;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_OK);
    CHECK(feed(c, 5120, 256, 5120, &err) == KVP_ERR_RANGE);
    CHECK(strstr(err.message, "capacity") != NULL);
    CHECK(strstr(err.message, "max_tokens") != NULL);
    kvp_cache_free(c);
    /* ... a pruned cache with the same limit streams it in chunks: the peak
     * is budget + chunk, whatever the prompt length */
    p.method = "h2o";
    p.num_recent = 16;
    p.num_heavy = 48;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_OK);
    CHECK_MSG(feed(c, 5120, 256, 5120, &err) == KVP_OK, "%s", err.message);
    kvp_cache_stats st;
    kvp_cache_get_stats(c, &st);
    size_t tok = 2 * D * sizeof(uint16_t); /* f16 K and V, the default */
    CHECK_EQ_INT(st.n_kept_total, 64 * NL * NH);
    CHECK(st.kv_bytes_peak <= (size_t)(64 + 256) * NL * NH * tok);
    CHECK_EQ_INT(st.kv_bytes_full, (size_t)5120 * NL * NH * tok);
    CHECK(kvc_alloc_bytes(c) <= (size_t)(64 + 256 + 64) * NL * NH * tok * 3 / 2);
    kvp_cache_free(c);
    /* one unchunked prefill: storage is given back after the eviction */
    p.max_tokens = 0;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_OK);
    CHECK(feed(c, 2048, 0, 2048, &err) == KVP_OK);
    CHECK(kvc_alloc_bytes(c) <= (size_t)(64 + 64) * NL * NH * tok * 3 / 2 + 64 * NL * NH * tok);
    for (int i = 0; i < 50; i++) CHECK(feed(c, 1, 0, 0, &err) == KVP_OK);
    CHECK(kvc_alloc_bytes(c) <= (size_t)256 * NL * NH * tok);
    kvp_cache_free(c);
    /* contract misuse is an error, not a crash */
    c = make("h2o", 2, 2, &err);
    float x[NH * D] = {0};
    CHECK(kvc_attend(c, 0, x, x, x, x, NULL, &err) == KVP_ERR_INTERNAL);
    CHECK(kvc_begin(c, 0, 0, &err) == KVP_ERR_INVALID_ARG);
    kvp_cache_free(c);
    kvp_cache_free(NULL);
    kvp_cache_reset(NULL);
}

/* The cache's own pool of n_threads workers (NULL, the caller alone, if it
 * cannot start). */
static kvu_pool *cache_pool(kvp_cache *c, int n_threads) {
    kvu_pool *p = NULL;
    kvp_error e;
    return kvc_thread_pool(c, n_threads, &p, &e) == KVP_OK ? p : NULL;
}

/* Large enough that every parallel region really runs in parallel, the
 * decode steps too (a kept cache of > 2048 tokens): the outputs and the
 * kept positions must not depend on the thread count. */
static void run_threads(const char *method, int n_threads, float **outs, int32_t **kept,
                        size_t *n_kept) {
    enum { H = 4, KV = 2, DD = 32, P = 2800, STEPS = 6 };
    kvp_cache_params p = qparams();
    p.method = method;
    p.num_recent = 32;
    p.num_heavy = 2200;
    p.gqa_mode = KVP_GQA_PER_KV_HEAD;
    kvp_cache *c = NULL;
    kvp_error err;
    CHECK(kvc_new_dims(1, H, KV, DD, 0, &p, &c, &err) == KVP_OK);
    rng_state = 12345;
    size_t total = (size_t)(P + STEPS) * H * DD;
    float *q = malloc(sizeof(float) * total), *k = malloc(sizeof(float) * total);
    float *v = malloc(sizeof(float) * total);
    *outs = calloc(total, sizeof(float));
    for (size_t i = 0; i < total; i++) q[i] = frand(), k[i] = frand(), v[i] = frand();
    int start = 0;
    while (start < P + STEPS) {
        int n = start < P ? 350 : 1;
        CHECK(kvc_begin(c, n, start < P ? P : 0, &err) == KVP_OK);
        CHECK(kvc_attend(c, 0, q + (size_t)start * H * DD, k + (size_t)start * KV * DD,
                         v + (size_t)start * KV * DD, *outs + (size_t)start * H * DD, cache_pool(c, n_threads),
                         &err) == KVP_OK);
        kvc_end(c);
        start += n;
    }
    const int32_t *pos;
    CHECK(kvp_cache_kept_positions(c, 0, 1, &pos, n_kept, &err) == KVP_OK);
    *kept = malloc(sizeof(int32_t) * *n_kept);
    memcpy(*kept, pos, sizeof(int32_t) * *n_kept);
    kvp_cache_free(c);
    free(q);
    free(k);
    free(v);
}

static void test_threads(void) {
    const char *methods[] = {"kvcVK_fullhist", "snapkv", "full"};
    for (int m = 0; m < 3; m++) {
        float *o1, *o3;
        int32_t *k1, *k3;
        size_t n1, n3;
        run_threads(methods[m], 1, &o1, &k1, &n1);
        run_threads(methods[m], 3, &o3, &k3, &n3);
        size_t total = (size_t)2806 * 4 * 32;
        CHECK_MSG(memcmp(o1, o3, total * sizeof(float)) == 0, "%s: outputs depend on threads",
                  methods[m]);
        CHECK(n1 == n3 && memcmp(k1, k3, n1 * sizeof(int32_t)) == 0);
        CHECK_EQ_INT(n1, m == 2 ? 2806 : 2232);
        free(o1);
        free(o3);
        free(k1);
        free(k3);
    }
}

/* The allocation options: defaults, names, and invalid values (checked
 * only where used). */
static void test_alloc_params(void) {
    kvp_error err;
    kvp_cache *c = NULL;
    kvp_cache_params p = kvp_cache_default_params();
    CHECK(p.budget_alloc == KVP_BUDGET_UNIFORM && p.layer_alloc == KVP_LAYER_UNIFORM);
    CHECK(p.safeguard == 0.2 && p.pyramid_beta == 20.0);
    kvp_budget_alloc ba;
    kvp_layer_alloc la;
    CHECK(kvp_budget_alloc_parse("adaptive", &ba) && ba == KVP_BUDGET_ADAPTIVE);
    CHECK(kvp_layer_alloc_parse("pyramid", &la) && la == KVP_LAYER_PYRAMID);
    CHECK(!kvp_budget_alloc_parse("Adaptive", &ba) && !kvp_layer_alloc_parse(NULL, &la));
    CHECK_STR(kvp_budget_alloc_name(KVP_BUDGET_UNIFORM), "uniform");
    CHECK_STR(kvp_layer_alloc_name(KVP_LAYER_PYRAMID), "pyramid");
    CHECK(kvp_budget_alloc_name((kvp_budget_alloc)7) == NULL);
    p.method = "h2o";
    p.num_recent = 2;
    p.num_heavy = 4;
    p.safeguard = 1.5; /* unused with uniform budgets */
    p.pyramid_beta = 0.0;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_OK);
    kvp_cache_free(c);
    c = NULL;
    p.budget_alloc = KVP_BUDGET_ADAPTIVE;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "safeguard") && strstr(err.message, "1.5"));
    p.safeguard = 0.0 / 0.0;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
    p.safeguard = 1.0;
    p.layer_alloc = KVP_LAYER_PYRAMID;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "pyramid_beta") != NULL);
    p.pyramid_beta = 1.0;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_OK);
    kvp_cache_free(c);
    c = NULL;
    p.budget_alloc = (kvp_budget_alloc)3;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "budget_alloc") != NULL);
    p.budget_alloc = KVP_BUDGET_UNIFORM;
    p.layer_alloc = (kvp_layer_alloc)-1;
    CHECK(kvc_new_dims(NL, NH, NKV, D, 0, &p, &c, &err) == KVP_ERR_INVALID_ARG);
    CHECK(c == NULL);
}

int main(void) {
    test_alloc_params();
    test_threads();
    test_names();
    test_budgets();
    test_positions_and_modes();
    test_memory();
    test_short_prompts();
    test_failed_block();
    test_full_growth();
    return kvp_test_done("test_cache_policy");
}
