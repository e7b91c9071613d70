/* jieba's HMM for unknown words: its tables, read from the Python literal
 * files jieba itself imports (finalseg/prob_*.py), and finalseg's Viterbi. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/jieba_internal.h"
#include "util/error.h"
#include "util/file.h"

int32_t kvjb_utf8_decode(const unsigned char *s, size_t avail, int *len) {
    unsigned c = s[0];
    if (c < 0x80) {
        *len = 1;
        return (int32_t)c;
    }
    int n;
    uint32_t cp;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;      /* overlong */
        else if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
        if (c == 0xF0) lo = 0x90;      /* overlong */
        else if (c == 0xF4) hi = 0x8F; /* beyond U+10FFFF */
    } else {
        return -1;
    }
    if (avail < (size_t)n) return -1;
    for (int i = 1; i < n; i++) {
        unsigned b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (b & 0x3F);
    }
    *len = n;
    return (int32_t)cp;
}

/* ---- A parser for the Python literals "P = {...}" of prob_*.py ---------- */

enum { PY_NUM, PY_STR, PY_DICT };

typedef struct {
    int kind, line;
    double num;
    uint32_t s_off, s_len; /* PY_STR: bytes in the string arena */
    int32_t first;         /* PY_DICT: first key node */
    int32_t next;          /* key node: the next key of its dict */
    int32_t value;         /* key node: its value node */
} py_node;

typedef struct {
    const char *path;
    const char *s, *end;
    int line;
    py_node *nodes;
    size_t n_nodes, cap_nodes;
    char *str;
    size_t n_str, cap_str;
    kvp_error *err;
} py_parser;

static kvp_status py_fail(py_parser *p, const char *what) {
    return kvu_fail(p->err, KVP_ERR_FORMAT, "%s:%d: %s", p->path, p->line, what);
}

static int32_t py_new_node(py_parser *p, int kind) {
    if (p->n_nodes == p->cap_nodes) {
        size_t cap = p->cap_nodes ? p->cap_nodes * 2 : 1024;
        py_node *nn = realloc(p->nodes, cap * sizeof *nn);
        if (!nn) return -1;
        p->nodes = nn;
        p->cap_nodes = cap;
    }
    py_node *n = &p->nodes[p->n_nodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->line = p->line;
    n->first = n->next = n->value = -1;
    return (int32_t)p->n_nodes++;
}

static bool py_put_bytes(py_parser *p, const char *b, size_t n) {
    if (p->n_str + n > p->cap_str) {
        size_t cap = p->cap_str ? p->cap_str : 4096;
        while (cap < p->n_str + n) cap *= 2;
        char *ns = realloc(p->str, cap);
        if (!ns) return false;
        p->str = ns;
        p->cap_str = cap;
    }
    memcpy(p->str + p->n_str, b, n);
    p->n_str += n;
    return true;
}

static bool py_put_cp(py_parser *p, uint32_t cp) {
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return py_put_bytes(p, b, n);
}

/* Skips spaces, newlines and comments. */
static void py_skip(py_parser *p) {
    while (p->s < p->end) {
        char c = *p->s;
        if (c == '\n') {
            p->line++;
            p->s++;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f') {
            p->s++;
        } else if (c == '#') {
            while (p->s < p->end && *p->s != '\n') p->s++;
        } else if (c == '\\' && p->s + 1 < p->end && p->s[1] == '\n') {
            p->s++; /* explicit line continuation */
        } else {
            break;
        }
    }
}

static int py_hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static kvp_status py_parse_value(py_parser *p, int32_t *out, int depth);

static kvp_status py_parse_string(py_parser *p, int32_t *out) {
    if (*p->s == 'u' || *p->s == 'U') p->s++;
    char q = *p->s++;
    bool triple = p->end - p->s >= 2 && p->s[0] == q && p->s[1] == q;
    if (triple) p->s += 2;
    int32_t id = py_new_node(p, PY_STR);
    if (id < 0) return kvu_fail(p->err, KVP_ERR_NOMEM, "%s: out of memory", p->path);
    p->nodes[id].s_off = (uint32_t)p->n_str;
    for (;;) {
        if (p->s >= p->end) return py_fail(p, "unterminated string");
        unsigned char c = (unsigned char)*p->s;
        if (c == (unsigned char)q) {
            if (!triple) {
                p->s++;
                break;
            }
            if (p->end - p->s >= 3 && p->s[1] == q && p->s[2] == q) {
                p->s += 3;
                break;
            }
        }
        if (c == '\n') {
            if (!triple) return py_fail(p, "newline inside a string");
            p->line++;
        }
        if (c != '\\') {
            int len;
            if (kvjb_utf8_decode((const unsigned char *)p->s, (size_t)(p->end - p->s), &len) < 0)
                return py_fail(p, "invalid UTF-8 in a string");
            if (!py_put_bytes(p, p->s, (size_t)len))
                return kvu_fail(p->err, KVP_ERR_NOMEM, "%s: out of memory", p->path);
            p->s += len;
            continue;
        }
        if (p->end - p->s < 2) return py_fail(p, "unterminated string");
        char e = p->s[1];
        p->s += 2;
        uint32_t cp;
        int hexlen = 0;
        switch (e) {
        case '\n': p->line++; continue; /* escaped newline: nothing */
        case '\\': cp = '\\'; break;
        case '\'': cp = '\''; break;
        case '"': cp = '"'; break;
        case 'a': cp = 7; break;
        case 'b': cp = 8; break;
        case 'f': cp = 12; break;
        case 'n': cp = 10; break;
        case 'r': cp = 13; break;
        case 't': cp = 9; break;
        case 'v': cp = 11; break;
        case 'x': hexlen = 2; break;
        case 'u': hexlen = 4; break;
        case 'U': hexlen = 8; break;
        default:
            if (e >= '0' && e <= '7') {
                cp = (uint32_t)(e - '0');
                for (int k = 0; k < 2 && p->s < p->end && *p->s >= '0' && *p->s <= '7'; k++)
                    cp = cp * 8 + (uint32_t)(*p->s++ - '0');
                break;
            }
            return py_fail(p, "unsupported escape sequence in a string");
        }
        if (hexlen) {
            if (p->end - p->s < hexlen) return py_fail(p, "truncated \\x/\\u/\\U escape");
            cp = 0;
            for (int k = 0; k < hexlen; k++) {
                int h = py_hex(p->s[k]);
                if (h < 0) return py_fail(p, "bad hex digit in a \\x/\\u/\\U escape");
                cp = cp * 16 + (uint32_t)h;
            }
            p->s += hexlen;
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return py_fail(p, "escape is not a Unicode scalar value");
        }
        if (!py_put_cp(p, cp)) return kvu_fail(p->err, KVP_ERR_NOMEM, "%s: out of memory", p->path);
    }
    p->nodes[id].s_len = (uint32_t)(p->n_str - p->nodes[id].s_off);
    *out = id;
    return KVP_OK;
}

/* A decimal int or float literal with an optional sign: what jieba's tables
 * hold (e.g. -3.14e+100). Hex, underscores, inf and nan are refused. */
static kvp_status py_parse_number(py_parser *p, int32_t *out) {
    const char *a = p->s;
    const char *q = a;
    if (*q == '-' || *q == '+') q++;
    while (q < p->end && (*q == ' ' || *q == '\t')) q++; /* "- 1" is still -1 */
    const char *digits = q;
    size_t nd = 0;
    while (q < p->end && *q >= '0' && *q <= '9') q++, nd++;
    if (q < p->end && *q == '.') {
        q++;
        while (q < p->end && *q >= '0' && *q <= '9') q++, nd++;
    }
    if (nd == 0) return py_fail(p, "expected a number");
    if (q < p->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < p->end && (*q == '+' || *q == '-')) q++;
        if (q >= p->end || *q < '0' || *q > '9') return py_fail(p, "bad exponent in a number");
        while (q < p->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < p->end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || *q == '_'))
        return py_fail(p, "unsupported number literal");
    char buf[128];
    size_t n = (size_t)(q - digits);
    if (n + 2 > sizeof buf) return py_fail(p, "number literal too long");
    buf[0] = *a == '-' ? '-' : '+';
    memcpy(buf + 1, digits, n);
    buf[n + 1] = '\0';
    errno = 0;
    /* strtod rounds correctly, as Python's float parser does. */
    double v = strtod(buf, NULL);
    if (isinf(v)) return py_fail(p, "number beyond the range of a double");
    int32_t id = py_new_node(p, PY_NUM);
    if (id < 0) return kvu_fail(p->err, KVP_ERR_NOMEM, "%s: out of memory", p->path);
    p->nodes[id].num = v;
    p->s = q;
    *out = id;
    return KVP_OK;
}

static kvp_status py_parse_dict(py_parser *p, int32_t *out, int depth) {
    int32_t id = py_new_node(p, PY_DICT);
    if (id < 0) return kvu_fail(p->err, KVP_ERR_NOMEM, "%s: out of memory", p->path);
    p->s++; /* '{' */
    int32_t last = -1;
    for (;;) {
        py_skip(p);
        if (p->s >= p->end) return py_fail(p, "unterminated dict");
        if (*p->s == '}') {
            p->s++;
            break;
        }
        int32_t key, val;
        kvp_status st = py_parse_value(p, &key, depth + 1);
        if (st) return st;
        if (p->nodes[key].kind == PY_DICT) return py_fail(p, "a dict cannot be a dict key");
        py_skip(p);
        if (p->s >= p->end || *p->s != ':') return py_fail(p, "expected ':' in a dict");
        p->s++;
        py_skip(p);
        st = py_parse_value(p, &val, depth + 1);
        if (st) return st;
        p->nodes[key].value = val;
        if (last < 0) p->nodes[id].first = key;
        else p->nodes[last].next = key;
        last = key;
        py_skip(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        py_skip(p);
        if (p->s >= p->end || *p->s != '}') return py_fail(p, "expected ',' or '}' in a dict");
    }
    *out = id;
    return KVP_OK;
}

static kvp_status py_parse_value(py_parser *p, int32_t *out, int depth) {
    if (depth > 8) return py_fail(p, "literal nested too deeply");
    py_skip(p);
    if (p->s >= p->end) return py_fail(p, "unexpected end of file");
    char c = *p->s;
    if (c == '{') return py_parse_dict(p, out, depth);
    if (c == '\'' || c == '"') return py_parse_string(p, out);
    if ((c == 'u' || c == 'U') && p->end - p->s >= 2 && (p->s[1] == '\'' || p->s[1] == '"'))
        return py_parse_string(p, out);
    if (c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9')) return py_parse_number(p, out);
    return py_fail(p, "expected a dict, a string or a number");
}

static bool py_word_at(const py_parser *p, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(p->end - p->s) < n || memcmp(p->s, w, n) != 0) return false;
    if ((size_t)(p->end - p->s) == n) return true;
    char c = p->s[n];
    return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
}

/* The whole file: import lines, then "P = <literal>", then nothing else. */
static kvp_status py_parse_file(py_parser *p, int32_t *root) {
    for (;;) {
        py_skip(p);
        if (p->s >= p->end) return py_fail(p, "no 'P = {...}' assignment");
        if (py_word_at(p, "from") || py_word_at(p, "import")) {
            while (p->s < p->end && *p->s != '\n') p->s++;
            continue;
        }
        break;
    }
    if (!py_word_at(p, "P")) return py_fail(p, "expected 'P = {...}'");
    p->s++;
    py_skip(p);
    if (p->s >= p->end || *p->s != '=') return py_fail(p, "expected '=' after P");
    p->s++;
    kvp_status st = py_parse_value(p, root, 0);
    if (st) return st;
    py_skip(p);
    if (p->s < p->end) return py_fail(p, "unexpected text after the literal");
    return KVP_OK;
}

/* ---- From the parsed literals to the tables --------------------------- */

static int state_of(const py_parser *p, const py_node *key) {
    if (key->kind != PY_STR || key->s_len != 1) return -1;
    switch (p->str[key->s_off]) {
    case 'B': return KVJB_B;
    case 'E': return KVJB_E;
    case 'M': return KVJB_M;
    case 'S': return KVJB_S;
    }
    return -1;
}

static kvp_status node_fail(const py_parser *p, const py_node *n, const char *what) {
    return kvu_fail(p->err, KVP_ERR_FORMAT, "%s:%d: %s", p->path, n->line, what);
}

/* Walks a dict keyed by the four states; calls fill for each (state, value)
 * and checks that all four are there. */
typedef kvp_status (*state_fill_fn)(py_parser *p, int state, const py_node *value, kvjb_hmm *hmm);

static kvp_status walk_states(py_parser *p, int32_t root, state_fill_fn fill, kvjb_hmm *hmm) {
    const py_node *r = &p->nodes[root];
    if (r->kind != PY_DICT) return node_fail(p, r, "P must be a dict keyed by 'B', 'E', 'M', 'S'");
    bool seen[KVJB_NSTATES] = {false};
    for (int32_t k = r->first; k >= 0; k = p->nodes[k].next) {
        const py_node *key = &p->nodes[k];
        int s = state_of(p, key);
        if (s < 0) return node_fail(p, key, "a key of P is not one of 'B', 'E', 'M', 'S'");
        seen[s] = true;
        kvp_status st = fill(p, s, &p->nodes[key->value], hmm);
        if (st) return st;
    }
    static const char names[] = "BEMS";
    for (int s = 0; s < KVJB_NSTATES; s++)
        if (!seen[s])
            return kvu_fail(p->err, KVP_ERR_FORMAT, "%s: P has no entry for state '%c'", p->path,
                            names[s]);
    return KVP_OK;
}

static kvp_status fill_start(py_parser *p, int s, const py_node *v, kvjb_hmm *hmm) {
    if (v->kind != PY_NUM) return node_fail(p, v, "a start probability must be a number");
    hmm->start[s] = v->num;
    return KVP_OK;
}

static kvp_status fill_trans(py_parser *p, int s, const py_node *v, kvjb_hmm *hmm) {
    if (v->kind != PY_DICT) return node_fail(p, v, "a transition row must be a dict");
    for (int32_t k = v->first; k >= 0; k = p->nodes[k].next) {
        const py_node *key = &p->nodes[k];
        int to = state_of(p, key);
        if (to < 0) return node_fail(p, key, "a transition target is not one of 'B', 'E', 'M', 'S'");
        const py_node *val = &p->nodes[key->value];
        if (val->kind != PY_NUM) return node_fail(p, val, "a transition probability must be a number");
        hmm->trans[s][to] = val->num;
    }
    return KVP_OK;
}

static kvp_status fill_emit(py_parser *p, int s, const py_node *v, kvjb_hmm *hmm) {
    if (v->kind != PY_DICT) return node_fail(p, v, "an emission row must be a dict");
    for (int32_t k = v->first; k >= 0; k = p->nodes[k].next) {
        const py_node *key = &p->nodes[k];
        int len = 0;
        int32_t cp = key->kind == PY_STR && key->s_len > 0
                         ? kvjb_utf8_decode((const unsigned char *)p->str + key->s_off, key->s_len, &len)
                         : -1;
        if (cp < 0 || (uint32_t)len != key->s_len)
            return node_fail(p, key, "an emission key must be a one-character string");
        const py_node *val = &p->nodes[key->value];
        if (val->kind != PY_NUM) return node_fail(p, val, "an emission probability must be a number");
        /* Only finalseg's Han range is ever looked up. */
        if ((uint32_t)cp >= KVJB_HAN_LO && (uint32_t)cp <= KVJB_HAN_HI)
            hmm->emit[(size_t)s * KVJB_HAN_N + ((uint32_t)cp - KVJB_HAN_LO)] = val->num;
    }
    return KVP_OK;
}

static kvp_status load_table(const char *dir, const char *name, state_fill_fn fill, kvjb_hmm *hmm,
                             kvp_error *err) {
    size_t plen = strlen(dir) + strlen(name) + 16;
    char *path = malloc(plen);
    if (!path) return kvu_fail(err, KVP_ERR_NOMEM, "out of memory");
    snprintf(path, plen, "%s/finalseg/%s", dir, name);
    char *text = NULL;
    size_t len = 0;
    kvp_status st = kvu_read_file(path, &text, &len, err);
    if (st == KVP_OK) {
        py_parser p = {.path = path, .s = text, .end = text + len, .line = 1, .err = err};
        int32_t root;
        st = py_parse_file(&p, &root);
        if (st == KVP_OK) st = walk_states(&p, root, fill, hmm);
        free(p.nodes);
        free(p.str);
        free(text);
    }
    free(path);
    return st;
}

kvp_status kvjb_hmm_load(const char *dir, kvjb_hmm *hmm, kvp_error *err) {
    memset(hmm, 0, sizeof *hmm);
    hmm->emit = malloc((size_t)KVJB_NSTATES * KVJB_HAN_N * sizeof *hmm->emit);
    if (!hmm->emit) return kvu_fail(err, KVP_ERR_NOMEM, "out of memory for the HMM tables");
    for (size_t i = 0; i < (size_t)KVJB_NSTATES * KVJB_HAN_N; i++) hmm->emit[i] = KVJB_MIN_FLOAT;
    for (int a = 0; a < KVJB_NSTATES; a++)
        for (int b = 0; b < KVJB_NSTATES; b++) hmm->trans[a][b] = KVJB_MIN_FLOAT;
    kvp_status st = load_table(dir, "prob_start.py", fill_start, hmm, err);
    if (!st) st = load_table(dir, "prob_trans.py", fill_trans, hmm, err);
    if (!st) st = load_table(dir, "prob_emit.py", fill_emit, hmm, err);
    if (st) kvjb_hmm_free(hmm);
    return st;
}

void kvjb_hmm_free(kvjb_hmm *hmm) {
    free(hmm->emit);
    hmm->emit = NULL;
}

/* ---- Viterbi ------------------------------------------------------------ */

/* finalseg's PrevStatus: the states each state may follow. */
static const uint8_t prev_status[KVJB_NSTATES][2] = {
    [KVJB_B] = {KVJB_E, KVJB_S},
    [KVJB_M] = {KVJB_M, KVJB_B},
    [KVJB_S] = {KVJB_S, KVJB_E},
    [KVJB_E] = {KVJB_B, KVJB_M},
};

static double emit_of(const kvjb_hmm *hmm, int s, uint32_t cp) {
    return hmm->emit[(size_t)s * KVJB_HAN_N + (cp - KVJB_HAN_LO)];
}

void kvjb_viterbi(const kvjb_hmm *hmm, const uint32_t *cps, size_t n, double *v, uint8_t *back,
                  uint8_t *states) {
    for (int y = 0; y < KVJB_NSTATES; y++) v[y] = hmm->start[y] + emit_of(hmm, y, cps[0]);
    for (size_t t = 1; t < n; t++) {
        const double *pv = v + (t - 1) * KVJB_NSTATES;
        double *cv = v + t * KVJB_NSTATES;
        for (int y = 0; y < KVJB_NSTATES; y++) {
            double em = emit_of(hmm, y, cps[t]);
            int y0a = prev_status[y][0], y0b = prev_status[y][1];
            /* Same sums in the same order as (V + trans) + em in Python. */
            double pa = pv[y0a] + hmm->trans[y0a][y] + em;
            double pb = pv[y0b] + hmm->trans[y0b][y] + em;
            /* max over (prob, state) tuples: equal probs go to the later letter. */
            int hi = y0a > y0b ? y0a : y0b, lo = y0a > y0b ? y0b : y0a;
            double phi = y0a > y0b ? pa : pb, plo = y0a > y0b ? pb : pa;
            if (phi >= plo) {
                cv[y] = phi;
                back[t * KVJB_NSTATES + (size_t)y] = (uint8_t)hi;
            } else {
                cv[y] = plo;
                back[t * KVJB_NSTATES + (size_t)y] = (uint8_t)lo;
            }
        }
    }
    const double *last = v + (n - 1) * KVJB_NSTATES;
    int s = last[KVJB_S] >= last[KVJB_E] ? KVJB_S : KVJB_E;
    for (size_t t = n; t-- > 0;) {
        states[t] = (uint8_t)s;
        if (t > 0) s = back[t * KVJB_NSTATES + (size_t)s];
    }
}
