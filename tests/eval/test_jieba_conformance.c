/* kvjb_cut against python3-jieba's own cuts (tests/data/jieba/cuts.jsonl,
 * made by tools/jieba_goldens.py): every string must be cut identically.
 * Needs jieba's dictionary and HMM tables: the folder given as argv[1], else
 * Debian's python3-jieba; skips (77) without them. */
#include "jieba_golden.h"

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : kvjb_default_dir();
    if (!dir) {
        printf("SKIP: jieba's dictionary is not installed (Debian: apt install python3-jieba)\n");
        return 77;
    }
    kvp_error err;
    kvjb_dict *d = NULL;
    double t0 = jbt_cpu_s();
    if (kvjb_load(dir, &d, &err) != KVP_OK) {
        fprintf(stderr, "kvjb_load(%s): %s\n", dir, err.message);
        return 1;
    }
    double t_load = jbt_cpu_s() - t0;
    size_t same, total, bytes;
    double t_cut;
    jbt_check_goldens(d, "tests/data/jieba/cuts.jsonl", &same, &total, &bytes, &t_cut);
    kvjb_free(d);
    CHECK_MSG(total >= 2000, "only %zu golden strings", total);
    printf("jieba conformance: %zu/%zu strings cut identically to python3-jieba; "
           "load %.3f CPU s, cut %.2f MB/s (%zu bytes in %.3f CPU s)\n",
           same, total, t_load, t_cut > 0 ? (double)bytes / t_cut / 1e6 : 0.0, bytes, t_cut);
    return kvp_test_failures ? 1 : 0;
}
