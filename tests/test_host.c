// test_host.c — the Host header a server answers (serve/host.h): on loopback
// only loopback names, with or without a port, in any case; a name given with
// --allowed-host replaces those; a server on another address answers any name.
#include <criterion/criterion.h>

#include "serve/host.h"

Test(host, loopback_server_answers_loopback_names_only) {
    const char *ok[] = {"127.0.0.1:8080", "localhost", "LocalHost:80", "[::1]:8080", "127.0.0.1"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_expect(host_allowed(ok[i], "127.0.0.1", NULL, 0), "%s", ok[i]);
    const char *no[] = {"evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil.example",
                        "[::2]:8080", "", "127.0.0.10:8080"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        cr_expect(!host_allowed(no[i], "127.0.0.1", NULL, 0), "%s", no[i]);
    cr_expect(host_allowed(NULL, "127.0.0.1", NULL, 0), "HTTP/1.0 without Host");
}

Test(host, a_server_on_its_own_loopback_address_answers_it) {
    cr_expect(host_allowed("127.0.0.2:9000", "127.0.0.2", NULL, 0));
    cr_expect(!host_allowed("127.0.0.3:9000", "127.0.0.2", NULL, 0));
    cr_expect(host_allowed("[::1]:9000", "::1", NULL, 0));
}

Test(host, allowed_hosts_replace_the_default) {
    const char *names[] = {"mt.example.org", "[fe80::1]"};
    cr_expect(host_allowed("MT.example.org:443", "127.0.0.1", names, 2));
    cr_expect(host_allowed("[fe80::1]:8080", "127.0.0.1", names, 2));
    cr_expect(!host_allowed("localhost:8080", "127.0.0.1", names, 2));
    cr_expect(!host_allowed("mt.example.org.evil:443", "0.0.0.0", names, 2));
}

Test(host, elsewhere_any_name_unless_listed) {
    cr_expect(host_allowed("translate.example.org", "0.0.0.0", NULL, 0));
    cr_expect(host_allowed("10.0.0.5:8080", "10.0.0.5", NULL, 0));
}
