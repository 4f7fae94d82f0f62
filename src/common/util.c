// common/util.c — error reporting, checked allocation, timing, small file helpers.
#define _POSIX_C_SOURCE 200809L
#include "common/util.h"
#include "common/files.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// The one piece of mutable global state: the first error recorded, per
// thread (nmt serve's request threads each validate their own input).
static _Thread_local char err_buf[1024];
static _Thread_local int err_status;

int err_set(int code, const char *fmt, ...) {
    if (err_status == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err_buf, sizeof err_buf, fmt, ap);
        va_end(ap);
        err_status = code;
    }
    return code;
}

const char *err_msg(void) { return err_status ? err_buf : ""; }
int err_code(void) { return err_status; }
void err_clear(void) { err_status = 0; err_buf[0] = 0; }

int err_prefix(const char *fmt, ...) {
    char prefix[512], joined[sizeof prefix + sizeof err_buf + 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(joined, sizeof joined, "%s: %s", prefix, err_buf);
    snprintf(err_buf, sizeof err_buf, "%.*s", (int)sizeof err_buf - 1, joined);  // cut to fit, as err_set does
    return err_status;
}

static void out_of_memory(size_t n) {
    fprintf(stderr, "nmt: out of memory allocating %zu bytes\n", n);
    exit(NMT_ERR_RUNTIME);
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) out_of_memory(n);
    return p;
}

void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) out_of_memory(count * size);
    return p;
}

void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) out_of_memory(n);
    return q;
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

char *read_file_text(const char *path, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set(NMT_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    // fopen succeeds on a directory; reading it fails with EISDIR. Say so.
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        err_set(NMT_ERR_INPUT, "%s: cannot read: is a directory", path);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = xmalloc(cap);
    int read_errno = 0;
    for (;;) {
        if (len + 1 >= cap) buf = xrealloc(buf, cap *= 2);
        errno = 0;
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) {
            read_errno = errno;
            break;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        err_set(NMT_ERR_INPUT, "%s: cannot read: %s", path, read_errno ? strerror(read_errno) : "read error");
        return NULL;
    }
    buf[len] = 0;
    if (len_out) *len_out = len;
    return buf;
}

static int fsync_parent_dir(const char *path) {
    char *copy = xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

const char *write_error_hint(int e, char *buf, size_t n) {
    struct rlimit rl;
    if (e == EFBIG && getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        snprintf(buf, n, " (the file size limit, ulimit -f, is %llu bytes)", (unsigned long long)rl.rlim_cur);
    else if (e == ENOSPC || e == EDQUOT)
        snprintf(buf, n, " (free some space or use another directory)");
    else
        buf[0] = 0;
    return buf;
}

int write_file_atomic(const char *path, const void *data, size_t len) {
    // Past the file size limit (ulimit -f) a write raises SIGXFSZ, which would
    // kill the process silently and leave NAME.tmp: ignored while writing, the
    // write fails with EFBIG and is handled like a full disk.
    struct sigaction ign, old_xfsz;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGXFSZ, &ign, &old_xfsz);
    int rc = NMT_OK;
    char hint[96], *tmp = NULL;
    int fd = temp_create(path, &tmp);  // never an existing file
    if (fd < 0) rc = err_code();
    const char *p = data;
    size_t left = len;
    while (!rc && left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            rc = err_set(NMT_ERR_RUNTIME, "%s: write failed: %s%s", tmp, w < 0 ? strerror(e) : "no progress",
                         w < 0 ? write_error_hint(e, hint, sizeof hint) : "");
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (!rc && fsync(fd) != 0) {
        int e = errno;
        rc = err_set(NMT_ERR_RUNTIME, "%s: fsync failed: %s%s", tmp, strerror(e), write_error_hint(e, hint, sizeof hint));
    }
    if (fd >= 0 && close(fd) != 0 && !rc) {
        int e = errno;
        rc = err_set(NMT_ERR_RUNTIME, "%s: close failed: %s%s", tmp, strerror(e), write_error_hint(e, hint, sizeof hint));
    }
    if (!rc && rename(tmp, path) != 0)
        rc = err_set(NMT_ERR_RUNTIME, "%s: rename to %s failed: %s", tmp, path, strerror(errno));
    if (rc && tmp) unlink(tmp);  // a failed write leaves PATH as it was and no temporary
    sigaction(SIGXFSZ, &old_xfsz, NULL);
    free(tmp);
    if (!rc) fsync_parent_dir(path);
    return rc;
}

int make_dirs(const char *path) {
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) goto fail;
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) goto fail;
    free(p);
    return NMT_OK;
fail:
    err_set(NMT_ERR_INPUT, "%s: cannot create directory: %s", path, strerror(errno));
    free(p);
    return NMT_ERR_INPUT;
}

size_t utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

long utf8_check(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int k = utf8_next(u + i, n - i, &cp);
        if (!k) return (long)i;
        i += (size_t)k;
    }
    return -1;
}

int utf8_valid(const char *s, size_t n) { return utf8_check(s, n) < 0; }
