/* The one option parser of the command line (cli/options.h). */
#include "options.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { HELP_WIDTH = 80, HELP_COLUMN = 25 };

/* Whether `arg` is one of the '|'-separated spellings in `names`. */
static bool has_name(const char *names, const char *arg) {
    size_t n = strlen(arg);
    for (const char *p = names; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, arg, n) == 0) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

static const cli_option *find(const cli_command *cmd, const char *arg, size_t *index) {
    size_t k = 0;
    for (size_t g = 0; g < cmd->n_groups; g++)
        for (size_t i = 0; i < cmd->groups[g].n; i++, k++)
            if (has_name(cmd->groups[g].opts[i].names, arg)) {
                if (index) *index = k;
                return &cmd->groups[g].opts[i];
            }
    return NULL;
}

static bool takes_value(const cli_option *o) { return o->type != CLI_FLAG && o->type != CLI_REJECT; }

static void store_int(const cli_option *o, long long v) {
    if (o->size == sizeof(int32_t)) {
        int32_t x = (int32_t)v;
        memcpy(o->dst, &x, sizeof x);
    } else {
        int64_t x = (int64_t)v;
        memcpy(o->dst, &x, sizeof x);
    }
}

static long long load_int(const cli_option *o) {
    if (o->size == sizeof(int32_t)) {
        int32_t x;
        memcpy(&x, o->dst, sizeof x);
        return x;
    }
    int64_t x;
    memcpy(&x, o->dst, sizeof x);
    return x;
}

static double load_float(const cli_option *o) {
    if (o->size == sizeof(float)) {
        float x;
        memcpy(&x, o->dst, sizeof x);
        return x;
    }
    double x;
    memcpy(&x, o->dst, sizeof x);
    return x;
}

/* Enums travel as int (every enum of the API is int-sized). */
static int load_enum(const cli_option *o) {
    int x;
    memcpy(&x, o->dst, sizeof x);
    return x;
}

static bool parse_uint(const char *flag, const char *s, uint64_t max, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || s[0] == '-' || s[0] == '+' || errno == EINVAL || end == s || *end) {
        cli_error("%s: '%s' is not a non-negative integer", flag, s);
        return false;
    }
    if (errno == ERANGE || v > max) {
        cli_error("%s: '%s' is out of range [0, %" PRIu64 "]", flag, s, max);
        return false;
    }
    *out = v;
    return true;
}

/* A number of the option's float range; (min, max] when open_min. */
static bool parse_float(const cli_option *o, const char *flag, const char *s, double *out) {
    if (!o->open_min) return cli_parse_double(flag, s, o->fmin, o->fmax, out);
    double v;
    if (!cli_parse_double(flag, s, -HUGE_VAL, HUGE_VAL, &v)) return false;
    if (!(v > o->fmin && v <= o->fmax)) {
        cli_error("%s: %g is outside (%g, %g]", flag, v, o->fmin, o->fmax);
        return false;
    }
    *out = v;
    return true;
}

/* "a,b,c" -> n fields (empty fields skipped, as strtok does). The fields
 * point into *copy. */
static bool split(const char *flag, const char *s, char **copy, char ***fields, size_t *n) {
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *copy = strdup(s);
    *fields = malloc(cap * sizeof **fields);
    *n = 0;
    if (!*copy || !*fields) {
        free(*copy);
        free(*fields);
        cli_error("%s: out of memory", flag);
        return false;
    }
    char *save = NULL;
    for (char *t = strtok_r(*copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) (*fields)[(*n)++] = t;
    if (*n == 0) {
        free(*copy);
        free(*fields);
        cli_error("%s: empty list", flag);
        return false;
    }
    return true;
}

static bool parse_list(const cli_option *o, const char *flag, const char *v) {
    char *copy = NULL, **fields = NULL;
    size_t n = 0;
    if (!split(flag, v, &copy, &fields, &n)) return false;
    void *out = NULL;
    bool ok = true;
    if (o->type == CLI_LIST_INT) {
        int32_t *a = malloc(n * sizeof *a);
        for (size_t i = 0; a && ok && i < n; i++) {
            long x;
            ok = cli_parse_int(flag, fields[i], (long)o->imin, (long)o->imax, &x);
            a[i] = (int32_t)x;
        }
        out = a;
    } else if (o->type == CLI_LIST_FLOAT) {
        double *a = malloc(n * sizeof *a);
        for (size_t i = 0; a && ok && i < n; i++) ok = parse_float(o, flag, fields[i], &a[i]);
        out = a;
    } else {
        /* the pointers, then the strings, in one block */
        size_t bytes = n * sizeof(char *) + strlen(v) + 1;
        char **a = malloc(bytes);
        if (a) {
            char *text = (char *)(a + n);
            for (size_t i = 0; i < n; i++) {
                size_t len = strlen(fields[i]) + 1;
                memcpy(text, fields[i], len);
                a[i] = text;
                text += len;
            }
            char msg[512];
            for (size_t i = 0; ok && o->check && i < n; i++)
                if (!o->check(a[i], msg, sizeof msg)) {
                    cli_error("%s: %s", flag, msg);
                    ok = false;
                }
        }
        out = a;
    }
    free(copy);
    free(fields);
    if (!out) {
        cli_error("%s: out of memory", flag);
        return false;
    }
    if (!ok) {
        free(out);
        return false;
    }
    void *old;
    memcpy(&old, o->dst, sizeof old);
    free(old); /* a list given twice keeps the last */
    memcpy(o->dst, &out, sizeof out);
    *o->count = n;
    return true;
}

/* "a, b or c" */
static void enum_names(const cli_enum_value *values, char *buf, size_t size) {
    size_t off = 0, n = 0;
    while (values[n].name) n++;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ",
                                values[i].name);
}

static bool parse_value(const cli_option *o, const char *flag, const char *v) {
    char msg[512];
    switch (o->type) {
    case CLI_INT: {
        long x;
        if (!cli_parse_int(flag, v, (long)o->imin, (long)o->imax, &x)) return false;
        store_int(o, x);
        return true;
    }
    case CLI_UINT: {
        uint64_t x;
        if (!parse_uint(flag, v, o->umax, &x)) return false;
        memcpy(o->dst, &x, sizeof x);
        return true;
    }
    case CLI_FLOAT: {
        double x;
        if (!parse_float(o, flag, v, &x)) return false;
        if (o->size == sizeof(float)) {
            float f = (float)x;
            memcpy(o->dst, &f, sizeof f);
        } else {
            memcpy(o->dst, &x, sizeof x);
        }
        return true;
    }
    case CLI_STRING:
        if (o->check && !o->check(v, msg, sizeof msg)) {
            cli_error("%s: %s", flag, msg);
            return false;
        }
        memcpy(o->dst, &v, sizeof v);
        return true;
    case CLI_ENUM:
        for (const cli_enum_value *e = o->values; e->name; e++)
            if (strcmp(e->name, v) == 0) {
                memcpy(o->dst, &e->value, sizeof e->value);
                return true;
            }
        enum_names(o->values, msg, sizeof msg);
        cli_error("%s: '%s' is not %s", flag, v, msg);
        return false;
    case CLI_LIST_INT:
    case CLI_LIST_FLOAT:
    case CLI_LIST_STRING:
        return parse_list(o, flag, v);
    case CLI_CUSTOM:
        if (!o->parse(v, o->dst, msg, sizeof msg)) {
            cli_error("%s: %s", flag, msg);
            return false;
        }
        return true;
    case CLI_FLAG:
    case CLI_REJECT:
        break;
    }
    return false;
}

static size_t n_options(const cli_command *cmd) {
    size_t n = 0;
    for (size_t g = 0; g < cmd->n_groups; g++) n += cmd->groups[g].n;
    return n;
}

/* The first spelling and the placeholder: "-m PATH". */
static void short_form(const cli_option *o, char *buf, size_t size) {
    const char *bar = strchr(o->names, '|');
    int len = bar ? (int)(bar - o->names) : (int)strlen(o->names);
    snprintf(buf, size, "%.*s%s%s", len, o->names, o->meta ? " " : "", o->meta ? o->meta : "");
}

static bool wants_help(const cli_command *cmd, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return true;
        const cli_option *o = find(cmd, argv[i], NULL);
        if (o && takes_value(o)) i++; /* a value, whatever it looks like */
    }
    return false;
}

/* Parses the flag at argv[*i] (and its value). Returns 1 when it was one
 * of the command's flags, 0 when it is not, or an exit code's negation on
 * a usage error (already printed): -2. */
static int parse_at(const cli_command *cmd, int argc, char **argv, int *i, bool *seen) {
    const char *a = argv[*i];
    size_t k = 0;
    const cli_option *o = find(cmd, a, &k);
    if (!o) return 0;
    /* a fragment parsed on its own has no name: the running command's */
    const char *name = cmd->name ? cmd->name : cli_command_name();
    if (o->type == CLI_REJECT) return -cli_usage_error(name, "%s: %s", a, o->help);
    if (o->type == CLI_FLAG) {
        memcpy(o->dst, &o->set, sizeof o->set);
    } else {
        if (*i + 1 >= argc)
            return -cli_usage_error(name, "%s needs a value%s%s", a, o->meta ? " " : "",
                                    o->meta ? o->meta : "");
        *i += 1;
        if (!parse_value(o, a, argv[*i])) return -2;
    }
    if (seen) seen[k] = true;
    if (o->given) *o->given = true;
    return 1;
}

int cli_parse_one(const cli_command *cmd, int argc, char **argv, int *i) {
    int r = parse_at(cmd, argc, argv, i, NULL);
    return r < 0 ? -1 : r;
}

int cli_parse(const cli_command *cmd, int argc, char **argv) {
    cli_set_command(cmd->name);
    if (wants_help(cmd, argc, argv)) {
        cli_print_help(cmd);
        return 0;
    }
    size_t total = n_options(cmd);
    bool *seen = calloc(total ? total : 1, sizeof *seen);
    if (!seen) return cli_error("out of memory");
    int rc = -1;
    for (int i = 1; i < argc && rc < 0; i++) {
        int r = parse_at(cmd, argc, argv, &i, seen);
        if (r < 0) rc = -r;
        else if (r == 0)
            rc = argv[i][0] == '-' ? cli_usage_error(cmd->name, "unknown flag '%s'", argv[i])
                                   : cli_usage_error(cmd->name, "unexpected argument '%s'", argv[i]);
    }
    if (rc < 0) {
        /* every missing required flag in one message */
        char missing[1024];
        size_t off = 0, n_missing = 0, k = 0, last_off = 0;
        missing[0] = '\0';
        for (size_t g = 0; g < cmd->n_groups; g++)
            for (size_t i = 0; i < cmd->groups[g].n; i++, k++) {
                const cli_option *o = &cmd->groups[g].opts[i];
                if (!o->required || seen[k] || off >= sizeof missing) continue;
                char f[128];
                short_form(o, f, sizeof f);
                last_off = off;
                off += (size_t)snprintf(missing + off, sizeof missing - off, "%s%s", n_missing ? ", " : "", f);
                n_missing++;
            }
        if (n_missing == 1) {
            rc = cli_usage_error(cmd->name, "%s is required", missing);
        } else if (n_missing > 1) {
            /* "a, b, c" -> "a, b and c" */
            if (last_off + 2 < sizeof missing) {
                char tail[256];
                snprintf(tail, sizeof tail, "%s", missing + last_off + 2);
                snprintf(missing + last_off, sizeof missing - last_off, " and %s", tail);
            }
            rc = cli_usage_error(cmd->name, "%s are required", missing);
        }
    }
    free(seen);
    return rc;
}

/* ---------------------------------------------------------------- help --- */

/* Writes `text` from column `col` on, wrapped at HELP_WIDTH with
 * continuation lines starting at HELP_COLUMN. Explicit newlines start a
 * new line. */
static void wrap(const char *text, size_t col) {
    const char *p = text;
    while (*p) {
        if (*p == '\n') {
            printf("\n%*s", HELP_COLUMN, "");
            col = HELP_COLUMN;
            p++;
            continue;
        }
        if (*p == ' ') {
            p++;
            continue;
        }
        size_t w = strcspn(p, " \n");
        if (col > HELP_COLUMN && col + 1 + w > HELP_WIDTH) {
            printf("\n%*s", HELP_COLUMN, "");
            col = HELP_COLUMN;
        } else if (col > HELP_COLUMN) {
            putchar(' ');
            col++;
        }
        fwrite(p, 1, w, stdout);
        col += w;
        p += w;
    }
    putchar('\n');
}

/* The default as --help shows it, or "" for none. */
static void default_text(const cli_option *o, char *buf, size_t size) {
    buf[0] = '\0';
    if (o->deflt) {
        snprintf(buf, size, "%s", o->deflt);
        return;
    }
    switch (o->type) {
    case CLI_INT:
        snprintf(buf, size, "%lld", load_int(o));
        break;
    case CLI_UINT: {
        uint64_t x;
        memcpy(&x, o->dst, sizeof x);
        snprintf(buf, size, "%" PRIu64, x);
        break;
    }
    case CLI_FLOAT:
        snprintf(buf, size, "%g", load_float(o));
        break;
    case CLI_STRING: {
        const char *s;
        memcpy(&s, o->dst, sizeof s);
        if (s) snprintf(buf, size, "%s", s);
        break;
    }
    case CLI_ENUM: {
        int v = load_enum(o);
        for (const cli_enum_value *e = o->values; e->name; e++)
            if (e->value == v) {
                snprintf(buf, size, "%s", e->name);
                break;
            }
        break;
    }
    default:
        break;
    }
}

static void print_option(const cli_option *o) {
    char left[256];
    size_t off = (size_t)snprintf(left, sizeof left, "  ");
    for (const char *p = o->names; *p && off < sizeof left; p++)
        off += (size_t)snprintf(left + off, sizeof left - off, *p == '|' ? ", " : "%c", *p);
    if (o->meta && off < sizeof left) off += (size_t)snprintf(left + off, sizeof left - off, " %s", o->meta);
    if (off >= sizeof left) off = sizeof left - 1;
    fputs(left, stdout);
    size_t col = off;
    if (col + 1 >= HELP_COLUMN) {
        printf("\n%*s", HELP_COLUMN, "");
    } else {
        printf("%*s", (int)(HELP_COLUMN - col), "");
    }
    col = HELP_COLUMN;
    char text[2048], dflt[256];
    default_text(o, dflt, sizeof dflt);
    /* help [one of a, b, c; default X; required] */
    char facts[1024];
    size_t f = 0;
    facts[0] = '\0';
    if (o->type == CLI_ENUM) {
        f += (size_t)snprintf(facts + f, sizeof facts - f, "one of ");
        for (const cli_enum_value *e = o->values; e->name && f < sizeof facts; e++)
            f += (size_t)snprintf(facts + f, sizeof facts - f, "%s%s", e == o->values ? "" : ", ", e->name);
    }
    if (dflt[0] && !o->required && f < sizeof facts)
        f += (size_t)snprintf(facts + f, sizeof facts - f, "%sdefault: %s", f ? "; " : "", dflt);
    if (o->required && f < sizeof facts)
        f += (size_t)snprintf(facts + f, sizeof facts - f, "%srequired", f ? "; " : "");
    snprintf(text, sizeof text, "%s%s%s%s", o->help ? o->help : "", f ? " [" : "", facts, f ? "]" : "");
    wrap(text, col);
}

void cli_print_help(const cli_command *cmd) {
    printf("usage: kvprune %s %s\n", cmd->name, cmd->usage ? cmd->usage : "[options]");
    if (cmd->about) printf("\n%s", cmd->about);
    for (size_t g = 0; g < cmd->n_groups; g++) {
        const cli_group *gr = &cmd->groups[g];
        bool any = false;
        for (size_t i = 0; i < gr->n; i++) any |= gr->opts[i].type != CLI_REJECT;
        if (!any) continue;
        printf("\n%s:\n", gr->title ? gr->title : "Options");
        for (size_t i = 0; i < gr->n; i++)
            if (gr->opts[i].type != CLI_REJECT) print_option(&gr->opts[i]);
    }
    if (cmd->epilog) printf("\n%s", cmd->epilog);
}

void cli_print_subcommands(FILE *to, const char *command, const cli_subcommand *subs, size_t n) {
    int width = 0;
    fprintf(to, "usage: kvprune %s ", command);
    for (size_t i = 0; i < n; i++) {
        fprintf(to, "%s%s", i ? "|" : "", subs[i].name);
        int len = (int)strlen(subs[i].name);
        if (len > width) width = len;
    }
    fprintf(to, " [options]\n\n");
    for (size_t i = 0; i < n; i++) fprintf(to, "  %-*s  %s\n", width, subs[i].name, subs[i].summary);
    fprintf(to, "\n'kvprune %s <sub> --help' lists the options.\n", command);
}

int cli_dispatch(const char *command, const cli_subcommand *subs, size_t n, int argc, char **argv) {
    if (argc < 2) {
        cli_print_subcommands(stderr, command, subs, n);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        cli_print_subcommands(stdout, command, subs, n);
        return 0;
    }
    /* the message prefix lives as long as the run: cli_set_command keeps the pointer */
    static char full_name[64];
    for (size_t i = 0; i < n; i++)
        if (!strcmp(argv[1], subs[i].name)) {
            snprintf(full_name, sizeof full_name, "%s %s", command, subs[i].name);
            cli_set_command(full_name);
            return subs[i].run(argc - 1, argv + 1);
        }
    char names[256];
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof names; i++)
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i == 0 ? "" : i + 1 < n ? ", " : " or ",
                                subs[i].name);
    return cli_usage_error(command, "unknown subcommand '%s' (%s)", argv[1], names);
}
