/* The command line's numeric and list flag parsers and the shared cache
 * flags: the input, split at NUL bytes, is an argument vector. */
#include "cache/cache.h"
#include "cli.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    enum { MAX_ARGS = 32 };
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    const uint8_t *p = data, *end = data + size;
    while (argc < MAX_ARGS) {
        const uint8_t *z = memchr(p, 0, (size_t)(end - p));
        size_t len = z ? (size_t)(z - p) : (size_t)(end - p);
        argv[argc++] = fz_str(p, len);
        if (!z) break;
        p = z + 1;
    }
    argv[argc] = NULL;
    kvp_cache_params cp = kvp_cache_default_params();
    for (int i = 0; i < argc; i++) {
        long l;
        double d;
        int32_t *ids = NULL;
        double *ds = NULL;
        size_t n = 0;
        (void)cli_parse_int("-n", argv[i], -5, 1L << 30, &l);
        (void)cli_parse_double("--r", argv[i], 0.0, 1.0, &d);
        if (cli_parse_int_list("--ids", argv[i], &ids, &n)) free(ids);
        if (cli_parse_double_list("--rs", argv[i], -1e300, 1e300, &ds, &n)) free(ds);
        int k = i;
        int r = cli_cache_flag(argc, argv, &k, &cp);
        if (r > 0) i = k;
    }
    /* whatever the flags said, the library takes or refuses them cleanly */
    const char *m = cp.method ? cp.method : "full";
    cli_warn_unused_budget(&cp, &m, 1);
    kvp_cache *c = NULL;
    kvp_error err;
    if (kvc_new_dims(1, 2, 1, 8, 64, &cp, &c, &err) == KVP_OK) kvp_cache_free(c);
    for (int i = 0; i < argc; i++) free(argv[i]);
    return 0;
}
