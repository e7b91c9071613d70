/* One configuration of the cache goldens (tools/cacheref/: "method",
 * "budget" = "abs" | "ratio" | cache ratio, "decode_evict", "streaming",
 * "num_sink", "gqa", "kv_type", "budget_alloc", "layer_alloc",
 * "safeguard", "pyramid_beta") as the cache parameters it names. */
#ifndef KVP_TESTS_GOLDEN_PARAMS_H
#define KVP_TESTS_GOLDEN_PARAMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "kvprune.h"

/* False, with the reason in why, when a name in the configuration does not
 * parse. K/V are float32 unless the configuration names a half type (the
 * reference then rounds K and V as the cache stores them); the allocation
 * is uniform unless it names one. */
static inline bool golden_cache_params(const json_t *cfg, kvp_cache_params *p, char *why, size_t why_size) {
    *p = kvp_cache_default_params();
    const char *budget = json_string_value(json_object_get(cfg, "budget"));
    p->method = json_string_value(json_object_get(cfg, "method"));
    p->decode_evict = json_is_true(json_object_get(cfg, "decode_evict"));
    p->streaming = json_is_true(json_object_get(cfg, "streaming"));
    if (json_object_get(cfg, "num_sink")) p->num_sink = (int)json_integer_value(json_object_get(cfg, "num_sink"));
    p->gqa_mode = strcmp(json_string_value(json_object_get(cfg, "gqa")), "kv") == 0 ? KVP_GQA_PER_KV_HEAD
                                                                                   : KVP_GQA_PER_QUERY_HEAD;
    p->kv_type = KVP_KV_F32;
    const char *kvt = json_string_value(json_object_get(cfg, "kv_type"));
    if (kvt && !kvp_kv_type_parse(kvt, &p->kv_type)) {
        snprintf(why, why_size, "bad kv_type '%s' in the golden", kvt);
        return false;
    }
    if (strcmp(budget, "abs") == 0) {
        p->num_recent = (int)json_integer_value(json_object_get(cfg, "num_recent"));
        p->num_heavy = (int)json_integer_value(json_object_get(cfg, "num_heavy"));
    } else if (strcmp(budget, "ratio") == 0) {
        p->recent_ratio = json_real_value(json_object_get(cfg, "recent_ratio"));
        p->heavy_ratio = json_real_value(json_object_get(cfg, "heavy_ratio"));
    } else {
        p->num_recent = (int)json_integer_value(json_object_get(cfg, "num_recent"));
        p->cache_ratio = json_real_value(json_object_get(cfg, "cache_ratio"));
    }
    const char *ba = json_string_value(json_object_get(cfg, "budget_alloc"));
    const char *la = json_string_value(json_object_get(cfg, "layer_alloc"));
    if ((ba && !kvp_budget_alloc_parse(ba, &p->budget_alloc)) ||
        (la && !kvp_layer_alloc_parse(la, &p->layer_alloc))) {
        snprintf(why, why_size, "bad budget_alloc/layer_alloc in the golden");
        return false;
    }
    if (json_object_get(cfg, "safeguard")) p->safeguard = json_number_value(json_object_get(cfg, "safeguard"));
    if (json_object_get(cfg, "pyramid_beta"))
        p->pyramid_beta = json_number_value(json_object_get(cfg, "pyramid_beta"));
    return true;
}

#endif
