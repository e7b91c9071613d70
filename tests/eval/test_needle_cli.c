/* The needle commands end to end on a tiny random model (tests/data/eval/
 * tiny-model, made by tools/eval/make_tiny_model.py): gen determinism, pred
 * equal to `kvprune generate`, resuming after a torn line and after SIGKILL,
 * shards, bad input, eval outputs. Usage: test_needle_cli PATH-TO-KVPRUNE */
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvprune_eval/metrics.h"
#include "test_util.h"

static const char *cli;
static char tmp[512];
static const char *model = "tests/data/eval/tiny-model";

static bool same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = kvp_test_read_file(a, &na), *y = kvp_test_read_file(b, &nb);
    bool same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

static size_t count_lines(const char *path) {
    char *s = kvp_test_read_file(path, NULL);
    size_t n = 0;
    for (char *p = s; p && *p; p++) n += *p == '\n';
    free(s);
    return n;
}

static bool exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Runs `kvprune <args>` with stdout/stderr into tmp/out.txt, tmp/err.txt. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s > %s/out.txt 2> %s/err.txt", cli, args, tmp, tmp);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static bool err_has(const char *needle) {
    char p[600];
    snprintf(p, sizeof p, "%s/err.txt", tmp);
    char *s = kvp_test_read_file(p, NULL);
    bool ok = s && strstr(s, needle);
    if (!ok) fprintf(stderr, "stderr lacks '%s':\n%s\n", needle, s ? s : "(none)");
    free(s);
    return ok;
}

/* The k-th line (0-based) as JSON. */
static json_t *line_of(const char *path, size_t k) {
    char *s = kvp_test_read_file(path, NULL);
    char *p = s;
    for (size_t i = 0; p && i < k; i++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    json_t *v = p ? json_loadb(p, strcspn(p, "\n"), 0, NULL) : NULL;
    free(s);
    return v;
}

static void test_gen(void) {
    CHECK_EQ_INT(run("needle gen -m %s -o %s/a/niah.jsonl --lengths 200,300 --num-depths 3 "
                     "--samples 2 --seed 5", model, tmp), 0);
    CHECK_EQ_INT(run("needle gen -m %s -o %s/b/niah.jsonl --lengths 200,300 --num-depths 3 "
                     "--samples 2 --seed 5", model, tmp), 0);
    CHECK_EQ_INT(run("needle gen -m %s -o %s/c/niah.jsonl --lengths 200,300 --num-depths 3 "
                     "--samples 2 --seed 6", model, tmp), 0);
    char a[600], b[600], c[600];
    snprintf(a, sizeof a, "%s/a/niah.jsonl", tmp);
    snprintf(b, sizeof b, "%s/b/niah.jsonl", tmp);
    snprintf(c, sizeof c, "%s/c/niah.jsonl", tmp);
    CHECK(same_file(a, b));
    CHECK(!same_file(a, c));
    CHECK_EQ_INT(count_lines(a), 12);
    /* Bad wording file, bad variant. */
    CHECK_EQ_INT(run("needle gen -m %s -o %s/d.jsonl --template tests/data/eval/template_bad.json",
                     model, tmp), 1);
    CHECK(err_has("missing key \"needle\""));
    CHECK_EQ_INT(run("needle gen -m %s -o %s/d.jsonl --variant nope", model, tmp), 2);
    char d[600];
    snprintf(d, sizeof d, "%s/d.jsonl", tmp);
    CHECK(!exists(d));
}

static void test_pred_matches_generate(void) {
    CHECK_EQ_INT(run("needle pred -m %s --data %s/a/niah.jsonl --save-dir %s/s1 --method full,h2o "
                     "--cache-ratio 0.2 --no-decode-evict --quiet", model, tmp, tmp), 0);
    char full[600], h2o[600];
    snprintf(full, sizeof full, "%s/s1/niah/full/pred.jsonl", tmp);
    snprintf(h2o, sizeof h2o, "%s/s1/niah/h2o-cr0.2-no_decode_evict/pred.jsonl", tmp);
    CHECK_EQ_INT(count_lines(full), 12);
    CHECK_EQ_INT(count_lines(h2o), 12);
    char data[600], prompt[600], outp[600];
    snprintf(data, sizeof data, "%s/a/niah.jsonl", tmp);
    snprintf(prompt, sizeof prompt, "%s/prompt.txt", tmp);
    snprintf(outp, sizeof outp, "%s/out.txt", tmp);
    for (size_t k = 0; k < 12; k += 5) {
        json_t *d = line_of(data, k);
        CHECK(d != NULL);
        if (!d) continue;
        FILE *f = fopen(prompt, "wb");
        fputs(json_string_value(json_object_get(d, "input")), f);
        fclose(f);
        for (int m = 0; m < 2; m++) {
            int rc = m == 0 ? run("generate -m %s --prompt-file %s -n 64", model, prompt)
                            : run("generate -m %s --prompt-file %s -n 64 --method h2o "
                                  "--num-recent 16 --cache-ratio 0.2 --no-decode-evict",
                                  model, prompt);
            CHECK_EQ_INT(rc, 0);
            size_t n = 0;
            char *text = kvp_test_read_file(outp, &n);
            if (!text) continue;
            if (n && text[n - 1] == '\n') text[--n] = '\0';
            n = kvev_niah_postprocess(text, n);
            json_t *pl = line_of(m == 0 ? full : h2o, k);
            CHECK(pl && json_integer_value(json_object_get(pl, "index")) ==
                            json_integer_value(json_object_get(d, "index")));
            const char *resp = pl ? json_string_value(json_object_get(pl, "response")) : "";
            CHECK_MSG(pl && strlen(resp) == n && !memcmp(resp, text, n),
                      "sample %zu method %d: pred '%s' vs generate '%s'", k, m, resp, text);
            CHECK(json_equal(json_object_get(pl, "outputs"), json_object_get(d, "outputs")));
            CHECK(json_equal(json_object_get(pl, "others"), json_object_get(d, "others")));
            json_decref(pl);
            free(text);
        }
        json_decref(d);
    }
}

static void test_resume(void) {
    char ref[600], dir[700], part[800];
    snprintf(ref, sizeof ref, "%s/s1/niah/full/pred.jsonl", tmp);
    snprintf(dir, sizeof dir, "%s/s2/niah/full", tmp);
    snprintf(part, sizeof part, "%s/pred.jsonl", dir);
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    CHECK(system(cmd) == 0);
    /* Five whole lines and a torn sixth, as a killed writer leaves them. */
    size_t n = 0;
    char *s = kvp_test_read_file(ref, &n);
    char *p = s;
    for (int i = 0; i < 5; i++) p = strchr(p, '\n') + 1;
    size_t keep = (size_t)(p - s) + 40;
    FILE *f = fopen(part, "wb");
    fwrite(s, 1, keep, f);
    fclose(f);
    free(s);
    CHECK_EQ_INT(run("needle pred -m %s --data %s/a/niah.jsonl --save-dir %s/s2 --method full",
                     model, tmp, tmp), 0);
    CHECK(same_file(part, ref));
    char outp[600];
    snprintf(outp, sizeof outp, "%s/out.txt", tmp);
    char *o = kvp_test_read_file(outp, NULL);
    CHECK(o && strstr(o, "7 generated, 5 already done") && strstr(o, "torn"));
    free(o);
    CHECK(err_has("needle pred: 7/7 (100%)")); /* the non-TTY progress lines */
    CHECK_EQ_INT(run("needle pred -m %s --data %s/a/niah.jsonl --save-dir %s/s2 --method full",
                     model, tmp, tmp), 0);
    CHECK(same_file(part, ref));
    o = kvp_test_read_file(outp, NULL);
    CHECK(o && strstr(o, "0 generated, 12 already done"));
    free(o);

    /* A real SIGKILL in the middle of a run. */
    char s3[600], p3[700];
    snprintf(s3, sizeof s3, "%s/s3", tmp);
    snprintf(p3, sizeof p3, "%s/niah/full/pred.jsonl", s3);
    char data[600];
    snprintf(data, sizeof data, "%s/a/niah.jsonl", tmp);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        freopen("/dev/null", "w", stdout);
        execl(cli, cli, "needle", "pred", "-m", model, "--data", data, "--save-dir", s3,
              "--method", "full", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 4000 && count_lines(p3) < 3; i++) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    size_t killed_at = count_lines(p3);
    CHECK(killed_at >= 3);
    CHECK_EQ_INT(run("needle pred -m %s --data %s --save-dir %s --method full", model, data, s3),
                 0);
    CHECK_MSG(same_file(p3, ref), "resumed after SIGKILL at %zu lines", killed_at);
}

static void test_shards(void) {
    /* A small sweep: 2 samples, 8 new tokens, 5 experiments. */
    CHECK_EQ_INT(run("needle gen -m %s -o %s/a/small.jsonl --lengths 150 --depths 0,100 "
                     "--samples 1 -n 8", model, tmp), 0);
    const char *args = "--method full,h2o,tova --cache-ratio 0.2,0.5 --quiet -n 8 --task niah";
    CHECK_EQ_INT(run("needle pred -m %s --data %s/a/small.jsonl --save-dir %s/sh --shard 0/2 %s",
                     model, tmp, tmp, args), 0);
    char p[700];
    /* Experiments 0 (full), 2 (h2o-cr0.5), 4 (tova-cr0.5) belong to shard 0. */
    snprintf(p, sizeof p, "%s/sh/niah/h2o-cr0.2/pred.jsonl", tmp);
    CHECK(!exists(p));
    snprintf(p, sizeof p, "%s/sh/niah/h2o-cr0.5/pred.jsonl", tmp);
    CHECK(exists(p));
    CHECK_EQ_INT(run("needle pred -m %s --data %s/a/small.jsonl --save-dir %s/sh --shard 1/2 %s",
                     model, tmp, tmp, args), 0);
    CHECK_EQ_INT(run("needle pred -m %s --data %s/a/small.jsonl --save-dir %s/one %s", model, tmp,
                     tmp, args), 0);
    const char *exps[] = {"full", "h2o-cr0.2", "h2o-cr0.5", "tova-cr0.2", "tova-cr0.5"};
    for (int i = 0; i < 5; i++) {
        char a[700], b[700];
        snprintf(a, sizeof a, "%s/sh/niah/%s/pred.jsonl", tmp, exps[i]);
        snprintf(b, sizeof b, "%s/one/niah/%s/pred.jsonl", tmp, exps[i]);
        CHECK_MSG(same_file(a, b), "%s", exps[i]);
    }
    CHECK_EQ_INT(run("needle pred -m %s --data %s/a/small.jsonl --save-dir %s/sh --shard 2/2 %s",
                     model, tmp, tmp, args), 2);
    CHECK(err_has("--shard"));
}

/* Budget allocations: one experiment per allocation, uniform keeps the
 * folder names it always had. */
static void test_allocs(void) {
    const char *args = "--method full,h2o,tova --cache-ratio 0.2,0.5 --quiet -n 8 --task niah";
    CHECK_EQ_INT(run("needle pred -m %s --data %s/a/small.jsonl --save-dir %s/al --alloc uniform "
                     "%s", model, tmp, tmp, args), 0);
    const char *exps[] = {"full", "h2o-cr0.2", "h2o-cr0.5", "tova-cr0.2", "tova-cr0.5"};
    for (int i = 0; i < 5; i++) {
        char a[700], b[700];
        snprintf(a, sizeof a, "%s/al/niah/%s/pred.jsonl", tmp, exps[i]);
        snprintf(b, sizeof b, "%s/one/niah/%s/pred.jsonl", tmp, exps[i]);
        CHECK_MSG(same_file(a, b), "%s with --alloc uniform", exps[i]);
    }
    char sd[600];
    snprintf(sd, sizeof sd, "%s/al_never", tmp);
    CHECK_EQ_INT(run("needle pred -m %s --data %s/a/small.jsonl --save-dir %s --alloc "
                     "uniform,bogus %s", model, tmp, sd, args), 2);
    CHECK(err_has("--alloc: 'bogus' is not uniform, adaptive, pyramid or adaptive+pyramid"));
    CHECK_EQ_INT(run("needle pred -m %s --data %s/a/small.jsonl --save-dir %s --budget-alloc "
                     "adaptive %s", model, tmp, sd, args), 2);
    CHECK(err_has("--budget-alloc: a sweep takes --alloc LIST"));
    CHECK(!exists(sd));
    /* every allocation its own experiment, next to the uniform one */
    CHECK_EQ_INT(run("needle pred -m %s --data %s/a/small.jsonl --save-dir %s/al --alloc "
                     "uniform,adaptive,pyramid,adaptive+pyramid %s", model, tmp, tmp, args), 0);
    const char *tags[] = {"adaptive", "pyramid", "adaptive+pyramid"};
    for (int t = 0; t < 3; t++) {
        char a[700], b[700];
        snprintf(a, sizeof a, "%s/al/niah/h2o-cr0.2-%s/pred.jsonl", tmp, tags[t]);
        snprintf(b, sizeof b, "%s/al/niah/h2o-cr0.2/pred.jsonl", tmp);
        CHECK_MSG(exists(a), "%s", a);
        CHECK_MSG(count_lines(a) == count_lines(b), "%s has every sample", a);
    }
}

static void test_bad_input(void) {
    char bad[600], sd[600];
    snprintf(bad, sizeof bad, "%s/bad.jsonl", tmp);
    snprintf(sd, sizeof sd, "%s/never", tmp);
    FILE *f = fopen(bad, "wb");
    fputs("{\"index\": 0, \"input\": \"a\", \"outputs\": [\"1\"]}\n"
          "{\"index\": 1, \"input\": \"b\", \"outputs\": [\"1\"]}\n"
          "{\"index\": 2, \"input\": \"c\", \"outputs\": [\"1\"\n",
          f);
    fclose(f);
    CHECK_EQ_INT(run("needle pred -m %s --data %s --save-dir %s", model, bad, sd), 1);
    CHECK(err_has("bad.jsonl:3:"));
    f = fopen(bad, "wb");
    fputs("{\"index\": 0, \"input\": \"a\", \"outputs\": [\"1\"]}\n"
          "{\"index\": 1, \"input\": \"b\"}\n",
          f);
    fclose(f);
    CHECK_EQ_INT(run("needle pred -m %s --data %s --save-dir %s", model, bad, sd), 1);
    CHECK(err_has("bad.jsonl:2: missing field 'outputs'"));
    f = fopen(bad, "wb");
    fputs("{\"input\": \"a\", \"outputs\": [\"1\"]}\n", f);
    fclose(f);
    CHECK_EQ_INT(run("needle pred -m %s --data %s --save-dir %s", model, bad, sd), 1);
    CHECK(err_has("bad.jsonl:1: missing field 'index'"));
    CHECK_EQ_INT(run("needle pred -m %s --data %s/a/niah.jsonl --save-dir %s --method h2o,nope "
                     "--cache-ratio 0.1", model, tmp, sd), 2);
    CHECK(err_has("unknown method 'nope'"));
    CHECK_EQ_INT(run("needle pred -m %s --data %s/a/niah.jsonl --save-dir %s --method h2o "
                     "--cache-ratio 0.1,0", model, tmp, sd), 2);
    CHECK(err_has("outside (0, 1]"));
    CHECK_EQ_INT(run("needle pred -m %s --data %s/a/niah.jsonl --save-dir %s --method h2o "
                     "--cache-ratio 1.5", model, tmp, sd), 2);
    CHECK(err_has("outside (0, 1]"));
    CHECK_EQ_INT(run("needle pred -m %s --data %s/a/niah.jsonl --save-dir %s --method h2o",
                     model, tmp, sd), 2);
    CHECK(err_has("--cache-ratio"));
    /* Longer than the model's context (4096). */
    CHECK_EQ_INT(run("needle gen -m %s -o %s/long.jsonl --lengths 4200 --samples 1 --depths 50",
                     model, tmp), 0);
    CHECK_EQ_INT(run("needle pred -m %s --data %s/long.jsonl --save-dir %s", model, tmp, sd), 1);
    CHECK(err_has("long.jsonl:1: the prompt takes"));
    CHECK(err_has("more than the model's context of 4096 tokens"));
    CHECK(!exists(sd));
}

static void test_eval(void) {
    CHECK_EQ_INT(run("needle eval --save-dir %s/one --heatmap h2o-cr0.5", tmp), 0);
    char p[700];
    const char *files[] = {"result.json", "accuracy_vs_cache_ratio.svg", "heatmap_h2o-cr0.5.svg"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/one/niah/%s", tmp, files[i]);
        CHECK_MSG(exists(p), "%s", p);
    }
    snprintf(p, sizeof p, "%s/out.txt", tmp);
    char *o = kvp_test_read_file(p, NULL);
    CHECK(o && strstr(o, "cr=0.2") && strstr(o, "tova") && strstr(o, "plot: "));
    free(o);
    CHECK_EQ_INT(run("needle eval --save-dir %s/one --heatmap nope", tmp), 1);
    CHECK(err_has("--heatmap"));
    CHECK_EQ_INT(run("needle eval --save-dir %s/nothing_here", tmp), 1);
    CHECK_EQ_INT(run("needle bogus"), 2);
}

/* Sweeps cut short: every experiment is scored on what it has, with its
 * count; a torn last line is ignored with a warning; nothing stale is left
 * when eval fails; task names stay inside --save-dir. */
static void test_eval_interrupted(void) {
    char cmd[4096], p[800];
    snprintf(cmd, sizeof cmd, "rm -rf %s/cut && cp -r %s/one %s/cut", tmp, tmp, tmp);
    CHECK(system(cmd) == 0);
    /* pred recorded how many samples each experiment is to have */
    snprintf(p, sizeof p, "%s/cut/niah/h2o-cr0.2/run.json", tmp);
    json_t *rj = json_load_file(p, 0, NULL);
    CHECK(rj && json_integer_value(json_object_get(rj, "samples")) == 2);
    json_decref(rj);
    /* an empty pred.jsonl (killed before its first sample) */
    snprintf(p, sizeof p, "%s/cut/niah/h2o-cr0.2/pred.jsonl", tmp);
    FILE *f = fopen(p, "wb");
    if (f) fclose(f);
    /* 1 of 2 samples, and 1 of 2 plus a torn line */
    snprintf(cmd, sizeof cmd,
             "head -n 1 %s/one/niah/tova-cr0.2/pred.jsonl > %s/cut/niah/tova-cr0.2/pred.jsonl && "
             "head -n 1 %s/one/niah/tova-cr0.5/pred.jsonl > %s/cut/niah/tova-cr0.5/pred.jsonl && "
             "printf '{\"index\": 1, \"resp' >> %s/cut/niah/tova-cr0.5/pred.jsonl",
             tmp, tmp, tmp, tmp, tmp);
    CHECK(system(cmd) == 0);
    CHECK_EQ_INT(run("needle eval --save-dir %s/cut", tmp), 0);
    CHECK(err_has("tova-cr0.5/pred.jsonl:2: a torn last line"));
    snprintf(p, sizeof p, "%s/out.txt", tmp);
    char *o = kvp_test_read_file(p, NULL);
    CHECK_MSG(o && strstr(o, "* tova-cr0.2: 1 of 2 samples") &&
                  strstr(o, "* tova-cr0.5: 1 of 2 samples (a torn last line ignored)") &&
                  strstr(o, "* h2o-cr0.2: 0 of 2 samples") && strstr(o, "missing"),
              "%s", o ? o : "");
    free(o);
    snprintf(p, sizeof p, "%s/cut/niah/result.json", tmp);
    json_t *r = json_load_file(p, 0, NULL);
    json_t *cov = json_object_get(r, "_samples");
    CHECK(r && json_integer_value(json_object_get(r, "h2o-cr0.2")) == -1);
    CHECK(json_integer_value(json_object_get(json_object_get(cov, "tova-cr0.5"), "scored")) == 1);
    CHECK(json_is_false(json_object_get(json_object_get(cov, "tova-cr0.5"), "complete")));
    CHECK(json_is_true(json_object_get(json_object_get(cov, "full"), "complete")));
    json_decref(r);
    /* pred resumes: drops the torn line, fills in what is missing */
    snprintf(p, sizeof p, "%s/a/small.jsonl", tmp);
    CHECK_EQ_INT(run("needle pred -m %s --data %s --save-dir %s/cut --method full,h2o,tova "
                     "--cache-ratio 0.2,0.5 --quiet -n 8 --task niah", model, p, tmp), 0);
    const char *exps[] = {"h2o-cr0.2", "tova-cr0.2", "tova-cr0.5"};
    for (int i = 0; i < 3; i++) {
        char a[800], b[800];
        snprintf(a, sizeof a, "%s/cut/niah/%s/pred.jsonl", tmp, exps[i]);
        snprintf(b, sizeof b, "%s/one/niah/%s/pred.jsonl", tmp, exps[i]);
        CHECK_MSG(same_file(a, b), "%s after resume", exps[i]);
    }
    CHECK_EQ_INT(run("needle eval --save-dir %s/cut", tmp), 0);
    o = kvp_test_read_file(p, NULL);
    free(o);
    snprintf(p, sizeof p, "%s/out.txt", tmp);
    o = kvp_test_read_file(p, NULL);
    CHECK(o && strstr(o, "every score covers its 2 samples") && !strstr(o, "*"));
    free(o);
    /* a malformed line: that experiment scores -1 with the error, the rest
     * are written, and the exit code says something was wrong */
    snprintf(p, sizeof p, "%s/cut/niah/full/pred.jsonl", tmp);
    f = fopen(p, "wb");
    if (f) {
        fputs("{\"index\": 0, \"response\": 5, \"outputs\": [\"1\"]}\n", f);
        fclose(f);
    }
    CHECK_EQ_INT(run("needle eval --save-dir %s/cut", tmp), 1);
    CHECK(err_has("kvprune needle eval: full: "));
    snprintf(p, sizeof p, "%s/cut/niah/result.json", tmp);
    r = json_load_file(p, 0, NULL);
    CHECK(r && json_integer_value(json_object_get(r, "full")) == -1 &&
          json_number_value(json_object_get(r, "h2o-cr0.5")) >= 0);
    CHECK(json_string_value(json_object_get(
              json_object_get(json_object_get(r, "_samples"), "full"), "error")) != NULL);
    json_decref(r);
    /* eval that cannot write all of a task's outputs keeps none of them
     * (here the plot's name is taken by a folder): no result.json that
     * looks current survives a failed run */
    CHECK(exists(p));
    snprintf(cmd, sizeof cmd, "rm %s/cut/niah/accuracy_vs_cache_ratio.svg && "
             "mkdir %s/cut/niah/accuracy_vs_cache_ratio.svg", tmp, tmp);
    CHECK(system(cmd) == 0);
    CHECK_EQ_INT(run("needle eval --save-dir %s/cut", tmp), 1);
    CHECK(!exists(p));
    /* task names are plain names: nothing is written outside --save-dir */
    snprintf(p, sizeof p, "%s/a/small.jsonl", tmp);
    CHECK_EQ_INT(run("needle pred -m %s --data %s --save-dir %s/inside/x --task ../../escaped "
                     "--quiet -n 2", model, p, tmp), 2);
    CHECK(err_has("kvprune needle pred: --task: '../../escaped' is not a plain folder name"));
    snprintf(p, sizeof p, "%s/escaped", tmp);
    CHECK(!exists(p));
    CHECK_EQ_INT(run("needle pred -m %s --data %s/a/small.jsonl --save-dir %s/inside --task .. "
                     "--quiet -n 2", model, tmp, tmp), 2);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_needle_cli PATH-TO-KVPRUNE\n");
        return 2;
    }
    cli = argv[1];
    const char *base = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/kvev_needle_XXXXXX", base && *base ? base : P_tmpdir);
    if (!mkdtemp(tmp)) return 2;
    test_gen();
    test_pred_matches_generate();
    test_resume();
    test_shards();
    test_allocs();
    test_bad_input();
    test_eval();
    test_eval_interrupted();
    int rc = kvp_test_done("test_needle_cli");
    if (rc == 0) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    } else {
        fprintf(stderr, "files kept in %s\n", tmp);
    }
    return rc;
}
