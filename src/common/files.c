// common/files.c — temporaries created exclusively beside their target, and
// the check that a command's output is none of its inputs (files.h).
#define _POSIX_C_SOURCE 200809L
#include "common/files.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { TEMP_TRIES = 1000 };

// Tries PATH.tmp, then PATH.<pid>-<n>.tmp, with make(name) until one does
// not fail with EEXIST. Returns what make returned (>= 0) with *tmp set, or
// -1 with an error.
static int temp_try(const char *path, char **tmp, int (*make)(const char *name, const void *arg), const void *arg) {
    static unsigned counter;  // names differ between the threads' calls too (the first wins each name)
    size_t n = strlen(path) + 48;
    char *name = xmalloc(n);
    int e = 0;
    for (int i = 0; i < TEMP_TRIES; i++) {
        if (i == 0) snprintf(name, n, "%s.tmp", path);
        else snprintf(name, n, "%s.%ld-%u.tmp", path, (long)getpid(), __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
        int fd = make(name, arg);
        if (fd >= 0) {
            *tmp = name;
            return fd;
        }
        if ((e = errno) != EEXIST) break;
    }
    err_set(NMT_ERR_RUNTIME, "%s: cannot create: %s", name, strerror(e));
    free(name);
    *tmp = NULL;
    return -1;
}

static int make_file(const char *name, const void *arg) {
    (void)arg;
    return open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
}

static int make_link(const char *name, const void *existing) { return link(existing, name); }

int temp_create(const char *path, char **tmp) { return temp_try(path, tmp, make_file, NULL); }

int temp_link(const char *existing, const char *path, char **tmp) {
    return temp_try(path, tmp, make_link, existing) < 0 ? -1 : 0;
}

int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int refuse_same_file(const FileArg *out, const FileArg *in, int n) {
    for (int i = 0; i < n; i++) {
        if (!out->path || !in[i].path || !same_file(out->path, in[i].path)) continue;
        int std_in = strcmp(in[i].path, "/dev/stdin") == 0;
        return err_set(NMT_ERR_INPUT, "%s %s: is the same file as %s%s%s (nmt never writes over a file it reads)",
                       out->option, out->path, std_in ? "the standard input" : in[i].option, std_in ? "" : " ",
                       std_in ? "" : in[i].path);
    }
    return NMT_OK;
}
