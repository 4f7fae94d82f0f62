// fuzz_checkpoint.c — checkpoint_load, checkpoint_describe (what nmt info
// runs), the trainer's state and the container accessors on arbitrary files.
//
// Built twice (Makefile):
//   fuzz_checkpoint      the input is the file, as is: exercises ckpt_open's
//                        layout and CRC checks (almost every mutation stops there).
//   fuzz_checkpoint_crc  (-DFUZZ_FIX_CRC) the input's header and section table
//                        are read leniently (count clamped, offsets and sizes
//                        clamped to the input), and a container is rebuilt in
//                        memory with the canonical layout, zero gaps, correct
//                        total size and correct header and section CRCs; the
//                        raw magic, version, byte-order marker, names and
//                        reserved words are kept so mutations of those still
//                        reach the checks. So mutated payloads reach the config,
//                        tokenizer, tensor table, params, optimizer and state
//                        parsers instead of failing the CRC.
#include "fuzz.h"

#include "train/state.h"
#include "io/checkpoint.h"
#include "io/ckptfile.h"

#ifdef FUZZ_FIX_CRC
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void wr64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }

enum { MAX_SECTIONS = 32 };

// The rebuilt container (malloc'ed) or NULL when the input is too short to
// hold a header; then the input is used as it is.
static uint8_t *rebuild(const uint8_t *d, size_t n, size_t *out_n) {
    if (n < 32) return NULL;
    size_t count = rd32(d + 16);
    if (count > (n - 32) / 56) count = (n - 32) / 56;
    if (count > MAX_SECTIONS) count = MAX_SECTIONS;
    size_t off[MAX_SECTIONS], size[MAX_SECTIONS], out_off[MAX_SECTIONS];
    size_t end = 32 + 56 * count;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = d + 32 + 56 * i;
        uint64_t o = rd64(e + 32), s = rd64(e + 40);
        if (o > n) o = n;
        if (s > n - o) s = n - o;
        off[i] = (size_t)o;
        size[i] = (size_t)s;
        out_off[i] = (end + 63) / 64 * 64;
        end = out_off[i] + size[i];
    }
    uint8_t *b = calloc(1, end);
    if (!b) abort();
    memcpy(b, d, 16);                 // magic, version, byte-order marker: raw
    wr32(b + 16, (uint32_t)count);
    wr64(b + 24, end);
    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = d + 32 + 56 * i;
        uint8_t *o = b + 32 + 56 * i;
        memcpy(o, e, 32);             // name: raw
        wr64(o + 32, out_off[i]);
        wr64(o + 40, size[i]);
        memcpy(b + out_off[i], d + off[i], size[i]);
        wr32(o + 48, crc32_update(0, b + out_off[i], size[i]));
        memcpy(o + 52, e + 52, 4);    // reserved: raw
    }
    wr32(b + 20, crc32_update(0, b, 32 + 56 * count));
    *out_n = end;
    return b;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *file = data;
    size_t n = size;
    uint8_t *fixed = NULL;
#ifdef FUZZ_FIX_CRC
    fixed = rebuild(data, size, &n);
    if (fixed) file = fixed;
#endif
    const char *path = fuzz_file(0, file, n);

    err_clear();
    CkptFile *f = NULL;
    if (ckpt_open(&f, path) == NMT_OK) {
        FUZZ_CHECK(f != NULL, "ckpt_open succeeded without a file");
        FUZZ_CHECK(ckpt_file_size(f) == n, "size %llu, file %zu", (unsigned long long)ckpt_file_size(f), n);
        int count = ckpt_section_count(f);
        for (int i = 0; i < count; i++) {
            const char *name = ckpt_section_name(f, i);
            FUZZ_CHECK(name && *name && strlen(name) <= CKPT_NAME_MAX, "section %d name", i);
            uint64_t sz = 0, off = ckpt_section_offset(f, i);
            const uint8_t *p = ckpt_section(f, name, &sz);
            FUZZ_CHECK(p != NULL, "section '%s' not found by name", name);
            FUZZ_CHECK(off % CKPT_ALIGN == 0 && off <= n && ckpt_section_size(f, i) <= n - off,
                       "section %d at %llu", i, (unsigned long long)off);
            // Names are distinct, so lookup by name finds entry i.
            FUZZ_CHECK(sz == ckpt_section_size(f, i), "section '%s' size", name);
            FUZZ_CHECK(crc32_update(0, p, (size_t)sz) == ckpt_section_crc(f, i), "section '%s' crc", name);
        }
        FUZZ_CHECK(ckpt_section_name(f, count) == NULL && ckpt_section_name(f, -1) == NULL, "out of range name");
        ckpt_close(f);
    } else {
        FUZZ_CHECK(f == NULL && err_code() == NMT_ERR_INPUT && *err_msg(), "failed open: code %d", err_code());
    }

    err_clear();
    Config c;
    Tokenizer t;
    Model m;
    Optimizer opt;
    TrainState st;
    if (train_state_load(path, &c, &t, &m, &opt, &st) == NMT_OK) {
        optim_free(&opt);
        model_free(&m);
        tokenizer_free(&t);
        config_free(&c);
    } else {
        FUZZ_CHECK(err_code() != NMT_OK && *err_msg(), "failed load without an error");
    }
    // Loading for decoding reads the state's step only.
    err_clear();
    CkptState cs;
    if (checkpoint_load(path, &c, &t, &m, NULL, &cs) == NMT_OK) {
        FUZZ_CHECK(cs.json != NULL, "a loaded checkpoint without its state");
        model_free(&m);
        tokenizer_free(&t);
        config_free(&c);
        ckpt_state_free(&cs);
    } else {
        FUZZ_CHECK(err_code() != NMT_OK && *err_msg(), "failed load without an error");
    }
    // What `nmt info` runs (cli/info.c).
    err_clear();
    CkptInfo info;
    if (checkpoint_describe(path, &info) == NMT_OK) (void)train_state_from_json(&st, info.st.json, path);
    ckpt_info_free(&info);
    err_clear();
    free(fixed);
    return 0;
}
