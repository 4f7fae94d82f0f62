// fuzz_safetensors.c — nmt import (import_checkpoint: import_safetensors, then
// import_write) on arbitrary files.
//
// Oracles: a refused file gives NMT_ERR_INPUT with a message and writes
// nothing: the output, which exists beforehand, keeps its bytes and nothing
// is left beside it; an accepted one wrote a checkpoint that loads, and exporting that
// checkpoint again and importing the result gives the same weights. st_read's
// tensors lie inside the file.
#include "fuzz.h"

#include "train/state.h"
#include "io/checkpoint.h"
#include "io/export.h"
#include "io/safetensors.h"
#include "train/import.h"

#include <stb/stb_ds.h>

static char dir[64];

static const char *out_path(const char *name) {
    static char p[2][128];
    static int k;
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/nmt-fuzz-st-XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *in = fuzz_file(0, data, size), *ck = out_path("a.ckpt"), *st = out_path("b.safetensors");
    err_clear();
    StFile f;
    if (st_read(&f, in) == NMT_OK) {
        for (ptrdiff_t i = 0; i < arrlen(f.tensors); i++) {
            const char *p = (const char *)f.tensors[i].data;
            FUZZ_CHECK(p >= f.bytes && p <= f.bytes + f.size, "tensor %s outside the file", f.tensors[i].name);
        }
        st_free(&f);
    } else {
        FUZZ_CHECK(err_code() == NMT_ERR_INPUT && *err_msg(), "st_read failed with code %d", err_code());
    }
    // The user's file at the output: a refused import leaves it as it was.
    static const char USER[] = "the user's file\n";
    FILE *u = fopen(ck, "wb");
    FUZZ_CHECK(u && fwrite(USER, 1, sizeof USER - 1, u) == sizeof USER - 1 && fclose(u) == 0, "cannot write %s", ck);
    err_clear();
    int rc = import_checkpoint(in, NULL, ck);
    if (rc != NMT_OK) {
        FUZZ_CHECK(rc == NMT_ERR_INPUT && *err_msg(), "import failed with code %d", rc);
        size_t n = 0;
        char *kept = read_file_text(ck, &n);
        FUZZ_CHECK(kept && n == sizeof USER - 1 && !memcmp(kept, USER, n), "a refused import %s %s",
                   kept ? "changed" : "removed", ck);
        free(kept);
        err_clear();
        char tmp[160];
        snprintf(tmp, sizeof tmp, "%s.tmp", ck);
        FUZZ_CHECK(access(tmp, F_OK) != 0, "a refused import left %s", tmp);
        return 0;
    }
    err_clear();
    FUZZ_CHECK(export_safetensors(ck, st) == NMT_OK, "the imported checkpoint does not export: %s", err_msg());
    const char *again = out_path("c.ckpt");
    FUZZ_CHECK(import_checkpoint(st, NULL, again) == NMT_OK, "the export does not import: %s", err_msg());
    Config c1, c2;
    Tokenizer t1, t2;
    Model m1, m2;
    TrainState s1, s2;
    FUZZ_CHECK(train_state_load(ck, &c1, &t1, &m1, NULL, &s1) == NMT_OK, "%s", err_msg());
    FUZZ_CHECK(train_state_load(again, &c2, &t2, &m2, NULL, &s2) == NMT_OK, "%s", err_msg());
    FUZZ_CHECK(m1.nparams == m2.nparams && !memcmp(m1.params, m2.params, m1.nparams * sizeof(real)),
               "import -> export -> import changed the weights");
    model_free(&m1);
    model_free(&m2);
    tokenizer_free(&t1);
    tokenizer_free(&t2);
    config_free(&c1);
    config_free(&c2);
    remove(again);
    remove(st);
    remove(ck);
    return 0;
}
