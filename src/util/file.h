/* Whole-file reading shared by the library and the CLI. */
#ifndef KVP_UTIL_FILE_H
#define KVP_UTIL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "kvprune.h"

/* Reads a whole file into a NUL-terminated buffer (free with free()); the
 * error names the path. */
kvp_status kvu_read_file(const char *path, char **out, size_t *len, kvp_error *err);

/* Writes data to path through a temporary file renamed into place, so a
 * reader never sees a half-written file. */
kvp_status kvu_write_file_atomic(const char *path, const char *data, size_t len, kvp_error *err);

/* "a/b", malloc'ed (NULL when out of memory). */
char *kvfile_join(const char *a, const char *b);
/* Whether path names an existing directory / regular file. */
bool kvfile_is_dir(const char *path);
bool kvfile_is_file(const char *path);

/* An output written in full or not at all: kvf_atomic_open gives a FILE
 * for a file that has no name yet (O_TMPFILE; a named temporary file where
 * the file system lacks it), kvf_atomic_commit flushes, syncs and puts it
 * at its path (replacing what was there), kvf_atomic_abort discards it. A
 * process killed before the commit leaves the old file as it was and no
 * temporary one. */
typedef struct kvf_atomic {
    FILE *f;
    int fd;
    char *path, *tmp;
    bool unnamed;
} kvf_atomic;

kvp_status kvf_atomic_open(kvf_atomic *a, const char *path, kvp_error *err);
kvp_status kvf_atomic_commit(kvf_atomic *a, kvp_error *err);
void kvf_atomic_abort(kvf_atomic *a);

#endif
