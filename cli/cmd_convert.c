/* Placeholder until this subcommand lands; its owner replaces this file. */
#include "cli.h"

int cmd_convert(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error("'convert' is not available in this build yet");
}
