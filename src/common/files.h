// common/files.h — what keeps nmt from destroying a file: temporaries created
// exclusively beside the file they become, and the refusal to write over an input.
#ifndef NMT_FILES_H
#define NMT_FILES_H

// A new, empty file beside PATH to write PATH atomically through (write it,
// fsync it, rename it over PATH). Created with O_EXCL, so no file that exists
// is ever overwritten: PATH.tmp, or, when that name is taken (a killed run's
// leftover, or the user's), PATH.<pid>-<n>.tmp. Returns the descriptor (open
// for writing, mode 0644 less the umask) and sets *tmp (malloc'ed: the
// caller frees it and unlinks it when the write fails), or returns -1 with an
// NMT_ERR_RUNTIME error naming the file.
int temp_create(const char *path, char **tmp);

// The same with a hard link to EXISTING instead of a new file: a second name
// for its bytes, to be renamed over PATH. Returns 0, or -1 with an error.
int temp_link(const char *existing, const char *path, char **tmp);

// Whether paths a and b name the same existing file: the same device and
// inode once symlinks are followed, so "X", "./X", "dir/../X", a hard link to
// X and a symlink to X all do. 0 when either does not exist.
int same_file(const char *a, const char *b);

// An option naming a file: "--output" and its path. A NULL path is skipped.
typedef struct {
    const char *option, *path;
} FileArg;

// NMT_ERR_INPUT "OPTION PATH: is the same file as INPUT-OPTION INPUT-PATH"
// when the file a command is about to write is one of the n files it reads
// (a command never writes over its own input); NMT_OK otherwise, also when
// out does not exist yet. An input whose path is "/dev/stdin" is named
// "the standard input".
int refuse_same_file(const FileArg *out, const FileArg *in, int n);

#endif
