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

int main(int argc, char **argv) {
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
