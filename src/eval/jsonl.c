#include "kvprune_eval/jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

/* kvjl_parse; with torn_line not NULL, a last line without a newline that
 * is not a whole object is skipped and its number stored there. */
static kvp_status parse(const char *path, const char *buf, size_t len, kvev_jsonl *out,
                        size_t *torn_line, kvp_error *err) {
    out->items = NULL;
    out->n = 0;
    if (torn_line) *torn_line = 0;
    size_t cap = 0, line = 0;
    for (size_t pos = 0; pos < len;) {
        line++;
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        const char *s = buf + pos;
        size_t n = end - pos;
        pos = end + 1;
        if (blank(s, n)) continue;
        json_error_t jerr;
        json_t *v = kvu_json_loadb(s, n, JSON_ALLOW_NUL, &jerr);
        if (!v && kvu_json_oom(&jerr)) {
            kvev_jsonl_free(out);
            return kvu_fail(err, KVP_ERR_NOMEM, "%s:%zu: out of memory", path, line);
        }
        if ((!v || !json_is_object(v)) && !nl && torn_line) {
            /* no newline and no whole object: what a killed writer leaves */
            json_decref(v);
            *torn_line = line;
            break;
        }
        if (!v) {
            kvev_jsonl_free(out);
            return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: invalid JSON at column %d: %s", path,
                            line, jerr.column, jerr.text);
        }
        if (!json_is_object(v)) {
            json_decref(v);
            kvev_jsonl_free(out);
            return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: expected a JSON object", path, line);
        }
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            kvev_jsonl_item *ni = realloc(out->items, nc * sizeof *ni);
            if (!ni) {
                json_decref(v);
                kvev_jsonl_free(out);
                    return kvu_fail(err, KVP_ERR_NOMEM, "%s:%zu: out of memory", path, line);
            }
            out->items = ni;
            cap = nc;
        }
        out->items[out->n].value = v;
        out->items[out->n].line = line;
        out->n++;
    }
    return KVP_OK;
}

kvp_status kvjl_parse(const char *path, const char *buf, size_t len, kvev_jsonl *out,
                      kvp_error *err) {
    return parse(path, buf, len, out, NULL, err);
}

kvp_status kvev_jsonl_read(const char *path, kvev_jsonl *out, kvp_error *err) {
    return kvev_jsonl_read_partial(path, out, NULL, err);
}

kvp_status kvev_jsonl_read_partial(const char *path, kvev_jsonl *out, size_t *torn_line,
                                   kvp_error *err) {
    out->items = NULL;
    out->n = 0;
    if (torn_line) *torn_line = 0;
    char *buf = NULL;
    size_t len = 0;
    kvp_status st = kvu_read_file(path, &buf, &len, err);
    if (st != KVP_OK) return st;
    st = parse(path, buf, len, out, torn_line, err);
    free(buf);
    return st;
}

void kvev_jsonl_free(kvev_jsonl *j) {
    if (!j) return;
    for (size_t i = 0; i < j->n; i++) json_decref(j->items[i].value);
    free(j->items);
    j->items = NULL;
    j->n = 0;
}

kvp_status kvev_jsonl_repair(const char *path, size_t *dropped, kvp_error *err) {
    *dropped = 0;
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        if (errno == ENOENT) return KVP_OK;
        return kvu_fail(err, KVP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return kvu_fail(err, KVP_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    /* Scan backwards for the last newline. */
    off_t size = sb.st_size, keep = 0;
    char chunk[4096];
    for (off_t end = size; end > 0;) {
        off_t start = end > (off_t)sizeof chunk ? end - (off_t)sizeof chunk : 0;
        ssize_t got = pread(fd, chunk, (size_t)(end - start), start);
        if (got != end - start) {
            close(fd);
            return kvu_fail(err, KVP_ERR_IO, "%s: read error while checking the last line", path);
        }
        off_t k = got;
        while (k > 0 && chunk[k - 1] != '\n') k--;
        if (k > 0) {
            keep = start + k;
            break;
        }
        end = start;
    }
    if (keep < size) {
        if (ftruncate(fd, keep) != 0) {
            close(fd);
            return kvu_fail(err, KVP_ERR_IO, "%s: cannot truncate the torn last line: %s", path,
                            strerror(errno));
        }
        fsync(fd);
        *dropped = (size_t)(size - keep);
    }
    close(fd);
    return KVP_OK;
}

kvp_status kvev_jsonl_writer_open(kvev_jsonl_writer *w, const char *path, int sync_every,
                                 kvp_error *err) {
    memset(w, 0, sizeof *w);
    w->path = strdup(path);
    if (!w->path) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", path);
    w->f = fopen(path, "ab");
    if (!w->f) {
        kvp_status st = kvu_fail(err, KVP_ERR_IO, "%s: cannot open for appending: %s", path,
                                 strerror(errno));
        free(w->path);
        w->path = NULL;
        return st;
    }
    w->sync_every = sync_every > 0 ? sync_every : 1;
    return KVP_OK;
}

kvp_status kvev_jsonl_writer_put(kvev_jsonl_writer *w, const json_t *value, kvp_error *err) {
    char *s = json_dumps(value, JSON_PRESERVE_ORDER);
    if (!s) return kvu_fail(err, KVP_ERR_NOMEM, "%s: cannot serialise a line", w->path);
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", w->path);
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    size_t put = fwrite(line, 1, n + 1, w->f);
    free(line);
    if (put != n + 1 || fflush(w->f) != 0)
        return kvu_fail(err, KVP_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    if (++w->since_sync >= w->sync_every) {
        fsync(fileno(w->f));
        w->since_sync = 0;
    }
    return KVP_OK;
}

kvp_status kvev_jsonl_writer_close(kvev_jsonl_writer *w, kvp_error *err) {
    kvp_status st = KVP_OK;
    if (w->f) {
        if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)
            st = kvu_fail(err, KVP_ERR_IO, "%s: flush failed: %s", w->path, strerror(errno));
        if (fclose(w->f) != 0 && st == KVP_OK)
            st = kvu_fail(err, KVP_ERR_IO, "%s: close failed: %s", w->path, strerror(errno));
    }
    free(w->path);
    memset(w, 0, sizeof *w);
    return st;
}

kvp_status kvjl_writer_finish(kvev_jsonl_writer *w, kvp_status st, kvp_error *err) {
    kvp_error cerr;
    kvp_status cst = kvev_jsonl_writer_close(w, &cerr);
    if (st == KVP_OK && cst != KVP_OK) {
        st = cst;
        if (err) *err = cerr;
    }
    return st;
}

kvp_status kvev_json_get_string(const json_t *obj, const char *key, bool required,
                               const char *file, size_t line, const char **out,
                               kvp_error *err) {
    *out = NULL;
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: missing field '%s'", file, line, key);
        return KVP_OK;
    }
    if (!json_is_string(v))
        return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: field '%s' must be a string", file, line,
                        key);
    *out = json_string_value(v);
    return KVP_OK;
}

kvp_status kvev_json_get_int(const json_t *obj, const char *key, bool required,
                            const char *file, size_t line, long long *out, bool *present,
                            kvp_error *err) {
    if (present) *present = false;
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: missing field '%s'", file, line, key);
        return KVP_OK;
    }
    if (!json_is_integer(v))
        return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: field '%s' must be an integer", file,
                        line, key);
    *out = json_integer_value(v);
    if (present) *present = true;
    return KVP_OK;
}

void kvev_strv_free(char **v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

kvp_status kvev_json_get_string_list(const json_t *obj, const char *key, const char *file,
                                    size_t line, char ***out, size_t *n, kvp_error *err) {
    *out = NULL;
    *n = 0;
    json_t *v = json_object_get(obj, key);
    if (!v) return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: missing field '%s'", file, line, key);
    if (!json_is_array(v))
        return kvu_fail(err, KVP_ERR_FORMAT, "%s:%zu: field '%s' must be a list of strings",
                        file, line, key);
    size_t m = json_array_size(v);
    char **list = calloc(m ? m : 1, sizeof *list);
    if (!list) return kvu_fail(err, KVP_ERR_NOMEM, "%s:%zu: out of memory", file, line);
    for (size_t i = 0; i < m; i++) {
        json_t *e = json_array_get(v, i);
        char num[32];
        const char *s = NULL;
        if (json_is_string(e)) {
            s = json_string_value(e);
            if (strlen(s) != json_string_length(e)) {
                kvev_strv_free(list, i);
                return kvu_fail(err, KVP_ERR_FORMAT,
                                "%s:%zu: field '%s' item %zu holds a NUL character", file, line,
                                key, i);
            }
        } else if (json_is_integer(e)) {
            snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(e));
            s = num;
        } else {
            kvev_strv_free(list, i);
            return kvu_fail(err, KVP_ERR_FORMAT,
                            "%s:%zu: field '%s' item %zu must be a string", file, line, key, i);
        }
        list[i] = strdup(s);
        if (!list[i]) {
            kvev_strv_free(list, i);
            return kvu_fail(err, KVP_ERR_NOMEM, "%s:%zu: out of memory", file, line);
        }
    }
    *out = list;
    *n = m;
    return KVP_OK;
}

kvp_status kvev_json_write_file_atomic(const char *path, const json_t *value, kvp_error *err) {
    char *text = json_dumps(value, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    if (!text) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", path);
    size_t n = strlen(text);
    char *withnl = realloc(text, n + 2);
    if (!withnl) {
        free(text);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", path);
    }
    withnl[n] = '\n';
    withnl[n + 1] = '\0';
    kvp_status st = kvu_write_file_atomic(path, withnl, n + 1, err);
    free(withnl);
    return st;
}

kvp_status kvev_write_file_atomic(const char *path, const char *data, size_t len,
                                  kvp_error *err) {
    return kvu_write_file_atomic(path, data, len, err);
}

kvp_status kvev_mkdirs(const char *path, kvp_error *err) {
    char *p = strdup(path);
    if (!p) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", path);
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            kvp_status st = kvu_fail(err, KVP_ERR_IO, "%s: cannot create directory: %s", p,
                                     strerror(errno));
            free(p);
            return st;
        }
        p[i] = c;
    }
    free(p);
    return KVP_OK;
}
