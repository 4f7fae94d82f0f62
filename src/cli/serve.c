// cli/serve.c — `nmt serve`: options, then the server (src/serve/).
#include "cli/cli.h"
#include "cli/options.h"

#include "serve/serve.h"

#include "common/util.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <stb/stb_ds.h>

static const char USAGE[] =
    "usage: nmt serve --checkpoint FILE... [--weights W,...] [--languages SRC:TGT] | --model SRC-TGT=FILE[,FILE...]...\n"
    "                 [--port 8080] [--host 127.0.0.1] [--beam K] [--threads N]\n"
    "                 [--api-keys FILE] [--req-limit N]\n"
    "                 [--max-batch N] [--max-chars N] [--max-sentences N] [--max-work W]\n"
    "                 [--window-ms MS] [--timeout S] [--request-timeout S]\n"
    "                 [--stop-timeout S] [--max-per-address N] [--cors-origin ORIGIN]... [--int8]\n"
    "  serves translations over HTTP until SIGTERM or SIGINT (which let the requests in flight finish\n"
    "  within --stop-timeout):\n"
    "  LibreTranslate's API: POST /translate {\"q\": \"text\" | [\"text\", ...], \"source\": \"de\" | \"auto\",\n"
    "  \"target\": \"en\", \"format\": \"text\" | \"html\", \"alternatives\": N, \"api_key\": \"...\"} (JSON or a form;\n"
    "  nmt's \"beam\", \"nbest\" and \"attention\" too; OpenNMT-py's [{\"src\": \"text\", \"id\": 100}] also works),\n"
    "  POST /detect, GET /languages, GET /frontend/settings; and GET /health, GET /info, GET / (a page\n"
    "  to try it). Requests that arrive together are decoded together, one model at a time.\n";

// The --checkpoint options as one model: FILE,FILE,... (an ensemble when
// several; --weights is read when they load). *checkpoint (malloc'ed) is NULL
// when none is given.
static int checkpoint_spec(const OptSpec *spec, char **files, const char *weights, char **checkpoint) {
    size_t n = (size_t)arrlen(files), len = 1;
    *checkpoint = NULL;
    if (weights && n < 2) return options_error(spec, "--weights weighs two --checkpoint or more");
    if (!n) return NMT_OK;
    for (size_t k = 0; k < n; k++) {
        if (strchr(files[k], ','))
            return options_error(spec, "--checkpoint %s: a comma separates an ensemble's files; rename the file",
                                 files[k]);
        len += strlen(files[k]) + 1;
    }
    *checkpoint = xcalloc(len, 1);
    for (size_t k = 0; k < n; k++) strcat(strcat(*checkpoint, k ? "," : ""), files[k]);
    return NMT_OK;
}

// --checkpoint (with --languages) and every --model, as the server takes them.
static int model_specs(const OptSpec *spec, const char *checkpoint, const char *weights, const char *languages,
                       char **models, ModelSpec **out, char (**codes)[2][LANG_CODE_MAX]) {
    size_t n = (size_t)arrlen(models) + (checkpoint != NULL);
    if (!n) return options_error(spec, "a model is required: --checkpoint FILE or --model SRC-TGT=FILE");
    if (languages && !checkpoint) return options_error(spec, "--languages names the languages of --checkpoint's model");
    *out = xcalloc(n, sizeof **out);
    *codes = xcalloc(n, sizeof **codes);
    size_t k = 0;
    if (checkpoint) {
        if (languages && !lang_pair_parse(languages, (*codes)[0][0], (*codes)[0][1]))
            return options_error(spec, "--languages %s: give two different language codes, SRC:TGT (de:en)", languages);
        (*out)[k++] = (ModelSpec){(*codes)[0][0], (*codes)[0][1], checkpoint, weights};
    }
    for (ptrdiff_t i = 0; i < arrlen(models); i++, k++) {
        char *eq = strchr(models[i], '=');
        if (eq) *eq = 0;
        int ok = eq && eq[1] && lang_pair_parse(models[i], (*codes)[k][0], (*codes)[k][1]);
        if (eq) *eq = '=';
        if (!ok) return options_error(spec, "--model %s: give SRC-TGT=FILE (de-en=model.ckpt)", models[i]);
        (*out)[k] = (ModelSpec){(*codes)[k][0], (*codes)[k][1], eq + 1, NULL};
    }
    return NMT_OK;
}

int cli_serve(int argc, char **argv) {
    ServeOptions o = {.host = "127.0.0.1", .port = 8080, .beam = 4, .max_batch = 32, .max_chars = 10000,
                      .max_sentences = 256, .max_work = 4096, .window_ms = 5, .timeout_s = 30, .max_per_address = 32,
                      .request_timeout_s = 60, .stop_timeout_s = 10};
    int threads = 0;
    const char *languages = NULL, *weights = NULL;
    char **models = NULL, **checkpoints = NULL, *checkpoint = NULL;
    const Option opts[] = {
        {"--checkpoint", OPT_STRINGS, &checkpoints, 0, 0, "FILE",
         "the model (float or int8); repeat it for an ensemble sharing one vocabulary", NULL},
        {"--weights", OPT_STRING, &weights, 0, 0, "W1,W2,...",
         "the --checkpoint ensemble's weights (normalised; default: equal)", NULL},
        {"--languages", OPT_STRING, &languages, 0, 0, "SRC:TGT",
         "the languages of --checkpoint's model when its checkpoint records none (de:en)", NULL},
        {"--model", OPT_STRINGS, &models, 0, 0, "SRC-TGT=FILE",
         "a model for a language pair (de-en=de-en.ckpt; repeatable: one server, several models;\n"
         "de-en=A.ckpt,B.ckpt: an ensemble of equal weights)", NULL},
        {"--api-keys", OPT_STRING, &o.api_keys, 0, 0, "FILE",
         "API keys, one per line: /translate and /detect then need one (\"api_key\"; else 403)", NULL},
        {"--req-limit", OPT_INT, &o.req_limit, 0, 1000000, "N",
         "requests to /translate and /detect a minute from one client address (more: 429; 0: no limit)",
         OPT_CURRENT},
        {"--host", OPT_STRING, &o.host, 0, 0, "ADDR", "the address to listen on (0.0.0.0: every interface)",
         OPT_CURRENT},
        {"--port", OPT_INT, &o.port, 0, 65535, "P", "the port; 0 picks a free one (printed)", OPT_CURRENT},
        {"--beam", OPT_INT, &o.beam, 1, 256, "K", "beam size when a request does not say", OPT_CURRENT},
        {"--threads", OPT_INT, &threads, 1, 1024, "N", "threads decoding (default: OMP_NUM_THREADS or all cores)",
         NULL},
        {"--max-batch", OPT_INT, &o.max_batch, 1, 4096, "N", "sentences decoded together", OPT_CURRENT},
        {"--max-chars", OPT_INT, &o.max_chars, 1, 10000000, "N", "characters per request (more: 413)", OPT_CURRENT},
        {"--max-sentences", OPT_INT, &o.max_sentences, 1, 1000000, "N",
         "sentences per request, an empty one too (more: 413)", OPT_CURRENT},
        {"--max-work", OPT_INT, &o.max_work, 1, 1000000000, "W", "sentences x beam x n-best per request (more: 413)",
         OPT_CURRENT},
        {"--window-ms", OPT_DOUBLE, &o.window_ms, 0, 1000, "MS",
         "how long a request waits for others to share its batch", OPT_CURRENT},
        {"--timeout", OPT_INT, &o.timeout_s, 1, 3600, "S",
         "a request must arrive within S seconds, whatever its pace (else 408), an answer be\n"
         "taken within S seconds, an idle connection is closed after S seconds", OPT_CURRENT},
        {"--max-per-address", OPT_INT, &o.max_per_address, 1, 256, "N",
         "connections from one client address at once (of 256; more are closed at once;\n"
         "behind a proxy every client is the proxy's address)", OPT_CURRENT},
        {"--request-timeout", OPT_DOUBLE, &o.request_timeout_s, 0.1, 86400, "S",
         "a request not answered within S seconds gets 503, and its decoding stops", OPT_CURRENT},
        {"--stop-timeout", OPT_DOUBLE, &o.stop_timeout_s, 0, 3600, "S",
         "on SIGTERM or SIGINT, the requests in flight get S seconds; then those left get 503", OPT_CURRENT},
        {"--cors-origin", OPT_STRINGS, &o.cors_origins, 0, 0, "ORIGIN",
         "a web origin (https://example.org) whose pages may call the server (repeatable;\n"
         "default: none, no cross-origin reading)", NULL},
        {"--allowed-host", OPT_STRINGS, &o.allowed_hosts, 0, 0, "NAME",
         "a name the Host header of a request may give (repeatable; default: on a loopback\n"
         "address its own address, localhost, 127.0.0.1 and [::1]; elsewhere any name)", NULL},
        {"--int8", OPT_FLAG, &o.int8, 0, 0, NULL, "decode with int8 weights, quantized at load", NULL},
    };
    const OptSpec spec = {"serve", USAGE, opts, sizeof opts / sizeof opts[0], 0, NULL};
    int rc = options_parse(&spec, argc, argv, NULL);
    ModelSpec *specs = NULL;
    char(*codes)[2][LANG_CODE_MAX] = NULL;
    if (!rc) rc = checkpoint_spec(&spec, checkpoints, weights, &checkpoint);
    if (!rc) rc = model_specs(&spec, checkpoint, weights, languages, models, &specs, &codes);
    if (rc) {
        rc = options_report(&spec, rc);
    } else {
        o.models = specs;
        o.nmodels = (int)arrlen(models) + (checkpoint != NULL);
        if (threads) omp_set_num_threads(threads);
        o.ncors = (int)arrlen(o.cors_origins);
        o.nhosts = (int)arrlen(o.allowed_hosts);
        rc = cli_finish(serve_run(&o));
    }
    free(specs);
    free(codes);
    free(checkpoint);
    arrfree(models);
    arrfree(checkpoints);
    arrfree(o.cors_origins);
    arrfree(o.allowed_hosts);
    return rc;
}
