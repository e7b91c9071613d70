/* `kvprune compare` end to end on the GQA fixture: its JSON ids and the
 * --dump-kept files must equal the numpy reference's (the golden of
 * test_cache_model, absolute budget 6+10, decode eviction, per-query-head),
 * and bad flags must fail with a message. argv[1]: the kvprune binary,
 * argv[2]: the source tree; it runs in the build tree (the dumps land
 * there). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static json_t *golden_config(json_t *doc, const char *method) {
    json_t *cfgs = json_object_get(doc, "configs");
    for (size_t i = 0; i < json_array_size(cfgs); i++) {
        json_t *c = json_array_get(cfgs, i);
        if (strcmp(json_string_value(json_object_get(c, "method")), method) == 0 &&
            strcmp(json_string_value(json_object_get(c, "budget")), "abs") == 0 &&
            json_is_true(json_object_get(c, "decode_evict")) &&
            strcmp(json_string_value(json_object_get(c, "gqa")), "q") == 0 &&
            !json_is_true(json_object_get(c, "streaming")) &&
            json_integer_value(json_object_get(c, "chunk")) == 0)
            return c;
    }
    return NULL;
}

static void hex_of(json_t *pos, char *out) {
    unsigned char nib[256] = {0};
    int top = 0;
    for (size_t i = 0; i < json_array_size(pos); i++) {
        int p = (int)json_integer_value(json_array_get(pos, i));
        nib[p / 4] |= (unsigned char)(1u << (p % 4));
        if (p / 4 + 1 > top) top = p / 4 + 1;
    }
    int o = 0;
    for (int i = top - 1; i >= 0; i--) out[o++] = "0123456789abcdef"[nib[i]];
    if (!o) out[o++] = '0';
    out[o] = '\0';
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_cli_compare KVPRUNE SOURCE_DIR\n");
        return 2;
    }
    const char *src = argv[2];
    char path[1024], model[1024];
    snprintf(path, sizeof path, "%s/tests/data/cache/tiny-gqa.golden.json", src);
    snprintf(model, sizeof model, "%s/tests/data/cache/tiny-gqa", src);
    json_error_t jerr;
    json_t *gold = json_load_file(path, 0, &jerr);
    CHECK(gold != NULL);
    if (!gold) return kvp_test_done("test_cli_compare");
    json_t *prompt = json_object_get(gold, "prompt");
    char ids[4096] = "", cmd[8192];
    for (size_t i = 0; i < json_array_size(prompt); i++)
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%lld", i ? "," : "",
                 (long long)json_integer_value(json_array_get(prompt, i)));
    char prefix[] = "test-cli-compare-kept-";
    snprintf(cmd, sizeof cmd,
             "%s compare -m %s --prompt-ids %s --methods full,h2o,kvcVK "
             "--num-recent 6 --num-heavy 10 -n 16 --ignore-eos --json -t 1 --dump-kept %s "
             "--gqa-mode per-query-head --kv-type f32",
             argv[1], model, ids, prefix);
    int status = -1;
    char *out = kvp_test_capture(cmd, &status);
    CHECK_EQ_INT(status, 0);
    json_t *doc = out ? json_loads(out, 0, &jerr) : NULL;
    CHECK_MSG(doc != NULL, "compare --json output is not JSON: %s", out ? out : "");
    const char *methods[] = {"full", "h2o", "kvcVK"};
    for (int m = 0; doc && m < 3; m++) {
        json_t *res = json_array_get(json_object_get(doc, "results"), (size_t)m);
        json_t *g = golden_config(gold, methods[m]);
        CHECK(g != NULL && res != NULL);
        if (!g || !res) continue;
        CHECK_STR(json_string_value(json_object_get(res, "method")), methods[m]);
        CHECK(json_equal(json_object_get(res, "ids"), json_object_get(g, "ids")));
        CHECK_EQ_INT(json_integer_value(json_object_get(res, "kept_tokens")),
                     m == 0 ? 2 * 4 * 55 : 2 * 4 * 16);
        /* the dump: after the prefill and at the end, as the reference */
        snprintf(path, sizeof path, "%s%s.json", prefix, methods[m]);
        json_t *kept = json_load_file(path, 0, &jerr);
        CHECK_MSG(kept != NULL, "%s: %s", path, jerr.text);
        const char *keys[2] = {"after_prefill", "final"};
        for (int k = 0; kept && k < 2; k++) {
            json_t *got = json_object_get(kept, keys[k]), *want = json_object_get(g, keys[k]);
            CHECK_EQ_INT(json_array_size(got), json_array_size(want));
            for (size_t l = 0; l < json_array_size(want); l++)
                for (size_t s = 0; s < json_array_size(json_array_get(want, l)); s++) {
                    char hex[128];
                    hex_of(json_array_get(json_array_get(got, l), s), hex);
                    CHECK_STR(hex, json_string_value(json_array_get(json_array_get(want, l), s)));
                }
        }
        json_decref(kept);
        remove(path);
    }
    json_decref(doc);
    free(out);

    /* errors: an unknown method lists the valid ones; a missing budget */
    snprintf(cmd, sizeof cmd, "%s compare -m %s --prompt-ids 3,4 "
             "--methods full,kvcQ 2>&1", argv[1], model);
    out = kvp_test_capture(cmd, &status);
    CHECK(status != 0 && out && strstr(out, "kvcQ") && strstr(out, "kvcVK_no_cross"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s compare -m %s --prompt-ids 3,4 "
             "--methods h2o 2>&1", argv[1], model);
    out = kvp_test_capture(cmd, &status);
    CHECK(status != 0 && out && strstr(out, "needs a budget"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s compare -m %s --prompt-ids 3,4 "
             "--methods h2o --num-recent 2 --gqa-mode sideways 2>&1", argv[1], model);
    out = kvp_test_capture(cmd, &status);
    CHECK(status != 0 && out && strstr(out, "per-kv-head"));
    free(out);
    json_decref(gold);
    return kvp_test_done("test_cli_compare");
}
