/* kvprune needle gen | pred | eval: needle-in-a-haystack data, predictions
 * over a sweep of cache methods and ratios, and scoring with plots. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "cli.h"
#include "eval/jsonl.h"
#include "eval/needle_eval.h"
#include "eval/needle_gen.h"
#include "eval/needle_pred.h"
#include "eval/plot_svg.h"

/* ---------------------------------------------------------------- gen --- */

static void gen_help(void) {
    printf(
        "usage: kvprune needle gen (-m MODEL | --tokenizer PATH) -o FILE [options]\n\n"
        "Writes RULER-style jsonl: index, input, outputs, length, length_w_model_temp,\n"
        "answer_prefix, others {depth, depths, target_length, variant, haystack, query}.\n\n"
        "  -m, --model PATH       model (GGUF or HF folder); only its tokenizer is loaded\n"
        "  --tokenizer PATH       tokenizer.json, a folder holding one, or a GGUF file\n"
        "  -o, --output FILE      the jsonl to write (replaced atomically)\n"
        "  --haystack H           noise (default: a repeated filler paragraph), a text\n"
        "                         file, or a folder of .txt files (read in name order)\n"
        "  --variant V            single (default), multikey, multivalue, multiquery\n"
        "  --num-needles N        keys/values/queries of the multi variants (default 3)\n"
        "  --lengths L,...        target lengths in model tokens, prompt with chat\n"
        "                         template + tokens to generate (default 1024)\n"
        "  --depths D,...         needle depths in percent (default: --num-depths 5)\n"
        "  --num-depths N         depths round(linspace(0, 100, N))\n"
        "  --samples N            samples per (length, depth) (default 4)\n"
        "  --seed S               random seed (default 42); same seed, same file\n"
        "  --template FILE        JSON with template / needle / answer_prefix (RULER's\n"
        "                         task files load as they are); default: our own wording\n"
        "  --max-new-tokens N     tokens to generate, counted in the length (default 64)\n"
        "  --chat-template NAME   llama2, llama3, llama3.1, chatml, mistral, kvp-mini (default: auto)\n"
        "  --no-chat              count the prompt without a chat template\n"
        "  --system S             system message for the chat template\n");
}

static bool parse_seed(const char *v, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long s = strtoull(v, &end, 10);
    if (!*v || *end || v[0] == '-' || errno) {
        cli_error("--seed: '%s' is not a non-negative integer", v);
        return false;
    }
    *out = s;
    return true;
}

/* Writes text to path through a temporary file (never a half file). */
static bool write_atomic(const char *path, const char *text, size_t len) {
    kvp_error err;
    if (kvev_write_file_atomic(path, text, len, &err) != KVP_OK) {
        cli_lib_error(&err);
        return false;
    }
    return true;
}

static int needle_gen(int argc, char **argv) {
    const char *model = NULL, *tok_path = NULL, *out_path = NULL, *hay_arg = "noise";
    const char *tmpl_path = NULL, *chat_template = NULL, *system_msg = NULL;
    kvev_niah_variant variant = KVP_NIAH_SINGLE;
    long num_needles = 3, samples = 4, num_depths = 5, max_new = 64;
    uint64_t seed = 42;
    int32_t *lens32 = NULL;
    size_t n_lens = 0, n_depths = 0;
    double *depths = NULL;
    bool no_chat = false;
    int rc = 2;
    kvp_tokenizer *tok = NULL;
    kvev_haystack hay = {0};
    kvev_niah_phrasing ph = {0};
    json_t *lines = NULL;
    int *lens = NULL;
    char *buf = NULL;
    kvp_error err = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            gen_help();
            rc = 0;
            goto out;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!cli_take_value(argc, argv, &i, &model)) goto out;
        } else if (!strcmp(a, "--tokenizer")) {
            if (!cli_take_value(argc, argv, &i, &tok_path)) goto out;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!cli_take_value(argc, argv, &i, &out_path)) goto out;
        } else if (!strcmp(a, "--haystack")) {
            if (!cli_take_value(argc, argv, &i, &hay_arg)) goto out;
        } else if (!strcmp(a, "--variant")) {
            if (!cli_take_value(argc, argv, &i, &v)) goto out;
            if (!kvev_niah_variant_parse(v, &variant)) {
                cli_error("--variant: '%s' is not single, multikey, multivalue or multiquery", v);
                goto out;
            }
        } else if (!strcmp(a, "--num-needles")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 2, 64, &num_needles))
                goto out;
        } else if (!strcmp(a, "--lengths")) {
            if (!cli_take_value(argc, argv, &i, &v)) goto out;
            free(lens32);
            lens32 = NULL;
            if (!cli_parse_int_list(a, v, &lens32, &n_lens)) goto out;
        } else if (!strcmp(a, "--depths")) {
            if (!cli_take_value(argc, argv, &i, &v)) goto out;
            free(depths);
            depths = NULL;
            if (!cli_parse_double_list(a, v, 0, 100, &depths, &n_depths)) goto out;
        } else if (!strcmp(a, "--num-depths")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 1, 1000, &num_depths))
                goto out;
        } else if (!strcmp(a, "--samples")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 1, 1000000, &samples))
                goto out;
        } else if (!strcmp(a, "--seed")) {
            if (!cli_take_value(argc, argv, &i, &v) || !parse_seed(v, &seed)) goto out;
        } else if (!strcmp(a, "--template")) {
            if (!cli_take_value(argc, argv, &i, &tmpl_path)) goto out;
        } else if (!strcmp(a, "--max-new-tokens") || !strcmp(a, "-n")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 0, 1 << 20, &max_new))
                goto out;
        } else if (!strcmp(a, "--chat-template")) {
            if (!cli_take_value(argc, argv, &i, &chat_template)) goto out;
        } else if (!strcmp(a, "--no-chat")) {
            no_chat = true;
        } else if (!strcmp(a, "--system")) {
            if (!cli_take_value(argc, argv, &i, &system_msg)) goto out;
        } else {
            rc = cli_usage_error("needle gen", "unknown flag '%s'", a);
            goto out;
        }
    }
    if (!out_path) {
        rc = cli_usage_error("needle gen", "-o FILE is required");
        goto out;
    }
    if (!model == !tok_path) {
        rc = cli_usage_error("needle gen", "give one of -m MODEL or --tokenizer PATH");
        goto out;
    }
    rc = 1;
    if (kvp_tokenizer_load(model ? model : tok_path, &tok, &err)) {
        rc = cli_lib_error(&err);
        goto out;
    }
    if (!strcmp(hay_arg, "noise") ? kvev_haystack_noise(&hay, &err)
                                  : kvev_haystack_load(hay_arg, &hay, &err)) {
        rc = cli_lib_error(&err);
        goto out;
    }
    if (tmpl_path ? kvev_niah_phrasing_load(tmpl_path, &ph, &err)
                  : kvev_niah_phrasing_default(&ph, &err)) {
        rc = cli_lib_error(&err);
        goto out;
    }
    if (!lens32) {
        lens32 = malloc(sizeof *lens32);
        if (!lens32) {
            rc = cli_error("out of memory");
            goto out;
        }
        lens32[0] = 1024;
        n_lens = 1;
    }
    lens = malloc(n_lens * sizeof *lens);
    if (!lens) {
        rc = cli_error("out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_lens; i++) {
        if (lens32[i] < 16) {
            rc = cli_usage_error("needle gen", "--lengths: %d is too small (at least 16 tokens)",
                                 lens32[i]);
            goto out;
        }
        lens[i] = lens32[i];
    }
    if (!depths) {
        n_depths = (size_t)num_depths;
        depths = malloc(n_depths * sizeof *depths);
        if (!depths) {
            rc = cli_error("out of memory");
            goto out;
        }
        kvev_niah_depth_grid((int)num_depths, depths);
    }
    kvev_prompt_style ps = {tok, chat_template, system_msg, no_chat};
    kvev_niah_params p = {variant, (int)num_needles, lens, n_lens, depths, n_depths, (int)samples,
                         seed, (int)max_new, !no_chat};
    kvev_niah_stats stats;
    if (kvev_niah_generate(&p, &ph, &hay, kvev_prompt_measure, &ps, &lines, &stats, &err)) {
        rc = cli_lib_error(&err);
        goto out;
    }
    /* One line per sample, then one atomic write. */
    size_t cap = 1 << 16, len = 0;
    buf = malloc(cap);
    if (!buf) {
        rc = cli_error("out of memory");
        goto out;
    }
    size_t i;
    json_t *o;
    json_array_foreach(lines, i, o) {
        char *s = json_dumps(o, JSON_PRESERVE_ORDER);
        size_t l = s ? strlen(s) : 0;
        if (!s) {
            rc = cli_error("out of memory");
            goto out;
        }
        while (len + l + 2 > cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(s);
                rc = cli_error("out of memory");
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        memcpy(buf + len, s, l);
        len += l;
        buf[len++] = '\n';
        free(s);
    }
    /* The output's folder is created like pred's save dir. */
    const char *slash = strrchr(out_path, '/');
    if (slash && slash != out_path) {
        char *dir = strndup(out_path, (size_t)(slash - out_path));
        if (!dir) {
            rc = cli_error("out of memory");
            goto out;
        }
        kvp_status ms = kvev_mkdirs(dir, &err);
        free(dir);
        if (ms != KVP_OK) {
            rc = cli_lib_error(&err);
            goto out;
        }
    }
    if (!write_atomic(out_path, buf, len)) goto out;
    printf("wrote %zu samples (%s, haystack %s) to %s\n", stats.n_samples,
           kvev_niah_variant_name(variant), hay.name, out_path);
    printf("lengths: every sample within %.2f%% below its target (%zu tokenizer calls)\n",
           stats.worst_rel_gap * 100, stats.n_measure_calls);
    if (stats.worst_rel_gap > 0.01)
        cli_warn("some prompts are more than 1%% below their target length (the haystack is "
                 "too coarse?)");
    rc = 0;
out:
    free(buf);
    json_decref(lines);
    free(lens);
    free(lens32);
    free(depths);
    kvev_niah_phrasing_free(&ph);
    kvev_haystack_free(&hay);
    kvp_tokenizer_free(tok);
    return rc;
}

/* --------------------------------------------------------------- pred --- */

static void pred_help(void) {
    printf(
        "usage: kvprune needle pred -m MODEL --data FILE --save-dir DIR [options]\n\n"
        "Writes DIR/<task>/<method>-cr<ratio>[-no_decode_evict]/pred.jsonl (the full\n"
        "cache: DIR/<task>/full/pred.jsonl), one line per sample: index, response,\n"
        "outputs, others, truncation, length. Resumable: a rerun skips the samples\n"
        "already written (a torn last line from a killed run is dropped first).\n\n"
        "  -m, --model PATH       GGUF file or Hugging Face folder (loaded once)\n"
        "  --data FILE            jsonl from 'kvprune needle gen' (or RULER)\n"
        "  --save-dir DIR         output root\n"
        "  --task NAME            task folder (default: the data file name)\n"
        "  --method LIST          comma-separated methods (default full)\n"
        "  --cache-ratio LIST     comma-separated ratios in (0, 1] (pruning methods)\n"
        "  --num-recent N         recent tokens always kept (default 16); the budget is\n"
        "                         int(prompt * ratio) tokens in all\n"
        "  --no-decode-evict      evict only after the prompt (the seed's published runs)\n"
        "  -n, --max-new-tokens N tokens to generate (default 64), greedy\n"
        "  --chat-template NAME   llama2, llama3, llama3.1, chatml, mistral, kvp-mini (default: auto)\n"
        "  --no-chat              feed `input` without a chat template\n"
        "  --system S             system message for the chat template\n"
        "  --no-postprocess       keep responses as decoded (default: cut at\n"
        "                         \".assistant\", \"\\n\\nQuestion\", \"</s>\", then strip)\n"
        "  --shard I/N            run experiments k with k %% N == I (0-based), so N\n"
        "                         machines can share one save dir\n"
        "  --threads N            threads (default: all cores)\n"
        "  --compute TYPE         auto, f32 or bf16 (see 'kvprune generate --help')\n"
        "  --repack               converted copies of the weights (see generate)\n"
        "  --quiet                no progress output\n"
        "\nother cache options (--gqa-mode, --streaming, --cache-max-tokens, --kv-type)\n"
        "as in 'kvprune generate'.\n");
}

static void on_progress(void *user, const kvev_needle_progress *p) {
    char what[256];
    snprintf(what, sizeof what, "exp %zu/%zu %s", p->exp_index + 1, p->n_exps, p->experiment);
    cli_progress_report(user, "needle pred", what, p->done, p->total, p->elapsed_s);
}

static int needle_pred(int argc, char **argv) {
    kvev_needle_pred_params p;
    kvev_needle_pred_default_params(&p);
    kvp_model_params mp = kvp_model_default_params();
    const char *model_path = NULL, *methods_arg = "full", *ratios_arg = NULL;
    long threads = 0, lv;
    bool quiet = false;
    int rc = 2;
    char *methods_copy = NULL;
    const char **methods = NULL;
    double *ratios = NULL;
    size_t n_methods = 0, n_ratios = 0;
    kvp_model *model = NULL;
    kvp_error err = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            pred_help();
            rc = 0;
            goto out;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!cli_take_value(argc, argv, &i, &model_path)) goto out;
        } else if (!strcmp(a, "--data")) {
            if (!cli_take_value(argc, argv, &i, &p.data_path)) goto out;
        } else if (!strcmp(a, "--save-dir")) {
            if (!cli_take_value(argc, argv, &i, &p.save_dir)) goto out;
        } else if (!strcmp(a, "--task")) {
            if (!cli_take_value(argc, argv, &i, &p.task)) goto out;
        } else if (!strcmp(a, "--method")) {
            if (!cli_take_value(argc, argv, &i, &methods_arg)) goto out;
        } else if (!strcmp(a, "--cache-ratio")) {
            if (!cli_take_value(argc, argv, &i, &ratios_arg)) goto out;
        } else if (!strcmp(a, "--num-recent")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 0, 1 << 30, &lv))
                goto out;
            p.num_recent = (int)lv;
        } else if (!strcmp(a, "--no-decode-evict")) {
            p.no_decode_evict = true;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--max-new-tokens")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 1, 1 << 20, &lv))
                goto out;
            p.gen.max_new_tokens = (int)lv;
        } else if (!strcmp(a, "--chat-template")) {
            if (!cli_take_value(argc, argv, &i, &p.prompt.chat_template)) goto out;
        } else if (!strcmp(a, "--no-chat")) {
            p.prompt.no_chat = true;
        } else if (!strcmp(a, "--system")) {
            if (!cli_take_value(argc, argv, &i, &p.prompt.system)) goto out;
        } else if (!strcmp(a, "--no-postprocess")) {
            p.postprocess = false;
        } else if (!strcmp(a, "--shard")) {
            if (!cli_take_value(argc, argv, &i, &v)) goto out;
            int si, sn, used = 0;
            if (sscanf(v, "%d/%d%n", &si, &sn, &used) != 2 || v[used] || sn < 1 || si < 0 ||
                si >= sn) {
                cli_error("--shard: '%s' is not I/N with 0 <= I < N", v);
                goto out;
            }
            p.shard_index = si;
            p.shard_count = sn;
        } else if (!strcmp(a, "--threads")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 1, 1024, &threads))
                goto out;
        } else if (!strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "--num-heavy") || !strcmp(a, "--recent-ratio") ||
                   !strcmp(a, "--heavy-ratio")) {
            rc = cli_usage_error("needle pred", "%s: needle budgets are --num-recent plus "
                                 "--cache-ratio", a);
            goto out;
        } else {
            int r = cli_cache_flag(argc, argv, &i, &p.base);
            if (r == 0) r = cli_model_flag(argc, argv, &i, &mp);
            if (r < 0) goto out;
            if (r == 0) {
                rc = cli_usage_error("needle pred", "unknown flag '%s'", a);
                goto out;
            }
        }
    }
    if (!model_path || !p.data_path || !p.save_dir) {
        rc = cli_usage_error("needle pred", "-m MODEL, --data FILE and --save-dir DIR are required");
        goto out;
    }
    if (!cli_split_list("--method", methods_arg, &methods_copy, &methods, &n_methods)) goto out;
    for (size_t m = 0; m < n_methods; m++)
        if (!kvev_needle_method_known(methods[m])) {
            char list[1024];
            size_t off = 0;
            for (const char *const *nm = kvp_cache_method_names(); *nm && off < sizeof list; nm++)
                off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", off ? ", " : "", *nm);
            cli_error("--method: unknown method '%s'; valid: %s", methods[m], list);
            goto out;
        }
    if (ratios_arg) {
        if (!cli_parse_double_list("--cache-ratio", ratios_arg, -1e300, 1e300, &ratios, &n_ratios))
            goto out;
        for (size_t r = 0; r < n_ratios; r++)
            if (!(ratios[r] > 0 && ratios[r] <= 1)) {
                cli_error("--cache-ratio: %g is outside (0, 1]", ratios[r]);
                goto out;
            }
    }
    bool pruned = false;
    for (size_t m = 0; m < n_methods; m++) pruned |= strcmp(methods[m], "full") != 0;
    if (!pruned && (ratios || p.num_recent != 16 || p.no_decode_evict))
        cli_warn("the full cache keeps every token: --cache-ratio, --num-recent and "
                 "--no-decode-evict are ignored");
    if (pruned && !ratios) {
        rc = cli_usage_error("needle pred", "--cache-ratio LIST is needed for pruning methods");
        goto out;
    }
    rc = 1;
    if (access(p.data_path, R_OK) != 0) {
        rc = cli_error("--data: cannot read '%s': %s", p.data_path, strerror(errno));
        goto out;
    }
    p.methods = methods;
    p.n_methods = n_methods;
    p.ratios = ratios;
    p.n_ratios = n_ratios;
    mp.n_threads = (int)threads;
    if (kvp_model_load(model_path, &mp, &model, &err)) {
        rc = cli_lib_error(&err);
        goto out;
    }
    cli_model_note(model);
    cli_progress pc = {isatty(2) != 0, quiet, 0, 0};
    p.on_progress = on_progress;
    p.user = &pc;
    /* Ctrl-C: stop after the current token; the finished samples are on
     * disk, a second Ctrl-C ends the process at once. */
    p.stop = &cli_stop;
    kvev_needle_pred_summary sum;
    cli_interrupt_arm(CLI_INTERRUPT_ONCE);
    kvp_status st = kvev_needle_pred(model, &p, &sum, &err);
    cli_interrupt_disarm();
    if (st != KVP_OK) {
        if (pc.tty && !quiet) fputc('\n', stderr);
        rc = cli_lib_error(&err);
        goto out;
    }
    if (sum.interrupted) {
        if (pc.tty && !quiet) fputc('\n', stderr);
        cli_error("interrupted: %zu samples written now, %zu earlier, all kept; run the same "
                  "command again to resume where it stopped",
                  sum.generated, sum.skipped);
        rc = 130;
        goto out;
    }
    printf("needle pred: task %s, %zu samples x %zu experiments (shard %d/%d): %zu generated, "
           "%zu already done%s\n",
           sum.task, sum.n_samples, sum.n_exps, p.shard_index, p.shard_count, sum.generated,
           sum.skipped, sum.torn_bytes ? " (a torn last line was dropped)" : "");
    rc = 0;
out:
    kvp_model_free(model);
    free(methods);
    free(methods_copy);
    free(ratios);
    return rc;
}

/* --------------------------------------------------------------- eval --- */

static void eval_help(void) {
    printf(
        "usage: kvprune needle eval --save-dir DIR [--heatmap FOLDER] [--no-plots]\n\n"
        "Scores every DIR/<task>/<experiment>/pred.jsonl with string_match_all\n"
        "(an experiment folder without pred.jsonl scores -1; a torn last line is\n"
        "ignored; incomplete experiments are marked), writes\n"
        "DIR/<task>/result.json, prints a table (methods x cache ratios) and writes\n"
        "DIR/<task>/accuracy_vs_cache_ratio.svg.\n\n"
        "  --save-dir DIR         the folder 'kvprune needle pred' wrote\n"
        "  --task NAME            only this task\n"
        "  --heatmap FOLDER       also DIR/<task>/heatmap_<FOLDER>.svg: accuracy by\n"
        "                         needle depth x context length for that experiment\n"
        "  --no-plots             write result.json and print the table only\n");
}

/* "a/b"; NULL when out of memory (after saying so). */
static char *path2(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (!p) {
        cli_error("out of memory");
        return NULL;
    }
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* A task whose results could not be written keeps none of an earlier
 * run's: a stale result.json would pass for this run's. */
static void remove_stale(const char *task_dir, const char *heatmap) {
    const char *names[] = {"result.json", "accuracy_vs_cache_ratio.svg"};
    for (size_t i = 0; i < 2; i++) {
        char *p = path2(task_dir, names[i]);
        if (p) unlink(p);
        free(p);
    }
    if (heatmap) {
        char name[600];
        snprintf(name, sizeof name, "heatmap_%s.svg", heatmap);
        char *p = path2(task_dir, name);
        if (p) unlink(p);
        free(p);
    }
}

static int needle_eval(int argc, char **argv) {
    const char *save_dir = NULL, *only_task = NULL, *heatmap = NULL;
    bool plots = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            eval_help();
            return 0;
        } else if (!strcmp(a, "--save-dir")) {
            if (!cli_take_value(argc, argv, &i, &save_dir)) return 2;
        } else if (!strcmp(a, "--task")) {
            if (!cli_take_value(argc, argv, &i, &only_task)) return 2;
        } else if (!strcmp(a, "--heatmap")) {
            if (!cli_take_value(argc, argv, &i, &heatmap)) return 2;
        } else if (!strcmp(a, "--no-plots")) {
            plots = false;
        } else {
            return cli_usage_error("needle eval", "unknown flag '%s'", a);
        }
    }
    if (!save_dir) return cli_usage_error("needle eval", "--save-dir DIR is required");
    kvev_task_scores *tasks = NULL;
    size_t nt = 0;
    kvp_error err = {0};
    /* Everything is scored before anything is written. */
    if (kvev_needle_scan(save_dir, &tasks, &nt, &err)) {
        int rc = cli_lib_error(&err);
        DIR *d = opendir(save_dir);
        for (struct dirent *e; d && (e = readdir(d));) {
            if (e->d_name[0] == '.' || (only_task && strcmp(e->d_name, only_task))) continue;
            char *td = path2(save_dir, e->d_name);
            if (td) remove_stale(td, heatmap);
            free(td);
        }
        if (d) closedir(d);
        return rc;
    }
    int rc = 0;
    bool bad_experiment = false; /* scored -1 for a malformed file: exit 1 */
    size_t used = 0;
    for (size_t t = 0; t < nt; t++) used += !only_task || !strcmp(tasks[t].name, only_task);
    if (used == 0) {
        rc = only_task ? cli_error("--task: no task folder '%s' with experiment folders under %s",
                                   only_task, save_dir)
                       : cli_error("--save-dir: no <task>/<experiment>/ folders under %s",
                                   save_dir);
        goto out;
    }
    if (heatmap) {
        bool found = false;
        for (size_t t = 0; t < nt; t++)
            for (size_t e = 0; e < tasks[t].n; e++)
                found |= (!only_task || !strcmp(tasks[t].name, only_task)) &&
                         !strcmp(tasks[t].exps[e].name, heatmap) && tasks[t].exps[e].score >= 0;
        if (!found) {
            rc = cli_error("--heatmap: no experiment folder '%s' with a pred.jsonl", heatmap);
            goto out;
        }
    }
    for (size_t t = 0; t < nt && rc == 0; t++) {
        const kvev_task_scores *ts = &tasks[t];
        if (only_task && strcmp(ts->name, only_task)) continue;
        for (size_t e = 0; e < ts->n; e++) {
            const kvev_exp_score *x = &ts->exps[e];
            if (x->torn_line)
                cli_warn("%s/%s/pred.jsonl:%zu: a torn last line (a killed run?) is ignored; "
                         "'needle pred' drops it when it resumes",
                         ts->dir, x->name, x->torn_line);
            if (x->error) {
                cli_error("%s: %s (scored -1)", x->name, x->error);
                bad_experiment = true;
            }
        }
        if (kvev_needle_write_result(ts, &err)) {
            rc = cli_lib_error(&err);
            remove_stale(ts->dir, heatmap);
            break;
        }
        char *table = kvev_needle_table(ts);
        if (table) printf("%s\n", table);
        free(table);
        char *rp = path2(ts->dir, "result.json");
        if (!rp) {
            rc = 1;
            break;
        }
        printf("result: %s\n", rp);
        free(rp);
        if (!plots) continue;
        char *pp = path2(ts->dir, "accuracy_vs_cache_ratio.svg");
        if (!pp) {
            rc = 1;
            break;
        }
        if (kvev_needle_plot_ratio(ts, pp, &err)) {
            rc = cli_lib_error(&err);
            free(pp);
            remove_stale(ts->dir, heatmap);
            break;
        }
        printf("plot: %s\n", pp);
        free(pp);
        if (heatmap) {
            for (size_t e = 0; e < ts->n; e++) {
                if (strcmp(ts->exps[e].name, heatmap) || ts->exps[e].score < 0) continue;
                char *ed = path2(ts->dir, heatmap);
                char *pred = ed ? path2(ed, "pred.jsonl") : NULL;
                size_t hn = strlen(heatmap) + 16;
                char *hname = malloc(hn);
                if (hname) snprintf(hname, hn, "heatmap_%s.svg", heatmap);
                char *hp = hname ? path2(ts->dir, hname) : NULL;
                if (!ed || !pred || !hname || !hp) {
                    if (ed && pred && !hname) cli_error("out of memory");
                    free(ed), free(pred), free(hname), free(hp);
                    rc = 1;
                    break;
                }
                char title[512];
                snprintf(title, sizeof title, "Needle accuracy by depth and length: %s, %s",
                         ts->name, heatmap);
                if (kvev_needle_plot_heatmap(pred, title, hp, &err)) {
                    rc = cli_lib_error(&err);
                    unlink(hp);
                } else
                    printf("heatmap: %s\n", hp);
                free(ed), free(pred), free(hname), free(hp);
            }
        }
    }
out:
    kvev_task_scores_free(tasks, nt);
    if (rc == 0 && bad_experiment) rc = 1;
    return rc;
}

/* ----------------------------------------------------------------------- */

int cmd_needle(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        printf("usage: kvprune needle gen|pred|eval [options]\n\n"
               "  gen   write needle-in-a-haystack data (RULER jsonl)\n"
               "  pred  run a model over it for methods x cache ratios (resumable)\n"
               "  eval  score predictions (string_match_all), result.json, table, plots\n\n"
               "'kvprune needle <sub> --help' lists the options.\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "gen")) {
        cli_set_command("needle gen");
        return needle_gen(argc - 1, argv + 1);
    }
    if (!strcmp(argv[1], "pred")) {
        cli_set_command("needle pred");
        return needle_pred(argc - 1, argv + 1);
    }
    if (!strcmp(argv[1], "eval")) {
        cli_set_command("needle eval");
        return needle_eval(argc - 1, argv + 1);
    }
    return cli_usage_error("needle", "unknown subcommand '%s' (gen, pred or eval)", argv[1]);
}
