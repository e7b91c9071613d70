#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "generate/sampler.h"

bool kvg_sampler_init(kvg_sampler *s, int n_vocab, float temperature, int top_k, float top_p,
                      uint64_t seed) {
    s->temperature = temperature;
    s->top_k = top_k;
    s->top_p = top_p;
    s->state = seed;
    s->n_vocab = n_vocab;
    s->prob = NULL;
    s->idx = NULL;
    if (temperature <= 0) return true;
    s->prob = malloc((size_t)n_vocab * sizeof *s->prob);
    s->idx = malloc((size_t)n_vocab * sizeof *s->idx);
    if (!s->prob || !s->idx) {
        kvg_sampler_free(s);
        return false;
    }
    return true;
}

void kvg_sampler_free(kvg_sampler *s) {
    free(s->prob);
    free(s->idx);
    s->prob = NULL;
    s->idx = NULL;
}

/* splitmix64: small, fast, and the same stream on every platform. */
double kvg_sampler_uniform(kvg_sampler *s) {
    uint64_t z = (s->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static int32_t argmax(const float *l, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    return best;
}

/* Sort indices by descending logit, ties by ascending id (a stable order). */
static int cmp_desc(const void *a, const void *b, const float *l) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (l[x] != l[y]) return l[x] > l[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static void sort_idx(int32_t *idx, int32_t *tmp, int n, const float *l) {
    if (n < 2) return;
    int h = n / 2;
    sort_idx(idx, tmp, h, l);
    sort_idx(idx + h, tmp, n - h, l);
    int i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = cmp_desc(&idx[i], &idx[j], l) <= 0 ? idx[i++] : idx[j++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    for (int q = 0; q < n; q++) idx[q] = tmp[q];
}

int32_t kvg_sampler_pick(kvg_sampler *s, const float *logits) {
    int n = s->n_vocab;
    if (s->temperature <= 0 || !s->prob) return argmax(logits, n);
    for (int i = 0; i < n; i++) s->idx[i] = i;
    /* prob doubles as merge scratch for the indices (same element size). */
    sort_idx(s->idx, (int32_t *)s->prob, n, logits);
    int keep = n;
    if (s->top_k > 0 && s->top_k < keep) keep = s->top_k;
    double mx = logits[s->idx[0]], sum = 0.0;
    for (int i = 0; i < keep; i++) {
        s->prob[i] = (float)exp(((double)logits[s->idx[i]] - mx) / s->temperature);
        sum += s->prob[i];
    }
    if (s->top_p < 1.0f) {
        double acc = 0.0;
        int cut = keep;
        for (int i = 0; i < keep; i++) {
            acc += s->prob[i] / sum;
            if (acc >= s->top_p) {
                cut = i + 1;
                break;
            }
        }
        keep = cut;
        sum = 0.0;
        for (int i = 0; i < keep; i++) sum += s->prob[i];
    }
    double r = kvg_sampler_uniform(s) * sum, acc = 0.0;
    for (int i = 0; i < keep; i++) {
        acc += s->prob[i];
        if (r < acc) return s->idx[i];
    }
    return s->idx[keep - 1];
}
