/* The command line's option parser (cli/options.c) over a table with every
 * option type plus the shared cache and model flags: the input, split at
 * NUL bytes, is an argument vector. */
#include "cache/cache.h"
#include "cli.h"
#include "fuzz_common.h"

static bool parse_pair(const char *v, void *dst, char *msg, size_t size) {
    int *ab = dst;
    int used = 0;
    if (sscanf(v, "%d/%d%n", &ab[0], &ab[1], &used) != 2 || v[used]) {
        snprintf(msg, size, "'%s' is not A/B", v);
        return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    enum { MAX_ARGS = 32 };
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = fz_str((const uint8_t *)"fuzz", 4);
    const uint8_t *p = data, *end = data + size;
    while (argc < MAX_ARGS + 1) {
        const uint8_t *z = memchr(p, 0, (size_t)(end - p));
        size_t len = z ? (size_t)(z - p) : (size_t)(end - p);
        argv[argc++] = fz_str(p, len);
        if (!z) break;
        p = z + 1;
    }
    argv[argc] = NULL;
    kvp_cache_params cp = kvp_cache_default_params();
    kvp_model_params mp = kvp_model_default_params();
    bool flag = false, given = false;
    int i32 = 0, pair[2] = {0, 0}, kind = 0;
    int64_t i64 = 0;
    uint64_t u64 = 0;
    float f32 = 0;
    double f64 = 0;
    const char *str = NULL;
    int32_t *ids = NULL;
    double *ratios = NULL;
    const char **names = NULL;
    size_t n_ids = 0, n_ratios = 0, n_names = 0;
    static const cli_enum_value kinds[] = {{"a", 0}, {"b", 1}, {"c", 2}, {NULL, 0}};
    const cli_option own[] = {
        CLI_OPT_FLAG("-f|--flag", &flag, "a flag"),
        CLI_OPT_INT("-n|--int", "N", &i32, -5, 1L << 30, "an int", .given = &given),
        CLI_OPT_INT("--int64", "N", &i64, 0, 1LL << 40, "an int64"),
        CLI_OPT_UINT("--seed", "S", &u64, UINT64_MAX, "a seed"),
        CLI_OPT_FLOAT("--f32", "X", &f32, 0, 100, "a float"),
        CLI_OPT_FLOAT("--ratio", "R", &f64, 0, 1, "an open ratio", .open_min = true),
        CLI_OPT_STRING("--str", "S", &str, "a string", .required = true),
        CLI_OPT_ENUM("--kind", &kind, kinds, "an enum"),
        CLI_OPT_LIST_INT("--ids", "LIST", &ids, &n_ids, 0, INT32_MAX, "ids"),
        CLI_OPT_LIST_FLOAT("--ratios", "LIST", &ratios, &n_ratios, 0, 1, "ratios", .open_min = true),
        CLI_OPT_LIST_STRING("--methods", "LIST", &names, &n_names, cli_check_method, "methods"),
        CLI_OPT_CUSTOM("--pair", "A/B", pair, parse_pair, "a pair"),
        CLI_OPT_REJECT("--old", "use --int"),
    };
    cli_option cache_opts[CLI_CACHE_MAX_OPTIONS], model_opts[CLI_MODEL_MAX_OPTIONS];
    const cli_group groups[] = {
        {NULL, own, CLI_COUNT(own)},
        {"Cache", cache_opts, cli_cache_options(&cp, CLI_CACHE_ALL, cache_opts)},
        {"Model", model_opts, cli_model_options(&mp, model_opts)},
    };
    const cli_command cmd = {"fuzz", NULL, NULL, groups, CLI_COUNT(groups), NULL};
    int rc = cli_parse(&cmd, argc, argv);
    /* a flag that was parsed holds a value of its range */
    if (rc < 0) {
        if (given && (i32 < -5 || i32 > (1L << 30))) __builtin_trap();
        if (!str) __builtin_trap();
        for (size_t k = 0; k < n_ratios; k++)
            if (!(ratios[k] > 0 && ratios[k] <= 1)) __builtin_trap();
    }
    /* whatever the flags said, the library takes or refuses them cleanly */
    const char *m = cp.method ? cp.method : "full";
    cli_warn_unused_budget(&cp, &m, 1);
    kvp_cache *c = NULL;
    kvp_error err;
    if (kvc_new_dims(1, 2, 1, 8, 64, &cp, &c, &err) == KVP_OK) kvp_cache_free(c);
    free(ids);
    free(ratios);
    free(names);
    for (int k = 0; k < argc; k++) free(argv[k]);
    return 0;
}
