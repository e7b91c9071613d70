/* The option parser (cli/options.c) in-process: values land in their
 * destinations with the destination's width, lists given twice keep the
 * last (no leak under ASan), --help wins anywhere, a value is taken
 * verbatim even when it looks like a flag, refused and required flags,
 * and --help's layout (80 columns, every spelling, defaults). */
#include <stdint.h>
#include <unistd.h>

#include "cli.h"
#include "test_util.h"

typedef struct vals {
    bool flag, on;
    int i32;
    int64_t i64;
    uint64_t u64;
    float f32;
    double f64, open;
    const char *str;
    int kind;
    int32_t *ids;
    double *ratios;
    const char **names;
    size_t n_ids, n_ratios, n_names;
    bool str_given;
} vals;

static const cli_enum_value kinds[] = {{"alpha", 3}, {"beta", 5}, {NULL, 0}};

static bool no_x(const char *v, char *msg, size_t size) {
    if (strchr(v, 'x') == NULL) return true;
    snprintf(msg, size, "'%s' has an x", v);
    return false;
}

/* Parses argv (without the program name) into a fresh vals. */
static int parse(vals *v, const char *const *args, int n) {
    memset(v, 0, sizeof *v);
    v->on = true;
    v->i32 = 7;
    v->kind = 5;
    v->f64 = 0.25;
    v->str = "dflt";
    const cli_option opts[] = {
        CLI_OPT_FLAG("-f|--flag", &v->flag, "sets flag"),
        CLI_OPT_FLAG_OFF("--no-on", &v->on, "clears on"),
        CLI_OPT_INT("-n|--num", "N", &v->i32, -3, 1000, "an int"),
        CLI_OPT_INT("--big", "N", &v->i64, 0, 1LL << 40, "an int64"),
        CLI_OPT_UINT("--seed", "S", &v->u64, UINT64_MAX, "a seed"),
        CLI_OPT_FLOAT("--f32", "X", &v->f32, 0, 10, "a float"),
        CLI_OPT_FLOAT("--f64", "X", &v->f64, 0, 1, "a double"),
        CLI_OPT_FLOAT("--open", "X", &v->open, 0, 1, "(0, 1]", .open_min = true),
        CLI_OPT_STRING("--str", "S", &v->str, "a string", .check = no_x, .given = &v->str_given),
        CLI_OPT_ENUM("--kind", &v->kind, kinds, "an enum", .meta = "K"),
        CLI_OPT_LIST_INT("--ids", "LIST", &v->ids, &v->n_ids, 0, 100, "ids"),
        CLI_OPT_LIST_FLOAT("--ratios", "LIST", &v->ratios, &v->n_ratios, 0, 1, "ratios", .open_min = true),
        CLI_OPT_LIST_STRING("--names", "LIST", &v->names, &v->n_names, no_x, "names"),
        CLI_OPT_REJECT("--old", "use --num"),
    };
    const cli_group groups[] = {{NULL, opts, CLI_COUNT(opts)}};
    const cli_command cmd = {"test", NULL, NULL, groups, 1, NULL};
    char *argv[32];
    argv[0] = "test";
    for (int i = 0; i < n; i++) argv[i + 1] = (char *)args[i];
    return cli_parse(&cmd, n + 1, argv);
}

static void release(vals *v) {
    free(v->ids);
    free(v->ratios);
    free(v->names);
}

#define PARSE(v, ...)                                                                  \
    parse(v, (const char *const[]){__VA_ARGS__},                                       \
          (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)))

static void test_values(void) {
    vals v;
    CHECK_EQ_INT(PARSE(&v, "-f", "--no-on", "-n", "-3", "--big", "1099511627776", "--seed",
                       "18446744073709551615", "--f32", "2.5", "--f64", "1", "--open", "1", "--str",
                       "--flag", "--kind", "alpha", "--ids", "1,,2,100", "--ratios", "0.5,1",
                       "--names", "a,b,c"),
                 -1);
    CHECK(v.flag && !v.on);
    CHECK_EQ_INT(v.i32, -3);
    CHECK(v.i64 == (int64_t)1 << 40);
    CHECK(v.u64 == UINT64_MAX);
    CHECK(v.f32 == 2.5f);
    CHECK(v.f64 == 1.0 && v.open == 1.0);
    CHECK_STR(v.str, "--flag"); /* a value is taken verbatim */
    CHECK(v.str_given);
    CHECK_EQ_INT(v.kind, 3);
    /* empty fields are skipped, as strtok does */
    CHECK(v.n_ids == 3 && v.ids[0] == 1 && v.ids[1] == 2 && v.ids[2] == 100);
    CHECK(v.n_ratios == 2 && v.ratios[0] == 0.5 && v.ratios[1] == 1.0);
    CHECK(v.n_names == 3 && !strcmp(v.names[0], "a") && !strcmp(v.names[2], "c"));
    release(&v);

    /* untouched flags keep their defaults; a list given twice keeps the last */
    CHECK_EQ_INT(PARSE(&v, "--ids", "1,2", "--ids", "9", "--names", "p", "--names", "q,r"), -1);
    CHECK(v.on && !v.flag && v.i32 == 7 && v.kind == 5 && v.f64 == 0.25 && !v.str_given);
    CHECK_STR(v.str, "dflt");
    CHECK(v.n_ids == 1 && v.ids[0] == 9);
    CHECK(v.n_names == 2 && !strcmp(v.names[1], "r"));
    release(&v);
}

static void test_errors(void) {
    static const char *const bad[][2] = {
        {"-n", "1001"},     {"-n", "-4"},        {"-n", "0x10"},     {"--big", "1099511627777"},
        {"--seed", "-1"},   {"--seed", "18446744073709551616"},      {"--f32", "10.5"},
        {"--f64", "nan"},   {"--open", "0"},     {"--str", "xyz"},   {"--kind", "gamma"},
        {"--ids", "1,101"}, {"--ids", ","},      {"--ratios", "0.5,0"}, {"--names", "a,x"},
        {"--old", "1"},     {"--unknown", "1"},  {"stray", "1"},
    };
    for (size_t i = 0; i < CLI_COUNT(bad); i++) {
        vals v;
        int rc = parse(&v, bad[i], 2);
        CHECK_MSG(rc == 2, "%s %s: %d", bad[i][0], bad[i][1], rc);
        release(&v);
    }
    vals v;
    CHECK_EQ_INT(PARSE(&v, "--ids", "1", "-n"), 2); /* no value */
    release(&v);
    CHECK_EQ_INT(PARSE(&v, "--ids", "1", "-n", "x", "--help"), 0); /* --help wins */
    release(&v);
    CHECK_EQ_INT(PARSE(&v, "--str", "--help"), -1); /* a value, not a request for help */
    CHECK_STR(v.str, "--help");
    release(&v);
}

static void test_required_and_help(void) {
    const char *model = NULL, *data = NULL;
    int n = 4;
    kvp_cache_params cp = kvp_cache_default_params();
    const cli_option opts[] = {
        CLI_OPT_STRING("-m|--model", "PATH", &model, "the model", .required = true),
        CLI_OPT_STRING("--data", "FILE", &data, "the data", .required = true),
        CLI_OPT_INT("-n|--n-predict|--max-new-tokens", "N", &n, 0, 10,
                    "a long help text that has to wrap because it goes on and on well past the "
                    "eightieth column of the terminal"),
    };
    cli_option cache_opts[CLI_CACHE_MAX_OPTIONS];
    const cli_group groups[] = {{NULL, opts, CLI_COUNT(opts)},
                                {"Cache", cache_opts, cli_cache_options(&cp, CLI_CACHE_ALL, cache_opts)}};
    const cli_command cmd = {"test", "-m PATH --data FILE", "About.\n", groups, CLI_COUNT(groups), NULL};
    /* --help (the defaults are the values before parsing), through a pipe */
    fflush(stdout);
    int fds[2];
    CHECK(pipe(fds) == 0);
    int saved = dup(1);
    dup2(fds[1], 1);
    close(fds[1]);
    cli_print_help(&cmd);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    char buf[16384];
    ssize_t got = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    buf[got > 0 ? got : 0] = '\0';
    if (getenv("TEST_OPTIONS_SHOW")) fputs(buf, stderr);
    CHECK(strstr(buf, "usage: kvprune test -m PATH --data FILE\n\nAbout.\n\nOptions:\n") == buf);
    CHECK(strstr(buf, "  -m, --model PATH       the model [required]\n"));
    CHECK(strstr(buf, "  -n, --n-predict, --max-new-tokens N\n                         a long"));
    CHECK(strstr(buf, "[default: 4]\n"));
    CHECK(strstr(buf, "\nCache:\n  --method NAME"));
    CHECK(strstr(buf, "(exact) [one of f16, bf16,\n                         f32; default: f16]\n"));
    size_t longest = 0;
    for (char *l = buf; *l;) {
        size_t len = strcspn(l, "\n");
        if (len > longest) longest = len;
        l += len + (l[len] == '\n');
    }
    CHECK_MSG(longest <= 80, "a help line of %zu columns", longest);
    char *none[] = {"test"};
    CHECK_EQ_INT(cli_parse(&cmd, 1, none), 2);
    char *one[] = {"test", "--data", "d"};
    CHECK_EQ_INT(cli_parse(&cmd, 3, one), 2);
    char *both[] = {"test", "--data", "d", "--model", "m", "--kv-type", "bf16", "--no-decode-evict"};
    CHECK_EQ_INT(cli_parse(&cmd, 8, both), -1);
    CHECK(cp.kv_type == KVP_KV_BF16 && !cp.decode_evict);
}

int main(void) {
    test_values();
    test_errors();
    test_required_and_help();
    return kvp_test_done("test_options");
}
