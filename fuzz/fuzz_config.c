// fuzz_config.c — config_parse on arbitrary text, with a round-trip oracle.
//
// Input: JSON text, then optionally NUL-separated --set overrides
// ("a.b=value"), at most 8. When the parse succeeds, the resolved config is
// printed with config_to_json and parsed again; that must succeed, config_diff
// must find no differing key, and printing the second config must give the
// same text (config -> JSON -> config is the identity).
#include "fuzz.h"

#include "common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = fuzz_strndup(data, size);
    const char *sets[8];
    int nset = 0;
    for (size_t i = strlen(buf); i < size && nset < 8; i += strlen(buf + i)) {
        i++;  // skip the NUL
        if (i <= size) sets[nset++] = buf + i;
    }
    err_clear();
    Config a, b;
    if (config_parse(&a, buf, "fuzz.json", sets, nset) == NMT_OK) {
        char *j1 = config_to_json(&a);
        err_clear();
        int rc = config_parse(&b, j1, "round-trip.json", NULL, 0);
        FUZZ_CHECK(rc == NMT_OK, "the printed config does not parse: %s\n%s", err_msg(), j1);
        char diff[4096];
        int nd = config_diff(&a, &b, 0, diff, sizeof diff);
        FUZZ_CHECK(nd == 0, "config -> JSON -> config changes %d keys: %s\n%s", nd, diff, j1);
        char *j2 = config_to_json(&b);
        FUZZ_CHECK(strcmp(j1, j2) == 0, "printing is not a fixed point:\n%s\n%s", j1, j2);
        free(j1);
        free(j2);
        config_free(&b);
        config_free(&a);
    } else {
        FUZZ_CHECK(err_code() == NMT_ERR_INPUT && *err_msg(), "failed parse: code %d", err_code());
        config_free(&a);  // must be harmless after a failed parse
    }
    err_clear();
    free(buf);
    return 0;
}
