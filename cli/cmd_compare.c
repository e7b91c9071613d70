/* kvprune compare: one model load, one prompt, several cache methods side
 * by side (outputs and their cost). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kept_dump.h"

typedef struct run_result {
    const char *method;
    kvp_gen_result res;
    double decode_attn_ms; /* attention + cache time of the decode steps */
    char *text;
    bool text_ours;  /* ids_text's (free), else kvp_detokenize's (kvp_free) */
    char warning[256];
    size_t same_prefix;
    json_t *layers; /* per layer: heavy budget and the streams' kept counts */
} run_result;

typedef struct snap_ctx {
    kvp_cache *cache;
    cli_kept_snapshot snap;
    bool want;
    int calls;
    double attn_after_prefill;
} snap_ctx;

static bool on_token(void *user, int32_t id, const float *logits, int n_vocab) {
    (void)id;
    (void)logits;
    (void)n_vocab;
    snap_ctx *s = user;
    /* the first token comes right after the prefill, before any decode step */
    if (s->calls++ == 0) {
        kvp_cache_stats st;
        kvp_cache_get_stats(s->cache, &st);
        s->attn_after_prefill = st.attn_ms;
        if (s->want) cli_kept_capture(s->cache, &s->snap);
    }
    return !cli_stop; /* Ctrl-C */
}

static void print_clipped(const char *s, int width) {
    int w = 0;
    for (const char *p = s; *p && w < width; p++, w++) {
        if (*p == '\n') fputs("\\n", stdout);
        else if ((unsigned char)*p < 32) putchar(' ');
        else putchar(*p);
    }
    if (strlen(s) > (size_t)width) fputs("...", stdout);
}

/* A library error of one method's run. The cache's own messages already
 * start with "method <name>: "; others get that prefix here. */
static int method_error(const char *method, const kvp_error *err) {
    size_t n = strlen(method);
    if (strncmp(err->message, "method ", 7) == 0 && strncmp(err->message + 7, method, n) == 0)
        cli_error("%s", err->message);
    else
        cli_error("method %s: %s", method, err->message);
    return err->status == KVP_ERR_INVALID_ARG ? 2 : 1;
}

static char *ids_text(const int32_t *ids, size_t n) {
    char *s = malloc(n * 12 + 1), *p = s;
    if (!s) return NULL;
    *p = '\0';
    for (size_t i = 0; i < n; i++) p += sprintf(p, "%s%d", i ? " " : "", ids[i]);
    return s;
}

static const char about[] =
    "Runs the same prompt with each method (greedy decoding) and prints a table:\n"
    "kept tokens per cache stream, KV memory (pruned vs full), prefill time, decode\n"
    "speed, attention time, how many leading tokens agree with the first method,\n"
    "and each output. Text prompts are tokenized as they are (no chat template).\n";

int cmd_compare(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *prompt_file = NULL, *dump = NULL;
    const char **methods = NULL;
    size_t n_methods = 0;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    bool json = false, ids_given = false;
    int n_new = 64, n_threads = 0, chunk = 0;
    bool ignore_eos = false;
    kvp_cache_params cp = kvp_cache_default_params();
    kvp_model_params mp = kvp_model_default_params();
    /* Here --method takes a list like --methods, so the shared cache flags
     * come without their single --method. */
    const cli_option own[] = {
        CLI_OPT_STRING("-m|--model", "PATH", &model_path, "GGUF file or Hugging Face folder", .required = true),
        CLI_OPT_STRING("--prompt", "TEXT", &prompt, "prompt text"),
        CLI_OPT_STRING("--prompt-file", "F", &prompt_file, "prompt text from a file"),
        CLI_OPT_LIST_INT("--prompt-ids", "LIST", &ids, &n_ids, 0, INT32_MAX, "prompt token ids",
                         .given = &ids_given),
        CLI_OPT_LIST_STRING("--methods|--method", "LIST", &methods, &n_methods, cli_check_method,
                            "comma-separated cache methods, the first is the reference; a single "
                            "name runs just that method",
                            .deflt = "full,h2o,kvcV,kvcK,kvcVK"),
        CLI_OPT_INT("-n|--max-new-tokens", "N", &n_new, 0, 1 << 24, "tokens to generate per method"),
        CLI_OPT_INT("-t|--threads", "N", &n_threads, 0, 1024, "threads", .deflt = "all cores"),
        CLI_OPT_INT("--prefill-chunk", "N", &chunk, 0, 1 << 30, "prefill in chunks of N tokens (0: one pass)"),
        CLI_OPT_FLAG("--json", &json, "one JSON object instead of the table"),
        CLI_OPT_FLAG("--ignore-eos", &ignore_eos, "keep generating past EOS"),
        CLI_OPT_STRING("--dump-kept", "PREFIX", &dump,
                       "write PREFIX<method>.json: the kept positions after the prefill and at the end"),
    };
    cli_option cache_opts[CLI_CACHE_MAX_OPTIONS], model_opts[CLI_MODEL_MAX_OPTIONS];
    const cli_group groups[] = {
        {NULL, own, CLI_COUNT(own)},
        {"Cache (pruning) options", cache_opts,
         cli_cache_options(&cp, CLI_CACHE_BUDGET | CLI_CACHE_STORAGE, cache_opts)},
        {"Matrix product options", model_opts, cli_model_options(&mp, model_opts)},
    };
    const cli_command cmd = {"compare",
                             "-m PATH [--methods LIST] [options]\n"
                             "                       (--prompt TEXT | --prompt-file F | --prompt-ids 1,2,3)",
                             about, groups, CLI_COUNT(groups), NULL};
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) {
        free(methods);
        free(ids);
        return prc;
    }
    if ((prompt != NULL) + (prompt_file != NULL) + (ids_given) != 1) {
        free(methods);
        free(ids);
        return cli_usage_error("compare",
                               "give exactly one of --prompt, --prompt-file, --prompt-ids");
    }
    static const char *const default_methods[] = {"full", "h2o", "kvcV", "kvcK", "kvcVK"};
    const char *const *mlist = methods ? methods : default_methods;
    if (!methods) n_methods = CLI_COUNT(default_methods);

    int rc = 1;
    kvp_error err;
    kvp_model *model = NULL;
    char *text = NULL;
    size_t text_len = 0;
    run_result *runs = calloc(n_methods, sizeof *runs);
    mp.n_threads = (int)n_threads;
    if (!runs) {
        cli_error("out of memory");
        goto done;
    }
    cli_warn_unused_budget(&cp, mlist, n_methods);
    if (kvp_model_load(model_path, &mp, &model, &err) != KVP_OK) {
        rc = cli_lib_error(&err);
        goto done;
    }
    cli_model_note(model);
    const kvp_tokenizer *tok = kvp_model_tokenizer(model);
    if (!ids_given) {
        if (prompt_file) {
            if (!cli_read_file("--prompt-file", prompt_file, &text, &text_len)) goto done;
        } else {
            text = strdup(prompt);
            text_len = strlen(prompt);
            if (!text) {
                cli_error("out of memory");
                goto done;
            }
        }
        if (!tok) {
            cli_error("%s has no tokenizer; use --prompt-ids", model_path);
            goto done;
        }
        kvp_tokenize_params tp = kvp_tokenize_default_params();
        if (kvp_tokenize(tok, text, text_len, &tp, &ids, &n_ids, &err) != KVP_OK) {
            rc = cli_lib_error(&err);
            goto done;
        }
    }
    /* Ctrl-C stops the method in progress after its current token; the
     * methods finished before it are reported, the cut one is left out. */
    size_t n_done = 0;
    const char *cut_method = NULL;
    cli_interrupt_arm(CLI_INTERRUPT_ONCE);
    for (size_t m = 0; m < n_methods && !cli_stop; m++) {
        kvp_cache_params p = cp;
        p.method = mlist[m];
        kvp_cache *cache = NULL;
        if (kvp_cache_new(model, &p, &cache, &err) != KVP_OK) {
            rc = method_error(mlist[m], &err);
            cli_interrupt_disarm();
            goto done;
        }
        snap_ctx sc = {cache, {0}, dump != NULL, 0, 0.0};
        kvp_gen_params g = kvp_gen_default_params();
        g.max_new_tokens = (int)n_new;
        g.n_threads = (int)n_threads;
        g.prefill_chunk = (int)chunk;
        g.ignore_eos = ignore_eos;
        g.on_token = on_token;
        g.user = &sc;
        run_result *r = &runs[m];
        r->method = mlist[m];
        kvp_status st = kvp_generate(model, cache, ids, n_ids, &g, &r->res, &err);
        if (st == KVP_OK && cli_stop) {
            cut_method = mlist[m];
            cli_kept_free(&sc.snap);
            kvp_cache_free(cache);
            break;
        }
        if (st == KVP_OK && dump) {
            char path[4096];
            snprintf(path, sizeof path, "%s%s.json", dump, mlist[m]);
            if (!cli_write_kept_json(path, &sc.snap, cache)) st = KVP_ERR_IO;
        }
        cli_kept_free(&sc.snap);
        r->decode_attn_ms = sc.calls > 0 ? r->res.attn_ms - sc.attn_after_prefill : 0.0;
        const char *w = kvp_cache_warning(cache);
        snprintf(r->warning, sizeof r->warning, "%s", w ? w : "");
        r->layers = cli_layer_stats_json(cache);
        kvp_cache_free(cache);
        if (st != KVP_OK) {
            if (st != KVP_ERR_IO) rc = method_error(mlist[m], &err);
            cli_interrupt_disarm();
            goto done;
        }
        size_t tl = 0;
        if (tok) {
            if (kvp_detokenize(tok, r->res.ids, r->res.n_ids, true, &r->text, &tl, &err) != KVP_OK)
                r->text = NULL;
        }
        if (!r->text) {
            r->text = ids_text(r->res.ids, r->res.n_ids);
            r->text_ours = true;
        }
        size_t same = 0;
        while (same < r->res.n_ids && same < runs[0].res.n_ids &&
               r->res.ids[same] == runs[0].res.ids[same])
            same++;
        r->same_prefix = same;
        n_done++;
    }
    cli_interrupt_disarm();
    if (cli_stop && !cut_method && n_done < n_methods) cut_method = mlist[n_done];

    if (json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "model", json_string(model_path));
        json_object_set_new(doc, "n_prompt", json_integer((json_int_t)n_ids));
        json_t *arr = json_array();
        for (size_t m = 0; m < n_done; m++) {
            run_result *r = &runs[m];
            kvp_cache_stats *s = &r->res.cache;
            json_t *o = json_object();
            json_t *jid = json_array();
            for (size_t i = 0; i < r->res.n_ids; i++)
                json_array_append_new(jid, json_integer(r->res.ids[i]));
            json_object_set_new(o, "method", json_string(r->method));
            json_object_set_new(o, "ids", jid);
            json_object_set_new(o, "text", json_string(r->text ? r->text : ""));
            json_object_set_new(o, "n_generated", json_integer((json_int_t)r->res.n_ids));
            json_object_set_new(o, "same_prefix_as_first", json_integer((json_int_t)r->same_prefix));
            json_object_set_new(o, "prefill_ms", json_real(r->res.prefill_ms));
            json_object_set_new(o, "decode_ms", json_real(r->res.decode_ms));
            json_object_set_new(o, "attn_ms", json_real(r->res.attn_ms));
            json_object_set_new(o, "decode_attn_ms", json_real(r->decode_attn_ms));
            json_object_set_new(o, "num_recent", json_integer(s->num_recent));
            json_object_set_new(o, "num_heavy", json_integer(s->num_heavy));
            json_object_set_new(o, "kept_tokens", json_integer(s->n_kept_total));
            json_object_set_new(o, "streams", json_integer((json_int_t)s->n_layer * s->n_streams));
            json_object_set_new(o, "kv_bytes", json_integer((json_int_t)s->kv_bytes));
            json_object_set_new(o, "kv_bytes_peak", json_integer((json_int_t)s->kv_bytes_peak));
            json_object_set_new(o, "kv_bytes_full", json_integer((json_int_t)s->kv_bytes_full));
            if (r->layers) json_object_set(o, "layers", r->layers);
            if (r->warning[0]) json_object_set_new(o, "warning", json_string(r->warning));
            json_array_append_new(arr, o);
        }
        json_object_set_new(doc, "results", arr);
        if (cut_method) json_object_set_new(doc, "interrupted", json_true());
        char *s = json_dumps(doc, JSON_INDENT(2));
        if (s) puts(s);
        free(s);
        json_decref(doc);
    } else {
        printf("prompt: %zu tokens, %d new tokens per method, head mode %s\n\n", n_ids, n_new,
               cp.gqa_mode == KVP_GQA_PER_KV_HEAD ? "per-kv-head" : "per-query-head");
        printf("%-22s %8s %9s %7s %9s %10s %10s %12s %7s  %s\n", "method", "kept/str",
               "KV MiB", "of full", "peak MiB", "prefill ms", "decode t/s", "dec attn ms",
               "same", "output");
        for (size_t m = 0; m < n_done; m++) {
            run_result *r = &runs[m];
            kvp_cache_stats *s = &r->res.cache;
            double streams = (double)s->n_layer * s->n_streams;
            double dec_tps = r->res.decode_ms > 0 && r->res.n_ids > 1
                                 ? (double)(r->res.n_ids - 1) * 1e3 / r->res.decode_ms
                                 : 0.0;
            printf("%-22s %8.1f %9.2f %6.1f%% %9.2f %10.1f %10.1f %12.1f %3zu/%-3zu ",
                   r->method, streams > 0 ? (double)s->n_kept_total / streams : 0.0,
                   (double)s->kv_bytes / 1048576.0,
                   s->kv_bytes_full ? 100.0 * (double)s->kv_bytes / (double)s->kv_bytes_full : 0.0,
                   (double)s->kv_bytes_peak / 1048576.0, r->res.prefill_ms, dec_tps,
                   r->decode_attn_ms, r->same_prefix, r->res.n_ids);
            print_clipped(r->text ? r->text : "", 40);
            putchar('\n');
        }
        for (size_t m = 0; m < n_done; m++) {
            printf("\n== %s ==\n", runs[m].method);
            if (runs[m].warning[0]) printf("(warning: %s)\n", runs[m].warning);
            printf("%s\n", runs[m].text ? runs[m].text : "");
        }
    }
    rc = 0;
    if (cut_method) {
        fflush(stdout);
        cli_error("interrupted during method %s: the %zu method(s) finished before it are "
                  "reported; run the same command again for all %zu", cut_method, n_done, n_methods);
        rc = 130;
    }
done:
    if (runs)
        for (size_t m = 0; m < n_methods; m++) {
            kvp_gen_result_free(&runs[m].res);
            json_decref(runs[m].layers);
            if (runs[m].text_ours) free(runs[m].text);
            else kvp_free(runs[m].text);
        }
    free(runs);
    free(methods);
    free(text);
    if (ids_given) free(ids); /* the parser's */
    else kvp_free(ids);     /* kvp_tokenize's */
    kvp_model_free(model);
    return rc;
}
