/* kvprune longbench pred | eval | prompt: LongBench predictions over a sweep
 * of cache methods and budgets (one model load), and the official scores. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "eval/jsonl.h"
#include "eval/lb_cut.h"
#include "eval/longbench.h"

/* --------------------------------------------------------------- pred --- */

static void pred_help(void) {
    printf(
        "usage: kvprune longbench pred -m MODEL --data-dir DIR --config-dir DIR\n"
        "                              --save-dir DIR --method M,... [options]\n\n"
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
        "from a killed run is dropped first).\n\n"
        "  -m, --model PATH       GGUF file or Hugging Face folder (loaded once)\n"
        "  --data-dir DIR         LongBench's <dataset>.jsonl files (<dataset>_e.jsonl)\n"
        "  --config-dir DIR       dataset2prompt.json, dataset2maxlen.json,\n"
        "                         model2maxlen.json\n"
        "  --save-dir DIR         output root\n"
        "  --model-name NAME      config key and folder prefix (default: the model\n"
        "                         file or folder name)\n"
        "  --max-length N         prompt tokens kept (default model2maxlen[NAME])\n"
        "  --task T,...           datasets (default: LongBench's 21, LongBench-E's 13)\n"
        "  --e                    LongBench-E: <dataset>_e.jsonl -> DIR/pred_e/\n"
        "  --method M,...         full and/or pruning methods (see 'kvprune generate')\n"
        "  --cache-ratio R,...    budget per ratio r: recent = round(0.05 r, 4),\n"
        "                         heavy = round(0.95 r, 4) of the prompt\n"
        "  --num-recent N --num-heavy N   absolute budget instead\n"
        "  --no-decode-evict      evict only after the prompt\n"
        "  --chat-template NAME   llama2, llama3, llama3.1, chatml, mistral, kvp-mini\n"
        "                         (default: the model's own)\n"
        "  --system S             system message for the chat template\n"
        "  --no-chat              no chat template for any dataset (base models)\n"
        "  --postprocess P        auto (default: from --model-name: llama-3 -> llama3,\n"
        "                         xgen, internlm), none, llama3, xgen, internlm\n"
        "  --shard I/N            this job's block of samples of every file (0-based);\n"
        "                         writes <file>.part-I-of-N; a later run without\n"
        "                         --shard merges the parts and fills any gap\n"
        "  --threads N            threads (default: all cores)\n"
        "  --quiet                no progress output\n"
        "  --gqa-mode, --streaming, --cache-max-tokens   as in 'kvprune generate'\n");
}

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

static bool parse_shard(const char *v, int *si, int *sn) {
    int used = 0;
    if (sscanf(v, "%d/%d%n", si, sn, &used) != 2 || v[used] || *sn < 1 || *si < 0 || *si >= *sn) {
        cli_error("--shard: '%s' is not I/N with 0 <= I < N", v);
        return false;
    }
    return true;
}

static int lb_pred(int argc, char **argv) {
    kvlb_pred_params p;
    kvlb_pred_default_params(&p);
    const char *model_path = NULL, *methods_arg = NULL, *ratios_arg = NULL, *tasks_arg = NULL;
    const char *post_arg = "auto";
    long lv, threads = 0;
    bool quiet = false;
    int rc = 2;
    char *methods_copy = NULL, *tasks_copy = NULL, name_buf[256];
    const char **methods = NULL, **tasks = NULL;
    size_t n_methods = 0, n_tasks = 0, n_ratios = 0;
    double *ratios = NULL;
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
        } else if (!strcmp(a, "--data-dir")) {
            if (!cli_take_value(argc, argv, &i, &p.data_dir)) goto out;
        } else if (!strcmp(a, "--config-dir")) {
            if (!cli_take_value(argc, argv, &i, &p.config_dir)) goto out;
        } else if (!strcmp(a, "--save-dir")) {
            if (!cli_take_value(argc, argv, &i, &p.save_dir)) goto out;
        } else if (!strcmp(a, "--model-name")) {
            if (!cli_take_value(argc, argv, &i, &p.model_name)) goto out;
        } else if (!strcmp(a, "--max-length")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 2, 1 << 24, &lv))
                goto out;
            p.max_length = (int)lv;
        } else if (!strcmp(a, "--task")) {
            if (!cli_take_value(argc, argv, &i, &tasks_arg)) goto out;
        } else if (!strcmp(a, "--e")) {
            p.e = true;
        } else if (!strcmp(a, "--method")) {
            if (!cli_take_value(argc, argv, &i, &methods_arg)) goto out;
        } else if (!strcmp(a, "--cache-ratio")) {
            if (!cli_take_value(argc, argv, &i, &ratios_arg)) goto out;
        } else if (!strcmp(a, "--num-recent") || !strcmp(a, "--num-heavy")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 0, 1 << 30, &lv))
                goto out;
            if (a[6] == 'r')
                p.num_recent = (int)lv;
            else
                p.num_heavy = (int)lv;
        } else if (!strcmp(a, "--no-decode-evict")) {
            p.no_decode_evict = true;
        } else if (!strcmp(a, "--chat-template")) {
            if (!cli_take_value(argc, argv, &i, &p.prompt.chat_template)) goto out;
        } else if (!strcmp(a, "--system")) {
            if (!cli_take_value(argc, argv, &i, &p.prompt.system)) goto out;
        } else if (!strcmp(a, "--no-chat")) {
            p.prompt.no_chat = true;
        } else if (!strcmp(a, "--postprocess")) {
            if (!cli_take_value(argc, argv, &i, &post_arg)) goto out;
        } else if (!strcmp(a, "--shard")) {
            if (!cli_take_value(argc, argv, &i, &v) ||
                !parse_shard(v, &p.shard_index, &p.shard_count))
                goto out;
        } else if (!strcmp(a, "--threads")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 1, 1024, &threads))
                goto out;
        } else if (!strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "--recent-ratio") || !strcmp(a, "--heavy-ratio")) {
            rc = cli_usage_error("longbench pred", "%s: the budgets are --cache-ratio (the "
                                 "seed's 5%%/95%% split) or --num-recent/--num-heavy", a);
            goto out;
        } else {
            int r = cli_cache_flag(argc, argv, &i, &p.base);
            if (r < 0) goto out;
            if (r == 0) {
                rc = cli_usage_error("longbench pred", "unknown flag '%s'", a);
                goto out;
            }
        }
    }
    if (!model_path || !p.data_dir || !p.config_dir || !p.save_dir || !methods_arg) {
        rc = cli_usage_error("longbench pred", "-m MODEL, --data-dir, --config-dir, --save-dir "
                             "and --method are required");
        goto out;
    }
    if (!cli_split_list("--method", methods_arg, &methods_copy, &methods, &n_methods)) goto out;
    if (tasks_arg && !cli_split_list("--task", tasks_arg, &tasks_copy, &tasks, &n_tasks)) goto out;
    if (ratios_arg &&
        !cli_parse_double_list("--cache-ratio", ratios_arg, -1e300, 1e300, &ratios, &n_ratios))
        goto out;
    if (!p.model_name) p.model_name = base_name(model_path, name_buf, sizeof name_buf);
    if (!strcmp(post_arg, "auto")) {
        p.post = kvlb_postprocess_for(p.model_name);
    } else if (!kvlb_postprocess_parse(post_arg, &p.post)) {
        rc = cli_usage_error("longbench pred", "--postprocess: '%s' is not auto, none, llama3, "
                             "xgen or internlm", post_arg);
        goto out;
    }
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
        rc = cli_lib_error(&err);
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
        if (pc.tty && !quiet) fputc('\n', stderr);
        rc = cli_lib_error(&err);
        goto out;
    }
    if (sum.torn_lines)
        cli_warn("dropped %zu torn last line(s) left by a killed run", sum.torn_lines);
    if (sum.interrupted) {
        if (pc.tty && !quiet) fputc('\n', stderr);
        cli_error("interrupted: %zu samples written now, %zu earlier, all kept; run the same "
                  "command again to resume where it stopped", sum.generated + sum.merged,
                  sum.skipped);
        rc = 130;
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
    free(methods_copy);
    free(tasks);
    free(tasks_copy);
    free(ratios);
    return rc;
}

/* --------------------------------------------------------------- eval --- */

static void eval_help(void) {
    printf(
        "usage: kvprune longbench eval --save-dir DIR --model-name NAME [--e]\n\n"
        "Scores DIR/pred/<exp>/*.jsonl (--e: DIR/pred_e/) like LongBench's eval.py:\n"
        "<exp> is NAME itself when such a folder exists, else every NAME-* folder.\n"
        "Writes <exp>/result.json (file name -> score, or with --e the buckets\n"
        "0-4k/4-8k/8k+ by `length`) and prints datasets x experiments with the\n"
        "average per column. A file with no rows (or a bad one) is reported and\n"
        "skipped.\n\n"
        "  --save-dir DIR         the folder 'kvprune longbench pred' wrote\n"
        "  --model-name NAME      an experiment folder, or the prefix of several\n"
        "  --e                    LongBench-E (pred_e/, length buckets)\n"
        "  --jieba-dir DIR        jieba's dict.txt and finalseg tables for the Chinese\n"
        "                         datasets (default: python3-jieba's, when installed)\n"
        "  --rouge-exact          true ROUGE-L for long sentences (default: 0.0 where\n"
        "                         the rouge package hits Python's recursion limit,\n"
        "                         as the official scores do)\n");
}

static int lb_eval(int argc, char **argv) {
    kvlb_eval_params p = {0};
    const char *jieba_dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            eval_help();
            return 0;
        } else if (!strcmp(a, "--save-dir")) {
            if (!cli_take_value(argc, argv, &i, &p.save_dir)) return 2;
        } else if (!strcmp(a, "--model-name")) {
            if (!cli_take_value(argc, argv, &i, &p.model_name)) return 2;
        } else if (!strcmp(a, "--e")) {
            p.e = true;
        } else if (!strcmp(a, "--jieba-dir")) {
            if (!cli_take_value(argc, argv, &i, &jieba_dir)) return 2;
        } else if (!strcmp(a, "--rouge-exact")) {
            p.rouge_exact = true;
        } else {
            return cli_usage_error("longbench eval", "unknown flag '%s'", a);
        }
    }
    if (!p.save_dir || !p.model_name)
        return cli_usage_error("longbench eval", "--save-dir DIR and --model-name NAME are "
                               "required");
    kvp_error err = {0}, jerr = {0};
    kvlb_cutter *cutter = NULL;
    if (kvlb_cutter_default(jieba_dir, &cutter, &jerr) != KVP_OK && jieba_dir)
        return cli_lib_error(&jerr);
    p.cutter = cutter;
    kvlb_exp_scores *ex = NULL;
    size_t n = 0;
    int rc = 0;
    if (kvlb_eval_scan(&p, &ex, &n, &err) != KVP_OK) {
        rc = cli_lib_error(&err);
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
            if (!f->scored && !cutter && strstr(f->note, "--jieba-dir")) {
                zh_skipped++;
                continue;
            }
            fprintf(stderr, "kvprune longbench eval: %s/%s: %s%s\n", ex[i].name, f->file,
                    f->scored ? "" : "not scored: ", f->note);
        }
        if (kvlb_eval_write_result(&ex[i], p.e, &err) != KVP_OK) {
            rc = cli_lib_error(&err);
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

static void prompt_help(void) {
    printf(
        "usage: kvprune longbench prompt (-m MODEL | --tokenizer PATH) --data-dir DIR\n"
        "                                --config-dir DIR --task T [--index I] [options]\n\n"
        "Prints the prompt 'longbench pred' feeds for one sample (line I, 0-based, of\n"
        "<T>.jsonl): dataset2prompt filled in and cut in the middle to max_length\n"
        "tokens, before the chat template; stderr says whether the dataset uses the\n"
        "chat template and max_gen.\n\n"
        "  --model-name NAME / --max-length N / --e   as in 'longbench pred'\n");
}

static int lb_prompt(int argc, char **argv) {
    const char *model = NULL, *tok_path = NULL, *data_dir = NULL, *config_dir = NULL;
    const char *task = NULL, *model_name = NULL;
    long index = 0, max_length = 0;
    bool e = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            prompt_help();
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!cli_take_value(argc, argv, &i, &model)) return 2;
        } else if (!strcmp(a, "--tokenizer")) {
            if (!cli_take_value(argc, argv, &i, &tok_path)) return 2;
        } else if (!strcmp(a, "--data-dir")) {
            if (!cli_take_value(argc, argv, &i, &data_dir)) return 2;
        } else if (!strcmp(a, "--config-dir")) {
            if (!cli_take_value(argc, argv, &i, &config_dir)) return 2;
        } else if (!strcmp(a, "--task")) {
            if (!cli_take_value(argc, argv, &i, &task)) return 2;
        } else if (!strcmp(a, "--model-name")) {
            if (!cli_take_value(argc, argv, &i, &model_name)) return 2;
        } else if (!strcmp(a, "--index")) {
            if (!cli_take_value(argc, argv, &i, &v) || !cli_parse_int(a, v, 0, 1L << 40, &index))
                return 2;
        } else if (!strcmp(a, "--max-length")) {
            if (!cli_take_value(argc, argv, &i, &v) ||
                !cli_parse_int(a, v, 2, 1 << 24, &max_length))
                return 2;
        } else if (!strcmp(a, "--e")) {
            e = true;
        } else {
            return cli_usage_error("longbench prompt", "unknown flag '%s'", a);
        }
    }
    if (!model == !tok_path || !data_dir || !config_dir || !task)
        return cli_usage_error("longbench prompt", "one of -m/--tokenizer, --data-dir, "
                               "--config-dir and --task are required");
    char name_buf[256];
    if (!model_name) model_name = base_name(model ? model : tok_path, name_buf, sizeof name_buf);
    kvp_error err = {0};
    kvlb_config cfg;
    kvp_tokenizer *tok = NULL;
    kvev_jsonl j = {0};
    char *path = NULL, *prompt = NULL, *cut = NULL;
    int rc = 1, ml = (int)max_length, max_gen = 0;
    if (kvlb_config_load(config_dir, &cfg, &err)) return cli_lib_error(&err);
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
        rc = cli_lib_error(&err);
        goto out;
    }
    size_t pl = strlen(data_dir) + strlen(task) + 16;
    path = malloc(pl);
    snprintf(path, pl, "%s/%s%s.jsonl", data_dir, task, e ? "_e" : "");
    if (kvev_jsonl_read(path, &j, &err) || kvp_tokenizer_load(model ? model : tok_path, &tok, &err)) {
        rc = cli_lib_error(&err);
        goto out;
    }
    if ((size_t)index >= j.n) {
        rc = cli_error("--index: %ld, but %s has %zu samples", index, path, j.n);
        goto out;
    }
    size_t n_tok = 0;
    if (kvlb_format_prompt(json_string_value(t), j.items[index].value, &prompt, &err) ||
        kvlb_truncate_middle(tok, prompt, ml, &cut, &n_tok, &err)) {
        rc = cli_lib_error(&err);
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
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        printf("usage: kvprune longbench pred|eval|prompt [options]\n\n"
               "  pred    LongBench predictions for methods x budgets (resumable, sharded)\n"
               "  eval    the official scores: result.json per experiment and a table\n"
               "  prompt  print the prompt of one sample as pred builds it\n\n"
               "'kvprune longbench <sub> --help' lists the options.\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "pred")) {
        cli_set_command("longbench pred");
        return lb_pred(argc - 1, argv + 1);
    }
    if (!strcmp(argv[1], "eval")) {
        cli_set_command("longbench eval");
        return lb_eval(argc - 1, argv + 1);
    }
    if (!strcmp(argv[1], "prompt")) {
        cli_set_command("longbench prompt");
        return lb_prompt(argc - 1, argv + 1);
    }
    return cli_usage_error("longbench", "unknown subcommand '%s' (pred, eval or prompt)", argv[1]);
}
