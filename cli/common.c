#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The command being run ("generate", "needle pred"): every message starts
 * with "kvprune <command>: ". */
static const char *current_command;

void cli_set_command(const char *name) { current_command = name; }

const char *cli_command_name(void) { return current_command ? current_command : ""; }

static void prefix(void) {
    if (current_command) fprintf(stderr, "kvprune %s: ", current_command);
    else fputs("kvprune: ", stderr);
}

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    prefix();
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

void cli_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    prefix();
    fputs("warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kvprune %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'kvprune %s --help')\n", cmd);
    va_end(ap);
    return 2;
}

/* Library parameters named in messages and the flags that set them. Names
 * that are ordinary words are replaced only where they open the message
 * ("ratios: ..."); identifiers and phrases wherever they stand. */
typedef struct param_flag {
    const char *param, *flag;
    bool lead_only;
} param_flag;

static const param_flag core_flags[] = {
    {"max_tokens", "--cache-max-tokens", false},
};

static const param_flag eval_flags[] = {
    {"shard_index/shard_count", "--shard", false},
    {"prompt.chat_template", "--chat-template", false},
    {"prompt.no_chat", "--no-chat", false},
    {"set max_length", "give --max-length N", false},
    {"pass its folder as dir", "give --jieba-dir DIR", false},
    {"model_name", "--model-name", false},
    {"config_dir", "--config-dir", false},
    {"data_dir", "--data-dir", false},
    {"save_dir", "--save-dir", false},
    {"num_recent", "--num-recent", false},
    {"num_heavy", "--num-heavy", false},
    {"num_needles", "--num-needles", false},
    {"ratios", "--cache-ratio", false},
    {"methods", "--method", true},
    {"datasets", "--task", true},
    {"task", "--task", true},
    {"template", "--template", true},
    {"haystack", "--haystack", true},
    {"samples", "--samples", true},
    {"depths", "--depths", true},
};

static bool ident_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

static void name_flags(kvp_error *out, const param_flag *map, size_t n_map) {
    for (size_t e = 0; e < n_map; e++) {
        const char *param = map[e].param, *flag = map[e].flag;
        size_t pl = strlen(param), fl = strlen(flag);
        char *m = out->message;
        for (char *at = strstr(m, param); at; at = strstr(at, param)) {
            char after = at[pl];
            bool whole = (at == m || !ident_char(at[-1])) && (!ident_char(after) || after == '.');
            if (map[e].lead_only) whole = whole && at == m && (after == ':' || after == ' ');
            size_t len = strlen(m);
            if (!whole || len - pl + fl >= sizeof out->message) {
                at += pl;
                continue;
            }
            memmove(at + fl, at + pl, len - (size_t)(at - m) - pl + 1);
            memcpy(at, flag, fl);
            at += fl;
        }
    }
}

int cli_lib_error(const kvp_error *err) {
    kvp_error out = {KVP_ERR_INTERNAL, "unknown failure"};
    if (err && err->message[0]) out = *err;
    name_flags(&out, core_flags, sizeof core_flags / sizeof core_flags[0]);
    cli_error("%s", out.message);
    /* A bad parameter, flag value or name is the user's to fix: a usage
     * error, whichever layer noticed it. */
    return err && err->status == KVP_ERR_INVALID_ARG ? 2 : 1;
}

int cli_eval_error(const kvp_error *err) {
    if (!err || !err->message[0]) return cli_lib_error(err);
    kvp_error out = *err;
    name_flags(&out, eval_flags, sizeof eval_flags / sizeof eval_flags[0]);
    return cli_lib_error(&out);
}

bool cli_parse_int(const char *flag, const char *s, long min, long max, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0') {
        cli_error("%s: '%s' is not an integer", flag, s);
        return false;
    }
    if (v < min || v > max) {
        cli_error("%s: %ld is out of range [%ld, %ld]", flag, v, min, max);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_double(const char *flag, const char *s, double min, double max, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v)) {
        cli_error("%s: '%s' is not a number", flag, s);
        return false;
    }
    if (v < min || v > max) {
        cli_error("%s: %g is out of range [%g, %g]", flag, v, min, max);
        return false;
    }
    *out = v;
    return true;
}

bool cli_read_file(const char *flag, const char *path, char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error("%s: %s: cannot open: %s", flag, path, strerror(errno));
        return false;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(f);
        cli_error("%s: %s: is a directory, not a file", flag, path);
        return false;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n + 1 < cap) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        cli_error("%s: %s: %s", flag, path, bad ? "read error" : "out of memory reading the file");
        return false;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return true;
}
