/* Chat template rendering: the input is split at NUL bytes into a template
 * name, then (role, content) pairs; every named template (and "auto") is
 * tried on the messages, rendered and tokenized. */
#include "fuzz_common.h"
#include "kvprune.h"

#ifndef KVP_SOURCE_DIR
#error "KVP_SOURCE_DIR must name the source tree (set by fuzz/CMakeLists.txt)"
#endif

static kvp_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char p[1024];
    snprintf(p, sizeof p, "%s/tests/data/tokenizer/kvp-mini", KVP_SOURCE_DIR);
    kvp_error err;
    if (kvp_tokenizer_load(p, &tok, &err) != KVP_OK) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    enum { MAX_FIELDS = 17 };
    char *fields[MAX_FIELDS];
    size_t nf = 0;
    const uint8_t *p = data, *end = data + size;
    while (nf < MAX_FIELDS) {
        const uint8_t *z = memchr(p, 0, (size_t)(end - p));
        size_t len = z ? (size_t)(z - p) : (size_t)(end - p);
        fields[nf++] = fz_str(p, len);
        if (!z) break;
        p = z + 1;
    }
    static const char *const names[] = {NULL,   "auto",    "llama2",  "llama3",
                                        "llama3.1", "chatml", "mistral", "kvp-mini"};
    kvp_chat_message msgs[8];
    size_t nm = 0;
    for (size_t i = 1; i + 1 < nf && nm < 8; i += 2) msgs[nm++] = (kvp_chat_message){fields[i], fields[i + 1]};
    kvp_error err;
    for (size_t t = 0; t < sizeof names / sizeof names[0] + 1; t++) {
        const char *name = t < sizeof names / sizeof names[0] ? names[t] : fields[0];
        for (int gen = 0; gen < 2; gen++) {
            char *out = NULL;
            if (kvp_chat_apply(tok, name, msgs, nm, gen, &out, &err) == KVP_OK) kvp_free(out);
        }
        int32_t *ids = NULL;
        size_t n = 0;
        if (kvp_chat_tokenize(tok, name, msgs, nm, true, &ids, &n, &err) == KVP_OK) kvp_free(ids);
    }
    for (size_t i = 0; i < nf; i++) free(fields[i]);
    return 0;
}
