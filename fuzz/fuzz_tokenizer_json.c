/* tokenizer.json (up to the first NUL) and tokenizer_config.json (the
 * rest): the loader, then a round of encode/decode and the chat template. */
#include "fuzz_common.h"
#include "kvprune.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t n1, n2;
    const uint8_t *rest;
    fz_split(data, size, &n1, &rest, &n2);
    fz_write(fz_path(0, "tokenizer.json"), data, n1);
    const char *cfg = fz_path(1, "tokenizer_config.json");
    if (rest > data + n1) fz_write(cfg, rest, n2);
    else unlink(cfg);
    kvp_error err;
    kvp_tokenizer *tok = NULL;
    if (kvp_tokenizer_load(fz_dir(), &tok, &err) != KVP_OK) return 0;
    static const char text[] = "Hello, w\xc3\xb6rld! <|im_start|>user 12345 \xe4\xbd\xa0\xe5\xa5\xbd\n\t  x";
    kvp_tokenize_params tp = kvp_tokenize_default_params();
    int32_t *ids = NULL;
    size_t n = 0;
    if (kvp_tokenize(tok, text, sizeof text - 1, &tp, &ids, &n, &err) == KVP_OK) {
        char *out = NULL;
        size_t len;
        if (kvp_detokenize(tok, ids, n, false, &out, &len, &err) == KVP_OK) kvp_free(out);
        kvp_free(ids);
    }
    int nv = kvp_tokenizer_n_vocab(tok);
    for (int32_t id = 0; id < nv && id < 300; id++) (void)kvp_token_text(tok, id);
    kvp_chat_message msgs[2] = {{"system", "be brief"}, {"user", "hi"}};
    char *rendered = NULL;
    if (kvp_chat_apply(tok, NULL, msgs, 2, true, &rendered, &err) == KVP_OK) kvp_free(rendered);
    ids = NULL;
    if (kvp_chat_tokenize(tok, NULL, msgs, 2, true, &ids, &n, &err) == KVP_OK) kvp_free(ids);
    kvp_tokenizer_free(tok);
    return 0;
}
