/* Placeholder until this subcommand lands; its owner replaces this file. */
#include "cli.h"

int cmd_compare(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error("'compare' is not available in this build yet");
}
