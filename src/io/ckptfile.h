// io/ckptfile.h — the checkpoint container: a file of named binary sections,
// each with a CRC32, written atomically and fully verified when opened.
// What goes into the sections is checkpoint.c's business, not this file's.
//
// Layout (integers little-endian; offsets are from the start of the file):
//
//   offset        size  field
//   0             8     magic "NMTCKPT\0"
//   8             4     format version (u32) = 1
//   12            4     byte-order marker (u32) 0x01020304 in the WRITER's
//                       byte order: payloads are raw host-order arrays, so a
//                       reader that sees 0x04030201 refuses the file
//   16            4     section count N (u32)
//   20            4     header CRC32 over bytes [0, 32 + 56*N) with this
//                       field taken as zero
//   24            8     total file size in bytes (u64)
//   32 + 56*i     56    section table entry i (0 <= i < N):
//     +0          32      name: 1..31 printable ASCII bytes, NUL-padded
//     +32         8       payload offset (u64), a multiple of 64
//     +40         8       payload size (u64), may be 0
//     +48         4       payload CRC32 (u32)
//     +52         4       reserved, zero
//   ...                 payloads in table order; payload i starts at the
//                       first multiple of 64 at or after the end of the
//                       previous payload (or of the table); the gaps are zero
//                       bytes; the file ends exactly where the last payload
//                       ends (or where the table ends when N = 0)
//
// Every byte of a valid file is covered by some check: the header CRC covers
// header and table, the section CRCs cover payloads, gaps must be zero, and
// the recorded size must equal the real one. So a single flipped byte or any
// truncation is reported, never handed back.
#ifndef NMT_CKPTFILE_H
#define NMT_CKPTFILE_H

#include <stddef.h>
#include <stdint.h>

enum { CKPT_FORMAT_VERSION = 1, CKPT_NAME_MAX = 31, CKPT_ALIGN = 64 };

// One section to write. `data` is written straight from the caller's buffer
// (no copy of the whole file is made); it may be NULL when size is 0.
typedef struct {
    const char *name;
    const void *data;
    uint64_t size;
} CkptSection;

// Writes a new temporary beside PATH (PATH.tmp, or PATH.<pid>-<n>.tmp when
// that name exists: temp_create, common/files.h; an existing file is never
// overwritten), fsyncs it, renames it over PATH and fsyncs the directory, so
// a kill at any moment leaves the previous PATH whole (and the temporary,
// which nmt never removes afterwards: it did not create it in that run).
// Names must be 1..CKPT_NAME_MAX printable ASCII characters (no space) and
// distinct. Returns NMT_OK or records an error; on error PATH is as it was
// and the temporary is removed.
// Test hook: if the environment variable NMT_CKPT_CRASH_AFTER is a number B,
// the process SIGKILLs itself once B bytes of the temporary are written (at
// the latest after the last byte, before the rename).
int ckpt_write(const char *path, const CkptSection *sections, int count);

// ckpt_write that calls check(TMP, arg) on the complete, fsync'ed temporary
// before the rename: when it fails, PATH is left as it was and the temporary
// removed (e.g. `nmt import` loads what it wrote before it replaces a file).
typedef int (*CkptCheck)(const char *tmp, void *arg);
int ckpt_write_checked(const char *path, const CkptSection *sections, int count, CkptCheck check, void *arg);

typedef struct CkptFile CkptFile;

// Reads the whole file and verifies magic, version, byte order, sizes and
// layout, the header CRC and every section CRC before returning. On any
// problem records NMT_ERR_INPUT "PATH: ..." and leaves *out NULL.
int ckpt_open(CkptFile **out, const char *path);

// Payload of the section called `name` (64-byte aligned), or NULL if there is
// none. An empty section gives a non-NULL pointer and *size = 0.
const void *ckpt_section(const CkptFile *f, const char *name, uint64_t *size);

// Table access in file order; an out-of-range i gives NULL / 0.
int ckpt_section_count(const CkptFile *f);
const char *ckpt_section_name(const CkptFile *f, int i);
uint64_t ckpt_section_size(const CkptFile *f, int i);
uint64_t ckpt_section_offset(const CkptFile *f, int i);  // byte offset of the payload
uint32_t ckpt_section_crc(const CkptFile *f, int i);
uint32_t ckpt_version(const CkptFile *f);
uint64_t ckpt_file_size(const CkptFile *f);

void ckpt_close(CkptFile *f);  // NULL is fine

// Standard CRC-32 (IEEE 802.3, as zlib's crc32): start with crc = 0 and feed
// the bytes in any number of pieces.
uint32_t crc32_update(uint32_t crc, const void *data, size_t n);

#endif
