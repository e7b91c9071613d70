/* kvprune info: a model's architecture, sizes and tokenizer. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    const cli_option own[] = {
        CLI_OPT_STRING("-m|--model", "PATH", &path, "GGUF file or Hugging Face folder", .required = true),
        CLI_OPT_FLAG("--json", &json, "one JSON object instead of the text"),
    };
    const cli_group groups[] = {{NULL, own, CLI_COUNT(own)}};
    const cli_command cmd = {"info", "-m PATH [--json]",
                             "Prints the architecture, hyperparameters and tokenizer of a GGUF file or a\n"
                             "Hugging Face folder.\n",
                             groups, CLI_COUNT(groups), NULL};
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = 1;
    kvp_model *m = NULL;
    kvp_error err = {0};
    if (kvp_model_load(path, &mp, &m, &err)) return cli_lib_error(&err);
    kvp_model_info I;
    kvp_model_get_info(m, &I);
    const kvp_tokenizer *tok = kvp_model_tokenizer(m);
    const char *tmpl = tok ? kvp_chat_template_name(tok) : NULL;
    kvp_system_info si;
    kvp_get_system_info(&si);
    if (json) {
        printf("{\"arch\":\"%s\",\"n_vocab\":%d,\"n_ctx_train\":%d,\"n_embd\":%d,\"n_layer\":%d,"
               "\"n_head\":%d,\"n_head_kv\":%d,\"head_dim\":%d,\"n_ff\":%d,\"rope_theta\":%g,"
               "\"rms_norm_eps\":%g,\"bos_id\":%d,\"eos_ids\":[",
               I.arch, I.n_vocab, I.n_ctx_train, I.n_embd, I.n_layer, I.n_head, I.n_head_kv,
               I.head_dim, I.n_ff, I.rope_theta, I.rms_norm_eps, I.bos_id);
        for (int i = 0; i < I.n_eos; i++) printf("%s%d", i ? "," : "", I.eos_ids[i]);
        printf("],\"n_params\":%llu,\"weight_bytes\":%llu,\"weight_types\":\"%s\","
               "\"tokenizer\":%s,\"cpu\":\"%s\",\"cpu_best\":\"%s\"}\n",
               (unsigned long long)I.n_params, (unsigned long long)I.weight_bytes, I.weight_types,
               tok ? "true" : "false", si.cpu_path, si.cpu_best);
    } else {
        printf("model:          %s\n", path);
        printf("name:           %s\n", I.name);
        printf("architecture:   %s\n", I.arch);
        printf("parameters:     %llu (%.1f MiB of weights)\n", (unsigned long long)I.n_params,
               I.weight_bytes / 1048576.0);
        printf("weight types:   %s\n", I.weight_types);
        printf("vocabulary:     %d\n", I.n_vocab);
        printf("context:        %d (trained)\n", I.n_ctx_train);
        printf("layers:         %d\n", I.n_layer);
        printf("embedding:      %d\n", I.n_embd);
        printf("feed-forward:   %d\n", I.n_ff);
        printf("heads:          %d query, %d key/value, head dim %d\n", I.n_head, I.n_head_kv,
               I.head_dim);
        printf("rope theta:     %g\n", I.rope_theta);
        printf("rms norm eps:   %g\n", I.rms_norm_eps);
        printf("bos id:         %d\n", I.bos_id);
        printf("eos ids:       ");
        for (int i = 0; i < I.n_eos; i++) printf(" %d", I.eos_ids[i]);
        printf("%s\n", I.n_eos ? "" : " none");
        if (tok)
            printf("tokenizer:      %d tokens, chat template %s\n", kvp_tokenizer_n_vocab(tok),
                   tmpl ? tmpl : "(none recognised)");
        else
            printf("tokenizer:      none (use --prompt-ids)\n");
        printf("kernels:        %s (best on this CPU: %s)\n", si.cpu_path, si.cpu_best);
        printf("products:       %s, compute %s\n", I.onednn ? "oneDNN" : "own kernels", I.compute);
    }
    kvp_model_free(m);
    return 0;
}
