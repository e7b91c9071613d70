/* --dump-kept: the absolute positions each cache stream keeps, as JSON
 * {"after_prefill": [[[pos, ...] per stream] per layer], "final": same,
 *  "final_layers": [{"num_heavy", "min_kept", "max_kept", "mean_kept",
 *  "total_kept"} per layer]} (streams differ with adaptive budgets, layers
 * with pyramid budgets).
 *
 * How a command uses it (generate, compare):
 *   cli_kept_snapshot snap = {0};
 *   gen.on_token = <a callback that, on its first call, runs
 *                   cli_kept_capture(cache, &snap) and then forwards>;
 *   kvp_generate(...);
 *   cli_write_kept_json(path, &snap, cache);   // prints its own errors
 *   cli_kept_free(&snap);
 * The first on_token call comes right after the prefill forward pass
 * (the first token is chosen from the prompt's logits) and before any
 * decode step, so the snapshot is the cache after the prefill. When no
 * token was generated, "after_prefill" is taken from the cache itself. */
#ifndef KVP_CLI_KEPT_DUMP_H
#define KVP_CLI_KEPT_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "kvprune.h"

typedef struct cli_kept_snapshot {
    int n_layer, n_streams; /* 0: nothing captured                         */
    int32_t **pos;          /* [n_layer * n_streams] owned copies          */
    size_t *n;
} cli_kept_snapshot;

/* Copies the cache's kept positions (returns false when out of memory). */
bool cli_kept_capture(const kvp_cache *cache, cli_kept_snapshot *snap);
void cli_kept_free(cli_kept_snapshot *snap);

/* Per layer: the heavy budget and the streams' kept counts (a new array). */
json_t *cli_layer_stats_json(const kvp_cache *cache);

/* Writes the JSON file; `after_prefill` may be NULL or empty (then the
 * cache's current state is used for both). Prints an error naming the
 * flag and the path on failure. */
bool cli_write_kept_json(const char *path, const cli_kept_snapshot *after_prefill,
                         const kvp_cache *final_state);

#endif
