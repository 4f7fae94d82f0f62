// serve/watchdog.c — deadlines on connections (watchdog.h).
#include "serve/watchdog.h"
#include "common/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct WatchedConn {
    int fd;
    ConnPhase phase;
    double since;
    int cut;
    WatchedConn *prev, *next;
};

struct Watchdog {
    double limit_s;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    WatchedConn *head;
    int stopping;
    size_t cuts;
    pthread_t thread;
};

// What a request too slow to arrive gets before its connection is shut down.
static void send_408(int fd, double limit_s) {
    char body[160], msg[400];
    int nb = snprintf(body, sizeof body, "{\"error\":\"the request took more than %g s to arrive (--timeout)\"}",
                      limit_s);
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                     "Content-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s",
                     nb, body);
    if (send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) return;  // the socket is shut down anyway
}

// Shuts down the connections past their deadline. Under the lock.
static void sweep(Watchdog *w) {
    double now = now_seconds();
    for (WatchedConn *c = w->head; c; c = c->next) {
        if (c->cut || c->phase == CONN_BUSY || now - c->since <= w->limit_s) continue;
        // While libmicrohttpd reads, nothing else writes to the socket.
        if (c->phase == CONN_RECEIVING) send_408(c->fd, w->limit_s);
        shutdown(c->fd, SHUT_RDWR);  // its thread sees the end and closes it
        c->cut = 1;
        w->cuts++;
    }
}

static void *watchdog_main(void *arg) {
    Watchdog *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        sweep(w);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&w->wake, &w->mu, &until);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

Watchdog *watchdog_start(double limit_s) {
    Watchdog *w = xcalloc(1, sizeof *w);
    w->limit_s = limit_s;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, NULL);
    if (pthread_create(&w->thread, NULL, watchdog_main, w) != 0) {
        fprintf(stderr, "nmt: internal error: cannot start the serve watchdog thread\n");
        abort();
    }
    return w;
}

WatchedConn *watchdog_open(Watchdog *w, int fd) {
    WatchedConn *c = xcalloc(1, sizeof *c);
    c->fd = fd;
    c->phase = CONN_RECEIVING;
    c->since = now_seconds();
    pthread_mutex_lock(&w->mu);
    c->next = w->head;
    if (w->head) w->head->prev = c;
    w->head = c;
    pthread_mutex_unlock(&w->mu);
    return c;
}

void watchdog_phase(Watchdog *w, WatchedConn *c, ConnPhase p) {
    pthread_mutex_lock(&w->mu);
    c->phase = p;
    c->since = now_seconds();
    pthread_mutex_unlock(&w->mu);
}

void watchdog_close(Watchdog *w, WatchedConn *c) {
    pthread_mutex_lock(&w->mu);
    if (c->prev) c->prev->next = c->next;
    else w->head = c->next;
    if (c->next) c->next->prev = c->prev;
    pthread_mutex_unlock(&w->mu);
    free(c);
}

size_t watchdog_cuts(Watchdog *w) {
    pthread_mutex_lock(&w->mu);
    size_t n = w->cuts;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void watchdog_stop(Watchdog *w) {
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->wake);
    free(w);
}
