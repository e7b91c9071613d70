/* Token selection from logits: greedy, or temperature / top-k / top-p with a
 * seeded generator (internal). */
#ifndef KVP_GENERATE_SAMPLER_H
#define KVP_GENERATE_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct kvg_sampler {
    float temperature; /* <= 0: greedy */
    int top_k;         /* <= 0: off */
    float top_p;       /* >= 1: off */
    uint64_t state;
    /* scratch, n_vocab entries each */
    float *prob;
    int32_t *idx;
    int n_vocab;
} kvg_sampler;

/* Returns false when scratch memory cannot be allocated. */
bool kvg_sampler_init(kvg_sampler *s, int n_vocab, float temperature, int top_k, float top_p,
                      uint64_t seed);
void kvg_sampler_free(kvg_sampler *s);
/* Greedy picks the largest logit (the lowest id on ties). */
int32_t kvg_sampler_pick(kvg_sampler *s, const float *logits);
/* A uniform double in [0, 1) from the generator. */
double kvg_sampler_uniform(kvg_sampler *s);

#endif
