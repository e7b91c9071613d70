/* Conformance of the tokenizer with the reference (@lenml/tokenizers on the
 * real tokenizer.json files): ids, decode with and without special tokens,
 * and streaming decode, for every corpus string; once from tokenizer.json
 * once from a GGUF written here by kvt_tokenizer_to_gguf, and, when given,
 * from a GGUF made by `kvprune convert --vocab-only`.
 * Usage: test_tok_conformance NAME TOKENIZER_DIR CORPUS GOLDEN GGUF_OUT [CONVERTED_GGUF] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "kvprune.h"
#include "test_util.h"
#include "tok_test_io.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s NAME TOKENIZER_DIR CORPUS GOLDEN GGUF_OUT [CONVERTED_GGUF]\n", argv[0]);
        return 2;
    }
    const char *name = argv[1], *dir = argv[2];
    size_t cl, gl, nc, ng;
    char *cbuf = kvp_test_read_file(argv[3], &cl), *gbuf = kvp_test_read_file(argv[4], &gl);
    if (!cbuf || !gbuf) {
        fprintf(stderr, "cannot read %s or %s\n", argv[3], argv[4]);
        return 2;
    }
    char **corpus = tt_lines(cbuf, cl, &nc), **golden = tt_lines(gbuf, gl, &ng);
    CHECK_EQ_INT(nc, ng);
    if (nc != ng) return kvp_test_done(name);
    kvp_error err = {0};
    kvp_tokenizer *tok = NULL;
    kvp_status st = kvp_tokenizer_load(dir, &tok, &err);
    CHECK_MSG(st == KVP_OK, "%s", err.message);
    if (st != KVP_OK) return kvp_test_done(name);
    char label[256];
    stats s;
    snprintf(label, sizeof label, "%s tokenizer.json", name);
    run(label, tok, corpus, golden, nc, &s);

    /* the same through GGUF */
    const char *gpath = argv[5];
    gguf_writer *w = kvgguf_writer_new();
    CHECK(w != NULL);
    st = kvt_tokenizer_to_gguf(tok, w, &err);
    CHECK_MSG(st == KVP_OK, "%s", err.message);
    if (st == KVP_OK) {
        st = kvgguf_writer_write(w, gpath, &err);
        CHECK_MSG(st == KVP_OK, "%s", err.message);
    }
    kvgguf_writer_free(w);
    kvp_tokenizer *tg = NULL;
    if (st == KVP_OK) {
        st = kvp_tokenizer_load(gpath, &tg, &err);
        CHECK_MSG(st == KVP_OK, "%s", err.message);
    }
    if (tg) {
        snprintf(label, sizeof label, "%s GGUF", name);
        run(label, tg, corpus, golden, nc, &s);
        CHECK_EQ_INT(kvp_tokenizer_n_vocab(tg), kvp_tokenizer_n_vocab(tok));
        CHECK_EQ_INT(kvp_tokenizer_bos(tg), kvp_tokenizer_bos(tok));
        CHECK_EQ_INT(kvp_tokenizer_eos(tg), kvp_tokenizer_eos(tok));
        const char *a = kvp_chat_template_name(tg), *b = kvp_chat_template_name(tok);
        CHECK((a == NULL) == (b == NULL));
        if (a && b) CHECK_STR(a, b);
    }
    kvp_tokenizer_free(tg);
    tg = NULL;
    if (argc > 6) {
        st = kvp_tokenizer_load(argv[6], &tg, &err);
        CHECK_MSG(st == KVP_OK, "%s", err.message);
        if (tg) {
            snprintf(label, sizeof label, "%s convert --vocab-only", name);
            run(label, tg, corpus, golden, nc, &s);
        }
        kvp_tokenizer_free(tg);
    }
    kvp_tokenizer_free(tok);
    free(corpus);
    free(golden);
    free(cbuf);
    free(gbuf);
    return kvp_test_done(name);
}
