// serve/host.h — whether a request's Host header names this server: the guard
// against DNS rebinding (a page on another site resolving its own name to
// 127.0.0.1 and then calling the server as its own origin, past CORS).
#ifndef NMT_SERVE_HOST_H
#define NMT_SERVE_HOST_H

// Whether the server listening on address listen_host answers a request whose
// Host header is host (NULL: none, as HTTP/1.0 allows). The name is compared
// without its port and case-insensitively against allowed[0..n); with n == 0,
// a server on a loopback address answers only its address, localhost,
// 127.0.0.1 and [::1], and a server on any other address answers any name (it is reached
// from other machines, by names it cannot know).
int host_allowed(const char *host, const char *listen_host, const char *const *allowed, int n);

#endif
