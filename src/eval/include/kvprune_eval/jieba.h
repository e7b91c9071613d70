/* Chinese word segmentation identical to jieba 0.42.1's default cut
 * (jieba.cut(text), i.e. cut_all=False, HMM=True), which the official
 * LongBench scorer applies before F1 and ROUGE on the Chinese datasets.
 *
 * The algorithm, as jieba runs it:
 *  1. The text is split into maximal runs of [U+4E00-U+9FD5 a-zA-Z0-9+#&._%-]
 *     ("blocks"); every other code point is a word of its own, except that
 *     "\r\n" stays one word.
 *  2. In a block, each position k gets the ends i of the dictionary words
 *     text[k..i] (frequency > 0), found by walking a prefix dictionary that
 *     holds every prefix of every word (frequency 0 when it is only a prefix).
 *  3. The route maximising the sum of log(freq) - log(total) is chosen from
 *     right to left, ties going to the longer word (Python's max over
 *     (logprob, end) tuples); a position with no word takes its single
 *     character at log(1) - log(total).
 *  4. Consecutive one-character steps of the route are buffered; a buffer of
 *     one character is a word, a buffer that is itself a dictionary word
 *     (frequency > 0) is emitted character by character, any other buffer goes
 *     to the HMM: runs of U+4E00-U+9FD5 are labelled B/M/E/S by Viterbi over
 *     jieba's start/transition/emission tables (-3.14e100 for missing entries,
 *     ties going to the larger state letter), and the rest is split into
 *     [a-zA-Z0-9]+(\.[0-9]+)?%? matches and the text between them.
 *
 * All arithmetic is in double in jieba's own order, so the routes and the
 * Viterbi paths are the same as CPython's, ties included.
 *
 * Files (jieba's own, read from the folder the caller gives):
 *   DIR/dict.txt                 "word freq [tag]" per line, UTF-8
 *   DIR/finalseg/prob_start.py   \
 *   DIR/finalseg/prob_trans.py    > Python literals "P={...}"
 *   DIR/finalseg/prob_emit.py    /
 * Loading checks every line (errors name file:line). A loaded dictionary is
 * read-only: kvjb_cut may run on it from many threads at once. */
#ifndef KVP_EVAL_JIEBA_H
#define KVP_EVAL_JIEBA_H

#include <stddef.h>

#include "kvprune.h"

typedef struct kvjb_dict kvjb_dict;

/* Loads DIR/dict.txt and DIR/finalseg/prob_{start,trans,emit}.py. */
kvp_status kvjb_load(const char *dir, kvjb_dict **out, kvp_error *err);
void kvjb_free(kvjb_dict *d);

/* jieba.cut(text) (cut_all=False, HMM=True) of len bytes of UTF-8: the words
 * as NUL-terminated UTF-8 strings, in order, concatenating back to the text.
 * *words is an array of *n strings (NULL when *n is 0), freed with
 * kvjb_words_free. Text that is not valid UTF-8 is an error (jieba works on
 * decoded str). A U+0000 in the text is a word of its own and reads as "". */
kvp_status kvjb_cut(const kvjb_dict *d, const char *text, size_t len, char ***words, size_t *n,
                    kvp_error *err);
void kvjb_words_free(char **words, size_t n);

/* The folder where Debian's python3-jieba installs these files, when they are
 * there; NULL otherwise. The library reads no folder by itself. */
const char *kvjb_default_dir(void);

#endif
