/* The pruning cache driven with random q/k/v against the independent numpy
 * reference (tools/cacheref/make_cache_goldens.py): kept positions after
 * the prefill and at the end, every step's output energy, and the last
 * step's outputs, for every method x budget kind x decode-evict x head mode
 * on a GQA and an MHA shape (plus streaming, chunked prefill, multi-token
 * decode blocks, aliases), through the API other engines use
 * (kvp_cache_new_dims, kvp_cache_begin/attend/end), and the same breadth
 * for the budget allocations (<shape>_alloc.json: head-adaptive, pyramid,
 * both).
 *
 * Selections are compared wherever the reference's smallest relative score
 * gap at a selection boundary (min_margin) is >= 1e-4: float32 rounding
 * here is ~1e-6 relative, so only such near-ties could legitimately flip.
 * Configurations under that margin still have their first steps checked up
 * to the prefill output. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden_params.h"
#include "kvprune.h"
#include "test_util.h"

#define MARGIN_MIN 1e-4
/* Each shape's golden holds 555 configurations, all but 14 above the
 * margin (the allocations': 810, all but 70-80, as a selection across
 * streams also compares key scores that are small differences of large
 * terms): a run comparing fewer in full has lost its coverage (a changed
 * golden, a broken reader) and fails. */
#define MIN_COMPARED 520
#define MIN_COMPARED_ALLOC 720
#define OUT_TOL 1e-4

typedef struct shape {
    int n_layer, n_head, n_head_kv, d, prompt, decode;
    float *data; /* per layer: q [T][H][d], k [T][Hkv][d], v [T][Hkv][d] */
} shape;

static const float *layer_q(const shape *s, int l) {
    int T = s->prompt + s->decode;
    size_t per = (size_t)T * s->d * (s->n_head + 2 * s->n_head_kv);
    return s->data + per * l;
}
static const float *layer_k(const shape *s, int l) {
    return layer_q(s, l) + (size_t)(s->prompt + s->decode) * s->n_head * s->d;
}
static const float *layer_v(const shape *s, int l) {
    return layer_k(s, l) + (size_t)(s->prompt + s->decode) * s->n_head_kv * s->d;
}

static void mask_hex(const int32_t *pos, size_t n, int T, char *out) {
    int nib = (T + 3) / 4;
    unsigned char *v = calloc((size_t)nib, 1);
    for (size_t i = 0; i < n; i++) v[pos[i] / 4] |= (unsigned char)(1u << (pos[i] % 4));
    int top = nib - 1;
    while (top > 0 && v[top] == 0) top--;
    int o = 0;
    for (int i = top; i >= 0; i--) out[o++] = "0123456789abcdef"[v[i]];
    out[o] = '\0';
    free(v);
}

static int mask_mismatches(kvp_cache *c, const shape *s, json_t *ref,
                           const char *what, const char *name) {
    int bad = 0, T = s->prompt + s->decode;
    char hex[256];
    for (int l = 0; l < s->n_layer; l++) {
        json_t *layer = json_array_get(ref, (size_t)l);
        for (size_t st = 0; st < json_array_size(layer); st++) {
            const int32_t *pos;
            size_t n;
            kvp_error err;
            if (kvp_cache_kept_positions(c, l, (int)st, &pos, &n, &err) != KVP_OK) {
                bad++;
                continue;
            }
            mask_hex(pos, n, T, hex);
            const char *want = json_string_value(json_array_get(layer, st));
            if (!want || strcmp(hex, want) != 0) {
                if (bad == 0)
                    fprintf(stderr, "%s: %s layer %d stream %zu: kept %s, want %s\n",
                            name, what, l, st, hex, want ? want : "?");
                bad++;
            }
        }
    }
    return bad;
}

/* Runs one configuration; out_all receives every step's outputs
 * concatenated (for the thread-count comparison). */
static int run_config(const shape *s, json_t *cfg, int n_threads,
                      float **out_all, size_t *out_len, double *max_diff,
                      int *compared_sel) {
    kvp_cache_params p;
    char name[256];
    if (!golden_cache_params(cfg, &p, name, sizeof name)) {
        fprintf(stderr, "%s\n", name);
        return 1;
    }
    const char *budget = json_string_value(json_object_get(cfg, "budget"));
    int chunk = (int)json_integer_value(json_object_get(cfg, "chunk"));
    snprintf(name, sizeof name, "%s/%s/evict=%d/%s/stream=%d(%d)/chunk=%d%s/%s/%s:%g/%s:%g", p.method,
             budget, p.decode_evict, p.gqa_mode ? "kv" : "q", p.streaming, p.num_sink, chunk,
             json_object_get(cfg, "decode_blocks") ? "/decode-blocks" : "",
             kvp_kv_type_name(p.kv_type), kvp_budget_alloc_name(p.budget_alloc), p.safeguard,
             kvp_layer_alloc_name(p.layer_alloc), p.pyramid_beta);
    double margin = json_real_value(json_object_get(cfg, "min_margin"));
    if (json_is_integer(json_object_get(cfg, "min_margin")))
        margin = (double)json_integer_value(json_object_get(cfg, "min_margin"));
    bool sel_ok = margin >= MARGIN_MIN;

    kvp_cache *c = NULL;
    kvp_error err;
    if (kvp_cache_new_dims(s->n_layer, s->n_head, s->n_head_kv, s->d, 0, &p, &c, &err) != KVP_OK) {
        fprintf(stderr, "%s: %s\n", name, err.message);
        return 1;
    }
    int fails = 0, H = s->n_head, Hkv = s->n_head_kv, d = s->d;
    int T = s->prompt + s->decode;
    size_t step_out = (size_t)H * d;
    float *outs = calloc((size_t)s->n_layer * T * step_out, sizeof(float));
    json_t *out_sq = json_object_get(cfg, "out_sq");
    json_t *out_last = json_object_get(cfg, "out_last");
    /* decode blocks: one token each unless the configuration lists them */
    json_t *blocks = json_object_get(cfg, "decode_blocks");
    size_t next_block = 0;
    int step = 0;
    int start = 0;
    while (start < T) {
        int n = start < s->prompt ? (chunk > 0 ? chunk : s->prompt) : 1;
        if (start >= s->prompt && blocks)
            n = (int)json_integer_value(json_array_get(blocks, next_block++));
        if (start < s->prompt && start + n > s->prompt) n = s->prompt - start;
        if (n <= 0 || start + n > T) {
            fprintf(stderr, "%s: bad decode_blocks in the golden\n", name);
            fails++;
            break;
        }
        int total = start < s->prompt ? s->prompt : 0;
        kvp_cache_stats cs;
        kvp_cache_get_stats(c, &cs);
        CHECK_EQ_INT(cs.n_seen, start);
        if (kvp_cache_begin(c, n, total, &err) != KVP_OK) {
            fprintf(stderr, "%s: begin: %s\n", name, err.message);
            fails++;
            break;
        }
        double sq = 0.0;
        for (int l = 0; l < s->n_layer; l++) {
            float *o = outs + ((size_t)l * T + start) * step_out;
            if (kvp_cache_attend(c, l, layer_q(s, l) + (size_t)start * H * d,
                           layer_k(s, l) + (size_t)start * Hkv * d,
                           layer_v(s, l) + (size_t)start * Hkv * d, o, n_threads,
                           &err) != KVP_OK) {
                fprintf(stderr, "%s: attend: %s\n", name, err.message);
                fails++;
            }
            for (size_t t = 0; t < (size_t)n * step_out; t++) sq += (double)o[t] * o[t];
        }
        if (kvp_cache_end(c, &err) != KVP_OK) {
            fprintf(stderr, "%s: end: %s\n", name, err.message);
            fails++;
            break;
        }
        start += n;
        if (start >= s->prompt && start - n < s->prompt) {
            /* the prefill is done */
            if (sel_ok) {
                int bad = mask_mismatches(c, s, json_object_get(cfg, "after_prefill"),
                                          "after prefill", name);
                CHECK_MSG(bad == 0, "%s: %d streams differ after prefill", name, bad);
                fails += bad;
            }
        }
        if (sel_ok || step == 0) {
            double want = json_number_value(json_array_get(out_sq, (size_t)step));
            double diff = fabs(sq - want) / (fabs(want) > 1 ? fabs(want) : 1);
            if (diff > *max_diff) *max_diff = diff;
            CHECK_MSG(diff <= OUT_TOL, "%s: step %d output energy %.8g vs %.8g", name,
                      step, sq, want);
            if (diff > OUT_TOL) fails++;
        }
        step++;
    }
    if (sel_ok && !fails) {
        int bad = mask_mismatches(c, s, json_object_get(cfg, "final"), "final", name);
        CHECK_MSG(bad == 0, "%s: %d streams differ at the end", name, bad);
        fails += bad;
        for (int l = 0; l < s->n_layer; l++)
            for (size_t t = 0; t < step_out; t++) {
                double got = outs[((size_t)l * T + T - 1) * step_out + t];
                double want = json_number_value(json_array_get(out_last, l * step_out + t));
                double diff = fabs(got - want);
                if (diff > *max_diff) *max_diff = diff;
                if (diff > OUT_TOL * (fabs(want) > 1 ? fabs(want) : 1)) {
                    if (!fails)
                        fprintf(stderr, "%s: last output [%d][%zu] %.8g vs %.8g\n",
                                name, l, t, got, want);
                    fails++;
                }
            }
        CHECK_MSG(fails == 0, "%s: outputs differ", name);
        *compared_sel += 1;
    }
    kvp_cache_stats st;
    kvp_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.n_seen, T);
    CHECK_EQ_INT(st.kv_bytes, (size_t)st.n_kept_total * 2 * d *
                                  (p.kv_type == KVP_KV_F32 ? sizeof(float) : sizeof(uint16_t)));
    /* per-layer statistics: the streams' own lengths */
    int64_t sum_layers = 0;
    for (int l = 0; l < s->n_layer; l++) {
        kvp_cache_layer_stats ls;
        CHECK(kvp_cache_get_layer_stats(c, l, &ls, &err) == KVP_OK);
        int64_t tot = 0;
        int mn = 1 << 30, mx = 0;
        for (int q = 0; q < st.n_streams; q++) {
            const int32_t *pos;
            size_t n;
            CHECK(kvp_cache_kept_positions(c, l, q, &pos, &n, &err) == KVP_OK);
            tot += (int64_t)n;
            if ((int)n < mn) mn = (int)n;
            if ((int)n > mx) mx = (int)n;
        }
        CHECK_EQ_INT(ls.total_kept, tot);
        CHECK_EQ_INT(ls.min_kept, mn);
        CHECK_EQ_INT(ls.max_kept, mx);
        sum_layers += ls.total_kept;
    }
    CHECK_EQ_INT(sum_layers, st.n_kept_total);
    kvp_cache_free(c);
    *out_all = outs;
    *out_len = (size_t)s->n_layer * T * step_out;
    return fails;
}

/* PyramidKV's layer budgets against the reference's split (deeper models
 * than the shapes): the heavy budget of every layer after the budgets are
 * resolved. */
static void check_pyramid_splits(json_t *splits) {
    for (size_t i = 0; i < json_array_size(splits); i++) {
        json_t *e = json_array_get(splits, i);
        kvp_cache_params p = kvp_cache_default_params();
        p.method = "h2o";
        p.num_recent = 1;
        p.num_heavy = (int)json_integer_value(json_object_get(e, "heavy"));
        p.layer_alloc = KVP_LAYER_PYRAMID;
        p.pyramid_beta = json_number_value(json_object_get(e, "beta"));
        int n_layer = (int)json_integer_value(json_object_get(e, "n_layer"));
        kvp_cache *c = NULL;
        kvp_error err;
        CHECK(kvp_cache_new_dims(n_layer, 2, 1, 8, 0, &p, &c, &err) == KVP_OK);
        if (!c) continue;
        CHECK(kvp_cache_begin(c, 4, 4, &err) == KVP_OK);
        json_t *split = json_object_get(e, "split");
        CHECK_EQ_INT((int)json_array_size(split), n_layer);
        for (int l = 0; l < n_layer; l++) {
            kvp_cache_layer_stats ls;
            CHECK(kvp_cache_get_layer_stats(c, l, &ls, &err) == KVP_OK);
            CHECK_MSG(ls.num_heavy == (int)json_integer_value(json_array_get(split, (size_t)l)),
                      "pyramid %d x %d beta %g: layer %d heavy %d, want %d", p.num_heavy, n_layer,
                      p.pyramid_beta, l, ls.num_heavy,
                      (int)json_integer_value(json_array_get(split, (size_t)l)));
        }
        kvp_cache_free(c);
    }
}

/* base: the golden (<base>.json); inputs: the q/k/v file (<inputs>.bin). */
static int run_shape(const char *base, const char *inputs, int min_compared) {
    char path[256];
    snprintf(path, sizeof path, "tests/data/cache/%s.json", base);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc) {
        fprintf(stderr, "%s: %s\n", path, jerr.text);
        CHECK(0);
        return 1;
    }
    shape s;
    s.n_layer = (int)json_integer_value(json_object_get(doc, "n_layer"));
    s.n_head = (int)json_integer_value(json_object_get(doc, "n_head"));
    s.n_head_kv = (int)json_integer_value(json_object_get(doc, "n_head_kv"));
    s.d = (int)json_integer_value(json_object_get(doc, "d"));
    s.prompt = (int)json_integer_value(json_object_get(doc, "prompt"));
    s.decode = (int)json_integer_value(json_object_get(doc, "decode"));
    int T = s.prompt + s.decode;
    size_t nf = (size_t)s.n_layer * T * s.d * (s.n_head + 2 * s.n_head_kv);
    s.data = malloc(nf * sizeof(float));
    snprintf(path, sizeof path, "tests/data/cache/%s.bin", inputs);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f || fread(s.data, sizeof(float), nf, f) != nf) {
        fprintf(stderr, "%s: short read\n", path);
        CHECK(0);
        if (f) fclose(f);
        free(s.data);
        json_decref(doc);
        return 1;
    }
    fclose(f);
    check_pyramid_splits(json_object_get(doc, "pyramid_splits"));
    json_t *cfgs = json_object_get(doc, "configs");
    int n_cfg = (int)json_array_size(cfgs), n_bad = 0, n_sel = 0;
    /* per kv_type (f32, f16, bf16): configurations, fully compared, max diff */
    int n_type[3] = {0}, sel_type[3] = {0};
    double diff_type[3] = {0};
    for (int i = 0; i < n_cfg; i++) {
        float *o1 = NULL, *o3 = NULL;
        size_t n1 = 0, n3 = 0;
        kvp_kv_type t = KVP_KV_F32;
        const char *kvt = json_string_value(json_object_get(json_array_get(cfgs, (size_t)i), "kv_type"));
        if (kvt) kvp_kv_type_parse(kvt, &t);
        int f1 = run_config(&s, json_array_get(cfgs, (size_t)i), 1, &o1, &n1,
                            &diff_type[t], &sel_type[t]);
        n_type[t]++;
        n_bad += f1 != 0;
        if (i % 5 == 0) {
            /* results must not depend on the thread count */
            double dummy = 0;
            int dsel = 0;
            run_config(&s, json_array_get(cfgs, (size_t)i), 3, &o3, &n3, &dummy, &dsel);
            CHECK_MSG(n1 == n3 && memcmp(o1, o3, n1 * sizeof(float)) == 0,
                      "config %d: outputs depend on the thread count", i);
        }
        free(o1);
        free(o3);
    }
    for (int t = 0; t < 3; t++) n_sel += sel_type[t];
    printf("%s: %d configurations, %d failed, %d with selections and outputs "
           "compared (the rest: reference margin < %g)\n",
           base, n_cfg, n_bad, n_sel, MARGIN_MIN);
    for (int t = 0; t < 3; t++)
        printf("  kv_type %-4s: %3d configurations, %3d compared in full, max output diff %.3g\n",
               kvp_kv_type_name((kvp_kv_type)t), n_type[t], sel_type[t], diff_type[t]);
    CHECK_MSG(n_sel >= min_compared, "%s: only %d configurations compared in full (want >= %d)",
              base, n_sel, min_compared);
    free(s.data);
    json_decref(doc);
    return n_bad;
}

int main(void) {
    run_shape("gqa", "gqa", MIN_COMPARED);
    run_shape("mha", "mha", MIN_COMPARED);
    run_shape("gqa_alloc", "gqa", MIN_COMPARED_ALLOC);
    run_shape("mha_alloc", "mha", MIN_COMPARED_ALLOC);
    return kvp_test_done("test_cache_golden");
}
