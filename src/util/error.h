/* Internal error helpers shared by every layer. */
#ifndef KVP_UTIL_ERROR_H
#define KVP_UTIL_ERROR_H

#include "kvprune.h"

#if defined(__GNUC__)
#define KVP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KVP_PRINTF(a, b)
#endif

/* Fills err (if not NULL) and returns status, so callers can write
 * `return kvu_fail(err, KVP_ERR_FORMAT, "%s: bad magic", path);`. */
kvp_status kvu_fail(kvp_error *err, kvp_status status, const char *fmt, ...)
    KVP_PRINTF(3, 4);

/* Prefixes an existing message with more context ("loading X: <old>") and
 * returns status, the failed call's own (err may be NULL, so the status
 * cannot come from it). */
kvp_status kvu_fail_prefix(kvp_error *err, kvp_status status, const char *fmt, ...)
    KVP_PRINTF(3, 4);

/* Clears err to KVP_OK with an empty message. */
void kvu_error_clear(kvp_error *err);

#endif
