/* kvprune needle gen | pred | eval: needle-in-a-haystack data, predictions
 * over a sweep of cache methods and ratios, and scoring with plots. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "cli.h"
#include "eval_flags.h"
#include "kvprune_eval/jsonl.h"
#include "kvprune_eval/needle_eval.h"
#include "kvprune_eval/needle_gen.h"
#include "kvprune_eval/needle_pred.h"
#include "kvprune_eval/plot_svg.h"

/* ---------------------------------------------------------------- gen --- */

static const cli_enum_value niah_variants[] = {{"single", KVP_NIAH_SINGLE},
                                               {"multikey", KVP_NIAH_MULTIKEY},
                                               {"multivalue", KVP_NIAH_MULTIVALUE},
                                               {"multiquery", KVP_NIAH_MULTIQUERY},
                                               {NULL, 0}};
_Static_assert(sizeof(kvev_niah_variant) == sizeof(int), "enum flags are int-sized");

/* Writes text to path through a temporary file (never a half file). */
static bool write_atomic(const char *path, const char *text, size_t len) {
    kvp_error err;
    if (kvev_write_file_atomic(path, text, len, &err) != KVP_OK) {
        cli_eval_error(&err);
        return false;
    }
    return true;
}

static int needle_gen(int argc, char **argv) {
    const char *model = NULL, *tok_path = NULL, *out_path = NULL, *hay_arg = "noise";
    const char *tmpl_path = NULL;
    kvev_niah_variant variant = KVP_NIAH_SINGLE;
    int num_needles = 3, samples = 4, num_depths = 5, max_new = 64;
    uint64_t seed = 42;
    int32_t *lens32 = NULL;
    size_t n_lens = 0, n_depths = 0;
    double *depths = NULL;
    kvev_prompt_style ps = {NULL, NULL, NULL, false};
    int rc = 2;
    kvp_tokenizer *tok = NULL;
    kvev_haystack hay = {0};
    kvev_niah_phrasing ph = {0};
    json_t *lines = NULL;
    int *lens = NULL;
    char *buf = NULL;
    kvp_error err = {0};
    const cli_option own[] = {
        CLI_OPT_STRING("-m|--model", "PATH", &model, "model (GGUF or HF folder); only its tokenizer is loaded"),
        CLI_OPT_STRING("--tokenizer", "PATH", &tok_path, "tokenizer.json, a folder holding one, or a GGUF file"),
        CLI_OPT_STRING("-o|--output", "FILE", &out_path, "the jsonl to write (replaced atomically)", .required = true),
        CLI_OPT_STRING("--haystack", "H", &hay_arg,
                       "noise (a repeated filler paragraph), a text file, or a folder of .txt files "
                       "(read in name order)"),
        CLI_OPT_ENUM("--variant", &variant, niah_variants, "the RULER task variant", .meta = "V"),
        CLI_OPT_INT("--num-needles", "N", &num_needles, 2, 64, "keys/values/queries of the multi variants"),
        CLI_OPT_LIST_INT("--lengths", "L,...", &lens32, &n_lens, 0, INT32_MAX,
                         "target lengths in model tokens, prompt with chat template + tokens to generate",
                         .deflt = "1024"),
        CLI_OPT_LIST_FLOAT("--depths", "D,...", &depths, &n_depths, 0, 100, "needle depths in percent",
                           .deflt = "--num-depths"),
        CLI_OPT_INT("--num-depths", "N", &num_depths, 1, 1000, "depths round(linspace(0, 100, N))"),
        CLI_OPT_INT("--samples", "N", &samples, 1, 1000000, "samples per (length, depth)"),
        CLI_OPT_UINT("--seed", "S", &seed, UINT64_MAX, "random seed; same seed, same file"),
        CLI_OPT_STRING("--template", "FILE", &tmpl_path,
                       "JSON with template / needle / answer_prefix (RULER's task files load as they are)",
                       .deflt = "our own wording"),
        CLI_OPT_INT("-n|--max-new-tokens", "N", &max_new, 0, 1 << 20, "tokens to generate, counted in the length"),
    };
    cli_option prompt_opts[CLI_PROMPT_MAX_OPTIONS];
    const cli_group groups[] = {
        {NULL, own, CLI_COUNT(own)},
        {"Prompt options", prompt_opts, cli_prompt_options(&ps, prompt_opts)},
    };
    const cli_command cmd = {
        "needle gen", "(-m MODEL | --tokenizer PATH) -o FILE [options]",
        "Writes RULER-style jsonl: index, input, outputs, length, length_w_model_temp,\n"
        "answer_prefix, others {depth, depths, target_length, variant, haystack, query}.\n",
        groups, CLI_COUNT(groups), NULL};
    rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0) goto out;
    rc = 2;
    if (!model == !tok_path) {
        rc = cli_usage_error("needle gen", "give one of -m MODEL or --tokenizer PATH");
        goto out;
    }
    rc = 1;
    if (kvp_tokenizer_load(model ? model : tok_path, &tok, &err)) {
        rc = cli_eval_error(&err);
        goto out;
    }
    if (!strcmp(hay_arg, "noise") ? kvev_haystack_noise(&hay, &err)
                                  : kvev_haystack_load(hay_arg, &hay, &err)) {
        rc = cli_eval_error(&err);
        goto out;
    }
    if (tmpl_path ? kvev_niah_phrasing_load(tmpl_path, &ph, &err)
                  : kvev_niah_phrasing_default(&ph, &err)) {
        rc = cli_eval_error(&err);
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
        kvev_niah_depth_grid(num_depths, depths);
    }
    ps.tok = tok;
    kvev_niah_params p = {variant, num_needles, lens, n_lens, depths, n_depths, samples,
                         seed, max_new, !ps.no_chat};
    kvev_niah_stats stats;
    if (kvev_niah_generate(&p, &ph, &hay, kvev_prompt_measure, &ps, &lines, &stats, &err)) {
        rc = cli_eval_error(&err);
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
            rc = cli_eval_error(&err);
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

static void on_progress(void *user, const kvev_needle_progress *p) {
    char what[256];
    snprintf(what, sizeof what, "exp %zu/%zu %s", p->exp_index + 1, p->n_exps, p->experiment);
    cli_progress_report(user, "needle pred", what, p->done, p->total, p->elapsed_s);
}

static bool check_needle_method(const char *name, char *msg, size_t size) {
    if (kvev_needle_method_known(name)) return true;
    cli_unknown_method(name, msg, size);
    return false;
}

static bool check_alloc(const char *name, char *msg, size_t size) {
    kvev_alloc a;
    if (kvev_alloc_parse(name, &a)) return true;
    snprintf(msg, size, "'%s' is not uniform, adaptive, pyramid or adaptive+pyramid", name);
    return false;
}

static int needle_pred(int argc, char **argv) {
    kvev_needle_pred_params p;
    kvev_needle_pred_default_params(&p);
    kvp_model_params mp = kvp_model_default_params();
    const char *model_path = NULL;
    int threads = 0;
    bool quiet = false;
    int rc = 2;
    const char **methods = NULL;
    double *ratios = NULL;
    size_t n_methods = 0, n_ratios = 0, n_allocs = 0;
    const char **alloc_names = NULL;
    kvev_alloc *allocs = NULL;
    cli_shard shard = {p.shard_index, p.shard_count};
    kvp_model *model = NULL;
    kvp_error err = {0};
    const cli_option own[] = {
        CLI_OPT_STRING("-m|--model", "MODEL", &model_path, "GGUF file or Hugging Face folder (loaded once)",
                       .required = true),
        CLI_OPT_STRING("--data", "FILE", &p.data_path, "jsonl from 'kvprune needle gen' (or RULER)", .required = true),
        CLI_OPT_STRING("--save-dir", "DIR", &p.save_dir, "output root", .required = true),
        CLI_OPT_STRING("--task", "NAME", &p.task, "task folder", .deflt = "the data file name"),
        CLI_OPT_LIST_STRING("--method", "LIST", &methods, &n_methods, check_needle_method,
                            "comma-separated methods", .deflt = "full"),
        CLI_OPT_LIST_FLOAT("--cache-ratio", "LIST", &ratios, &n_ratios, 0, 1,
                           "comma-separated ratios in (0, 1] (pruning methods)", .open_min = true),
        CLI_OPT_LIST_STRING("--alloc", "LIST", &alloc_names, &n_allocs, check_alloc,
                            "budget allocations, one experiment each (pruning methods): uniform, "
                            "adaptive (head-adaptive), pyramid (layer-adaptive), adaptive+pyramid; "
                            "folders get \"-<alloc>\" appended (uniform: nothing)",
                            .deflt = "uniform"),
        CLI_OPT_REJECT("--budget-alloc|--layer-alloc",
                       "a sweep takes --alloc LIST (uniform, adaptive, pyramid, adaptive+pyramid), "
                       "one experiment each"),
        CLI_OPT_INT("--num-recent", "N", &p.num_recent, 0, 1 << 30,
                    "recent tokens always kept; the budget is int(prompt * ratio) tokens in all"),
        CLI_OPT_FLAG("--no-decode-evict", &p.no_decode_evict, "evict only after the prompt (the seed's published runs)"),
        CLI_OPT_REJECT("--num-heavy|--recent-ratio|--heavy-ratio", "needle budgets are --num-recent plus --cache-ratio"),
        CLI_OPT_INT("-n|--max-new-tokens", "N", &p.gen.max_new_tokens, 1, 1 << 20, "tokens to generate, greedy"),
        CLI_OPT_FLAG_OFF("--no-postprocess", &p.postprocess,
                         "keep responses as decoded (default: cut at \".assistant\", \"\\n\\nQuestion\", "
                         "\"</s>\", then strip)"),
        CLI_OPT_CUSTOM("--shard", "I/N", &shard, cli_parse_shard,
                       "run experiments k with k % N == I (0-based), so N machines can share one save dir"),
        CLI_OPT_INT("--threads", "N", &threads, 1, 1024, "threads", .deflt = "all cores"),
        CLI_OPT_FLAG("--quiet", &quiet, "no progress output"),
    };
    cli_option prompt_opts[CLI_PROMPT_MAX_OPTIONS], cache_opts[CLI_CACHE_MAX_OPTIONS],
        model_opts[CLI_MODEL_MAX_OPTIONS];
    const cli_group groups[] = {
        {NULL, own, CLI_COUNT(own)},
        {"Prompt options", prompt_opts, cli_prompt_options(&p.prompt, prompt_opts)},
        {"Cache options", cache_opts, cli_cache_options(&p.base, CLI_CACHE_STORAGE, cache_opts)},
        {"Matrix product options", model_opts, cli_model_options(&mp, model_opts)},
    };
    const cli_command cmd = {
        "needle pred", "-m MODEL --data FILE --save-dir DIR [options]",
        "Writes DIR/<task>/<method>-cr<ratio>[-no_decode_evict][-<alloc>]/pred.jsonl\n"
        "(the full cache: DIR/<task>/full/pred.jsonl), one line per sample: index,\n"
        "response, outputs, others, truncation, length. Resumable: a rerun skips the\n"
        "samples already written (a torn last line from a killed run is dropped first).\n",
        groups, CLI_COUNT(groups), NULL};
    rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0) goto out;
    rc = 2;
    p.shard_index = shard.index;
    p.shard_count = shard.count;
    static const char *const default_methods[] = {"full"};
    const char *const *mlist = methods ? methods : default_methods;
    if (!methods) n_methods = 1;
    bool pruned = false;
    for (size_t m = 0; m < n_methods; m++) pruned |= strcmp(mlist[m], "full") != 0;
    if (alloc_names) {
        allocs = calloc(n_allocs + 1, sizeof *allocs);
        if (!allocs) {
            rc = cli_error("out of memory");
            goto out;
        }
        for (size_t k = 0; k < n_allocs; k++) kvev_alloc_parse(alloc_names[k], &allocs[k]);
    }
    if (!pruned && alloc_names) cli_warn("the full cache keeps every token: --alloc is ignored");
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
    p.methods = mlist;
    p.n_methods = n_methods;
    p.ratios = ratios;
    p.n_ratios = n_ratios;
    p.allocs = allocs;
    p.n_allocs = n_allocs;
    mp.n_threads = (int)threads;
    if (kvp_model_load(model_path, &mp, &model, &err)) {
        rc = cli_eval_error(&err);
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
        rc = cli_progress_failed(&pc, &err);
        goto out;
    }
    if (sum.interrupted) {
        rc = cli_progress_interrupted(&pc, sum.generated, sum.skipped);
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
    free(ratios);
    free(allocs);
    free(alloc_names);
    return rc;
}

/* --------------------------------------------------------------- eval --- */

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
    const cli_option own[] = {
        CLI_OPT_STRING("--save-dir", "DIR", &save_dir, "the folder 'kvprune needle pred' wrote", .required = true),
        CLI_OPT_STRING("--task", "NAME", &only_task, "only this task"),
        CLI_OPT_STRING("--heatmap", "FOLDER", &heatmap,
                       "also DIR/<task>/heatmap_<FOLDER>.svg: accuracy by needle depth x context "
                       "length for that experiment"),
        CLI_OPT_FLAG_OFF("--no-plots", &plots, "write result.json and print the table only"),
    };
    const cli_group groups[] = {{NULL, own, CLI_COUNT(own)}};
    const cli_command cmd = {
        "needle eval", "--save-dir DIR [--heatmap FOLDER] [--no-plots]",
        "Scores every DIR/<task>/<experiment>/pred.jsonl with string_match_all\n"
        "(an experiment folder without pred.jsonl scores -1; a torn last line is\n"
        "ignored; incomplete experiments are marked), writes\n"
        "DIR/<task>/result.json, prints a table (methods x cache ratios, with an\n"
        "allocation column when the sweep has allocations) and writes\n"
        "DIR/<task>/accuracy_vs_cache_ratio.svg (with allocations: one panel per\n"
        "method, one line per allocation).\n",
        groups, CLI_COUNT(groups), NULL};
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    kvev_task_scores *tasks = NULL;
    size_t nt = 0;
    kvp_error err = {0};
    /* Everything is scored before anything is written. */
    if (kvev_needle_scan(save_dir, &tasks, &nt, &err)) {
        int rc = cli_eval_error(&err);
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
            rc = cli_eval_error(&err);
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
            rc = cli_eval_error(&err);
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
                    rc = cli_eval_error(&err);
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
    static const cli_subcommand subs[] = {
        {"gen", needle_gen, "write needle-in-a-haystack data (RULER jsonl)"},
        {"pred", needle_pred, "run a model over it for methods x cache ratios (resumable)"},
        {"eval", needle_eval, "score predictions (string_match_all), result.json, table, plots"},
    };
    return cli_dispatch("needle", subs, CLI_COUNT(subs), argc, argv);
}
