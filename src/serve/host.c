// serve/host.c — the Host header against the names this server answers (host.h).
#include "serve/host.h"

#include <string.h>
#include <strings.h>

// The length of host's name without its ":port" ("[::1]:8080" -> "[::1]").
static size_t name_len(const char *host) {
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        return end ? (size_t)(end - host) + 1 : strlen(host);
    }
    const char *colon = strchr(host, ':');
    return colon ? (size_t)(colon - host) : strlen(host);
}

static int name_is(const char *host, size_t len, const char *name) {
    return strlen(name) == len && strncasecmp(host, name, len) == 0;
}

static int is_loopback(const char *addr) {
    return !strncmp(addr, "127.", 4) || !strcmp(addr, "::1") || !strcasecmp(addr, "localhost");
}

int host_allowed(const char *host, const char *listen_host, const char *const *allowed, int n) {
    if (!host) return 1;  // HTTP/1.0 without Host: no browser sends that
    size_t len = name_len(host);
    if (n > 0) {
        for (int i = 0; i < n; i++)
            if (name_is(host, len, allowed[i])) return 1;
        return 0;
    }
    if (!is_loopback(listen_host)) return 1;
    if (name_is(host, len, listen_host)) return 1;  // http://127.0.0.2:8080/ for a server on 127.0.0.2
    return name_is(host, len, "localhost") || name_is(host, len, "127.0.0.1") || name_is(host, len, "[::1]");
}
