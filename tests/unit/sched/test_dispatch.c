/* sched/dispatch.c, sched__dispatch_choose(): the pure choice of a
 * dispatch round on an fsm in a temp dir, on virtual time. Order
 * (priority, aging, then age, then id), a worker's capacity, several asks
 * in one round, paused queues, queue concurrency and concurrency keys
 * against what runs and what this round picked, lists of queues. */

#include <stdlib.h>
#include <string.h>

#include "tests/unit/sched/helpers.h"

#define MIN 60000LL

#define setup tfsm_setup
#define teardown tfsm_teardown

static struct ask mkask(const char *queues, unsigned cap)
{
    struct ask a;
    memset(&a, 0, sizeof a);
    a.worker = 1;
    a.cap = cap;
    a.queues = tstr(queues);
    return a;
}

/* One round at @now; the count chosen. */
static unsigned choose(struct tfsm *t,
                       int64_t now,
                       int64_t aging_ms,
                       const struct counts *running,
                       struct ask *asks,
                       unsigned n_asks,
                       uint64_t *out,
                       unsigned max_out)
{
    struct fsm_reader *rd;
    struct counts none;
    sched__counts_init(&none);
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    unsigned n = sched__dispatch_choose(rd, now, aging_ms,
                                        running != NULL ? running : &none, asks,
                                        n_asks, out, max_out);
    fsm_read_end(rd);
    sched__counts_free(&none);
    return n;
}

/* One ask of @queues with room for @cap at @now. */
static unsigned choose1(struct tfsm *t,
                        int64_t now,
                        int64_t aging_ms,
                        const char *queues,
                        unsigned cap,
                        uint64_t *out)
{
    struct ask a = mkask(queues, cap);
    unsigned n = choose(t, now, aging_ms, NULL, &a, 1, out, 64);
    assert_int_equal(a.first, 0);
    assert_int_equal(a.got, n);
    return n;
}

static void assert_distinct(const uint64_t *ids, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        for (unsigned j = i + 1; j < n; j++) {
            assert_int_not_equal(ids[i], ids[j]);
        }
    }
}

/* Higher priority first, then older; other queues are not looked at. */
static void test_dispatch_priority_order(void **state)
{
    struct tfsm *t = *state;
    uint64_t out[64];
    uint64_t a = tsubmit(t, T0, "default", 0, NULL, 0);
    uint64_t b = tsubmit(t, T0 + 1, "default", 5, NULL, 0);
    uint64_t c = tsubmit(t, T0 + 2, "default", 5, NULL, 0);
    uint64_t d = tsubmit(t, T0 + 3, "default", 1, NULL, 0);
    tsubmit(t, T0 + 4, "other", 9, NULL, 0);

    assert_int_equal(choose1(t, T0 + 10, 0, "default", 10, out), 4);
    assert_int_equal(out[0], b);
    assert_int_equal(out[1], c);
    assert_int_equal(out[2], d);
    assert_int_equal(out[3], a);
}

/* An old low-priority job gains one level per aging interval: after
 * enough virtual time it outranks a new high-priority one; with aging 0
 * it never does. */
static void test_dispatch_aging(void **state)
{
    struct tfsm *t = *state;
    uint64_t out[64];
    uint64_t old = tsubmit(t, T0, "default", 0, NULL, 0);
    uint64_t hi1 = tsubmit(t, T0 + 1000, "default", 3, NULL, 0);

    /* Just submitted: priority decides. */
    assert_int_equal(choose1(t, T0 + 2000, MIN, "default", 1, out), 1);
    assert_int_equal(out[0], hi1);
    /* 2 min later: old is at 2, hi1 at 3 + 1. */
    assert_int_equal(choose1(t, T0 + 2 * MIN, MIN, "default", 10, out), 2);
    assert_int_equal(out[0], hi1);
    assert_int_equal(out[1], old);

    /* A new priority-3 job 5 min on: old (0 + 5) outranks it (3 + 0),
     * while hi1 (3 + 4) still outranks old. */
    uint64_t hi2 = tsubmit(t, T0 + 5 * MIN, "default", 3, NULL, 0);
    assert_int_equal(choose1(t, T0 + 5 * MIN + 1, MIN, "default", 10, out), 3);
    assert_int_equal(out[0], hi1);
    assert_int_equal(out[1], old);
    assert_int_equal(out[2], hi2);
    /* Two slots: hi1 and old, not hi2. */
    assert_int_equal(choose1(t, T0 + 5 * MIN + 1, MIN, "default", 2, out), 2);
    assert_int_equal(out[0], hi1);
    assert_int_equal(out[1], old);

    /* Aging off: priority only, however long old waited. */
    assert_int_equal(choose1(t, T0 + 600 * MIN, 0, "default", 10, out), 3);
    assert_int_equal(out[0], hi1);
    assert_int_equal(out[1], hi2);
    assert_int_equal(out[2], old);
}

/* Equal effective priority: the older job first, even with a lower raw
 * priority; equal age too: the lower id first, across queues. */
static void test_dispatch_tie_breakers(void **state)
{
    struct tfsm *t = *state;
    uint64_t out[64];
    uint64_t a = tsubmit(t, T0, "default", 0, NULL, 0);
    uint64_t b = tsubmit(t, T0 + MIN, "default", 1, NULL, 0);

    /* At T0 + 130 s: a = 0 + 2, b = 1 + 1. */
    assert_int_equal(choose1(t, T0 + 130000, MIN, "default", 10, out), 2);
    assert_int_equal(out[0], a);
    assert_int_equal(out[1], b);
    /* Without aging b's priority wins. */
    assert_int_equal(choose1(t, T0 + 130000, 0, "default", 10, out), 2);
    assert_int_equal(out[0], b);

    /* One SUBMIT: same created_at and priority. The job of queue "y" has
     * the lower id; "x" is gathered first, the id decides. */
    struct fsm_job jobs[2] = {tjob("w"), tjob("w")};
    jobs[0].queue = tstr("y");
    jobs[1].queue = tstr("x");
    const struct fsm_result *r = tfsm_submit(t, T0, jobs, 2);
    assert_int_equal(r->code, 0);
    uint64_t y = r->ids[0], x = r->ids[1];
    assert_true(y < x);
    assert_int_equal(choose1(t, T0 + 1, MIN, "x,y", 1, out), 1);
    assert_int_equal(out[0], y);
    assert_int_equal(choose1(t, T0 + 1, MIN, "x,y", 2, out), 2);
    assert_int_equal(out[1], x);
}

/* An ask gets at most its cap, and the round at most max_out. */
static void test_dispatch_capacity(void **state)
{
    struct tfsm *t = *state;
    uint64_t out[64], ids[5];
    for (int i = 0; i < 5; i++) {
        ids[i] = tsubmit(t, T0 + i, "default", 0, NULL, 0);
    }
    assert_int_equal(choose1(t, T0 + 10, 0, "default", 2, out), 2);
    assert_int_equal(out[0], ids[0]);
    assert_int_equal(out[1], ids[1]);
    assert_int_equal(choose1(t, T0 + 10, 0, "default", 0, out), 0);
    assert_int_equal(choose1(t, T0 + 10, 0, "default", 100, out), 5);

    struct ask asks[2] = {mkask("default", 2), mkask("default", 2)};
    assert_int_equal(choose(t, T0 + 10, 0, NULL, asks, 2, out, 3), 3);
    assert_int_equal(asks[0].got, 2);
    assert_int_equal(asks[1].got, 1);
    assert_int_equal(asks[1].first, 2);
}

/* Several asks in one round never get the same job; earlier asks get the
 * better ones. */
static void test_dispatch_several_asks(void **state)
{
    struct tfsm *t = *state;
    uint64_t out[64], ids[5];
    for (int i = 0; i < 5; i++) {
        ids[i] = tsubmit(t, T0 + i, "default", 10 - i, NULL, 0);
    }
    struct ask asks[4] = {mkask("default", 2), mkask("default", 2),
                          mkask("default", 2), mkask("default", 2)};
    unsigned n = choose(t, T0 + 10, MIN, NULL, asks, 4, out, 64);
    assert_int_equal(n, 5);
    assert_int_equal(asks[0].got, 2);
    assert_int_equal(asks[1].got, 2);
    assert_int_equal(asks[2].got, 1);
    assert_int_equal(asks[3].got, 0);
    assert_int_equal(asks[1].first, 2);
    assert_int_equal(asks[2].first, 4);
    assert_distinct(out, n);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(out[i], ids[i]);
    }
    /* Many asks of cap 1 over queues that overlap. */
    for (int i = 0; i < 5; i++) {
        tsubmit(t, T0 + 100 + i, i % 2 ? "b" : "a", i, NULL, 0);
    }
    struct ask more[8];
    for (int i = 0; i < 8; i++) {
        more[i] = mkask(i % 2 ? "default,a,b" : "b,a", 1);
    }
    n = choose(t, T0 + 200, MIN, NULL, more, 8, out, 64);
    assert_int_equal(n, 8);
    assert_distinct(out, n);
}

/* A paused queue gives nothing; the other queues of the ask still do. */
static void test_dispatch_paused_queue(void **state)
{
    struct tfsm *t = *state;
    uint64_t out[64];
    tsubmit(t, T0, "default", 0, NULL, 0);
    uint64_t b = tsubmit(t, T0, "b", 0, NULL, 0);

    tqueue(t, T0, "default", true, 0);
    assert_int_equal(choose1(t, T0 + 1, 0, "default", 10, out), 0);
    assert_int_equal(choose1(t, T0 + 1, 0, "default,b", 10, out), 1);
    assert_int_equal(out[0], b);
    tqueue(t, T0, "default", false, 0);
    assert_int_equal(choose1(t, T0 + 1, 0, "default", 10, out), 1);
}

/* A queue's concurrency counts its running jobs and the jobs picked for
 * earlier asks of the same round. */
static void test_dispatch_queue_concurrency(void **state)
{
    struct tfsm *t = *state;
    uint64_t out[64], ids[6];
    uint64_t w = treg(t, T0, "q", 10);
    for (int i = 0; i < 6; i++) {
        ids[i] = tsubmit(t, T0 + i, "q", 0, NULL, 0);
    }
    tqueue(t, T0, "q", false, 3);
    assert_int_equal(choose1(t, T0 + 10, 0, "q", 10, out), 3);

    assert_int_equal(tassign(t, T0 + 10, ids[0], w), FSM_ITEM_OK);
    assert_int_equal(choose1(t, T0 + 10, 0, "q", 10, out), 2);
    assert_int_equal(out[0], ids[1]);

    struct ask asks[3] = {mkask("q", 1), mkask("q", 10), mkask("q", 10)};
    unsigned n = choose(t, T0 + 10, 0, NULL, asks, 3, out, 64);
    assert_int_equal(n, 2);
    assert_int_equal(asks[0].got, 1);
    assert_int_equal(asks[1].got, 1);
    assert_int_equal(asks[2].got, 0);
    assert_distinct(out, n);

    /* A finished job frees its slot. */
    assert_int_equal(tcomplete(t, T0 + 20, ids[0]), FSM_ITEM_OK);
    assert_int_equal(choose1(t, T0 + 30, 0, "q", 10, out), 3);
}

/* A concurrency key's limit counts the jobs running under it (struct
 * counts) and those picked in this round, across asks. */
static void test_dispatch_ckey(void **state)
{
    struct tfsm *t = *state;
    uint64_t out[64], k[4];
    struct counts running;
    for (int i = 0; i < 4; i++) {
        k[i] = tsubmit(t, T0 + i, "default", 5, "k", 2);
    }
    uint64_t other = tsubmit(t, T0 + 10, "default", 1, "other", 1);
    uint64_t plain = tsubmit(t, T0 + 11, "default", 0, NULL, 0);

    /* Nothing runs: two of k, one of other, the plain job. */
    assert_int_equal(choose1(t, T0 + 20, 0, "default", 10, out), 4);
    assert_int_equal(out[0], k[0]);
    assert_int_equal(out[1], k[1]);
    assert_int_equal(out[2], other);
    assert_int_equal(out[3], plain);

    /* Picks of earlier asks count. */
    struct ask asks[3] = {mkask("default", 1), mkask("default", 1),
                          mkask("default", 10)};
    unsigned n = choose(t, T0 + 20, 0, NULL, asks, 3, out, 64);
    assert_int_equal(n, 4);
    assert_int_equal(out[0], k[0]);
    assert_int_equal(out[1], k[1]);
    assert_int_equal(out[2], other);
    assert_int_equal(out[3], plain);

    /* One of k runs: one more of k may start; other is full. */
    sched__counts_init(&running);
    sched__counts_add(&running, 7, tstr("k"), +1);
    sched__counts_add(&running, 7, tstr("other"), +1);
    struct ask a = mkask("default", 10);
    n = choose(t, T0 + 20, 0, &running, &a, 1, out, 64);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], k[0]);
    assert_int_equal(out[1], plain);
    sched__counts_add(&running, 7, tstr("k"), +1);
    n = choose(t, T0 + 20, 0, &running, &a, 1, out, 64);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], plain);

    /* The counts of a real fsm: two of k leased, rebuilt. */
    uint64_t w = treg(t, T0, "default", 10);
    assert_int_equal(tassign(t, T0 + 30, k[0], w), FSM_ITEM_OK);
    assert_int_equal(sched__counts_rebuild(&running, t->f), 0);
    assert_int_equal(sched__counts_key(&running, tstr("k")), 1);
    n = choose(t, T0 + 40, 0, &running, &a, 1, out, 64);
    assert_int_equal(n, 3);
    assert_int_equal(out[0], k[1]);
    assert_int_equal(out[1], other);
    assert_int_equal(out[2], plain);
    assert_int_equal(tassign(t, T0 + 40, k[1], w), FSM_ITEM_OK);
    assert_int_equal(sched__counts_rebuild(&running, t->f), 0);
    n = choose(t, T0 + 50, 0, &running, &a, 1, out, 64);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], other);
    sched__counts_free(&running);
}

/* An ask of "a,b" takes the best of both queues; unknown and empty names
 * in the list are passed over. */
static void test_dispatch_multiple_queues(void **state)
{
    struct tfsm *t = *state;
    uint64_t out[64];
    uint64_t a1 = tsubmit(t, T0, "a", 1, NULL, 0);
    uint64_t a2 = tsubmit(t, T0 + 1, "a", 1, NULL, 0);
    uint64_t b1 = tsubmit(t, T0 + 2, "b", 5, NULL, 0);
    uint64_t b2 = tsubmit(t, T0 + 3, "b", 5, NULL, 0);
    tsubmit(t, T0 + 4, "c", 9, NULL, 0);

    assert_int_equal(choose1(t, T0 + 10, 0, "a,b", 3, out), 3);
    assert_int_equal(out[0], b1);
    assert_int_equal(out[1], b2);
    assert_int_equal(out[2], a1);
    assert_int_equal(choose1(t, T0 + 10, 0, "a", 10, out), 2);
    assert_int_equal(out[0], a1);
    assert_int_equal(out[1], a2);
    assert_int_equal(choose1(t, T0 + 10, 0, "zzz,,a", 10, out), 2);
    assert_int_equal(out[0], a1);
    assert_int_equal(choose1(t, T0 + 10, 0, "b,a", 10, out), 4);
    assert_int_equal(out[0], b1);
    assert_int_equal(out[3], a2);
    assert_int_equal(choose1(t, T0 + 10, 0, "nope", 10, out), 0);
}

/* A worker gets only the job types it registered; with none registered,
 * every type but shell (sched_worker_runs). */
static void test_dispatch_worker_types(void **state)
{
    struct tfsm *t = *state;
    uint64_t out[64];
    struct fsm_job sh = tjob("shell"), ht = tjob("http");
    sh.queue = tstr("default");
    ht.queue = tstr("default");
    uint64_t shell = tfsm_submit(t, T0, &sh, 1)->ids[0];
    uint64_t http = tfsm_submit(t, T0 + 1, &ht, 1)->ids[0];
    uint64_t work = tsubmit(t, T0 + 2, "default", 0, NULL, 0);

    struct ask a = mkask("default", 10); /* types "": all but shell */
    assert_int_equal(choose(t, T0 + 10, 0, NULL, &a, 1, out, 64), 2);
    assert_int_equal(out[0], http);
    assert_int_equal(out[1], work);
    a = mkask("default", 10);
    a.types = tstr("shell");
    assert_int_equal(choose(t, T0 + 10, 0, NULL, &a, 1, out, 64), 1);
    assert_int_equal(out[0], shell);
    a = mkask("default", 10);
    a.types = tstr("noop,shell,work");
    assert_int_equal(choose(t, T0 + 10, 0, NULL, &a, 1, out, 64), 2);
    assert_int_equal(out[0], shell);
    assert_int_equal(out[1], work);

    assert_true(sched_worker_runs(tstr(""), tstr("sleep")));
    assert_false(sched_worker_runs(tstr(""), tstr("shell")));
    assert_false(sched_worker_runs(tstr("shellx"), tstr("shell")));
    assert_false(sched_worker_runs(tstr("she"), tstr("shell")));
    assert_true(sched_worker_runs(tstr("a,shell"), tstr("shell")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dispatch_priority_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_aging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_tie_breakers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_capacity, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_several_asks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_paused_queue, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_queue_concurrency, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_ckey, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_worker_types, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_multiple_queues, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
