/* Every allocation of model loading (Hugging Face folder and GGUF),
 * tokenizer loading, cache creation, generation, conversion and needle
 * scoring is made to fail in turn (alloc_fault.h), then the first
 * allocations jansson makes for each JSON document read: each run must end
 * in a clean error (KVP_ERR_NOMEM and a message) or, where the library can do
 * without that allocation, in the same result as a run without faults; no
 * crash, no leak (ASan's leak check at exit), and no partial output file
 * (an output either does not exist or equals the good run's). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc_fault.h"
#include "kvprune_eval/needle_eval.h"
#include "kvprune.h"
#include "test_util.h"

#define MODEL_DIR "tests/data/model/llama-tok-bf16"
/* Fault points per scenario: the first ones all, then spread evenly. */
#define DENSE 100
#define SPREAD 200
/* JSON documents per scenario (x 3 allocations each): the first ones all,
 * then spread. */
#define JSON_DENSE 20
#define JSON_SPREAD 20

static char tmp[512];

static bool same_as(const char *path, const char *good, size_t good_n) {
    size_t n = 0;
    char *b = kvp_test_read_file(path, &n);
    bool same = b && n == good_n && memcmp(b, good, n) == 0;
    free(b);
    return same;
}

typedef struct scenario {
    const char *name;
    /* runs once; returns its status; on success fills a result to compare */
    kvp_status (*run)(kvp_error *err, char **result, size_t *result_n);
    const char *output; /* a file the scenario writes (result = its bytes), or NULL */
} scenario;

static kvp_model *shared_model;
static int mid_block_failures; /* generations whose failure left a block half done */

static kvp_status sc_load_hf(kvp_error *err, char **res, size_t *rn) {
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = 1;
    kvp_model *m = NULL;
    kvp_status st = kvp_model_load(MODEL_DIR, &mp, &m, err);
    if (st == KVP_OK) {
        kvp_model_info info;
        kvp_model_get_info(m, &info);
        *res = malloc(sizeof info);
        if (*res) memcpy(*res, &info, sizeof info);
        *rn = sizeof info;
    }
    kvp_model_free(m);
    return st;
}

static char gguf_path[600];
static kvp_status sc_load_gguf(kvp_error *err, char **res, size_t *rn) {
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = 1;
    mp.use_mmap = false; /* the reading path allocates; mmap is covered by the HF case */
    kvp_model *m = NULL;
    kvp_status st = kvp_model_load(gguf_path, &mp, &m, err);
    if (st == KVP_OK) {
        *res = malloc(8);
        *rn = 8;
        if (*res) memcpy(*res, "loaded!", 8);
    }
    kvp_model_free(m);
    return st;
}

static kvp_status sc_tokenizer(kvp_error *err, char **res, size_t *rn) {
    kvp_tokenizer *tok = NULL;
    kvp_status st = kvp_tokenizer_load("tests/data/tokenizer/tiny_spm", &tok, err);
    int32_t *ids = NULL;
    size_t n = 0;
    kvp_tokenize_params tp = kvp_tokenize_default_params();
    if (st == KVP_OK)
        st = kvp_tokenize(tok, "Hello world, <s> again \xc3\xa9!", 24, &tp, &ids, &n, err);
    char *text = NULL;
    size_t tl = 0;
    if (st == KVP_OK) st = kvp_detokenize(tok, ids, n, false, &text, &tl, err);
    if (st == KVP_OK) {
        *res = text;
        *rn = tl;
        text = NULL;
    }
    kvp_free(text);
    kvp_free(ids);
    kvp_tokenizer_free(tok);
    return st;
}

/* cache creation and a short generation, with chunked prefill and decode
 * eviction, then a second generation on the same cache */
static kvp_status sc_generate(kvp_error *err, char **res, size_t *rn) {
    kvp_cache_params cp = kvp_cache_default_params();
    cp.method = "kvcVK+maxpool";
    cp.num_recent = 4;
    cp.num_heavy = 6;
    kvp_cache *c = NULL;
    kvp_status st = kvp_cache_new(shared_model, &cp, &c, err);
    int32_t prompt[24];
    for (int i = 0; i < 24; i++) prompt[i] = 3 + (i * 7) % 60;
    kvp_gen_params gp = kvp_gen_default_params();
    gp.max_new_tokens = 5;
    gp.ignore_eos = true;
    gp.prefill_chunk = 10;
    gp.n_threads = 1;
    kvp_gen_result r1 = {0}, r2 = {0};
    if (st == KVP_OK) st = kvp_generate(shared_model, c, prompt, 24, &gp, &r1, err);
    gp.prefill_chunk = 0;
    if (st == KVP_OK) st = kvp_generate(shared_model, c, prompt, 20, &gp, &r2, err);
    if (st == KVP_OK) {
        *rn = (r1.n_ids + r2.n_ids) * sizeof(int32_t);
        *res = malloc(*rn);
        if (*res) {
            memcpy(*res, r1.ids, r1.n_ids * sizeof(int32_t));
            memcpy(*res + r1.n_ids * sizeof(int32_t), r2.ids, r2.n_ids * sizeof(int32_t));
        }
    } else if (c) {
        kvp_error e2;
        alloc_fault_arm(0);
        /* a block that failed midway leaves the cache refusing more blocks
         * (and position queries) until it is reset */
        const int32_t *pos;
        size_t np;
        if (kvp_cache_kept_positions(c, 0, 0, &pos, &np, &e2) != KVP_OK) {
            mid_block_failures++;
            float *logits = malloc(sizeof(float) * 4096);
            CHECK(kvp_eval(shared_model, c, prompt, 1, logits, &e2) != KVP_OK &&
                  strstr(e2.message, "kvp_cache_reset"));
            free(logits);
        }
        /* a failed generation leaves the cache usable after its reset */
        kvp_gen_result r3 = {0};
        CHECK_MSG(kvp_generate(shared_model, c, prompt, 24, &gp, &r3, &e2) == KVP_OK, "%s",
                  e2.message);
        kvp_gen_result_free(&r3);
    }
    kvp_gen_result_free(&r1);
    kvp_gen_result_free(&r2);
    kvp_cache_free(c);
    return st;
}

static char convert_out[600];
static kvp_status sc_convert(kvp_error *err, char **res, size_t *rn) {
    unlink(convert_out);
    kvp_status st = kvp_convert_to_gguf(MODEL_DIR, convert_out, KVP_FTYPE_F16, err);
    if (st == KVP_OK) {
        *res = kvp_test_read_file(convert_out, rn);
    } else {
        struct stat sb;
        CHECK_MSG(stat(convert_out, &sb) != 0, "a failed conversion left %s", convert_out);
    }
    return st;
}

static char eval_dir[600], eval_result[700];
static kvp_status sc_needle_eval(kvp_error *err, char **res, size_t *rn) {
    const char *result = eval_result;
    unlink(result);
    kvev_task_scores *tasks = NULL;
    size_t nt = 0;
    kvp_status st = kvev_needle_scan(eval_dir, &tasks, &nt, err);
    for (size_t t = 0; t < nt && st == KVP_OK; t++) {
        if (strcmp(tasks[t].name, "niah_single")) continue;
        st = kvev_needle_write_result(&tasks[t], err);
        char *table = kvev_needle_table(&tasks[t]);
        free(table);
        char svg[700];
        snprintf(svg, sizeof svg, "%s/plot.svg", tasks[t].dir);
        if (st == KVP_OK) st = kvev_needle_plot_ratio(&tasks[t], svg, err);
    }
    kvev_task_scores_free(tasks, nt);
    if (st == KVP_OK) *res = kvp_test_read_file(result, rn);
    return st;
}

static void walk(const scenario *s) {
    kvp_error err;
    char *good = NULL;
    size_t good_n = 0;
    alloc_fault_arm(0);
    kvp_status st = s->run(&err, &good, &good_n);
    long total = alloc_fault_count();
    CHECK_MSG(st == KVP_OK && good, "%s without faults: %s", s->name, err.message);
    if (st != KVP_OK) return;
    long points = 0, errors = 0, tolerated = 0;
    for (long i = 0;; i++) {
        long k = i < DENSE ? i + 1 : DENSE + 1 + (i - DENSE) * (total - DENSE) / SPREAD;
        if (k > total || i >= DENSE + SPREAD) break;
        char *res = NULL;
        size_t rn = 0;
        memset(&err, 0, sizeof err);
        alloc_fault_arm(k);
        st = s->run(&err, &res, &rn);
        alloc_fault_arm(0);
        points++;
        if (s->output) {
            struct stat sb;
            CHECK_MSG(stat(s->output, &sb) != 0 || same_as(s->output, good, good_n),
                      "%s: allocation %ld: %s is partial", s->name, k, s->output);
        }
        if (st != KVP_OK) {
            errors++;
            /* out of memory says so, whichever layer noticed it */
            CHECK_MSG(err.status == st && err.message[0] && st == KVP_ERR_NOMEM,
                      "%s: allocation %ld: status %d (%s), message '%s'", s->name, k, (int)st,
                      kvp_status_str(st), err.message);
        } else {
            tolerated++;
            CHECK_MSG(res && rn == good_n && memcmp(res, good, rn) == 0,
                      "%s: allocation %ld failed, the call succeeded, but its result differs",
                      s->name, k);
        }
        free(res);
    }
    printf("%-14s %6ld allocations, %4ld fault points: %4ld clean errors, %4ld done without it\n",
           s->name, total, points, errors, tolerated);

    /* jansson's allocations, in each JSON document the scenario reads */
    alloc_fault_json_arm(0, 0);
    char *again = NULL;
    size_t again_n = 0;
    st = s->run(&err, &again, &again_n);
    free(again);
    long calls = alloc_fault_json_calls();
    points = errors = tolerated = 0;
    for (long i = 0;; i++) {
        long c = i < JSON_DENSE ? i + 1 : JSON_DENSE + 1 + (i - JSON_DENSE) * (calls - JSON_DENSE) / JSON_SPREAD;
        if (c > calls || i >= JSON_DENSE + JSON_SPREAD) break;
        for (long k = 1; k <= 3; k++) {
            char *res = NULL;
            size_t rn = 0;
            memset(&err, 0, sizeof err);
            alloc_fault_json_arm(c, k);
            st = s->run(&err, &res, &rn);
            alloc_fault_json_arm(0, 0);
            points++;
            if (s->output) {
                struct stat sb;
                CHECK_MSG(stat(s->output, &sb) != 0 || same_as(s->output, good, good_n),
                          "%s: JSON document %ld, allocation %ld: %s is partial", s->name, c, k,
                          s->output);
            }
            if (st != KVP_OK) {
                errors++;
                CHECK_MSG(err.status == st && err.message[0] && st == KVP_ERR_NOMEM,
                          "%s: JSON document %ld, allocation %ld: status %d (%s), message '%s'",
                          s->name, c, k, (int)st, kvp_status_str(st), err.message);
            } else {
                tolerated++;
                CHECK_MSG(res && rn == good_n && memcmp(res, good, rn) == 0,
                          "%s: JSON document %ld, allocation %ld failed, the call succeeded, but "
                          "its result differs", s->name, c, k);
            }
            free(res);
        }
    }
    if (calls > 0)
        printf("%-14s %6ld JSON documents, %4ld fault points: %4ld clean errors, %4ld done "
               "without it\n", s->name, calls, points, errors, tolerated);
    free(good);
}

/* Every allocation jansson makes for a small document (a tokenizer.json
 * that is not one, so a clean run is a format error): each failure is
 * KVP_ERR_NOMEM, also where jansson itself reports a syntax error at a
 * string it could not allocate. */
static void json_small_document(void) {
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/tok", tmp);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK(mkdir(dir, 0755) == 0);
    FILE *f = fopen(path, "w");
    CHECK(f && fputs("{\"model\": {\"type\": \"BPE\"}, \"x\": [1, \"ab\"]}", f) >= 0 && fclose(f) == 0);
    kvp_error err;
    long k, nomem = 0;
    for (k = 1; k < 100; k++) {
        kvp_tokenizer *tok = NULL;
        alloc_fault_json_arm(1, k);
        kvp_status st = kvp_tokenizer_load(dir, &tok, &err);
        int fired = alloc_fault_fired();
        alloc_fault_json_arm(0, 0);
        kvp_tokenizer_free(tok);
        if (!fired) {
            CHECK_MSG(st == KVP_ERR_FORMAT, "small document without faults: %s", err.message);
            break;
        }
        nomem++;
        CHECK_MSG(st == KVP_ERR_NOMEM && strstr(err.message, "out of memory"),
                  "small document, allocation %ld: status %d (%s), message '%s'", k, (int)st,
                  kvp_status_str(st), err.message);
    }
    CHECK(nomem >= 6);
    printf("%-14s %6ld allocations by jansson, each failed in turn: %ld out-of-memory errors\n",
           "json document", k - 1, nomem);
}

int main(void) {
    /* jansson's allocator of the test, before the library reads any JSON */
    alloc_fault_json_install();
    const char *base = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/kvp_faults_XXXXXX", base && *base ? base : P_tmpdir);
    if (!mkdtemp(tmp)) return 2;
    kvp_error err;
    snprintf(gguf_path, sizeof gguf_path, "%s/m.gguf", tmp);
    snprintf(convert_out, sizeof convert_out, "%s/out.gguf", tmp);
    snprintf(eval_dir, sizeof eval_dir, "%s/sweep", tmp);
    snprintf(eval_result, sizeof eval_result, "%s/niah_single/result.json", eval_dir);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp -r tests/data/eval/sweep '%s'", eval_dir);
    CHECK(system(cmd) == 0);
    alloc_fault_arm(0);
    CHECK(kvp_convert_to_gguf(MODEL_DIR, gguf_path, KVP_FTYPE_BF16, &err) == KVP_OK);
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = 1;
    CHECK(kvp_model_load(MODEL_DIR, &mp, &shared_model, &err) == KVP_OK);

    const scenario all[] = {
        {"model load hf", sc_load_hf, NULL},  {"model load gguf", sc_load_gguf, NULL},
        {"tokenizer", sc_tokenizer, NULL},    {"generate", sc_generate, NULL},
        {"convert", sc_convert, convert_out}, {"needle eval", sc_needle_eval, eval_result},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) walk(&all[i]);
    json_small_document();

    printf("generate: %d failures left a block half done; each cache refused kvp_eval until "
           "reset\n", mid_block_failures);
    CHECK(mid_block_failures > 0);
    kvp_model_free(shared_model);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
    return kvp_test_done("test_alloc_faults");
}
