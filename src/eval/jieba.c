/* jieba's default cut: the prefix dictionary from dict.txt, the
 * max-probability route over each block's word DAG, and the buffering of
 * one-character steps that hands unknown runs to the HMM (jieba_hmm.c).
 * The steps are described in jieba.h. */
#include "kvprune_eval/jieba.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/jieba_internal.h"
#include "util/error.h"
#include "util/file.h"

/* One key of the prefix dictionary: a word or a prefix of one. Keys are
 * slices of dict.txt's text, which the dictionary keeps. */
typedef struct {
    uint32_t off, len;
    uint64_t freq;
    double logp; /* log(freq) - log(total), when freq > 0 */
} jb_entry;

/* A hash slot: the entry's index + 1 (0: empty) and the upper half of its
 * key's hash, so most probes are settled without touching the entry. */
typedef struct {
    uint32_t idx, hash_hi;
} jb_slot;

struct kvjb_dict {
    char *text; /* dict.txt */
    jb_entry *entries;
    size_t n_entries, cap_entries;
    jb_slot *slots; /* open addressing, linear probing */
    size_t mask;
    uint64_t total;
    double log_total;
    kvjb_hmm hmm;
};

/* FNV-1a: extending a key by one byte extends its hash, so a DAG walk hashes
 * each prefix in O(1) more. */
#define JB_FNV_INIT 14695981039346656037ull
static inline uint64_t fnv_step(uint64_t h, unsigned char b) { return (h ^ b) * 1099511628211ull; }

static inline uint64_t fnv_bytes(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) h = fnv_step(h, (unsigned char)s[i]);
    return h;
}

/* The entry for key s[0..n) with hash h, or NULL. */
static const jb_entry *jb_find(const kvjb_dict *d, const char *s, size_t n, uint64_t h) {
    uint32_t hi = (uint32_t)(h >> 32);
    for (size_t i = (size_t)h & d->mask;; i = (i + 1) & d->mask) {
        jb_slot slot = d->slots[i];
        if (!slot.idx) return NULL;
        if (slot.hash_hi != hi) continue;
        const jb_entry *e = &d->entries[slot.idx - 1];
        if (e->len == n && memcmp(d->text + e->off, s, n) == 0) return e;
    }
}

/* Makes room for at least `want` keys at a load of at most 1/2. */
static bool jb_grow_slots(kvjb_dict *d, size_t want) {
    size_t cap = d->mask ? d->mask + 1 : 1u << 12;
    while (cap < 2 * want) cap *= 2;
    if (cap == d->mask + 1) return true;
    jb_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return false;
    for (size_t k = 0; k < d->n_entries; k++) {
        const jb_entry *e = &d->entries[k];
        uint64_t h = fnv_bytes(JB_FNV_INIT, d->text + e->off, e->len);
        size_t i = (size_t)h & (cap - 1);
        while (slots[i].idx) i = (i + 1) & (cap - 1);
        slots[i] = (jb_slot){(uint32_t)(k + 1), (uint32_t)(h >> 32)};
    }
    free(d->slots);
    d->slots = slots;
    d->mask = cap - 1;
    return true;
}

/* Inserts key text[off..off+n) with hash h. A word sets its frequency (a
 * repeated word: the last line wins, as jieba's dict assignment); a prefix
 * only adds itself with frequency 0 when absent. */
static bool jb_insert(kvjb_dict *d, uint32_t off, uint32_t n, uint64_t h, bool is_word,
                      uint64_t freq) {
    if ((d->n_entries + 1) * 2 > d->mask + 1 && !jb_grow_slots(d, d->n_entries + 1)) return false;
    uint32_t hi = (uint32_t)(h >> 32);
    size_t i = (size_t)h & d->mask;
    for (;; i = (i + 1) & d->mask) {
        jb_slot slot = d->slots[i];
        if (!slot.idx) break;
        if (slot.hash_hi != hi) continue;
        jb_entry *e = &d->entries[slot.idx - 1];
        if (e->len == n && memcmp(d->text + e->off, d->text + off, n) == 0) {
            if (is_word) e->freq = freq;
            return true;
        }
    }
    if (d->n_entries == d->cap_entries) {
        size_t cap = d->cap_entries ? d->cap_entries * 2 : 1u << 12;
        if (cap > UINT32_MAX - 1) return false;
        jb_entry *ne = realloc(d->entries, cap * sizeof *ne);
        if (!ne) return false;
        d->entries = ne;
        d->cap_entries = cap;
    }
    d->entries[d->n_entries] = (jb_entry){.off = off, .len = n, .freq = is_word ? freq : 0};
    d->slots[i] = (jb_slot){(uint32_t)++d->n_entries, hi};
    return true;
}

/* bytes.strip()'s whitespace: jieba strips each raw line before decoding. */
static bool is_ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Reads dict.txt as jieba's gen_pfdict: each line stripped, "word freq"
 * plus anything after a second space, the word and all its prefixes in the
 * dictionary. Frequencies are decimal digits (jieba's int() would also take
 * a sign, underscores or non-ASCII digits; no jieba dictionary has them). */
static kvp_status load_dict_txt(kvjb_dict *d, const char *path, kvp_error *err) {
    size_t len;
    kvp_status st = kvu_read_file(path, &d->text, &len, err);
    if (st) return st;
    if (len >= UINT32_MAX) return kvu_fail(err, KVP_ERR_FORMAT, "%s: file too large", path);
    /* Size the table once: jieba's dictionary has about 1.4 keys per line. */
    size_t lines = 1;
    for (const char *q = d->text; (q = memchr(q, '\n', (size_t)(d->text + len - q))) != NULL; q++) lines++;
    if (!jb_grow_slots(d, lines + lines / 2)) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", path);
    uint64_t total = 0;
    size_t lineno = 0;
    const char *p = d->text, *end = d->text + len;
    while (p < end) {
        lineno++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *a = p, *b = nl ? nl : end;
        p = nl ? nl + 1 : end;
        while (a < b && is_ascii_space(*a)) a++;
        while (b > a && is_ascii_space(b[-1])) b--;
        /* Validate the whole stripped line as UTF-8, as jieba decodes it. */
        for (const char *q = a; q < b;) {
            int n;
            if (kvjb_utf8_decode((const unsigned char *)q, (size_t)(b - q), &n) < 0)
                return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: invalid UTF-8 at byte %zu of the line",
                                path, lineno, (size_t)(q - a) + 1);
            q += n;
        }
        const char *sp = memchr(a, ' ', (size_t)(b - a));
        if (!sp)
            return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: expected 'word frequency [tag]', got '%.*s'",
                            path, lineno, (int)(b - a > 80 ? 80 : b - a), a);
        const char *f = sp + 1, *fe = memchr(f, ' ', (size_t)(b - f));
        if (!fe) fe = b;
        uint64_t freq = 0;
        if (f == fe)
            return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: missing frequency after the word", path, lineno);
        for (const char *q = f; q < fe; q++) {
            if (*q < '0' || *q > '9')
                return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: frequency '%.*s' is not a decimal number",
                                path, lineno, (int)(fe - f > 40 ? 40 : fe - f), f);
            if (freq > (UINT64_MAX - 9) / 10)
                return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: frequency too large", path, lineno);
            freq = freq * 10 + (uint64_t)(*q - '0');
        }
        if (total > UINT64_MAX - freq)
            return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: total frequency too large", path, lineno);
        total += freq;
        /* The word, then its proper prefixes at code point boundaries. */
        uint32_t off = (uint32_t)(a - d->text);
        uint64_t h = JB_FNV_INIT;
        for (const char *q = a; q < sp;) {
            int n;
            kvjb_utf8_decode((const unsigned char *)q, (size_t)(sp - q), &n);
            h = fnv_bytes(h, q, (size_t)n);
            q += n;
            bool is_word = q == sp;
            if (!jb_insert(d, off, (uint32_t)(q - a), h, is_word, freq))
                return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", path);
        }
    }
    if (total == 0)
        return kvu_fail(err, KVP_ERR_FORMAT, "%s: no word has a frequency above 0", path);
    d->total = total;
    d->log_total = log((double)total);
    for (size_t k = 0; k < d->n_entries; k++) {
        jb_entry *e = &d->entries[k];
        /* jieba: log(FREQ[word]) - log(total), both logs of Python ints,
         * i.e. of the correctly rounded doubles. */
        if (e->freq) e->logp = log((double)e->freq) - d->log_total;
    }
    return KVP_OK;
}

kvp_status kvjb_load(const char *dir, kvjb_dict **out, kvp_error *err) {
    *out = NULL;
    if (!dir || !*dir) return kvu_fail(err, KVP_ERR_INVALID_ARG, "jieba: no dictionary folder given");
    kvjb_dict *d = calloc(1, sizeof *d);
    if (!d) return kvu_fail(err, KVP_ERR_NOMEM, "jieba: out of memory");
    size_t plen = strlen(dir) + 16;
    char *path = malloc(plen);
    if (!path) {
        free(d);
        return kvu_fail(err, KVP_ERR_NOMEM, "jieba: out of memory");
    }
    snprintf(path, plen, "%s/dict.txt", dir);
    kvp_status st = load_dict_txt(d, path, err);
    free(path);
    if (!st) st = kvjb_hmm_load(dir, &d->hmm, err);
    if (st) {
        kvjb_free(d);
        return st;
    }
    *out = d;
    return KVP_OK;
}

void kvjb_free(kvjb_dict *d) {
    if (!d) return;
    kvjb_hmm_free(&d->hmm);
    free(d->text);
    free(d->entries);
    free(d->slots);
    free(d);
}

const char *kvjb_default_dir(void) {
    static const char dir[] = "/usr/lib/python3/dist-packages/jieba";
    if (access("/usr/lib/python3/dist-packages/jieba/dict.txt", R_OK) == 0 &&
        access("/usr/lib/python3/dist-packages/jieba/finalseg/prob_emit.py", R_OK) == 0)
        return dir;
    return NULL;
}

/* ---- Cutting -------------------------------------------------------------- */

typedef struct {
    size_t start, end; /* byte offsets in the text */
} jb_span;

typedef struct {
    const kvjb_dict *d;
    const char *text;
    const uint32_t *cps; /* code points */
    const size_t *off;   /* byte offset of each code point, plus the end */
    double *prob;        /* route: best log probability from each position */
    uint32_t *route_end; /* route: last code point of the word there */
    double *vit;         /* Viterbi scratch */
    uint8_t *back, *states;
    jb_span *spans;
    size_t n_spans, cap_spans;
    bool oom;
} jb_cutter;

static void emit_cp(jb_cutter *c, size_t from, size_t to) {
    if (c->oom) return;
    if (c->n_spans == c->cap_spans) {
        size_t cap = c->cap_spans ? c->cap_spans * 2 : 256;
        jb_span *ns = realloc(c->spans, cap * sizeof *ns);
        if (!ns) {
            c->oom = true;
            return;
        }
        c->spans = ns;
        c->cap_spans = cap;
    }
    c->spans[c->n_spans++] = (jb_span){c->off[from], c->off[to]};
}

/* re_han_default's class: what jieba hands to the DAG. */
static bool in_block_class(uint32_t cp) {
    if (cp >= KVJB_HAN_LO && cp <= KVJB_HAN_HI) return true;
    if (cp >= 0x80) return false;
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9')) return true;
    return cp == '+' || cp == '#' || cp == '&' || cp == '.' || cp == '_' || cp == '%' || cp == '-';
}

static bool is_han(uint32_t cp) { return cp >= KVJB_HAN_LO && cp <= KVJB_HAN_HI; }
static bool is_alnum(uint32_t cp) {
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
}
/* Python's \d; the HMM's non-Han text only holds ASCII here. */
static bool is_digit(uint32_t cp) { return cp >= '0' && cp <= '9'; }

static const jb_entry *find_span(const jb_cutter *c, size_t from, size_t to) {
    size_t a = c->off[from], n = c->off[to] - a;
    return jb_find(c->d, c->text + a, n, fnv_bytes(JB_FNV_INIT, c->text + a, n));
}

/* finalseg.cut on code points [from, to). */
static void hmm_cut(jb_cutter *c, size_t from, size_t to) {
    size_t i = from;
    while (i < to) {
        size_t j = i;
        if (is_han(c->cps[i])) {
            while (j < to && is_han(c->cps[j])) j++;
            size_t n = j - i;
            kvjb_viterbi(&c->d->hmm, c->cps + i, n, c->vit, c->back, c->states);
            size_t begin = 0, nexti = 0;
            for (size_t k = 0; k < n; k++) {
                switch (c->states[k]) {
                case KVJB_B: begin = k; break;
                case KVJB_E:
                    emit_cp(c, i + begin, i + k + 1);
                    nexti = k + 1;
                    break;
                case KVJB_S:
                    emit_cp(c, i + k, i + k + 1);
                    nexti = k + 1;
                    break;
                default: break;
                }
            }
            if (nexti < n) emit_cp(c, i + nexti, j);
        } else {
            while (j < to && !is_han(c->cps[j])) j++;
            /* re.split on ([a-zA-Z0-9]+(?:\.\d+)?%?): the matches and the
             * non-empty text between them. */
            size_t pos = i, gap = i;
            while (pos < j) {
                if (!is_alnum(c->cps[pos])) {
                    pos++;
                    continue;
                }
                size_t m = pos;
                while (m < j && is_alnum(c->cps[m])) m++;
                if (m + 1 < j && c->cps[m] == '.' && is_digit(c->cps[m + 1])) {
                    m++;
                    while (m < j && is_digit(c->cps[m])) m++;
                }
                if (m < j && c->cps[m] == '%') m++;
                if (gap < pos) emit_cp(c, gap, pos);
                emit_cp(c, pos, m);
                pos = gap = m;
            }
            if (gap < j) emit_cp(c, gap, j);
        }
        i = j;
    }
}

/* A run of one-character route steps, [from, to). */
static void flush_buf(jb_cutter *c, size_t from, size_t to) {
    if (to - from == 1) {
        emit_cp(c, from, to);
        return;
    }
    const jb_entry *e = find_span(c, from, to);
    if (e && e->freq) {
        for (size_t k = from; k < to; k++) emit_cp(c, k, k + 1);
    } else {
        hmm_cut(c, from, to);
    }
}

/* __cut_DAG on the block of code points [a, b). */
static void cut_block(jb_cutter *c, size_t a, size_t b) {
    const kvjb_dict *d = c->d;
    double *prob = c->prob;
    uint32_t *rend = c->route_end;
    prob[b] = 0.0;
    for (size_t idx = b; idx-- > a;) {
        bool found = false;
        double best = 0.0;
        size_t bx = idx;
        uint64_t h = JB_FNV_INIT;
        size_t start = c->off[idx];
        for (size_t x = idx; x < b; x++) {
            h = fnv_bytes(h, c->text + c->off[x], c->off[x + 1] - c->off[x]);
            const jb_entry *e = jb_find(d, c->text + start, c->off[x + 1] - start, h);
            if (!e) break;
            if (!e->freq) continue;
            /* (log(freq) - log(total)) + route: jieba's order of sums. The
             * ends come in increasing order, so >= keeps Python's max over
             * (prob, end) tuples: equal probabilities take the later end. */
            double v = e->logp + prob[x + 1];
            if (!found || v >= best) {
                best = v;
                bx = x;
                found = true;
            }
        }
        if (!found) {
            best = (0.0 - d->log_total) + prob[idx + 1]; /* log(1) - log(total) */
            bx = idx;
        }
        prob[idx] = best;
        rend[idx] = (uint32_t)bx;
    }
    size_t x = a, buf = SIZE_MAX;
    while (x < b) {
        size_t y = (size_t)rend[x] + 1;
        if (y - x == 1) {
            if (buf == SIZE_MAX) buf = x;
        } else {
            if (buf != SIZE_MAX) {
                flush_buf(c, buf, x);
                buf = SIZE_MAX;
            }
            emit_cp(c, x, y);
        }
        x = y;
    }
    if (buf != SIZE_MAX) flush_buf(c, buf, b);
}

kvp_status kvjb_cut(const kvjb_dict *d, const char *text, size_t len, char ***words, size_t *n,
                    kvp_error *err) {
    *words = NULL;
    *n = 0;
    if (len == 0) return KVP_OK;
    if (!text) return kvu_fail(err, KVP_ERR_INVALID_ARG, "jieba: NULL text");
    if (len >= UINT32_MAX) return kvu_fail(err, KVP_ERR_RANGE, "jieba: text of %zu bytes is too long", len);
    /* First pass: validate and count, so the scratch is sized per code point. */
    size_t ncp = 0;
    for (size_t p = 0; p < len; ncp++) {
        int l;
        if (kvjb_utf8_decode((const unsigned char *)text + p, len - p, &l) < 0)
            return kvu_fail(err, KVP_ERR_INVALID_ARG, "jieba: text is not valid UTF-8 at byte %zu", p);
        p += (size_t)l;
    }
    uint32_t *cps = malloc(ncp * sizeof *cps);
    size_t *off = malloc((ncp + 1) * sizeof *off);
    double *prob = malloc((ncp + 1) * sizeof *prob);
    uint32_t *rend = malloc((ncp + 1) * sizeof *rend);
    double *vit = malloc(ncp * KVJB_NSTATES * sizeof *vit);
    uint8_t *back = malloc(ncp * KVJB_NSTATES);
    uint8_t *states = malloc(ncp);
    jb_cutter c = {.d = d, .text = text, .cps = cps, .off = off, .prob = prob, .route_end = rend,
                   .vit = vit, .back = back, .states = states};
    kvp_status st = KVP_OK;
    if (!cps || !off || !prob || !rend || !vit || !back || !states) {
        st = kvu_fail(err, KVP_ERR_NOMEM, "jieba: out of memory for a text of %zu bytes", len);
        goto done;
    }
    for (size_t p = 0, k = 0; p < len; k++) {
        int l;
        cps[k] = (uint32_t)kvjb_utf8_decode((const unsigned char *)text + p, len - p, &l);
        off[k] = p;
        p += (size_t)l;
    }
    off[ncp] = len;
    /* re_han_default.split: blocks go to the DAG; elsewhere each code point
     * is a word, "\r\n" being one (re_skip_default's first alternative). */
    for (size_t i = 0; i < ncp;) {
        if (in_block_class(cps[i])) {
            size_t j = i;
            while (j < ncp && in_block_class(cps[j])) j++;
            cut_block(&c, i, j);
            i = j;
        } else if (cps[i] == '\r' && i + 1 < ncp && cps[i + 1] == '\n') {
            emit_cp(&c, i, i + 2);
            i += 2;
        } else {
            emit_cp(&c, i, i + 1);
            i++;
        }
    }
    if (c.oom) {
        st = kvu_fail(err, KVP_ERR_NOMEM, "jieba: out of memory for the words");
        goto done;
    }
    /* One block: the pointer array, then the strings. */
    size_t bytes = c.n_spans * sizeof(char *);
    for (size_t k = 0; k < c.n_spans; k++) bytes += c.spans[k].end - c.spans[k].start + 1;
    char **out = malloc(bytes);
    if (!out) {
        st = kvu_fail(err, KVP_ERR_NOMEM, "jieba: out of memory for the words");
        goto done;
    }
    char *s = (char *)(out + c.n_spans);
    for (size_t k = 0; k < c.n_spans; k++) {
        size_t wl = c.spans[k].end - c.spans[k].start;
        memcpy(s, text + c.spans[k].start, wl);
        s[wl] = '\0';
        out[k] = s;
        s += wl + 1;
    }
    *words = out;
    *n = c.n_spans;
done:
    free(cps);
    free(off);
    free(prob);
    free(rend);
    free(vit);
    free(back);
    free(states);
    free(c.spans);
    return st;
}

void kvjb_words_free(char **words, size_t n) {
    (void)n; /* one allocation holds the array and the strings */
    free(words);
}
