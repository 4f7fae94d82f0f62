// serve/listen.c — the listening socket of nmt serve (listen.h).
#include "serve/listen.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int listen_socket(const char *host, int port, int *fd, int *ipv6, int *bound) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    socklen_t len;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        len = sizeof *v6;
    } else {
        return err_set(NMT_ERR_INPUT, "--host %s: not an IPv4 or IPv6 address", host);
    }
    *ipv6 = ss.ss_family == AF_INET6;
    int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (s < 0) return err_set(NMT_ERR_RUNTIME, "cannot make a socket: %s", strerror(errno));
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // a restart need not wait out TIME_WAIT
    if (bind(s, (struct sockaddr *)&ss, len) != 0 || listen(s, 128) != 0) {
        int e = errno;
        close(s);
        if (e == EADDRNOTAVAIL)
            return err_set(NMT_ERR_INPUT, "cannot listen on %s port %d: not this machine's address", host, port);
        return err_set(NMT_ERR_RUNTIME, "cannot listen on %s port %d: %s", host, port,
                       e == EADDRINUSE ? "the port is in use" : strerror(e));
    }
    len = sizeof ss;
    getsockname(s, (struct sockaddr *)&ss, &len);
    *bound = ntohs(ss.ss_family == AF_INET6 ? v6->sin6_port : v4->sin_port);
    *fd = s;
    return NMT_OK;
}
