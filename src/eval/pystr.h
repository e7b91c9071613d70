/* Python 3 string semantics on UTF-8 text, for scorers that must agree with
 * Python reference implementations character for character: code point
 * decoding, str.isspace(), str.strip(), str.lower() (full mapping with the
 * final-sigma rule), and the character classes of `re` (\w, \d). */
#ifndef KVP_EVAL_PYSTR_H
#define KVP_EVAL_PYSTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes one code point at s[0..n) (n >= 1); *adv receives its byte
 * length. Invalid bytes decode as themselves, one byte each. */
uint32_t kvpy_utf8_next(const unsigned char *s, size_t n, size_t *adv);
/* Encodes c into o (room for 4 bytes); returns the byte count. */
size_t kvpy_utf8_put(uint32_t c, unsigned char *o);

/* UTF-8 -> code points. *out is malloc'ed (room for len + 1); returns false
 * when out of memory. */
bool kvpy_decode(const char *s, size_t len, uint32_t **out, size_t *n);
/* Code points -> NUL-terminated UTF-8 (malloc'ed, NULL when out of memory). */
char *kvpy_encode(const uint32_t *cp, size_t n, size_t *out_len);

/* str.isspace(): Unicode White_Space as CPython defines it. */
bool kvpy_isspace(uint32_t c);
/* re's \w for str patterns: str.isalnum() or "_". */
bool kvpy_isword(uint32_t c);
/* re's \d for str patterns: Unicode decimal digits (category Nd). */
bool kvpy_isdecimal(uint32_t c);

/* str.strip() on s[0..len): the start offset of the kept bytes, and the end
 * in *end. */
size_t kvpy_strip(const char *s, size_t len, size_t *end);

/* str.lower() on code points: simple case mapping, U+0130 -> "i̇", and
 * capital sigma -> final sigma at the end of a cased word. *out is
 * malloc'ed; returns false when out of memory. */
bool kvpy_lower(const uint32_t *s, size_t n, uint32_t **out, size_t *out_n);

#endif
