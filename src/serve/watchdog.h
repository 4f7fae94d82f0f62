// serve/watchdog.h — a deadline on the whole of a connection's every phase,
// not just on its silences: libmicrohttpd's timeout is reset by any byte, so
// a client sending one byte every few seconds would hold its connection (and
// its thread) forever. A thread looks at the connections ten times a second:
// one whose request has been arriving for longer than the limit gets a 408
// and is shut down; one whose answer has been going out (or that has been
// idle) that long is shut down. A connection waiting for its translation is
// left alone: the request's own deadline (--request-timeout) governs it.
#ifndef NMT_SERVE_WATCHDOG_H
#define NMT_SERVE_WATCHDOG_H

#include <stddef.h>

typedef enum { CONN_RECEIVING, CONN_BUSY, CONN_SENDING } ConnPhase;

typedef struct Watchdog Watchdog;
typedef struct WatchedConn WatchedConn;

// limit_s: how long each phase but CONN_BUSY may last.
Watchdog *watchdog_start(double limit_s);
// A new connection on socket fd (receiving); its handle for the calls below.
WatchedConn *watchdog_open(Watchdog *w, int fd);
// The connection enters phase p; its clock restarts.
void watchdog_phase(Watchdog *w, WatchedConn *c, ConnPhase p);
// The connection is closed (before its socket is): forgotten, freed.
void watchdog_close(Watchdog *w, WatchedConn *c);
// Connections shut down so far.
size_t watchdog_cuts(Watchdog *w);
// Stops the thread and frees w (every connection must be closed by then).
void watchdog_stop(Watchdog *w);

#endif
