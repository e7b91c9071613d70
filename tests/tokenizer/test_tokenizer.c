/* Offline tokenizer tests: two small tokenizers cut from the real Mistral
 * and Qwen2.5 ones (goldens from the reference tokenizer), from tokenizer.json
 * and through GGUF; chat templates against @huggingface/jinja renders;
 * streaming decode; special-token options; errors on bad input. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/gguf.h"
#include "test_util.h"
#include "tok_test_io.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"

#define DATA "tests/data/tokenizer/"

static char tmpdir[512];

static kvp_tokenizer *load(const char *path) {
    kvp_tokenizer *t = NULL;
    kvp_error err = {0};
    kvp_status st = kvp_tokenizer_load(path, &t, &err);
    CHECK_MSG(st == KVP_OK, "%s: %s", path, err.message);
    return t;
}

static kvp_tokenizer *gguf_roundtrip(const kvp_tokenizer *t, const char *name) {
    char path[640];
    snprintf(path, sizeof path, "%s/%s.gguf", tmpdir, name);
    kvp_error err = {0};
    gguf_writer *w = kvgguf_writer_new();
    kvp_status st = kvt_tokenizer_to_gguf(t, w, &err);
    CHECK_MSG(st == KVP_OK, "%s", err.message);
    if (st == KVP_OK) {
        st = kvgguf_writer_write(w, path, &err);
        CHECK_MSG(st == KVP_OK, "%s", err.message);
    }
    kvgguf_writer_free(w);
    return st == KVP_OK ? load(path) : NULL;
}

static void test_goldens(const char *name) {
    char dir[256], golden[256];
    snprintf(dir, sizeof dir, DATA "%s", name);
    snprintf(golden, sizeof golden, DATA "%s/golden.txt", name);
    size_t cl, gl, nc, ng;
    char *cbuf = kvp_test_read_file(DATA "tiny_corpus.txt", &cl), *gbuf = kvp_test_read_file(golden, &gl);
    CHECK(cbuf && gbuf);
    if (!cbuf || !gbuf) return;
    char **corpus = tt_lines(cbuf, cl, &nc), **gold = tt_lines(gbuf, gl, &ng);
    CHECK_EQ_INT(nc, ng);
    kvp_tokenizer *t = load(dir);
    stats s;
    char label[128];
    if (t && nc == ng) {
        snprintf(label, sizeof label, "%s tokenizer.json", name);
        run(label, t, corpus, gold, nc, &s);
        kvp_tokenizer *g = gguf_roundtrip(t, name);
        if (g) {
            snprintf(label, sizeof label, "%s GGUF", name);
            run(label, g, corpus, gold, nc, &s);
        }
        kvp_tokenizer_free(g);
    }
    kvp_tokenizer_free(t);
    free(corpus);
    free(gold);
    free(cbuf);
    free(gbuf);
}

static int32_t *tokenize(const kvp_tokenizer *t, const char *s, bool add, bool parse, size_t *n) {
    kvp_tokenize_params p = {.add_special = add, .parse_special = parse};
    int32_t *ids = NULL;
    kvp_error err = {0};
    kvp_status st = kvp_tokenize(t, s, strlen(s), &p, &ids, n, &err);
    CHECK_MSG(st == KVP_OK, "%s", err.message);
    return ids;
}

static void test_options(void) {
    kvp_tokenizer *t = load(DATA "tiny_spm");
    if (!t) return;
    CHECK_EQ_INT(kvp_tokenizer_n_vocab(t), 4701);
    CHECK_EQ_INT(kvp_tokenizer_bos(t), 1);
    CHECK_EQ_INT(kvp_tokenizer_eos(t), 2);
    CHECK_STR(kvp_token_text(t, 1), "<s>");
    CHECK(kvp_token_text(t, -1) == NULL && kvp_token_text(t, 4701) == NULL);
    CHECK_STR(kvp_chat_template_name(t), "kvp-mini");
    size_t n1, n2, n3;
    /* add_special adds exactly the BOS in front */
    int32_t *a = tokenize(t, "Hello world", true, true, &n1);
    int32_t *b = tokenize(t, "Hello world", false, true, &n2);
    CHECK(n1 == n2 + 1 && a[0] == 1 && memcmp(a + 1, b, n2 * sizeof *b) == 0);
    free(a);
    free(b);
    /* parse_special: a special token's text is one id, or plain text when off;
     * non-special added tokens (<tool>) are recognised either way */
    int32_t sys = -1, tool = -1;
    for (int32_t i = 0; i < kvp_tokenizer_n_vocab(t); i++) {
        if (!strcmp(kvp_token_text(t, i), "<|system|>")) sys = i;
        if (!strcmp(kvp_token_text(t, i), "<tool>")) tool = i;
    }
    CHECK(sys >= 0 && tool >= 0);
    a = tokenize(t, "<|system|>", false, true, &n1);
    CHECK(n1 == 1 && a[0] == sys);
    free(a);
    a = tokenize(t, "<|system|><tool>", false, false, &n1);
    bool has_sys = false;
    for (size_t i = 0; i < n1; i++) has_sys |= a[i] == sys;
    CHECK(!has_sys && n1 > 2 && a[n1 - 1] == tool);
    free(a);
    /* empty text */
    a = tokenize(t, "", true, true, &n3);
    CHECK(n3 == 1 && a[0] == 1);
    free(a);
    a = tokenize(t, "", false, true, &n3);
    CHECK(n3 == 0);
    free(a);
    /* decode errors */
    int32_t bad = 99999;
    char *txt = NULL;
    kvp_error err = {0};
    CHECK(kvp_detokenize(t, &bad, 1, false, &txt, NULL, &err) == KVP_ERR_RANGE);
    CHECK(strstr(err.message, "99999") != NULL);
    kvp_tokenizer_free(t);
}

/* Streaming never splits a UTF-8 character: an emoji spelled as four
 * byte-fallback tokens appears only with the fourth. */
static void test_streaming(void) {
    kvp_tokenizer *t = load(DATA "tiny_spm");
    if (!t) return;
    size_t n;
    int32_t *ids = tokenize(t, "a\xF0\x9F\xA6\x80", false, true, &n); /* "a🦀" */
    kvp_detok *d = NULL;
    kvp_error err = {0};
    CHECK(kvp_detok_new(t, true, &d, &err) == KVP_OK);
    CHECK(n == 5 || n == 6); /* "▁a" or "▁" "a", then 4 byte tokens */
    const char *p = NULL;
    size_t k = 0;
    kvt_buf all = {0};
    for (; k + 4 < n; k++) {
        CHECK(kvp_detok_push(d, ids[k], &p, &err) == KVP_OK);
        kvt_buf_puts(&all, p);
    }
    CHECK_STR(all.p, "a");
    for (int j = 0; j < 3; j++, k++) {
        CHECK(kvp_detok_push(d, ids[k], &p, &err) == KVP_OK);
        CHECK_STR(p, "");
    }
    CHECK(kvp_detok_push(d, ids[k], &p, &err) == KVP_OK);
    CHECK_STR(p, "\xF0\x9F\xA6\x80");
    CHECK_STR(kvp_detok_flush(d), "");
    /* an incomplete character is held back, then flushed as U+FFFD */
    CHECK(kvp_detok_push(d, ids[n - 4], &p, &err) == KVP_OK);
    CHECK_STR(p, "");
    CHECK_STR(kvp_detok_flush(d), "\xEF\xBF\xBD");
    kvp_detok_free(d);
    free(ids);
    free(all.p);
    kvp_tokenizer_free(t);
}

static void test_sanitize(void) {
    size_t n;
    char *s = kvt_utf8_sanitize("a\x80" "b\xE2\x82" "c\xF0\x9F\x98", 9, &n);
    /* one U+FFFD per maximal subpart (as Python's errors="replace") */
    CHECK_STR(s, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xEF\xBF\xBD");
    free(s);
    s = kvt_utf8_sanitize("\xED\xA0\x80", 3, &n); /* a surrogate: 3 subparts */
    CHECK_STR(s, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    free(s);
}

static void test_chat(void) {
    json_error_t je;
    json_t *root = json_load_file(DATA "chat_goldens.json", 0, &je);
    CHECK_MSG(root != NULL, "chat_goldens.json: %s", je.text);
    if (!root) return;
    size_t i, n_cases = 0, n_ok = 0;
    json_t *src;
    json_array_foreach(root, i, src) {
        const char *name = json_string_value(json_object_get(src, "name"));
        const char *builtin = json_string_value(json_object_get(src, "builtin"));
        const char *tmpl = json_string_value(json_object_get(src, "template"));
        /* Meta's Llama-3.1 template is not stored (only its renders): a
         * short stand-in with its distinctive header line is recognised. */
        if (!tmpl && !strcmp(builtin, "llama3.1"))
            tmpl = "{{- bos_token }}{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}"
                   "{{- \"Cutting Knowledge Date: December 2023\\n\" }}";
        CHECK_MSG(tmpl != NULL, "%s: no template string", name);
        if (!tmpl) continue;
        bool bpe = !strncmp(builtin, "llama3", 6) || !strcmp(builtin, "chatml");
        kvp_tokenizer *t = load(bpe ? DATA "tiny_bpe" : DATA "tiny_spm");
        if (!t) continue;
        free(t->chat_template);
        t->chat_template = strdup(tmpl);
        kvt_recognise_template(t);
        CHECK_MSG(t->chat_name && !strcmp(t->chat_name, builtin), "%s recognised as %s", name,
                  t->chat_name ? t->chat_name : "(none)");
        const char *bos = json_string_value(json_object_get(src, "bos_token"));
        const char *eos = json_string_value(json_object_get(src, "eos_token"));
        if (bos) t->bos = kvt_find(t, bos, strlen(bos));
        if (eos && kvt_find(t, eos, strlen(eos)) >= 0) t->eos = kvt_find(t, eos, strlen(eos));
        size_t k;
        json_t *c;
        json_array_foreach(json_object_get(src, "cases"), k, c) {
            json_t *msgs = json_object_get(c, "messages");
            size_t nm = json_array_size(msgs);
            kvp_chat_message m[16];
            for (size_t j = 0; j < nm && j < 16; j++) {
                m[j].role = json_string_value(json_object_get(json_array_get(msgs, j), "role"));
                m[j].content = json_string_value(json_object_get(json_array_get(msgs, j), "content"));
            }
            bool gen = json_is_true(json_object_get(c, "add_generation_prompt"));
            const char *want = json_string_value(json_object_get(c, "rendered"));
            for (int by_name = 0; by_name < 2; by_name++) {
                char *got = NULL;
                kvp_error err = {0};
                kvp_status st = kvp_chat_apply(t, by_name ? builtin : NULL, m, nm, gen, &got, &err);
                n_cases++;
                bool ok = st == KVP_OK && !strcmp(got, want);
                n_ok += ok;
                CHECK_MSG(ok, "%s case %zu gen=%d:\n want '%s'\n got  '%s'", name, k, gen, want,
                          got ? got : err.message);
                free(got);
            }
        }
        kvp_tokenizer_free(t);
    }
    printf("chat templates: %zu/%zu renders identical to @huggingface/jinja\n", n_ok, n_cases);
    json_decref(root);
    /* errors: unknown template name, unknown role, no template */
    kvp_tokenizer *t = load(DATA "tiny_bpe");
    if (t) {
        kvp_chat_message m = {"user", "hi"}, bad = {"tool", "x"};
        char *out = NULL;
        kvp_error err = {0};
        CHECK(kvp_chat_apply(t, "vicuna", &m, 1, true, &out, &err) == KVP_ERR_INVALID_ARG);
        CHECK(strstr(err.message, "vicuna") != NULL);
        CHECK(strstr(err.message, "llama3.1") != NULL); /* the list of names */
        CHECK(kvp_chat_apply(t, "chatml", &bad, 1, true, &out, &err) == KVP_ERR_INVALID_ARG);
        CHECK(strstr(err.message, "tool") != NULL);
        CHECK(kvp_chat_apply(t, NULL, &m, 1, true, &out, &err) == KVP_OK); /* Qwen2.5 template */
        free(out);
        free(t->chat_template);
        t->chat_template = NULL;
        kvt_recognise_template(t);
        CHECK(kvp_chat_apply(t, "auto", &m, 1, true, &out, &err) == KVP_ERR_UNSUPPORTED);
        CHECK(strstr(err.message, "no chat template") != NULL);
        kvp_tokenizer_free(t);
    }
}

/* ---- bad input ---- */

static const char *GOOD =
    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"a\":1,\"b\":2,\"ab\":3,\"\xE2\x96\x81\":4},"
    "\"merges\":[\"a b\"],\"unk_token\":\"<unk>\"},"
    "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\xE2\x96\x81\"},"
    "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xE2\x96\x81\"}]},"
    "\"pre_tokenizer\":null,\"decoder\":null,\"added_tokens\":[]}";

static char *replace(const char *s, const char *from, const char *to) {
    const char *p = strstr(s, from);
    CHECK_MSG(p != NULL, "fixture lacks '%s'", from);
    if (!p) return strdup(s);
    size_t a = (size_t)(p - s), fl = strlen(from), tl = strlen(to), n = strlen(s);
    char *o = malloc(n - fl + tl + 1);
    memcpy(o, s, a);
    memcpy(o + a, to, tl);
    memcpy(o + a + tl, p + fl, n - a - fl + 1);
    return o;
}

/* Loads `json` as a tokenizer.json; expects status `want` and a message
 * holding `needle` and the file name. */
static void expect_load(const char *json, kvp_status want, const char *needle) {
    char path[640];
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
    FILE *f = fopen(path, "wb");
    fputs(json, f);
    fclose(f);
    kvp_tokenizer *t = NULL;
    kvp_error err = {0};
    kvp_status st = kvp_tokenizer_load(path, &t, &err);
    CHECK_MSG(st == want, "want status %d, got %d (%s) for needle '%s'", want, st, err.message, needle);
    if (want != KVP_OK) {
        CHECK_MSG(strstr(err.message, needle) != NULL, "'%s' not in '%s'", needle, err.message);
        CHECK_MSG(strstr(err.message, "tokenizer.json") != NULL, "no file name in '%s'", err.message);
        CHECK(t == NULL);
    }
    kvp_tokenizer_free(t);
}

static void test_bad_input(void) {
    expect_load(GOOD, KVP_OK, "");
    {
        char path[640];
        snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
        kvp_tokenizer *t = load(path);
        if (t) {
            size_t n;
            int32_t *ids = tokenize(t, "ab", false, true, &n);
            CHECK(n == 2 && ids[0] == 4 && ids[1] == 3);
            free(ids);
        }
        kvp_tokenizer_free(t);
    }
    struct { const char *from, *to; kvp_status st; const char *needle; } cases[] = {
        {"\"a b\"", "\"a c\"", KVP_ERR_FORMAT, "not in the vocabulary ('c')"},
        {"\"a b\"", "\"a b c\"", KVP_ERR_FORMAT, "two tokens"},
        {"\"a b\"", "[\"a\",\"zz\"]", KVP_ERR_FORMAT, "'zz'"},
        {"\"a b\"", "\"b a\"", KVP_ERR_FORMAT, "gives a token that is not in the vocabulary"},
        {"\"type\":\"BPE\"", "\"type\":\"Unigram\"", KVP_ERR_UNSUPPORTED, "model type 'Unigram'"},
        {"\"pre_tokenizer\":null", "\"pre_tokenizer\":{\"type\":\"Whitespace\"}", KVP_ERR_UNSUPPORTED, "pre_tokenizer type 'Whitespace'"},
        {"\"pre_tokenizer\":null", "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"behavior\":\"Removed\"}", KVP_ERR_UNSUPPORTED, "behavior 'Removed'"},
        {"\"pre_tokenizer\":null", "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}", KVP_ERR_UNSUPPORTED, "mixing ByteLevel"},
        {"\"type\":\"Sequence\",\"normalizers\"", "\"type\":\"Lowercase\",\"normalizers\"", KVP_ERR_UNSUPPORTED, "normalizer type 'Lowercase'"},
        {"\"decoder\":null", "\"decoder\":{\"type\":\"WordPiece\"}", KVP_ERR_UNSUPPORTED, "decoder type 'WordPiece'"},
        {"\"decoder\":null", "\"post_processor\":{\"type\":\"BertProcessing\"}", KVP_ERR_UNSUPPORTED, "post_processor type 'BertProcessing'"},
        {"\"<unk>\":0", "\"<unk>\":\"zero\"", KVP_ERR_FORMAT, "vocab entry '<unk>'"},
        {"\"unk_token\":\"<unk>\"", "\"unk_token\":\"<nope>\"", KVP_ERR_FORMAT, "unk_token '<nope>'"},
        {"\"model\":", "\"modle\":", KVP_ERR_FORMAT, "missing \"model\""},
        {"\"merges\":", "\"merge\":", KVP_ERR_FORMAT, "model.merges"},
        {"\"added_tokens\":[]", "\"added_tokens\":[{\"id\":9}]", KVP_ERR_FORMAT, "added_tokens[0]"},
        {"\"added_tokens\":[]}", "\"added_tokens\":[]", KVP_ERR_FORMAT, "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *j = replace(GOOD, cases[i].from, cases[i].to);
        expect_load(j, cases[i].st, cases[i].needle);
        free(j);
    }
    /* missing files and folders */
    kvp_tokenizer *t = NULL;
    kvp_error err = {0};
    CHECK(kvp_tokenizer_load("tests/data/tokenizer/no-such-file.json", &t, &err) == KVP_ERR_IO);
    CHECK(strstr(err.message, "no-such-file.json") != NULL);
    CHECK(kvp_tokenizer_load("tests/data", &t, &err) == KVP_ERR_IO);
    CHECK(strstr(err.message, "no tokenizer.json") != NULL);
    /* GGUF: unsupported model and pre-tokenizer, missing tokens */
    const char *toks[] = {"a", "b"};
    struct { const char *model, *pre; bool tokens; const char *needle; } g[] = {
        {"bert", NULL, true, "tokenizer.ggml.model 'bert'"},
        {"gpt2", "deepseek-coder", true, "tokenizer.ggml.pre 'deepseek-coder'"},
        {"gpt2", "qwen2", false, "tokenizer.ggml.tokens"},
        {"llama", NULL, true, "tokenizer.ggml.scores"},
    };
    for (size_t i = 0; i < sizeof g / sizeof *g; i++) {
        char path[640];
        snprintf(path, sizeof path, "%s/bad%zu.gguf", tmpdir, i);
        gguf_writer *w = kvgguf_writer_new();
        kvgguf_writer_set_str(w, "tokenizer.ggml.model", g[i].model);
        if (g[i].pre) kvgguf_writer_set_str(w, "tokenizer.ggml.pre", g[i].pre);
        if (g[i].tokens) kvgguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 2);
        CHECK(kvgguf_writer_write(w, path, &err) == KVP_OK);
        kvgguf_writer_free(w);
        kvp_status st = kvp_tokenizer_load(path, &t, &err);
        CHECK(st != KVP_OK && t == NULL);
        CHECK_MSG(strstr(err.message, g[i].needle) && strstr(err.message, path), "'%s' lacks '%s'",
                  err.message, g[i].needle);
    }
    /* a GGUF without tokenizer metadata */
    {
        char path[640];
        snprintf(path, sizeof path, "%s/notok.gguf", tmpdir);
        gguf_writer *w = kvgguf_writer_new();
        kvgguf_writer_set_str(w, "general.name", "x");
        CHECK(kvgguf_writer_write(w, path, &err) == KVP_OK);
        kvgguf_writer_free(w);
        CHECK(kvp_tokenizer_load(path, &t, &err) == KVP_ERR_FORMAT);
        CHECK(strstr(err.message, "no tokenizer metadata") != NULL);
    }
}

static void rm_rf(const char *dir) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/kvp_tok_test_XXXXXX", base && *base ? base : P_tmpdir);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_sanitize();
    test_goldens("tiny_spm");
    test_goldens("tiny_bpe");
    test_options();
    test_streaming();
    test_chat();
    test_bad_input();
    rm_rf(tmpdir);
    return kvp_test_done("test_tokenizer");
}
