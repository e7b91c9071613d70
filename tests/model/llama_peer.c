/* llama.cpp as an outside peer: loads a GGUF written by `kvprune convert`
 * with the libllama that node-llama-cpp ships, runs the prompt and greedy
 * decoding, and compares ids and logits with a kvprune --dump-logits run.
 * Built and run by peer_llamacpp.sh (needs llama.h from that package).
 *
 * usage: llama_peer BINS_DIR MODEL.gguf IDS(1,2,3) N_STEPS OUR_LOGITS.f32 OUR_IDS(4,5,..)
 * exit 0 when ids are equal and every logit is within 1e-3 (relative to
 * max(1, |x|)). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama_common.h"

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: llama_peer BINS MODEL IDS N_STEPS LOGITS IDS\n");
        return 2;
    }
    llc_init(argv[1]);
    llama_token prompt[512], ours[512];
    int n_prompt = llc_parse_ids(argv[3], prompt, 512);
    int n_steps = atoi(argv[4]);
    int n_ours = llc_parse_ids(argv[6], ours, 512);
    struct llama_model *model = llc_load_model(argv[2], "");
    if (!model) return 1;
    int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    struct llama_context *ctx = llc_compare_context(model, 256);
    if (!ctx) return 1;
    float *ref = llc_read_logits(argv[5], n_steps, n_vocab);
    if (!ref) return 1;
    llama_token ids[512];
    double worst = 0;
    int mismatches = 0;
    struct llama_batch b = llama_batch_get_one(prompt, n_prompt);
    for (int s = 0; s < n_steps; s++) {
        if (llama_decode(ctx, b)) {
            fprintf(stderr, "llama_decode failed at step %d\n", s);
            return 1;
        }
        const float *lg = llama_get_logits_ith(ctx, -1);
        int best = 0;
        for (int i = 0; i < n_vocab; i++) {
            if (lg[i] > lg[best]) best = i;
            double r = ref[(size_t)s * n_vocab + i];
            double d = fabs(lg[i] - r) / (fabs(r) > 1 ? fabs(r) : 1);
            if (d > worst) worst = d;
        }
        ids[s] = best;
        if (s >= n_ours || ours[s] != best) mismatches++;
        b = llama_batch_get_one(&ids[s], 1);
    }
    printf("llama.cpp ids:");
    for (int s = 0; s < n_steps; s++) printf("%s%d", s ? "," : " ", ids[s]);
    printf("\nid mismatches: %d of %d; largest logit difference (relative to max(1,|x|)): %.3g\n",
           mismatches, n_steps, worst);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    free(ref);
    return mismatches == 0 && worst <= 1e-3 ? 0 : 1;
}
