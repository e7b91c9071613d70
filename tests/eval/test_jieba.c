/* jieba's cut on the small hand-made fixture (tests/data/jieba/mini): the
 * cuts python3-jieba makes with that dictionary and those HMM tables
 * (mini_cuts.jsonl, from tools/jieba_goldens.py), the API's edge cases, and
 * the errors of bad dictionary and table files. Needs no jieba install. */
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jieba_golden.h"

#define MINI "tests/data/jieba/mini"

static char tmpdir[512];

static void write_text(const char *rel, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* Copies the fixture into tmpdir so one file at a time can be broken. */
static char *fixture[4];
static const char *fixture_names[4] = {"dict.txt", "finalseg/prob_start.py", "finalseg/prob_trans.py",
                                       "finalseg/prob_emit.py"};

static void reset_fixture(void) {
    for (int i = 0; i < 4; i++) write_text(fixture_names[i], fixture[i]);
}

/* Loading tmpdir fails with status st and a message holding both parts. */
static void expect_load_error(const char *what, kvp_status want, const char *part1, const char *part2) {
    kvjb_dict *d = (kvjb_dict *)1;
    kvp_error err = {0};
    kvp_status st = kvjb_load(tmpdir, &d, &err);
    CHECK_MSG(st == want, "%s: status %d, want %d (%s)", what, (int)st, (int)want, err.message);
    CHECK_MSG(d == NULL, "%s: *out not cleared", what);
    CHECK_MSG(strstr(err.message, part1) != NULL, "%s: '%s' lacks '%s'", what, err.message, part1);
    CHECK_MSG(!part2 || strstr(err.message, part2) != NULL, "%s: '%s' lacks '%s'", what, err.message,
              part2);
    if (st == KVP_OK) kvjb_free(d);
    reset_fixture();
}

static void test_bad_files(void) {
    /* Each case: a file of the fixture rewritten, then the load fails with
     * KVP_ERR_FORMAT and a message holding both parts. */
    static const struct {
        const char *file, *text, *what, *part1, *part2;
    } cases[] = {
        /* dict.txt: each bad line named by file:line. */
        {"dict.txt", "北京 100 ns\n大学\n", "no frequency", "dict.txt:2:", "word frequency"},
        {"dict.txt", "北京 100 ns\n\n大学 3\n", "blank line", "dict.txt:2:", NULL},
        {"dict.txt", "北京 100 ns\n大学 1x2 n\n", "bad frequency", "dict.txt:2:", "1x2"},
        {"dict.txt", "北京 -3 ns\n", "negative frequency", "dict.txt:1:", "-3"},
        {"dict.txt", "北京  100\n", "double space", "dict.txt:1:", "missing frequency"},
        {"dict.txt", "北京 100\n\xe5\x8c\x97\xff 3\n", "bad UTF-8", "dict.txt:2:", "UTF-8"},
        {"dict.txt", "北京 99999999999999999999999\n", "huge frequency", "dict.txt:1:", "too large"},
        {"dict.txt", "北京 0\n大学 0\n", "all zero", "dict.txt", "above 0"},
        {"dict.txt", "", "empty dict", "dict.txt", "above 0"},
        /* The HMM tables. */
        {"finalseg/prob_start.py", "P = {'B': -0.25, 'E': -1.0, 'M': -1.0}\n",
         "missing state", "prob_start.py", "'S'"},
        {"finalseg/prob_start.py", "P = {'B': -0.25, 'E': -1.0, 'M': -1.0, 'X': 1, 'S': 0}\n",
         "unknown state", "prob_start.py:1:", "not one of"},
        {"finalseg/prob_start.py", "P = {'B': 'x', 'E': -1.0, 'M': -1.0, 'S': 0}\n",
         "string value", "prob_start.py:1:", "number"},
        {"finalseg/prob_start.py", "P = {'B': inf, 'E': -1.0, 'M': -1.0, 'S': 0}\n",
         "inf", "prob_start.py:1:", NULL},
        {"finalseg/prob_start.py", "P = {'B': -1e999, 'E': -1.0, 'M': -1.0, 'S': 0}\n",
         "overflow", "prob_start.py:1:", "range"},
        {"finalseg/prob_start.py", "Q = {}\n", "no P", "prob_start.py:1:", "P ="},
        {"finalseg/prob_trans.py", "P={'B': {'E': -0.5, 'M': -0.9},\n 'E': {'B': -0.6 'S': -0.7}}\n",
         "missing comma", "prob_trans.py:2:", "expected"},
        {"finalseg/prob_trans.py", "P={'B': {'E': -0.5}, 'E': {}, 'M': {}, 'S': {'Q': 1}}\n",
         "bad target", "prob_trans.py:1:", "transition target"},
        {"finalseg/prob_emit.py", "P={'B': {'\\u4e00': -3.5,\n\n 'ab': -1}, 'E': {}, 'M': {}, 'S': {}}\n",
         "two-char key", "prob_emit.py:3:", "one-character"},
        {"finalseg/prob_emit.py", "P={'B': {'\\u4e00': -3.5, 'E': {}, 'M': {}, 'S': {}}\n",
         "unterminated", "prob_emit.py", NULL},
        {"finalseg/prob_emit.py", "P={'B': {'\\ud800': -3.5}, 'E': {}, 'M': {}, 'S': {}}\n",
         "surrogate", "prob_emit.py:1:", "scalar"},
        {"finalseg/prob_emit.py", "P={'B': {}, 'E': {}, 'M': {}, 'S': {}} x\n",
         "trailing text", "prob_emit.py:1:", "after the literal"},
        {"finalseg/prob_emit.py", "P={'B': {}, 'E': {}, 'M': {}, 'S': {'\\x",
         "truncated escape", "prob_emit.py:1:", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(cases[i].file, cases[i].text);
        expect_load_error(cases[i].what, KVP_ERR_FORMAT, cases[i].part1, cases[i].part2);
    }

    /* Missing files: I/O errors naming the file. */
    char path[1024];
    snprintf(path, sizeof path, "%s/finalseg/prob_emit.py", tmpdir);
    unlink(path);
    expect_load_error("no emit table", KVP_ERR_IO, "prob_emit.py", "cannot open");
    snprintf(path, sizeof path, "%s/dict.txt", tmpdir);
    unlink(path);
    expect_load_error("no dict", KVP_ERR_IO, "dict.txt", "cannot open");
    kvjb_dict *d = NULL;
    kvp_error err;
    CHECK(kvjb_load("", &d, &err) == KVP_ERR_INVALID_ARG && d == NULL);

    /* Every truncation of every fixture file loads or fails cleanly. */
    for (int i = 0; i < 4; i++) {
        size_t n = strlen(fixture[i]);
        for (size_t cut = 0; cut < n; cut += 1 + cut / 16) {
            char *t = strndup(fixture[i], cut);
            write_text(fixture_names[i], t);
            free(t);
            d = NULL;
            kvp_status st = kvjb_load(tmpdir, &d, &err);
            CHECK_MSG(st == KVP_OK || (d == NULL && err.message[0]), "%s cut at %zu", fixture_names[i], cut);
            kvjb_free(d);
        }
        reset_fixture();
    }

    /* Random byte changes (fixed seed): load or fail cleanly, and a loaded
     * dictionary cuts. */
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    static const char bytes[] = "0123456789 \n\r\t{}[]:,'\"\\u.-+eE#P=x\xe4\xb8\x80\xff\x80";
    for (int it = 0; it < 400; it++) {
        int i = it % 4;
        size_t n = strlen(fixture[i]);
        char *t = malloc(n + 8);
        memcpy(t, fixture[i], n + 1);
        for (int k = 0; k < 3; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)(rng >> 33) % n;
            char c = bytes[(rng >> 20) % (sizeof bytes - 1)];
            if ((rng >> 40) & 1) {
                t[pos] = c ? c : ' ';
            } else {
                memmove(t + pos + 1, t + pos, n - pos + 1);
                t[pos] = c ? c : ' ';
                n++;
            }
        }
        write_text(fixture_names[i], t);
        free(t);
        d = NULL;
        kvp_status st = kvjb_load(tmpdir, &d, &err);
        CHECK_MSG(st == KVP_OK || (d == NULL && err.message[0]), "mutation %d of %s", it, fixture_names[i]);
        if (st == KVP_OK) {
            char **w = NULL;
            size_t nw = 0;
            static const char text[] = "我是北京大学的学生，张三丰和王小二 C++ 3.14%\r\n天地";
            CHECK(kvjb_cut(d, text, strlen(text), &w, &nw, &err) == KVP_OK && nw > 0);
            kvjb_words_free(w, nw);
        }
        kvjb_free(d);
        reset_fixture();
    }
}

static void expect_cut(const kvjb_dict *d, const char *text, size_t len, const char *const *want,
                       size_t nwant) {
    char **w = NULL;
    size_t n = 99;
    kvp_error err;
    kvp_status st = kvjb_cut(d, text, len, &w, &n, &err);
    CHECK_MSG(st == KVP_OK, "cut: %s", err.message);
    CHECK_EQ_INT(n, nwant);
    for (size_t i = 0; st == KVP_OK && i < n && i < nwant; i++) CHECK_STR(w[i], want[i]);
    kvjb_words_free(w, n);
}

static void test_api(const kvjb_dict *d) {
    char **w = (char **)1;
    size_t n = 7;
    kvp_error err;
    CHECK(kvjb_cut(d, "", 0, &w, &n, &err) == KVP_OK && w == NULL && n == 0);
    CHECK(kvjb_cut(d, NULL, 0, &w, &n, &err) == KVP_OK && n == 0);
    /* Invalid UTF-8: an error naming the byte, nothing returned. */
    CHECK(kvjb_cut(d, "ab\xe4\xb8", 4, &w, &n, &err) == KVP_ERR_INVALID_ARG && w == NULL && n == 0);
    CHECK(strstr(err.message, "byte 2") != NULL);
    CHECK(kvjb_cut(d, "\xed\xa0\x80", 3, &w, &n, &err) == KVP_ERR_INVALID_ARG); /* surrogate */
    CHECK(kvjb_cut(d, "\xc0\xaf", 2, &w, &n, &err) == KVP_ERR_INVALID_ARG);     /* overlong */
    /* len, not NUL, ends the text; a U+0000 is a word that reads as "". */
    static const char *const nul[] = {"北京", "", "的"};
    expect_cut(d, "北京\0的", 10, nul, 3);
    static const char *const prefix[] = {"北京"};
    expect_cut(d, "北京大学", 6, prefix, 1);
    /* Equal route probabilities go to the longer first word. */
    static const char *const tie[] = {"甲乙", "丙"};
    expect_cut(d, "甲乙丙", strlen("甲乙丙"), tie, 2);
    /* Single steps spelling a dictionary word come out one by one. */
    static const char *const sky[] = {"天", "地"};
    expect_cut(d, "天地", strlen("天地"), sky, 2);
    static const char *const crlf[] = {"\r\n", "\r", "\r\n", "\n", "\r"};
    expect_cut(d, "\r\n\r\r\n\n\r", 7, crlf, 5);
}

/* The dictionary is read-only once loaded: threads cutting at once get the
 * same words as one thread. */
static void test_threads(const kvjb_dict *d) {
    static const char text[] = "我是北京大学的学生，张三丰和王小二在长江大桥 C++ AT&T 3.14%";
    char **ref = NULL;
    size_t nref = 0;
    kvp_error err;
    CHECK(kvjb_cut(d, text, strlen(text), &ref, &nref, &err) == KVP_OK);
    int bad = 0;
#pragma omp parallel for num_threads(4) reduction(+ : bad)
    for (int i = 0; i < 64; i++) {
        char **w = NULL;
        size_t n = 0;
        kvp_error e;
        if (kvjb_cut(d, text, strlen(text), &w, &n, &e) != KVP_OK || n != nref) {
            bad++;
        } else {
            for (size_t k = 0; k < n; k++) bad += strcmp(w[k], ref[k]) != 0;
        }
        kvjb_words_free(w, n);
    }
    CHECK_EQ_INT(bad, 0);
    kvjb_words_free(ref, nref);
}

int main(void) {
    kvjb_dict *d = NULL;
    kvp_error err;
    if (kvjb_load(MINI, &d, &err) != KVP_OK) {
        fprintf(stderr, "kvjb_load(%s): %s\n", MINI, err.message);
        return 1;
    }
    size_t same, total, bytes;
    double cpu;
    jbt_check_goldens(d, "tests/data/jieba/mini_cuts.jsonl", &same, &total, &bytes, &cpu);
    CHECK(total >= 300);
    printf("fixture dictionary: %zu/%zu strings cut identically to python3-jieba\n", same, total);
    test_api(d);
    test_threads(d);
    kvjb_free(d);

    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir;
    snprintf(tmpdir, sizeof tmpdir, "%s/kvp_test_jieba_XXXXXX", base);
    if (!mkdtemp(tmpdir)) return 1;
    char sub[600];
    snprintf(sub, sizeof sub, "%s/finalseg", tmpdir);
    mkdir(sub, 0700);
    for (int i = 0; i < 4; i++) {
        char path[600];
        snprintf(path, sizeof path, MINI "/%s", fixture_names[i]);
        fixture[i] = kvp_test_read_file(path, NULL);
        CHECK_MSG(fixture[i] != NULL, "cannot read %s", path);
        if (!fixture[i]) return 1;
    }
    reset_fixture();
    CHECK(kvjb_load(tmpdir, &d, &err) == KVP_OK);
    kvjb_free(d);
    test_bad_files();
    for (int i = 0; i < 4; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", tmpdir, fixture_names[i]);
        unlink(path);
        free(fixture[i]);
    }
    rmdir(sub);
    rmdir(tmpdir);
    printf("%d checks, %d failures\n", kvp_test_checks, kvp_test_failures);
    return kvp_test_failures ? 1 : 0;
}
