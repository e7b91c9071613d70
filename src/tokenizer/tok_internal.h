/*
 * Tokenizer internals shared by the files of src/tokenizer/: the vocabulary
 * (string <-> id hash), merge tables, the pre-tokenizer regex, the encode and
 * decode pipelines and the chat templates.
 */
#ifndef KVP_TOKENIZER_TOK_INTERNAL_H
#define KVP_TOKENIZER_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvprune.h"

/* Token types, numbered as llama.cpp's GGUF tokenizer.ggml.token_type. */
enum {
    TOK_TYPE_UNDEFINED = 0,
    TOK_TYPE_NORMAL = 1,
    TOK_TYPE_UNKNOWN = 2,
    TOK_TYPE_CONTROL = 3,       /* special: skipped by skip_special decode  */
    TOK_TYPE_USER_DEFINED = 4,  /* added token that is not special          */
    TOK_TYPE_UNUSED = 5,
    TOK_TYPE_BYTE = 6           /* <0xNN> byte-fallback token               */
};

typedef enum kvt_kind {
    TOK_KIND_SPM = 0,   /* SentencePiece-style: "▁" spaces, byte fallback  */
    TOK_KIND_BYTE_BPE   /* GPT-2 byte-level BPE                             */
} kvt_kind;

typedef enum kvt_merge_mode {
    TOK_MERGE_RANKS = 0, /* HF BPE: lowest merge rank first                 */
    TOK_MERGE_SCORES     /* llama.cpp SPM: highest score of the merged piece */
} kvt_merge_mode;

/* Open-addressing hash of byte strings -> id. */
typedef struct kvt_slot {
    int32_t id;       /* -1 empty */
    uint32_t fp;      /* upper hash bits: most misses end without a strcmp */
} kvt_slot;

typedef struct kvt_strmap {
    uint32_t cap;     /* power of two */
    kvt_slot *slots;
} kvt_strmap;

/* (left id, right id) -> (rank, merged id). */
typedef struct kvt_merge_entry {
    uint64_t key;     /* (left << 32) | right, UINT64_MAX empty */
    int32_t rank;
    int32_t result;
} kvt_merge_entry;

typedef struct kvt_mergemap {
    uint32_t cap;
    kvt_merge_entry *e;
    /* One bit per hash of every merge key, small enough to stay in cache:
     * most lookups are for pairs that have no merge and end here. */
    uint64_t *filter;
    uint32_t filter_mask;  /* bits - 1 */
} kvt_mergemap;

/* Trie over bytes of the added tokens, for longest-match splitting. */
typedef struct kvt_trie_node {
    int32_t child_base; /* index of the first child in the edge array      */
    int32_t n_child;
    int32_t token;      /* token ending here, or -1                         */
} kvt_trie_node;

typedef struct kvt_trie_edge {
    uint8_t byte;
    int32_t node;
} kvt_trie_edge;

struct kvp_tokenizer {
    char *source;              /* file the tokenizer was read from (errors) */
    kvt_kind kind;
    kvt_merge_mode merge_mode;

    int32_t n_vocab;
    char **text;               /* token strings as stored (NUL-terminated) */
    uint32_t *len;
    float *scores;             /* NULL unless known                        */
    uint8_t *type;             /* TOK_TYPE_*                               */
    kvt_strmap vocab;          /* model vocabulary + added tokens          */

    kvt_mergemap merges;
    int32_t n_merges;
    kvt_merge_entry *byte_pairs; /* byte-level: merges of two byte tokens,
                                    indexed by (b0 << 8) | b1; key UINT64_MAX = none */
    int32_t *merge_left, *merge_right; /* per rank, for writing GGUF       */

    /* added tokens matched in the text when parse_special */
    int32_t *added;
    int32_t n_added;
    kvt_trie_node *trie;
    kvt_trie_edge *trie_edges;
    int32_t trie_n_nodes;

    uint8_t *strip;            /* per token: 1 lstrip, 2 rstrip (added tokens
                                  of tokenizer.json); NULL when none      */
    int32_t bos, eos, unk, pad;
    bool add_bos, add_eos;

    /* normalizer */
    bool nfc;
    bool prepend_space;        /* SPM dummy prefix ("▁" before each segment) */
    bool replace_space;        /* " " -> "▁"                                 */

    /* pre-tokenizer (byte-level BPE) */
    char *pre_name;            /* GGUF tokenizer.ggml.pre                    */
    char *regex_src;           /* the pattern as written by the tokenizer    */
    pcre2_code *regex;         /* NULL: the whole segment is one word        */
    bool byte_prefix_space;    /* ByteLevel add_prefix_space                 */

    bool byte_fallback;
    bool ignore_merges;
    bool decode_strip_space;   /* SPM decoder removes one leading space      */
    int32_t byte_tok[256];     /* SPM: id of <0xNN>; byte-level: id of the
                                  mapped character; -1 when absent          */
    char byte_chr[256][2];     /* byte-level: UTF-8 of the mapped character */
    uint8_t byte_chr_len[256];
    int16_t cp_byte[324];      /* byte-level: mapped code point -> byte, -1 */
    bool first_byte[256];      /* bytes that can start an added token       */

    char *chat_template;       /* the model's own template string or NULL   */
    const char *chat_name;     /* recognised built-in template or NULL      */
};

/* ---- vocabulary building (tokenizer.c) ---- */
kvp_tokenizer *kvt_alloc(const char *source);
kvp_status kvt_set_vocab_size(kvp_tokenizer *t, int32_t n, kvp_error *err);
/* Copies s into the token table at id; fails on a duplicate id. */
kvp_status kvt_set_token(kvp_tokenizer *t, int32_t id, const char *s, size_t len,
                         uint8_t type, kvp_error *err);
int32_t kvt_find(const kvp_tokenizer *t, const char *s, size_t len);
/* Builds vocab hash, byte tables, added-token trie; call after every token is
 * set. Fails if an id has no token. */
kvp_status kvt_finalize(kvp_tokenizer *t, kvp_error *err);
/* Adds merge (left, right) with the next rank; fails if the parts or the
 * merged string are not in the vocabulary. */
kvp_status kvt_add_merge(kvp_tokenizer *t, const char *l, size_t ll, const char *r,
                         size_t rl, kvp_error *err);
kvp_status kvt_merges_reserve(kvp_tokenizer *t, int32_t n, kvp_error *err);
/* After the merges are loaded: the direct table of byte-pair merges. */
kvp_status kvt_merges_done(kvp_tokenizer *t, kvp_error *err);
/* Compiles a pre-tokenizer regex written for HF tokenizers (JS/Oniguruma
 * flavour) with PCRE2 in UTF + UCP mode. */
kvp_status kvt_set_regex(kvp_tokenizer *t, const char *pattern, kvp_error *err);
/* The built-in regex for a GGUF tokenizer.ggml.pre value, or NULL. */
const char *kvt_regex_for_pre(const char *pre, bool *nfc, bool *ignore_merges);
void kvt_recognise_template(kvp_tokenizer *t);

/* ---- text helpers (tokenizer.c) ---- */
/* Replaces invalid UTF-8 by U+FFFD per maximal subpart (WHATWG / Python
 * errors="replace"). Returns a malloc'ed string (NUL-terminated). */
char *kvt_utf8_sanitize(const char *s, size_t n, size_t *out_len);
/* Byte length of a JavaScript-whitespace character at s (what the reference
 * tokenizer's trim() and regex \s use), or 0. */
int kvt_js_space(const char *s, size_t n);
/* Length of a valid UTF-8 character at s (1..4), or 0 if invalid. */
int kvt_utf8_len(const unsigned char *s, size_t n);

/* ---- loaders ---- */
kvp_status kvt_load_hf_json(const char *json_path, const char *config_path,
                            kvp_tokenizer **out, kvp_error *err);

/* Growable byte buffer. */
typedef struct kvt_buf {
    char *p;
    size_t n, cap;
} kvt_buf;
bool kvt_buf_put(kvt_buf *b, const void *s, size_t n);
bool kvt_buf_putc(kvt_buf *b, char c);
bool kvt_buf_puts(kvt_buf *b, const char *s);

/* Streaming UTF-8 decode (vocab.c): see the definition. pend holds >= 4. */
bool kvt_utf8_feed(unsigned char *pend, int *n_pend, const unsigned char *s, size_t n,
                   kvt_buf *out);
uint32_t kvt_byte_to_cp(int b);
int kvt_cp_to_utf8(uint32_t cp, char *out);
const kvt_merge_entry *kvt_merge_find(const kvp_tokenizer *t, int32_t a, int32_t b);
/* The GGUF tokenizer.ggml.pre name of a known regex, or NULL. */
const char *kvt_pre_for_regex(const char *re);
extern const char KVT_RE_LLAMA3[];
extern const char KVT_RE_QWEN2[];
extern const char KVT_RE_GPT2[];

/* kvp_tokenize; with `continuation` the text continues a sequence
 * mid-segment, so its first segment gets no dummy prefix ("▁", ByteLevel's
 * prefix space): the tokens a conversation's next turn adds. */
kvp_status kvt_encode(const kvp_tokenizer *tok, const char *text, size_t text_len,
                      const kvp_tokenize_params *params, bool continuation, int32_t **ids,
                      size_t *n_ids, kvp_error *err);

#endif
