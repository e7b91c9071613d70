/* kvprune convert: a Hugging Face folder or GGUF to a GGUF llama.cpp loads. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *type = "f32";
    bool vocab_only = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: kvprune convert -m IN -o OUT.gguf [--type TYPE] [--vocab-only]\n\n"
                   "  -m, --model IN   Hugging Face folder or GGUF file\n"
                   "  -o, --output F   the GGUF to write (written whole or not at all)\n"
                   "  --type T         weight type of matrices: f32 (default), f16, bf16, or\n"
                   "                   quantized with llama.cpp's reference quantizers:\n"
                   "                   q8_0, q4_0, q6_k, q4_k_m, q5_k_m (llama.cpp's presets,\n"
                   "                   same tensor types), q4_k, q5_k (every matrix in that type);\n"
                   "                   rows not a multiple of 256 fall back as llama.cpp's do\n"
                   "                   (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0)\n"
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
    static const struct {
        const char *name;
        kvp_ftype ft;
    } types[] = {{"f32", KVP_FTYPE_F32},   {"f16", KVP_FTYPE_F16},       {"bf16", KVP_FTYPE_BF16},
                 {"q8_0", KVP_FTYPE_Q8_0}, {"q4_0", KVP_FTYPE_Q4_0},     {"q4_k", KVP_FTYPE_Q4_K},
                 {"q5_k", KVP_FTYPE_Q5_K}, {"q6_k", KVP_FTYPE_Q6_K},     {"q4_k_m", KVP_FTYPE_Q4_K_M},
                 {"q5_k_m", KVP_FTYPE_Q5_K_M}};
    int ti = -1;
    for (int i = 0; i < (int)(sizeof types / sizeof types[0]); i++)
        if (!strcmp(type, types[i].name)) ti = i;
    if (ti < 0)
        return cli_usage_error("convert",
                               "--type: '%s' is not one of f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, "
                               "q6_k, q4_k_m, q5_k_m",
                               type);
    const kvp_ftype ft = types[ti].ft;
    kvp_error err = {0};
    kvp_status s = vocab_only ? kvp_convert_vocab_only(in, out, &err)
                              : kvp_convert_to_gguf(in, out, ft, &err);
    if (s) return cli_lib_error(&err);
    fprintf(stderr, "kvprune convert: wrote %s\n", out);
    return 0;
}
