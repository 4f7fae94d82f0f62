// serve/access.h — who may ask for translations, and how often: API keys
// (LibreTranslate's --api-keys: a request to /translate or /detect without a
// key in the list is refused 403) and a request limit per client address
// (LibreTranslate's --req-limit: N requests a minute, as a bucket of N that
// refills at N per minute; past it 429). The table of addresses is bounded:
// when full, the addresses whose bucket has refilled are forgotten, and if
// none has, the new address shares one slot for strangers (so a flood of
// addresses cannot grow the server's memory, and still meets a limit).
#ifndef NMT_SERVE_ACCESS_H
#define NMT_SERVE_ACCESS_H

#include <stddef.h>

typedef struct Access Access;

// keys_path: one key per line (blank lines and lines starting with # skipped;
// spaces around a key are not part of it), or NULL for no keys. req_limit:
// requests a minute from one address, 0 for none. NULL with
// err_set(NMT_ERR_INPUT, "PATH: line N: ...") when the file cannot be read
// or holds no key or a bad one.
Access *access_open(const char *keys_path, int req_limit, size_t max_addresses);
int access_keys_required(const Access *a);
// Whether key (NULL: none given) is one of the file's (in time independent
// of where the keys differ).
int access_key_ok(const Access *a, const char *key);
// Takes one request from address's bucket at time now (seconds): 1 when it
// may go on, 0 when over the limit.
int access_take(Access *a, const char *address, double now);
int access_req_limit(const Access *a);
size_t access_key_count(const Access *a);
void access_close(Access *a);

#endif
