/* Ids -> text. One streaming decoder serves kvp_detokenize and kvp_detok_*,
 * so that streamed pieces always concatenate to the full decode. It follows
 * the reference decoders: byte-level tokens are mapped back to bytes and runs
 * of them are UTF-8 decoded together; SentencePiece pieces turn "▁" into " ",
 * runs of <0xNN> tokens are decoded together, and one leading space of the
 * whole text is removed; added tokens are copied as they are. Invalid UTF-8
 * becomes U+FFFD per maximal subpart. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "util/error.h"

struct kvp_detok {
    const kvp_tokenizer *tok;
    bool skip_special;
    bool started;        /* something was output (for the leading-space strip) */
    unsigned char pend[8];
    int n_pend;
    kvt_buf out;
};

static bool is_special(const kvp_tokenizer *t, int32_t id) {
    return t->type[id] == TOK_TYPE_CONTROL || t->type[id] == TOK_TYPE_UNKNOWN;
}

static bool is_added(const kvp_tokenizer *t, int32_t id) {
    uint8_t ty = t->type[id];
    return ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_UNKNOWN || ty == TOK_TYPE_USER_DEFINED;
}

/* Appends text to the output, dropping the first space of the whole text
 * when the decoder strips it. */
static bool put_text(struct kvp_detok *d, const char *s, size_t n) {
    if (!d->started && n > 0) {
        d->started = true;
        if (d->tok->decode_strip_space && s[0] == ' ') {
            s++;
            n--;
        }
    }
    return kvt_buf_put(&d->out, s, n);
}

/* Ends a run of bytes: a held incomplete character becomes U+FFFD. */
static bool end_run(struct kvp_detok *d) {
    if (d->n_pend == 0) return true;
    d->n_pend = 0;
    return put_text(d, "\xEF\xBF\xBD", 3);
}

static bool put_bytes(struct kvp_detok *d, const unsigned char *s, size_t n) {
    size_t before = d->out.n;
    bool was_started = d->started;
    if (!kvt_utf8_feed(d->pend, &d->n_pend, s, n, &d->out)) return false;
    if (!was_started && d->out.n > before) {
        d->started = true;
        if (d->tok->decode_strip_space && d->out.p[before] == ' ') {
            memmove(d->out.p + before, d->out.p + before + 1, d->out.n - before - 1);
            d->out.n--;
            d->out.p[d->out.n] = '\0';
        }
    }
    return true;
}

/* Byte-level token text -> raw bytes. */
static bool put_bytelevel(struct kvp_detok *d, const char *s, size_t n) {
    unsigned char buf[256];
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        int l = kvt_utf8_len((const unsigned char *)s + i, n - i);
        uint32_t cp;
        if (l == 1) cp = (unsigned char)s[i];
        else if (l == 2) cp = ((uint32_t)(s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F);
        else cp = 0x110000; /* not a mapped byte */
        int b = cp < 324 ? d->tok->cp_byte[cp] : -1;
        if (b < 0) {
            /* not byte-level text: pass through as is */
            if (!put_bytes(d, buf, k)) return false;
            k = 0;
            if (!put_bytes(d, (const unsigned char *)s + i, (size_t)(l > 0 ? l : 1))) return false;
        } else {
            buf[k++] = (unsigned char)b;
            if (k == sizeof buf) {
                if (!put_bytes(d, buf, k)) return false;
                k = 0;
            }
        }
        i += (size_t)(l > 0 ? l : 1);
    }
    return put_bytes(d, buf, k);
}

/* SentencePiece piece: "▁" -> " ". */
static bool put_spm_piece(struct kvp_detok *d, const char *s, size_t n) {
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
            if (!put_text(d, s + run, i - run) || !put_text(d, " ", 1)) return false;
            i += 3;
            run = i;
        } else {
            i++;
        }
    }
    return put_text(d, s + run, n - run);
}

static kvp_status detok_id(struct kvp_detok *d, int32_t id, kvp_error *err) {
    const kvp_tokenizer *t = d->tok;
    if (id < 0 || id >= t->n_vocab)
        return kvu_fail(err, KVP_ERR_RANGE, "token id %d is out of range [0, %d)", id, t->n_vocab);
    if (d->skip_special && is_special(t, id)) return KVP_OK;
    bool ok;
    if (t->kind == TOK_KIND_SPM) {
        if (t->type[id] == TOK_TYPE_BYTE) {
            int v = 0;
            for (int i = 3; i < 5; i++) {
                char c = t->text[id][i];
                v = v * 16 + (c >= 'A' ? c - 'A' + 10 : c - '0');
            }
            unsigned char b = (unsigned char)v;
            ok = put_bytes(d, &b, 1);
        } else {
            ok = end_run(d) && put_spm_piece(d, t->text[id], t->len[id]);
        }
    } else if (is_added(t, id)) {
        ok = end_run(d) && put_text(d, t->text[id], t->len[id]);
    } else {
        ok = put_bytelevel(d, t->text[id], t->len[id]);
    }
    return ok ? KVP_OK : kvu_fail(err, KVP_ERR_NOMEM, "out of memory while decoding");
}

kvp_status kvp_detok_new(const kvp_tokenizer *tok, bool skip_special, kvp_detok **out,
                         kvp_error *err) {
    if (!tok || !out) return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_detok_new: NULL argument");
    struct kvp_detok *d = calloc(1, sizeof *d);
    if (!d || !kvt_buf_put(&d->out, "", 0)) {
        free(d);
        return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    }
    d->tok = tok;
    d->skip_special = skip_special;
    *out = d;
    return KVP_OK;
}

kvp_status kvp_detok_push(kvp_detok *d, int32_t id, const char **piece, kvp_error *err) {
    if (!d || !piece) return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_detok_push: NULL argument");
    d->out.n = 0;
    d->out.p[0] = '\0';
    kvp_status st = detok_id(d, id, err);
    *piece = d->out.p;
    return st;
}

const char *kvp_detok_flush(kvp_detok *d) {
    if (!d) return "";
    d->out.n = 0;
    d->out.p[0] = '\0';
    if (!end_run(d)) return "";
    return d->out.p;
}

void kvp_detok_free(kvp_detok *d) {
    if (!d) return;
    free(d->out.p);
    free(d);
}

kvp_status kvp_detokenize(const kvp_tokenizer *tok, const int32_t *ids, size_t n_ids,
                          bool skip_special, char **text, size_t *text_len, kvp_error *err) {
    if (!tok || (!ids && n_ids) || !text)
        return kvu_fail(err, KVP_ERR_INVALID_ARG, "kvp_detokenize: NULL argument");
    *text = NULL;
    struct kvp_detok d = {.tok = tok, .skip_special = skip_special};
    if (!kvt_buf_put(&d.out, "", 0)) return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n_ids; i++) {
        kvp_status st = detok_id(&d, ids[i], err);
        if (st != KVP_OK) {
            free(d.out.p);
            return st;
        }
    }
    if (!end_run(&d)) {
        free(d.out.p);
        return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    }
    *text = d.out.p;
    if (text_len) *text_len = d.out.n;
    return KVP_OK;
}
