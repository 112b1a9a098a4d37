/* worker/lease.c: one lease of the leader's answer to a lease request. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>
#include <string.h>

#include "worker/worker.h"

static int parse(const char *text, struct lease *l, char *err, size_t size)
{
    json_t *v = json_loads(text, 0, NULL);
    int rv;
    assert_non_null(v);
    rv = worker_lease_parse(v, l, err, size);
    json_decref(v); /* l->job is borrowed: not used after this. */
    return rv;
}

static void test_lease_as_the_leader_writes_it(void **state)
{
    struct lease l;
    char err[64];
    json_t *v = json_loads(
        "{\"job\":{\"id\":\"000000000000002a\","
        "\"type\":\"noop\"},\"token\":17,\"attempt\":2}",
        0, NULL);
    (void)state;

    assert_int_equal(worker_lease_parse(v, &l, err, sizeof err), 0);
    assert_string_equal(l.id, "000000000000002a");
    assert_int_equal(l.token, 17);
    assert_int_equal(l.attempt, 2);
    assert_ptr_equal(l.job, json_object_get(v, "job"));
    json_decref(v);
}

static void test_lease_malformed_refused(void **state)
{
    static const char *bad[] = {
        "[]",
        "{\"token\":1,\"attempt\":1}",
        "{\"job\":[],\"token\":1,\"attempt\":1}",
        "{\"job\":{},\"token\":1,\"attempt\":1}",
        "{\"job\":{\"id\":7},\"token\":1,\"attempt\":1}",
        "{\"job\":{\"id\":\"\"},\"token\":1,\"attempt\":1}",
        "{\"job\":{\"id\":\"00000000000000001\"},\"token\":1,\"attempt\":1}",
        "{\"job\":{\"id\":\"12g4\"},\"token\":1,\"attempt\":1}",
        "{\"job\":{\"id\":\"2a\"},\"attempt\":1}",
        "{\"job\":{\"id\":\"2a\"},\"token\":\"1\",\"attempt\":1}",
        "{\"job\":{\"id\":\"2a\"},\"token\":-1,\"attempt\":1}",
        "{\"job\":{\"id\":\"2a\"},\"token\":1}",
        "{\"job\":{\"id\":\"2a\"},\"token\":1,\"attempt\":4294967296}",
    };
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct lease l;
        char err[64] = "";
        assert_int_equal(parse(bad[i], &l, err, sizeof err), -1);
        assert_true(strlen(err) > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_as_the_leader_writes_it),
        cmocka_unit_test(test_lease_malformed_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
