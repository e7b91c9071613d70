/* O_TMPFILE */
#define _GNU_SOURCE
#include "util/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"

kvp_status kvu_read_file(const char *path, char **out, size_t *len, kvp_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return kvu_fail(err, KVP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(f);
        return kvu_fail(err, KVP_ERR_IO, "%s: is a directory, not a file", path);
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n + 1 < cap) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf) return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory reading the file", path);
    if (bad) {
        free(buf);
        return kvu_fail(err, KVP_ERR_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return KVP_OK;
}

/* The folder part of path ("." when there is none), malloc'ed. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* A writer killed between naming its file (<path>.tmp.<pid>) and the
 * rename leaves that name behind: the next writer of the path removes the
 * ones whose process is gone. */
static void remove_stale_temporaries(const char *dir, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t bl = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) != 0 || strncmp(n + bl, ".tmp.", 5) != 0) continue;
        char *end = NULL;
        long pid = strtol(n + bl + 5, &end, 10);
        if (pid <= 0 || *end || !n[bl + 5] || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) unlinkat(dirfd(d), n, 0);
    }
    closedir(d);
}

kvp_status kvf_atomic_open(kvf_atomic *a, const char *path, kvp_error *err) {
    memset(a, 0, sizeof *a);
    a->fd = -1;
    size_t n = strlen(path) + 32;
    a->path = strdup(path);
    a->tmp = malloc(n);
    char *dir = dir_of(path);
    if (!a->path || !a->tmp || !dir) {
        free(dir);
        kvf_atomic_abort(a);
        return kvu_fail(err, KVP_ERR_NOMEM, "%s: out of memory", path);
    }
    /* Unnamed until committed: a process killed while writing leaves
     * nothing behind. Where the file system has no O_TMPFILE, a named
     * temporary file instead. */
    /* (linking it needs /proc/self/fd) */
    a->fd = access("/proc/self/fd", X_OK) == 0 ? open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666)
                                               : -1;
    if (a->fd >= 0) remove_stale_temporaries(dir, path);
    free(dir);
    if (a->fd >= 0) {
        a->unnamed = true;
        snprintf(a->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    } else {
        snprintf(a->tmp, n, "%s.tmp.XXXXXX", path);
        a->fd = mkstemp(a->tmp);
        if (a->fd < 0) {
            kvp_status st = kvu_fail(err, KVP_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
            kvf_atomic_abort(a);
            return st;
        }
        (void)fchmod(a->fd, 0644); /* mkstemp's 0600 is too strict for outputs */
    }
    a->f = fdopen(a->fd, "wb");
    if (!a->f) {
        kvp_status st = kvu_fail(err, KVP_ERR_IO, "%s: cannot open for writing: %s", path,
                                 strerror(errno));
        kvf_atomic_abort(a);
        return st;
    }
    return KVP_OK;
}

char *kvfile_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

bool kvfile_is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

bool kvfile_is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

kvp_status kvf_atomic_commit(kvf_atomic *a, kvp_error *err) {
    bool ok = fflush(a->f) == 0 && fsync(a->fd) == 0;
    int e = errno;
    if (ok && a->unnamed) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", a->fd);
        unlink(a->tmp); /* left by a process of the same id, killed */
        ok = linkat(AT_FDCWD, proc, AT_FDCWD, a->tmp, AT_SYMLINK_FOLLOW) == 0;
        e = errno;
        a->unnamed = !ok; /* once linked, a failure must unlink the name */
    }
    ok = (fclose(a->f) == 0) && ok;
    a->f = NULL;
    a->fd = -1;
    if (ok && rename(a->tmp, a->path) != 0) {
        ok = false;
        e = errno;
    }
    if (!ok) {
        kvp_status st = kvu_fail(err, KVP_ERR_IO, "%s: cannot write: %s", a->path, strerror(e));
        kvf_atomic_abort(a);
        return st;
    }
    free(a->path);
    free(a->tmp);
    memset(a, 0, sizeof *a);
    a->fd = -1;
    return KVP_OK;
}

void kvf_atomic_abort(kvf_atomic *a) {
    if (a->f) fclose(a->f);
    else if (a->fd >= 0) close(a->fd);
    if (a->tmp && !a->unnamed && (a->f || a->fd >= 0 || a->path)) unlink(a->tmp);
    free(a->path);
    free(a->tmp);
    memset(a, 0, sizeof *a);
    a->fd = -1;
}

kvp_status kvu_write_file_atomic(const char *path, const char *data, size_t len, kvp_error *err) {
    kvf_atomic a;
    kvp_status st = kvf_atomic_open(&a, path, err);
    if (st != KVP_OK) return st;
    if (len && fwrite(data, 1, len, a.f) != len) {
        st = kvu_fail(err, KVP_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        kvf_atomic_abort(&a);
        return st;
    }
    return kvf_atomic_commit(&a, err);
}
