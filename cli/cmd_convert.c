/* kvprune convert: a Hugging Face folder or GGUF to a GGUF llama.cpp loads. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "model/model.h"

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *type = "f32";
    bool vocab_only = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: kvprune convert -m IN -o OUT.gguf [--type f32|f16|bf16] [--vocab-only]\n\n"
                   "  -m, --model IN   Hugging Face folder or GGUF file\n"
                   "  -o, --output F   the GGUF to write (written whole or not at all)\n"
                   "  --type T         weight type of matrices: f32 (default), f16, bf16\n"
                   "  --vocab-only     write only the tokenizer metadata\n");
            return 0;
        } else if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            if (!cli_take_value(argc, argv, &i, &in)) return 2;
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            if (!cli_take_value(argc, argv, &i, &out)) return 2;
        } else if (!strcmp(argv[i], "--type")) {
            if (!cli_take_value(argc, argv, &i, &type)) return 2;
        } else if (!strcmp(argv[i], "--vocab-only")) {
            vocab_only = true;
        } else {
            return cli_usage_error("convert", "unknown flag '%s'", argv[i]);
        }
    }
    if (!in || !out) return cli_usage_error("convert", "-m IN and -o OUT are required");
    kvp_ftype ft;
    if (!strcmp(type, "f32"))
        ft = KVP_FTYPE_F32;
    else if (!strcmp(type, "f16"))
        ft = KVP_FTYPE_F16;
    else if (!strcmp(type, "bf16"))
        ft = KVP_FTYPE_BF16;
    else
        return cli_usage_error("convert", "--type: '%s' is not one of f32, f16, bf16", type);
    kvp_error err = {0};
    kvp_status s = vocab_only ? kvp_convert_vocab_only(in, out, &err)
                              : kvp_convert_to_gguf(in, out, ft, &err);
    if (s) return cli_lib_error(&err);
    fprintf(stderr, "kvprune: wrote %s\n", out);
    return 0;
}
