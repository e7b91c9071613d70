/* Needle-in-a-haystack data in RULER's jsonl layout: haystacks, task
 * wording, key/value draws, depth placement and the search for the haystack
 * size that makes the prompt fit a target length in model tokens. */
#ifndef KVP_EVAL_NEEDLE_GEN_H
#define KVP_EVAL_NEEDLE_GEN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvprune.h"

/* The built-in noise haystack: this text repeated, space separated. */
extern const char kvev_niah_noise_text[];

/* Key words ("adjective-noun"), NULL-terminated static lists. They share no
 * word with the training lists of the bundled model (tools/train/words.py),
 * so every evaluation key is unseen in training. */
extern const char *const kvev_niah_adjectives[];
extern const char *const kvev_niah_nouns[];

typedef enum kvev_niah_variant {
    KVP_NIAH_SINGLE = 0,  /* one needle                                       */
    KVP_NIAH_MULTIKEY,    /* several keys, one queried                        */
    KVP_NIAH_MULTIVALUE,  /* one key with several values, all expected        */
    KVP_NIAH_MULTIQUERY   /* several keys, all queried                        */
} kvev_niah_variant;

/* "single", "multikey", "multivalue", "multiquery"; false when unknown. */
bool kvev_niah_variant_parse(const char *name, kvev_niah_variant *out);
const char *kvev_niah_variant_name(kvev_niah_variant v);

/* Task wording: Python str.format templates. template: {context} {query};
 * needle: {key} {value}; answer_prefix: {query}. The *_multi forms are used
 * by the multivalue/multiquery variants (the plain ones when absent). */
typedef struct kvev_niah_phrasing {
    char *template_text;
    char *template_multi;
    char *needle;
    char *answer_prefix;
    char *answer_prefix_multi;
} kvev_niah_phrasing;

/* The project's own default wording. */
kvp_status kvev_niah_phrasing_default(kvev_niah_phrasing *p, kvp_error *err);
/* A JSON file with "template", "needle", "answer_prefix" (and optionally
 * "template_multi", "answer_prefix_multi"); other keys are ignored, so
 * RULER's task description files load as they are. */
kvp_status kvev_niah_phrasing_load(const char *path, kvev_niah_phrasing *p, kvp_error *err);
void kvev_niah_phrasing_free(kvev_niah_phrasing *p);

/* Python-style "{name}" substitution ("{{" and "}}" are literal braces). An
 * unknown or unterminated field is an error naming `what`. */
kvp_status kvev_format_fields(const char *fmt, const char *const *names,
                             const char *const *values, size_t n, const char *what,
                             char **out, kvp_error *err);

/* A haystack as a word sequence (whitespace collapsed); words repeat
 * cyclically when more are needed than it has. */
typedef struct kvev_haystack {
    char *text;     /* the words, NUL-separated */
    char **words;
    size_t n_words;
    char *name;     /* "noise" or the path */
} kvev_haystack;

kvp_status kvev_haystack_noise(kvev_haystack *h, kvp_error *err);
/* A text file, or a folder whose *.txt files are read in name order. */
kvp_status kvev_haystack_load(const char *path, kvev_haystack *h, kvp_error *err);
void kvev_haystack_free(kvev_haystack *h);

/* Token count of the model input made from `input`: with `chat` the
 * caller's chat template wraps it; BOS counted when the tokenizer adds it. */
typedef kvp_status (*kvev_niah_measure_fn)(void *user, const char *input, bool chat,
                                          size_t *n_tokens, kvp_error *err);

typedef struct kvev_niah_params {
    kvev_niah_variant variant;
    int num_needles;          /* multi variants: keys, values or queries (>= 2) */
    const int *lengths;       /* target lengths in tokens (prompt + generation) */
    size_t n_lengths;
    const double *depths;     /* percent, in [0, 100]                           */
    size_t n_depths;
    int samples;              /* per (length, depth) cell                       */
    uint64_t seed;
    int tokens_to_generate;   /* counted in `length` (the seed: 64)             */
    bool chat;                /* target counts the chat-wrapped prompt          */
} kvev_niah_params;

typedef struct kvev_niah_stats {
    size_t n_samples;
    double worst_rel_gap;     /* max over samples of (target - length)/target  */
    size_t n_measure_calls;
} kvev_niah_stats;

/* round(linspace(0, 100, count)) like numpy (half to even). */
void kvev_niah_depth_grid(int count, double *out);

/* Generates every sample (lengths x depths x samples, in that nesting) as
 * RULER jsonl objects: index, input, outputs, length, length_w_model_temp,
 * answer_prefix, others {depth, depths, target_length, variant, haystack,
 * query}. Deterministic for a seed: each sample's draws depend only on
 * (seed, length, depth, sample number). *out is a JSON array. */
kvp_status kvev_niah_generate(const kvev_niah_params *p, const kvev_niah_phrasing *ph,
                             const kvev_haystack *hay, kvev_niah_measure_fn measure,
                             void *user, json_t **out, kvev_niah_stats *stats,
                             kvp_error *err);

/* Builds the context for the first n_words haystack words with each needle
 * inserted at the sentence boundary int(n_sentences * depth / 100) (RULER's
 * rule; sentences end at words ending with '.', '!' or '?'). Needles at the
 * same boundary keep their order. malloc'ed. */
char *kvev_niah_build_context(const kvev_haystack *hay, size_t n_words,
                             const char *const *needles, const double *depths,
                             size_t n_needles);

#endif
