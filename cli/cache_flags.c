/* Placeholder until the cache flags land; the cache's owner replaces this. */
#include "cli.h"

const char cli_cache_flags_help[] = "";

int cli_cache_flag(int argc, char **argv, int *i, kvp_cache_params *p) {
    (void)argc;
    (void)argv;
    (void)i;
    (void)p;
    return 0;
}
