/* Flags shared by the evaluation commands (cli/eval_flags.c). */
#ifndef KVP_CLI_EVAL_FLAGS_H
#define KVP_CLI_EVAL_FLAGS_H

#include "cli.h"
#include "kvprune_eval/needle_pred.h"

/* The prompt style flags of the evaluation commands (--chat-template,
 * --no-chat, --system; cli/eval_flags.c) bound to ps. */
enum { CLI_PROMPT_MAX_OPTIONS = 4 };
size_t cli_prompt_options(kvev_prompt_style *ps, cli_option out[CLI_PROMPT_MAX_OPTIONS]);
/* --shard I/N: a cli_parse_fn writing a cli_shard. */
typedef struct cli_shard {
    int index, count;
} cli_shard;
bool cli_parse_shard(const char *v, void *dst, char *msg, size_t size);

#endif
