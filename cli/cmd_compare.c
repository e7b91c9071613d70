/* kvprune compare: one model load, one prompt, several cache methods side
 * by side (outputs and their cost). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kept_dump.h"

static const char usage[] =
    "usage: kvprune compare -m PATH (--prompt TEXT | --prompt-file F | --prompt-ids 1,2,3)\n"
    "                       [--methods LIST] [cache budget flags]\n"
    "                       [-n N] [--json] [-t N] [--prefill-chunk N] [--ignore-eos]\n"
    "                       [--dump-kept PREFIX]\n"
    "Runs the same prompt with each method (greedy decoding) and prints a table:\n"
    "kept tokens per cache stream, KV memory (pruned vs full), prefill time, decode\n"
    "speed, attention time, how many leading tokens agree with the first method,\n"
    "and each output. Text prompts are tokenized as they are (no chat template).\n"
    "--dump-kept PREFIX writes PREFIX<method>.json: the kept positions after the\n"
    "prefill and at the end.\n"
    "  --methods, --method LIST  comma-separated cache methods, the first is the\n"
    "                          reference (default full,h2o,kvcV,kvcK,kvcVK); a\n"
    "                          single name runs just that method\n"
    "  -m, --model PATH        GGUF file or Hugging Face folder\n"
    "  -n, --max-new-tokens N  tokens to generate per method (default 64)\n"
    "  -t, --threads N         threads (default: all cores)\n"
    "  --json                  one JSON object instead of the table\n";

typedef struct run_result {
    const char *method;
    kvp_gen_result res;
    double decode_attn_ms; /* attention + cache time of the decode steps */
    char *text;
    bool text_ours;  /* ids_text's (free), else kvp_detokenize's (kvp_free) */
    char warning[256];
    size_t same_prefix;
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

int cmd_compare(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *prompt_file = NULL, *ids_arg = NULL;
    const char *methods_arg = "full,h2o,kvcV,kvcK,kvcVK", *dump = NULL;
    const char *methods_flag = "--methods"; /* as typed, for errors */
    bool json = false;
    long n_new = 64, n_threads = 0, chunk = 0;
    bool ignore_eos = false;
    kvp_cache_params cp = kvp_cache_default_params();
    kvp_model_params mp = kvp_model_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        /* Here --method takes a list like --methods (checked below), so it
         * is taken before the shared cache flags, which accept one name. */
        if (strcmp(a, "--methods") == 0 || strcmp(a, "--method") == 0) {
            if (!cli_take_value(argc, argv, &i, &methods_arg)) return 2;
            methods_flag = a;
            continue;
        }
        int r = cli_cache_flag(argc, argv, &i, &cp);
        if (r == 0) r = cli_model_flag(argc, argv, &i, &mp);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            fputs(cli_cache_flags_help, stdout);
            fputs(cli_model_flags_help, stdout);
            return 0;
        } else if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) {
            if (!cli_take_value(argc, argv, &i, &model_path)) return 2;
        } else if (strcmp(a, "--prompt") == 0) {
            if (!cli_take_value(argc, argv, &i, &prompt)) return 2;
        } else if (strcmp(a, "--prompt-file") == 0) {
            if (!cli_take_value(argc, argv, &i, &prompt_file)) return 2;
        } else if (strcmp(a, "--prompt-ids") == 0) {
            if (!cli_take_value(argc, argv, &i, &ids_arg)) return 2;
        } else if (strcmp(a, "--dump-kept") == 0) {
            if (!cli_take_value(argc, argv, &i, &dump)) return 2;
        } else if (strcmp(a, "-n") == 0 || strcmp(a, "--max-new-tokens") == 0) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 0, 1 << 24, &n_new))
                return 2;
        } else if (strcmp(a, "-t") == 0 || strcmp(a, "--threads") == 0) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 0, 1024, &n_threads))
                return 2;
        } else if (strcmp(a, "--prefill-chunk") == 0) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 0, 1 << 30, &chunk))
                return 2;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--ignore-eos") == 0) {
            ignore_eos = true;
        } else {
            return cli_usage_error("compare", "unknown argument '%s'", a);
        }
    }
    if (!model_path) return cli_usage_error("compare", "-m PATH is required");
    if ((prompt != NULL) + (prompt_file != NULL) + (ids_arg != NULL) != 1)
        return cli_usage_error("compare",
                               "give exactly one of --prompt, --prompt-file, --prompt-ids");

    /* the method list, validated before loading the model */
    char *mcopy = strdup(methods_arg);
    if (!mcopy) return cli_error("out of memory");
    enum { MAX_METHODS = 64 };
    const char *methods[MAX_METHODS];
    int n_methods = 0;
    char *save = NULL;
    for (char *t = strtok_r(mcopy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n_methods == MAX_METHODS) {
            free(mcopy);
            return cli_usage_error("compare", "%s: more than %d methods", methods_flag,
                                   MAX_METHODS);
        }
        kvp_cache_params probe = cp;
        int k = 1;
        char *fake[3] = {"compare", "--method", t};
        if (cli_cache_flag(3, fake, &k, &probe) < 0) {
            free(mcopy);
            return 2;
        }
        methods[n_methods++] = t;
    }
    if (n_methods == 0) {
        free(mcopy);
        return cli_usage_error("compare", "%s: empty list", methods_flag);
    }

    int rc = 1;
    kvp_error err;
    kvp_model *model = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    char *text = NULL;
    size_t text_len = 0;
    run_result *runs = calloc((size_t)n_methods, sizeof *runs);
    mp.n_threads = (int)n_threads;
    if (!runs) {
        cli_error("out of memory");
        goto done;
    }
    cli_warn_unused_budget(&cp, methods, (size_t)n_methods);
    if (kvp_model_load(model_path, &mp, &model, &err) != KVP_OK) {
        rc = cli_lib_error(&err);
        goto done;
    }
    cli_model_note(model);
    const kvp_tokenizer *tok = kvp_model_tokenizer(model);
    if (ids_arg) {
        if (!cli_parse_int_list("--prompt-ids", ids_arg, &ids, &n_ids)) {
            rc = 2;
            goto done;
        }
    } else {
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
    int n_done = 0;
    const char *cut_method = NULL;
    cli_interrupt_arm(CLI_INTERRUPT_ONCE);
    for (int m = 0; m < n_methods && !cli_stop; m++) {
        kvp_cache_params p = cp;
        p.method = methods[m];
        kvp_cache *cache = NULL;
        if (kvp_cache_new(model, &p, &cache, &err) != KVP_OK) {
            rc = method_error(methods[m], &err);
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
        r->method = methods[m];
        kvp_status st = kvp_generate(model, cache, ids, n_ids, &g, &r->res, &err);
        if (st == KVP_OK && cli_stop) {
            cut_method = methods[m];
            cli_kept_free(&sc.snap);
            kvp_cache_free(cache);
            break;
        }
        if (st == KVP_OK && dump) {
            char path[4096];
            snprintf(path, sizeof path, "%s%s.json", dump, methods[m]);
            if (!cli_write_kept_json(path, &sc.snap, cache)) st = KVP_ERR_IO;
        }
        cli_kept_free(&sc.snap);
        r->decode_attn_ms = sc.calls > 0 ? r->res.attn_ms - sc.attn_after_prefill : 0.0;
        const char *w = kvp_cache_warning(cache);
        snprintf(r->warning, sizeof r->warning, "%s", w ? w : "");
        kvp_cache_free(cache);
        if (st != KVP_OK) {
            if (st != KVP_ERR_IO) rc = method_error(methods[m], &err);
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
    if (cli_stop && !cut_method && n_done < n_methods) cut_method = methods[n_done];

    if (json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "model", json_string(model_path));
        json_object_set_new(doc, "n_prompt", json_integer((json_int_t)n_ids));
        json_t *arr = json_array();
        for (int m = 0; m < n_done; m++) {
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
        printf("prompt: %zu tokens, %ld new tokens per method, head mode %s\n\n", n_ids, n_new,
               cp.gqa_mode == KVP_GQA_PER_KV_HEAD ? "per-kv-head" : "per-query-head");
        printf("%-22s %8s %9s %7s %9s %10s %10s %12s %7s  %s\n", "method", "kept/str",
               "KV MiB", "of full", "peak MiB", "prefill ms", "decode t/s", "dec attn ms",
               "same", "output");
        for (int m = 0; m < n_done; m++) {
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
        for (int m = 0; m < n_done; m++) {
            printf("\n== %s ==\n", runs[m].method);
            if (runs[m].warning[0]) printf("(warning: %s)\n", runs[m].warning);
            printf("%s\n", runs[m].text ? runs[m].text : "");
        }
    }
    rc = 0;
    if (cut_method) {
        fflush(stdout);
        cli_error("interrupted during method %s: the %d method(s) finished before it are "
                  "reported; run the same command again for all %d", cut_method, n_done, n_methods);
        rc = 130;
    }
done:
    if (runs)
        for (int m = 0; m < n_methods; m++) {
            kvp_gen_result_free(&runs[m].res);
            if (runs[m].text_ours) free(runs[m].text);
            else kvp_free(runs[m].text);
        }
    free(runs);
    free(mcopy);
    free(text);
    if (ids_arg) free(ids); /* cli_parse_int_list's */
    else kvp_free(ids);     /* kvp_tokenize's */
    kvp_model_free(model);
    return rc;
}
