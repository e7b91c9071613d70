#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *kvp_status_str(kvp_status s) {
    switch (s) {
    case KVP_OK: return "ok";
    case KVP_ERR_IO: return "i/o error";
    case KVP_ERR_FORMAT: return "format error";
    case KVP_ERR_UNSUPPORTED: return "unsupported";
    case KVP_ERR_INVALID_ARG: return "invalid argument";
    case KVP_ERR_NOMEM: return "out of memory";
    case KVP_ERR_RANGE: return "out of range";
    case KVP_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

void kvp_free(void *p) { free(p); }

void kvu_error_clear(kvp_error *err) {
    if (!err) return;
    err->status = KVP_OK;
    err->message[0] = '\0';
}

kvp_status kvu_fail(kvp_error *err, kvp_status status, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

kvp_status kvu_fail_prefix(kvp_error *err, kvp_status status, const char *fmt, ...) {
    if (!err) return status;
    char prefix[KVP_ERROR_MSG_MAX];
    char old[KVP_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    /* Truncation is fine here: the message is for people. */
    size_t n = strlen(prefix);
    if (n > sizeof err->message - 3) n = sizeof err->message - 3;
    memcpy(err->message, prefix, n);
    memcpy(err->message + n, ": ", 2);
    size_t room = sizeof err->message - n - 2;
    size_t m = strnlen(old, room - 1);
    memcpy(err->message + n + 2, old, m);
    err->message[n + 2 + m] = '\0';
    err->status = status;
    return status;
}
