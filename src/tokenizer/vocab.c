/* Vocabulary tables: token strings, string -> id hash, merge table, the
 * added-token trie, byte tables, the pre-tokenizer regex and UTF-8 helpers. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "util/error.h"

/* ---------------------------------------------------------------- buffers */

bool kvt_buf_put(kvt_buf *b, const void *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return false;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return true;
}

bool kvt_buf_putc(kvt_buf *b, char c) { return kvt_buf_put(b, &c, 1); }
bool kvt_buf_puts(kvt_buf *b, const char *s) { return kvt_buf_put(b, s, strlen(s)); }

/* ------------------------------------------------------------------ UTF-8 */

/* Length of the valid UTF-8 prefix of a character at s: returns the full
 * length (1..4) when the character is complete and valid; otherwise 0 and
 * *valid_prefix is the number of bytes forming a valid but incomplete or
 * broken start (the "maximal subpart", at least 1 byte is consumed). */
static int utf8_check(const unsigned char *s, size_t n, int *valid_prefix) {
    unsigned char c = s[0];
    int need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c == 0xE0) { need = 3; lo = 0xA0; }
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 3;
    else if (c == 0xED) { need = 3; hi = 0x9F; }
    else if (c == 0xF0) { need = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) need = 4;
    else if (c == 0xF4) { need = 4; hi = 0x8F; }
    else { *valid_prefix = 1; return 0; }
    for (int k = 1; k < need; k++) {
        if ((size_t)k >= n) { *valid_prefix = -k; return 0; } /* incomplete */
        unsigned char lo_k = k == 1 ? lo : 0x80, hi_k = k == 1 ? hi : 0xBF;
        if (s[k] < lo_k || s[k] > hi_k) { *valid_prefix = k; return 0; }
    }
    return need;
}

int kvt_js_space(const char *s, size_t n) {
    unsigned char c = (unsigned char)s[0];
    if (n == 0) return 0;
    if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return 1;
    if (n >= 2 && c == 0xC2 && (unsigned char)s[1] == 0xA0) return 2;
    if (n >= 3) {
        unsigned char b = (unsigned char)s[1], d = (unsigned char)s[2];
        if (c == 0xE1 && b == 0x9A && d == 0x80) return 3; /* U+1680 */
        if (c == 0xE2 && b == 0x80 && (d <= 0x8A || d == 0xA8 || d == 0xA9 || d == 0xAF)) return 3;
        if (c == 0xE2 && b == 0x81 && d == 0x9F) return 3; /* U+205F */
        if (c == 0xE3 && b == 0x80 && d == 0x80) return 3; /* U+3000 */
        if (c == 0xEF && b == 0xBB && d == 0xBF) return 3; /* U+FEFF */
    }
    return 0;
}

int kvt_utf8_len(const unsigned char *s, size_t n) {
    int vp;
    return n ? utf8_check(s, n, &vp) : 0;
}

char *kvt_utf8_sanitize(const char *s, size_t n, size_t *out_len) {
    const unsigned char *u = (const unsigned char *)s;
    kvt_buf b = {0};
    if (!kvt_buf_put(&b, "", 0)) return NULL;
    size_t i = 0, run = 0;
    while (i < n) {
        int vp = 0;
        int l = utf8_check(u + i, n - i, &vp);
        if (l > 0) { i += (size_t)l; continue; }
        if (!kvt_buf_put(&b, s + run, i - run)) goto fail;
        if (!kvt_buf_put(&b, "\xEF\xBF\xBD", 3)) goto fail;
        i += (size_t)(vp < 0 ? -vp : vp);
        run = i;
    }
    if (!kvt_buf_put(&b, s + run, n - run)) goto fail;
    if (out_len) *out_len = b.n;
    return b.p;
fail:
    free(b.p);
    return NULL;
}

/* Feeds bytes to a streaming UTF-8 decoder with a held-back incomplete
 * character (pend/n_pend, at most 3 bytes). Valid characters are appended to
 * out; each maximal invalid subpart becomes U+FFFD. */
bool kvt_utf8_feed(unsigned char *pend, int *n_pend, const unsigned char *s, size_t n,
                   kvt_buf *out) {
    size_t i = 0;
    while (i < n) {
        if (*n_pend == 0) {
            /* fast path: a run of complete characters */
            size_t j = i;
            for (;;) {
                if (j >= n) break;
                if (s[j] < 0x80) { j++; continue; }
                int vp = 0;
                int l = utf8_check(s + j, n - j, &vp);
                if (l <= 0) break;
                j += (size_t)l;
            }
            if (!kvt_buf_put(out, s + i, j - i)) return false;
            i = j;
            if (i >= n) break;
        }
        pend[(*n_pend)++] = s[i++];
        /* resolve the held bytes as far as possible */
        while (*n_pend > 0) {
            int vp = 0;
            int l = utf8_check(pend, (size_t)*n_pend, &vp);
            if (l > 0) {
                if (!kvt_buf_put(out, pend, (size_t)l)) return false;
                memmove(pend, pend + l, (size_t)(*n_pend - l));
                *n_pend -= l;
            } else if (vp < 0) {
                break; /* incomplete: wait for more bytes */
            } else {
                if (!kvt_buf_put(out, "\xEF\xBF\xBD", 3)) return false;
                memmove(pend, pend + vp, (size_t)(*n_pend - vp));
                *n_pend -= vp;
            }
        }
    }
    return true;
}

/* -------------------------------------------------------------- hashing */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

int32_t kvt_find(const kvp_tokenizer *t, const char *s, size_t len) {
    if (!t->vocab.cap) return -1;
    uint32_t mask = t->vocab.cap - 1;
    uint64_t h = hash_bytes(s, len);
    uint32_t i = (uint32_t)h & mask, fp = (uint32_t)(h >> 32);
    for (;;) {
        const kvt_slot *sl = &t->vocab.slots[i];
        if (sl->id < 0) return -1;
        if (sl->fp == fp && t->len[sl->id] == len && memcmp(t->text[sl->id], s, len) == 0) return sl->id;
        i = (i + 1) & mask;
    }
}

/* ------------------------------------------------------------ building */

kvp_tokenizer *kvt_alloc(const char *source) {
    kvp_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->source = strdup(source ? source : "");
    if (!t->source) {
        free(t);
        return NULL;
    }
    t->bos = t->eos = t->unk = t->pad = -1;
    for (int b = 0; b < 256; b++) t->byte_tok[b] = -1;
    return t;
}

kvp_status kvt_set_vocab_size(kvp_tokenizer *t, int32_t n, kvp_error *err) {
    if (n <= 0 || n > (1 << 26))
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: invalid vocabulary size %d", t->source, n);
    t->n_vocab = n;
    t->text = calloc((size_t)n, sizeof *t->text);
    t->len = calloc((size_t)n, sizeof *t->len);
    t->type = calloc((size_t)n, 1);
    if (!t->text || !t->len || !t->type)
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory for %d tokens", t->source, n);
    return KVP_OK;
}

kvp_status kvt_set_token(kvp_tokenizer *t, int32_t id, const char *s, size_t len, uint8_t type,
                         kvp_error *err) {
    if (id < 0 || id >= t->n_vocab)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: token id %d out of range [0, %d)", t->source,
                        id, t->n_vocab);
    if (t->text[id]) {
        /* An added token may restate a vocabulary entry: same text is fine. */
        if (t->len[id] == len && memcmp(t->text[id], s, len) == 0) {
            if (type != TOK_TYPE_NORMAL) t->type[id] = type;
            return KVP_OK;
        }
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: token id %d given twice ('%s' and '%.*s')",
                        t->source, id, t->text[id], (int)(len > 60 ? 60 : len), s);
    }
    char *p = malloc(len + 1);
    if (!p) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", t->source);
    memcpy(p, s, len);
    p[len] = '\0';
    t->text[id] = p;
    t->len[id] = (uint32_t)len;
    t->type[id] = type;
    return KVP_OK;
}

static int is_byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the others
 * to U+0100.. in byte order. */
uint32_t kvt_byte_to_cp(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))
        return (uint32_t)b;
    int n = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) n++;
    return 256u + (uint32_t)n;
}

int kvt_cp_to_utf8(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

typedef struct added_key {
    const char *s;
    uint32_t len;
    int32_t id;
} added_key;

static int cmp_added(const void *a, const void *b) {
    const added_key *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    if (c) return c;
    return x->len < y->len ? -1 : x->len > y->len ? 1 : (x->id > y->id) - (x->id < y->id);
}

/* Builds the trie of added tokens: nodes are laid out so that the children
 * of a node are contiguous (built from the sorted token list). */
static kvp_status build_trie(kvp_tokenizer *t, kvp_error *err) {
    free(t->trie);
    free(t->trie_edges);
    t->trie = NULL;
    t->trie_edges = NULL;
    t->trie_n_nodes = 0;
    if (t->n_added == 0) return KVP_OK;
    added_key *keys = malloc((size_t)t->n_added * sizeof *keys);
    if (!keys) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", t->source);
    for (int32_t i = 0; i < t->n_added; i++)
        keys[i] = (added_key){t->text[t->added[i]], t->len[t->added[i]], t->added[i]};
    qsort(keys, (size_t)t->n_added, sizeof *keys, cmp_added);
    for (int32_t i = 0; i < t->n_added; i++) t->added[i] = keys[i].id;
    free(keys);
    size_t total = 1;
    for (int32_t i = 0; i < t->n_added; i++) total += t->len[t->added[i]];
    t->trie = calloc(total, sizeof *t->trie);
    t->trie_edges = calloc(total, sizeof *t->trie_edges);
    if (!t->trie || !t->trie_edges) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", t->source);
    /* Breadth-first over (node, range of sorted tokens sharing its prefix). */
    typedef struct { int32_t node, lo, hi, depth; } item;
    item *q = malloc(total * sizeof *q);
    if (!q) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", t->source);
    size_t qh = 0, qt = 0;
    int32_t n_nodes = 1, n_edges = 0;
    t->trie[0].token = -1;
    q[qt++] = (item){0, 0, t->n_added, 0};
    while (qh < qt) {
        item it = q[qh++];
        int32_t lo = it.lo;
        /* a token that ends exactly here sorts first */
        while (lo < it.hi && t->len[t->added[lo]] == (uint32_t)it.depth) {
            t->trie[it.node].token = t->added[lo];
            lo++;
        }
        t->trie[it.node].child_base = n_edges;
        int32_t nc = 0;
        int32_t j = lo;
        while (j < it.hi) {
            unsigned char c = (unsigned char)t->text[t->added[j]][it.depth];
            int32_t k = j;
            while (k < it.hi && (unsigned char)t->text[t->added[k]][it.depth] == c) k++;
            int32_t child = n_nodes++;
            t->trie[child].token = -1;
            t->trie_edges[n_edges + nc].byte = c;
            t->trie_edges[n_edges + nc].node = child;
            nc++;
            q[qt++] = (item){child, j, k, it.depth + 1};
            j = k;
        }
        t->trie[it.node].n_child = nc;
        n_edges += nc;
    }
    free(q);
    t->trie_n_nodes = n_nodes;
    return KVP_OK;
}

kvp_status kvt_finalize(kvp_tokenizer *t, kvp_error *err) {
    uint32_t cap = 16;
    while (cap < (uint32_t)t->n_vocab * 2u) cap *= 2;
    free(t->vocab.slots);
    t->vocab.slots = malloc(cap * sizeof(kvt_slot));
    if (!t->vocab.slots) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", t->source);
    memset(t->vocab.slots, 0xff, cap * sizeof(kvt_slot));
    t->vocab.cap = cap;
    uint32_t mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!t->text[id]) {
            /* ids without a token (padding of the vocabulary) */
            if (kvt_set_token(t, id, "", 0, TOK_TYPE_UNUSED, err) != KVP_OK) return err ? err->status : KVP_ERR_NOMEM;
            continue;
        }
        if (t->type[id] == TOK_TYPE_UNUSED && t->len[id] == 0) continue;
        uint64_t h = hash_bytes(t->text[id], t->len[id]);
        uint32_t i = (uint32_t)h & mask;
        bool dup = false;
        while (t->vocab.slots[i].id >= 0) {
            int32_t o = t->vocab.slots[i].id;
            if (t->len[o] == t->len[id] && memcmp(t->text[o], t->text[id], t->len[id]) == 0) {
                dup = true; /* first id wins, as in HF/llama.cpp lookups */
                break;
            }
            i = (i + 1) & mask;
        }
        if (!dup) t->vocab.slots[i] = (kvt_slot){id, (uint32_t)(h >> 32)};
    }
    /* byte tables */
    for (int b = 0; b < 256; b++) t->byte_tok[b] = -1;
    if (t->kind == TOK_KIND_SPM) {
        for (int32_t id = 0; id < t->n_vocab; id++) {
            int v = is_byte_token(t->text[id], t->len[id]);
            if (v >= 0 && (t->type[id] == TOK_TYPE_NORMAL || t->type[id] == TOK_TYPE_BYTE)) {
                t->type[id] = TOK_TYPE_BYTE;
                if (t->byte_tok[v] < 0) t->byte_tok[v] = id;
            }
        }
    } else {
        for (int b = 0; b < 256; b++) {
            char u[4];
            int n = kvt_cp_to_utf8(kvt_byte_to_cp(b), u);
            t->byte_tok[b] = kvt_find(t, u, (size_t)n);
            memcpy(t->byte_chr[b], u, 2);
            t->byte_chr_len[b] = (uint8_t)n;
        }
        for (int c = 0; c < 324; c++) t->cp_byte[c] = -1;
        for (int b = 0; b < 256; b++) t->cp_byte[kvt_byte_to_cp(b)] = (int16_t)b;
    }
    /* added tokens: everything that is not a plain vocabulary entry */
    free(t->added);
    t->n_added = 0;
    t->added = malloc(((size_t)t->n_vocab + 1) * sizeof(int32_t));
    if (!t->added) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", t->source);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        uint8_t ty = t->type[id];
        if ((ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_USER_DEFINED || ty == TOK_TYPE_UNKNOWN) &&
            t->len[id] > 0)
            t->added[t->n_added++] = id;
    }
    memset(t->first_byte, 0, sizeof t->first_byte);
    for (int32_t i = 0; i < t->n_added; i++)
        t->first_byte[(unsigned char)t->text[t->added[i]][0]] = true;
    return build_trie(t, err);
}

/* ---------------------------------------------------------------- merges */

kvp_status kvt_merges_reserve(kvp_tokenizer *t, int32_t n, kvp_error *err) {
    uint32_t cap = 16;
    while (cap < (uint32_t)n * 2u + 2u) cap *= 2;
    t->merges.e = malloc(cap * sizeof *t->merges.e);
    t->merge_left = malloc(((size_t)n + 1) * sizeof(int32_t));
    t->merge_right = malloc(((size_t)n + 1) * sizeof(int32_t));
    if (!t->merges.e || !t->merge_left || !t->merge_right)
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory for %d merges", t->source, n);
    for (uint32_t i = 0; i < cap; i++) t->merges.e[i].key = UINT64_MAX;
    t->merges.cap = cap;
    uint32_t bits = 1u << 16;
    while (bits < (uint32_t)n * 8u && bits < (1u << 24)) bits *= 2;
    t->merges.filter = calloc(bits / 64, sizeof(uint64_t));
    if (!t->merges.filter) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", t->source);
    t->merges.filter_mask = bits - 1;
    t->n_merges = 0;
    return KVP_OK;
}

kvp_status kvt_add_merge(kvp_tokenizer *t, const char *l, size_t ll, const char *r, size_t rl,
                         kvp_error *err) {
    int32_t a = kvt_find(t, l, ll), b = kvt_find(t, r, rl);
    if (a < 0 || b < 0)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: merge %d ('%.*s' '%.*s') names a token that is not in the vocabulary ('%.*s')",
                        t->source, t->n_merges, (int)ll, l, (int)rl, r,
                        (int)(a < 0 ? ll : rl), a < 0 ? l : r);
    char stackbuf[256];
    char *cat = ll + rl <= sizeof stackbuf ? stackbuf : malloc(ll + rl);
    if (!cat) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", t->source);
    memcpy(cat, l, ll);
    memcpy(cat + ll, r, rl);
    int32_t m = kvt_find(t, cat, ll + rl);
    if (cat != stackbuf) free(cat);
    if (m < 0)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: merge %d ('%.*s' '%.*s') gives a token that is not in the vocabulary",
                        t->source, t->n_merges, (int)ll, l, (int)rl, r);
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t mask = t->merges.cap - 1;
    uint32_t i = (uint32_t)hash_u64(key) & mask;
    while (t->merges.e[i].key != UINT64_MAX) {
        if (t->merges.e[i].key == key) break; /* duplicate: the first rank wins */
        i = (i + 1) & mask;
    }
    if (t->merges.e[i].key == UINT64_MAX) {
        uint32_t fb = (uint32_t)(hash_u64(key) >> 32) & t->merges.filter_mask;
        t->merges.filter[fb >> 6] |= 1ULL << (fb & 63);
        t->merges.e[i].key = key;
        t->merges.e[i].rank = t->n_merges;
        t->merges.e[i].result = m;
    }
    t->merge_left[t->n_merges] = a;
    t->merge_right[t->n_merges] = b;
    t->n_merges++;
    return KVP_OK;
}

const kvt_merge_entry *kvt_merge_find(const kvp_tokenizer *t, int32_t a, int32_t b) {
    if (!t->merges.cap) return NULL;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t h = hash_u64(key);
    uint32_t fb = (uint32_t)(h >> 32) & t->merges.filter_mask;
    if (!(t->merges.filter[fb >> 6] & (1ULL << (fb & 63)))) return NULL;
    uint32_t mask = t->merges.cap - 1;
    uint32_t i = (uint32_t)h & mask;
    for (;;) {
        const kvt_merge_entry *e = &t->merges.e[i];
        if (e->key == key) return e;
        if (e->key == UINT64_MAX) return NULL;
        i = (i + 1) & mask;
    }
}

kvp_status kvt_merges_done(kvp_tokenizer *t, kvp_error *err) {
    if (t->kind != TOK_KIND_BYTE_BPE) return KVP_OK;
    free(t->byte_pairs);
    t->byte_pairs = malloc(65536 * sizeof *t->byte_pairs);
    if (!t->byte_pairs) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", t->source);
    for (int i = 0; i < 65536; i++) t->byte_pairs[i].key = UINT64_MAX;
    for (int a = 0; a < 256; a++) {
        for (int b = 0; b < 256; b++) {
            if (t->byte_tok[a] < 0 || t->byte_tok[b] < 0) continue;
            const kvt_merge_entry *m = kvt_merge_find(t, t->byte_tok[a], t->byte_tok[b]);
            if (m) t->byte_pairs[(a << 8) | b] = *m;
        }
    }
    return KVP_OK;
}

/* ----------------------------------------------------------------- regex */

/* The whitespace set of JavaScript's \s (what the reference tokenizer's
 * regex engine uses); PCRE2's Unicode \s differs on U+0085 and U+FEFF. */
#define JS_SPACE_SET "\\t\\n\\x0B\\f\\r\\x20\\xA0\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}"

kvp_status kvt_set_regex(kvp_tokenizer *t, const char *pattern, kvp_error *err) {
    /* The contraction group uses (?i:...), which the reference rewrites to
     * an ASCII-only case-insensitive alternation; do the same. */
    static const char contr_from[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
    static const char contr_to[] = "(?:'([sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))";
    kvt_buf b = {0};
    bool in_class = false;
    size_t n = strlen(pattern);
    for (size_t i = 0; i < n;) {
        if (!in_class && strncmp(pattern + i, contr_from, sizeof contr_from - 1) == 0) {
            if (!kvt_buf_puts(&b, contr_to)) goto nomem;
            i += sizeof contr_from - 1;
            continue;
        }
        char c = pattern[i];
        if (c == '\\' && i + 1 < n) {
            char d = pattern[i + 1];
            if (d == 's') {
                if (!kvt_buf_puts(&b, in_class ? JS_SPACE_SET : "[" JS_SPACE_SET "]")) goto nomem;
            } else if (d == 'S' && !in_class) {
                if (!kvt_buf_puts(&b, "[^" JS_SPACE_SET "]")) goto nomem;
            } else {
                if (!kvt_buf_put(&b, pattern + i, 2)) goto nomem;
            }
            i += 2;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            if (!kvt_buf_putc(&b, c)) goto nomem;
            i++;
            if (i < n && pattern[i] == '^') { if (!kvt_buf_putc(&b, '^')) goto nomem; i++; }
            if (i < n && pattern[i] == ']') { if (!kvt_buf_putc(&b, ']')) goto nomem; i++; }
            continue;
        }
        if (in_class && c == ']') in_class = false;
        if (!kvt_buf_putc(&b, c)) goto nomem;
        i++;
    }
    int ec = 0;
    PCRE2_SIZE eo = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)b.p, b.n, PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK,
                                   &ec, &eo, NULL);
    free(b.p);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return kvu_fail(err, KVP_ERR_UNSUPPORTED, "%s: pre-tokenizer regex '%s' does not compile: %s (offset %zu)",
                        t->source, pattern, (const char *)msg, (size_t)eo);
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    if (t->regex) pcre2_code_free(t->regex);
    t->regex = re;
    free(t->regex_src);
    t->regex_src = strdup(pattern);
    if (!t->regex_src) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", t->source);
    return KVP_OK;
nomem:
    free(b.p);
    return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", t->source);
}

/* Pre-tokenizer regexes as the reference tokenizers write them. */
const char KVT_RE_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char KVT_RE_QWEN2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char KVT_RE_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

const char *kvt_regex_for_pre(const char *pre, bool *nfc, bool *ignore_merges) {
    *nfc = false;
    *ignore_merges = false;
    if (!pre) return NULL;
    if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3") || !strcmp(pre, "llama-v3") ||
        !strcmp(pre, "smaug-bpe")) {
        *ignore_merges = true;
        return KVT_RE_LLAMA3;
    }
    if (!strcmp(pre, "qwen2") || !strcmp(pre, "qwen35")) {
        *nfc = true;
        return KVT_RE_QWEN2;
    }
    if (!strcmp(pre, "default") || !strcmp(pre, "gpt-2") || !strcmp(pre, "gpt2")) return KVT_RE_GPT2;
    return NULL;
}

const char *kvt_pre_for_regex(const char *re) {
    if (!re) return NULL;
    if (!strcmp(re, KVT_RE_LLAMA3)) return "llama-bpe";
    if (!strcmp(re, KVT_RE_QWEN2)) return "qwen2";
    if (!strcmp(re, KVT_RE_GPT2)) return "gpt-2";
    return NULL;
}
