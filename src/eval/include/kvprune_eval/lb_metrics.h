/* LongBench's scoring functions (THUDM/LongBench metrics.py as the seed's
 * eval.py calls them), with Python 3's string semantics: full Unicode
 * lowercasing, Unicode whitespace and \d / \b, ASCII string.punctuation. */
#ifndef KVP_EVAL_LB_METRICS_H
#define KVP_EVAL_LB_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "kvprune.h"

typedef enum kvlb_metric {
    KVLB_QA_F1,          /* narrativeqa, qasper, multifieldqa_en, hotpotqa, ... */
    KVLB_QA_F1_ZH,       /* multifieldqa_zh (jieba cut)                         */
    KVLB_ROUGE,          /* gov_report, qmsum, multi_news, samsum               */
    KVLB_ROUGE_ZH,       /* dureader, vcsum (jieba cut)                         */
    KVLB_CLASSIFICATION, /* trec, lsht                                          */
    KVLB_RETRIEVAL,      /* passage_retrieval_en: "Paragraph N"                 */
    KVLB_RETRIEVAL_ZH,   /* passage_retrieval_zh: "段落N"                        */
    KVLB_COUNT,          /* passage_count                                       */
    KVLB_CODE_SIM        /* lcc, repobench-p                                    */
} kvlb_metric;

/* The `rouge` package (1.0.1) rebuilds each sentence pair's LCS with one
 * recursive Python call per step of the path back to the table's edge; a
 * pair needing more nested calls than this raises RecursionError inside
 * LongBench's eval.py, and rouge_score() returns 0.0 for the prediction.
 * The count is what Python's default recursion limit (1000) leaves below
 * the frames of eval.py -> scorer -> rouge_score -> Rouge.get_scores ->
 * rouge_l_summary_level -> _union_lcs -> _recon_lcs. */
#define KVLB_ROUGE_MAX_RECON_CALLS 989

/* A word segmenter for the Chinese metrics (jieba's cut). */
typedef struct kvlb_cutter {
    kvp_status (*cut)(void *user, const char *text, size_t len, char ***words, size_t *n,
                      kvp_error *err);
    void (*free_words)(char **words, size_t n);
    void *user;
} kvlb_cutter;

typedef struct kvlb_score_opts {
    const kvlb_cutter *cutter;  /* needed by the _ZH metrics                    */
    bool rouge_exact;           /* ignore the recursion limit (true ROUGE-L)    */
} kvlb_score_opts;

/* The metric of a LongBench dataset name (false: unknown name). */
bool kvlb_dataset_metric(const char *dataset, kvlb_metric *m);
const char *kvlb_metric_name(kvlb_metric m);
/* trec, triviaqa, samsum, lsht: only the first line of the prediction. */
bool kvlb_dataset_first_line(const char *dataset);
/* prediction.lstrip('\n').split('\n')[0] as (start, length). */
void kvlb_first_line(const char *s, size_t len, size_t *start, size_t *line_len);

/* One (prediction, ground truth) pair. all_classes is used by the
 * classification metric only (NULL with n_classes 0 is Python's None: an
 * error there). Errors: out of memory, a retrieval answer without its
 * "Paragraph N" (Python raises IndexError), a _ZH metric without a cutter. */
kvp_status kvlb_score(kvlb_metric m, const char *pred, size_t pred_len, const char *gt,
                      size_t gt_len, char *const *all_classes, size_t n_classes,
                      const kvlb_score_opts *opts, double *score, kvp_error *err);

/* The single metrics, exposed for the conformance tests. */
kvp_status kvlb_qa_f1(const char *pred, size_t pred_len, const char *gt, size_t gt_len,
                      double *score, kvp_error *err);
/* rouge-L F of Rouge().get_scores([hyp], [ref], avg=True); *raised is set
 * when the package raises (empty hypothesis or reference after the "."
 * split, or the recursion limit unless `exact`), and the score is 0.0. */
kvp_status kvlb_rouge_l(const char *hyp, size_t hyp_len, const char *ref, size_t ref_len,
                        bool exact, double *score, bool *raised, kvp_error *err);
kvp_status kvlb_classification(const char *pred, size_t pred_len, const char *gt,
                               char *const *all_classes, size_t n_classes, double *score,
                               kvp_error *err);
/* prefix: "Paragraph " or "段落" (retrieval); NULL: count_score. */
kvp_status kvlb_number_match(const char *pred, size_t pred_len, const char *gt, size_t gt_len,
                             const char *prefix, double *score, kvp_error *err);
/* fuzz.ratio(line, gt) / 100 on the first code line of the prediction. */
kvp_status kvlb_code_sim(const char *pred, size_t pred_len, const char *gt, size_t gt_len,
                         double *score, kvp_error *err);
/* fuzzywuzzy's fuzz.ratio (python-Levenshtein backend), 0..100. */
int kvlb_fuzz_ratio(const char *a, size_t a_len, const char *b, size_t b_len, bool *oom);
/* Token F1 of LongBench's f1_score over two word lists. */
double kvlb_token_f1(char *const *pred, size_t n_pred, char *const *gt, size_t n_gt);

/* numpy: np.mean of a float64 list (pairwise summation, NaN when empty) and
 * round(np.float64(x), 2) (rint(x * 100) / 100). */
double kvlb_np_mean(const double *x, size_t n);
double kvlb_np_round2(double x);

#endif
