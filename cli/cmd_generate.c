/* kvprune generate: run a prompt through a model with a (pruning) cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kept_dump.h"

static void help(void) {
    printf("usage: kvprune generate -m PATH (--prompt-ids 1,2,3 | --prompt TEXT | --prompt-file F)\n"
           "                        [-n N] [options]\n\n"
           "  -m, --model PATH      GGUF file or Hugging Face folder\n"
           "  --prompt-ids LIST     prompt token ids, used verbatim (no BOS added)\n"
           "  --prompt TEXT         prompt text (wrapped in the chat template unless --no-chat)\n"
           "  --prompt-file F       prompt text from a file\n"
           "  -n, --n-predict N     tokens to generate (default 64; also --max-new-tokens)\n"
           "  --json                print one JSON object (prompt_ids, ids, text, stats)\n"
           "  --dump-logits FILE    float32 LE logits, one row of n_vocab per generated token\n"
           "  --save-cache FILE     write the cache after the run (with -n 0: after the prompt)\n"
           "  --load-cache FILE     continue a saved cache: the prompt (--prompt-ids, or text\n"
           "                        with --no-chat, no BOS) is appended; the file's cache\n"
           "                        settings replace the cache flags\n"
           "  --dump-kept FILE      JSON of the positions each cache stream keeps after the\n"
           "                        prefill and at the end\n"
           "  --ignore-eos          keep generating past EOS\n"
           "  -t, --threads N       threads (default: all cores; results do not depend on it)\n"
           "  --temperature T       0 (default): greedy\n"
           "  --top-k K             sample from the K most likely (0: off)\n"
           "  --top-p P             nucleus sampling (1: off)\n"
           "  --seed S              sampling seed (default 0)\n"
           "  --prefill-chunk N     prefill in chunks of N tokens (0: one pass)\n"
           "  --no-chat             tokenize the prompt text as is\n"
           "  --chat-template NAME  llama2, llama3, llama3.1, chatml, mistral, kvp-mini (default: auto)\n"
           "  --system S            system message for the chat template\n\n%s%s",
           cli_cache_flags_help, cli_model_flags_help);
}

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
    long threads = 0;
    int rc = 1;
    char *file_text = NULL;
    kvp_model *model = NULL;
    kvp_cache *cache = NULL;
    kvp_gen_result res;
    memset(&res, 0, sizeof res);
    char *text = NULL;
    FILE *dump = NULL;
    kvp_error err = {0};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        long lv;
        double dv;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help();
            rc = 0;
            goto out;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!cli_take_value(argc, argv, &i, &model_path)) goto usage;
        } else if (!strcmp(a, "--prompt-ids")) {
            if (!cli_take_value(argc, argv, &i, &v)) goto usage;
            free(prompt_ids);
            prompt_ids = NULL;
            prompt_from_ids = true;
            if (!cli_parse_int_list(a, v, &prompt_ids, &n_prompt)) goto usage;
        } else if (!strcmp(a, "--prompt")) {
            if (!cli_take_value(argc, argv, &i, &prompt_text)) goto usage;
        } else if (!strcmp(a, "--prompt-file")) {
            if (!cli_take_value(argc, argv, &i, &prompt_file)) goto usage;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict") || !strcmp(a, "--max-new-tokens")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 0, 1 << 24, &lv)) goto usage;
            gp.max_new_tokens = (int)lv;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--dump-logits")) {
            if (!cli_take_value(argc, argv, &i, &dump_path)) goto usage;
        } else if (!strcmp(a, "--save-cache")) {
            if (!cli_take_value(argc, argv, &i, &save_path)) goto usage;
        } else if (!strcmp(a, "--load-cache")) {
            if (!cli_take_value(argc, argv, &i, &load_path)) goto usage;
        } else if (!strcmp(a, "--dump-kept")) {
            if (!cli_take_value(argc, argv, &i, &kept_path)) goto usage;
        } else if (!strcmp(a, "--ignore-eos")) {
            gp.ignore_eos = true;
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 1, 1024, &threads)) goto usage;
        } else if (!strcmp(a, "--temperature")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_double(a, v, 0, 100, &dv)) goto usage;
            gp.temperature = (float)dv;
        } else if (!strcmp(a, "--top-k")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 0, 1 << 30, &lv)) goto usage;
            gp.top_k = (int)lv;
        } else if (!strcmp(a, "--top-p")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_double(a, v, 1e-9, 1, &dv)) goto usage;
            gp.top_p = (float)dv;
        } else if (!strcmp(a, "--seed")) {
            if (!cli_take_value(argc, argv, &i, &v)) goto usage;
            char *end = NULL;
            unsigned long long s = strtoull(v, &end, 10);
            if (!*v || *end || v[0] == '-') {
                cli_error("--seed: '%s' is not a non-negative integer", v);
                goto usage;
            }
            gp.seed = s;
        } else if (!strcmp(a, "--prefill-chunk")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 0, 1 << 30, &lv)) goto usage;
            gp.prefill_chunk = (int)lv;
        } else if (!strcmp(a, "--no-chat")) {
            no_chat = true;
        } else if (!strcmp(a, "--chat-template")) {
            if (!cli_take_value(argc, argv, &i, &chat_template)) goto usage;
        } else if (!strcmp(a, "--system")) {
            if (!cli_take_value(argc, argv, &i, &system_msg)) goto usage;
        } else {
            int r = cli_cache_flag(argc, argv, &i, &cp);
            if (r == 0) r = cli_model_flag(argc, argv, &i, &mp);
            if (r < 0) goto usage;
            if (r == 0) {
                rc = cli_usage_error("generate", "unknown flag '%s'", a);
                goto out;
            }
        }
    }
    if (!model_path) {
        rc = cli_usage_error("generate", "-m PATH is required");
        goto out;
    }
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
               "\"kv_bytes_full\":%zu,\"kv_bytes_peak\":%zu,\"kept_tokens\":%lld,\"cpu\":\"%s\"}}\n",
               res.n_prompt, res.n_ids, res.prefill_ms, res.decode_ms, res.attn_ms, tps,
               res.cache.kv_bytes, res.cache.kv_bytes_full, res.cache.kv_bytes_peak,
               (long long)res.cache.n_kept_total, si.cpu_path);
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
    goto out;
usage:
    rc = 2;
out:
    if (dump) fclose(dump);
    cli_kept_free(&kept);
    kvp_free(text);
    kvp_gen_result_free(&res);
    kvp_cache_free(cache);
    kvp_model_free(model);
    if (prompt_from_ids) free(prompt_ids); /* cli_parse_int_list's */
    else kvp_free(prompt_ids);             /* the tokenizer's */
    kvp_free(hist);
    free(file_text);
    return rc;
}
