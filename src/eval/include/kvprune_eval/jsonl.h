/* JSON Lines files: reading with line-numbered errors, appending whole lines
 * durably, and repairing a file whose last line a killed writer tore. */
#ifndef KVP_EVAL_JSONL_H
#define KVP_EVAL_JSONL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "kvprune.h"

/* One parsed line: the JSON value and its 1-based line number. */
typedef struct kvev_jsonl_item {
    json_t *value;
    size_t line;
} kvev_jsonl_item;

typedef struct kvev_jsonl {
    kvev_jsonl_item *items;
    size_t n;
} kvev_jsonl;

/* Reads every non-blank line of `path` as one JSON value. Errors name the
 * file and line ("data.jsonl:7: ..."). A last line without a newline is
 * accepted when it parses. */
kvp_status kvev_jsonl_read(const char *path, kvev_jsonl *out, kvp_error *err);
void kvev_jsonl_free(kvev_jsonl *j);
/* The same over len bytes of buf; `path` names them in errors. */
kvp_status kvjl_parse(const char *path, const char *buf, size_t len, kvev_jsonl *out,
                      kvp_error *err);

/* kvev_jsonl_read, except that a last line without a newline that is not a
 * whole JSON object (a line torn by a killed writer) is skipped: *torn_line
 * receives its number (0: none). Other bad lines are errors as above. */
kvp_status kvev_jsonl_read_partial(const char *path, kvev_jsonl *out, size_t *torn_line,
                                   kvp_error *err);

/* Drops a torn last line (bytes after the last '\n') by truncating the file
 * to its last complete line. *dropped receives the number of bytes removed.
 * A missing file is not an error (*dropped = 0). */
kvp_status kvev_jsonl_repair(const char *path, size_t *dropped, kvp_error *err);

/* Appends lines: each is written with one fwrite and flushed, and the file
 * is fsync'ed every `sync_every` lines and on close, so a kill leaves at most
 * one torn last line (which kvev_jsonl_repair removes). */
typedef struct kvev_jsonl_writer {
    FILE *f;
    char *path;
    int sync_every;
    int since_sync;
} kvev_jsonl_writer;

kvp_status kvev_jsonl_writer_open(kvev_jsonl_writer *w, const char *path,
                                 int sync_every, kvp_error *err);
/* Serialises `value` compactly (keys in insertion order, non-ASCII kept as
 * UTF-8) and appends it with a newline. */
kvp_status kvev_jsonl_writer_put(kvev_jsonl_writer *w, const json_t *value,
                                kvp_error *err);
kvp_status kvev_jsonl_writer_close(kvev_jsonl_writer *w, kvp_error *err);
/* Closes w after a loop that ended with status st: returns st (its message
 * kept in err) when it failed, else the close's own status. */
kvp_status kvjl_writer_finish(kvev_jsonl_writer *w, kvp_status st, kvp_error *err);

/* Field helpers for validating a line; errors read "<file>:<line>: ...". */
kvp_status kvev_json_get_string(const json_t *obj, const char *key, bool required,
                               const char *file, size_t line, const char **out,
                               kvp_error *err);
kvp_status kvev_json_get_int(const json_t *obj, const char *key, bool required,
                            const char *file, size_t line, long long *out,
                            bool *present, kvp_error *err);
/* A list of strings (integers are accepted and converted to their decimal
 * text, since hand-made files write 7-digit values as numbers). *out and each
 * string are malloc'ed copies: free with kvev_strv_free. */
kvp_status kvev_json_get_string_list(const json_t *obj, const char *key,
                                    const char *file, size_t line, char ***out,
                                    size_t *n, kvp_error *err);
void kvev_strv_free(char **v, size_t n);

/* Writes `value` to `path` atomically (temporary file + rename), pretty
 * printed with 4-space indentation and a final newline. */
kvp_status kvev_json_write_file_atomic(const char *path, const json_t *value,
                                      kvp_error *err);

/* Writes len bytes of data to path atomically (temporary file + rename). */
kvp_status kvev_write_file_atomic(const char *path, const char *data, size_t len,
                                  kvp_error *err);

/* Creates a directory and its parents (like mkdir -p). */
kvp_status kvev_mkdirs(const char *path, kvp_error *err);

#endif
