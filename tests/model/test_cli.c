/* The generate / convert / info commands as a user runs them (argv[1] is the
 * kvprune executable): JSON output, --dump-logits against the golden
 * logits, EOS stopping, sampling determinism, exit codes on bad input. */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

#define FIX "tests/data/model/llama-gqa"

static const char *cli;
static char tmp[256];

/* Runs a command; returns its exit code and (if out) its stdout. */
static int run(const char *args, char **out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>%s/stderr.txt", cli, args, tmp);
    int st = -1;
    char *buf = kvp_test_capture(cmd, &st);
    if (!buf) return -1;
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *stderr_text(void) {
    char p[300];
    snprintf(p, sizeof p, "%s/stderr.txt", tmp);
    FILE *f = fopen(p, "rb");
    char *b = calloc(1, 8192);
    if (f) {
        size_t n = fread(b, 1, 8191, f);
        b[n] = '\0';
        fclose(f);
    }
    return b;
}

static json_t *gen_json(const char *args) {
    char *out = NULL;
    int rc = run(args, &out);
    CHECK_MSG(rc == 0, "exit %d for %s", rc, args);
    json_t *j = json_loads(out, 0, NULL);
    CHECK_MSG(j != NULL, "not JSON: %s", out);
    free(out);
    return j;
}

int main(int argc, char **argv) {
    if (argc < 2) return 1;
    cli = argv[1];
    snprintf(tmp, sizeof tmp, "%s/kvp_test_cli_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir);
    if (!mkdtemp(tmp)) return 1;

    json_t *g = json_load_file(FIX "/golden.json", 0, NULL);
    CHECK(g != NULL);
    if (!g) return kvp_test_done("test_cli");
    json_t *gp = json_object_get(g, "prompt_ids"), *gids = json_object_get(g, "ids");
    int n_vocab = (int)json_integer_value(json_object_get(g, "n_vocab"));
    char ids[512] = "";
    for (size_t i = 0; i < json_array_size(gp); i++)
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%lld", i ? "," : "",
                 (long long)json_integer_value(json_array_get(gp, i)));

    /* --json and --dump-logits against the golden run. */
    char args[2048];
    snprintf(args, sizeof args,
             "generate -m " FIX " --prompt-ids %s -n 32 --ignore-eos --json --threads 2 "
             "--kv-type f32 --dump-logits %s/logits.f32",
             ids, tmp);
    json_t *j = gen_json(args);
    json_int_t kv_bytes_f32 = j ? json_integer_value(json_object_get(json_object_get(j, "stats"), "kv_bytes")) : 0;
    if (j) {
        CHECK(json_equal(json_object_get(j, "prompt_ids"), gp));
        CHECK(json_equal(json_object_get(j, "ids"), gids));
        json_t *st = json_object_get(j, "stats");
        CHECK_EQ_INT(json_integer_value(json_object_get(st, "prompt_tokens")), json_array_size(gp));
        CHECK(json_is_number(json_object_get(st, "prefill_ms")));
        CHECK(json_is_number(json_object_get(st, "decode_ms")));
        CHECK(json_integer_value(json_object_get(st, "kv_bytes")) > 0);
        /* The kernels' instruction set, as KVP_CPU may have forced it. */
        const char *cpu = json_string_value(json_object_get(st, "cpu"));
        CHECK(cpu != NULL);
        if (cpu && getenv("KVP_CPU") && !strcmp(getenv("KVP_CPU"), "scalar")) CHECK_STR(cpu, "scalar");
        CHECK(json_integer_value(json_object_get(st, "kv_bytes_full")) ==
              json_integer_value(json_object_get(st, "kv_bytes")));
        json_decref(j);
    }
    char p[512];
    snprintf(p, sizeof p, "%s/logits.f32", tmp);
    float *mine = malloc(sizeof(float) * 32 * n_vocab), *gold = malloc(sizeof(float) * 32 * n_vocab);
    FILE *f = fopen(p, "rb");
    size_t got = f ? fread(mine, sizeof(float), 32 * (size_t)n_vocab + 1, f) : 0;
    if (f) fclose(f);
    CHECK_EQ_INT(got, 32 * n_vocab);
    f = fopen(FIX "/golden_logits.f32", "rb");
    got = f ? fread(gold, sizeof(float), 32 * (size_t)n_vocab, f) : 0;
    if (f) fclose(f);
    CHECK_EQ_INT(got, 32 * n_vocab);
    double worst = 0;
    for (int i = 0; i < 32 * n_vocab; i++) {
        double d = fabs(mine[i] - gold[i]) / (fabs(gold[i]) > 1 ? fabs(gold[i]) : 1);
        if (d > worst) worst = d;
    }
    CHECK_MSG(worst <= 1e-4, "dumped logits differ from golden by %g", worst);
    free(mine);
    free(gold);

    /* --kv-type: f16 (the default) and bf16 store 2 bytes an element */
    const char *kvt[] = {"", "--kv-type f16", "--kv-type bf16"};
    for (int t = 0; t < 3; t++) {
        snprintf(args, sizeof args, "generate -m " FIX " --prompt-ids %s -n 32 --ignore-eos --json %s",
                 ids, kvt[t]);
        json_t *jt = gen_json(args);
        CHECK_MSG(jt != NULL, "'%s' failed", args);
        if (!jt) continue;
        CHECK_EQ_INT(2 * json_integer_value(json_object_get(json_object_get(jt, "stats"), "kv_bytes")),
                     kv_bytes_f32);
        json_decref(jt);
    }

    /* Stop at EOS: a copy of the fixture whose EOS is the 6th greedy id. */
    char d[400];
    snprintf(d, sizeof d, "%s/eosmodel", tmp);
    mkdir(d, 0755);
    json_t *cfg = json_load_file(FIX "/config.json", 0, NULL);
    json_int_t eos = json_integer_value(json_array_get(gids, 5));
    json_object_set_new(cfg, "eos_token_id", json_integer(eos));
    snprintf(p, sizeof p, "%s/config.json", d);
    json_dump_file(cfg, p, 0);
    json_decref(cfg);
    char cwd[1024];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    char target[1200];
    snprintf(target, sizeof target, "%s/" FIX "/model.safetensors", cwd);
    CHECK(symlink(target, p) == 0);
    snprintf(args, sizeof args, "generate -m %s --prompt-ids %s -n 32 --json", d, ids);
    j = gen_json(args);
    if (j) {
        json_t *out_ids = json_object_get(j, "ids");
        CHECK_EQ_INT(json_array_size(out_ids), 6);
        CHECK(json_integer_value(json_array_get(out_ids, 5)) == eos);
        CHECK(json_is_true(json_object_get(j, "stopped_at_eos")));
        json_decref(j);
    }
    snprintf(args, sizeof args, "generate -m %s --prompt-ids %s -n 32 --json --ignore-eos", d, ids);
    j = gen_json(args);
    if (j) {
        CHECK_EQ_INT(json_array_size(json_object_get(j, "ids")), 32);
        json_decref(j);
    }

    /* Sampling: the seed decides; top-k 1 is greedy. */
    char *o1 = NULL, *o2 = NULL, *o3 = NULL, *o4 = NULL;
    snprintf(args, sizeof args, "generate -m " FIX " --prompt-ids %s -n 24 --temperature 1.5 --seed 7", ids);
    CHECK(run(args, &o1) == 0);
    CHECK(run(args, &o2) == 0);
    snprintf(args, sizeof args, "generate -m " FIX " --prompt-ids %s -n 24 --temperature 1.5 --seed 8", ids);
    CHECK(run(args, &o3) == 0);
    snprintf(args, sizeof args,
             "generate -m " FIX " --prompt-ids %s -n 24 --temperature 1.5 --top-k 1 --seed 9", ids);
    CHECK(run(args, &o4) == 0);
    CHECK(o1 && o2 && !strcmp(o1, o2));
    CHECK(o1 && o3 && strcmp(o1, o3) != 0);
    char greedy[512] = "[";
    for (int i = 0; i < 24; i++)
        snprintf(greedy + strlen(greedy), sizeof greedy - strlen(greedy), "%s%lld", i ? "," : "",
                 (long long)json_integer_value(json_array_get(gids, i)));
    strcat(greedy, "]\n");
    CHECK_MSG(o4 && !strcmp(o4, greedy), "top-k 1: %s vs %s", o4 ? o4 : "", greedy);
    free(o1);
    free(o2);
    free(o3);
    free(o4);

    /* Text prompts through the fixture with the kvp-mini tokenizer
     * (<s>=1, <|system|>=3, <|user|>=4, <|assistant|>=5). */
#define TOK "tests/data/model/llama-tok-bf16"
    json_t *jc = gen_json("generate -m " TOK " --prompt 'Hello world' -n 4 --ignore-eos --json");
    json_t *jn = gen_json("generate -m " TOK " --prompt 'Hello world' -n 4 --ignore-eos --json --no-chat");
    json_t *js = gen_json("generate -m " TOK " --prompt 'Hello world' -n 4 --ignore-eos --json "
                          "--system 'Be brief'");
    snprintf(p, sizeof p, "%s/prompt.txt", tmp);
    f = fopen(p, "w");
    if (f) {
        fputs("Hello world", f);
        fclose(f);
    }
    snprintf(args, sizeof args, "generate -m " TOK " --prompt-file %s -n 4 --ignore-eos --json", p);
    json_t *jf = gen_json(args);
    if (jc && jn && js && jf) {
        json_t *pc = json_object_get(jc, "prompt_ids"), *pn = json_object_get(jn, "prompt_ids");
        json_t *ps = json_object_get(js, "prompt_ids");
        CHECK(json_integer_value(json_array_get(pc, 0)) == 1);
        CHECK(json_integer_value(json_array_get(pn, 0)) == 1);
        bool has_user = false, has_asst = false, has_sys = false, n_has_user = false;
        for (size_t i = 0; i < json_array_size(pc); i++) {
            has_user |= json_integer_value(json_array_get(pc, i)) == 4;
            has_asst |= json_integer_value(json_array_get(pc, i)) == 5;
        }
        for (size_t i = 0; i < json_array_size(pn); i++)
            n_has_user |= json_integer_value(json_array_get(pn, i)) == 4;
        for (size_t i = 0; i < json_array_size(ps); i++)
            has_sys |= json_integer_value(json_array_get(ps, i)) == 3;
        CHECK(has_user && has_asst && !n_has_user && has_sys);
        CHECK(json_array_size(pn) < json_array_size(pc));
        CHECK(json_is_string(json_object_get(jc, "text")));
        CHECK(json_equal(json_object_get(jf, "prompt_ids"), pc));
        CHECK(json_equal(json_object_get(jf, "ids"), json_object_get(jc, "ids")));
        /* Without --json the text is printed as is. */
        char *plain = NULL;
        CHECK(run("generate -m " TOK " --prompt 'Hello world' -n 4 --ignore-eos", &plain) == 0);
        const char *t = json_string_value(json_object_get(jc, "text"));
        CHECK(plain && t && strncmp(plain, t, strlen(t)) == 0 && !strcmp(plain + strlen(t), "\n"));
        free(plain);
    }
    json_decref(jc);
    json_decref(jn);
    json_decref(js);
    json_decref(jf);

    /* convert + info. */
    snprintf(args, sizeof args, "convert -m " FIX " -o %s/m.gguf --type f16", tmp);
    CHECK(run(args, NULL) == 0);
    char *out = NULL;
    snprintf(args, sizeof args, "info -m %s/m.gguf --json", tmp);
    CHECK(run(args, &out) == 0);
    j = out ? json_loads(out, 0, NULL) : NULL;
    CHECK(j && !strcmp(json_string_value(json_object_get(j, "arch")), "llama") &&
          json_integer_value(json_object_get(j, "n_head_kv")) == 2 &&
          json_integer_value(json_object_get(j, "n_vocab")) == n_vocab);
    json_decref(j);
    free(out);

    /* Compute types: --repack converts at load what the products otherwise
     * convert a panel at a time, so the ids are the same; a build without
     * oneDNN refuses bf16 and names the build option. */
    {
        char *info = NULL;
        CHECK(run("info -m " FIX, &info) == 0);
        bool dnnl = info && strstr(info, "products:       oneDNN") != NULL;
        free(info);
        const char *ids = "generate -m " FIX " --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12 -n 6 --ignore-eos "
                          "--json --compute bf16";
        if (dnnl) {
            char a2[512], *o1 = NULL, *o2 = NULL;
            CHECK(run(ids, &o1) == 0);
            snprintf(a2, sizeof a2, "%s --repack", ids);
            CHECK(run(a2, &o2) == 0);
            char *e = stderr_text();
            CHECK_MSG(strstr(e, "repacked weights take") != NULL, "--repack: stderr '%s'", e);
            free(e);
            json_t *j1 = o1 ? json_loads(o1, 0, NULL) : NULL, *j2 = o2 ? json_loads(o2, 0, NULL) : NULL;
            CHECK(j1 && j2 && json_equal(json_object_get(j1, "ids"), json_object_get(j2, "ids")));
            json_decref(j1);
            json_decref(j2);
            free(o1);
            free(o2);
        } else {
            CHECK(run(ids, NULL) == 1);
            char *e = stderr_text();
            CHECK_MSG(strstr(e, "KVP_ONEDNN") != NULL, "bf16 without oneDNN: stderr '%s'", e);
            free(e);
        }
    }

    /* Exit codes and messages. */
    struct { const char *args; int rc; const char *msg; } bad[] = {
        {"generate -m tests/data/model/no-such-model --prompt-ids 1 -n 2", 1, "no-such-model"},
        {"generate -m " FIX " --prompt-ids 1,99999 -n 2", 2, "99999"},
        {"generate -m " FIX " --prompt hello -n 2", 1, "no tokenizer"},
        {"generate -m " FIX " -n 2", 2, "exactly one"},
        {"generate --prompt-ids 1", 2, "-m"},
        {"generate -m " FIX " --prompt-ids 1 --bogus", 2, "--bogus"},
        {"generate -m " FIX " --prompt-ids 1 -n x", 2, "-n"},
        {"generate -m " FIX " --prompt-ids 1,a", 2, "--prompt-ids"},
        {"generate -m " FIX " --prompt-ids 1 --kv-type f8", 2, "--kv-type"},
        {"compare -m " FIX " --prompt-ids 1 --kv-type q8_0", 2, "--kv-type"},
        {"convert -m " FIX " -o /nonexistent-dir/x.gguf", 1, "x.gguf"},
        {"convert -m " FIX " -o x.gguf --type q4", 2, "--type"},
        {"generate -m " FIX " --prompt-ids 1 --compute f16", 2, "--compute"},
        {"info -m tests/data/model/README-not-here", 1, "README-not-here"},
        /* every usage error exits 2, whichever layer notices it, and every
         * message starts with "kvprune <command>: " */
        {"generate -m " FIX " --prompt-ids 1,2 --method h2o --num-recent 2 --cache-ratio 0", 2,
         "kvprune generate: method h2o: cache_ratio must be > 0"},
        {"generate -m " FIX " --prompt-ids 1,2 --method h2o --recent-ratio -0.5 --heavy-ratio 0.1",
         2, "--recent-ratio"},
        {"generate -m " TOK " --prompt hi --chat-template foo -n 1", 2,
         "kvprune generate: chat template 'foo' is unknown"},
        {"generate -m " FIX " --prompt-ids 1 --method nope", 2, "kvprune generate: --method"},
        {"generate -m " TOK " --prompt-file tests/data/model -n 1", 1,
         "kvprune generate: --prompt-file: tests/data/model: is a directory"},
        {"compare -m " FIX " --prompt-ids 1,2 --methods full,h2o --num-recent 2", 2,
         "kvprune compare: method h2o needs a budget"},
        {"needle pred -m " FIX " --data /nonexistent.jsonl --save-dir x", 1,
         "kvprune needle pred: --data"},
        {"needle gen -m " TOK " -o x.jsonl --lengths 8", 2, "kvprune needle gen: --lengths: 8 is too small"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = run(bad[i].args, NULL);
        char *e = stderr_text();
        CHECK_MSG(rc == bad[i].rc, "'%s': exit %d, expected %d", bad[i].args, rc, bad[i].rc);
        CHECK_MSG(strstr(e, bad[i].msg) != NULL, "'%s': stderr '%s' lacks '%s'", bad[i].args, e,
                  bad[i].msg);
        free(e);
    }
    /* "method h2o: method h2o: ..." said the method twice */
    {
        CHECK(run("compare -m " FIX " --prompt-ids 1,2 --methods full,h2o --num-recent 2", NULL) == 2);
        char *e = stderr_text();
        CHECK_MSG(e && strstr(e, "method h2o") && !strstr(strstr(e, "method h2o") + 1, "method h2o"),
                  "'%s'", e ? e : "");
        free(e);
    }
    /* budget flags with the full cache: a warning, and the full cache's run */
    {
        char *o1 = NULL, *o2 = NULL;
        CHECK(run("generate -m " FIX " --prompt-ids 1,2,3 -n 3 --ignore-eos --num-recent 2 "
                  "--num-heavy 1", &o1) == 0);
        char *e = stderr_text();
        CHECK_MSG(e && strstr(e, "kvprune generate: warning: the full cache keeps every token"),
                  "'%s'", e ? e : "");
        free(e);
        CHECK(run("generate -m " FIX " --prompt-ids 1,2,3 -n 3 --ignore-eos", &o2) == 0);
        CHECK(o1 && o2 && !strcmp(o1, o2));
        free(o1);
        free(o2);
    }
    /* the full cache holds prompt + new tokens by default, past the trained
     * context (256) with one warning; --cache-max-tokens limits it, and
     * its message names the flag */
    {
        char big[2400];
        size_t o = (size_t)snprintf(big, sizeof big, "generate -m " FIX " -n 12 --ignore-eos --json --prompt-ids ");
        for (int i = 0; i < 250; i++) o += (size_t)snprintf(big + o, sizeof big - o, "%s%d", i ? "," : "", 3 + i % 200);
        char *out = NULL;
        CHECK(run(big, &out) == 0);
        char *e = stderr_text();
        CHECK_MSG(e && strstr(e, "warning: positions reach 257, past the model's trained context of 256"),
                  "'%s'", e ? e : "");
        CHECK(e && strstr(strstr(e, "positions reach") + 1, "positions reach") == NULL);
        free(e);
        json_t *jo = out ? json_loads(out, 0, NULL) : NULL;
        CHECK(jo && json_array_size(json_object_get(jo, "ids")) == 12);
        json_decref(jo);
        free(out);
        snprintf(big + o, sizeof big - o, " --cache-max-tokens 200");
        CHECK(run(big, NULL) == 1);
        e = stderr_text();
        CHECK_MSG(e && strstr(e, "--cache-max-tokens"), "'%s'", e ? e : "");
        free(e);
    }
    /* h2o at 5% + 5% of a short prompt keeps 1 token and says so */
    {
        char *o = NULL;
        CHECK(run("generate -m " FIX " --prompt-ids 1,2,3,4,5,6,7,8,9,10 -n 2 --ignore-eos --json "
                  "--method h2o --recent-ratio 0.05 --heavy-ratio 0.05 --no-decode-evict", &o) == 0);
        char *e = stderr_text();
        CHECK_MSG(e && strstr(e, "warning:") && strstr(e, "keeps 1"), "'%s'", e ? e : "");
        free(e);
        json_t *jo = o ? json_loads(o, 0, NULL) : NULL;
        json_t *stats = json_object_get(jo, "stats");
        /* 10 prompt tokens + 1 decode step seen; 1 kept after the prefill
         * plus 1 decode token (no decode eviction): 2 of 11 per stream */
        json_int_t kv = json_integer_value(json_object_get(stats, "kv_bytes"));
        json_int_t full = json_integer_value(json_object_get(stats, "kv_bytes_full"));
        CHECK_MSG(jo && kv > 0 && kv * 11 == full * 2, "kv_bytes %lld of %lld", (long long)kv,
                  (long long)full);
        json_decref(jo);
        free(o);
    }
    json_decref(g);
    snprintf(args, sizeof args, "rm -rf '%s'", tmp);
    CHECK(system(args) == 0);
    return kvp_test_done("test_cli");
}
