// serve/access.c — API keys and the request limit per address (access.h).
#include "serve/access.h"
#include "common/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ADDRESS_MAX = 64 };  // an IPv6 address as text fits

typedef struct {
    char address[ADDRESS_MAX];
    double tokens, at;   // requests left, as of time at
} Bucket;

struct Access {
    char **keys;
    size_t nkeys;
    int req_limit;
    Bucket *buckets;     // the addresses met, then one for strangers (the last)
    size_t nbuckets, cap;
    pthread_mutex_t mu;
};

static int read_keys(Access *a, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return err_set(NMT_ERR_INPUT, "%s: cannot open the API key file", path);
    char line[1024];
    long no = 0;
    int rc = NMT_OK;
    while (!rc && fgets(line, sizeof line, f)) {
        no++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n')
            rc = err_set(NMT_ERR_INPUT, "%s: line %ld: longer than %zu bytes", path, no, sizeof line - 2);
        char *s = line, *e = line + n;
        while (*s == ' ' || *s == '\t') s++;
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
        if (rc || !*s || *s == '#') continue;
        for (char *c = s; *c && !rc; c++)
            if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7E)
                rc = err_set(NMT_ERR_INPUT, "%s: line %ld: a key is printable ASCII without spaces", path, no);
        if (rc) break;
        a->keys = xrealloc(a->keys, (a->nkeys + 1) * sizeof *a->keys);
        a->keys[a->nkeys++] = xstrdup(s);
    }
    if (!rc && ferror(f)) rc = err_set(NMT_ERR_INPUT, "%s: cannot read the API key file", path);
    if (!rc && !a->nkeys) rc = err_set(NMT_ERR_INPUT, "%s: no API key in the file", path);
    fclose(f);
    return rc;
}

Access *access_open(const char *keys_path, int req_limit, size_t max_addresses) {
    Access *a = xcalloc(1, sizeof *a);
    a->req_limit = req_limit;
    a->cap = max_addresses ? max_addresses : 1;
    a->buckets = xcalloc(a->cap + 1, sizeof *a->buckets);
    a->buckets[a->cap].tokens = req_limit;
    pthread_mutex_init(&a->mu, NULL);
    if (keys_path && read_keys(a, keys_path)) {
        access_close(a);
        return NULL;
    }
    return a;
}

int access_keys_required(const Access *a) { return a->nkeys > 0; }
int access_req_limit(const Access *a) { return a->req_limit; }
size_t access_key_count(const Access *a) { return a->nkeys; }

// Equal strings, compared over every byte of the key (no early exit).
static int same_key(const char *key, const char *given) {
    size_t n = strlen(key), m = strlen(given);
    unsigned char diff = n != m;
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)(key[i] ^ (i < m ? given[i] : 0));
    return !diff;
}

int access_key_ok(const Access *a, const char *key) {
    if (!a->nkeys) return 1;
    int ok = 0;
    for (size_t i = 0; key && i < a->nkeys; i++) ok |= same_key(a->keys[i], key);
    return ok;
}

static void refill(Bucket *b, int limit, double now) {
    if (now > b->at) b->tokens += (now - b->at) * limit / 60.0;
    if (b->tokens > limit) b->tokens = limit;
    b->at = now;
}

// address's bucket: the one it has, a new one, or the strangers'.
static Bucket *bucket_of(Access *a, const char *address, double now) {
    for (size_t i = 0; i < a->nbuckets; i++)
        if (!strncmp(a->buckets[i].address, address, ADDRESS_MAX - 1)) return &a->buckets[i];
    if (a->nbuckets == a->cap) {  // forget the addresses whose bucket is full again
        size_t kept = 0;
        for (size_t i = 0; i < a->nbuckets; i++) {
            refill(&a->buckets[i], a->req_limit, now);
            if (a->buckets[i].tokens < a->req_limit) a->buckets[kept++] = a->buckets[i];
        }
        a->nbuckets = kept;
    }
    if (a->nbuckets == a->cap) return &a->buckets[a->cap];
    Bucket *b = &a->buckets[a->nbuckets++];
    memset(b, 0, sizeof *b);
    snprintf(b->address, sizeof b->address, "%s", address);
    b->tokens = a->req_limit;
    b->at = now;
    return b;
}

int access_take(Access *a, const char *address, double now) {
    if (!a->req_limit) return 1;
    pthread_mutex_lock(&a->mu);
    Bucket *b = bucket_of(a, address ? address : "", now);
    refill(b, a->req_limit, now);
    int ok = b->tokens >= 1;
    if (ok) b->tokens -= 1;
    pthread_mutex_unlock(&a->mu);
    return ok;
}

void access_close(Access *a) {
    if (!a) return;
    for (size_t i = 0; i < a->nkeys; i++) free(a->keys[i]);
    free(a->keys);
    free(a->buckets);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
