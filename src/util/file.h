/* Whole-file reading shared by the library and the CLI. */
#ifndef KVP_UTIL_FILE_H
#define KVP_UTIL_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "kvprune.h"

/* Reads a whole file into a NUL-terminated buffer (free with free()); the
 * error names the path. */
kvp_status kvp_read_file(const char *path, char **out, size_t *len, kvp_error *err);

/* Writes data to path through a temporary file renamed into place, so a
 * reader never sees a half-written file. */
kvp_status kvp_write_file_atomic(const char *path, const char *data, size_t len, kvp_error *err);

/* "a/b", malloc'ed (NULL when out of memory). */
char *kvfile_join(const char *a, const char *b);
/* Whether path names an existing directory / regular file. */
bool kvfile_is_dir(const char *path);
bool kvfile_is_file(const char *path);

#endif
