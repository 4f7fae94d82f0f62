// test_ckptfile.c — the checkpoint container: layout, CRC32, verification of
// every byte and every truncation, atomic replacement under SIGKILL.
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include "io/ckptfile.h"
#include "common/util.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

// ---------------------------------------------------------------- fixture

static char dir[64];

static void make_dir(void) {
    strcpy(dir, "/tmp/nmt_ckpt_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    err_clear();
}

static void remove_dir(void) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char p[512];
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

TestSuite(ckptfile, .init = make_dir, .fini = remove_dir, .timeout = 60);

static const char *in_dir(const char *name) {
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void write_raw(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static unsigned char *read_raw(const char *path, size_t *n) {
    unsigned char *b = (unsigned char *)read_file_text(path, n);
    cr_assert_not_null(b, "%s", err_msg());
    return b;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

// Bit-at-a-time CRC-32 straight from the definition (reflected, poly 0xEDB88320).
static uint32_t crc_ref(const void *data, size_t n) {
    const unsigned char *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }
static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

// Recomputes the header CRC after a deliberate edit, so the reader's later
// checks (layout, names, version) are what gets exercised.
static void reseal(unsigned char *b) {
    uint64_t table_end = 32 + 56 * (uint64_t)le32(b + 16);
    put32(b + 20, 0);
    put32(b + 20, crc_ref(b, (size_t)table_end));
}

// Opens `path` expecting an input error whose message starts with "PATH: "
// and contains `want` (if given).
static void expect_bad(const char *path, const char *want) {
    err_clear();
    CkptFile *f = (CkptFile *)&f;  // must be reset to NULL
    int rc = ckpt_open(&f, path);
    cr_assert_eq(rc, NMT_ERR_INPUT, "rc %d for %s", rc, path);
    cr_assert_null(f);
    cr_assert_eq(err_code(), NMT_ERR_INPUT);
    size_t n = strlen(path);
    cr_assert(strncmp(err_msg(), path, n) == 0 && strncmp(err_msg() + n, ": ", 2) == 0, "message '%s'",
              err_msg());
    if (want) cr_assert_not_null(strstr(err_msg(), want), "wanted '%s' in '%s'", want, err_msg());
}

// ---------------------------------------------------------------- a small checkpoint

static const char CONFIG[] = "{\"model\": {\"d\": 8}}\n";  // 20 bytes
static float W[10];
static const unsigned char TAIL[5] = {1, 2, 3, 0, 255};

static int small_sections(CkptSection *s) {
    for (int i = 0; i < 10; i++) W[i] = 0.25f * (float)i - 1.0f;
    s[0] = (CkptSection){"config", CONFIG, sizeof CONFIG - 1};
    s[1] = (CkptSection){"empty", NULL, 0};
    s[2] = (CkptSection){"w", W, sizeof W};
    s[3] = (CkptSection){"tail", TAIL, sizeof TAIL};
    return 4;
}

static const char *write_small(void) {
    CkptSection s[4];
    int n = small_sections(s);
    const char *p = in_dir("small.ckpt");
    cr_assert_eq(ckpt_write(p, s, n), NMT_OK, "%s", err_msg());
    return p;
}

// ---------------------------------------------------------------- CRC-32

Test(ckptfile, crc32_check_value) {
    cr_assert_eq(crc32_update(0, "123456789", 9), 0xCBF43926u);
    cr_assert_eq(crc32_update(0, "", 0), 0u);
    cr_assert_eq(crc32_update(0, "a", 1), 0xE8B7BE43u);
    const char *fox = "The quick brown fox jumps over the lazy dog";
    cr_assert_eq(crc32_update(0, fox, strlen(fox)), 0x414FA339u);
}

Test(ckptfile, crc32_matches_bitwise_definition_in_pieces) {
    unsigned char buf[1031];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)((x = x * 1103515245u + 12345u) >> 16);
    // Every length, from every start offset 0..8 (unaligned 8-byte loads).
    for (size_t start = 0; start < 9; start++)
        for (size_t n = 0; start + n <= 100; n++)
            cr_assert_eq(crc32_update(0, buf + start, n), crc_ref(buf + start, n), "start %zu n %zu", start, n);
    uint32_t whole = crc_ref(buf, sizeof buf);
    cr_assert_eq(crc32_update(0, buf, sizeof buf), whole);
    for (size_t cut = 0; cut <= sizeof buf; cut += 7)
        cr_assert_eq(crc32_update(crc32_update(0, buf, cut), buf + cut, sizeof buf - cut), whole, "cut %zu",
                     cut);
}

// ---------------------------------------------------------------- round trip and layout

Test(ckptfile, round_trip_small) {
    const char *p = write_small();
    cr_assert(!exists(in_dir("small.ckpt.tmp")));
    CkptFile *f = NULL;
    cr_assert_eq(ckpt_open(&f, p), NMT_OK, "%s", err_msg());
    cr_assert_eq(ckpt_version(f), 1u);
    cr_assert_eq(ckpt_section_count(f), 4);
    const char *names[4] = {"config", "empty", "w", "tail"};
    const uint64_t sizes[4] = {20, 0, 40, 5};
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(ckpt_section_name(f, i), names[i]);
        cr_assert_eq(ckpt_section_size(f, i), sizes[i]);
    }
    uint64_t n = 99;
    const void *c = ckpt_section(f, "config", &n);
    cr_assert_eq(n, 20);
    cr_assert_eq(memcmp(c, CONFIG, 20), 0);
    cr_assert_eq(ckpt_section_crc(f, 0), crc_ref(CONFIG, 20));
    const float *w = ckpt_section(f, "w", &n);
    cr_assert_eq(n, sizeof W);
    cr_assert_eq((uintptr_t)w % 64, 0, "payloads are 64-byte aligned in memory");
    for (int i = 0; i < 10; i++) cr_assert_eq(w[i], 0.25f * (float)i - 1.0f);
    n = 99;
    cr_assert_not_null(ckpt_section(f, "empty", &n), "a present empty section is not NULL");
    cr_assert_eq(n, 0);
    const unsigned char *t = ckpt_section(f, "tail", &n);
    cr_assert_eq(n, 5);
    cr_assert_eq(memcmp(t, TAIL, 5), 0);
    n = 99;
    cr_assert_null(ckpt_section(f, "missing", &n));
    cr_assert_eq(n, 0);
    cr_assert_null(ckpt_section(f, "confi", NULL));
    cr_assert_null(ckpt_section_name(f, 4));
    cr_assert_null(ckpt_section_name(f, -1));
    cr_assert_eq(ckpt_section_size(f, 4), 0);
    // Layout from ckptfile.h: table ends at 32+4*56 = 256; config 256..276,
    // empty at 320, w 320..360, tail 384..389.
    cr_assert_eq(ckpt_file_size(f), 389);
    ckpt_close(f);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_size, 389);
}

Test(ckptfile, bytes_on_disk_follow_the_documented_layout) {
    const char *p = write_small();
    size_t n;
    unsigned char *b = read_raw(p, &n);
    cr_assert_eq(n, 389);
    cr_assert_eq(memcmp(b, "NMTCKPT\0", 8), 0);
    cr_assert_eq(le32(b + 8), 1u);
    cr_assert_eq(le32(b + 12), 0x01020304u);  // this machine is little-endian
    cr_assert_eq(le32(b + 16), 4u);
    cr_assert_eq(le64(b + 24), 389u);
    unsigned char h[256];
    memcpy(h, b, 256);
    put32(h + 20, 0);
    cr_assert_eq(le32(b + 20), crc_ref(h, 256));
    const uint64_t offs[4] = {256, 320, 320, 384}, sizes[4] = {20, 0, 40, 5};
    const void *data[4] = {CONFIG, "", W, TAIL};
    const char *names[4] = {"config", "empty", "w", "tail"};
    for (int i = 0; i < 4; i++) {
        const unsigned char *e = b + 32 + 56 * i;
        cr_assert_str_eq((const char *)e, names[i]);
        for (size_t k = strlen(names[i]); k < 32; k++) cr_assert_eq(e[k], 0);
        cr_assert_eq(le64(e + 32), offs[i]);
        cr_assert_eq(le64(e + 40), sizes[i]);
        cr_assert_eq(le32(e + 48), crc_ref(data[i], (size_t)sizes[i]));
        cr_assert_eq(le32(e + 52), 0u);
        cr_assert_eq(memcmp(b + offs[i], data[i], (size_t)sizes[i]), 0);
    }
    for (size_t k = 276; k < 320; k++) cr_assert_eq(b[k], 0, "padding byte %zu", k);
    for (size_t k = 360; k < 384; k++) cr_assert_eq(b[k], 0, "padding byte %zu", k);
    free(b);
}

Test(ckptfile, no_sections_and_large_section) {
    const char *p = in_dir("none.ckpt");
    cr_assert_eq(ckpt_write(p, NULL, 0), NMT_OK, "%s", err_msg());
    CkptFile *f = NULL;
    cr_assert_eq(ckpt_open(&f, p), NMT_OK, "%s", err_msg());
    cr_assert_eq(ckpt_section_count(f), 0);
    cr_assert_eq(ckpt_file_size(f), 32);
    cr_assert_null(ckpt_section(f, "x", NULL));
    ckpt_close(f);

    // Larger than the writer's 1 MiB chunk, odd size, after an odd-sized one.
    size_t big = (3u << 20) + 13;
    unsigned char *d = malloc(big);
    uint32_t x = 7;
    for (size_t i = 0; i < big; i++) d[i] = (unsigned char)((x = x * 1664525u + 1013904223u) >> 24);
    CkptSection s[2] = {{"odd", "abc", 3}, {"big", d, big}};
    p = in_dir("big.ckpt");
    cr_assert_eq(ckpt_write(p, s, 2), NMT_OK, "%s", err_msg());
    cr_assert_eq(ckpt_open(&f, p), NMT_OK, "%s", err_msg());
    uint64_t n;
    const unsigned char *g = ckpt_section(f, "big", &n);
    cr_assert_eq(n, big);
    cr_assert_eq(memcmp(g, d, big), 0);
    cr_assert_eq(ckpt_section_crc(f, 1), crc_ref(d, big));
    cr_assert_eq(ckpt_file_size(f), 256 + big);  // table ends at 144, odd at 192..195, big at 256
    ckpt_close(f);
    free(d);
}

Test(ckptfile, overwrite_replaces_content) {
    const char *p = write_small();
    CkptSection s[1] = {{"only", "xyz", 3}};
    cr_assert_eq(ckpt_write(p, s, 1), NMT_OK, "%s", err_msg());
    CkptFile *f = NULL;
    cr_assert_eq(ckpt_open(&f, p), NMT_OK, "%s", err_msg());
    cr_assert_eq(ckpt_section_count(f), 1);
    cr_assert_null(ckpt_section(f, "config", NULL));
    ckpt_close(f);
    cr_assert(!exists(in_dir("small.ckpt.tmp")));
}

// ---------------------------------------------------------------- corruption

// Which check a flip at byte `pos` of the small file must trip.
static const char *expected_for_flip(size_t pos, unsigned char mask) {
    if (pos < 8) return "not an nmt checkpoint";
    if (pos == 8 && mask == 0x01) return "bad checkpoint format version 0";
    if (pos < 12) return "is newer than this nmt supports";
    if (pos < 16) return "byte-order marker";
    if (pos < 20) return "header";  // count: table no longer fits, or header CRC
    if (pos < 256) return "header checksum mismatch";
    if (pos < 276) return "section 'config' is corrupt";
    if (pos < 320) return "padding before section 'empty'";
    if (pos < 360) return "section 'w' is corrupt";
    if (pos < 384) return "padding before section 'tail'";
    return "section 'tail' is corrupt";
}

Test(ckptfile, every_flipped_byte_is_detected) {
    const char *p = write_small();
    size_t n;
    unsigned char *good = read_raw(p, &n);
    cr_assert_eq(n, 389);
    unsigned char *b = malloc(n);
    const char *q = in_dir("flip.ckpt");
    const unsigned char masks[3] = {0x01, 0x80, 0xFF};
    for (size_t pos = 0; pos < n; pos++)
        for (int m = 0; m < 3; m++) {
            memcpy(b, good, n);
            b[pos] ^= masks[m];
            write_raw(q, b, n);
            expect_bad(q, expected_for_flip(pos, masks[m]));
        }
    // And the unflipped copy still opens (the harness itself is sound).
    write_raw(q, good, n);
    CkptFile *f = NULL;
    cr_assert_eq(ckpt_open(&f, q), NMT_OK, "%s", err_msg());
    ckpt_close(f);
    free(b);
    free(good);
}

Test(ckptfile, every_truncation_is_detected) {
    const char *p = write_small();
    size_t n;
    unsigned char *good = read_raw(p, &n);
    const char *q = in_dir("trunc.ckpt");
    for (size_t len = 0; len < n; len++) {
        write_raw(q, good, len);
        expect_bad(q, len == 0 ? "empty file" : "truncated");
    }
    free(good);
}

Test(ckptfile, trailing_bytes_are_rejected) {
    const char *p = write_small();
    size_t n;
    unsigned char *good = read_raw(p, &n);
    unsigned char *b = calloc(1, n + 70);
    memcpy(b, good, n);
    const char *q = in_dir("long.ckpt");
    write_raw(q, b, n + 1);
    expect_bad(q, "1 bytes of trailing garbage");
    // Even if the recorded size admits them, bytes after the last section are refused.
    put64(b + 24, n + 70);
    reseal(b);
    write_raw(q, b, n + 70);
    expect_bad(q, "70 bytes after the last section belong to no section");
    free(b);
    free(good);
}

Test(ckptfile, not_a_checkpoint) {
    const char *q = in_dir("text.ckpt");
    const char *text = "this is a plain text file, long enough to hold a header and then some\n";
    write_raw(q, text, strlen(text));
    expect_bad(q, "not an nmt checkpoint");
    write_raw(q, "NMT", 3);  // a prefix of the magic: truncated, not foreign
    expect_bad(q, "truncated");
    write_raw(q, "", 0);
    expect_bad(q, "empty file, not an nmt checkpoint");
    expect_bad(in_dir("does-not-exist.ckpt"), "cannot open");
    expect_bad(dir, "not a regular file");
}

Test(ckptfile, newer_version_is_refused_by_name) {
    const char *p = write_small();
    size_t n;
    unsigned char *b = read_raw(p, &n);
    const char *q = in_dir("v7.ckpt");
    char want[600];
    snprintf(want, sizeof want, "%s: checkpoint format version 7 is newer than this nmt supports (1)", q);
    put32(b + 8, 7);
    write_raw(q, b, n);  // header CRC now stale: the version still comes first
    expect_bad(q, NULL);
    cr_assert_str_eq(err_msg(), want);
    reseal(b);
    write_raw(q, b, n);
    expect_bad(q, NULL);
    cr_assert_str_eq(err_msg(), want);
    free(b);
}

Test(ckptfile, foreign_byte_order_is_refused) {
    const char *p = write_small();
    size_t n;
    unsigned char *b = read_raw(p, &n);
    const unsigned char be[4] = {1, 2, 3, 4};
    memcpy(b + 12, be, 4);
    reseal(b);
    const char *q = in_dir("be.ckpt");
    write_raw(q, b, n);
    expect_bad(q, "opposite byte order");
    free(b);
}

// Edits that a valid header CRC cannot catch (a buggy or hostile writer).
Test(ckptfile, bad_layout_behind_a_valid_header_crc) {
    const char *p = write_small();
    size_t n;
    unsigned char *good = read_raw(p, &n);
    unsigned char *b = malloc(n);
    const char *q = in_dir("layout.ckpt");
    unsigned char *w = b + 32 + 56 * 2, *tail = b + 32 + 56 * 3;
    memcpy(b, good, n);
    put64(w + 32, 256);  // onto config
    reseal(b);
    write_raw(q, b, n);
    expect_bad(q, "section 'w' at offset 256 overlaps the previous section");

    memcpy(b, good, n);
    put64(b + 32 + 32, 192);  // config into the table
    reseal(b);
    write_raw(q, b, n);
    expect_bad(q, "overlaps the section table");

    memcpy(b, good, n);
    put64(w + 32, 321);
    reseal(b);
    write_raw(q, b, n);
    expect_bad(q, "section 'w' at offset 321, expected 320");

    memcpy(b, good, n);
    put64(tail + 40, 6);  // one byte past the end
    reseal(b);
    write_raw(q, b, n);
    expect_bad(q, "section 'tail' (offset 384, size 6) extends past the end");

    memcpy(b, good, n);
    put64(tail + 40, UINT64_MAX);  // offset + size wraps around
    reseal(b);
    write_raw(q, b, n);
    expect_bad(q, "extends past the end");

    memcpy(b, good, n);
    put64(tail + 40, 4);  // leaves one byte belonging to no section
    reseal(b);
    write_raw(q, b, n);
    expect_bad(q, "1 bytes after the last section");

    memcpy(b, good, n);
    memcpy(tail, "w\0\0\0", 4);
    reseal(b);
    write_raw(q, b, n);
    expect_bad(q, "duplicate section name 'w'");

    memcpy(b, good, n);
    tail[1] = 0x01;
    reseal(b);
    write_raw(q, b, n);
    expect_bad(q, "section 3: name is not printable ASCII");

    memcpy(b, good, n);
    tail[20] = 'x';
    reseal(b);
    write_raw(q, b, n);
    expect_bad(q, "section 3: name is not NUL-padded");

    memcpy(b, good, n);
    memset(tail, 0, 32);
    reseal(b);
    write_raw(q, b, n);
    expect_bad(q, "section 3: bad name length");

    memcpy(b, good, n);
    memset(tail, 'a', 32);
    reseal(b);
    write_raw(q, b, n);
    expect_bad(q, "section 3: bad name length");

    memcpy(b, good, n);
    tail[52] = 1;
    reseal(b);
    write_raw(q, b, n);
    expect_bad(q, "section 'tail': reserved field is not zero");

    memcpy(b, good, n);
    put32(b + 16, 0xFFFFFFFFu);  // a table that cannot fit (checked before the CRC)
    write_raw(q, b, n);
    expect_bad(q, "a table of 4294967295 sections needs");

    free(b);
    free(good);
}

// ---------------------------------------------------------------- writer input checks

Test(ckptfile, writer_rejects_bad_sections) {
    const char *p = in_dir("bad.ckpt");
    char long_name[33];
    memset(long_name, 'n', 32);
    long_name[32] = 0;
    CkptSection s[2] = {{long_name, "a", 1}, {"b", "b", 1}};
    cr_assert_eq(ckpt_write(p, s, 2), NMT_ERR_RUNTIME);
    cr_assert_not_null(strstr(err_msg(), "name must be 1..31 characters"), "%s", err_msg());
    long_name[31] = 0;  // 31 characters is allowed
    err_clear();
    cr_assert_eq(ckpt_write(p, s, 2), NMT_OK, "%s", err_msg());
    CkptFile *f = NULL;
    cr_assert_eq(ckpt_open(&f, p), NMT_OK, "%s", err_msg());
    cr_assert_not_null(ckpt_section(f, long_name, NULL));
    ckpt_close(f);
    unlink(p);

    struct {
        CkptSection s[2];
        int n;
        const char *want;
    } bad[] = {
        {{{"", "a", 1}}, 1, "name must be"},
        {{{NULL, "a", 1}}, 1, "name must be"},
        {{{"has space", "a", 1}}, 1, "not printable ASCII"},
        {{{"tab\t", "a", 1}}, 1, "not printable ASCII"},
        {{{"x", "a", 1}, {"x", "b", 1}}, 2, "duplicate section name 'x'"},
        {{{"x", NULL, 4}}, 1, "has size 4 but no data"},
        {{{"x", "a", 1}}, -1, "bad section list"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear();
        cr_assert_eq(ckpt_write(p, bad[i].s, bad[i].n), NMT_ERR_RUNTIME, "case %zu", i);
        cr_assert_not_null(strstr(err_msg(), bad[i].want), "case %zu: '%s'", i, err_msg());
        cr_assert(!exists(p) && !exists(in_dir("bad.ckpt.tmp")), "case %zu left a file", i);
    }
    err_clear();
    cr_assert_eq(ckpt_write(in_dir("no/such/dir.ckpt"), s, 1), NMT_ERR_RUNTIME);
    cr_assert_not_null(strstr(err_msg(), "cannot create"), "%s", err_msg());
}

Test(ckptfile, crash_hook_value_must_be_a_number) {
    setenv("NMT_CKPT_CRASH_AFTER", "12abc", 1);
    CkptSection s[1] = {{"x", "a", 1}};
    cr_assert_eq(ckpt_write(in_dir("x.ckpt"), s, 1), NMT_ERR_INPUT);
    cr_assert_not_null(strstr(err_msg(), "NMT_CKPT_CRASH_AFTER"));
    cr_assert(!exists(in_dir("x.ckpt.tmp")));
    unsetenv("NMT_CKPT_CRASH_AFTER");
}

// ---------------------------------------------------------------- kill during save

// The new checkpoint: bigger than the old one, with a section over 1 MiB so
// kills land inside the chunked payload loop too.
static unsigned char *new_payload(size_t *n) {
    *n = (1u << 20) + 4321;
    unsigned char *d = malloc(*n);
    for (size_t i = 0; i < *n; i++) d[i] = (unsigned char)(i * 131u + 7u);
    return d;
}

// Forks a child that saves the new checkpoint with NMT_CKPT_CRASH_AFTER=B.
static void save_and_get_killed(const char *path, uint64_t b) {
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        size_t n;
        unsigned char *d = new_payload(&n);
        CkptSection s[3] = {{"config", "{\"new\": true}", 13}, {"empty", NULL, 0}, {"weights", d, n}};
        char v[32];
        snprintf(v, sizeof v, "%llu", (unsigned long long)b);
        setenv("NMT_CKPT_CRASH_AFTER", v, 1);
        ckpt_write(path, s, 3);
        _exit(3);  // not reached: the hook kills us
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "B=%llu: child status 0x%x",
              (unsigned long long)b, status);
}

static void expect_old(const char *path) {
    CkptFile *f = NULL;
    err_clear();
    cr_assert_eq(ckpt_open(&f, path), NMT_OK, "%s", err_msg());
    uint64_t n;
    const char *c = ckpt_section(f, "config", &n);
    cr_assert_eq(n, 20);
    cr_assert_eq(memcmp(c, CONFIG, 20), 0);
    cr_assert_null(ckpt_section(f, "weights", NULL));
    cr_assert_eq(ckpt_section_count(f), 4);
    ckpt_close(f);
}

Test(ckptfile, kill_during_save_keeps_the_old_checkpoint) {
    const char *p = write_small();
    const char *tmp = in_dir("small.ckpt.tmp");
    size_t pn;
    unsigned char *d = new_payload(&pn);
    // table ends at 32+3*56 = 200; config 256..269; empty and weights at 320
    const uint64_t total = 320 + pn;
    const uint64_t cuts[] = {0, 1, 31, 64, 100, 200, 1000, total / 2, total - 200, total - 1, total,
                             total + 1, UINT64_MAX};
    size_t ncuts = sizeof cuts / sizeof cuts[0];
    for (size_t i = 0; i < ncuts; i++) {
        save_and_get_killed(p, cuts[i]);
        cr_assert(exists(tmp), "B=%llu: the partial PATH.tmp is left behind", (unsigned long long)cuts[i]);
        expect_old(p);
        if (i + 1 < ncuts) unlink(tmp);  // (the user's clean-up: nmt never removes a file a killed run left)
    }
    // A kill after the last byte (before the rename) leaves a complete
    // PATH.tmp; the reader never looks at it, and the next save leaves it as
    // it is (it writes PATH.<pid>-<n>.tmp: a temporary is always a new file).
    struct stat st;
    cr_assert_eq(stat(tmp, &st), 0);
    cr_assert_eq((uint64_t)st.st_size, total);

    CkptSection s[3] = {{"config", "{\"new\": true}", 13}, {"empty", NULL, 0}, {"weights", d, pn}};
    err_clear();
    cr_assert_eq(ckpt_write(p, s, 3), NMT_OK, "%s", err_msg());
    struct stat after;
    cr_assert_eq(stat(tmp, &after), 0, "the killed save's PATH.tmp was removed");
    cr_assert(after.st_ino == st.st_ino && after.st_size == st.st_size && after.st_mtim.tv_sec == st.st_mtim.tv_sec &&
              after.st_mtim.tv_nsec == st.st_mtim.tv_nsec, "the killed save's PATH.tmp was changed");
    CkptFile *f = NULL;
    cr_assert_eq(ckpt_open(&f, p), NMT_OK, "%s", err_msg());
    uint64_t n;
    const unsigned char *g = ckpt_section(f, "weights", &n);
    cr_assert_eq(n, pn);
    cr_assert_eq(memcmp(g, d, pn), 0);
    cr_assert_eq(ckpt_file_size(f), total);
    ckpt_close(f);
    free(d);
}

// A file named PATH.tmp (a killed run's, or the user's) is never written over:
// the save goes through another new temporary, and PATH.tmp keeps its bytes.
Test(ckptfile, existing_tmp_is_left_as_it_is) {
    const char *p = in_dir("s.ckpt"), *tmp = in_dir("s.ckpt.tmp");
    size_t junk_n = 5000;
    unsigned char *junk = malloc(junk_n);
    memset(junk, 0xAB, junk_n);
    write_raw(tmp, junk, junk_n);
    expect_bad(p, "cannot open");  // the stale tmp is not mistaken for PATH
    CkptSection s[1] = {{"a", "abc", 3}};
    cr_assert_eq(ckpt_write(p, s, 1), NMT_OK, "%s", err_msg());
    CkptFile *f = NULL;
    cr_assert_eq(ckpt_open(&f, p), NMT_OK, "%s", err_msg());
    cr_assert_eq(ckpt_file_size(f), 131);  // table ends at 88, a at 128..131
    ckpt_close(f);
    size_t n;
    char *kept = read_file_text(tmp, &n);
    cr_assert(kept && n == junk_n && memcmp(kept, junk, n) == 0, "PATH.tmp was %s", kept ? "changed" : "removed");
    free(kept);
    free(junk);
}

Test(ckptfile, kill_during_first_save_leaves_no_checkpoint) {
    const char *p = in_dir("fresh.ckpt");
    save_and_get_killed(p, 5000);
    cr_assert(!exists(p));
    expect_bad(p, "cannot open");
}
