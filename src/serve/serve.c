// serve/serve.c — nmt serve's HTTP side: routing, request checks, JSON in and out,
// start and drain (serve.h). Decoding is the queue's (queue.c), as translation
// jobs (translate_job.c).
#include "serve/serve.h"
#include "serve/queue.h"
#include "serve/listen.h"
#include "serve/request.h"
#include "serve/translate_job.h"
#include "serve/watchdog.h"
#include "serve/host.h"

#include "io/checkpoint.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

extern const char SERVE_PAGE[];  // src/serve/page.html, compiled in

enum { MAX_CONNECTIONS = 256 };

typedef struct {
    const ServeOptions *o;
    ServeQueue *q;
    Loaded l;                 // the model, its tokenizer and config
    JobEnv env;               // what its jobs run on (l's model, the limits)
    size_t body_cap;          // bytes of a request body (JSON for max_chars characters, escaped)
    pthread_mutex_t mu;
    int in_flight;            // requests received and not yet answered
    int listen_fd, port;      // the listening socket (listen.c) and its port
    Watchdog *wd;             // deadlines on connections (watchdog.c)
} Server;

typedef struct {
    char *body;
    size_t len, cap;
    int too_large;
    double t0;                // when its headers were in (now_seconds)
} Request;

// ---------------------------------------------------------------- responses

// The request's Origin when --cors-origin allows it, else NULL.
static const char *allowed_origin(const Server *s, struct MHD_Connection *con) {
    const char *origin = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Origin");
    for (int i = 0; origin && i < s->o->ncors; i++)
        if (!strcmp(origin, s->o->cors_origins[i])) return origin;
    return NULL;
}

// Cross-origin reading only for the origins --cors-origin names (none by
// default): any web page could otherwise read what a local server answers.
static void add_cors(const Server *s, struct MHD_Connection *con, struct MHD_Response *r) {
    const char *origin = allowed_origin(s, con);
    if (s->o->ncors) MHD_add_response_header(r, "Vary", "Origin");
    if (origin) MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
}

static enum MHD_Result reply(const Server *s, struct MHD_Connection *con, unsigned status, const char *type, const char *text,
                             const char *allow) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", type);
    add_cors(s, con, r);
    if (allow) MHD_add_response_header(r, "Allow", allow);
    enum MHD_Result rc = MHD_queue_response(con, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result reply_json(const Server *s, struct MHD_Connection *con, unsigned status, cJSON *json) {
    char *text = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    enum MHD_Result rc = reply(s, con, status, "application/json; charset=utf-8", text, NULL);
    free(text);
    return rc;
}

static enum MHD_Result reply_error(const Server *s, struct MHD_Connection *con, unsigned status, const char *allow, const char *fmt,
                                   ...) __attribute__((format(printf, 5, 6)));
static enum MHD_Result reply_error(const Server *s, struct MHD_Connection *con, unsigned status, const char *allow, const char *fmt,
                                   ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", msg);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    enum MHD_Result rc = reply(s, con, status, "application/json; charset=utf-8", text, allow);
    free(text);
    return rc;
}

// ---------------------------------------------------------------- /info

static cJSON *info_json(Server *s) {
    const ModelShape *m = &s->l.m.s;
    size_t sentences, batches;
    queue_counts(s->q, &sentences, &batches);
    cJSON *j = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(j, "model");
    cJSON_AddNumberToObject(model, "d_model", m->d_model);
    cJSON_AddNumberToObject(model, "heads", m->heads);
    cJSON_AddNumberToObject(model, "d_ff", m->d_ff);
    cJSON_AddNumberToObject(model, "encoder_layers", m->enc_layers);
    cJSON_AddNumberToObject(model, "decoder_layers", m->dec_layers);
    cJSON_AddStringToObject(model, "norm", m->pre_norm ? "pre" : "post");
    cJSON_AddStringToObject(model, "positions", m->relative ? "relative" : "sinusoidal");
    cJSON_AddNumberToObject(model, "attention_window", m->window);
    cJSON_AddNumberToObject(model, "parameters", (double)s->l.m.nparams);
    cJSON *voc = cJSON_AddObjectToObject(j, "vocabulary");
    cJSON_AddStringToObject(voc, "tokenizer", s->l.t.kind == TOK_BPE ? "bpe" : "word");
    cJSON_AddNumberToObject(voc, "source", m->src_vocab);
    cJSON_AddNumberToObject(voc, "target", m->tgt_vocab);
    const char *slash = strrchr(s->o->checkpoint, '/');  // the file's name, not where it lives
    cJSON_AddStringToObject(j, "checkpoint", slash ? slash + 1 : s->o->checkpoint);
    cJSON_AddNumberToObject(j, "step", (double)s->l.step);
    cJSON_AddBoolToObject(j, "quantized", s->l.m.quant != NULL);
    cJSON *srv = cJSON_AddObjectToObject(j, "server");
    cJSON_AddNumberToObject(srv, "beam", s->o->beam);
    cJSON_AddNumberToObject(srv, "max_batch", s->o->max_batch);
    cJSON_AddNumberToObject(srv, "max_chars", s->o->max_chars);
    cJSON_AddNumberToObject(srv, "max_sentences", s->o->max_sentences);
    cJSON_AddNumberToObject(srv, "max_work", s->o->max_work);
    cJSON_AddNumberToObject(srv, "request_timeout_s", s->o->request_timeout_s);
    cJSON_AddNumberToObject(srv, "window_ms", s->o->window_ms);
    cJSON_AddNumberToObject(srv, "sentences_decoded", (double)sentences);
    cJSON_AddNumberToObject(srv, "batches_decoded", (double)batches);
    return j;
}

// ---------------------------------------------------------------- /translate

static cJSON *attention_json(const AttnMap *m) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "source", cJSON_CreateStringArray(m->cols, (int)m->S));
    cJSON_AddItemToObject(j, "target", cJSON_CreateStringArray(m->rows, (int)m->T));
    float *mean = attention_map_mean(m);
    cJSON *w = cJSON_AddArrayToObject(j, "weights");
    for (size_t t = 0; t < m->T; t++) {
        cJSON *row = cJSON_CreateArray();
        for (size_t s = 0; s < m->S; s++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber(round((double)mean[t * m->S + s] * 1e4) / 1e4));
        cJSON_AddItemToArray(w, row);
    }
    free(mean);
    return j;
}

// Sentence i's part of a LibreTranslate response, added under each key of obj
// (as the value itself for one sentence, appended to arrays for several).
static void add_sentence(cJSON *obj, const Ask *a, const TranslateJob *j, size_t i) {
    size_t nb = (size_t)a->nbest;
    cJSON *items[5] = {cJSON_CreateString(j->texts[i * nb]), cJSON_CreateNumber(j->scores[i * nb]), NULL, NULL, NULL};
    const char *keys[5] = {"translatedText", "scores", "alternatives", "alternative_scores", "attention"};
    if (nb > 1) {
        items[2] = cJSON_CreateArray();
        items[3] = cJSON_CreateArray();
        for (size_t k = 1; k < nb; k++) {
            cJSON_AddItemToArray(items[2], cJSON_CreateString(j->texts[i * nb + k]));
            cJSON_AddItemToArray(items[3], cJSON_CreateNumber(j->scores[i * nb + k]));
        }
    }
    if (a->attention) items[4] = attention_json(&j->maps[i]);
    for (int k = 0; k < 5; k++) {
        if (!items[k]) continue;
        if (!a->many) {
            cJSON_AddItemToObject(obj, keys[k], items[k]);
            continue;
        }
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, keys[k]);
        if (!arr) arr = cJSON_AddArrayToObject(obj, keys[k]);
        cJSON_AddItemToArray(arr, items[k]);
    }
}

static cJSON *response_json(const Ask *a, const TranslateJob *j) {
    if (!a->opennmt) {
        cJSON *obj = cJSON_CreateObject();
        if (a->many && a->n == 0) cJSON_AddArrayToObject(obj, "translatedText");
        for (size_t i = 0; i < a->n; i++) add_sentence(obj, a, j, i);
        return obj;
    }
    cJSON *outer = cJSON_CreateArray(), *inner = cJSON_CreateArray();
    for (size_t i = 0; i < a->n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "src", a->lines[i]);
        cJSON_AddStringToObject(e, "tgt", j->texts[i]);
        cJSON_AddNumberToObject(e, "n_best", 1);
        cJSON_AddNumberToObject(e, "pred_score", j->scores[i]);
        cJSON_AddItemToArray(inner, e);
    }
    cJSON_AddItemToArray(outer, inner);
    return outer;
}

// application/json, perhaps with parameters (; charset=utf-8). A page of another
// origin can post text/plain or a form without asking first (no preflight).
static int json_type(const char *type) {
    if (!type) return 0;
    while (*type == ' ') type++;
    size_t n = strlen("application/json");
    return !strncasecmp(type, "application/json", n) && strchr(" ;", type[n]);
}

// Whether this request's client has gone: its end of the connection closed.
static int client_gone(void *arg) {
    struct pollfd p = {*(const int *)arg, POLLIN | POLLRDHUP, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

// The answer to a job done or cancelled (why: JOB_...).
static enum MHD_Result answer(Server *s, struct MHD_Connection *con, const Ask *a, const TranslateJob *j, int why) {
    if (why)
        fprintf(stderr, "nmt serve: a request of %zu sentences %s (%zu decoded)\n", a->n, j->job.error, j->job.from);
    if (why == JOB_GONE) return MHD_NO;  // nobody to answer: close
    if (why == JOB_DEADLINE)
        return reply_error(s, con, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
                           "the request took more than %g s (--request-timeout); its decoding was stopped",
                           s->o->request_timeout_s);
    if (why == JOB_STOPPING)
        return reply_error(s, con, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
                           "the server is stopping; the request was not finished");
    if (j->job.rc) return reply_error(s, con, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "%s", j->job.error);
    return reply_json(s, con, MHD_HTTP_OK, response_json(a, j));
}

static enum MHD_Result translate(Server *s, struct MHD_Connection *con, const Request *r) {
    const ServeOptions *o = s->o;
    const char *type = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Type");
    if (!json_type(type))
        return reply_error(s, con, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, NULL,
                           "POST /translate takes Content-Type: application/json (this request's: %s)",
                           type ? type : "none");
    AskLimits lim = {o->beam, o->max_chars, o->max_sentences, o->max_work};
    Ask a;
    enum MHD_Result rc;
    if (!parse_body(&a, r->body, r->len, &lim)) {
        rc = reply_error(s, con, a.status, NULL, "%s", a.err);
    } else {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
        int fd = ci ? ci->connect_fd : -1;
        TranslateJob j;
        translate_job_init(&j, &s->env, (char *const *)a.lines, a.n, a.beam, a.nbest, a.attention);
        queue_post(s->q, &j.job);
        int why = queue_wait_for(s->q, &j.job, r->t0 + o->request_timeout_s, fd >= 0 ? client_gone : NULL, &fd);
        rc = answer(s, con, &a, &j, why);
        translate_job_free(&j);
    }
    ask_free(&a);
    return rc;
}

// OPTIONS: a browser asking whether another origin may post; yes only for --cors-origin's.
static enum MHD_Result preflight(Server *s, struct MHD_Connection *con, const char *url) {
    const char *origin = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Origin");
    if (origin && !allowed_origin(s, con))
        return reply_error(s, con, MHD_HTTP_FORBIDDEN, NULL, "origin %.200s may not use this server (--cors-origin)",
                           origin);
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Allow", strcmp(url, "/translate") ? "GET, HEAD, OPTIONS" : "POST, OPTIONS");
    add_cors(s, con, r);
    if (origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS");
        MHD_add_response_header(r, "Access-Control-Allow-Headers", "Content-Type");
        MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    }
    enum MHD_Result rc = MHD_queue_response(con, MHD_HTTP_NO_CONTENT, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result route(Server *s, struct MHD_Connection *con, const char *url, const char *method,
                             const Request *r) {
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    if (r->too_large)
        return reply_error(s, con, MHD_HTTP_CONTENT_TOO_LARGE, NULL, "the body is larger than %zu bytes", s->body_cap);
    const char *host = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Host");
    if (!host_allowed(host, s->o->host, s->o->allowed_hosts, s->o->nhosts))
        return reply_error(s, con, MHD_HTTP_FORBIDDEN, NULL,
                           "the Host header does not name this server (see --allowed-host)");
    int known = !strcmp(url, "/translate") || !strcmp(url, "/") || !strcmp(url, "/health") || !strcmp(url, "/info");
    if (known && !strcmp(method, "OPTIONS")) return preflight(s, con, url);
    if (!strcmp(url, "/translate")) {
        if (!post) return reply_error(s, con, MHD_HTTP_METHOD_NOT_ALLOWED, "POST", "%s /translate: use POST", method);
        return translate(s, con, r);
    }
    if (!strcmp(url, "/") || !strcmp(url, "/health") || !strcmp(url, "/info")) {
        if (!get) return reply_error(s, con, MHD_HTTP_METHOD_NOT_ALLOWED, "GET, HEAD", "%s %s: use GET", method, url);
        if (!strcmp(url, "/")) return reply(s, con, MHD_HTTP_OK, "text/html; charset=utf-8", SERVE_PAGE, NULL);
        if (!strcmp(url, "/info")) return reply_json(s, con, MHD_HTTP_OK, info_json(s));
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "status", "ok");
        return reply_json(s, con, MHD_HTTP_OK, j);
    }
    return reply_error(s, con, MHD_HTTP_NOT_FOUND, NULL, "no %s here (try POST /translate, GET /health, /info or /)", url);
}

// libmicrohttpd calls this once when the headers are in, once per piece of
// body, and once more when the body is complete.
static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **state) {
    (void)version;
    Server *s = cls;
    Request *r = *state;
    if (!r) {
        *state = r = xcalloc(1, sizeof *r);
        r->t0 = now_seconds();
        pthread_mutex_lock(&s->mu);
        s->in_flight++;
        pthread_mutex_unlock(&s->mu);
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_large && r->len + *upload_size > s->body_cap) r->too_large = 1;
        if (!r->too_large) {
            if (r->len + *upload_size + 1 > r->cap) {
                r->cap = (r->len + *upload_size + 1) * 2;
                r->body = xrealloc(r->body, r->cap);
            }
            memcpy(r->body + r->len, upload, *upload_size);
            r->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    WatchedConn *wc = ci ? ci->socket_context : NULL;
    if (wc) watchdog_phase(s->wd, wc, CONN_BUSY);
    enum MHD_Result rc = route(s, con, url, method, r);
    if (wc) watchdog_phase(s->wd, wc, CONN_SENDING);
    return rc;
}

// Every connection is watched from its start to its close (watchdog.h).
static void on_connection(void *cls, struct MHD_Connection *con, void **context, enum MHD_ConnectionNotificationCode what) {
    Server *s = cls;
    if (what == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
        *context = ci ? watchdog_open(s->wd, ci->connect_fd) : NULL;
    } else if (*context) {
        watchdog_close(s->wd, *context);
        *context = NULL;
    }
}

// The path as libmicrohttpd decodes it, except that a %00 is left as it is:
// decoded, "/health%00junk" would read as "/health" (a C string ends at NUL).
static size_t unescape(void *cls, struct MHD_Connection *con, char *s) {
    (void)cls;
    (void)con;
    if (strstr(s, "%00")) return strlen(s);
    return MHD_http_unescape(s);
}

static void on_completed(void *cls, struct MHD_Connection *con, void **state, enum MHD_RequestTerminationCode why) {
    (void)why;
    Server *s = cls;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci && ci->socket_context) watchdog_phase(s->wd, ci->socket_context, CONN_RECEIVING);  // the next request
    Request *r = *state;
    if (!r) return;
    free(r->body);
    free(r);
    *state = NULL;
    pthread_mutex_lock(&s->mu);
    s->in_flight--;
    pthread_mutex_unlock(&s->mu);
}

// ---------------------------------------------------------------- start and stop

static struct MHD_Daemon *start_daemon(Server *s) {
    const ServeOptions *o = s->o;
    int ipv6 = 0;
    if (listen_socket(o->host, o->port, &s->listen_fd, &ipv6, &s->port)) return NULL;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC;
    if (ipv6) flags |= MHD_USE_IPv6;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout_s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)o->max_per_address, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
    if (!d) {
        close(s->listen_fd);
        err_set(NMT_ERR_RUNTIME, "cannot start the HTTP server on %s port %d", o->host, s->port);
    }
    return d;
}

static int in_flight(Server *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->in_flight;
    pthread_mutex_unlock(&s->mu);
    return n;
}

// Waits up to seconds for the requests in flight to be answered (a second
// signal of stop ends the wait). Returns how many are left.
static int drain(Server *s, double seconds, const sigset_t *stop) {
    double until = now_seconds() + seconds;
    while (in_flight(s) && now_seconds() < until)
        if (sigtimedwait(stop, NULL, &(struct timespec){0, 10000000L}) > 0) break;
    return in_flight(s);
}

// SIGTERM or SIGINT: no new connections (the listening socket closed: refused,
// not left waiting); the requests in flight get stop_timeout_s; then what is
// left is cancelled (503, decoding stopped) and the connections closed.
static void stop_serving(Server *s, struct MHD_Daemon *daemon, int sig, const sigset_t *stop) {
    fprintf(stderr, "nmt serve: %s: finishing the requests in flight (at most %g s)\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", s->o->stop_timeout_s);
    MHD_socket fd = MHD_quiesce_daemon(daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    else fprintf(stderr, "nmt serve: warning: could not stop listening; new clients wait until the end\n");
    int left = drain(s, s->o->stop_timeout_s, stop);
    if (left) {
        fprintf(stderr, "nmt serve: %d requests still in flight; cancelling them\n", left);
        queue_cancel_all(s->q);  // their waiters answer 503 (within one call of the decoder)
        drain(s, 2.0, stop);
    }
    MHD_stop_daemon(daemon);  // closes what is left (clients still sending) and joins its threads
}

int serve_run(const ServeOptions *o) {
    Server s;
    memset(&s, 0, sizeof s);
    s.o = o;
    s.body_cap = (size_t)o->max_chars * 12 + 65536;  // a character is at most 12 bytes escaped (\uXXXX\uXXXX)
    int rc = checkpoint_load_decoding(&s.l, o->checkpoint, o->int8);
    if (rc) return rc;
    // SIGTERM and SIGINT are taken by sigwait below: blocked before any thread starts.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&s.mu, NULL);
    // A call decodes at most what max_batch sentences of the default beam do: a larger beam, fewer sentences.
    s.env = (JobEnv){&s.l.m, &s.l.t, s.l.c.max_src_len, (size_t)o->max_batch, (size_t)o->max_batch * (size_t)o->beam,
                     decode_scratch_create()};
    s.q = queue_start(o->window_ms / 1e3);
    s.wd = watchdog_start(o->timeout_s);
    struct MHD_Daemon *daemon = start_daemon(&s);
    if (daemon) {
        printf("nmt serve: listening on http://%s%s%s:%u (%s, step %ld%s; beam %d, batches of up to %d)\n",
               strchr(o->host, ':') ? "[" : "", o->host, strchr(o->host, ':') ? "]" : "", s.port,
               o->checkpoint, s.l.step, s.l.m.quant ? ", int8" : "", o->beam, o->max_batch);
        fflush(stdout);
        int sig = 0;
        sigwait(&stop, &sig);
        stop_serving(&s, daemon, sig, &stop);
        size_t sentences, batches;
        queue_counts(s.q, &sentences, &batches);
        fprintf(stderr, "nmt serve: stopped; %zu sentences decoded in %zu batches; %zu slow connections closed\n",
                sentences, batches, watchdog_cuts(s.wd));
    } else {
        rc = err_code();
    }
    queue_stop(s.q);
    decode_scratch_free(s.env.scratch);
    watchdog_stop(s.wd);
    pthread_mutex_destroy(&s.mu);
    loaded_free(&s.l);
    return rc;
}
