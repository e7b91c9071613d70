/* The cache flags shared by generate, compare and needle. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

const char cli_cache_flags_help[] =
    "Cache (pruning) options:\n"
    "  --method NAME          full (default), sink, h2o, h2o_fullhist, tova, snapkv,\n"
    "                         snapkv_avgpool, kvcV, kvcV_p1, kvcK, kvcVK, kvcVK_no_cross;\n"
    "                         kvc* also with +tova, +maxpool, +avgpool or _fullhist\n"
    "                         (obc* = kvc*)\n"
    "  --num-recent N         tokens always kept at the end of the cache\n"
    "  --num-heavy N          tokens kept by score (sink: the first N tokens)\n"
    "  --recent-ratio R       budgets as fractions of the prompt length:\n"
    "  --heavy-ratio R        recent = int(n*R), heavy = int(n*R) (give both)\n"
    "  --cache-ratio R        with --num-recent: heavy = int(n*R) - num_recent\n"
    "  --no-decode-evict      evict only after the prompt (the cache then grows\n"
    "                         by one token per generated token)\n"
    "  --streaming            always keep the first tokens (attention sinks)\n"
    "  --num-sink N           how many first tokens --streaming keeps (default 4)\n"
    "  --gqa-mode MODE        per-kv-head (default: one stream per KV head, the\n"
    "                         group's scores summed; group-size times less KV\n"
    "                         memory) or per-query-head (the seed's: one stream\n"
    "                         per query head, K/V copied per head)\n"
    "  --cache-max-tokens N   capacity of each cache stream (0: the model's context\n"
    "                         for the full cache, unlimited for pruned ones)\n"
    "  --kv-type TYPE         how K and V are stored: f16 (default, as llama.cpp;\n"
    "                         half the memory of f32), bf16, or f32 (exact)\n"
    "  --budget-alloc A       uniform (default: every stream the same heavy budget)\n"
    "                         or adaptive (Ada-KV: a layer's streams share their\n"
    "                         heavy budgets by score)\n"
    "  --safeguard F          adaptive: each stream keeps at least floor(F x heavy)\n"
    "                         tokens by score (0..1, default 0.2)\n"
    "  --layer-alloc A        uniform (default) or pyramid (PyramidKV: more heavy\n"
    "                         budget in the lower layers, same total)\n"
    "  --pyramid-beta B       pyramid: the top layer keeps 1/B of the mean heavy\n"
    "                         budget, the bottom about 2 - 1/B times it (>= 1,\n"
    "                         default 20)\n";

static bool known_method(const char *name) {
    const char *n = strncmp(name, "obc", 3) == 0 ? name + 3 : name;
    for (const char *const *m = kvp_cache_method_names(); *m; m++) {
        if (n != name ? (strncmp(*m, "kvc", 3) == 0 && strcmp(*m + 3, n) == 0)
                      : strcmp(*m, n) == 0)
            return true;
    }
    return false;
}

int cli_cache_flag(int argc, char **argv, int *i, kvp_cache_params *p) {
    const char *a = argv[*i], *v = NULL;
    long n;
    double r;
    if (strcmp(a, "--method") == 0) {
        if (!cli_take_value(argc, argv, i, &v)) return -1;
        if (!known_method(v)) {
            char list[1024];
            size_t off = 0;
            for (const char *const *m = kvp_cache_method_names(); *m && off < sizeof list; m++)
                off += (size_t)snprintf(list + off, sizeof list - off, "%s%s",
                                        off ? ", " : "", *m);
            cli_error("--method: unknown method '%s'; valid: %s", v, list);
            return -1;
        }
        p->method = v;
        return 1;
    }
    if (strcmp(a, "--num-recent") == 0 || strcmp(a, "--num-heavy") == 0 ||
        strcmp(a, "--cache-max-tokens") == 0) {
        if (!cli_take_value(argc, argv, i, &v) || !cli_parse_int(a, v, 0, 1L << 30, &n))
            return -1;
        if (a[2] == 'c') p->max_tokens = (int)n;
        else if (a[6] == 'r') p->num_recent = (int)n;
        else p->num_heavy = (int)n;
        return 1;
    }
    if (strcmp(a, "--recent-ratio") == 0 || strcmp(a, "--heavy-ratio") == 0 ||
        strcmp(a, "--cache-ratio") == 0) {
        if (!cli_take_value(argc, argv, i, &v) || !cli_parse_double(a, v, 0.0, 1.0, &r))
            return -1;
        if (a[2] == 'r') p->recent_ratio = r;
        else if (a[2] == 'h') p->heavy_ratio = r;
        else p->cache_ratio = r;
        return 1;
    }
    if (strcmp(a, "--no-decode-evict") == 0) {
        p->decode_evict = false;
        return 1;
    }
    if (strcmp(a, "--streaming") == 0) {
        p->streaming = true;
        return 1;
    }
    if (strcmp(a, "--num-sink") == 0) {
        if (!cli_take_value(argc, argv, i, &v) || !cli_parse_int(a, v, 0, 1L << 30, &n))
            return -1;
        p->num_sink = (int)n;
        return 1;
    }
    if (strcmp(a, "--kv-type") == 0) {
        if (!cli_take_value(argc, argv, i, &v)) return -1;
        if (!kvp_kv_type_parse(v, &p->kv_type)) {
            cli_error("--kv-type: '%s' is not f32, f16 or bf16", v);
            return -1;
        }
        return 1;
    }
    if (strcmp(a, "--budget-alloc") == 0) {
        if (!cli_take_value(argc, argv, i, &v)) return -1;
        if (!kvp_budget_alloc_parse(v, &p->budget_alloc)) {
            cli_error("--budget-alloc: '%s' is not uniform or adaptive", v);
            return -1;
        }
        return 1;
    }
    if (strcmp(a, "--layer-alloc") == 0) {
        if (!cli_take_value(argc, argv, i, &v)) return -1;
        if (!kvp_layer_alloc_parse(v, &p->layer_alloc)) {
            cli_error("--layer-alloc: '%s' is not uniform or pyramid", v);
            return -1;
        }
        return 1;
    }
    if (strcmp(a, "--safeguard") == 0) {
        if (!cli_take_value(argc, argv, i, &v) || !cli_parse_double(a, v, 0.0, 1.0, &r)) return -1;
        p->safeguard = r;
        return 1;
    }
    if (strcmp(a, "--pyramid-beta") == 0) {
        if (!cli_take_value(argc, argv, i, &v) || !cli_parse_double(a, v, 1.0, 1e9, &r)) return -1;
        p->pyramid_beta = r;
        return 1;
    }
    if (strcmp(a, "--gqa-mode") == 0) {
        if (!cli_take_value(argc, argv, i, &v)) return -1;
        if (strcmp(v, "per-query-head") == 0) p->gqa_mode = KVP_GQA_PER_QUERY_HEAD;
        else if (strcmp(v, "per-kv-head") == 0) p->gqa_mode = KVP_GQA_PER_KV_HEAD;
        else {
            cli_error("--gqa-mode: '%s' is not per-query-head or per-kv-head", v);
            return -1;
        }
        return 1;
    }
    return 0;
}

void cli_warn_unused_budget(const kvp_cache_params *p, const char *const *methods, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(methods[i], "full") != 0) return;
    const kvp_cache_params d = kvp_cache_default_params();
    if (p->num_recent != d.num_recent || p->num_heavy != d.num_heavy ||
        p->recent_ratio != d.recent_ratio || p->heavy_ratio != d.heavy_ratio ||
        p->cache_ratio != d.cache_ratio || p->streaming != d.streaming ||
        p->num_sink != d.num_sink || p->decode_evict != d.decode_evict ||
        p->budget_alloc != d.budget_alloc || p->layer_alloc != d.layer_alloc ||
        p->safeguard != d.safeguard || p->pyramid_beta != d.pyramid_beta)
        cli_warn("the full cache keeps every token: budget flags (--num-recent, --num-heavy, "
                 "--*-ratio, --streaming, --num-sink, --no-decode-evict, --budget-alloc, "
                 "--safeguard, --layer-alloc, --pyramid-beta) are ignored");
}
