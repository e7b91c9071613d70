/* Reading JSON with jansson, telling out-of-memory apart from bad input. */
#ifndef KVP_UTIL_JSON_H
#define KVP_UTIL_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* json_load_file / json_loadb that note whether jansson ran out of memory.
 * jansson reports some of its allocation failures as
 * json_error_out_of_memory, returns from others (the lexer's buffer, a new
 * object or array) without any error text, and reports a string it could
 * not allocate as a syntax error at that string. So its allocator is
 * wrapped (once, chaining to the one set before) to record a failure in
 * the calling thread. */
json_t *kvu_json_load_file(const char *path, size_t flags, json_error_t *je);
json_t *kvu_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *je);

/* True when the last kvu_json_load* call of this thread returned NULL
 * because memory ran out, not because of the input: callers make that
 * KVP_ERR_NOMEM instead of a format error. */
bool kvu_json_oom(const json_error_t *je);

#endif
