/* A conversation rendered one turn at a time (kvp_chat_apply_next /
 * kvp_chat_tokenize_next) must concatenate to the whole conversation's
 * rendering (kvp_chat_apply / kvp_chat_tokenize, themselves checked against
 * @huggingface/jinja in test_tokenizer), for every built-in template, with
 * and without a system message; and the tokens of each new turn must be the
 * tokens the whole conversation has there (the turn boundary never merges
 * tokens), on tokenizers whose special tokens the template uses. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvprune.h"
#include "test_util.h"

#define DATA "tests/data/tokenizer/"

static const kvp_chat_message conv[] = {
    {"system", "You answer in one short sentence."},
    {"user", "Hi there"},
    {"assistant", "Hello! How can I help?"},
    {"user", "Name a long river.\nJust one."},
    {"assistant", "The Nile."},
    {"user", "Thanks, and one more?"},
    {"assistant", " The Amazon. "}, /* whitespace the templates trim (or keep) */
    {"user", "Bye"},
};
#define N_CONV (sizeof conv / sizeof conv[0])

/* ids of a text the way kvp_chat_tokenize tokenizes a rendering */
static int32_t *tokenize_rendering(const kvp_tokenizer *tok, const char *text, size_t len, size_t *n) {
    kvp_tokenize_params tp = kvp_tokenize_default_params();
    int32_t bos = kvp_tokenizer_bos(tok);
    const char *bt = bos >= 0 ? kvp_token_text(tok, bos) : NULL;
    tp.add_special = !(bt && *bt && strncmp(text, bt, strlen(bt)) == 0);
    int32_t *ids = NULL;
    kvp_error err = {0};
    if (kvp_tokenize(tok, text, len, &tp, &ids, n, &err) != KVP_OK) {
        CHECK_MSG(0, "tokenize: %s", err.message);
        return NULL;
    }
    return ids;
}

static void check_conversation(const kvp_tokenizer *tok, const char *tmpl, const kvp_chat_message *m,
                               size_t n, bool tokens) {
    kvp_error err = {0};
    char *full = NULL;
    if (kvp_chat_apply(tok, tmpl, m, n, true, &full, &err)) {
        CHECK_MSG(0, "%s: %s", tmpl, err.message);
        return;
    }
    size_t lf = strlen(full);
    /* the first turn: everything up to the first user message */
    size_t end = 0;
    while (end < n && strcmp(m[end].role, "user")) end++;
    end++;
    char *first = NULL;
    CHECK(kvp_chat_apply(tok, tmpl, m, end, true, &first, &err) == KVP_OK);
    size_t at = strlen(first);
    CHECK_MSG(strncmp(full, first, at) == 0, "%s: the first turn is not a prefix", tmpl);
    free(first);
    for (size_t k = end; k < n; k++) {
        if (strcmp(m[k].role, "assistant")) continue;
        /* the reply: whitespace the template writes before it, then the content */
        const char *c = m[k].content;
        while (*c == ' ') c++;
        size_t cl = strlen(c);
        while (cl && c[cl - 1] == ' ') cl--;
        size_t skip = 0;
        while (at + skip < lf && full[at + skip] == ' ') skip++;
        CHECK_MSG(strncmp(full + at + skip, c, cl) == 0, "%s: reply %zu not at %zu", tmpl, k, at);
        at += skip + cl;
        size_t next = k + 1;
        while (next < n && strcmp(m[next].role, "user")) next++;
        if (next < n) next++;
        char *tail = NULL;
        kvp_status s = kvp_chat_apply_next(tok, tmpl, m, k + 1, next, true, &tail, &err);
        CHECK_MSG(s == KVP_OK, "%s: %s", tmpl, err.message);
        if (s) break;
        /* the same from the previous user message and the reply alone (what
         * a conversation keeps) */
        char *tail2 = NULL;
        CHECK(kvp_chat_apply_next(tok, tmpl, m + k - 1, 2, next - (k - 1), true, &tail2, &err) == KVP_OK);
        CHECK_MSG(tail2 && strcmp(tail, tail2) == 0, "%s: the turn after reply %zu needs more than the "
                  "previous user message and the reply", tmpl, k);
        free(tail2);
        size_t lt = strlen(tail);
        CHECK_MSG(strncmp(full + at, tail, lt) == 0, "%s: turn after reply %zu: '%s' is not at '%s'",
                  tmpl, k, tail, full + at);
        if (tokens) {
            /* tokens(before) ++ tokens_next == tokens(before + tail) */
            size_t nb = 0, na = 0, nt = 0;
            int32_t *before = tokenize_rendering(tok, full, at, &nb);
            int32_t *after = tokenize_rendering(tok, full, at + lt, &na);
            int32_t *tids = NULL;
            CHECK(kvp_chat_tokenize_next(tok, tmpl, m, k + 1, next, true, &tids, &nt, &err) == KVP_OK);
            bool same = before && after && tids && nb + nt == na &&
                        memcmp(after, before, nb * sizeof *before) == 0 &&
                        memcmp(after + nb, tids, nt * sizeof *tids) == 0;
            CHECK_MSG(same, "%s: the tokens of the turn after reply %zu differ from the whole "
                            "conversation's (%zu + %zu vs %zu)", tmpl, k, nb, nt, na);
            kvp_free(before);
            kvp_free(after);
            kvp_free(tids);
        }
        at += lt;
        free(tail);
    }
    CHECK_MSG(at == lf, "%s: the turns cover %zu of %zu bytes", tmpl, at, lf);
    if (tokens) {
        /* and the whole conversation's ids are the rendering's */
        int32_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        CHECK(kvp_chat_tokenize(tok, tmpl, m, n, true, &a, &na, &err) == KVP_OK);
        b = tokenize_rendering(tok, full, lf, &nb);
        CHECK(a && b && na == nb && memcmp(a, b, na * sizeof *a) == 0);
        kvp_free(a);
        kvp_free(b);
    }
    kvp_free(full);
}

int main(void) {
    static const char *const templates[] = {"llama2", "llama3", "llama3.1", "chatml", "mistral", "kvp-mini"};
    kvp_tokenizer *mini = NULL, *bpe = NULL, *spm = NULL;
    kvp_error err = {0};
    CHECK(kvp_tokenizer_load(DATA "kvp-mini", &mini, &err) == KVP_OK);
    CHECK(kvp_tokenizer_load(DATA "tiny_bpe", &bpe, &err) == KVP_OK);
    CHECK(kvp_tokenizer_load(DATA "tiny_spm", &spm, &err) == KVP_OK);
    if (!mini || !bpe || !spm) return kvp_test_done("test_chat_turns");
    for (size_t t = 0; t < sizeof templates / sizeof templates[0]; t++) {
        const char *tm = templates[t];
        /* Token boundaries where the tokenizer knows the template's markers:
         * kvp-mini's <|end|>, Qwen's <|im_end|>, SentencePiece's </s> and <s>. */
        const kvp_tokenizer *tok = !strcmp(tm, "chatml") ? bpe : !strcmp(tm, "kvp-mini") ? mini : spm;
        bool tokens = strcmp(tm, "llama3") && strcmp(tm, "llama3.1");
        check_conversation(tok, tm, conv, N_CONV, tokens);
        check_conversation(tok, tm, conv + 1, N_CONV - 1, tokens);
        check_conversation(mini, tm, conv, N_CONV, false);
    }
    /* misuse */
    char *out = NULL;
    CHECK(kvp_chat_apply_next(mini, "kvp-mini", conv, 2, N_CONV, true, &out, &err) == KVP_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "assistant") != NULL);
    CHECK(kvp_chat_apply_next(mini, "kvp-mini", conv, 9, 3, true, &out, &err) == KVP_ERR_INVALID_ARG);
    CHECK(out == NULL);
    kvp_tokenizer_free(mini);
    kvp_tokenizer_free(bpe);
    kvp_tokenizer_free(spm);
    return kvp_test_done("test_chat_turns");
}
