/* Pieces of the jieba segmenter shared between its files (not API). */
#ifndef KVP_EVAL_JIEBA_INTERNAL_H
#define KVP_EVAL_JIEBA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kvprune.h"

/* The code points jieba's HMM labels (finalseg's re_han); only these are
 * ever looked up in the emission table. */
#define KVJB_HAN_LO 0x4E00u
#define KVJB_HAN_HI 0x9FD5u
#define KVJB_HAN_N (KVJB_HAN_HI - KVJB_HAN_LO + 1u)

/* jieba's MIN_FLOAT: the log probability of a missing table entry. */
#define KVJB_MIN_FLOAT (-3.14e100)

/* HMM states, numbered in the order of their letters, so that Python's
 * max over (prob, letter) tuples breaks ties towards the larger index. */
enum { KVJB_B = 0, KVJB_E = 1, KVJB_M = 2, KVJB_S = 3, KVJB_NSTATES = 4 };

typedef struct kvjb_hmm {
    double start[KVJB_NSTATES];
    double trans[KVJB_NSTATES][KVJB_NSTATES]; /* [from][to] */
    double *emit;                             /* [state][cp - KVJB_HAN_LO] */
} kvjb_hmm;

/* Reads DIR/finalseg/prob_{start,trans,emit}.py; missing entries read as
 * KVJB_MIN_FLOAT, as jieba's dict.get(key, MIN_FLOAT). */
kvp_status kvjb_hmm_load(const char *dir, kvjb_hmm *hmm, kvp_error *err);
void kvjb_hmm_free(kvjb_hmm *hmm);

/* finalseg's viterbi over n >= 1 Han code points: the state of each in
 * states[0..n). v (4n doubles) and back (4n bytes) are scratch. */
void kvjb_viterbi(const kvjb_hmm *hmm, const uint32_t *cps, size_t n, double *v, uint8_t *back,
                  uint8_t *states);

/* Strict UTF-8 (as Python's decoder): the code point at s[0..avail) and its
 * length in *len, or -1 for an invalid or truncated sequence. */
int32_t kvjb_utf8_decode(const unsigned char *s, size_t avail, int *len);

#endif
