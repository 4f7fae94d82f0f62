// copy_corpus.h — for tests: a synthetic copy task (the target is the source).
#ifndef NMT_TEST_COPY_CORPUS_H
#define NMT_TEST_COPY_CORPUS_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>

#include "common/rng.h"

// Writes n random sequences of tokens t0..t{V-1}, lengths 3..maxlen, to
// dir/split.src and dir/split.tgt (the same on both sides).
static inline void write_copy_corpus(const char *dir, const char *split, int n, int V, int maxlen, uint64_t seed) {
    char sp[512], tp[512];
    snprintf(sp, sizeof sp, "%s/%s.src", dir, split);
    snprintf(tp, sizeof tp, "%s/%s.tgt", dir, split);
    FILE *s = fopen(sp, "w"), *t = fopen(tp, "w");
    cr_assert(s && t);
    uint64_t key = rng_key(seed, 1, 2);
    uint64_t k = 0;
    for (int i = 0; i < n; i++) {
        int len = 3 + (int)(rng_u64(key, k++) % (uint64_t)(maxlen - 2));
        for (int j = 0; j < len; j++) {
            int w = (int)(rng_u64(key, k++) % (uint64_t)V);
            fprintf(s, "%st%d", j ? " " : "", w);
            fprintf(t, "%st%d", j ? " " : "", w);
        }
        fputc('\n', s);
        fputc('\n', t);
    }
    fclose(s);
    fclose(t);
}

#endif
