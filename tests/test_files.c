// test_files.c — common/files.h: same_file sees one file behind every name
// (the path, "./X", "d/../X", a hard link, a symlink) and nothing else;
// refuse_same_file names both options; temporaries are always new files, so a
// file that happens to have the temporary's name keeps its bytes.
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/files.h"
#include "common/util.h"
#include "tmpdir.h"

TestSuite(files, .init = make_tmpdir, .fini = remove_tmpdir);

static char *path_of(const char *fmt, const char *name) {
    char *p = xmalloc(256);
    snprintf(p, 256, fmt, tmpdir, name);
    return p;
}

Test(files, same_file_sees_every_name_of_one_file) {
    const char *x = write_tmp("x", "x\n");
    write_tmp("y", "x\n");  // the same bytes, another file
    cr_assert_eq(mkdir(tmp_path("d"), 0755), 0);
    cr_assert_eq(link(x, tmp_path("hard")), 0);
    cr_assert_eq(symlink(x, tmp_path("sym")), 0);
    char *names[] = {path_of("%s/%s", "x"), path_of("%s/./%s", "x"), path_of("%s/d/../%s", "x"),
                     path_of("%s/%s", "hard"), path_of("%s/%s", "sym")};
    for (size_t i = 0; i < 5; i++) {
        cr_assert(same_file(x, names[i]), "%s", names[i]);
        cr_assert(same_file(names[i], x), "%s", names[i]);
    }
    cr_assert_not(same_file(x, tmp_path("y")));
    cr_assert_not(same_file(x, tmp_path("missing")));
    cr_assert_not(same_file(tmp_path("missing"), tmp_path("missing")));  // a file not there is no input
    for (size_t i = 0; i < 5; i++) free(names[i]);
}

Test(files, refuse_same_file_names_both) {
    const char *x = write_tmp("x", "x\n"), *y = write_tmp("y", "y\n");
    FileArg in[] = {{"--src", y}, {"--config", NULL}, {"--ref", x}};
    cr_assert_eq(refuse_same_file(&(FileArg){"--output", tmp_path("new")}, in, 3), NMT_OK);
    cr_assert_eq(refuse_same_file(&(FileArg){"--output", NULL}, in, 3), NMT_OK);
    err_clear();
    cr_assert_eq(refuse_same_file(&(FileArg){"--output", x}, in, 3), NMT_ERR_INPUT);
    char want[512];
    snprintf(want, sizeof want, "--output %s: is the same file as --ref %s", x, x);
    cr_assert(strstr(err_msg(), want), "%s", err_msg());
    err_clear();
    int fd = open(x, O_RDONLY), saved = dup(0);
    cr_assert(fd >= 0 && saved >= 0 && dup2(fd, 0) == 0);
    FileArg std_in[] = {{"standard input", "/dev/stdin"}};
    int rc = refuse_same_file(&(FileArg){"--attention-png", x}, std_in, 1);
    dup2(saved, 0);
    close(fd);
    close(saved);
    cr_assert_eq(rc, NMT_ERR_INPUT);
    cr_assert(strstr(err_msg(), "is the same file as the standard input"), "%s", err_msg());
}

static size_t entries(void) {
    DIR *d = opendir(tmpdir);
    size_t n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

Test(files, temporaries_are_new_files) {
    const char *p = tmp_path("out");
    char *a = NULL, *b = NULL;
    int fa = temp_create(p, &a);
    cr_assert(fa >= 0, "%s", err_msg());
    cr_assert_str_eq(a, tmp_path("out.tmp"));
    int fb = temp_create(p, &b);  // out.tmp is taken: another name, also new
    cr_assert(fb >= 0, "%s", err_msg());
    cr_assert_str_neq(a, b);
    cr_assert(strlen(b) > 4 && strcmp(b + strlen(b) - 4, ".tmp") == 0, "%s", b);
    cr_assert_eq(write(fa, "a", 1), 1);
    struct stat st;
    cr_assert_eq(stat(a, &st), 0);
    cr_assert_eq(st.st_size, 1);  // b's creation truncated nothing
    close(fa);
    close(fb);
    char *l = NULL;
    cr_assert_eq(temp_link(a, p, &l), 0, "%s", err_msg());
    cr_assert(same_file(l, a) && strcmp(l, a) && strcmp(l, b));
    free(a);
    free(b);
    free(l);
}

// write_file_atomic beside a file called like its temporary: that file keeps
// its bytes, the target gets the new ones, and nothing else is left.
Test(files, write_file_atomic_keeps_a_file_named_like_its_temporary) {
    write_tmp("out.tmp", "not nmt's\n");
    size_t before = entries(), n;
    cr_assert_eq(write_file_atomic(tmp_path("out"), "new\n", 4), NMT_OK, "%s", err_msg());
    char *kept = read_file_text(tmp_path("out.tmp"), &n), *out = read_file_text(tmp_path("out"), NULL);
    cr_assert(kept && strcmp(kept, "not nmt's\n") == 0, "out.tmp was %s", kept ? "changed" : "removed");
    cr_assert(out && strcmp(out, "new\n") == 0);
    cr_assert_eq(entries(), before + 1);  // out, and no temporary
    free(kept);
    free(out);
}
