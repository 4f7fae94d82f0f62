// serve/serve.h — `nmt serve`: a translation server over HTTP (libmicrohttpd)
// that speaks LibreTranslate's API (libre.h), for one or several models
// (models.h), all decoded by the queue's one thread (queue.h).
//   POST /translate  LibreTranslate's request, JSON or a form (form.h) ->
//                    {"translatedText", ...} (libre.h); or OpenNMT-py's
//                    [{"src": "...", "id": 100}, ...] ->
//                    [[{"src", "tgt", "n_best", "pred_score"}, ...]]
//   POST /detect     {"q": "text"} -> [{"confidence", "language"}, ...]
//   GET /languages   [{"code", "name", "targets"}, ...] (POST too, as LibreTranslate)
//   GET /frontend/settings  what LibreTranslate's page reads
//   GET /health      {"status": "ok"} (once the models are loaded)
//   GET /info        the models, their checkpoints' file names, the server's settings
//   OPTIONS          a browser's preflight: only origins given by cors_origins
//                    are answered with Access-Control-Allow-Origin (as on
//                    every response); no origin is by default
//   GET /            a page to try it (src/serve/page.html)
// /translate and /detect need an API key when api_keys names a file (403),
// and count against req_limit per client address (429; access.h).
// Errors, each with {"error": "..."}: 400 malformed JSON (or more after it),
// invalid UTF-8, a NUL, a bad field; 413 more than max_chars characters,
// max_sentences sentences or max_work sentences x beam x n-best; 415 a body
// neither JSON nor a form; 403 a preflight from an origin not allowed,
// or a Host header that does not name this server (host.h: DNS rebinding);
// 404 unknown path; 405 wrong method; 503 a request not answered within
// request_timeout_s (its decoding stopped); 408 (then closed) a request that
// takes more than timeout_s to arrive, whatever its pace. A request whose
// client has gone is dropped (its decoding stopped). Decoding runs in pieces
// (queue.h), so a large request delays the others by one piece at most.
// SIGTERM or SIGINT closes the listening socket (new clients are refused),
// gives the requests in flight stop_timeout_s, then answers those left 503
// (their decoding stopped), and returns 0.
#ifndef NMT_SERVE_H
#define NMT_SERVE_H

#include "serve/models.h"

typedef struct {
    const ModelSpec *models;  // what to serve: each a checkpoint and its language pair
    int nmodels;
    const char *api_keys;     // a file of API keys (one per line), or NULL: none needed
    int req_limit;            // requests a minute from one client address (0: no limit)
    const char *host;
    int port;               // 0: any free port (printed)
    int beam;               // default beam size (a request may ask for another)
    int int8;               // quantize the weights at load
    int max_batch;          // sentences decoded together
    int max_chars;          // characters per request
    int max_sentences;      // sentences per request (an empty one counts)
    int max_work;            // sentences x beam x n-best per request
    double window_ms;       // how long a request waits for company
    int timeout_s;          // a request arriving, an answer going out, or an idle connection: at most this long
    int max_per_address;    // connections from one client address at once
    double request_timeout_s;  // a request not answered by then: 503, its decoding stopped
    double stop_timeout_s;  // on SIGTERM/SIGINT, how long the requests in flight may take
    const char **cors_origins;  // origins whose pages may call the server (none: no cross-origin reading)
    int ncors;
    const char **allowed_hosts;  // names a request's Host may give (none: serve/host.h's default)
    int nhosts;
} ServeOptions;

// Loads the model, serves until SIGTERM/SIGINT. NMT_ERR_RUNTIME when the port
// is in use; NMT_ERR_INPUT for a bad
// checkpoint or address (nothing is served then).
int serve_run(const ServeOptions *o);

#endif
