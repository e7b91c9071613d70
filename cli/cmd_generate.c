/* kvprune generate: run a prompt through a model with a (pruning) cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kept_dump.h"

typedef struct dump_ctx {
    FILE *f;
    bool failed;
    const kvp_cache *cache;       /* set when --dump-kept asks for a snapshot */
    cli_kept_snapshot *kept;
    bool kept_failed;
} dump_ctx;

static bool on_token(void *user, int32_t id, const float *logits, int n_vocab) {
    (void)id;
    dump_ctx *d = user;
    /* The first call comes right after the prefill, before any decode step. */
    if (d->kept && d->kept->n_layer == 0 && !cli_kept_capture(d->cache, d->kept)) d->kept_failed = true;
    if (d->f && fwrite(logits, sizeof(float), (size_t)n_vocab, d->f) != (size_t)n_vocab)
        d->failed = true;
    return !cli_stop; /* Ctrl-C: this token is the last */
}

static void json_str(FILE *o, const char *s) {
    fputc('"', o);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(o, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", o);
        else if (*p == '\t')
            fputs("\\t", o);
        else if (*p == '\r')
            fputs("\\r", o);
        else if (*p < 0x20)
            fprintf(o, "\\u%04x", *p);
        else
            fputc(*p, o);
    }
    fputc('"', o);
}

static void json_ids(FILE *o, const int32_t *ids, size_t n) {
    fputc('[', o);
    for (size_t i = 0; i < n; i++) fprintf(o, "%s%d", i ? "," : "", ids[i]);
    fputc(']', o);
}

int cmd_generate(int argc, char **argv) {
    const char *model_path = NULL, *prompt_text = NULL, *prompt_file = NULL, *dump_path = NULL;
    const char *kept_path = NULL, *save_path = NULL, *load_path = NULL;
    int32_t *hist = NULL;
    size_t n_hist = 0;
    cli_kept_snapshot kept = {0};
    const char *chat_template = NULL, *system_msg = NULL;
    int32_t *prompt_ids = NULL;
    size_t n_prompt = 0;
    bool json = false, no_chat = false, prompt_from_ids = false;
    kvp_gen_params gp = kvp_gen_default_params();
    kvp_cache_params cp = kvp_cache_default_params();
    kvp_model_params mp = kvp_model_default_params();
    int threads = 0;
    int rc = 1;
    char *file_text = NULL;
    kvp_model *model = NULL;
    kvp_cache *cache = NULL;
    kvp_gen_result res;
    memset(&res, 0, sizeof res);
    char *text = NULL;
    FILE *dump = NULL;
    kvp_error err = {0};

    const cli_option own[] = {
        CLI_OPT_STRING("-m|--model", "PATH", &model_path, "GGUF file or Hugging Face folder", .required = true),
        CLI_OPT_LIST_INT("--prompt-ids", "LIST", &prompt_ids, &n_prompt, 0, INT32_MAX,
                         "prompt token ids, used verbatim (no BOS added)", .given = &prompt_from_ids),
        CLI_OPT_STRING("--prompt", "TEXT", &prompt_text, "prompt text (wrapped in the chat template unless --no-chat)"),
        CLI_OPT_STRING("--prompt-file", "F", &prompt_file, "prompt text from a file"),
        CLI_OPT_INT("-n|--n-predict|--max-new-tokens", "N", &gp.max_new_tokens, 0, 1 << 24, "tokens to generate"),
        CLI_OPT_FLAG("--json", &json, "print one JSON object (prompt_ids, ids, text, stats)"),
        CLI_OPT_STRING("--dump-logits", "FILE", &dump_path, "float32 LE logits, one row of n_vocab per generated token"),
        CLI_OPT_STRING("--save-cache", "FILE", &save_path, "write the cache after the run (with -n 0: after the prompt)"),
        CLI_OPT_STRING("--load-cache", "FILE", &load_path,
                       "continue a saved cache: the prompt (--prompt-ids, or text with --no-chat, no BOS) "
                       "is appended; the file's cache settings replace the cache flags"),
        CLI_OPT_STRING("--dump-kept", "FILE", &kept_path,
                       "JSON of the positions each cache stream keeps after the prefill and at the end"),
        CLI_OPT_FLAG("--ignore-eos", &gp.ignore_eos, "keep generating past EOS"),
        CLI_OPT_INT("-t|--threads", "N", &threads, 1, 1024, "threads (results do not depend on it)",
                    .deflt = "all cores"),
        CLI_OPT_FLOAT("--temperature", "T", &gp.temperature, 0, 100, "0: greedy"),
        CLI_OPT_INT("--top-k", "K", &gp.top_k, 0, 1 << 30, "sample from the K most likely (0: off)"),
        CLI_OPT_FLOAT("--top-p", "P", &gp.top_p, 1e-9, 1, "nucleus sampling (1: off)"),
        CLI_OPT_UINT("--seed", "S", &gp.seed, UINT64_MAX, "sampling seed"),
        CLI_OPT_INT("--prefill-chunk", "N", &gp.prefill_chunk, 0, 1 << 30, "prefill in chunks of N tokens (0: one pass)"),
        CLI_OPT_FLAG("--no-chat", &no_chat, "tokenize the prompt text as is"),
        CLI_OPT_STRING("--chat-template", "NAME", &chat_template,
                       "llama2, llama3, llama3.1, chatml, mistral, kvp-mini", .deflt = "auto"),
        CLI_OPT_STRING("--system", "S", &system_msg, "system message for the chat template"),
    };
    cli_option cache_opts[CLI_CACHE_MAX_OPTIONS], model_opts[CLI_MODEL_MAX_OPTIONS];
    const cli_group groups[] = {
        {NULL, own, CLI_COUNT(own)},
        {"Cache (pruning) options", cache_opts, cli_cache_options(&cp, CLI_CACHE_ALL, cache_opts)},
        {"Matrix product options", model_opts, cli_model_options(&mp, model_opts)},
    };
    const cli_command cmd = {"generate",
                             "-m PATH [-n N] [options]\n"
                             "                        (--prompt-ids 1,2,3 | --prompt TEXT | --prompt-file F)",
                             NULL, groups, CLI_COUNT(groups), NULL};
    rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0) goto out;
    rc = 1;
    int n_sources = (prompt_ids != NULL) + (prompt_text != NULL) + (prompt_file != NULL);
    if (n_sources != 1) {
        rc = cli_usage_error("generate", "give exactly one of --prompt-ids, --prompt, --prompt-file");
        goto out;
    }
    if (prompt_file) {
        size_t len;
        if (!cli_read_file("--prompt-file", prompt_file, &file_text, &len)) goto out;
        prompt_text = file_text;
    }

    mp.n_threads = (int)threads;
    if (kvp_model_load(model_path, &mp, &model, &err)) {
        rc = cli_lib_error(&err);
        goto out;
    }
    cli_model_note(model);
    const kvp_tokenizer *tok = kvp_model_tokenizer(model);
    if (prompt_text) {
        if (!tok) {
            rc = cli_error("%s: the model has no tokenizer; use --prompt-ids", model_path);
            goto out;
        }
        kvp_status s;
        if (load_path && !no_chat) {
            rc = cli_usage_error("generate", "--load-cache continues a sequence: give --prompt-ids or --no-chat text "
                                             "(or use 'kvprune chat --load FILE')");
            goto out;
        }
        if (no_chat) {
            kvp_tokenize_params tp = kvp_tokenize_default_params();
            tp.add_special = !load_path; /* a continuation gets no BOS */
            s = kvp_tokenize(tok, prompt_text, strlen(prompt_text), &tp, &prompt_ids, &n_prompt, &err);
        } else {
            kvp_chat_message msgs[2];
            size_t nm = 0;
            if (system_msg) msgs[nm++] = (kvp_chat_message){"system", system_msg};
            msgs[nm++] = (kvp_chat_message){"user", prompt_text};
            s = kvp_chat_tokenize(tok, chat_template, msgs, nm, true, &prompt_ids, &n_prompt, &err);
        }
        if (s) {
            rc = cli_lib_error(&err);
            goto out;
        }
    }
    const char *method_name = cp.method ? cp.method : "full";
    if (!load_path) cli_warn_unused_budget(&cp, &method_name, 1);
    if (load_path) {
        /* the file's cache settings replace the cache flags; its history is
         * the last generated token, which the saving run had not fed */
        if (kvp_cache_load(model, load_path, &cache, &hist, &n_hist, NULL, &err)) {
            rc = cli_lib_error(&err);
            goto out;
        }
        if (n_hist > 0) {
            int32_t *joined = malloc((n_prompt + n_hist) * sizeof *joined);
            if (!joined) {
                rc = cli_error("out of memory");
                goto out;
            }
            memcpy(joined, hist, n_hist * sizeof *joined);
            memcpy(joined + n_hist, prompt_ids, n_prompt * sizeof *joined);
            if (prompt_from_ids) free(prompt_ids);
            else kvp_free(prompt_ids);
            prompt_ids = joined;
            prompt_from_ids = true; /* now ours: free() */
            n_prompt += n_hist;
        }
        gp.keep_cache = true;
    } else if (kvp_cache_new(model, &cp, &cache, &err)) {
        rc = cli_lib_error(&err);
        goto out;
    }
    dump_ctx dc = {NULL, false, cache, kept_path ? &kept : NULL, false};
    if (dump_path) {
        dump = fopen(dump_path, "wb");
        if (!dump) {
            rc = cli_error("--dump-logits: cannot create '%s'", dump_path);
            goto out;
        }
        dc.f = dump;
    }
    gp.on_token = on_token;
    gp.user = &dc;
    /* Ctrl-C stops after the current token; the run then ends as one with
     * -n <tokens so far> would (every output written), exiting 130. */
    cli_interrupt_arm(CLI_INTERRUPT_ONCE);
    kvp_status gen_st = kvp_generate(model, cache, prompt_ids, n_prompt, &gp, &res, &err);
    cli_interrupt_disarm();
    bool interrupted = cli_stop && gen_st == KVP_OK && !res.stopped_at_eos &&
                       res.n_ids < (size_t)gp.max_new_tokens;
    if (gen_st) {
        rc = cli_lib_error(&err);
        goto out;
    }
    if (save_path) {
        int32_t last = res.n_ids > 0 && !res.stopped_at_eos ? res.ids[res.n_ids - 1] : -1;
        if (kvp_cache_save(model, cache, save_path, &last, last >= 0 ? 1 : 0, NULL, &err)) {
            rc = cli_lib_error(&err);
            goto out;
        }
    }
    if (dump) {
        bool bad = dc.failed || fclose(dump) != 0;
        dump = NULL;
        if (bad) {
            rc = cli_error("--dump-logits: writing '%s' failed", dump_path);
            goto out;
        }
    }
    /* Ratio budgets (and their warnings) are settled by the prefill. */
    const char *warn = kvp_cache_warning(cache);
    if (warn) cli_warn("%s", warn);
    if (kept_path) {
        if (dc.kept_failed) {
            rc = cli_error("--dump-kept: out of memory while copying the kept positions");
            goto out;
        }
        if (!cli_write_kept_json(kept_path, &kept, cache)) {
            rc = 1;
            goto out;
        }
    }
    size_t text_len = 0;
    if (tok && kvp_detokenize(tok, res.ids, res.n_ids, true, &text, &text_len, &err)) {
        rc = cli_lib_error(&err);
        goto out;
    }
    if (json) {
        kvp_system_info si;
        kvp_get_system_info(&si);
        double tps = res.decode_ms > 0 && res.n_ids > 1 ? (res.n_ids - 1) * 1000.0 / res.decode_ms : 0;
        printf("{\"prompt_ids\":");
        json_ids(stdout, prompt_ids, n_prompt);
        printf(",\"ids\":");
        json_ids(stdout, res.ids, res.n_ids);
        if (text) {
            printf(",\"text\":");
            json_str(stdout, text);
        }
        printf(",\"stopped_at_eos\":%s", res.stopped_at_eos ? "true" : "false");
        if (interrupted) printf(",\"interrupted\":true");
        printf(",\"stats\":{\"prompt_tokens\":%zu,\"generated_tokens\":%zu,\"prefill_ms\":%.3f,"
               "\"decode_ms\":%.3f,\"attn_ms\":%.3f,\"tokens_per_s\":%.3f,\"kv_bytes\":%zu,"
               "\"kv_bytes_full\":%zu,\"kv_bytes_peak\":%zu,\"kept_tokens\":%lld,\"cpu\":\"%s\",",
               res.n_prompt, res.n_ids, res.prefill_ms, res.decode_ms, res.attn_ms, tps,
               res.cache.kv_bytes, res.cache.kv_bytes_full, res.cache.kv_bytes_peak,
               (long long)res.cache.n_kept_total, si.cpu_path);
        /* per layer: heavy budget and the streams' kept counts */
        json_t *layers = cli_layer_stats_json(cache);
        char *lj = layers ? json_dumps(layers, JSON_COMPACT) : NULL;
        printf("\"layers\":%s}}\n", lj ? lj : "[]");
        free(lj);
        json_decref(layers);
    } else if (text) {
        printf("%s\n", text);
    } else {
        json_ids(stdout, res.ids, res.n_ids);
        putchar('\n');
    }
    rc = 0;
    if (interrupted) {
        fflush(stdout);
        cli_error("interrupted after %zu of %d new tokens: the output is that of -n %zu; run the "
                  "same command again for all of them", res.n_ids, gp.max_new_tokens, res.n_ids);
        rc = 130;
    }
out:
    if (dump) fclose(dump);
    cli_kept_free(&kept);
    kvp_free(text);
    kvp_gen_result_free(&res);
    kvp_cache_free(cache);
    kvp_model_free(model);
    if (prompt_from_ids) free(prompt_ids); /* the option parser's */
    else kvp_free(prompt_ids);             /* the tokenizer's */
    kvp_free(hist);
    free(file_text);
    return rc;
}
