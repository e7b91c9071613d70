/* kvprune: the command line of kv-cache-pruner. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"generate", cmd_generate, "generate text or ids from a prompt with a pruning cache"},
    {"chat", cmd_chat, "a multi-turn conversation over one pruning cache, streamed"},
    {"serve", cmd_serve, "an OpenAI-compatible HTTP server (chat, completions, sessions)"},
    {"compare", cmd_compare, "run one prompt through several cache methods, side by side"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"needle", cmd_needle, "needle-in-a-haystack: gen | pred | eval"},
    {"longbench", cmd_longbench, "LongBench: pred | eval | prompt"},
    {"convert", cmd_convert, "convert a Hugging Face folder or GGUF to GGUF"},
    {"info", cmd_info, "print a model's architecture and metadata"},
};

static void usage(FILE *to) {
    fprintf(to, "usage: kvprune <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(to, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(to, "\n'kvprune <command> --help' describes a command's options.\n");
}

/* How idle OpenMP workers wait between parallel regions. OpenMP's default
 * spins for milliseconds; on a machine whose cores are busy with anything
 * else that costs more than it saves (a 4k-token decode step measured
 * 15.7 ms spinning vs 1.0 ms sleeping). Sleeping at once, though, makes
 * every region pay a wake-up (tens of microseconds), which is most of a
 * pruned cache's decode attention. So: when the machine is idle (1-minute
 * load below the core count minus one half), spin briefly (GOMP_SPINCOUNT
 * 10000, about 0.1 ms) and then sleep; otherwise sleep at once. The
 * runtime reads its settings before main(), so the first run sets them and
 * re-executes itself; OMP_WAIT_POLICY or GOMP_SPINCOUNT set by the user
 * are respected. Setting them in-process earlier does not work with glibc:
 * a function in the executable's .preinit_array runs before libgomp's
 * constructor, but libc's own initializer runs between the two and resets
 * environ to the original environment (measured: LD_DEBUG=libs shows
 * preinit, libc, libgomp in that order, and OMP_DISPLAY_ENV=verbose still
 * reports GOMP_SPINCOUNT = '300000'). */
static void choose_openmp_wait(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    double load = 1e9;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1) load = 1e9;
        fclose(f);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int rc = load < (double)cores - 0.5 ? setenv("GOMP_SPINCOUNT", "10000", 1)
                                        : setenv("OMP_WAIT_POLICY", "passive", 1);
    if (rc != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with the default policy. */
}

int main(int argc, char **argv) {
    choose_openmp_wait(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("kvprune %s\n", kvp_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            cli_set_command(commands[i].name);
            return commands[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "kvprune: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
