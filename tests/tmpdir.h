// tmpdir.h — for tests: a fresh directory per test (Criterion runs each test
// in its own process) and files in it. Use as
//   TestSuite(name, .init = make_tmpdir, .fini = remove_tmpdir);
#ifndef NMT_TEST_TMPDIR_H
#define NMT_TEST_TMPDIR_H

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static char tmpdir[64];

static inline void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nmt_test_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    err_clear();
}

static inline void remove_tmpdir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) cr_log_warn("could not remove %s", tmpdir);
}

// tmpdir/name (static storage, 8 slots).
static inline const char *tmp_path(const char *name) {
    static char paths[8][128];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 128, "%s/%s", tmpdir, name);
    return p;
}

// Writes len bytes to tmpdir/name; returns the path.
static inline const char *write_bytes(const char *name, const char *text, size_t len) {
    const char *p = tmp_path(name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    fclose(f);
    return p;
}

static inline const char *write_tmp(const char *name, const char *text) {
    return write_bytes(name, text, strlen(text));
}

#endif
