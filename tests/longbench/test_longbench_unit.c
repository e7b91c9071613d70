/* LongBench pieces with exact expectations from the reference semantics:
 * Python's str.format for the prompts, pred.py's post_process per model
 * family (and the seed's Llama-3 rule), the seed's experiment names and
 * ratio split (round(0.05 r, 4), round(0.95 r, 4) as Python computes them),
 * and the datasets' metrics and first-line rule. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvprune_eval/longbench.h"
#include "kvprune_eval/metrics.h"
#include "test_util.h"

static void check_format(const char *tmpl, const char *fields, const char *want) {
    json_t *f = json_loads(fields, 0, NULL);
    char *out = NULL;
    kvp_error err;
    kvp_status st = kvlb_format_prompt(tmpl, f, &out, &err);
    if (want) {
        CHECK_MSG(st == KVP_OK, "%s: %s", tmpl, err.message);
        if (st == KVP_OK) CHECK_STR(out, want);
    } else {
        CHECK_MSG(st != KVP_OK, "%s should fail", tmpl);
    }
    free(out);
    json_decref(f);
}

static void check_post(kvlb_postprocess pp, const char *in, const char *want) {
    char *s = strdup(in);
    size_t n = kvlb_postprocess_apply(pp, s, strlen(s));
    CHECK_EQ_INT(n, strlen(want));
    CHECK_STR(s, want);
    free(s);
}

static void check_exp(bool full, bool nde, bool absolute, double r_or_heavy, double recent,
                      const char *want) {
    char buf[256];
    double heavy = r_or_heavy;
    if (!full && !absolute) { /* the seed's split of a cache ratio */
        heavy = kvev_py_round(0.95 * r_or_heavy, 4);
        recent = kvev_py_round(0.05 * r_or_heavy, 4);
    }
    kvlb_exp_name("Llama-3-8B-Instruct-8k", full, nde, absolute, heavy, recent, buf, sizeof buf);
    CHECK_STR(buf, want);
}

int main(void) {
    /* str.format(**fields) */
    check_format("a{x}b{{c}}{y}", "{\"x\": \"1\", \"y\": 2}", "a1b{c}2");
    check_format("{context}{input}", "{\"context\": \"C\", \"input\": \"\"}", "C");
    check_format("{context}", "{\"context\": \"\\u6bb5\\u843d\"}", "段落");
    check_format("{missing}", "{\"x\": \"1\"}", NULL);
    check_format("{x", "{\"x\": \"1\"}", NULL);
    check_format("x}", "{\"x\": \"1\"}", NULL);
    check_format("{x}", "{\"x\": [1]}", NULL);

    /* post-processing */
    check_post(KVLB_POST_LLAMA3, "Paris.assistant\n\nmore", "Paris");
    check_post(KVLB_POST_LLAMA3, "  42\n\nQuestion: next", "42");
    check_post(KVLB_POST_LLAMA3, "a</s>b", "a");
    check_post(KVLB_POST_XGEN, "  Assistant: hi Assistant:\n", " hi ");
    check_post(KVLB_POST_INTERNLM, "ans<eoa>rest<eoa>", "ans");
    check_post(KVLB_POST_NONE, " keep.assistant ", " keep.assistant ");
    CHECK(kvlb_postprocess_for("Llama-3-8B-Instruct-8k") == KVLB_POST_LLAMA3);
    CHECK(kvlb_postprocess_for("Llama-3.1-8B-Instruct-128k") == KVLB_POST_LLAMA3);
    CHECK(kvlb_postprocess_for("meta-llama3") == KVLB_POST_LLAMA3);
    CHECK(kvlb_postprocess_for("xgen-7b-8k") == KVLB_POST_XGEN);
    CHECK(kvlb_postprocess_for("internlm-7b-8k") == KVLB_POST_INTERNLM);
    CHECK(kvlb_postprocess_for("Llama-2-7b-chat-4k") == KVLB_POST_NONE);
    CHECK(kvlb_postprocess_for("kvp-mini") == KVLB_POST_NONE);

    /* Experiment folders. Python: round(0.95 * 0.02, 4) = 0.019,
     * round(0.05 * 0.02, 4) = 0.001, round(0.95 * 0.3, 4) = 0.285,
     * round(0.05 * 0.3, 4) = 0.015, round(0.95 * 0.05, 4) = 0.0475. */
    check_exp(true, true, false, 0, 0, "Llama-3-8B-Instruct-8k-full");
    check_exp(false, false, false, 0.1, 0, "Llama-3-8B-Instruct-8k-0.0950+0.0050");
    check_exp(false, true, false, 0.02, 0, "Llama-3-8B-Instruct-8k-no_decode_evict-0.0190+0.0010");
    check_exp(false, false, false, 0.05, 0, "Llama-3-8B-Instruct-8k-0.0475+0.0025");
    check_exp(false, false, false, 0.3, 0, "Llama-3-8B-Instruct-8k-0.2850+0.0150");
    check_exp(false, true, true, 480, 32, "Llama-3-8B-Instruct-8k-no_decode_evict-480+32");

    /* Datasets: metric table, chat and first-line rules, lists. */
    kvlb_metric m;
    CHECK(kvlb_dataset_metric("repobench-p", &m) && m == KVLB_CODE_SIM);
    CHECK(kvlb_dataset_metric("vcsum", &m) && m == KVLB_ROUGE_ZH);
    CHECK(kvlb_dataset_metric("lsht", &m) && m == KVLB_CLASSIFICATION);
    CHECK(!kvlb_dataset_metric("repobench", &m));
    CHECK(kvlb_dataset_no_chat("lcc") && kvlb_dataset_no_chat("samsum") &&
          !kvlb_dataset_no_chat("hotpotqa") && !kvlb_dataset_no_chat("passage_count"));
    CHECK(kvlb_dataset_first_line("trec") && !kvlb_dataset_first_line("lcc"));
    size_t n = 0, ne = 0;
    while (kvlb_datasets[n]) CHECK(kvlb_dataset_known(kvlb_datasets[n++]));
    while (kvlb_datasets_e[ne]) CHECK(kvlb_dataset_known(kvlb_datasets_e[ne++]));
    CHECK_EQ_INT(n, 21);
    CHECK_EQ_INT(ne, 13);
    size_t b, l;
    kvlb_first_line("\n\nType: Human\nmore", 18, &b, &l);
    CHECK_EQ_INT(b, 2);
    CHECK_EQ_INT(l, 11);
    return kvp_test_done("test_longbench_unit");
}
