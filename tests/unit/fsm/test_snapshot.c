/* fsm/snapshot.c: round trip with equal digests; corrupt snapshots leave
 * the old state intact. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tests/unit/fsm/helpers.h"

#define T0 1700000000000LL

static void populate(struct tfsm *t)
{
    struct fsm_job jobs[20];
    char users[20][8];
    for (int i = 0; i < 20; i++) {
        snprintf(users[i], 8, "u%d", i % 4);
        jobs[i] = tjob(i % 2 ? "shell" : "http");
        jobs[i].user_id = tstr(users[i]);
        jobs[i].run_at = i % 3 == 0 ? T0 + 1000 : 0;
    }
    for (int k = 0; k < 5; k++) {
        assert_int_equal(tfsm_submit(t, T0 + k, jobs, 20)->code, 0);
    }
    struct fsm_cmd c;
    unsigned n;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_NODE_SET;
    c.node_id = 1;
    c.raft_addr = tstr("127.0.0.1:7001");
    c.http_addr = tstr("127.0.0.1:8001");
    assert_int_equal(tfsm_apply(t, T0, &c, 1, &n)->code, 0);
}

static void snapshot(struct tfsm *t, void **buf, size_t *len)
{
    struct fsm_snapshot *s;
    assert_int_equal(fsm_snapshot_begin(t->f, &s), 0);
    assert_int_equal(fsm_snapshot_write(s, buf, len), 0);
    fsm_snapshot_end(s);
    /* Its header says the applied index (GET /v1/snapshot's file). */
    assert_int_equal(fsm_snapshot_index(*buf, *len), fsm_applied_index(t->f));
    assert_int_equal(fsm_snapshot_index(*buf, 15), 0);
    assert_int_equal(fsm_snapshot_index("not a snapshot at all", 21), 0);
}

static void test_snapshot_round_trip(void **state)
{
    struct tfsm a, b;
    void *buf;
    size_t len;
    (void)state;

    tfsm_open(&a);
    tfsm_open(&b);
    populate(&a);
    snapshot(&a, &buf, &len);
    assert_int_equal(fsm_restore(b.f, buf, len), 0);
    assert_int_equal(tfsm_digest(&a), tfsm_digest(&b));
    assert_int_equal(fsm_applied_index(b.f), fsm_applied_index(a.f));
    /* The restored replica goes on applying like the original. */
    b.index = a.index;
    struct fsm_job j = tjob("after");
    assert_int_equal(tfsm_submit(&a, T0 + 50, &j, 1)->code, 0);
    assert_int_equal(tfsm_submit(&b, T0 + 50, &j, 1)->code, 0);
    assert_int_equal(tfsm_digest(&a), tfsm_digest(&b));
    free(buf);
    tfsm_close(&a);
    tfsm_close(&b);
}

static void test_snapshot_corrupt_keeps_state(void **state)
{
    struct tfsm a, b;
    void *buf;
    size_t len;
    (void)state;

    tfsm_open(&a);
    tfsm_open(&b);
    populate(&a);
    struct fsm_job j = tjob("mine");
    tfsm_submit(&b, T0, &j, 1);
    uint64_t before = tfsm_digest(&b);
    uint64_t applied = fsm_applied_index(b.f);
    snapshot(&a, &buf, &len);
    for (size_t cut = 0; cut < len; cut += len / 37 + 1) {
        assert_int_not_equal(fsm_restore(b.f, buf, cut), 0);
    }
    ((unsigned char *)buf)[0] ^= 1; /* Bad magic. */
    assert_int_not_equal(fsm_restore(b.f, buf, len), 0);
    assert_int_equal(tfsm_digest(&b), before);
    assert_int_equal(fsm_applied_index(b.f), applied);
    free(buf);
    tfsm_close(&a);
    tfsm_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_snapshot_corrupt_keeps_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
