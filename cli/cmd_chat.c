/* kvprune chat: a multi-turn conversation over one (pruning) cache, the
 * reply streamed token by token. Interactive on a terminal; with piped
 * stdin every line is one turn (or a /command). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "conversation.h"

static const char epilog[] =
    "Each line is one turn; in a terminal the reply streams as it is generated and\n"
    "Ctrl-C stops it (not the session). Commands:\n"
    "  /reset        forget the conversation\n"
    "  /stats        kept tokens, KV memory against the full cache, speed\n"
    "  /save FILE    write the conversation's cache to FILE\n"
    "  /load FILE    continue a saved conversation\n"
    "  /quit         leave (also Ctrl-D)\n\n"
    "A ratio budget is fixed by the first turn after a start or /reset (a fraction of\n"
    "that turn's tokens); absolute budgets or --max-kv-mib hold for any length.\n";

typedef struct stream_ctx {
    kvp_detok *detok;
    bool print;
} stream_ctx;

static bool on_token(void *user, int32_t id, const float *logits, int n_vocab) {
    (void)logits;
    (void)n_vocab;
    stream_ctx *s = user;
    if (s->print) {
        const char *piece = NULL;
        if (kvp_detok_push(s->detok, id, &piece, NULL) == KVP_OK && piece && *piece) {
            fputs(piece, stdout);
            fflush(stdout);
        }
    }
    return !cli_stop; /* Ctrl-C stops the reply */
}

static double mib(size_t b) { return (double)b / 1048576.0; }

static void print_stats(const conv *c, FILE *o) {
    kvp_cache_stats st;
    kvp_cache_get_stats(c->cache, &st);
    int streams = st.n_layer * st.n_streams;
    double per = streams ? (double)st.n_kept_total / streams : 0.0;
    double pct = st.kv_bytes_full ? 100.0 * (double)st.kv_bytes / (double)st.kv_bytes_full : 0.0;
    double tps = c->last_decode_ms > 0 && c->last_gen_tokens > 1
                     ? (double)(c->last_gen_tokens - 1) * 1000.0 / c->last_decode_ms
                     : 0.0;
    fprintf(o,
            "turns %lld, tokens seen %lld, kept %.1f per stream (budget %d recent + %d heavy)\n"
            "KV %.3f MiB of %.3f MiB full (%.1f%%), peak %.3f MiB\n"
            "last turn: %zu prompt tokens in %.1f ms, %zu generated at %.1f tokens/s\n",
            (long long)c->n_turns, (long long)st.n_seen, per, st.num_recent, st.num_heavy,
            mib(st.kv_bytes), mib(st.kv_bytes_full), pct, mib(st.kv_bytes_peak),
            c->last_prompt_tokens, c->last_prefill_ms, c->last_gen_tokens, tps);
}

static void print_json_turn(const conv *c, const kvp_gen_result *res, const char *reply) {
    kvp_cache_stats st;
    kvp_cache_get_stats(c->cache, &st);
    json_t *ids = json_array();
    for (size_t i = 0; i < res->n_ids; i++) json_array_append_new(ids, json_integer(res->ids[i]));
    double tps = res->decode_ms > 0 && res->n_ids > 1 ? (res->n_ids - 1) * 1000.0 / res->decode_ms : 0;
    json_t *o = json_pack(
        "{s:I, s:s, s:o, s:b, s:{s:I, s:I, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:I}}", "turn",
        (json_int_t)c->n_turns, "reply", reply, "ids", ids, "stopped_at_eos", res->stopped_at_eos,
        "stats", "prompt_tokens", (json_int_t)c->last_prompt_tokens, "generated_tokens",
        (json_int_t)res->n_ids, "prefill_ms", res->prefill_ms, "decode_ms", res->decode_ms,
        "tokens_per_s", tps, "kv_bytes", (json_int_t)st.kv_bytes, "kv_bytes_full",
        (json_int_t)st.kv_bytes_full, "kv_bytes_peak", (json_int_t)st.kv_bytes_peak, "kept_tokens",
        (json_int_t)st.n_kept_total, "tokens_seen", (json_int_t)st.n_seen);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s) printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(o);
}

/* A line ends at \n; \r\n too. */
static void chomp(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
}

int cmd_chat(int argc, char **argv) {
    const char *model_path = NULL, *tmpl = NULL, *system_msg = NULL, *load_path = NULL;
    kvp_cache_params cp = kvp_cache_default_params();
    kvp_gen_params gp = kvp_gen_default_params();
    gp.max_new_tokens = 256;
    gp.prefill_chunk = 256;
    double max_mib = -1;
    int threads = 0;
    bool json = false, chunk_set = false;
    const cli_option own[] = {
        CLI_OPT_STRING("-m|--model", "PATH", &model_path, "GGUF file or Hugging Face folder (with a tokenizer)",
                       .required = true),
        CLI_OPT_STRING("--system", "S", &system_msg, "system message"),
        CLI_OPT_FLOAT("--max-kv-mib", "N", &max_mib, 1e-6, 1e9,
                      "KV memory cap in MiB: sets the token budget of a pruning method (num_recent "
                      "recent tokens, the rest by score) or the capacity of the full cache",
                      .deflt = "no cap"),
        CLI_OPT_INT("-n|--max-new-tokens|--n-predict", "N", &gp.max_new_tokens, 0, 1 << 24,
                    "most tokens per reply"),
        CLI_OPT_FLOAT("--temperature", "T", &gp.temperature, 0, 100, "0: greedy"),
        CLI_OPT_INT("--top-k", "K", &gp.top_k, 0, 1 << 30, "sample from the K most likely (0: off)"),
        CLI_OPT_FLOAT("--top-p", "P", &gp.top_p, 1e-9, 1, "nucleus sampling (1: off)"),
        CLI_OPT_UINT("--seed", "S", &gp.seed, 0x7fffffff, "sampling seed"),
        CLI_OPT_INT("--prefill-chunk", "N", &gp.prefill_chunk, 0, 1 << 30,
                    "read each turn in chunks of N tokens (with --max-kv-mib, a quarter of the "
                    "cap's tokens at most)",
                    .given = &chunk_set),
        CLI_OPT_STRING("--chat-template", "NAME", &tmpl, "llama2, llama3, llama3.1, chatml, mistral, kvp-mini",
                       .deflt = "auto"),
        CLI_OPT_INT("-t|--threads", "N", &threads, 1, 1024, "threads", .deflt = "all cores"),
        CLI_OPT_FLAG("--json", &json, "print one JSON object per turn (reply, ids, stats)"),
        CLI_OPT_FLAG("--ignore-eos", &gp.ignore_eos, "keep generating past EOS (until -n or Ctrl-C)"),
        CLI_OPT_STRING("--load", "FILE", &load_path, "start from a saved conversation (/save)"),
    };
    cli_option cache_opts[CLI_CACHE_MAX_OPTIONS];
    const cli_group groups[] = {
        {NULL, own, CLI_COUNT(own)},
        {"Cache (pruning) options", cache_opts, cli_cache_options(&cp, CLI_CACHE_ALL, cache_opts)},
    };
    const cli_command cmd = {"chat", "-m PATH [--system S] [--max-kv-mib N] [options]", NULL,
                             groups, CLI_COUNT(groups), epilog};
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;


    int rc = 1;
    kvp_error err = {0};
    kvp_model *model = NULL;
    conv c;
    memset(&c, 0, sizeof c);
    bool conv_ok = false;
    kvp_detok *detok = NULL;
    char *line = NULL;
    size_t line_cap = 0;
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = (int)threads;
    if (kvp_model_load(model_path, &mp, &model, &err)) {
        rc = cli_lib_error(&err);
        goto out;
    }
    if (max_mib > 0) {
        if (!chunk_set) {
            /* a quarter of the cap for the turn being read, at most 256 */
            kvp_cache_params probe_p = kvp_cache_default_params();
            probe_p.gqa_mode = cp.gqa_mode;
            kvp_cache *probe = NULL;
            if (kvp_cache_new(model, &probe_p, &probe, &err) == KVP_OK) {
                double cap_tokens = max_mib * 1048576.0 / (double)kvp_cache_token_bytes(probe);
                int q = (int)(cap_tokens / 4);
                gp.prefill_chunk = q < 1 ? 1 : q < 256 ? q : 256;
            }
            kvp_cache_free(probe);
        }
        int block = cp.decode_evict ? 1 : gp.max_new_tokens + 1;
        if (gp.prefill_chunk == 0)
            fprintf(stderr, "kvprune chat: warning: without --prefill-chunk a turn longer than --max-kv-mib "
                            "holds fails\n");
        if (conv_budget_from_mib(model, &cp, max_mib, block, gp.prefill_chunk, &err)) {
            rc = cli_error("%s", err.message);
            goto out;
        }
    }
    if (conv_init(&c, model, &cp, tmpl, system_msg, &err)) {
        rc = cli_lib_error(&err);
        goto out;
    }
    conv_ok = true;
    if (load_path && conv_load(&c, load_path, &err)) {
        rc = cli_error("--load: %s", err.message);
        goto out;
    }
    bool tty = isatty(STDIN_FILENO);
    if (kvp_detok_new(c.tok, true, &detok, &err)) {
        rc = cli_lib_error(&err);
        goto out;
    }
    /* every Ctrl-C stops the reply in progress (or interrupts the read at
     * the prompt), never the session */
    cli_interrupt_arm(CLI_INTERRUPT_REPEAT);
    if (tty) {
        kvp_model_info info;
        kvp_model_get_info(model, &info);
        fprintf(stderr, "kvprune chat: %s, cache %s%s; /help for commands, Ctrl-C stops a reply, Ctrl-D leaves\n",
                info.name, cp.method, max_mib > 0 ? " (--max-kv-mib)" : "");
    }
    for (;;) {
        if (tty) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        cli_stop = 0;
        errno = 0;
        ssize_t got = getline(&line, &line_cap, stdin);
        if (got < 0) {
            if (errno == EINTR && tty) {
                clearerr(stdin);
                fputs("\n(/quit or Ctrl-D to leave)\n", stdout);
                continue;
            }
            if (tty) fputc('\n', stdout);
            break;
        }
        chomp(line);
        if (!line[0]) continue;
        if (line[0] == '/') {
            char *arg = strchr(line, ' ');
            if (arg) {
                *arg++ = '\0';
                while (*arg == ' ') arg++;
            }
            if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) break;
            if (!strcmp(line, "/reset")) {
                conv_reset(&c);
                fprintf(tty ? stdout : stderr, "(conversation reset)\n");
            } else if (!strcmp(line, "/stats")) {
                print_stats(&c, tty ? stdout : stderr);
            } else if (!strcmp(line, "/save") || !strcmp(line, "/load")) {
                if (!arg || !*arg) {
                    fprintf(stderr, "kvprune chat: %s needs a file name\n", line);
                    if (!tty) goto out;
                } else if (line[1] == 's' ? conv_save(&c, arg, &err) : conv_load(&c, arg, &err)) {
                    fprintf(stderr, "kvprune chat: %s\n", err.message);
                    if (!tty) goto out;
                } else {
                    kvp_cache_stats st;
                    kvp_cache_get_stats(c.cache, &st);
                    fprintf(tty ? stdout : stderr, "(%s %s: %lld tokens seen, %.3f MiB of K/V)\n",
                            line[1] == 's' ? "saved" : "loaded", arg, (long long)st.n_seen, mib(st.kv_bytes));
                }
            } else if (!strcmp(line, "/help")) {
                fprintf(tty ? stdout : stderr, "/reset, /stats, /save FILE, /load FILE, /quit\n");
            } else {
                fprintf(stderr, "kvprune chat: unknown command '%s' (/reset, /stats, /save FILE, /load FILE, /quit)\n",
                        line);
            }
            continue;
        }
        kvp_chat_message msg = {"user", line};
        stream_ctx sc = {detok, !json};
        kvp_detok_free(detok);
        detok = NULL;
        if (kvp_detok_new(c.tok, true, &detok, &err)) {
            rc = cli_lib_error(&err);
            goto out;
        }
        sc.detok = detok;
        gp.on_token = on_token;
        gp.user = &sc;
        kvp_gen_result res;
        char *reply = NULL;
        if (conv_turn(&c, &msg, 1, &gp, &res, &reply, &err)) {
            fprintf(stderr, "kvprune chat: %s (the conversation was reset)\n", err.message);
            if (!tty) goto out;
            continue;
        }
        if (json) {
            print_json_turn(&c, &res, reply);
        } else {
            fputs(kvp_detok_flush(detok), stdout);
            if (cli_stop && tty) fputs(" [stopped]", stdout);
            fputc('\n', stdout);
            fflush(stdout);
        }
        free(reply);
        kvp_gen_result_free(&res);
    }
    rc = 0;
out:
    cli_interrupt_disarm();
    free(line);
    kvp_detok_free(detok);
    if (conv_ok) conv_free(&c);
    kvp_model_free(model);
    return rc;
}
