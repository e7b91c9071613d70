/* llama.cpp as the peer of the quantized formats (node-llama-cpp 3.21.1's
 * libllama / libggml-base). Built and run by peer_llamacpp_quant.sh.
 *
 *   llama_quant_peer quantize IN.gguf OUT.gguf FTYPE PURE
 *       llama_model_quantize (no importance matrix); FTYPE is llama.cpp's
 *       LLAMA_FTYPE_* number, PURE 1 for --pure.
 *   llama_quant_peer dump FILE.gguf
 *       general.file_type, then one line per tensor, sorted by the caller:
 *       name, ggml type name, FNV-1a 64 of its bytes (ggml's gguf reader).
 *   llama_quant_peer run BINS MODEL IDS N_STEPS OUR_LOGITS.f32 OUR_IDS TOL
 *       greedy decoding fed with llama.cpp's own ids; exit 0 when our ids
 *       equal llama.cpp's and at every step max |logit difference| is
 *       within TOL of the step's largest |logit| (at least 1). A different
 *       id where llama.cpp's top two logits are within 2 TOL of each other
 *       (relative to the largest) ends the comparison without failing, if
 *       at least 8 steps were compared. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "llama_common.h"

static int quantize(const char *in, const char *out, int ftype, int pure) {
    struct llama_model_quantize_params p = llama_model_quantize_default_params();
    p.nthread = 1;
    p.ftype = (enum llama_ftype)ftype;
    p.pure = pure != 0;
    if (llama_model_quantize(in, out, &p)) {
        fprintf(stderr, "llama_model_quantize %s -> %s (ftype %d) failed\n", in, out, ftype);
        return 1;
    }
    return 0;
}

static int dump(const char *path) {
    struct gguf_init_params ip = {true, NULL};
    struct gguf_context *g = gguf_init_from_file(path, ip);
    FILE *f = fopen(path, "rb");
    if (!g || !f) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    int64_t k = gguf_find_key(g, "general.file_type");
    printf("general.file_type %u\n", k >= 0 ? gguf_get_val_u32(g, k) : 9999u);
    for (int64_t i = 0; i < gguf_get_n_tensors(g); i++) {
        size_t n = gguf_get_tensor_size(g, i);
        unsigned char *b = malloc(n ? n : 1);
        if (fseek(f, (long)(gguf_get_data_offset(g) + gguf_get_tensor_offset(g, i)), SEEK_SET) ||
            fread(b, 1, n, f) != n) {
            fprintf(stderr, "%s: short read\n", path);
            return 1;
        }
        uint64_t h = 1469598103934665603ull;
        for (size_t j = 0; j < n; j++) h = (h ^ b[j]) * 1099511628211ull;
        printf("%s %s %016llx\n", gguf_get_tensor_name(g, i), ggml_type_name(gguf_get_tensor_type(g, i)),
               (unsigned long long)h);
        free(b);
    }
    fclose(f);
    gguf_free(g);
    return 0;
}

static int run(char **argv) {
    ggml_backend_load_all_from_path(argv[0]);
    llama_token prompt[1024], ours[1024], ids[1024];
    const int n_prompt = llc_parse_ids(argv[2], prompt, 1024);
    const int n_steps = atoi(argv[3]);
    const int n_ours = llc_parse_ids(argv[5], ours, 1024);
    const double tol = atof(argv[6]);
    struct llama_model *model = llc_load_model(argv[1], "");
    if (!model) return 1;
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    struct llama_context *ctx = llc_compare_context(model, 1024);
    if (!ctx) return 1;
    float *ref = llc_read_logits(argv[4], n_steps, n_vocab);
    if (!ref) return 1;
    double worst = 0;
    int mismatches = 0, first_bad = -1, compared = 0, tie_at = -1;
    struct llama_batch b = llama_batch_get_one(prompt, n_prompt);
    for (int s = 0; s < n_steps; s++) {
        if (llama_decode(ctx, b)) return 1;
        const float *lg = llama_get_logits_ith(ctx, -1);
        int best = 0, second = -1;
        double range = 1, diff = 0;
        for (int i = 0; i < n_vocab; i++) {
            const double r = ref[(size_t)s * n_vocab + i];
            if (fabs(r) > range) range = fabs(r);
            if (fabs(lg[i] - r) > diff) diff = fabs(lg[i] - r);
        }
        for (int i = 1; i < n_vocab; i++) {
            if (lg[i] > lg[best]) {
                second = best;
                best = i;
            } else if (second < 0 || lg[i] > lg[second]) {
                second = i;
            }
        }
        ids[s] = best;
        if (s >= n_ours) break;
        if (ours[s] != best) {
            /* Two engines whose activations are quantized to 8 bits may
             * round one activation differently after any float reordering
             * upstream; where llama.cpp's top two logits are that close, the
             * choice is a coin toss and the sequences part ways there. */
            if (lg[best] - lg[second] <= 2 * tol * range) {
                tie_at = s;
                break;
            }
            mismatches++;
        }
        compared++;
        if (diff / range > worst) worst = diff / range;
        if (first_bad < 0 && worst > tol) first_bad = s;
        if (getenv("PEER_VERBOSE")) printf("  step %d: worst so far %.3g\n", s, worst);
        b = llama_batch_get_one(&ids[s], 1);
    }
    printf("  llama.cpp: %d of %d compared steps choose another id; largest logit difference %.2e of "
           "the largest logit (tolerance %.0e)",
           mismatches, compared, worst, tol);
    if (first_bad >= 0) printf("; first exceeded at step %d", first_bad);
    if (tie_at >= 0) printf("; near-tie at step %d ends the comparison", tie_at);
    printf("\n");
    llama_free(ctx);
    llama_model_free(model);
    free(ref);
    /* A comparison cut short by a near-tie must still cover some steps. */
    return mismatches == 0 && worst <= tol && compared >= (n_steps < 8 ? n_steps : 8) ? 0 : 1;
}

int main(int argc, char **argv) {
    llc_init(NULL); /* run loads the backends of its BINS */
    int rc = 2;
    if (argc == 6 && !strcmp(argv[1], "quantize"))
        rc = quantize(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    else if (argc == 3 && !strcmp(argv[1], "dump"))
        rc = dump(argv[2]);
    else if (argc == 9 && !strcmp(argv[1], "run"))
        rc = run(argv + 2);
    else
        fprintf(stderr, "usage: llama_quant_peer quantize IN OUT FTYPE PURE | dump FILE | "
                        "run BINS MODEL IDS N_STEPS LOGITS IDS TOL\n");
    llama_backend_free();
    return rc;
}
