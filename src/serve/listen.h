// serve/listen.h — nmt serve's listening socket, made before the HTTP daemon
// starts (which is given it): a refusal says why, with the right status.
#ifndef NMT_SERVE_LISTEN_H
#define NMT_SERVE_LISTEN_H

// Binds host:port (port 0: any free one) and listens. Returns NMT_OK with *fd,
// *ipv6 and the *bound port; NMT_ERR_INPUT for an address that is not an IP
// address or not this machine's; NMT_ERR_RUNTIME when the port is in use or
// the socket cannot be made.
int listen_socket(const char *host, int port, int *fd, int *ipv6, int *bound);

#endif
