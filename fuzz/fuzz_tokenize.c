/* The tokenizer's encode and decode on arbitrary bytes, with fixed
 * tokenizers of each kind (byte-level BPE, SentencePiece-style BPE with
 * byte fallback, the project's model's). Byte 0 picks the tokenizer and the
 * flags; the rest is the text, and read again as token ids (out-of-range
 * ones included) for decoding, batch and streaming. */
#include "fuzz_common.h"
#include "kvprune.h"

#ifndef KVP_SOURCE_DIR
#error "KVP_SOURCE_DIR must name the source tree (set by fuzz/CMakeLists.txt)"
#endif

static kvp_tokenizer *toks[3];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dirs[3] = {"tests/data/tokenizer/tiny_bpe", "tests/data/tokenizer/tiny_spm",
                           "tests/data/tokenizer/kvp-mini"};
    for (int i = 0; i < 3; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", KVP_SOURCE_DIR, dirs[i]);
        kvp_error err;
        if (kvp_tokenizer_load(p, &toks[i], &err) != KVP_OK) {
            fprintf(stderr, "%s\n", err.message);
            abort();
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const kvp_tokenizer *tok = toks[data[0] % 3];
    kvp_tokenize_params tp = {(data[0] >> 2) & 1, (data[0] >> 3) & 1};
    bool skip_special = (data[0] >> 4) & 1;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    kvp_error err;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (kvp_tokenize(tok, text, n, &tp, &ids, &n_ids, &err) == KVP_OK) {
        int nv = kvp_tokenizer_n_vocab(tok);
        for (size_t i = 0; i < n_ids; i++)
            if (ids[i] < 0 || ids[i] >= nv) abort(); /* ids are always in the vocabulary */
        char *back = NULL;
        size_t bl;
        if (kvp_detokenize(tok, ids, n_ids, skip_special, &back, &bl, &err) == KVP_OK) {
            if (strlen(back) > bl) abort();
            kvp_free(back);
        }
        kvp_free(ids);
    }
    /* the bytes as ids: decoding must refuse out-of-range ids, not read them */
    size_t m = n / 2;
    int32_t *raw = malloc((m ? m : 1) * sizeof *raw);
    if (!raw) return 0;
    int nv = kvp_tokenizer_n_vocab(tok);
    for (size_t i = 0; i < m; i++) {
        int v = (int)(((unsigned)(uint8_t)text[2 * i] << 8) | (uint8_t)text[2 * i + 1]);
        raw[i] = v % (nv + 8) - 4;
    }
    char *out = NULL;
    size_t ol;
    if (kvp_detokenize(tok, raw, m, skip_special, &out, &ol, &err) == KVP_OK) kvp_free(out);
    kvp_detok *d = NULL;
    if (kvp_detok_new(tok, skip_special, &d, &err) == KVP_OK) {
        for (size_t i = 0; i < m; i++) {
            const char *piece;
            (void)kvp_detok_push(d, raw[i], &piece, &err);
        }
        (void)kvp_detok_flush(d);
        kvp_detok_free(d);
    }
    free(raw);
    return 0;
}
