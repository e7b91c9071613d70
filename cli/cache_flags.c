/* The cache flags shared by generate, compare, chat, serve, needle pred and
 * longbench pred: one table fragment (cli_cache_options). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static bool known_method(const char *name) {
    const char *n = strncmp(name, "obc", 3) == 0 ? name + 3 : name;
    for (const char *const *m = kvp_cache_method_names(); *m; m++) {
        if (n != name ? (strncmp(*m, "kvc", 3) == 0 && strcmp(*m + 3, n) == 0)
                      : strcmp(*m, n) == 0)
            return true;
    }
    return false;
}

void cli_unknown_method(const char *name, char *msg, size_t size) {
    size_t off = (size_t)snprintf(msg, size, "unknown method '%s'; valid: ", name);
    bool first = true;
    for (const char *const *m = kvp_cache_method_names(); *m && off < size; m++, first = false)
        off += (size_t)snprintf(msg + off, size - off, "%s%s", first ? "" : ", ", *m);
}

bool cli_check_method(const char *name, char *msg, size_t size) {
    if (known_method(name)) return true;
    cli_unknown_method(name, msg, size);
    return false;
}

static const cli_enum_value gqa_modes[] = {
    {"per-kv-head", KVP_GQA_PER_KV_HEAD}, {"per-query-head", KVP_GQA_PER_QUERY_HEAD}, {NULL, 0}};
static const cli_enum_value budget_allocs[] = {
    {"uniform", KVP_BUDGET_UNIFORM}, {"adaptive", KVP_BUDGET_ADAPTIVE}, {NULL, 0}};
static const cli_enum_value layer_allocs[] = {
    {"uniform", KVP_LAYER_UNIFORM}, {"pyramid", KVP_LAYER_PYRAMID}, {NULL, 0}};
static const cli_enum_value kv_types[] = {
    {"f16", KVP_KV_F16}, {"bf16", KVP_KV_BF16}, {"f32", KVP_KV_F32}, {NULL, 0}};

/* The parser writes enums as int. */
_Static_assert(sizeof(kvp_gqa_mode) == sizeof(int) && sizeof(kvp_kv_type) == sizeof(int) &&
                   sizeof(kvp_budget_alloc) == sizeof(int) && sizeof(kvp_layer_alloc) == sizeof(int),
               "enum flags are int-sized");

size_t cli_cache_options(kvp_cache_params *p, unsigned which, cli_option out[CLI_CACHE_MAX_OPTIONS]) {
    const cli_option method[] = {
        CLI_OPT_STRING("--method", "NAME", &p->method,
                       "full, sink, h2o, h2o_fullhist, tova, snapkv, snapkv_avgpool, kvcV, kvcV_p1, "
                       "kvcK, kvcVK, kvcVK_no_cross; kvc* also with +tova, +maxpool, +avgpool or "
                       "_fullhist (obc* = kvc*)",
                       .check = cli_check_method, .deflt = "full"),
    };
    const cli_option budget[] = {
        CLI_OPT_INT("--num-recent", "N", &p->num_recent, 0, 1L << 30,
                    "tokens always kept at the end of the cache", .deflt = ""),
        CLI_OPT_INT("--num-heavy", "N", &p->num_heavy, 0, 1L << 30,
                    "tokens kept by score (sink: the first N tokens)", .deflt = ""),
        CLI_OPT_FLOAT("--recent-ratio", "R", &p->recent_ratio, 0.0, 1.0,
                      "budgets as fractions of the prompt length: recent = int(n*R) (give both "
                      "ratios)", .deflt = ""),
        CLI_OPT_FLOAT("--heavy-ratio", "R", &p->heavy_ratio, 0.0, 1.0,
                      "heavy = int(n*R)", .deflt = ""),
        CLI_OPT_FLOAT("--cache-ratio", "R", &p->cache_ratio, 0.0, 1.0,
                      "with --num-recent: heavy = int(n*R) - num_recent", .deflt = ""),
        CLI_OPT_FLAG_OFF("--no-decode-evict", &p->decode_evict,
                         "evict only after the prompt (the cache then grows by one token per "
                         "generated token)"),
        CLI_OPT_ENUM("--budget-alloc", &p->budget_alloc, budget_allocs,
                     "uniform: every stream the same heavy budget; adaptive (Ada-KV): a layer's "
                     "streams share their heavy budgets by score",
                     .meta = "A"),
        CLI_OPT_FLOAT("--safeguard", "F", &p->safeguard, 0.0, 1.0,
                      "adaptive: each stream keeps at least floor(F x heavy) tokens by score"),
        CLI_OPT_ENUM("--layer-alloc", &p->layer_alloc, layer_allocs,
                     "uniform, or pyramid (PyramidKV: more heavy budget in the lower layers, same "
                     "total)",
                     .meta = "A"),
        CLI_OPT_FLOAT("--pyramid-beta", "B", &p->pyramid_beta, 1.0, 1e9,
                      "pyramid: the top layer keeps 1/B of the mean heavy budget, the bottom about "
                      "2 - 1/B times it"),
    };
    const cli_option storage[] = {
        CLI_OPT_FLAG("--streaming", &p->streaming, "always keep the first tokens (attention sinks)"),
        CLI_OPT_INT("--num-sink", "N", &p->num_sink, 0, 1L << 30, "how many first tokens --streaming keeps"),
        CLI_OPT_ENUM("--gqa-mode", &p->gqa_mode, gqa_modes,
                     "per-kv-head: one stream per KV head, the group's scores summed (group-size "
                     "times less KV memory); per-query-head: the seed's, one stream per query "
                     "head, K/V copied per head",
                     .meta = "MODE"),
        CLI_OPT_INT("--cache-max-tokens", "N", &p->max_tokens, 0, 1L << 30,
                    "capacity of each cache stream (0: prompt + new tokens for the full cache, "
                    "unlimited for pruned ones)"),
        CLI_OPT_ENUM("--kv-type", &p->kv_type, kv_types,
                     "how K and V are stored: f16 as llama.cpp (half the memory of f32), bf16, or "
                     "f32 (exact)",
                     .meta = "TYPE"),
    };
    size_t n = 0;
    if (which & CLI_CACHE_METHOD) {
        memcpy(out + n, method, sizeof method);
        n += CLI_COUNT(method);
    }
    if (which & CLI_CACHE_BUDGET) {
        memcpy(out + n, budget, sizeof budget);
        n += CLI_COUNT(budget);
    }
    if (which & CLI_CACHE_STORAGE) {
        memcpy(out + n, storage, sizeof storage);
        n += CLI_COUNT(storage);
    }
    return n;
}

void cli_warn_unused_budget(const kvp_cache_params *p, const char *const *methods, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(methods[i], "full") != 0) return;
    const kvp_cache_params d = kvp_cache_default_params();
    if (p->num_recent != d.num_recent || p->num_heavy != d.num_heavy ||
        p->recent_ratio != d.recent_ratio || p->heavy_ratio != d.heavy_ratio ||
        p->cache_ratio != d.cache_ratio || p->streaming != d.streaming ||
        p->num_sink != d.num_sink || p->decode_evict != d.decode_evict)
        cli_warn("the full cache keeps every token: budget flags (--num-recent, --num-heavy, "
                 "--*-ratio, --streaming, --num-sink, --no-decode-evict) are ignored");
}
