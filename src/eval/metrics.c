#include "kvprune_eval/metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/pystr.h"

static size_t strip_in_place(char *s, size_t len) {
    size_t end, b = kvpy_strip(s, len, &end);
    memmove(s, s + b, end - b);
    s[end - b] = '\0';
    return end - b;
}

size_t kvev_match_clean(char *s, size_t len) {
    len = strip_in_place(s, len);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20) s[i] = '\n';
    return strip_in_place(s, len);
}

/* Simple lowercase mapping; 0 means "two code points", handled by caller. */
static uint32_t lower_cp(uint32_t c) {
    if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x130) return 0;
        if (c == 0x178) return 0xFF;
        if ((c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
            return (c % 2 == 0) ? c + 1 : c;
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
            return (c % 2 == 1) ? c + 1 : c;
        return c;
    }
    if (c >= 0x386 && c <= 0x3AB) {
        if (c == 0x386) return 0x3AC;
        if (c >= 0x388 && c <= 0x38A) return c + 37;
        if (c == 0x38C) return 0x3CC;
        if (c == 0x38E || c == 0x38F) return c + 63;
        if ((c >= 0x391 && c <= 0x3A1) || (c >= 0x3A3 && c <= 0x3AB)) return c + 32;
        return c;
    }
    if (c >= 0x400 && c <= 0x52F) {
        if (c <= 0x40F) return c + 80;
        if (c <= 0x42F) return c + 32;
        if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0))
            return (c % 2 == 0) ? c + 1 : c;
        if (c == 0x4C0) return 0x4CF;
        if (c >= 0x4C1 && c <= 0x4CE) return (c % 2 == 1) ? c + 1 : c;
        return c;
    }
    return c;
}

char *kvev_utf8_lower(const char *s, size_t len, size_t *out_len) {
    /* Lowercase never needs more than 3 bytes for 2 input bytes (U+0130). */
    unsigned char *o = malloc(len * 2 + 1);
    if (!o) return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t adv;
        uint32_t c = kvpy_utf8_next(u + i, len - i, &adv);
        if (adv == 1 && u[i] >= 0x80) { /* invalid byte: copy as is */
            o[n++] = u[i++];
            continue;
        }
        uint32_t l = lower_cp(c);
        if (l == 0 && c != 0) { /* U+0130 -> "i" U+0307 */
            o[n++] = 'i';
            n += kvpy_utf8_put(0x307, o + n);
        } else {
            n += kvpy_utf8_put(l, o + n);
        }
        i += adv;
    }
    o[n] = '\0';
    *out_len = n;
    return (char *)o;
}

static const char *find_bytes(const char *h, size_t hn, const char *n, size_t nn) {
    if (nn == 0) return h;
    if (nn > hn) return NULL;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == n[0] && memcmp(h + i, n, nn) == 0) return h + i;
    return NULL;
}

double kvev_match_fraction(const char *pred, size_t pred_len, char *const *refs,
                          const size_t *ref_lens, size_t n_refs) {
    if (n_refs == 0) return -1;
    char *p = malloc(pred_len + 1);
    if (!p) return -2;
    memcpy(p, pred, pred_len);
    p[pred_len] = '\0';
    size_t plen = kvev_match_clean(p, pred_len), llen;
    char *pl = kvev_utf8_lower(p, plen, &llen);
    free(p);
    if (!pl) return -2;
    /* Python: sum([1.0 if r in pred else 0.0 for r in ref]) / len(ref). */
    double found = 0.0;
    for (size_t i = 0; i < n_refs; i++) {
        size_t rl;
        char *r = kvev_utf8_lower(refs[i], ref_lens ? ref_lens[i] : strlen(refs[i]), &rl);
        if (!r) {
            free(pl);
            return -2;
        }
        found += find_bytes(pl, llen, r, rl) ? 1.0 : 0.0;
        free(r);
    }
    free(pl);
    return found / (double)n_refs;
}

double kvev_match_acc_score(const kvev_match_acc *acc) {
    if (acc->n == 0) return -1;
    return kvev_py_round(acc->sum / (double)acc->n * 100.0, 2);
}

double kvev_py_round(double x, int ndigits) {
    if (!isfinite(x)) return x;
    /* glibc's printf rounds the exact binary value half-even, like CPython's
     * dtoa-based round(). */
    char buf[512];
    snprintf(buf, sizeof buf, "%.*f", ndigits, x);
    double r = strtod(buf, NULL);
    if (r == 0.0) r = copysign(0.0, x);
    return r;
}

void kvev_py_float_repr(double x, char *buf, size_t size) {
    if (isnan(x)) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(x)) {
        snprintf(buf, size, x < 0 ? "-inf" : "inf");
        return;
    }
    if (x == 0.0) {
        snprintf(buf, size, signbit(x) ? "-0.0" : "0.0");
        return;
    }
    char e[40];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, x);
        if (strtod(e, NULL) == x) break;
    }
    /* e = "[-]d.ddde[+-]XX": collect the digits and the exponent. */
    char digits[24];
    size_t nd = 0;
    const char *q = e;
    bool neg = *q == '-';
    if (neg) q++;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9') digits[nd++] = *q;
    digits[nd] = '\0';
    int exp10 = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') digits[--nd] = '\0';
    char out[64];
    size_t n = 0;
    if (neg) out[n++] = '-';
    if (exp10 >= -5 && exp10 <= 15 && exp10 != -5) {
        if (exp10 < 0) {
            out[n++] = '0';
            out[n++] = '.';
            for (int i = 0; i < -exp10 - 1; i++) out[n++] = '0';
            for (size_t i = 0; i < nd; i++) out[n++] = digits[i];
        } else {
            for (int i = 0; i <= exp10; i++) out[n++] = (size_t)i < nd ? digits[i] : '0';
            out[n++] = '.';
            if ((size_t)exp10 + 1 < nd)
                for (size_t i = (size_t)exp10 + 1; i < nd; i++) out[n++] = digits[i];
            else
                out[n++] = '0';
        }
        out[n] = '\0';
    } else {
        out[n++] = digits[0];
        if (nd > 1) {
            out[n++] = '.';
            for (size_t i = 1; i < nd; i++) out[n++] = digits[i];
        }
        out[n] = '\0';
        snprintf(out + n, sizeof out - n, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    }
    snprintf(buf, size, "%s", out);
}

size_t kvev_niah_postprocess(char *s, size_t len) {
    static const char *const cuts[] = {".assistant", "\n\nQuestion", "</s>"};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        const char *hit = find_bytes(s, len, cuts[i], strlen(cuts[i]));
        if (hit) {
            len = (size_t)(hit - s);
            s[len] = '\0';
        }
    }
    return strip_in_place(s, len);
}
