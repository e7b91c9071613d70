/* The model flags shared by the commands that load a model for generation:
 * one table fragment (cli_model_options). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_enum_value computes[] = {
    {"auto", KVP_COMPUTE_AUTO}, {"f32", KVP_COMPUTE_F32}, {"bf16", KVP_COMPUTE_BF16}, {NULL, 0}};

_Static_assert(sizeof(kvp_compute) == sizeof(int), "enum flags are int-sized");

size_t cli_model_options(kvp_model_params *p, cli_option out[CLI_MODEL_MAX_OPTIONS]) {
    const cli_option opts[] = {
        CLI_OPT_ENUM("--compute", &p->compute, computes,
                     "arithmetic of the weight products of 4+ tokens (prefill): auto is bf16 for "
                     "BF16 weights and f32 otherwise; bf16 rounds activations and weights to "
                     "bfloat16 with float32 sums (needs a build with oneDNN)",
                     .meta = "TYPE"),
        CLI_OPT_FLAG("--repack", &p->repack,
                     "keep a copy of every matrix whose stored type is not its compute type "
                     "(faster prefill; the memory it takes is printed)"),
    };
    memcpy(out, opts, sizeof opts);
    return CLI_COUNT(opts);
}

void cli_model_note(const kvp_model *m) {
    kvp_model_info I;
    kvp_model_get_info(m, &I);
    if (I.repack_bytes)
        fprintf(stderr, "kvprune: repacked weights take %.1f MiB (%" PRIu64 " bytes)\n",
                (double)I.repack_bytes / (1 << 20), I.repack_bytes);
}
