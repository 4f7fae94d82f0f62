// fuzz_bleu.c — BLEU, chrF and the 13a tokenizer on arbitrary (UTF-8 or not)
// strings.
//
// Input: one options byte, the hypothesis, then NUL-separated references
// (none: an empty reference).
//   bit 0 lowercase, bit 1 tokenize "none", bits 2..4 max_order - 1,
//   bits 5..6 smoothing (exp, none, floor, add-k), bit 7 effective order.
// Oracles: the two UTF-8 validators (bleu_utf8_check, utf8_check) agree;
// valid input is accepted and invalid refused with the stats unchanged;
// scores are finite and in [0, 100]; clipped matches never exceed totals;
// the 13a tokenization is valid UTF-8.
#include "fuzz.h"

#include <math.h>

#include "eval/bleu.h"

enum { MAX_REFS = 4 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned o = data[0];
    char *buf = fuzz_strndup(data + 1, size - 1);
    size_t n = size - 1;
    const char *hyp = buf, *refs[MAX_REFS];
    int nrefs = 0;
    for (size_t i = strlen(buf); i < n && nrefs < MAX_REFS; i += strlen(buf + i)) refs[nrefs++] = buf + ++i;
    if (nrefs == 0) refs[nrefs++] = "";

    int valid = 1;
    const char *all[1 + MAX_REFS] = {hyp};
    for (int r = 0; r < nrefs; r++) all[1 + r] = refs[r];
    for (int k = 0; k < 1 + nrefs; k++) {
        size_t len = strlen(all[k]);
        long a = bleu_utf8_check(all[k], len), b = utf8_check(all[k], len);
        FUZZ_CHECK(a == b, "bleu_utf8_check %ld, utf8_check %ld", a, b);
        if (a >= 0) valid = 0;
        char *tok = NULL;
        err_clear();
        int rc = bleu_tokenize_13a(all[k], o & 1, &tok);
        FUZZ_CHECK((rc == NMT_OK) == (a < 0), "13a rc %d, utf8 %ld", rc, a);
        if (rc == NMT_OK) FUZZ_CHECK(utf8_valid(tok, strlen(tok)), "13a output is not UTF-8");
        free(tok);
    }

    BleuOptions bo = bleu_default_options();
    bo.lowercase = o & 1;
    bo.tokenize = o & 2 ? BLEU_TOK_NONE : BLEU_TOK_13A;
    bo.max_order = 1 + (int)((o >> 2) & 7);
    bo.smooth = (BleuSmooth)((o >> 5) & 3);
    bo.effective_order = (o >> 7) & 1;
    BleuStats bs;
    err_clear();
    FUZZ_CHECK(bleu_stats_init_opts(&bs, &bo) == NMT_OK, "options refused: %s", err_msg());
    BleuStats before = bs;
    int rc = nrefs == 1 ? bleu_add(&bs, hyp, refs[0]) : bleu_add_refs(&bs, hyp, refs, nrefs);
    FUZZ_CHECK((rc == NMT_OK) == valid, "bleu_add rc %d, valid %d", rc, valid);
    if (rc) FUZZ_CHECK(memcmp(&before, &bs, sizeof bs) == 0, "a refused segment changed the stats");
    // Twice: the corpus sums of two segments.
    if (!rc) rc = bleu_add(&bs, hyp, refs[0]);
    for (int k = 0; k < bo.max_order; k++)
        FUZZ_CHECK(bs.counts[k] >= 0 && bs.counts[k] <= bs.totals[k], "order %d: %ld of %ld", k + 1, bs.counts[k], bs.totals[k]);
    BleuResult br = bleu_result(&bs);
    FUZZ_CHECK(isfinite(br.score) && br.score >= 0 && br.score <= 100 + 1e-9, "BLEU %g", br.score);
    FUZZ_CHECK(isfinite(br.bp) && br.bp >= 0 && br.bp <= 1, "BP %g", br.bp);
    char line[512];
    bleu_format(&br, line, sizeof line);

    ChrfStats cs;
    chrf_stats_init(&cs, o & 1);
    err_clear();
    rc = nrefs == 1 ? chrf_add(&cs, hyp, refs[0]) : chrf_add_refs(&cs, hyp, refs, nrefs);
    FUZZ_CHECK((rc == NMT_OK) == valid, "chrf_add rc %d, valid %d", rc, valid);
    for (int k = 0; k < cs.opt.char_order; k++)
        FUZZ_CHECK(cs.stats[k][2] >= 0 && cs.stats[k][2] <= cs.stats[k][0] && cs.stats[k][2] <= cs.stats[k][1],
                   "chrF order %d: %ld matches of %ld / %ld", k + 1, cs.stats[k][2], cs.stats[k][0], cs.stats[k][1]);
    ChrfResult cr = chrf_result(&cs);
    FUZZ_CHECK(isfinite(cr.score) && cr.score >= 0 && cr.score <= 100 + 1e-9, "chrF %g", cr.score);
    chrf_format(&cr, line, sizeof line);

    // Identical hypothesis and reference: all matches, brevity penalty 1.
    if (valid) {
        BleuStats self;
        bleu_stats_init_opts(&self, &bo);
        bleu_add(&self, hyp, hyp);
        for (int k = 0; k < bo.max_order; k++)
            FUZZ_CHECK(self.counts[k] == self.totals[k], "self order %d: %ld of %ld", k + 1, self.counts[k], self.totals[k]);
        BleuResult sr = bleu_result(&self);
        FUZZ_CHECK(sr.bp == 1 || self.hyp_len == 0, "self BP %g", sr.bp);
    }
    err_clear();
    free(buf);
    return 0;
}
