/* Needle data generation with a stand-in tokenizer (one token per run of
 * letters/digits and per other non-space byte; the chat wrapper adds 8):
 * determinism, depth placement, length fitting, variants, wording files,
 * and the held-out key words. */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvprune_eval/needle_gen.h"
#include "test_util.h"

static size_t fake_count(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        if (isalnum(*p)) {
            while (isalnum(*p)) p++;
            n++;
        } else if (isspace(*p)) {
            p++;
        } else {
            p++;
            n++;
        }
    }
    return n;
}

static kvp_status fake_measure(void *user, const char *input, bool chat, size_t *n,
                               kvp_error *err) {
    (void)err;
    (*(int *)user)++;
    *n = 1 + fake_count(input) + (chat ? 8 : 0);
    return KVP_OK;
}

static json_t *gen(kvev_niah_variant v, int nn, const int *lens, size_t nl, const double *deps,
                   size_t nd, int samples, uint64_t seed, const kvev_haystack *hay,
                   const kvev_niah_phrasing *ph, kvev_niah_stats *stats) {
    kvev_niah_params p = {v, nn, lens, nl, deps, nd, samples, seed, 64, true};
    int calls = 0;
    json_t *out = NULL;
    kvp_error err;
    kvp_status st = kvev_niah_generate(&p, ph, hay, fake_measure, &calls, &out, stats, &err);
    CHECK_MSG(st == KVP_OK, "%s", err.message);
    return out;
}

static bool ends_sentence(const char *w, size_t l) {
    return l && (w[l - 1] == '.' || w[l - 1] == '!' || w[l - 1] == '?');
}

/* Sentences of the haystack before the needle, and in total (needle
 * excluded), for a context with one needle. */
static void sentence_position(const char *ctx, const char *needle, size_t *before,
                              size_t *total) {
    const char *at = strstr(ctx, needle);
    *before = *total = 0;
    if (!at) return;
    size_t nl = strlen(needle);
    const char *p = ctx;
    bool last_open = false;
    while (*p) {
        if (p == at) {
            /* Only at the very end may a needle follow an unfinished sentence. */
            if (last_open) (*before)++;
            p += nl;
            continue;
        }
        while (*p == ' ') p++;
        if (!*p || p == at) continue;
        const char *w = p;
        while (*p && *p != ' ') p++;
        bool end = ends_sentence(w, (size_t)(p - w));
        if (end) {
            (*total)++;
            if (w < at) (*before)++;
        }
        last_open = !end;
    }
    if (last_open) (*total)++;
}

static void test_depth_grid(void) {
    FILE *f = fopen("tests/data/eval/depth_grid.txt", "r");
    CHECK(f != NULL);
    if (!f) return;
    int c, rows = 0;
    while (fscanf(f, "%d", &c) == 1) {
        double g[64];
        kvev_niah_depth_grid(c, g);
        for (int i = 0; i < c; i++) {
            int want;
            CHECK(fscanf(f, "%d", &want) == 1);
            CHECK_MSG((int)g[i] == want, "count %d item %d: %g vs %d", c, i, g[i], want);
        }
        rows++;
    }
    fclose(f);
    CHECK_EQ_INT(rows, 45);
}

static void test_format(void) {
    const char *names[] = {"key", "value"};
    const char *vals[] = {"k", "7"};
    char *o;
    kvp_error err;
    CHECK(kvev_format_fields("{{x}} {key}={value}{key}", names, vals, 2, "t", &o, &err) == KVP_OK);
    CHECK_STR(o, "{x} k=7k");
    free(o);
    CHECK(kvev_format_fields("{nope}", names, vals, 2, "needle", &o, &err) == KVP_ERR_FORMAT);
    CHECK(strstr(err.message, "needle: unknown field {nope}") != NULL);
    CHECK(kvev_format_fields("{key", names, vals, 2, "t", &o, &err) == KVP_ERR_FORMAT);
    CHECK(kvev_format_fields("a}b", names, vals, 2, "t", &o, &err) == KVP_ERR_FORMAT);
}

static void test_single(const kvev_haystack *hay, const kvev_niah_phrasing *ph) {
    int lens[] = {300, 1000};
    double deps[] = {0, 10, 33, 50, 77, 100};
    kvev_niah_stats st;
    json_t *a = gen(KVP_NIAH_SINGLE, 1, lens, 2, deps, 6, 3, 42, hay, ph, &st);
    json_t *b = gen(KVP_NIAH_SINGLE, 1, lens, 2, deps, 6, 3, 42, hay, ph, &st);
    json_t *c = gen(KVP_NIAH_SINGLE, 1, lens, 2, deps, 6, 3, 43, hay, ph, &st);
    CHECK(a && b && c);
    if (!a || !b || !c) return;
    char *sa = json_dumps(a, JSON_PRESERVE_ORDER), *sb = json_dumps(b, JSON_PRESERVE_ORDER),
         *sc = json_dumps(c, JSON_PRESERVE_ORDER);
    CHECK(!strcmp(sa, sb));   /* same seed, same data */
    CHECK(strcmp(sa, sc) != 0); /* another seed, other keys */
    free(sa), free(sb), free(sc);
    CHECK_EQ_INT(json_array_size(a), 36);
    CHECK(st.worst_rel_gap <= 0.01);
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o) {
        CHECK_EQ_INT(json_integer_value(json_object_get(o, "index")), (long long)i);
        json_t *others = json_object_get(o, "others");
        double depth = json_number_value(json_object_get(others, "depth"));
        long long target = json_integer_value(json_object_get(others, "target_length"));
        CHECK_EQ_INT(target, lens[i / 18]);
        CHECK(depth == deps[(i / 3) % 6]);
        const char *input = json_string_value(json_object_get(o, "input"));
        long long lw = json_integer_value(json_object_get(o, "length_w_model_temp"));
        long long l = json_integer_value(json_object_get(o, "length"));
        /* The length is the measured one, within 1% below the target. */
        CHECK_EQ_INT(lw, (long long)(1 + fake_count(input) + 8 + 64));
        CHECK_EQ_INT(l, (long long)(1 + fake_count(input) + 64));
        CHECK_MSG(lw <= target && lw >= target - target / 100, "length %lld target %lld", lw,
                  target);
        /* Key and value. */
        const char *q = json_string_value(json_object_get(others, "query"));
        json_t *outs = json_object_get(o, "outputs");
        CHECK_EQ_INT(json_array_size(outs), 1);
        const char *val = json_string_value(json_array_get(outs, 0));
        long v = strtol(val, NULL, 10);
        CHECK(strlen(val) == 7 && v >= 1000000 && v <= 9999999);
        char needle[200], ap[200];
        snprintf(needle, sizeof needle, "The secret number for %s is %s.", q, val);
        snprintf(ap, sizeof ap, " The secret number for %s is", q);
        CHECK_STR(json_string_value(json_object_get(o, "answer_prefix")), ap);
        const char *dash = strchr(q, '-');
        CHECK(dash != NULL);
        bool adj_ok = false, noun_ok = false;
        for (int k = 0; kvev_niah_adjectives[k]; k++)
            adj_ok |= strlen(kvev_niah_adjectives[k]) == (size_t)(dash - q) &&
                      !strncmp(q, kvev_niah_adjectives[k], (size_t)(dash - q));
        for (int k = 0; kvev_niah_nouns[k]; k++) noun_ok |= !strcmp(dash + 1, kvev_niah_nouns[k]);
        CHECK_MSG(adj_ok && noun_ok, "key %s", q);
        /* The needle is at the sentence boundary int(n * depth / 100). */
        const char *head = "it.\n";
        const char *cs = strstr(input, head);
        const char *ce = strstr(input, "\nIn the text above, what is the secret number");
        CHECK(cs && ce);
        if (!cs || !ce) continue;
        cs += strlen(head);
        char *ctx = strndup(cs, (size_t)(ce - cs));
        size_t before, total;
        sentence_position(ctx, needle, &before, &total);
        CHECK_MSG(strstr(ctx, needle) != NULL, "needle missing in sample %zu", i);
        CHECK_MSG(before == (size_t)(total * (depth / 100.0)), "sample %zu depth %g: %zu of %zu",
                  i, depth, before, total);
        /* And so roughly at that fraction of the text. */
        double frac = (double)(strstr(ctx, needle) - ctx) / (double)(strlen(ctx) - strlen(needle));
        CHECK_MSG(frac >= depth / 100 - 0.06 && frac <= depth / 100 + 0.06, "frac %g depth %g",
                  frac, depth);
        free(ctx);
    }
    json_decref(a), json_decref(b), json_decref(c);
}

static void test_multi(const kvev_haystack *hay, const kvev_niah_phrasing *ph) {
    int lens[] = {600};
    double deps[] = {20, 80};
    kvev_niah_stats st;
    for (int v = KVP_NIAH_MULTIKEY; v <= KVP_NIAH_MULTIQUERY; v++) {
        json_t *a = gen((kvev_niah_variant)v, 3, lens, 1, deps, 2, 4, 7, hay, ph, &st);
        CHECK(a != NULL);
        if (!a) continue;
        size_t i;
        json_t *o;
        json_array_foreach(a, i, o) {
            const char *input = json_string_value(json_object_get(o, "input"));
            json_t *outs = json_object_get(o, "outputs");
            json_t *others = json_object_get(o, "others");
            const char *q = json_string_value(json_object_get(others, "query"));
            size_t needles = 0;
            for (const char *p = input; (p = strstr(p, "The secret number for ")); p++) needles++;
            CHECK_EQ_INT(needles, 3);
            CHECK_EQ_INT(json_array_size(json_object_get(others, "depths")), 3);
            if (v == KVP_NIAH_MULTIKEY) {
                CHECK_EQ_INT(json_array_size(outs), 1);
                char nd[200];
                snprintf(nd, sizeof nd, "The secret number for %s is %s.", q,
                         json_string_value(json_array_get(outs, 0)));
                CHECK(strstr(input, nd) != NULL);
                CHECK(strstr(input, "In the text above, what is the secret number for") != NULL);
            } else {
                CHECK_EQ_INT(json_array_size(outs), 3);
                CHECK(strstr(input, "In the text above, what are all the secret numbers for") != NULL);
                CHECK(strstr(json_string_value(json_object_get(o, "answer_prefix")),
                             "numbers for") != NULL);
            }
            if (v == KVP_NIAH_MULTIVALUE) {
                /* One key; values listed in the order they appear. */
                const char *prev = input;
                for (size_t k = 0; k < 3; k++) {
                    char nd[200];
                    snprintf(nd, sizeof nd, "The secret number for %s is %s.", q,
                             json_string_value(json_array_get(outs, k)));
                    const char *at = strstr(input, nd);
                    CHECK_MSG(at && at >= prev, "value %zu out of order", k);
                    if (at) prev = at;
                }
            }
            if (v == KVP_NIAH_MULTIQUERY) {
                /* "a, b and c" */
                CHECK(strstr(q, ", ") && strstr(q, " and "));
                CHECK(strstr(input, q) != NULL);
            }
            long long lw = json_integer_value(json_object_get(o, "length_w_model_temp"));
            CHECK(lw <= 600 && lw >= 594);
        }
        json_decref(a);
    }
}

static void test_template_file(const kvev_haystack *hay) {
    kvev_niah_phrasing ph;
    kvp_error err;
    kvp_status st = kvev_niah_phrasing_load("tests/data/eval/template_ruler_keys.json", &ph, &err);
    CHECK_MSG(st == KVP_OK, "%s", err.message);
    if (st != KVP_OK) return;
    CHECK(ph.template_multi == NULL);
    int lens[] = {400};
    double deps[] = {50};
    kvev_niah_stats stats;
    json_t *a = gen(KVP_NIAH_MULTIVALUE, 2, lens, 1, deps, 1, 1, 1, hay, &ph, &stats);
    if (a) {
        const char *input = json_string_value(json_object_get(json_array_get(a, 0), "input"));
        CHECK(strncmp(input, "A hidden code is somewhere in this text.", 40) == 0);
        CHECK(strstr(input, "One code for ") != NULL);
        json_decref(a);
    }
    kvev_niah_phrasing_free(&ph);
    CHECK(kvev_niah_phrasing_load("tests/data/eval/template_bad.json", &ph, &err) ==
          KVP_ERR_FORMAT);
    CHECK_MSG(strstr(err.message, "missing key \"needle\"") != NULL, "%s", err.message);
    CHECK(kvev_niah_phrasing_load("tests/data/eval/no_such.json", &ph, &err) == KVP_ERR_FORMAT);
}

static void test_too_short(const kvev_haystack *hay, const kvev_niah_phrasing *ph) {
    int lens[] = {80};
    double deps[] = {0};
    kvev_niah_params p = {KVP_NIAH_SINGLE, 1, lens, 1, deps, 1, 1, 0, 64, true};
    int calls = 0;
    json_t *out;
    kvev_niah_stats st;
    kvp_error err;
    CHECK(kvev_niah_generate(&p, ph, hay, fake_measure, &calls, &out, &st, &err) == KVP_ERR_RANGE);
    CHECK(strstr(err.message, "too small") != NULL);
    double bad[] = {101};
    int ok_len[] = {500};
    kvev_niah_params q = {KVP_NIAH_SINGLE, 1, ok_len, 1, bad, 1, 1, 0, 64, true};
    CHECK(kvev_niah_generate(&q, ph, hay, fake_measure, &calls, &out, &st, &err) ==
          KVP_ERR_INVALID_ARG);
}

/* Every word of ours is absent from the bundled model's training lists. */
static void test_held_out_words(void) {
    FILE *f = fopen("tools/train/words.py", "r");
    if (!f) {
        printf("tools/train/words.py not present: held-out check skipped\n");
        return;
    }
    char *buf = malloc(1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    size_t blocks = 0, words = 0;
    /* Every triple-quoted block is a word list. */
    for (char *p = buf; (p = strstr(p, "= \"\"\""));) {
        p += 5;
        char *end = strstr(p, "\"\"\"");
        if (!end) break;
        *end = '\0';
        blocks++;
        for (char *w = strtok(p, " \n\t"); w; w = strtok(NULL, " \n\t")) {
            words++;
            for (int k = 0; kvev_niah_adjectives[k]; k++)
                CHECK_MSG(strcmp(w, kvev_niah_adjectives[k]) != 0, "shared word %s", w);
            for (int k = 0; kvev_niah_nouns[k]; k++)
                CHECK_MSG(strcmp(w, kvev_niah_nouns[k]) != 0, "shared word %s", w);
        }
        p = end + 3;
    }
    CHECK(blocks >= 2 && words > 100);
    free(buf);
}

int main(void) {
    kvev_haystack noise, essay;
    kvev_niah_phrasing ph;
    kvp_error err;
    CHECK(kvev_haystack_noise(&noise, &err) == KVP_OK);
    CHECK_EQ_INT(noise.n_words, 22);
    CHECK(kvev_haystack_load("tests/data/eval/essays", &essay, &err) == KVP_OK);
    CHECK_STR(essay.name, "essays");
    CHECK(kvev_niah_phrasing_default(&ph, &err) == KVP_OK);
    test_depth_grid();
    test_format();
    test_single(&noise, &ph);
    test_single(&essay, &ph);
    test_multi(&noise, &ph);
    test_multi(&essay, &ph);
    test_template_file(&essay);
    test_too_short(&noise, &ph);
    test_held_out_words();
    kvev_haystack h2;
    CHECK(kvev_haystack_load("tests/data/eval/no_such_dir", &h2, &err) == KVP_ERR_IO);
    kvev_niah_phrasing_free(&ph);
    kvev_haystack_free(&noise);
    kvev_haystack_free(&essay);
    return kvp_test_done("test_needle_gen");
}
