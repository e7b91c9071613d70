#include "eval/pystr.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

uint32_t kvpy_utf8_next(const unsigned char *s, size_t n, size_t *adv) {
    uint32_t c = s[0];
    size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (k <= 1 || k > n) {
        *adv = 1;
        return c;
    }
    uint32_t v = c & (0x7F >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *adv = 1;
            return c;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    *adv = k;
    return v;
}

size_t kvpy_utf8_put(uint32_t c, unsigned char *o) {
    if (c < 0x80) {
        o[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (unsigned char)(0xC0 | (c >> 6));
        o[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (c >> 12));
        o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (c >> 18));
    o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

bool kvpy_decode(const char *s, size_t len, uint32_t **out, size_t *n) {
    uint32_t *cp = malloc((len + 1) * sizeof *cp);
    if (!cp) return false;
    size_t k = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t adv;
        cp[k++] = kvpy_utf8_next(u + i, len - i, &adv);
        i += adv;
    }
    *out = cp;
    *n = k;
    return true;
}

char *kvpy_encode(const uint32_t *cp, size_t n, size_t *out_len) {
    unsigned char *o = malloc(n * 4 + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += kvpy_utf8_put(cp[i], o + k);
    o[k] = '\0';
    if (out_len) *out_len = k;
    return (char *)o;
}

bool kvpy_isspace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

static utf8proc_category_t category(uint32_t c) {
    if (c > 0x10FFFF) return UTF8PROC_CATEGORY_CN;
    return (utf8proc_category_t)utf8proc_category((utf8proc_int32_t)c);
}

bool kvpy_isword(uint32_t c) {
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
    switch (category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return true;
    default:
        return false;
    }
}

bool kvpy_isdecimal(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    return category(c) == UTF8PROC_CATEGORY_ND;
}

size_t kvpy_strip(const char *s, size_t len, size_t *end) {
    const unsigned char *u = (const unsigned char *)s;
    size_t b = 0, adv;
    while (b < len && kvpy_isspace(kvpy_utf8_next(u + b, len - b, &adv))) b += adv;
    size_t e = len;
    while (e > b) {
        size_t p = e - 1;
        while (p > b && (u[p] & 0xC0) == 0x80 && e - p < 4) p--;
        uint32_t c = kvpy_utf8_next(u + p, e - p, &adv);
        if (p + adv != e) { /* not a whole character: step one byte */
            p = e - 1;
            c = u[p];
        }
        if (!kvpy_isspace(c)) break;
        e = p;
    }
    *end = e;
    return b;
}

/* Unicode "Cased": Lu, Ll, Lt, and Other_Lowercase/Other_Uppercase (letters
 * with a case mapping, modifier letters written as small capitals). */
static bool is_cased(uint32_t c) {
    utf8proc_category_t k = category(c);
    if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT)
        return true;
    if (c > 0x10FFFF) return false;
    if ((uint32_t)utf8proc_tolower((utf8proc_int32_t)c) != c ||
        (uint32_t)utf8proc_toupper((utf8proc_int32_t)c) != c)
        return true;
    return c == 0xAA || c == 0xBA || (c >= 0x2B0 && c <= 0x2B8) || (c >= 0x2C0 && c <= 0x2C1) ||
           (c >= 0x2E0 && c <= 0x2E4) || c == 0x345 || c == 0x37A ||
           (c >= 0x1D2C && c <= 0x1D6A) || c == 0x1D78 || (c >= 0x1D9B && c <= 0x1DBF) ||
           c == 0x2071 || c == 0x207F || (c >= 0x2090 && c <= 0x209C) ||
           (c >= 0x2170 && c <= 0x217F) || (c >= 0x24B6 && c <= 0x24E9) ||
           (c >= 0x2C7C && c <= 0x2C7D) || (c >= 0xA69C && c <= 0xA69D) || c == 0xA770 ||
           (c >= 0xA7F8 && c <= 0xA7F9) || (c >= 0xAB5C && c <= 0xAB5F);
}

/* Unicode "Case_Ignorable": Mn, Me, Cf, Lm, Sk and the word-break classes
 * MidLetter, MidNumLet and Single_Quote. */
static bool is_case_ignorable(uint32_t c) {
    switch (c) {
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4:
    case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52:
    case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
        return true;
    default:
        break;
    }
    switch (category(c)) {
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_SK:
        return true;
    default:
        return false;
    }
}

/* CPython's handle_capital_sigma. */
static uint32_t lower_sigma(const uint32_t *s, size_t n, size_t i) {
    size_t j = i;
    uint32_t c = 0;
    bool found = false;
    while (j > 0) {
        c = s[--j];
        if (!is_case_ignorable(c)) {
            found = true;
            break;
        }
    }
    bool final_sigma = found && is_cased(c);
    if (final_sigma && i + 1 < n) {
        for (j = i + 1; j < n; j++) {
            c = s[j];
            if (!is_case_ignorable(c)) break;
        }
        final_sigma = j == n || !is_cased(c);
    }
    return final_sigma ? 0x3C2 : 0x3C3;
}

bool kvpy_lower(const uint32_t *s, size_t n, uint32_t **out, size_t *out_n) {
    uint32_t *o = malloc((2 * n + 1) * sizeof *o);
    if (!o) return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c < 0x80) {
            o[k++] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
        } else if (c == 0x130) {
            o[k++] = 'i';
            o[k++] = 0x307;
        } else if (c == 0x3A3) {
            o[k++] = lower_sigma(s, n, i);
        } else if (c <= 0x10FFFF) {
            o[k++] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
        } else {
            o[k++] = c;
        }
    }
    *out = o;
    *out_n = k;
    return true;
}
