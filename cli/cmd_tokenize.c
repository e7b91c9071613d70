/* kvprune tokenize: the token ids of a text (no weights needed). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL, *text = NULL, *text_file = NULL;
    bool json = false;
    kvp_tokenize_params tp = kvp_tokenize_default_params();
    const cli_option own[] = {
        CLI_OPT_STRING("-m|--model", "PATH", &path,
                       "a model (GGUF file or Hugging Face folder) or a bare tokenizer.json "
                       "(tokenizer_config.json is read from its folder)",
                       .required = true),
        CLI_OPT_STRING("--text", "T", &text, "the text"),
        CLI_OPT_STRING("--text-file", "F", &text_file, "read the text from a file (bytes as they are)"),
        CLI_OPT_FLAG("--json", &json, "print {\"n_tokens\", \"ids\", \"tokens\"} instead"),
        CLI_OPT_FLAG_OFF("--no-special", &tp.add_special, "do not add BOS/EOS"),
        CLI_OPT_FLAG_OFF("--no-parse-special", &tp.parse_special,
                         "treat special-token strings in the text as plain text"),
    };
    const cli_group groups[] = {{NULL, own, CLI_COUNT(own)}};
    const cli_command cmd = {"tokenize",
                             "-m PATH (--text T | --text-file F) [--json]\n"
                             "                        [--no-special] [--no-parse-special]",
                             "Prints the token ids of a text, space-separated on one line.\n", groups,
                             CLI_COUNT(groups), NULL};
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    if (!text == !text_file) return cli_usage_error("tokenize", "give exactly one of --text and --text-file");
    char *buf = NULL;
    size_t len = 0;
    if (text_file) {
        if (!cli_read_file("--text-file", text_file, &buf, &len)) return 1;
        text = buf;
    } else {
        len = strlen(text);
    }
    kvp_error err = {0};
    kvp_tokenizer *tok = NULL;
    if (kvp_tokenizer_load(path, &tok, &err)) {
        free(buf);
        return cli_lib_error(&err);
    }
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = 0;
    if (kvp_tokenize(tok, text, len, &tp, &ids, &n, &err)) {
        rc = cli_lib_error(&err);
    } else if (json) {
        json_t *o = json_object(), *ja = json_array(), *jt = json_array();
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(ja, json_integer(ids[i]));
            const char *s = kvp_token_text(tok, ids[i]);
            json_array_append_new(jt, json_stringn(s ? s : "", s ? strlen(s) : 0));
        }
        json_object_set_new(o, "n_tokens", json_integer((json_int_t)n));
        json_object_set_new(o, "ids", ja);
        json_object_set_new(o, "tokens", jt);
        char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (s) puts(s);
        else rc = cli_error("could not format the JSON output");
        free(s);
        json_decref(o);
    } else {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        putchar('\n');
    }
    kvp_free(ids);
    kvp_tokenizer_free(tok);
    free(buf);
    return rc;
}
