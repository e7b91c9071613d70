/* jieba's word segmentation as a kvlb_cutter for the Chinese LongBench
 * metrics. */
#ifndef KVP_EVAL_LB_CUT_H
#define KVP_EVAL_LB_CUT_H

#include "kvprune_eval/lb_metrics.h"

/* Loads jieba's dictionary and HMM tables from `dir` (NULL: where Debian's
 * python3-jieba installs them). Fails with a message naming the dictionary folder
 * when there is no dictionary. */
kvp_status kvlb_cutter_default(const char *dir, kvlb_cutter **out, kvp_error *err);
void kvlb_cutter_free(kvlb_cutter *c);

#endif
