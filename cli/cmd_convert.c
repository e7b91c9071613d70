/* kvprune convert: a Hugging Face folder or GGUF to a GGUF llama.cpp loads. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_enum_value ftypes[] = {
    {"f32", KVP_FTYPE_F32},   {"f16", KVP_FTYPE_F16},   {"bf16", KVP_FTYPE_BF16},     {"q8_0", KVP_FTYPE_Q8_0},
    {"q4_0", KVP_FTYPE_Q4_0}, {"q4_k", KVP_FTYPE_Q4_K}, {"q5_k", KVP_FTYPE_Q5_K},     {"q6_k", KVP_FTYPE_Q6_K},
    {"q4_k_m", KVP_FTYPE_Q4_K_M}, {"q5_k_m", KVP_FTYPE_Q5_K_M}, {NULL, 0}};
_Static_assert(sizeof(kvp_ftype) == sizeof(int), "enum flags are int-sized");

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    kvp_ftype ft = KVP_FTYPE_F32;
    bool vocab_only = false;
    const cli_option own[] = {
        CLI_OPT_STRING("-m|--model", "IN", &in, "Hugging Face folder or GGUF file", .required = true),
        CLI_OPT_STRING("-o|--output", "F", &out, "the GGUF to write (written whole or not at all)", .required = true),
        CLI_OPT_ENUM("--type", &ft, ftypes,
                     "weight type of matrices: f32, f16, bf16, or quantized with llama.cpp's "
                     "reference quantizers: q8_0, q4_0, q6_k, q4_k_m, q5_k_m (llama.cpp's presets, "
                     "same tensor types), q4_k, q5_k (every matrix in that type); rows not a "
                     "multiple of 256 fall back as llama.cpp's do (Q4_K -> Q5_0, Q5_K -> Q5_1, "
                     "Q6_K -> Q8_0)",
                     .meta = "T"),
        CLI_OPT_FLAG("--vocab-only", &vocab_only, "write only the tokenizer metadata"),
    };
    const cli_group groups[] = {{NULL, own, CLI_COUNT(own)}};
    const cli_command cmd = {"convert", "-m IN -o OUT.gguf [--type TYPE] [--vocab-only]", NULL, groups,
                             CLI_COUNT(groups), NULL};
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    kvp_error err = {0};
    kvp_status s = vocab_only ? kvp_convert_vocab_only(in, out, &err)
                              : kvp_convert_to_gguf(in, out, ft, &err);
    if (s) return cli_lib_error(&err);
    fprintf(stderr, "kvprune convert: wrote %s\n", out);
    return 0;
}
