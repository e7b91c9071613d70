#include "kvprune_eval/lb_cut.h"

#include <stdlib.h>

#include "kvprune_eval/jieba.h"
#include "util/error.h"

static kvp_status jb_cut(void *user, const char *text, size_t len, char ***words, size_t *n,
                         kvp_error *err) {
    return kvjb_cut((const kvjb_dict *)user, text, len, words, n, err);
}

kvp_status kvlb_cutter_default(const char *dir, kvlb_cutter **out, kvp_error *err) {
    *out = NULL;
    if (!dir) dir = kvjb_default_dir();
    if (!dir)
        return kvu_fail(err, KVP_ERR_IO,
                        "no jieba dictionary found: pass its folder as dir (one with jieba's "
                        "dict.txt and finalseg/prob_*.py, e.g. from python3-jieba)");
    kvlb_cutter *c = calloc(1, sizeof *c);
    if (!c) return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    kvjb_dict *d = NULL;
    kvp_status st = kvjb_load(dir, &d, err);
    if (st != KVP_OK) {
        free(c);
        return kvu_fail_prefix(err, st, "jieba dictionary %s", dir);
    }
    c->cut = jb_cut;
    c->free_words = kvjb_words_free;
    c->user = d;
    *out = c;
    return KVP_OK;
}

void kvlb_cutter_free(kvlb_cutter *c) {
    if (!c) return;
    kvjb_free((kvjb_dict *)c->user);
    free(c);
}
