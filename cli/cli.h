/* Shared pieces of the kvprune command line. Each subcommand lives in
 * cli/cmd_<name>.c and returns the process exit code (0 ok, 1 failure,
 * 2 usage error). Only the CLI prints or exits; the library never does. */
#ifndef KVP_CLI_H
#define KVP_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvprune.h"
#include "options.h"

int cmd_generate(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_needle(int argc, char **argv);
int cmd_longbench(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Names the command being run ("generate", "needle pred") for the prefix
 * of every message below. */
void cli_set_command(const char *name);
const char *cli_command_name(void);
/* Prints "kvprune <command>: <msg>" to stderr; returns 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "kvprune <command>: warning: <msg>" to stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "kvprune <cmd>: <msg>" and a hint to use --help; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints a library error; returns 2 (usage) for KVP_ERR_INVALID_ARG, else
 * 1. */
int cli_lib_error(const kvp_error *err);
/* cli_lib_error for the evaluation library, whose messages name its
 * parameters (model_name, ratios, ...): they are shown as the flags that
 * set them (--model-name, --cache-ratio, ...). */
int cli_eval_error(const kvp_error *err);

/* Number parsers of the option tables (cli/options.c): each names the
 * flag in its message and returns false on a bad value (after printing). */
bool cli_parse_int(const char *flag, const char *s, long min, long max,
                   long *out);
bool cli_parse_double(const char *flag, const char *s, double min,
                      double max, double *out);
/* Reads a whole file (NUL-terminated). Prints an error naming the flag and
 * the path on failure. */
bool cli_read_file(const char *flag, const char *path, char **out,
                   size_t *len);

/* The cache flags (cli/cache_flags.c) as a table fragment bound to p:
 * which is a mask of the parts a command takes (the method, the budget
 * flags, the storage flags). Returns the number of options written. */
enum { CLI_CACHE_METHOD = 1, CLI_CACHE_BUDGET = 2, CLI_CACHE_STORAGE = 4,
       CLI_CACHE_ALL = 7, CLI_CACHE_MAX_OPTIONS = 16 };
size_t cli_cache_options(kvp_cache_params *p, unsigned which, cli_option out[CLI_CACHE_MAX_OPTIONS]);
/* A cli_check_fn for method names (as kvp_cache_new takes them); its
 * message lists the valid names. */
bool cli_check_method(const char *name, char *msg, size_t size);
void cli_unknown_method(const char *name, char *msg, size_t size);
/* Progress of a long run on stderr (cli/progress.c). */
typedef struct cli_progress {
    bool tty, quiet;
    size_t last_line_done;
    double last_line_s;
} cli_progress;
void cli_progress_report(cli_progress *c, const char *label, const char *what, size_t done,
                         size_t total, double elapsed_s);
/* A sweep that failed: ends an open progress bar, prints the error;
 * returns the exit status (cli_eval_error's). */
int cli_progress_failed(const cli_progress *c, const kvp_error *err);
/* A sweep stopped by Ctrl-C with its finished samples kept: ends an open
 * progress bar, says how to resume; returns the exit status 130. */
int cli_progress_interrupted(const cli_progress *c, size_t written, size_t earlier);

/* Warns (once) that budget flags are ignored when every method given is
 * "full". */
void cli_warn_unused_budget(const kvp_cache_params *p, const char *const *methods, size_t n);
/* Model flags (--compute, --repack; cli/model_flags.c) as a table
 * fragment bound to p. */
enum { CLI_MODEL_MAX_OPTIONS = 4 };
size_t cli_model_options(kvp_model_params *p, cli_option out[CLI_MODEL_MAX_OPTIONS]);
/* Prints what loading cost beyond the file (repacked weights), if any. */
void cli_model_note(const kvp_model *m);

/* Ctrl-C (cli/interrupt.c). While armed, SIGINT sets cli_stop; runs check
 * it after each generated token (cli_interrupt_token_cb as a kvp_token_cb,
 * or the evaluation drivers' `stop`). ONCE: a second Ctrl-C ends the
 * process at once; REPEAT (chat): every Ctrl-C sets cli_stop again and
 * interrupts a blocking read. Disarming restores the previous handler. */
typedef enum cli_interrupt_mode { CLI_INTERRUPT_ONCE, CLI_INTERRUPT_REPEAT } cli_interrupt_mode;
extern volatile sig_atomic_t cli_stop;
void cli_interrupt_arm(cli_interrupt_mode mode);
void cli_interrupt_disarm(void);
bool cli_interrupt_token_cb(void *user, int32_t id, const float *logits, int n_vocab);
/* serve: blocks SIGINT and SIGTERM in the calling thread and the threads it
 * starts later (ignoring SIGPIPE), then waits for one of them; returns it. */
void cli_stop_signals_block(void);
int cli_stop_signals_wait(void);

#endif
