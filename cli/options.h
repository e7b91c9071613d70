/* The command line's options as tables. Each command describes its flags
 * once (names, type, range or values, default, help text); the same table
 * drives parsing, validation and --help, so the help cannot drift from
 * what the parser accepts. Shared groups (cache flags, model flags) are
 * table fragments that several commands include. */
#ifndef KVP_CLI_OPTIONS_H
#define KVP_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum cli_opt_type {
    CLI_FLAG,        /* no value: *(bool *)dst = set                          */
    CLI_INT,         /* signed integer in [imin, imax]; dst int or int64_t      */
    CLI_UINT,        /* unsigned integer in [0, umax]; dst uint64_t             */
    CLI_FLOAT,       /* finite number in [fmin, fmax] ((fmin, fmax] if
                      * open_min); dst double or float                         */
    CLI_STRING,      /* dst const char *, pointing into argv                   */
    CLI_ENUM,        /* one of values[]; dst an int-sized enum or int          */
    CLI_LIST_INT,    /* "1,2,3" of integers in [imin, imax]; dst int32_t *,
                      * count size_t * (malloc'd: the caller frees)            */
    CLI_LIST_FLOAT,  /* "0.1,0.2" of numbers in the float range; dst double *,
                      * count (malloc'd: the caller frees)                     */
    CLI_LIST_STRING, /* "a,b" of names; dst const char **, count; one
                      * allocation holds the pointers and the strings: the
                      * caller frees it with one free()                        */
    CLI_CUSTOM,      /* parse(value, dst, ...) decides                          */
    CLI_REJECT       /* a flag that is refused with the message in help
                      * (not listed in --help)                                 */
} cli_opt_type;

typedef struct cli_enum_value {
    const char *name;
    int value;
} cli_enum_value;

/* A problem with a value, for the message "kvprune <command>: --flag:
 * <msg>". Return false after writing msg. */
typedef bool (*cli_check_fn)(const char *value, char *msg, size_t msg_size);
typedef bool (*cli_parse_fn)(const char *value, void *dst, char *msg, size_t msg_size);

typedef struct cli_option {
    const char *names;  /* "-m|--model": every spelling, short ones first    */
    cli_opt_type type;
    const char *meta;   /* the value's placeholder in --help ("PATH", "N")    */
    void *dst;
    size_t size;        /* sizeof *dst (numbers and enums)                    */
    size_t *count;      /* list length (lists)                               */
    bool set;           /* the value a CLI_FLAG stores                       */
    long long imin, imax;
    uint64_t umax;
    double fmin, fmax;
    bool open_min;
    const cli_enum_value *values; /* CLI_ENUM, ended by {NULL, 0}            */
    cli_check_fn check; /* CLI_STRING and each CLI_LIST_STRING item          */
    cli_parse_fn parse; /* CLI_CUSTOM                                        */
    const char *help;   /* one paragraph, wrapped by --help                  */
    const char *deflt;  /* the default as --help shows it: NULL derives it
                         * from *dst (numbers, enums, strings), "" shows none */
    bool required;
    bool *given;        /* set to true when the flag is given (optional)     */
} cli_option;

/* Table entries. The dst pointer's type picks the width. The last
 * arguments are the help text and, optionally, more fields:
 *   CLI_OPT_INT("-t|--threads", "N", &threads, 0, 1024, "threads", .deflt = "all cores") */
#define CLI_OPT_FLAG(names_, dst_, ...) \
    {.names = (names_), .type = CLI_FLAG, .dst = (dst_), .set = true, .help = __VA_ARGS__}
#define CLI_OPT_FLAG_OFF(names_, dst_, ...) \
    {.names = (names_), .type = CLI_FLAG, .dst = (dst_), .set = false, .help = __VA_ARGS__}
#define CLI_OPT_INT(names_, meta_, dst_, lo, hi, ...)                                            \
    {.names = (names_), .type = CLI_INT, .meta = (meta_), .dst = (dst_), .size = sizeof *(dst_), \
     .imin = (lo), .imax = (hi), .help = __VA_ARGS__}
#define CLI_OPT_UINT(names_, meta_, dst_, hi, ...)                                                \
    {.names = (names_), .type = CLI_UINT, .meta = (meta_), .dst = (dst_), .size = sizeof *(dst_), \
     .umax = (hi), .help = __VA_ARGS__}
#define CLI_OPT_FLOAT(names_, meta_, dst_, lo, hi, ...)                                            \
    {.names = (names_), .type = CLI_FLOAT, .meta = (meta_), .dst = (dst_), .size = sizeof *(dst_), \
     .fmin = (lo), .fmax = (hi), .help = __VA_ARGS__}
#define CLI_OPT_STRING(names_, meta_, dst_, ...) \
    {.names = (names_), .type = CLI_STRING, .meta = (meta_), .dst = (dst_), .help = __VA_ARGS__}
#define CLI_OPT_ENUM(names_, dst_, values_, ...)                                     \
    {.names = (names_), .type = CLI_ENUM, .dst = (dst_), .size = sizeof *(dst_), \
     .values = (values_), .help = __VA_ARGS__}
#define CLI_OPT_LIST_INT(names_, meta_, dst_, count_, lo, hi, ...)                              \
    {.names = (names_), .type = CLI_LIST_INT, .meta = (meta_), .dst = (dst_), .count = (count_), \
     .imin = (lo), .imax = (hi), .help = __VA_ARGS__}
#define CLI_OPT_LIST_FLOAT(names_, meta_, dst_, count_, lo, hi, ...)                              \
    {.names = (names_), .type = CLI_LIST_FLOAT, .meta = (meta_), .dst = (dst_), .count = (count_), \
     .fmin = (lo), .fmax = (hi), .help = __VA_ARGS__}
#define CLI_OPT_LIST_STRING(names_, meta_, dst_, count_, check_, ...)                              \
    {.names = (names_), .type = CLI_LIST_STRING, .meta = (meta_), .dst = (dst_), .count = (count_), \
     .check = (check_), .help = __VA_ARGS__}
#define CLI_OPT_CUSTOM(names_, meta_, dst_, parse_, ...)                                         \
    {.names = (names_), .type = CLI_CUSTOM, .meta = (meta_), .dst = (dst_), .parse = (parse_), \
     .help = __VA_ARGS__}
#define CLI_OPT_REJECT(names_, ...) {.names = (names_), .type = CLI_REJECT, .help = __VA_ARGS__}

/* A titled block of options in --help ("Cache (pruning) options"). */
typedef struct cli_group {
    const char *title;  /* NULL: the command's own options, untitled */
    const cli_option *opts;
    size_t n;
} cli_group;

typedef struct cli_command {
    const char *name;   /* "generate", "needle pred": the message prefix    */
    const char *usage;  /* the usage line(s), without "usage: kvprune NAME" */
    const char *about;  /* paragraphs after the usage line (may be NULL)    */
    const cli_group *groups;
    size_t n_groups;
    const char *epilog; /* printed after the options (may be NULL)           */
} cli_command;

/* Parses argv[1..argc) against the command's tables. Returns -1 when the
 * command should run, otherwise the exit code it should return at once:
 * 0 after printing --help (given anywhere), 2 after a usage error (unknown
 * flag, missing or bad value, missing required flag) whose message names
 * the flag. Lists given twice keep the last value. */
int cli_parse(const cli_command *cmd, int argc, char **argv);

/* Parses the one flag at argv[*i] (advancing *i past its value): 1 when
 * it is one of the command's, 0 when it is not, -1 after printing a bad
 * value. For loops that take flags of several tables. */
int cli_parse_one(const cli_command *cmd, int argc, char **argv, int *i);

/* Prints the command's --help to stdout. */
void cli_print_help(const cli_command *cmd);

/* A command made of subcommands ("needle gen|pred|eval"): one table of
 * names, the functions that run them and one-line summaries drives the
 * dispatch, the usage line, --help and the message for an unknown one. */
typedef struct cli_subcommand {
    const char *name;                  /* "gen"                              */
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand's name   */
    const char *summary;               /* one line for --help                */
} cli_subcommand;

/* Runs the subcommand argv[1] of `command` with argv + 1, after
 * cli_set_command("<command> <sub>"). No subcommand: the usage on stderr,
 * 2; -h/--help: the usage on stdout, 0; an unknown one: a usage error
 * (2) that lists the subcommands. */
int cli_dispatch(const char *command, const cli_subcommand *subs, size_t n, int argc, char **argv);

/* Prints the usage of a command made of subcommands to `to`. */
void cli_print_subcommands(FILE *to, const char *command, const cli_subcommand *subs, size_t n);

#define CLI_COUNT(a) (sizeof(a) / sizeof((a)[0]))

#endif
