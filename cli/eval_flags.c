/* Flags shared by the evaluation commands (needle gen/pred, longbench
 * pred): the prompt's chat style and the --shard value. */
#include <stdio.h>
#include <string.h>

#include "eval_flags.h"

size_t cli_prompt_options(kvev_prompt_style *ps, cli_option out[CLI_PROMPT_MAX_OPTIONS]) {
    const cli_option opts[] = {
        CLI_OPT_STRING("--chat-template", "NAME", &ps->chat_template,
                       "llama2, llama3, llama3.1, chatml, mistral, kvp-mini",
                       .deflt = "the model's own"),
        CLI_OPT_FLAG("--no-chat", &ps->no_chat, "no chat template: the prompt as it is (base models)"),
        CLI_OPT_STRING("--system", "S", &ps->system, "system message for the chat template"),
    };
    memcpy(out, opts, sizeof opts);
    return CLI_COUNT(opts);
}

bool cli_parse_shard(const char *v, void *dst, char *msg, size_t size) {
    cli_shard *s = dst;
    int si, sn, used = 0;
    if (sscanf(v, "%d/%d%n", &si, &sn, &used) != 2 || v[used] || sn < 1 || si < 0 || si >= sn) {
        snprintf(msg, size, "'%s' is not I/N with 0 <= I < N", v);
        return false;
    }
    s->index = si;
    s->count = sn;
    return true;
}
