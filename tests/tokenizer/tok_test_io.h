/* Reading the corpus/golden files of the tokenizer tests and comparing a
 * tokenizer with them. */
#ifndef KVP_TESTS_TOK_TEST_IO_H
#define KVP_TESTS_TOK_TEST_IO_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h" /* kvp_test_read_file */

/* Splits a buffer into lines in place (the final newline ends the last). */
static char **tt_lines(char *buf, size_t len, size_t *n) {
    size_t cap = 1024, k = 0;
    char **v = malloc(cap * sizeof *v);
    char *s = buf, *end = buf + len;
    while (s < end) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl) nl = end;
        *nl = '\0';
        if (k == cap) v = realloc(v, (cap *= 2) * sizeof *v);
        v[k++] = s;
        s = nl + 1;
    }
    *n = k;
    return v;
}

/* Corpus escaping: "\\\\" -> '\\', "\\xNN" -> byte NN. Returns a malloc'ed
 * buffer (NUL-terminated) and its length. */
static char *tt_unescape(const char *s, size_t *len) {
    size_t n = strlen(s), k = 0;
    char *o = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && s[i + 1] == '\\') {
            o[k++] = '\\';
            i++;
        } else if (s[i] == '\\' && s[i + 1] == 'x') {
            char h[3] = {s[i + 2], s[i + 3], 0};
            o[k++] = (char)strtol(h, NULL, 16);
            i += 3;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
    *len = k;
    return o;
}

/* "1 2 3" -> ids. */
static int32_t *tt_parse_ids(const char *s, size_t *n) {
    size_t cap = 16, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    char *end;
    for (;;) {
        while (*s == ' ') s++;
        if (!*s) break;
        long x = strtol(s, &end, 10);
        if (end == s) break;
        if (k == cap) v = realloc(v, (cap *= 2) * sizeof *v);
        v[k++] = (int32_t)x;
        s = end;
    }
    *n = k;
    return v;
}

/* ---- comparing a tokenizer with goldens (see tools/tokenizer/gen_goldens.mjs) ---- */
#include "kvprune.h"
#include "test_util.h"
#include "tokenizer/tok_internal.h"

static int show_budget = 8;

static void show_ids(const char *what, const int32_t *v, size_t n) {
    fprintf(stderr, "    %s:", what);
    for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", v[i]);
    fprintf(stderr, n > 40 ? " ...\n" : "\n");
}

/* expected decode: "=" text, "+P" P + text, else the escaped string */
static char *expected_decode(const char *field, const char *text, size_t text_len, size_t *len) {
    if (!strcmp(field, "=")) {
        char *p = malloc(text_len + 1);
        memcpy(p, text, text_len + 1);
        *len = text_len;
        return p;
    }
    if (field[0] == '+') {
        size_t pl;
        char *pre = tt_unescape(field + 1, &pl);
        char *p = malloc(pl + text_len + 1);
        memcpy(p, pre, pl);
        memcpy(p + pl, text, text_len + 1);
        free(pre);
        *len = pl + text_len;
        return p;
    }
    return tt_unescape(field, len);
}

typedef struct stats {
    size_t n, ids_ok, dec_ok, dec_skip_ok, stream_ok, roundtrip_text, roundtrip_exact;
} stats;

static void run(const char *label, const kvp_tokenizer *tok, char **corpus, char **golden, size_t n,
                stats *s) {
    memset(s, 0, sizeof *s);
    kvp_tokenize_params tp = kvp_tokenize_default_params();
    for (size_t i = 0; i < n; i++) {
        size_t raw_len;
        char *raw = tt_unescape(corpus[i], &raw_len);
        /* the reference sees the text after invalid UTF-8 became U+FFFD */
        char *g = golden[i];
        if (!strcmp(g, "SKIP")) { /* not comparable with this reference */
            free(raw);
            continue;
        }
        char *tab1 = strchr(g, '\t');
        char *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        if (!tab1 || !tab2) {
            fprintf(stderr, "%s: golden line %zu is malformed\n", label, i + 1);
            free(raw);
            continue;
        }
        *tab1 = '\0';
        *tab2 = '\0';
        size_t n_exp;
        int32_t *exp = tt_parse_ids(g, &n_exp);
        int32_t *ids = NULL;
        size_t n_ids = 0;
        kvp_error err = {0};
        kvp_status st = kvp_tokenize(tok, raw, raw_len, &tp, &ids, &n_ids, &err);
        s->n++;
        bool same = st == KVP_OK && n_ids == n_exp && memcmp(ids, exp, n_ids * sizeof *ids) == 0;
        if (same) s->ids_ok++;
        else if (show_budget-- > 0) {
            fprintf(stderr, "%s: ids differ on line %zu: '%.120s'%s\n", label, i + 1, corpus[i], st ? err.message : "");
            show_ids("want", exp, n_exp);
            show_ids("got ", ids, n_ids);
        }
        /* decode the reference ids (so a decode check does not depend on encode) */
        size_t text_len;
        char *text = kvt_utf8_sanitize(raw, raw_len, &text_len);
        {
            /* exact round trip: no BOS/EOS added, special tokens kept */
            kvp_tokenize_params np = {.add_special = false, .parse_special = true};
            int32_t *rid = NULL;
            size_t rn = 0, dl = 0;
            char *dt = NULL;
            if (kvp_tokenize(tok, raw, raw_len, &np, &rid, &rn, &err) == KVP_OK &&
                kvp_detokenize(tok, rid, rn, false, &dt, &dl, &err) == KVP_OK && dl == text_len &&
                memcmp(dt, text, dl) == 0)
                s->roundtrip_exact++;
            free(rid);
            free(dt);
        }
        for (int skip = 0; skip < 2; skip++) {
            if (!strcmp(skip ? tab2 + 1 : tab1 + 1, "?")) { /* the reference has no such decode */
                if (skip) s->dec_skip_ok++, s->stream_ok++;
                else s->dec_ok++;
                continue;
            }
            size_t want_len;
            char *want = expected_decode(skip ? tab2 + 1 : tab1 + 1, text, text_len, &want_len);
            char *got = NULL;
            size_t got_len = 0;
            st = kvp_detokenize(tok, exp, n_exp, skip, &got, &got_len, &err);
            bool ok = st == KVP_OK && got_len == want_len && memcmp(got, want, want_len) == 0;
            if (ok) {
                if (skip) s->dec_skip_ok++;
                else s->dec_ok++;
            } else if (show_budget-- > 0) {
                fprintf(stderr, "%s: decode(skip_special=%d) differs on line %zu\n    want '%.200s'\n    got  '%.200s'\n",
                        label, skip, i + 1, want, got ? got : err.message);
            }
            if (skip && ok && want_len == text_len && memcmp(want, text, text_len) == 0) s->roundtrip_text++;
            if (skip) {
                /* streaming: pieces concatenate to the full decode */
                kvp_detok *d = NULL;
                char *acc = malloc(want_len * 2 + 64);
                size_t acc_n = 0, acc_cap = want_len * 2 + 64;
                bool sok = kvp_detok_new(tok, true, &d, &err) == KVP_OK;
                for (size_t k = 0; sok && k < n_exp; k++) {
                    const char *piece;
                    if (kvp_detok_push(d, exp[k], &piece, &err) != KVP_OK) { sok = false; break; }
                    size_t pl = strlen(piece);
                    if (acc_n + pl + 1 > acc_cap) acc = realloc(acc, acc_cap = (acc_n + pl) * 2 + 64);
                    memcpy(acc + acc_n, piece, pl);
                    acc_n += pl;
                }
                if (sok) {
                    const char *rest = kvp_detok_flush(d);
                    size_t pl = strlen(rest);
                    if (acc_n + pl + 1 > acc_cap) acc = realloc(acc, acc_cap = (acc_n + pl) * 2 + 64);
                    memcpy(acc + acc_n, rest, pl);
                    acc_n += pl;
                }
                kvp_detok_free(d);
                /* NUL characters cannot travel through the streaming pieces */
                bool has_nul = memchr(want, 0, want_len) != NULL;
                if (sok && (has_nul || (acc_n == want_len && memcmp(acc, want, want_len) == 0))) s->stream_ok++;
                else if (show_budget-- > 0)
                    fprintf(stderr, "%s: streaming decode differs on line %zu\n", label, i + 1);
                free(acc);
            }
            free(got);
            free(want);
        }
        *tab1 = '\t';
        *tab2 = '\t';
        free(text);
        free(ids);
        free(exp);
        free(raw);
    }
    printf("%-28s strings %zu  ids identical %zu (%.2f%%)  decode identical %zu/%zu (%.2f%%)  "
           "streaming %zu  decode(encode(x)) == x %zu (%.2f%%)\n",
           label, s->n, s->ids_ok, 100.0 * (double)s->ids_ok / (double)(s->n ? s->n : 1), s->dec_ok,
           s->dec_skip_ok, 100.0 * (double)(s->dec_ok + s->dec_skip_ok) / (double)(2 * (s->n ? s->n : 1)),
           s->stream_ok, s->roundtrip_exact, 100.0 * (double)s->roundtrip_exact / (double)(s->n ? s->n : 1));
    CHECK_EQ_INT(s->ids_ok, s->n);
    CHECK_EQ_INT(s->dec_ok, s->n);
    CHECK_EQ_INT(s->dec_skip_ok, s->n);
    CHECK_EQ_INT(s->stream_ok, s->n);
}

#endif
