/* kvprune longbench pred | eval | prompt: LongBench predictions over a sweep
 * of cache methods and budgets (one model load), and the official scores. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "eval_flags.h"
#include "kvprune_eval/jsonl.h"
#include "kvprune_eval/lb_cut.h"
#include "kvprune_eval/longbench.h"

/* --------------------------------------------------------------- pred --- */

static void on_progress(void *user, const kvlb_progress *p) {
    char what[256];
    snprintf(what, sizeof what, "%s %s-%s", p->experiment, p->dataset, p->method);
    cli_progress_report(user, "longbench pred", what, p->done, p->total, p->elapsed_s);
}

static const char *base_name(const char *path, char *buf, size_t size) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/') b--;
    size_t l = n - b;
    if (l > 5 && !strncmp(path + b + l - 5, ".gguf", 5)) l -= 5;
    snprintf(buf, size, "%.*s", (int)l, path + b);
    return buf;
}

/* --postprocess: auto resolves from the model name after parsing. */
enum { POST_AUTO = -1 };
static const cli_enum_value postprocessors[] = {{"auto", POST_AUTO},
                                                {"none", KVLB_POST_NONE},
                                                {"llama3", KVLB_POST_LLAMA3},
                                                {"xgen", KVLB_POST_XGEN},
                                                {"internlm", KVLB_POST_INTERNLM},
                                                {NULL, 0}};

static const char pred_about[] =
    "Runs LongBench's prediction (pred.py): for every dataset, the prompt from\n"
    "dataset2prompt.json, max_gen from dataset2maxlen.json, max_length from\n"
    "model2maxlen.json[--model-name] (or --max-length), prompts longer than\n"
    "max_length tokens cut in the middle, the chat template except for trec,\n"
    "triviaqa, samsum, lsht, lcc and repobench-p, greedy decoding, the cache reset\n"
    "per sample. Writes DIR/pred/<exp>/<dataset>-<method>.jsonl (--e:\n"
    "DIR/pred_e/...), rows {pred, answers, all_classes, length}, where <exp> is\n"
    "<name>-full, <name>[-no_decode_evict]-<heavy>+<recent> (budget ratios with\n"
    "4 decimals) or the same with --num-heavy/--num-recent token counts.\n"
    "Resumable: a rerun continues each file where it stopped (a torn last line\n"
    "from a killed run is dropped first).\n";

static int lb_pred(int argc, char **argv) {
    kvlb_pred_params p;
    kvlb_pred_default_params(&p);
    const char *model_path = NULL;
    int post = POST_AUTO, threads = 0;
    bool quiet = false;
    int rc = 2;
    char name_buf[256];
    const char **methods = NULL, **tasks = NULL;
    size_t n_methods = 0, n_tasks = 0, n_ratios = 0;
    double *ratios = NULL;
    cli_shard shard = {p.shard_index, p.shard_count};
    kvp_model *model = NULL;
    kvp_error err = {0};
    const cli_option own[] = {
        CLI_OPT_STRING("-m|--model", "MODEL", &model_path, "GGUF file or Hugging Face folder (loaded once)",
                       .required = true),
        CLI_OPT_STRING("--data-dir", "DIR", &p.data_dir, "LongBench's <dataset>.jsonl files (<dataset>_e.jsonl)",
                       .required = true),
        CLI_OPT_STRING("--config-dir", "DIR", &p.config_dir,
                       "dataset2prompt.json, dataset2maxlen.json, model2maxlen.json", .required = true),
        CLI_OPT_STRING("--save-dir", "DIR", &p.save_dir, "output root", .required = true),
        CLI_OPT_STRING("--model-name", "NAME", &p.model_name, "config key and folder prefix",
                       .deflt = "the model file or folder name"),
        CLI_OPT_INT("--max-length", "N", &p.max_length, 2, 1 << 24, "prompt tokens kept",
                    .deflt = "model2maxlen[NAME]"),
        CLI_OPT_LIST_STRING("--task", "T,...", &tasks, &n_tasks, NULL, "datasets",
                            .deflt = "LongBench's 21, LongBench-E's 13"),
        CLI_OPT_FLAG("--e", &p.e, "LongBench-E: <dataset>_e.jsonl -> DIR/pred_e/"),
        CLI_OPT_LIST_STRING("--method", "M,...", &methods, &n_methods, cli_check_method,
                            "full and/or pruning methods (see 'kvprune generate --help')", .required = true),
        CLI_OPT_LIST_FLOAT("--cache-ratio", "R,...", &ratios, &n_ratios, -1e300, 1e300,
                           "budget per ratio r: recent = round(0.05 r, 4), heavy = round(0.95 r, 4) "
                           "of the prompt"),
        CLI_OPT_INT("--num-recent", "N", &p.num_recent, 0, 1 << 30, "absolute budget instead (with --num-heavy)",
                    .deflt = ""),
        CLI_OPT_INT("--num-heavy", "N", &p.num_heavy, 0, 1 << 30, "absolute budget instead (with --num-recent)",
                    .deflt = ""),
        CLI_OPT_FLAG("--no-decode-evict", &p.no_decode_evict, "evict only after the prompt"),
        CLI_OPT_REJECT("--recent-ratio|--heavy-ratio",
                       "the budgets are --cache-ratio (the seed's 5%/95% split) or --num-recent/--num-heavy"),
        CLI_OPT_ENUM("--postprocess", &post, postprocessors,
                     "response clean-up; auto takes it from --model-name (llama-3 -> llama3, xgen, "
                     "internlm, else none)",
                     .meta = "P"),
        CLI_OPT_CUSTOM("--shard", "I/N", &shard, cli_parse_shard,
                       "this job's block of samples of every file (0-based); writes "
                       "<file>.part-I-of-N; a later run without --shard merges the parts and fills "
                       "any gap"),
        CLI_OPT_INT("--threads", "N", &threads, 1, 1024, "threads", .deflt = "all cores"),
        CLI_OPT_FLAG("--quiet", &quiet, "no progress output"),
    };
    cli_option prompt_opts[CLI_PROMPT_MAX_OPTIONS], cache_opts[CLI_CACHE_MAX_OPTIONS];
    const cli_group groups[] = {
        {NULL, own, CLI_COUNT(own)},
        {"Prompt options", prompt_opts, cli_prompt_options(&p.prompt, prompt_opts)},
        {"Cache options", cache_opts, cli_cache_options(&p.base, CLI_CACHE_STORAGE, cache_opts)},
    };
    const cli_command cmd = {"longbench pred",
                             "-m MODEL --data-dir DIR --config-dir DIR\n"
                             "                              --save-dir DIR --method M,... [options]",
                             pred_about, groups, CLI_COUNT(groups), NULL};
    rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0) goto out;
    rc = 2;
    p.shard_index = shard.index;
    p.shard_count = shard.count;
    if (!p.model_name) p.model_name = base_name(model_path, name_buf, sizeof name_buf);
    p.post = post == POST_AUTO ? kvlb_postprocess_for(p.model_name) : (kvlb_postprocess)post;
    p.methods = methods;
    p.n_methods = n_methods;
    p.ratios = ratios;
    p.n_ratios = n_ratios;
    p.datasets = tasks;
    p.n_datasets = n_tasks;
    p.n_threads = (int)threads;
    rc = 1;
    kvp_model_params mp = kvp_model_default_params();
    mp.n_threads = (int)threads;
    if (kvp_model_load(model_path, &mp, &model, &err)) {
        rc = cli_eval_error(&err);
        goto out;
    }
    cli_progress pc = {isatty(2) != 0, quiet, 0, 0};
    p.on_progress = on_progress;
    p.user = &pc;
    /* Ctrl-C: stop after the current token (as needle pred) */
    p.stop = &cli_stop;
    kvlb_pred_summary sum;
    cli_interrupt_arm(CLI_INTERRUPT_ONCE);
    kvp_status st = kvlb_pred(model, &p, &sum, &err);
    cli_interrupt_disarm();
    if (st != KVP_OK) {
        rc = cli_progress_failed(&pc, &err);
        goto out;
    }
    if (sum.torn_lines)
        cli_warn("dropped %zu torn last line(s) left by a killed run", sum.torn_lines);
    if (sum.interrupted) {
        rc = cli_progress_interrupted(&pc, sum.generated + sum.merged, sum.skipped);
        goto out;
    }
    printf("longbench pred: %zu datasets (%zu samples) x %zu experiment/method pairs = %zu "
           "files, max_length %d, shard %d/%d: %zu generated (%zu prompts cut in the middle), "
           "%zu already done, %zu merged from shard parts\n", sum.n_datasets, sum.n_samples,
           sum.n_exps, sum.n_files, sum.max_length, p.shard_index, p.shard_count, sum.generated,
           sum.truncated, sum.skipped, sum.merged);
    rc = 0;
out:
    kvp_model_free(model);
    free(methods);
    free(tasks);
    free(ratios);
    return rc;
}

/* --------------------------------------------------------------- eval --- */

static int lb_eval(int argc, char **argv) {
    kvlb_eval_params p = {0};
    const char *jieba_dir = NULL;
    const cli_option own[] = {
        CLI_OPT_STRING("--save-dir", "DIR", &p.save_dir, "the folder 'kvprune longbench pred' wrote",
                       .required = true),
        CLI_OPT_STRING("--model-name", "NAME", &p.model_name, "an experiment folder, or the prefix of several",
                       .required = true),
        CLI_OPT_FLAG("--e", &p.e, "LongBench-E (pred_e/, length buckets)"),
        CLI_OPT_STRING("--jieba-dir", "DIR", &jieba_dir,
                       "jieba's dict.txt and finalseg tables for the Chinese datasets",
                       .deflt = "python3-jieba's, when installed"),
        CLI_OPT_FLAG("--rouge-exact", &p.rouge_exact,
                     "true ROUGE-L for long sentences (default: 0.0 where the rouge package hits "
                     "Python's recursion limit, as the official scores do)"),
    };
    const cli_group groups[] = {{NULL, own, CLI_COUNT(own)}};
    const cli_command cmd = {
        "longbench eval", "--save-dir DIR --model-name NAME [--e]",
        "Scores DIR/pred/<exp>/*.jsonl (--e: DIR/pred_e/) like LongBench's eval.py:\n"
        "<exp> is NAME itself when such a folder exists, else every NAME-* folder.\n"
        "Writes <exp>/result.json (file name -> score, or with --e the buckets\n"
        "0-4k/4-8k/8k+ by `length`) and prints datasets x experiments with the\n"
        "average per column. A file with no rows (or a bad one) is reported and\n"
        "skipped.\n",
        groups, CLI_COUNT(groups), NULL};
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    kvp_error err = {0}, jerr = {0};
    kvlb_cutter *cutter = NULL;
    if (kvlb_cutter_default(jieba_dir, &cutter, &jerr) != KVP_OK && jieba_dir)
        return cli_eval_error(&jerr);
    p.cutter = cutter;
    kvlb_exp_scores *ex = NULL;
    size_t n = 0;
    int rc = 0;
    if (kvlb_eval_scan(&p, &ex, &n, &err) != KVP_OK) {
        rc = cli_eval_error(&err);
        goto out;
    }
    size_t zh_skipped = 0;
    for (size_t i = 0; i < n; i++) {
        if (ex[i].n_parts)
            fprintf(stderr, "kvprune longbench eval: %s: %zu shard part file(s) not merged yet "
                            "(run 'longbench pred' without --shard to merge them)\n",
                    ex[i].name, ex[i].n_parts);
        for (size_t k = 0; k < ex[i].n; k++) {
            const kvlb_file_score *f = &ex[i].files[k];
            if (!f->note) continue;
            if (!f->scored && !cutter && strstr(f->note, "jieba's dictionary")) {
                zh_skipped++;
                continue;
            }
            fprintf(stderr, "kvprune longbench eval: %s/%s: %s%s\n", ex[i].name, f->file,
                    f->scored ? "" : "not scored: ", f->note);
        }
        if (kvlb_eval_write_result(&ex[i], p.e, &err) != KVP_OK) {
            rc = cli_eval_error(&err);
            goto out;
        }
    }
    if (zh_skipped)
        fprintf(stderr, "kvprune longbench eval: %zu Chinese dataset file(s) not scored: %s\n",
                zh_skipped, jerr.message);
    char *table = kvlb_eval_table(ex, n, p.e);
    if (table) fputs(table, stdout);
    free(table);
    for (size_t i = 0; i < n; i++) printf("result: %s/result.json\n", ex[i].dir);
out:
    kvlb_exp_scores_free(ex, n);
    kvlb_cutter_free(cutter);
    return rc;
}

/* ------------------------------------------------------------- prompt --- */

static int lb_prompt(int argc, char **argv) {
    const char *model = NULL, *tok_path = NULL, *data_dir = NULL, *config_dir = NULL;
    const char *task = NULL, *model_name = NULL;
    int64_t index = 0;
    int max_length = 0;
    bool e = false;
    const cli_option own[] = {
        CLI_OPT_STRING("-m|--model", "MODEL", &model, "model (GGUF or HF folder); only its tokenizer is loaded"),
        CLI_OPT_STRING("--tokenizer", "PATH", &tok_path, "tokenizer.json, a folder holding one, or a GGUF file"),
        CLI_OPT_STRING("--data-dir", "DIR", &data_dir, "LongBench's <dataset>.jsonl files", .required = true),
        CLI_OPT_STRING("--config-dir", "DIR", &config_dir, "dataset2prompt.json, dataset2maxlen.json, model2maxlen.json",
                       .required = true),
        CLI_OPT_STRING("--task", "T", &task, "the dataset", .required = true),
        CLI_OPT_INT("--index", "I", &index, 0, 1LL << 40, "the sample: line I (0-based) of <T>.jsonl"),
        CLI_OPT_STRING("--model-name", "NAME", &model_name, "config key (as in 'longbench pred')",
                       .deflt = "the model file or folder name"),
        CLI_OPT_INT("--max-length", "N", &max_length, 2, 1 << 24, "prompt tokens kept",
                    .deflt = "model2maxlen[NAME]"),
        CLI_OPT_FLAG("--e", &e, "LongBench-E: <T>_e.jsonl"),
    };
    const cli_group groups[] = {{NULL, own, CLI_COUNT(own)}};
    const cli_command cmd = {
        "longbench prompt",
        "(-m MODEL | --tokenizer PATH) --data-dir DIR\n"
        "                                --config-dir DIR --task T [--index I] [options]",
        "Prints the prompt 'longbench pred' feeds for one sample (line I, 0-based, of\n"
        "<T>.jsonl): dataset2prompt filled in and cut in the middle to max_length\n"
        "tokens, before the chat template; stderr says whether the dataset uses the\n"
        "chat template and max_gen.\n",
        groups, CLI_COUNT(groups), NULL};
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    if (!model == !tok_path) return cli_usage_error("longbench prompt", "give one of -m MODEL or --tokenizer PATH");
    char name_buf[256];
    if (!model_name) model_name = base_name(model ? model : tok_path, name_buf, sizeof name_buf);
    kvp_error err = {0};
    kvlb_config cfg;
    kvp_tokenizer *tok = NULL;
    kvev_jsonl j = {0};
    char *path = NULL, *prompt = NULL, *cut = NULL;
    int rc = 1, ml = max_length, max_gen = 0;
    if (kvlb_config_load(config_dir, &cfg, &err)) return cli_eval_error(&err);
    if (!kvlb_dataset_known(task)) {
        rc = cli_error("--task: unknown dataset '%s'", task);
        goto out;
    }
    json_t *t = json_object_get(cfg.prompt, task), *mg = json_object_get(cfg.maxlen, task);
    if (!json_is_string(t) || !json_is_integer(mg)) {
        rc = cli_error("%s: no prompt or max length for '%s'", config_dir, task);
        goto out;
    }
    max_gen = (int)json_integer_value(mg);
    if (ml <= 0 && kvlb_config_max_length(&cfg, model_name, &ml, &err)) {
        rc = cli_eval_error(&err);
        goto out;
    }
    size_t pl = strlen(data_dir) + strlen(task) + 16;
    path = malloc(pl);
    snprintf(path, pl, "%s/%s%s.jsonl", data_dir, task, e ? "_e" : "");
    if (kvev_jsonl_read(path, &j, &err) || kvp_tokenizer_load(model ? model : tok_path, &tok, &err)) {
        rc = cli_eval_error(&err);
        goto out;
    }
    if ((size_t)index >= j.n) {
        rc = cli_error("--index: %lld, but %s has %zu samples", (long long)index, path, j.n);
        goto out;
    }
    size_t n_tok = 0;
    if (kvlb_format_prompt(json_string_value(t), j.items[index].value, &prompt, &err) ||
        kvlb_truncate_middle(tok, prompt, ml, &cut, &n_tok, &err)) {
        rc = cli_eval_error(&err);
        goto out;
    }
    fputs(cut, stdout);
    fprintf(stderr, "%s line %zu: %zu tokens%s (max_length %d), chat template: %s, max_gen %d\n",
            path, j.items[index].line, n_tok, n_tok > (size_t)ml ? ", cut in the middle" : "", ml,
            kvlb_dataset_no_chat(task) ? "no" : "yes", max_gen);
    rc = 0;
out:
    free(prompt);
    free(cut);
    free(path);
    kvev_jsonl_free(&j);
    kvp_tokenizer_free(tok);
    kvlb_config_free(&cfg);
    return rc;
}

int cmd_longbench(int argc, char **argv) {
    static const cli_subcommand subs[] = {
        {"pred", lb_pred, "LongBench predictions for methods x budgets (resumable, sharded)"},
        {"eval", lb_eval, "the official scores: result.json per experiment and a table"},
        {"prompt", lb_prompt, "print the prompt of one sample as pred builds it"},
    };
    return cli_dispatch("longbench", subs, CLI_COUNT(subs), argc, argv);
}
