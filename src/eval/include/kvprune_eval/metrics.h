/* Scoring of needle predictions (RULER's string_match_all) and the number
 * formatting that must match Python's. */
#ifndef KVP_EVAL_METRICS_H
#define KVP_EVAL_METRICS_H

#include <stdbool.h>
#include <stddef.h>

/* The prediction clean-up of string_match_all, in place on a NUL-terminated
 * UTF-8 string: Python str.strip(), every U+0000..U+001F replaced by "\n",
 * strip() again. Returns the new length. `len` is the input length (the
 * string may hold NULs). */
size_t kvev_match_clean(char *s, size_t len);

/* Lowercases UTF-8 like Python's str.lower() for ASCII, Latin-1, Latin
 * Extended-A, Greek and Cyrillic (simple mappings; the final-sigma rule and
 * other scripts are left as they are). Returns a malloc'ed NUL-terminated
 * string and its length in *out_len, or NULL when out of memory. */
char *kvev_utf8_lower(const char *s, size_t len, size_t *out_len);

/* The fraction of `refs` found in `pred` case-insensitively, after
 * kvev_match_clean on a copy of pred. -1 when refs is empty (Python would
 * divide by zero; callers report it). -2 when out of memory. */
double kvev_match_fraction(const char *pred, size_t pred_len, char *const *refs,
                          const size_t *ref_lens, size_t n_refs);

/* Accumulates samples the way RULER's string_match_all sums them:
 * score = round(sum(fractions) / n * 100, 2). */
typedef struct kvev_match_acc {
    double sum;
    size_t n;
} kvev_match_acc;

double kvev_match_acc_score(const kvev_match_acc *acc); /* -1 when n == 0 */

/* Python's round(x, ndigits): the exact binary value rounded half-even. */
double kvev_py_round(double x, int ndigits);

/* Python's repr(float) (shortest round-trip text, "0.1", "0.05", "1.0",
 * "1e-05"). `buf` must hold 32 bytes. */
void kvev_py_float_repr(double x, char *buf, size_t size);

/* The seed's response clean-up for chat models: cut at ".assistant", at
 * "\n\nQuestion" and at "</s>", then strip (in place; returns the length). */
size_t kvev_niah_postprocess(char *s, size_t len);

#endif
