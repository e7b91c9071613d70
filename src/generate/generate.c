/* kvp_eval and kvp_generate: the prefill/decode loop over the model and a
 * caller-owned cache. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "generate/sampler.h"
#include "model/model.h"
#include "util/clock.h"
#include "util/error.h"

kvp_gen_params kvp_gen_default_params(void) {
    kvp_gen_params p;
    memset(&p, 0, sizeof p);
    p.max_new_tokens = 64;
    p.temperature = 0.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.seed = 0;
    return p;
}

kvp_status kvp_eval(const kvp_model *model, kvp_cache *cache, const int32_t *ids, size_t n, float *logits,
                    kvp_error *err) {
    kvu_error_clear(err);
    if (!model || !cache || !ids || n == 0)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_eval: needs a model, a cache and tokens");
    if (n > (size_t)INT32_MAX / 2)
        return kvu_fail(err, KVP_ERR_RANGE, "kvp_eval: %zu tokens is too many", n);
    int n_prompt_total = kvc_next_pos(cache) == 0 ? (int)n : 0;
    return kvm_forward(model, cache, ids, (int)n, n_prompt_total, logits, model->n_threads, err);
}

static bool is_eos(const kvp_model *m, int32_t id) {
    for (int i = 0; i < m->info.n_eos; i++)
        if (m->info.eos_ids[i] == id) return true;
    return false;
}

kvp_status kvp_generate(const kvp_model *model, kvp_cache *cache, const int32_t *prompt, size_t n_prompt,
                        const kvp_gen_params *params, kvp_gen_result *out, kvp_error *err) {
    kvu_error_clear(err);
    if (out) memset(out, 0, sizeof *out);
    if (!model || !cache || !out || (!prompt && n_prompt))
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_generate: needs a model, a cache and a result");
    if (n_prompt == 0) return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_generate: empty prompt");
    if (n_prompt > (size_t)INT32_MAX / 2)
        return kvu_fail(err, KVP_ERR_RANGE, "kvp_generate: a prompt of %zu tokens is too long",
                        n_prompt);
    kvp_gen_params p = params ? *params : kvp_gen_default_params();
    if (p.max_new_tokens < 0 || p.prefill_chunk < 0 || p.top_k < 0 || !(p.top_p > 0) ||
        p.temperature < 0)
        return kvu_fail(err, KVP_ERR_INVALID_ARG,
                        "kvp_generate: invalid parameters (max_new_tokens %d, prefill_chunk %d, "
                        "top_k %d, top_p %g, temperature %g)",
                        p.max_new_tokens, p.prefill_chunk, p.top_k, p.top_p, p.temperature);
    int nt = p.n_threads > 0 ? p.n_threads : model->n_threads;
    int V = model->info.n_vocab;
    float *logits = malloc((size_t)V * sizeof(float));
    out->ids = malloc(((size_t)p.max_new_tokens + 1) * sizeof(int32_t));
    kvg_sampler smp;
    bool smp_ok = kvg_sampler_init(&smp, V, p.temperature, p.top_k, p.top_p, p.seed);
    kvp_status s = KVP_OK;
    double attn0 = 0.0;
    if (!logits || !out->ids || !smp_ok) {
        s = kvu_fail(err, KVP_ERR_NOMEM, "kvp_generate: out of memory");
        goto done;
    }
    out->n_prompt = n_prompt;
    if (!p.keep_cache) kvp_cache_reset(cache);
    attn0 = kvc_attn_ms(cache);
    /* The most tokens a stream holds at once: everything for the full
     * cache, at least the first prefill block for a pruned one. */
    size_t first_block = p.prefill_chunk > 0 && (size_t)p.prefill_chunk < n_prompt
                             ? (size_t)p.prefill_chunk
                             : n_prompt;
    int64_t peak = kvc_is_full(cache) ? (int64_t)kvc_next_pos(cache) + (int64_t)n_prompt + p.max_new_tokens
                                      : (int64_t)first_block;
    if ((s = kvc_check_fits(cache, peak, err))) goto done;
    double t0 = kvu_now_ms();
    size_t chunk = p.prefill_chunk > 0 ? (size_t)p.prefill_chunk : n_prompt;
    for (size_t off = 0; off < n_prompt; off += chunk) {
        size_t len = n_prompt - off < chunk ? n_prompt - off : chunk;
        bool last = off + len == n_prompt;
        if ((s = kvm_forward(model, cache, prompt + off, (int)len, (int)n_prompt,
                             last ? logits : NULL, nt, err)))
            goto done;
    }
    out->prefill_ms = kvu_now_ms() - t0;
    double t1 = kvu_now_ms();
    for (int step = 0; step < p.max_new_tokens; step++) {
        int32_t id = kvg_sampler_pick(&smp, logits);
        out->ids[out->n_ids++] = id;
        bool go = true;
        if (p.on_token) go = p.on_token(p.user, id, logits, V);
        if (is_eos(model, id) && !p.ignore_eos) {
            out->stopped_at_eos = true;
            break;
        }
        if (!go || step + 1 == p.max_new_tokens) break;
        if ((s = kvm_forward(model, cache, &id, 1, 0, logits, nt, err))) goto done;
    }
    out->decode_ms = kvu_now_ms() - t1;
done:
    if (out->ids || s == KVP_OK) {
        out->attn_ms = kvc_attn_ms(cache) - attn0;
        kvp_cache_get_stats(cache, &out->cache);
    }
    kvg_sampler_free(&smp);
    free(logits);
    if (s) {
        free(out->ids);
        out->ids = NULL;
        out->n_ids = 0;
    }
    return s;
}

void kvp_gen_result_free(kvp_gen_result *res) {
    if (!res) return;
    free(res->ids);
    res->ids = NULL;
    res->n_ids = 0;
}
