// serve/serve.c — nmt serve's HTTP side: routing, request checks, JSON in and out,
// start and drain (serve.h). Decoding is the queue's (queue.c), as translation
// jobs (translate_job.c).
#include "serve/serve.h"
#include "serve/queue.h"
#include "serve/listen.h"
#include "serve/request.h"
#include "serve/libre.h"
#include "serve/models.h"
#include "serve/access.h"
#include "serve/form.h"
#include "serve/watchdog.h"
#include "serve/host.h"

#include "io/checkpoint.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
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
    Served models;            // the models, their tokenizers and configs
    Access *access;           // API keys and the request limit
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

// One model's part of /info.
static cJSON *model_json(const ServedModel *sm) {
    const ModelShape *m = &sm->l->m.s;
    cJSON *j = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(j, "model");
    cJSON_AddNumberToObject(model, "d_model", m->d_model);
    cJSON_AddNumberToObject(model, "heads", m->heads);
    cJSON_AddNumberToObject(model, "d_ff", m->d_ff);
    cJSON_AddNumberToObject(model, "encoder_layers", m->enc_layers);
    cJSON_AddNumberToObject(model, "decoder_layers", m->dec_layers);
    cJSON_AddStringToObject(model, "norm", m->pre_norm ? "pre" : "post");
    cJSON_AddStringToObject(model, "positions", m->relative ? "relative" : "sinusoidal");
    cJSON_AddNumberToObject(model, "attention_window", m->window);
    cJSON_AddNumberToObject(model, "parameters", (double)sm->l->m.nparams);
    cJSON *voc = cJSON_AddObjectToObject(j, "vocabulary");
    cJSON_AddStringToObject(voc, "tokenizer", sm->l->t.kind == TOK_BPE ? "bpe" : "word");
    cJSON_AddNumberToObject(voc, "source", m->src_vocab);
    cJSON_AddNumberToObject(voc, "target", m->tgt_vocab);
    // The files' names, not where they live.
    for (size_t k = 0; k < sm->ms.n; k++) {
        const char *path = sm->ms.path[k], *slash = strrchr(path, '/');
        if (!k) cJSON_AddStringToObject(j, "checkpoint", slash ? slash + 1 : path);
        if (sm->ms.n == 1) break;
        cJSON *list = k ? cJSON_GetObjectItem(j, "ensemble") : cJSON_AddArrayToObject(j, "ensemble");
        cJSON_AddItemToArray(list, cJSON_CreateString(slash ? slash + 1 : path));
    }
    cJSON_AddNumberToObject(j, "step", (double)sm->l->step);
    cJSON_AddBoolToObject(j, "quantized", sm->l->m.quant != NULL);
    if (sm->src[0]) cJSON_AddStringToObject(j, "source", sm->src);
    if (sm->src[0]) cJSON_AddStringToObject(j, "target", sm->tgt);
    return j;
}

// GET /info: the first model's fields at the top (as with one model), every
// model under "models", and the server's settings.
static cJSON *info_json(Server *s) {
    size_t sentences, batches;
    queue_counts(s->q, &sentences, &batches);
    cJSON *j = model_json(&s->models.m[0]), *models = cJSON_AddArrayToObject(j, "models");
    for (size_t i = 0; i < s->models.n; i++) cJSON_AddItemToArray(models, model_json(&s->models.m[i]));
    cJSON *srv = cJSON_AddObjectToObject(j, "server");
    cJSON_AddNumberToObject(srv, "beam", s->o->beam);
    cJSON_AddNumberToObject(srv, "max_batch", s->o->max_batch);
    cJSON_AddNumberToObject(srv, "max_chars", s->o->max_chars);
    cJSON_AddNumberToObject(srv, "max_sentences", s->o->max_sentences);
    cJSON_AddNumberToObject(srv, "max_work", s->o->max_work);
    cJSON_AddNumberToObject(srv, "request_timeout_s", s->o->request_timeout_s);
    cJSON_AddNumberToObject(srv, "window_ms", s->o->window_ms);
    cJSON_AddBoolToObject(srv, "api_keys", access_keys_required(s->access));
    cJSON_AddNumberToObject(srv, "req_limit", access_req_limit(s->access));
    cJSON_AddNumberToObject(srv, "sentences_decoded", (double)sentences);
    cJSON_AddNumberToObject(srv, "batches_decoded", (double)batches);
    return j;
}

// GET /frontend/settings, as LibreTranslate's page reads it.
static cJSON *settings_json(Server *s) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "charLimit", s->o->max_chars);
    cJSON_AddNumberToObject(j, "frontendTimeout", 500);
    cJSON_AddBoolToObject(j, "apiKeys", access_keys_required(s->access));
    cJSON_AddBoolToObject(j, "keyRequired", access_keys_required(s->access));
    cJSON_AddBoolToObject(j, "suggestions", 0);
    cJSON_AddBoolToObject(j, "filesTranslation", 0);
    cJSON_AddArrayToObject(j, "supportedFilesFormat");
    cJSON *lang = cJSON_AddObjectToObject(j, "language");
    const ServedModel *m = &s->models.m[0];
    const char *codes[2] = {m->src, m->tgt};
    const char *sides[2] = {"source", "target"};
    for (int k = 0; k < 2; k++) {
        cJSON *side = cJSON_AddObjectToObject(lang, sides[k]);
        cJSON_AddStringToObject(side, "code", codes[k]);
        cJSON_AddStringToObject(side, "name", lang_name(codes[k]));
    }
    return j;
}

// application/json, perhaps with parameters (; charset=utf-8). Forms are read
// too, as LibreTranslate reads them: a page of another origin can post one
// without asking first, but cannot read the answer (no CORS for it), and
// what it can make the server do is bounded like any client's.
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

// The client's address as text (for --req-limit).
static void client_address(struct MHD_Connection *con, char *out, size_t len) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    snprintf(out, len, "?");
    if (sa && sa->sa_family == AF_INET) inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
    if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)len);
}

// The body read into a JSON value: JSON as sent, a form's fields as the JSON
// object they stand for. NULL after answering when it cannot be read.
static cJSON *read_body(Server *s, struct MHD_Connection *con, const Request *r, const char *path,
                        enum MHD_Result *rc) {
    const char *type = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Type");
    char err[300];
    cJSON *root = NULL;
    if (json_type(type)) {
        if (!parse_json_body(r->body, r->len, &root, err, sizeof err))
            *rc = reply_error(s, con, MHD_HTTP_BAD_REQUEST, NULL, "%s", err);
        return root;
    }
    if (form_type(type)) {
        root = form_fields(con, r->body ? r->body : "", r->len, err, sizeof err);
        if (!root) *rc = reply_error(s, con, MHD_HTTP_BAD_REQUEST, NULL, "%s", err);
        return root;
    }
    *rc = reply_error(s, con, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, NULL,
                      "POST %s takes application/json, application/x-www-form-urlencoded or multipart/form-data "
                      "(this request's Content-Type: %.100s)", path, type ? type : "none");
    return NULL;
}

// The API key and the request limit, as LibreTranslate checks them: 1 to go
// on, 0 after answering 403 or 429. The key is never printed.
static int admitted(Server *s, struct MHD_Connection *con, const cJSON *root, enum MHD_Result *rc) {
    const cJSON *key = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "api_key") : NULL;
    if (!access_key_ok(s->access, cJSON_IsString(key) ? key->valuestring : NULL)) {
        *rc = reply_error(s, con, MHD_HTTP_FORBIDDEN, NULL,
                          key ? "Invalid API key" : "Please provide an API key (this server requires one: api_key)");
        return 0;
    }
    char addr[64];
    client_address(con, addr, sizeof addr);
    if (!access_take(s->access, addr, now_seconds())) {
        *rc = reply_error(s, con, MHD_HTTP_TOO_MANY_REQUESTS, NULL, "Slowdown: %d per 1 minute",
                          access_req_limit(s->access));
        return 0;
    }
    return 1;
}

// The answer to a request decoded, refused or cancelled.
static enum MHD_Result answer(Server *s, struct MHD_Connection *con, LibreReply *lr) {
    if (lr->cancel)
        fprintf(stderr, "nmt serve: a request of %zu sentences %s (%zu decoded)\n", lr->sentences, lr->why, lr->decoded);
    if (lr->cancel == JOB_GONE) return MHD_NO;  // nobody to answer: close
    if (lr->cancel == JOB_DEADLINE)
        return reply_error(s, con, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
                           "the request took more than %g s (--request-timeout); its decoding was stopped",
                           s->o->request_timeout_s);
    if (lr->cancel == JOB_STOPPING)
        return reply_error(s, con, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
                           "the server is stopping; the request was not finished");
    if (lr->status != 200) return reply_error(s, con, lr->status, NULL, "%s", lr->error);
    cJSON *json = lr->json;
    lr->json = NULL;
    return reply_json(s, con, MHD_HTTP_OK, json);
}

static enum MHD_Result translate(Server *s, struct MHD_Connection *con, const Request *r) {
    const ServeOptions *o = s->o;
    enum MHD_Result rc = MHD_NO;
    cJSON *root = read_body(s, con, r, "/translate", &rc);
    if (!root) return rc;
    if (!admitted(s, con, root, &rc)) {
        cJSON_Delete(root);
        return rc;
    }
    AskLimits lim = {o->beam, o->max_chars, o->max_sentences, o->max_work};
    Ask a = {.root = root};
    if (!parse_ask(&a, root, &lim)) {
        rc = reply_error(s, con, a.status, NULL, "%s", a.err);
    } else {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
        int fd = ci ? ci->connect_fd : -1;
        LibreCtx c = {&s->models, s->q, o->max_sentences, o->max_work, r->t0 + o->request_timeout_s,
                      fd >= 0 ? client_gone : NULL, &fd};
        LibreReply lr;
        libre_translate(&c, &a, &lr);
        rc = answer(s, con, &lr);
        cJSON_Delete(lr.json);
    }
    ask_free(&a);
    return rc;
}

static size_t characters(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

// POST /detect {"q": "text"}.
static enum MHD_Result detect(Server *s, struct MHD_Connection *con, const Request *r) {
    enum MHD_Result rc = MHD_NO;
    cJSON *root = read_body(s, con, r, "/detect", &rc);
    if (!root) return rc;
    if (admitted(s, con, root, &rc)) {
        const cJSON *q = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "q") : NULL;
        if (!q) rc = reply_error(s, con, MHD_HTTP_BAD_REQUEST, NULL, "Invalid request: missing q parameter");
        else if (!cJSON_IsString(q) || utf8_check(q->valuestring, strlen(q->valuestring)) >= 0)
            rc = reply_error(s, con, MHD_HTTP_BAD_REQUEST, NULL, "\"q\" must be a string");
        else if (characters(q->valuestring) > (size_t)s->o->max_chars)
            rc = reply_error(s, con, MHD_HTTP_CONTENT_TOO_LARGE, NULL, "more than this server's %d characters (--max-chars)",
                             s->o->max_chars);
        else rc = reply_json(s, con, MHD_HTTP_OK, libre_detect(&s->models, q->valuestring));
    }
    cJSON_Delete(root);
    return rc;
}

// OPTIONS: a browser asking whether another origin may post; yes only for --cors-origin's.
static enum MHD_Result preflight(Server *s, struct MHD_Connection *con, const char *allow) {
    const char *origin = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Origin");
    if (origin && !allowed_origin(s, con))
        return reply_error(s, con, MHD_HTTP_FORBIDDEN, NULL, "origin %.200s may not use this server (--cors-origin)",
                           origin);
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    char methods[64];
    snprintf(methods, sizeof methods, "%s, OPTIONS", allow);
    MHD_add_response_header(r, "Allow", methods);
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

// The paths served and the methods each takes (GET includes HEAD).
static const struct {
    const char *path, *allow;
} PATHS[] = {{"/translate", "POST"},        {"/detect", "POST"},  {"/languages", "GET, HEAD, POST"},
             {"/frontend/settings", "GET, HEAD"}, {"/health", "GET, HEAD"}, {"/info", "GET, HEAD"},
             {"/", "GET, HEAD"}};

// Whether the list "GET, HEAD" names method.
static int allows(const char *list, const char *method) {
    size_t n = strlen(method);
    for (const char *p = list; (p = strstr(p, method)); p += n)
        if ((p == list || p[-1] == ' ') && (!p[n] || p[n] == ',')) return 1;
    return 0;
}

static enum MHD_Result get(Server *s, struct MHD_Connection *con, const char *url) {
    if (!strcmp(url, "/")) return reply(s, con, MHD_HTTP_OK, "text/html; charset=utf-8", SERVE_PAGE, NULL);
    if (!strcmp(url, "/info")) return reply_json(s, con, MHD_HTTP_OK, info_json(s));
    if (!strcmp(url, "/languages")) return reply_json(s, con, MHD_HTTP_OK, served_languages(&s->models));
    if (!strcmp(url, "/frontend/settings")) return reply_json(s, con, MHD_HTTP_OK, settings_json(s));
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "status", "ok");
    return reply_json(s, con, MHD_HTTP_OK, j);
}

static enum MHD_Result route(Server *s, struct MHD_Connection *con, const char *url, const char *method,
                             const Request *r) {
    if (r->too_large)
        return reply_error(s, con, MHD_HTTP_CONTENT_TOO_LARGE, NULL, "the body is larger than %zu bytes", s->body_cap);
    const char *host = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Host");
    if (!host_allowed(host, s->o->host, s->o->allowed_hosts, s->o->nhosts))
        return reply_error(s, con, MHD_HTTP_FORBIDDEN, NULL,
                           "the Host header does not name this server (see --allowed-host)");
    size_t p = 0, npaths = sizeof PATHS / sizeof PATHS[0];
    while (p < npaths && strcmp(url, PATHS[p].path)) p++;
    if (p == npaths)
        return reply_error(s, con, MHD_HTTP_NOT_FOUND, NULL,
                           "no %s here (try POST /translate or /detect, GET /languages, /health, /info or /)", url);
    if (!strcmp(method, "OPTIONS")) return preflight(s, con, PATHS[p].allow);
    const char *m = !strcmp(method, "HEAD") ? "GET" : method;
    if (!allows(PATHS[p].allow, m))
        return reply_error(s, con, MHD_HTTP_METHOD_NOT_ALLOWED, PATHS[p].allow, "%s %s: use %s", method, url,
                           PATHS[p].allow);
    if (!strcmp(url, "/translate")) return translate(s, con, r);
    if (!strcmp(url, "/detect")) return detect(s, con, r);
    return get(s, con, url);
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

// One line per model served, on stdout once listening.
static void announce(const Server *s) {
    const ServeOptions *o = s->o;
    printf("nmt serve: listening on http://%s%s%s:%u (beam %d, batches of up to %d%s%s)\n",
           strchr(o->host, ':') ? "[" : "", o->host, strchr(o->host, ':') ? "]" : "", s->port, o->beam, o->max_batch,
           access_keys_required(s->access) ? ", API keys required" : "", o->req_limit ? ", a request limit" : "");
    for (size_t i = 0; i < s->models.n; i++) {
        const ServedModel *m = &s->models.m[i];
        printf("nmt serve: %s -> %s: %s (step %ld%s)\n", m->src[0] ? m->src : "?", m->tgt[0] ? m->tgt : "?", m->path,
               m->l->step, m->l->m.quant ? ", int8" : "");
    }
    if (!s->models.m[0].src[0])
        printf("nmt serve: the checkpoint records no languages: GET /languages lists none (--languages SRC:TGT names them)\n");
    fflush(stdout);
}

// Loads the models and reads the keys; nothing is left when one fails.
static int open_server(Server *s, const ServeOptions *o) {
    memset(s, 0, sizeof *s);
    s->o = o;
    s->body_cap = (size_t)o->max_chars * 12 + 65536;  // a character is at most 12 bytes escaped (\uXXXX\uXXXX)
    s->access = access_open(o->api_keys, o->req_limit, 4096);
    if (!s->access) return err_code();
    int rc = served_load(&s->models, o->models, (size_t)o->nmodels, o->int8, o->max_batch, o->beam);
    if (rc) access_close(s->access);
    return rc;
}

int serve_run(const ServeOptions *o) {
    Server s;
    int rc = open_server(&s, o);
    if (rc) return rc;
    // SIGTERM and SIGINT are taken by sigwait below: blocked before any thread starts.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&s.mu, NULL);
    s.q = queue_start(o->window_ms / 1e3);
    s.wd = watchdog_start(o->timeout_s);
    struct MHD_Daemon *daemon = start_daemon(&s);
    if (daemon) {
        announce(&s);
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
    watchdog_stop(s.wd);
    pthread_mutex_destroy(&s.mu);
    served_free(&s.models);
    access_close(s.access);
    return rc;
}
