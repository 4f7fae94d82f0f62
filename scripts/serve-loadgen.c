// serve-loadgen.c — a load generator for `nmt serve` that leaves the cores to
// the server: one thread per client, each with one blocking keep-alive
// HTTP/1.1 connection (reconnected when the server closes it), sending one
// sentence per request (POST /translate, {"q": "<sentence>"}), the sentences
// taken in turn from a file, for a duration. Prints requests/s (= sentences/s),
// the p50/p90/p99 latency of the answered requests, the errors (any status
// but 200, or a connection that failed or timed out) and its own CPU time.
// Loopback only; every socket operation has a timeout. Not part of ./nmt
// (`make loadgen` builds build/serve-loadgen; scripts/bench-serve.sh runs it).
//
//   build/serve-loadgen [-c CLIENTS] [-d SECONDS] [-w WARMUP] [-t TIMEOUT]
//                       [-s SOURCES] [-x '"beam": 4'] [-j] URL SENTENCES
//
// Requests answered before the warmup ends or after the duration do not count
// (one in flight at the end is still read, so the server never sees a client
// vanish mid-request). Exit status: 0, 1 when a request failed, 2 on bad usage.
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char *data;
    size_t len;
} Bytes;

// What every client shares (read-only once the clients start, but next).
static struct {
    int clients;
    double duration, warmup, timeout;
    const char *extra;            // JSON members after "q" (or NULL)
    struct sockaddr_storage addr;
    socklen_t addrlen;
    Bytes *requests;              // one whole HTTP request per sentence
    size_t nreq;
    atomic_size_t next;           // the next sentence to send
    double t0;                    // when counting starts (after the warmup)
    int json;
    int sources;                  // IPv4 source addresses the clients spread over (127.0.0.1 up)
} G;

typedef struct {
    int id;
    double *lat;                  // seconds, of the requests answered 200 in the window
    size_t n, cap;
    size_t errors;                // in the window
    size_t late;                  // answered outside the window (not counted)
    char first_error[200];
} Client;

static void die(int status, const char *fmt, const char *arg) {
    fprintf(stderr, "serve-loadgen: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(status);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) die(2, "%s", "out of memory");
    return p;
}

static void put(Bytes *b, const char *s, size_t n) {
    b->data = xrealloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

// s as a JSON string's contents: quotes, backslashes and control characters
// escaped; other bytes (UTF-8) as they are.
static void put_json_escaped(Bytes *b, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(b, esc, 6);
        } else {
            put(b, (const char *)&c, 1);
        }
    }
}

// The HTTP request for one sentence.
static Bytes request_for(const char *line, size_t n, const char *host) {
    Bytes body = {0}, req = {0};
    put(&body, "{\"q\": \"", 7);
    put_json_escaped(&body, line, n);
    put(&body, "\"", 1);
    if (G.extra && *G.extra) {
        put(&body, ", ", 2);
        put(&body, G.extra, strlen(G.extra));
    }
    put(&body, "}", 1);
    char head[512];
    int h = snprintf(head, sizeof head,
                     "POST /translate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: keep-alive\r\n\r\n",
                     host, body.len);
    put(&req, head, (size_t)h);
    put(&req, body.data, body.len);
    free(body.data);
    return req;
}

// One request per line of path (a final line without a newline counts; a CR
// before the newline is dropped).
static void load_sentences(const char *path, const char *host) {
    FILE *f = fopen(path, "rb");
    if (!f) die(2, "cannot read the sentences file %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        G.requests = xrealloc(G.requests, (G.nreq + 1) * sizeof *G.requests);
        G.requests[G.nreq++] = request_for(line, (size_t)len, host);
    }
    free(line);
    fclose(f);
    if (!G.nreq) die(2, "%s has no sentences", path);
}

static int is_loopback(const struct sockaddr *a) {
    if (a->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
    if (a->sa_family == AF_INET6) return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr);
    return 0;
}

// http://HOST:PORT (a trailing slash allowed): G.addr, and the Host header into host.
static void parse_url(const char *url, char *host, size_t cap) {
    if (strncmp(url, "http://", 7)) die(2, "the URL must start with http:// (got %s)", url);
    const char *h = url + 7, *end = h + strcspn(h, "/");
    if (*end && strcmp(end, "/")) die(2, "the URL is the server's root, with no path (got %s)", url);
    if ((size_t)(end - h) >= cap) die(2, "the URL's host is too long: %s", url);
    memcpy(host, h, (size_t)(end - h));
    host[end - h] = 0;
    char name[256];
    const char *colon = h[0] == '[' ? strstr(host, "]:") : strrchr(host, ':');
    if (!colon) die(2, "the URL needs a port: %s", url);
    const char *first = h[0] == '[' ? host + 1 : host, *port = colon + (h[0] == '[' ? 2 : 1);
    snprintf(name, sizeof name, "%.*s", (int)(colon - first), first);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(name, port, &hints, &res)) die(2, "cannot resolve %s", url);
    if (!is_loopback(res->ai_addr)) die(2, "loopback only: %s is not this machine's loopback", url);
    memcpy(&G.addr, res->ai_addr, res->ai_addrlen);
    G.addrlen = res->ai_addrlen;
    freeaddrinfo(res);
}

static void set_error(Client *c, const char *what) {
    if (!c->first_error[0]) snprintf(c->first_error, sizeof c->first_error, "%s", what);
}

// A connection with G.timeout on every send, receive and the connect itself.
static int connect_server(Client *c) {
    int fd = socket(G.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return set_error(c, "socket() failed"), -1;
    struct timeval tv = {(time_t)G.timeout, (long)((G.timeout - (double)(time_t)G.timeout) * 1e6)};
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // bounds connect() too (Linux)
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (G.sources > 1 && G.addr.ss_family == AF_INET) {  // as clients on other machines would be
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(c->id % G.sources));
        if (bind(fd, (const struct sockaddr *)&src, sizeof src)) {
            set_error(c, "cannot bind a 127.0.0.x source address");
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (const struct sockaddr *)&G.addr, G.addrlen)) {
        set_error(c, errno == EINPROGRESS || errno == EAGAIN ? "connect timed out" : strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

// The value of header name (case-insensitive) in the head, or NULL.
static const char *header(const char *head, const char *name) {
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n"))
        if (!strncasecmp(p + 2, name, n) && p[2 + n] == ':') return p + 3 + n + strspn(p + 3 + n, " \t");
    return NULL;
}

static const char *recv_error(void) {
    return errno == EAGAIN || errno == EWOULDBLOCK ? "no answer within the timeout (-t)" : strerror(errno);
}

// Reads one response: its status (0: the connection failed or timed out;
// -1: closed before the response began), and whether the server keeps the
// connection (*keep).
static int read_response(int fd, Client *c, int *keep) {
    static __thread char buf[1 << 16];
    size_t got = 0;
    char *end = NULL;
    while (!end) {
        if (got == sizeof buf - 1) return set_error(c, "a response head over 64 KiB"), 0;
        ssize_t k = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k == 0 && !got) return -1;
        if (k <= 0) return set_error(c, k ? recv_error() : "the server closed the connection mid-response"), 0;
        got += (size_t)k;
        buf[got] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) return set_error(c, "not an HTTP response"), 0;
    *end = 0;
    const char *cl = header(buf, "Content-Length"), *conn = header(buf, "Connection");
    *keep = !(conn && !strncasecmp(conn, "close", 5)) && cl;
    if (!cl) return set_error(c, "a response without Content-Length"), 0;
    size_t want = strtoul(cl, NULL, 10), have = got - (size_t)(end + 4 - buf);
    while (have < want) {  // the body: read and dropped
        ssize_t k = recv(fd, buf, want - have < sizeof buf ? want - have : sizeof buf, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return set_error(c, k ? recv_error() : "the body was cut short"), 0;
        have += (size_t)k;
    }
    if (status != 200) {
        char what[64];
        snprintf(what, sizeof what, "status %d", status);
        set_error(c, what);
    }
    return status;
}

static void record(Client *c, double sent, double done, double stop, int status) {
    if (sent < G.t0 || done > stop) {
        c->late++;
        return;
    }
    if (status != 200) {
        c->errors++;
        return;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->lat = xrealloc(c->lat, c->cap * sizeof *c->lat);
    }
    c->lat[c->n++] = done - sent;
}

// Sends r on *fd and reads the answer: its status (0: failed). A kept
// connection the server closed in the meantime is replaced once, as HTTP
// clients do; *fd is left open only if the server keeps it.
static int exchange(Client *c, int *fd, const Bytes *r) {
    for (int attempt = 0; attempt < 2; attempt++) {
        if (*fd < 0 && (*fd = connect_server(c)) < 0) return 0;
        int keep = 0, status = send_all(*fd, r->data, r->len) ? -1 : read_response(*fd, c, &keep);
        if (status <= 0 || !keep) {
            close(*fd);
            *fd = -1;
        }
        if (status >= 0) return status;
    }
    set_error(c, "the server closed the connection before answering");
    return 0;
}

static pthread_barrier_t ready, go;

static void *client_main(void *arg) {
    Client *c = arg;
    int fd = connect_server(c);
    pthread_barrier_wait(&ready);  // every client connected (or failed): main starts the clock
    pthread_barrier_wait(&go);
    double stop = G.t0 + G.duration;
    while (now() < stop) {
        const Bytes *r = &G.requests[atomic_fetch_add(&G.next, 1) % G.nreq];
        double sent = now();
        int status = exchange(c, &fd, r);
        record(c, sent, now(), stop, status);
        // No busy loop against a dead or refusing server (the run has failed anyway).
        if (!status && fd < 0) nanosleep(&(struct timespec){0, 50000000L}, NULL);
        else if (status != 200) nanosleep(&(struct timespec){0, 10000000L}, NULL);
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// The p-quantile of sorted v[0..n): the smallest value with at least p of them at or below it.
static double quantile(const double *v, size_t n, double p) {
    if (!n) return 0;
    size_t k = (size_t)(p * (double)n + 0.999999);
    return v[(k ? k : 1) - 1];
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec * 1e-6;
}

static void report(Client *cs, double cpu, double wall) {
    size_t n = 0, errors = 0;
    const char *first = NULL;
    for (int k = 0; k < G.clients; k++) n += cs[k].n, errors += cs[k].errors;
    double *all = xrealloc(NULL, n * sizeof *all);
    n = 0;
    for (int k = 0; k < G.clients; k++) {
        if (cs[k].n) memcpy(all + n, cs[k].lat, cs[k].n * sizeof *all);
        n += cs[k].n;
        if (!first && cs[k].first_error[0]) first = cs[k].first_error;
    }
    qsort(all, n, sizeof *all, by_value);
    double rps = (double)(n + errors) / G.duration, ok = (double)n / G.duration;
    double p50 = quantile(all, n, 0.5) * 1e3, p90 = quantile(all, n, 0.9) * 1e3, p99 = quantile(all, n, 0.99) * 1e3;
    if (G.json)
        printf("{\"clients\": %d, \"seconds\": %.3f, \"requests\": %zu, \"requests_per_s\": %.2f, "
               "\"sentences_per_s\": %.2f, \"p50_ms\": %.1f, \"p90_ms\": %.1f, \"p99_ms\": %.1f, \"errors\": %zu, "
               "\"cpu_s\": %.3f, \"cpu_share\": %.4f}\n",
               G.clients, G.duration, n + errors, rps, ok, p50, p90, p99, errors, cpu, cpu / wall);
    else
        printf("serve-loadgen: %d clients, %.1f s: %zu requests (%.1f requests/s; %.1f sentences/s answered, one "
               "sentence each), latency p50 %.1f ms, p90 %.1f ms, p99 %.1f ms; %zu errors; own CPU %.2f s (%.1f%% of "
               "one core)\n",
               G.clients, G.duration, n + errors, rps, ok, p50, p90, p99, errors, cpu, 100 * cpu / wall);
    if (errors && first) fprintf(stderr, "serve-loadgen: the first error: %s\n", first);
    free(all);
}

static double number(const char *s, const char *what, double min) {
    char *end;
    double v = strtod(s, &end);
    if (*end || end == s || !(v >= min) || v > 1e6) die(2, "bad %s", what);
    return v;
}

static const char USAGE[] =
    "usage: serve-loadgen [-c CLIENTS] [-d SECONDS] [-w WARMUP] [-t TIMEOUT] [-s SOURCES] [-x JSON_MEMBERS] [-j]\n"
    "                     URL SENTENCES\n"
    "  -c  clients, one thread and one keep-alive connection each (16)\n"
    "  -s  source addresses 127.0.0.1 to 127.0.0.SOURCES, the clients spread over them in turn (1;\n"
    "      nmt serve takes --max-per-address connections from one address)\n"
    "  -d  seconds counted (30); -w seconds of load before them, not counted (0)\n"
    "  -t  seconds any socket operation may take (60)\n"
    "  -x  JSON members added to each body, e.g. '\"beam\": 4'\n"
    "  -j  print the figures as one JSON object\n";

static void parse_args(int argc, char **argv, const char **url, const char **path) {
    G.clients = 16;
    G.duration = 30;
    G.timeout = 60;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-j")) G.json = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) fputs(USAGE, stdout), exit(0);
        else if (a[0] == '-' && a[1] && !a[2] && strchr("cdwtxs", a[1]) && i + 1 < argc) {
            const char *v = argv[++i];
            if (a[1] == 'c') G.clients = (int)number(v, "-c (clients: 1 to 4096)", 1);
            if (a[1] == 'c' && G.clients > 4096) die(2, "%s", "bad -c (clients: 1 to 4096)");
            if (a[1] == 'd') G.duration = number(v, "-d (seconds)", 0.1);
            if (a[1] == 'w') G.warmup = number(v, "-w (seconds)", 0);
            if (a[1] == 't') G.timeout = number(v, "-t (seconds)", 0.1);
            if (a[1] == 'x') G.extra = v;
            if (a[1] == 's') G.sources = (int)number(v, "-s (source addresses: 1 to 254)", 1);
            if (a[1] == 's' && G.sources > 254) die(2, "%s", "bad -s (source addresses: 1 to 254)");
        } else if (!*url) *url = a;
        else if (!*path) *path = a;
        else fputs(USAGE, stderr), exit(2);
    }
    if (!*url || !*path) fputs(USAGE, stderr), exit(2);
}

int main(int argc, char **argv) {
    const char *url = NULL, *path = NULL;
    char host[256];
    parse_args(argc, argv, &url, &path);
    parse_url(url, host, sizeof host);
    load_sentences(path, host);
    Client *cs = calloc((size_t)G.clients, sizeof *cs);
    pthread_t *th = calloc((size_t)G.clients, sizeof *th);
    if (!cs || !th) die(2, "%s", "out of memory");
    pthread_barrier_init(&ready, NULL, (unsigned)G.clients + 1);
    pthread_barrier_init(&go, NULL, (unsigned)G.clients + 1);
    for (int k = 0; k < G.clients; k++) cs[k].id = k;
    for (int k = 0; k < G.clients; k++)
        if (pthread_create(&th[k], NULL, client_main, &cs[k])) die(2, "%s", "cannot start a client thread");
    pthread_barrier_wait(&ready);
    double start = now(), cpu0 = cpu_seconds();
    G.t0 = start + G.warmup;  // the clients read it after the second barrier
    pthread_barrier_wait(&go);
    for (int k = 0; k < G.clients; k++) pthread_join(th[k], NULL);
    double wall = now() - start, cpu = cpu_seconds() - cpu0;
    report(cs, cpu, wall);
    size_t errors = 0;
    for (int k = 0; k < G.clients; k++) errors += cs[k].errors, free(cs[k].lat);
    free(cs);
    free(th);
    return errors ? 1 : 0;
}
