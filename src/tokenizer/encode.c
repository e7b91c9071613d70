/* Text -> ids: added-token splitting, normalisation, pre-tokenisation and the
 * two merge algorithms (HF BPE by merge rank; llama.cpp SPM by piece score). */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"
#include "util/error.h"

typedef struct ids_vec {
    int32_t *p;
    size_t n, cap;
} ids_vec;

static bool ids_push(ids_vec *v, int32_t id) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->p, cap * sizeof *p);
        if (!p) return false;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = id;
    return true;
}

/* A symbol of the word being merged: a token id, or -1 for a character
 * that is not in the vocabulary (bytes [off, off+len) of the word). */
typedef struct sym {
    int32_t id;
    int32_t prev, next;
    uint32_t off, len;
} sym;

typedef struct rank_item {
    int32_t rank;
    int32_t left, right;
    int32_t idl, idr;
    int32_t result;
} rank_item;

typedef struct score_item {
    float score;
    int32_t left, right;
    uint32_t size;
} score_item;

/* Per-call scratch space (tokenizers are shared read-only between threads). */
typedef struct workspace {
    sym *syms;
    size_t syms_cap;
    void *heap;
    size_t heap_cap, heap_n;
    kvt_buf norm;   /* normalised segment */
    kvt_buf word;   /* byte-level mapped word */
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
} workspace;

static bool ws_syms(workspace *w, size_t n) {
    if (n <= w->syms_cap) return true;
    size_t cap = w->syms_cap ? w->syms_cap : 64;
    while (cap < n) cap *= 2;
    sym *p = realloc(w->syms, cap * sizeof *p);
    if (!p) return false;
    w->syms = p;
    w->syms_cap = cap;
    return true;
}

static bool heap_reserve(workspace *w, size_t elem) {
    if (w->heap_n < w->heap_cap) return true;
    size_t cap = w->heap_cap ? w->heap_cap * 2 : 64;
    void *p = realloc(w->heap, cap * elem);
    if (!p) return false;
    w->heap = p;
    w->heap_cap = cap;
    return true;
}

/* ---- rank heap: smallest (rank, left) first ---- */
static inline bool rank_less(const rank_item *a, const rank_item *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static bool rank_push(workspace *w, rank_item it) {
    if (!heap_reserve(w, sizeof(rank_item))) return false;
    rank_item *h = w->heap;
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!rank_less(&it, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
    return true;
}

static rank_item rank_pop(workspace *w) {
    rank_item *h = w->heap;
    rank_item top = h[0], last = h[--w->heap_n];
    size_t n = w->heap_n, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && rank_less(&h[c + 1], &h[c])) c++;
        if (!rank_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = last;
    return top;
}

/* ---- score heap: largest score first, then smallest left ---- */
static inline bool score_before(const score_item *a, const score_item *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static bool score_push(workspace *w, score_item it) {
    if (!heap_reserve(w, sizeof(score_item))) return false;
    score_item *h = w->heap;
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!score_before(&it, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
    return true;
}

static score_item score_pop(workspace *w) {
    score_item *h = w->heap;
    score_item top = h[0], last = h[--w->heap_n];
    size_t n = w->heap_n, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && score_before(&h[c + 1], &h[c])) c++;
        if (!score_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = last;
    return top;
}

/* Emits a symbol: its id, or for an out-of-vocabulary character the byte
 * tokens (when every byte has one) or <unk>. */
static bool emit_sym(const kvp_tokenizer *t, const char *word, const sym *s, ids_vec *out) {
    if (s->id >= 0) return ids_push(out, s->id);
    if (t->byte_fallback || t->merge_mode == TOK_MERGE_SCORES) {
        bool all = true;
        for (uint32_t k = 0; k < s->len; k++)
            if (t->byte_tok[(unsigned char)word[s->off + k]] < 0) all = false;
        if (all) {
            for (uint32_t k = 0; k < s->len; k++)
                if (!ids_push(out, t->byte_tok[(unsigned char)word[s->off + k]])) return false;
            return true;
        }
    }
    if (t->unk >= 0) return ids_push(out, t->unk);
    return true; /* no <unk>: the character is dropped, as the reference does */
}

static bool try_rank_pair(const kvp_tokenizer *t, workspace *w, int32_t l) {
    const sym *s = w->syms;
    int32_t r = s[l].next;
    if (r < 0 || s[l].id < 0 || s[r].id < 0) return true;
    const kvt_merge_entry *m = kvt_merge_find(t, s[l].id, s[r].id);
    if (!m) return true;
    return rank_push(w, (rank_item){m->rank, l, r, s[l].id, s[r].id, m->result});
}

/* HF BPE over w->syms[0..n). `bytes` (byte-level words) lets the first
 * pairs come from the direct byte-pair table. */
static bool merge_ranks(const kvp_tokenizer *t, workspace *w, size_t n, const unsigned char *bytes) {
    w->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (bytes && t->byte_pairs) {
            const kvt_merge_entry *m = &t->byte_pairs[(bytes[i] << 8) | bytes[i + 1]];
            if (m->key != UINT64_MAX &&
                !rank_push(w, (rank_item){m->rank, (int32_t)i, (int32_t)i + 1, w->syms[i].id,
                                          w->syms[i + 1].id, m->result}))
                return false;
        } else if (!try_rank_pair(t, w, (int32_t)i)) {
            return false;
        }
    }
    sym *s = w->syms;
    while (w->heap_n) {
        rank_item it = rank_pop(w);
        if (s[it.left].len == 0 || s[it.right].len == 0 || s[it.left].next != it.right ||
            s[it.left].id != it.idl || s[it.right].id != it.idr)
            continue;
        s[it.left].id = it.result;
        s[it.left].len += s[it.right].len;
        s[it.right].len = 0;
        s[it.left].next = s[it.right].next;
        if (s[it.right].next >= 0) s[s[it.right].next].prev = it.left;
        if (s[it.left].prev >= 0 && !try_rank_pair(t, w, s[it.left].prev)) return false;
        if (!try_rank_pair(t, w, it.left)) return false;
    }
    return true;
}

static bool try_score_pair(const kvp_tokenizer *t, workspace *w, const char *word, int32_t l) {
    const sym *s = w->syms;
    if (l < 0) return true;
    int32_t r = s[l].next;
    if (r < 0) return true;
    int32_t id = kvt_find(t, word + s[l].off, s[l].len + s[r].len);
    if (id < 0) return true;
    float sc = t->scores ? t->scores[id] : 0.0f;
    return score_push(w, (score_item){sc, l, r, s[l].len + s[r].len});
}

/* llama.cpp's SentencePiece merge: repeatedly join the adjacent pair whose
 * concatenation is the highest-scoring piece. */
static bool merge_scores(const kvp_tokenizer *t, workspace *w, const char *word, size_t n) {
    w->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (!try_score_pair(t, w, word, (int32_t)i)) return false;
    sym *s = w->syms;
    while (w->heap_n) {
        score_item it = score_pop(w);
        sym *l = &s[it.left], *r = &s[it.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != it.size || l->next != it.right) continue;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = it.left;
        if (!try_score_pair(t, w, word, l->prev)) return false;
        if (!try_score_pair(t, w, word, it.left)) return false;
    }
    for (size_t i = 0; i < n; i = (size_t)(s[i].next < 0 ? (int32_t)n : s[i].next))
        s[i].id = kvt_find(t, word + s[i].off, s[i].len);
    return true;
}

static bool emit_syms(const kvp_tokenizer *t, workspace *w, const char *word, size_t n, ids_vec *out) {
    for (size_t i = 0; i < n;) {
        if (!emit_sym(t, word, &w->syms[i], out)) return false;
        int32_t nx = w->syms[i].next;
        if (nx < 0) break;
        i = (size_t)nx;
    }
    return true;
}

/* SentencePiece-style word (already "▁"-escaped): characters -> symbols. */
static bool encode_spm_word(const kvp_tokenizer *t, workspace *w, const char *word, size_t len,
                            ids_vec *out) {
    if (!ws_syms(w, len + 1)) return false;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        int l = kvt_utf8_len((const unsigned char *)word + i, len - i);
        if (l <= 0) l = 1;
        sym *s = &w->syms[n];
        s->off = (uint32_t)i;
        s->len = (uint32_t)l;
        s->id = t->merge_mode == TOK_MERGE_RANKS ? kvt_find(t, word + i, (size_t)l) : -1;
        s->prev = (int32_t)n - 1;
        s->next = (int32_t)n + 1;
        n++;
        i += (size_t)l;
    }
    if (n == 0) return true;
    w->syms[n - 1].next = -1;
    bool ok = t->merge_mode == TOK_MERGE_RANKS ? merge_ranks(t, w, n, NULL) : merge_scores(t, w, word, n);
    return ok && emit_syms(t, w, word, n, out);
}

/* Byte-level word (raw bytes): bytes -> mapped characters -> symbols. */
static bool encode_bytelevel_word(const kvp_tokenizer *t, workspace *w, const char *word, size_t len,
                                  ids_vec *out) {
    if (len == 0) return true;
    if (len == 1 && t->byte_tok[(unsigned char)word[0]] >= 0)
        return ids_push(out, t->byte_tok[(unsigned char)word[0]]);
    if (t->ignore_merges) {
        w->word.n = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char b = (unsigned char)word[i];
            if (!kvt_buf_put(&w->word, t->byte_chr[b], t->byte_chr_len[b])) return false;
        }
        int32_t id = kvt_find(t, w->word.p, w->word.n);
        if (id >= 0) return ids_push(out, id);
    }
    if (!ws_syms(w, len + 1)) return false;
    for (size_t i = 0; i < len; i++) {
        sym *s = &w->syms[i];
        s->off = (uint32_t)i;
        s->len = 1;
        s->id = t->byte_tok[(unsigned char)word[i]];
        s->prev = (int32_t)i - 1;
        s->next = (int32_t)i + 1;
    }
    w->syms[len - 1].next = -1;
    return merge_ranks(t, w, len, (const unsigned char *)word) && emit_syms(t, w, word, len, out);
}

/* True when NFC cannot change s: every character is a starter without a
 * canonical decomposition that cannot be the second half of a composition
 * (Hangul, composed algorithmically, always goes through NFC). Most text,
 * CJK included, passes and skips the costly normalisation. */
static bool nfc_stable(const char *s, size_t n) {
    const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate(u + i, (utf8proc_ssize_t)(n - i), &cp);
        if (l <= 0) return false;
        i += (size_t)l;
        if ((cp >= 0x1100 && cp <= 0x11FF) || (cp >= 0xA960 && cp <= 0xA97F) || (cp >= 0xAC00 && cp <= 0xD7FF))
            return false;
        const utf8proc_property_t *p = utf8proc_get_property(cp);
        if (p->combining_class != 0) return false;
        if (p->comb_index != UINT16_MAX && p->comb_index >= 0x8000) return false;
        if (p->decomp_seqindex != UINT16_MAX && p->decomp_type == 0) return false;
    }
    return true;
}

static kvp_status encode_segment(const kvp_tokenizer *t, workspace *w, const char *seg, size_t n,
                                 bool no_prefix, ids_vec *out, kvp_error *err) {
    if (n == 0) return KVP_OK;
    utf8proc_uint8_t *nfc = NULL;
    if (t->nfc && !nfc_stable(seg, n)) {
        utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)seg, (utf8proc_ssize_t)n, &nfc,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (r < 0)
            return kvu_fail(err, KVP_ERR_INTERNAL, "NFC normalisation failed: %s", utf8proc_errmsg(r));
        seg = (const char *)nfc;
        n = (size_t)r;
    }
    kvp_status st = KVP_OK;
    if (t->kind == TOK_KIND_SPM) {
        w->norm.n = 0;
        bool ok = true;
        if (t->prepend_space && !no_prefix) ok = kvt_buf_put(&w->norm, "\xE2\x96\x81", 3);
        for (size_t i = 0; i < n && ok; i++) {
            if (seg[i] == ' ' && t->replace_space) ok = kvt_buf_put(&w->norm, "\xE2\x96\x81", 3);
            else ok = kvt_buf_putc(&w->norm, seg[i]);
        }
        if (!ok || !encode_spm_word(t, w, w->norm.p, w->norm.n, out)) st = KVP_ERR_NOMEM;
    } else {
        const char *s = seg;
        size_t len = n;
        if (t->byte_prefix_space && !no_prefix && seg[0] != ' ') {
            w->norm.n = 0;
            if (!kvt_buf_putc(&w->norm, ' ') || !kvt_buf_put(&w->norm, seg, n)) {
                st = KVP_ERR_NOMEM;
                goto done;
            }
            s = w->norm.p;
            len = w->norm.n;
        }
        if (!t->regex) {
            if (!encode_bytelevel_word(t, w, s, len, out)) st = KVP_ERR_NOMEM;
            goto done;
        }
        size_t pos = 0, prev = 0;
        while (pos <= len) {
            int rc = pcre2_match(t->regex, (PCRE2_SPTR)s, len, pos, PCRE2_NO_UTF_CHECK, w->md, w->mctx);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                PCRE2_UCHAR msg[128];
                pcre2_get_error_message(rc, msg, sizeof msg);
                st = kvu_fail(err, KVP_ERR_INTERNAL, "%s: pre-tokenizer regex failed: %s", t->source,
                              (const char *)msg);
                goto done;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
            size_t ms = ov[0], me = ov[1];
            if (ms > prev && !encode_bytelevel_word(t, w, s + prev, ms - prev, out)) {
                st = KVP_ERR_NOMEM;
                goto done;
            }
            if (me > ms) {
                if (!encode_bytelevel_word(t, w, s + ms, me - ms, out)) {
                    st = KVP_ERR_NOMEM;
                    goto done;
                }
                pos = me;
            } else {
                /* empty match: step over one character */
                int l = pos < len ? kvt_utf8_len((const unsigned char *)s + pos, len - pos) : 1;
                pos = me + (size_t)(l > 0 ? l : 1);
            }
            prev = me > prev ? me : prev;
        }
        if (prev < len && !encode_bytelevel_word(t, w, s + prev, len - prev, out)) st = KVP_ERR_NOMEM;
    }
done:
    free(nfc);
    if (st == KVP_ERR_NOMEM) return kvu_fail(err, KVP_ERR_NOMEM, "out of memory while tokenizing");
    return st;
}

kvp_tokenize_params kvp_tokenize_default_params(void) {
    kvp_tokenize_params p = {.add_special = true, .parse_special = true};
    return p;
}

/* Longest added token starting at s (allowed kinds only), or -1. */
static int32_t match_added(const kvp_tokenizer *t, const char *s, size_t n, bool parse_special,
                           size_t *mlen) {
    int32_t node = 0, best = -1;
    for (size_t i = 0; i < n; i++) {
        const kvt_trie_node *nd = &t->trie[node];
        int32_t next = -1;
        for (int32_t c = 0; c < nd->n_child; c++) {
            if (t->trie_edges[nd->child_base + c].byte == (unsigned char)s[i]) {
                next = t->trie_edges[nd->child_base + c].node;
                break;
            }
        }
        if (next < 0) break;
        node = next;
        int32_t tk = t->trie[node].token;
        if (tk >= 0 && (parse_special || t->type[tk] == TOK_TYPE_USER_DEFINED)) {
            best = tk;
            *mlen = i + 1;
        }
    }
    return best;
}

kvp_status kvp_tokenize(const kvp_tokenizer *tok, const char *text, size_t text_len,
                        const kvp_tokenize_params *params, int32_t **ids, size_t *n_ids,
                        kvp_error *err) {
    return kvt_encode(tok, text, text_len, params, false, ids, n_ids, err);
}

kvp_status kvt_encode(const kvp_tokenizer *tok, const char *text, size_t text_len,
                      const kvp_tokenize_params *params, bool continuation, int32_t **ids,
                      size_t *n_ids, kvp_error *err) {
    if (!tok || (!text && text_len) || !ids || !n_ids)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_tokenize: NULL argument");
    kvp_tokenize_params p = params ? *params : kvp_tokenize_default_params();
    *ids = NULL;
    *n_ids = 0;
    size_t n = 0;
    char *clean = kvt_utf8_sanitize(text ? text : "", text_len, &n);
    if (!clean) return kvu_fail(err, KVP_ERR_NOMEM, "out of memory while tokenizing");
    ids_vec out = {0};
    workspace w = {0};
    kvp_status st = KVP_OK;
    if (tok->regex) {
        w.md = pcre2_match_data_create_from_pattern(tok->regex, NULL);
        w.mctx = pcre2_match_context_create(NULL);
        w.jstack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
        if (!w.md || !w.mctx || !w.jstack) {
            st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory while tokenizing");
            goto done;
        }
        pcre2_jit_stack_assign(w.mctx, NULL, w.jstack);
    }
    if (p.add_special && tok->add_bos && tok->bos >= 0 && !ids_push(&out, tok->bos)) goto nomem;
    size_t seg = 0;
    for (size_t i = 0; i < n;) {
        size_t mlen = 0;
        int32_t at = -1;
        if (tok->n_added && tok->first_byte[(unsigned char)clean[i]])
            at = match_added(tok, clean + i, n - i, p.parse_special, &mlen);
        if (at < 0) {
            i++;
            continue;
        }
        size_t seg_end = i;
        if (tok->strip && (tok->strip[at] & 1)) /* lstrip: drop the spaces before it */
            for (size_t k; seg_end > seg;) {
                for (k = 1; k <= 3 && k <= seg_end - seg; k++)
                    if (kvt_js_space(clean + seg_end - k, k) == (int)k) break;
                if (k > 3 || k > seg_end - seg) break;
                seg_end -= k;
            }
        st = encode_segment(tok, &w, clean + seg, seg_end - seg, continuation && seg == 0, &out, err);
        if (st != KVP_OK) goto done;
        if (!ids_push(&out, at)) goto nomem;
        i += mlen;
        if (tok->strip && (tok->strip[at] & 2)) /* rstrip: and after it */
            for (int k; i < n && (k = kvt_js_space(clean + i, n - i)) > 0;) i += (size_t)k;
        seg = i;
    }
    st = encode_segment(tok, &w, clean + seg, n - seg, continuation && seg == 0, &out, err);
    if (st != KVP_OK) goto done;
    if (p.add_special && tok->add_eos && tok->eos >= 0 && !ids_push(&out, tok->eos)) goto nomem;
    if (!out.p && !(out.p = malloc(sizeof(int32_t)))) goto nomem;
    *ids = out.p;
    *n_ids = out.n;
    out.p = NULL;
    goto done;
nomem:
    st = kvu_fail(err, KVP_ERR_NOMEM, "out of memory while tokenizing");
done:
    free(out.p);
    free(clean);
    free(w.syms);
    free(w.heap);
    free(w.norm.p);
    free(w.word.p);
    if (w.md) pcre2_match_data_free(w.md);
    if (w.mctx) pcre2_match_context_free(w.mctx);
    if (w.jstack) pcre2_jit_stack_free(w.jstack);
    return st;
}
