#include "kept_dump.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

bool cli_kept_capture(const kvp_cache *cache, cli_kept_snapshot *snap) {
    cli_kept_free(snap);
    kvp_cache_stats st;
    kvp_cache_get_stats(cache, &st);
    size_t ns = (size_t)st.n_layer * st.n_streams;
    snap->pos = calloc(ns ? ns : 1, sizeof *snap->pos);
    snap->n = calloc(ns ? ns : 1, sizeof *snap->n);
    if (!snap->pos || !snap->n) {
        cli_kept_free(snap);
        return false;
    }
    snap->n_layer = st.n_layer;
    snap->n_streams = st.n_streams;
    for (int l = 0; l < st.n_layer; l++)
        for (int s = 0; s < st.n_streams; s++) {
            const int32_t *p;
            size_t n;
            kvp_error err;
            size_t idx = (size_t)l * st.n_streams + s;
            if (kvp_cache_kept_positions(cache, l, s, &p, &n, &err) != KVP_OK) n = 0;
            snap->pos[idx] = malloc(sizeof(int32_t) * (n ? n : 1));
            if (!snap->pos[idx]) {
                cli_kept_free(snap);
                return false;
            }
            if (n) memcpy(snap->pos[idx], p, sizeof(int32_t) * n);
            snap->n[idx] = n;
        }
    return true;
}

void cli_kept_free(cli_kept_snapshot *snap) {
    if (snap->pos)
        for (size_t i = 0; i < (size_t)snap->n_layer * snap->n_streams; i++) free(snap->pos[i]);
    free(snap->pos);
    free(snap->n);
    memset(snap, 0, sizeof *snap);
}

static json_t *snapshot_json(const cli_kept_snapshot *s) {
    json_t *layers = json_array();
    for (int l = 0; l < s->n_layer; l++) {
        json_t *streams = json_array();
        for (int st = 0; st < s->n_streams; st++) {
            size_t idx = (size_t)l * s->n_streams + st;
            json_t *pos = json_array();
            for (size_t i = 0; i < s->n[idx]; i++)
                json_array_append_new(pos, json_integer(s->pos[idx][i]));
            json_array_append_new(streams, pos);
        }
        json_array_append_new(layers, streams);
    }
    return layers;
}

json_t *cli_layer_stats_json(const kvp_cache *cache) {
    kvp_cache_stats st;
    kvp_cache_get_stats(cache, &st);
    json_t *arr = json_array();
    for (int l = 0; l < st.n_layer; l++) {
        kvp_cache_layer_stats ls;
        kvp_error err;
        if (kvp_cache_get_layer_stats(cache, l, &ls, &err) != KVP_OK) continue;
        json_array_append_new(arr, json_pack("{s:i,s:i,s:i,s:f,s:I}", "num_heavy", ls.num_heavy,
                                             "min_kept", ls.min_kept, "max_kept", ls.max_kept,
                                             "mean_kept", ls.mean_kept, "total_kept",
                                             (json_int_t)ls.total_kept));
    }
    return arr;
}

bool cli_write_kept_json(const char *path, const cli_kept_snapshot *after_prefill,
                         const kvp_cache *final_state) {
    cli_kept_snapshot fin = {0};
    if (!cli_kept_capture(final_state, &fin)) {
        cli_error("--dump-kept: out of memory");
        return false;
    }
    const cli_kept_snapshot *pre =
        after_prefill && after_prefill->n_layer > 0 ? after_prefill : &fin;
    json_t *doc = json_object();
    json_object_set_new(doc, "after_prefill", snapshot_json(pre));
    json_object_set_new(doc, "final", snapshot_json(&fin));
    json_object_set_new(doc, "final_layers", cli_layer_stats_json(final_state));
    int rc = json_dump_file(doc, path, JSON_COMPACT);
    json_decref(doc);
    cli_kept_free(&fin);
    if (rc != 0) {
        cli_error("--dump-kept: cannot write '%s': %s", path, strerror(errno));
        return false;
    }
    return true;
}
