/* The model flags shared by generate, compare and needle. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

const char cli_model_flags_help[] =
    "Matrix product options:\n"
    "  --compute TYPE         arithmetic of the weight products of 4+ tokens\n"
    "                         (prefill): auto (default: bf16 for BF16 weights,\n"
    "                         f32 otherwise), f32, or bf16 (activations and\n"
    "                         weights rounded to bfloat16, float32 sums; needs a\n"
    "                         build with oneDNN)\n"
    "  --repack               keep a copy of every matrix whose stored type is not\n"
    "                         its compute type (faster prefill; the memory it\n"
    "                         takes is printed)\n";

int cli_model_flag(int argc, char **argv, int *i, kvp_model_params *p) {
    const char *a = argv[*i], *v = NULL;
    if (strcmp(a, "--compute") == 0) {
        if (!cli_take_value(argc, argv, i, &v)) return -1;
        if (strcmp(v, "auto") == 0) p->compute = KVP_COMPUTE_AUTO;
        else if (strcmp(v, "f32") == 0) p->compute = KVP_COMPUTE_F32;
        else if (strcmp(v, "bf16") == 0) p->compute = KVP_COMPUTE_BF16;
        else {
            cli_error("--compute: '%s' is not auto, f32 or bf16", v);
            return -1;
        }
        return 1;
    }
    if (strcmp(a, "--repack") == 0) {
        p->repack = true;
        return 1;
    }
    return 0;
}

void cli_model_note(const kvp_model *m) {
    kvp_model_info I;
    kvp_model_get_info(m, &I);
    if (I.repack_bytes)
        fprintf(stderr, "kvprune: repacked weights take %.1f MiB (%" PRIu64 " bytes)\n",
                (double)I.repack_bytes / (1 << 20), I.repack_bytes);
}
