// fuzz.h — what the libFuzzer harnesses share: in-memory files for the
// readers that take a path, and a check that aborts (a finding) with a message.
#ifndef NMT_FUZZ_H
#define NMT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"

// An oracle failed: print what and abort, so libFuzzer saves the input.
#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz: check failed at %s:%d: %s\n  ", __FILE__,   \
                    __LINE__, #cond);                                          \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

// A file holding exactly data[0..n), named "/proc/self/fd/N" (a memfd: no
// disk, nothing left behind). Slots 0..3 are independent files; each call
// replaces the slot's contents.
static inline const char *fuzz_file(int slot, const void *data, size_t n) {
    static int fd[4] = {-1, -1, -1, -1};
    static char path[4][32];
    if (fd[slot] < 0) {
        fd[slot] = memfd_create("nmt-fuzz", 0);
        if (fd[slot] < 0) { perror("memfd_create"); abort(); }
        snprintf(path[slot], sizeof path[slot], "/proc/self/fd/%d", fd[slot]);
    }
    if (ftruncate(fd[slot], 0) != 0) { perror("ftruncate"); abort(); }
    const char *p = data;
    for (size_t off = 0; off < n;) {
        ssize_t w = pwrite(fd[slot], p + off, n - off, (off_t)off);
        if (w <= 0) { perror("pwrite"); abort(); }
        off += (size_t)w;
    }
    return path[slot];
}

// A NUL-terminated, exactly-sized heap copy (ASan sees reads past the end).
static inline char *fuzz_strndup(const void *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, data, n);
    s[n] = 0;
    return s;
}

// An exactly-sized heap copy WITHOUT a terminator: for readers given (buf, len).
static inline char *fuzz_memdup(const void *data, size_t n) {
    char *s = malloc(n ? n : 1);
    if (!s) abort();
    if (n) memcpy(s, data, n);
    return s;
}

#endif
