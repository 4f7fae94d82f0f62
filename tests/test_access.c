// test_access.c — API keys and the request limit (serve/access.h): the key
// file read (comments, blanks, spaces around), refusals naming the line, the
// bucket of N a minute per address refilling with time, and a bounded table.
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "serve/access.h"
#include "common/util.h"
#include "tmpdir.h"

TestSuite(access, .init = make_tmpdir, .fini = remove_tmpdir);

Test(access, keys_read_and_checked) {
    Access *a = access_open(write_tmp("keys", "# comment\n\n  key-one \nkey2\n"), 0, 8);
    cr_assert(a);
    cr_expect(access_keys_required(a));
    cr_expect_eq(access_key_count(a), 2);
    cr_expect(access_key_ok(a, "key-one"));
    cr_expect(access_key_ok(a, "key2"));
    cr_expect(!access_key_ok(a, "key"));
    cr_expect(!access_key_ok(a, "key22"));
    cr_expect(!access_key_ok(a, " key-one"));
    cr_expect(!access_key_ok(a, NULL));
    cr_expect(!access_key_ok(a, ""));
    access_close(a);
    cr_expect_null(access_open(write_tmp("empty", "# none\n\n"), 0, 8));
    cr_expect(strstr(err_msg(), "no API key in the file"), "%s", err_msg());
    err_clear();
    cr_expect_null(access_open(write_tmp("bad", "good\nba d\n"), 0, 8));
    cr_expect(strstr(err_msg(), "line 2: a key is printable ASCII without spaces"), "%s", err_msg());
    cr_expect_null(access_open("/nonexistent/keys", 0, 8));
    a = access_open(NULL, 0, 8);
    cr_expect(!access_keys_required(a) && access_key_ok(a, NULL) && access_key_ok(a, "anything"));
    access_close(a);
}

Test(access, limit_per_address_refills_per_minute) {
    Access *a = access_open(NULL, 3, 8);
    for (int i = 0; i < 3; i++) cr_expect(access_take(a, "10.0.0.1", 100.0));
    cr_expect(!access_take(a, "10.0.0.1", 100.0));
    cr_expect(access_take(a, "10.0.0.2", 100.0));  // another address has its own
    cr_expect(!access_take(a, "10.0.0.1", 110.0));  // 10 s: half a request back
    cr_expect(access_take(a, "10.0.0.1", 120.0));   // 20 s: one
    cr_expect(!access_take(a, "10.0.0.1", 120.0));
    for (int i = 0; i < 3; i++) cr_expect(access_take(a, "10.0.0.1", 300.0));  // full again, not more
    cr_expect(!access_take(a, "10.0.0.1", 300.0));
    access_close(a);
    a = access_open(NULL, 0, 8);
    for (int i = 0; i < 1000; i++) cr_expect(access_take(a, "10.0.0.1", 1.0));  // 0: no limit
    access_close(a);
}

Test(access, table_bounded_strangers_share_a_bucket) {
    Access *a = access_open(NULL, 2, 4);
    char addr[32];
    for (int i = 0; i < 4; i++) {  // four addresses, each with a request taken
        snprintf(addr, sizeof addr, "10.0.0.%d", i);
        cr_expect(access_take(a, addr, 0.0));
    }
    // the table is full of buckets not yet refilled: new addresses share the strangers' bucket of 2
    cr_expect(access_take(a, "10.0.1.1", 0.0));
    cr_expect(access_take(a, "10.0.1.2", 0.0));
    cr_expect(!access_take(a, "10.0.1.3", 0.0));
    // a minute on, the old buckets are full again: forgotten, and the new address gets its own
    cr_expect(access_take(a, "10.0.1.3", 60.0));
    cr_expect(access_take(a, "10.0.1.3", 60.0));
    cr_expect(!access_take(a, "10.0.1.3", 60.0));
    access_close(a);
}
