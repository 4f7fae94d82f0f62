// common/util.h — error reporting, checked allocation, timing.
#ifndef NMT_UTIL_H
#define NMT_UTIL_H

#include <stddef.h>
#include <stdint.h>

// Exit statuses used everywhere (only main() exits).
enum { NMT_OK = 0, NMT_ERR_RUNTIME = 1, NMT_ERR_INPUT = 2 };

// Records an error: the first error recorded wins until err_clear().
// `code` is NMT_ERR_RUNTIME or NMT_ERR_INPUT. Returns `code` so callers can
// write `return err_set(NMT_ERR_INPUT, "%s: ...", path);`.
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *err_msg(void);
int err_code(void);
void err_clear(void);
// Puts "PREFIX: " before the error recorded (which must be one), keeping its
// code, and returns the code: a caller adds what only it knows (a file name).
int err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Allocation that aborts the program with a message when memory is exhausted.
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

// Wall-clock seconds (monotonic).
double now_seconds(void);
// CPU seconds this process has used, all threads (user + system).
double cpu_seconds(void);

// Reads a whole file into a NUL-terminated buffer. Returns NULL and records
// an NMT_ERR_INPUT error naming the file on failure.
char *read_file_text(const char *path, size_t *len_out);

// Writes `len` bytes to `path` atomically: a new temporary beside it
// (temp_create, common/files.h: NAME.tmp unless that exists), fsync, rename,
// fsync dir. A failure leaves PATH as it was and removes only the temporary.
int write_file_atomic(const char *path, const void *data, size_t len);

// What to append after strerror(errnum) when a write failed: " (...)" saying
// what to do about a full disk or the file size limit (ulimit -f), else "".
const char *write_error_hint(int errnum, char *buf, size_t n);

// mkdir -p. Returns 0 or records an error.
int make_dirs(const char *path);



// Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF; what Python's codec
// accepts). utf8_next decodes the sequence at s[0..n) into *cp and returns its
// length, or 0 when it is invalid; utf8_check returns the offset of the first
// invalid byte of s[0..n), or -1; utf8_valid is utf8_check(...) < 0.
int utf8_next(const unsigned char *s, size_t n, uint32_t *cp);
// Writes code point cp (at most 0x10FFFF) as UTF-8 to out (4 bytes at most);
// returns how many bytes.
size_t utf8_put(uint32_t cp, char *out);
long utf8_check(const char *s, size_t n);
int utf8_valid(const char *s, size_t n);
#endif
