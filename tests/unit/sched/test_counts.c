/* sched/counts.c: running jobs per worker and per concurrency key. Adds
 * and removals, removal to zero leaving the table, a table of 10,000 keys
 * (growth, then backward-shift deletion of every other one), a rebuild
 * from an fsm, and the fsm_watch_running feed: +1/-1 only for commands
 * that committed. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/sched/helpers.h"

#define setup tfsm_setup
#define teardown tfsm_teardown

static const struct fsm_str none = {NULL, 0};

static void test_counts_add_remove(void **state)
{
    struct counts c;
    (void)state;
    sched__counts_init(&c);
    assert_int_equal(sched__counts_worker(&c, 1), 0);
    assert_int_equal(sched__counts_key(&c, tstr("k")), 0);

    sched__counts_add(&c, 1, tstr("k"), +1);
    sched__counts_add(&c, 1, tstr("k"), +1);
    sched__counts_add(&c, 2, tstr("k"), +1);
    sched__counts_add(&c, 2, tstr("j"), +1);
    sched__counts_add(&c, 3, none, +1);
    assert_int_equal(sched__counts_worker(&c, 1), 2);
    assert_int_equal(sched__counts_worker(&c, 2), 2);
    assert_int_equal(sched__counts_worker(&c, 3), 1);
    assert_int_equal(sched__counts_worker(&c, 4), 0);
    assert_int_equal(sched__counts_key(&c, tstr("k")), 3);
    assert_int_equal(sched__counts_key(&c, tstr("j")), 1);
    assert_int_equal(sched__counts_key(&c, none), 0);
    /* Worker and key spaces are apart: key "w..." is not a worker. */
    assert_int_equal(sched__counts_key(&c, tstr("w")), 0);
    assert_int_equal(c.used, 5);

    /* Removal to zero leaves the table. */
    sched__counts_add(&c, 2, tstr("j"), -1);
    assert_int_equal(sched__counts_key(&c, tstr("j")), 0);
    assert_int_equal(sched__counts_worker(&c, 2), 1);
    assert_int_equal(c.used, 4);
    sched__counts_add(&c, 1, tstr("k"), -1);
    sched__counts_add(&c, 1, tstr("k"), -1);
    sched__counts_add(&c, 2, tstr("k"), -1);
    sched__counts_add(&c, 3, none, -1);
    assert_int_equal(c.used, 0);
    assert_int_equal(sched__counts_key(&c, tstr("k")), 0);
    assert_int_equal(sched__counts_worker(&c, 1), 0);

    /* A removal of what was never counted (rebuilt since) is ignored, and
     * a larger removal than the count goes to zero. */
    sched__counts_add(&c, 9, tstr("x"), -1);
    assert_int_equal(c.used, 0);
    sched__counts_add(&c, 9, tstr("x"), +2);
    sched__counts_add(&c, 9, tstr("x"), -5);
    assert_int_equal(sched__counts_key(&c, tstr("x")), 0);
    assert_int_equal(c.used, 0);

    /* The longest key, and one over the limit (not counted). */
    char big[FSM_MAX_STR + 2];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = 0;
    struct fsm_str longest = {big, FSM_MAX_STR}, over = {big, FSM_MAX_STR + 1};
    sched__counts_add(&c, 5, longest, +1);
    sched__counts_add(&c, 5, over, +1);
    assert_int_equal(sched__counts_key(&c, longest), 1);
    assert_int_equal(sched__counts_key(&c, over), 0);
    assert_int_equal(sched__counts_worker(&c, 5), 2);
    sched__counts_free(&c);
}

/* 10,000 keys: the table grows; removing every other one shifts entries
 * back over the holes and every probe chain still finds its key. */
static void test_counts_many_keys(void **state)
{
    enum { N = 10000 };
    struct counts c;
    char k[32];
    (void)state;
    sched__counts_init(&c);
    for (unsigned i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key-%u", i);
        for (unsigned j = 0; j <= i % 3; j++) {
            sched__counts_add(&c, 1000 + i % 7, tstr(k), +1);
        }
    }
    assert_int_equal(c.used, N + 7);
    assert_true(c.cap >= (N + 7) * 4 / 3);
    for (unsigned i = 0; i < N; i += 2) {
        snprintf(k, sizeof k, "key-%u", i);
        sched__counts_add(&c, 1000 + i % 7, tstr(k), -(int)(i % 3 + 1));
    }
    assert_int_equal(c.used, N / 2 + 7);
    unsigned per_worker[7] = {0};
    for (unsigned i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key-%u", i);
        unsigned want = i % 2 ? i % 3 + 1 : 0;
        assert_int_equal(sched__counts_key(&c, tstr(k)), want);
        per_worker[i % 7] += want;
    }
    for (unsigned w = 0; w < 7; w++) {
        assert_int_equal(sched__counts_worker(&c, 1000 + w), per_worker[w]);
    }
    /* Removed keys come back. */
    sched__counts_add(&c, 1, tstr("key-0"), +1);
    assert_int_equal(sched__counts_key(&c, tstr("key-0")), 1);
    sched__counts_free(&c);
    assert_int_equal(c.cap, 0);
}

/* A rebuild counts the RUNNING jobs of the fsm, and only them. */
static void test_counts_rebuild(void **state)
{
    struct tfsm *t = *state;
    struct counts c;
    uint64_t w1 = treg(t, T0, "default", 10), w2 = treg(t, T0, "default", 10);
    uint64_t a = tsubmit(t, T0, "default", 0, "k", 2);
    uint64_t b = tsubmit(t, T0, "default", 0, "k", 2);
    uint64_t d = tsubmit(t, T0, "default", 0, NULL, 0);
    tsubmit(t, T0, "default", 0, "k", 2); /* Pending: not counted. */

    assert_int_equal(tassign(t, T0, a, w1), FSM_ITEM_OK);
    assert_int_equal(tassign(t, T0, b, w2), FSM_ITEM_OK);
    assert_int_equal(tassign(t, T0, d, w2), FSM_ITEM_OK);

    sched__counts_init(&c);
    sched__counts_add(&c, 77, tstr("stale"), +3); /* Cleared by rebuild. */
    assert_int_equal(sched__counts_rebuild(&c, t->f), 0);
    assert_int_equal(sched__counts_worker(&c, 77), 0);
    assert_int_equal(sched__counts_key(&c, tstr("stale")), 0);
    assert_int_equal(sched__counts_worker(&c, w1), 1);
    assert_int_equal(sched__counts_worker(&c, w2), 2);
    assert_int_equal(sched__counts_key(&c, tstr("k")), 2);
    assert_int_equal(c.restores, fsm_restores(t->f));

    assert_int_equal(tcomplete(t, T0 + 1, b), FSM_ITEM_OK);
    assert_int_equal(sched__counts_rebuild(&c, t->f), 0);
    assert_int_equal(sched__counts_worker(&c, w2), 1);
    assert_int_equal(sched__counts_key(&c, tstr("k")), 1);
    sched__counts_free(&c);
}

/* What the watcher heard, besides keeping counts. */
struct heard
{
    struct counts c;
    int plus, minus;
};

static void heard_cb(void *data, uint64_t worker, struct fsm_str key, int d)
{
    struct heard *h = data;
    if (d > 0) {
        h->plus += d;
    } else {
        h->minus -= d;
    }
    sched__counts_watch(&h->c, worker, key, d);
}

/* fsm_watch_running feeds the counts as entries apply: ASSIGN +1,
 * COMPLETE -1, a cancelled (replaced) run -1, a worker down -1; nothing
 * for a rejected command, even beside committed ones in one entry. */
static void test_counts_watch(void **state)
{
    struct tfsm *t = *state;
    struct heard h;
    memset(&h, 0, sizeof h);
    sched__counts_init(&h.c);
    fsm_watch_running(t->f, heard_cb, &h);

    uint64_t w = treg(t, T0, "default", 10);
    uint64_t a = tsubmit(t, T0, "default", 0, "k", 2);
    uint64_t b = tsubmit(t, T0, "default", 0, "k", 2);
    assert_int_equal(h.plus + h.minus, 0);

    assert_int_equal(tassign(t, T0, a, w), FSM_ITEM_OK);
    assert_int_equal(h.plus, 1);
    assert_int_equal(sched__counts_worker(&h.c, w), 1);
    assert_int_equal(sched__counts_key(&h.c, tstr("k")), 1);
    /* A stale ASSIGN (already running) reports nothing. */
    assert_int_equal(tassign(t, T0, a, w), FSM_ITEM_SKIPPED);
    assert_int_equal(h.plus, 1);

    /* One entry: a committed ASSIGN of b, then a rejected WORKER_DOWN of
     * an unknown worker that names a (its item would release a), then a
     * rejected CANCEL of an unknown job. Only b's +1 is heard. */
    struct fsm_item ia = {.job_id = b, .worker_id = w};
    struct fsm_item rel = {.job_id = a, .token = 0};
    struct fsm_cmd cmds[3];
    memset(cmds, 0, sizeof cmds);
    cmds[0].type = FSM_CMD_ASSIGN;
    cmds[0].items = &ia;
    cmds[0].n_items = 1;
    cmds[1].type = FSM_CMD_WORKER_DOWN;
    cmds[1].id = w + 12345;
    cmds[1].items = &rel;
    cmds[1].n_items = 1;
    cmds[2].type = FSM_CMD_CANCEL;
    cmds[2].id = 12345;
    unsigned n;
    const struct fsm_result *r = tfsm_apply(t, T0 + 1, cmds, 3, &n);
    assert_int_equal(n, 3);
    assert_int_equal(r[0].code, 0);
    assert_int_not_equal(r[1].code, 0);
    assert_int_not_equal(r[2].code, 0);
    assert_int_equal(h.plus, 2);
    assert_int_equal(h.minus, 0);
    assert_int_equal(tfsm_status(t, a), FSM_RUNNING);
    assert_int_equal(sched__counts_key(&h.c, tstr("k")), 2);

    /* COMPLETE: -1. */
    assert_int_equal(tcomplete(t, T0 + 2, a), FSM_ITEM_OK);
    assert_int_equal(h.minus, 1);
    assert_int_equal(sched__counts_key(&h.c, tstr("k")), 1);

    /* WORKER_DOWN with b's lease: -1, and counts back to empty. */
    struct fsm_reader *rd;
    struct fsm_job jb;
    tget(t, b, &jb, &rd);
    struct fsm_item down = {.job_id = b, .token = jb.lease_token};
    fsm_read_end(rd);
    struct fsm_cmd dc;
    memset(&dc, 0, sizeof dc);
    dc.type = FSM_CMD_WORKER_DOWN;
    dc.id = w;
    dc.items = &down;
    dc.n_items = 1;
    r = tcmd(t, T0 + 3, &dc);
    assert_int_equal(r->code, 0);
    assert_int_equal(r->existed[0], FSM_ITEM_OK);
    assert_int_equal(h.minus, 2);
    assert_int_equal(h.c.used, 0);

    /* A CANCEL of a running job: -1. */
    uint64_t w2 = treg(t, T0 + 4, "default", 10);
    uint64_t c0 = tsubmit(t, T0 + 4, "default", 0, "k", 2);
    assert_int_equal(tassign(t, T0 + 5, c0, w2), FSM_ITEM_OK);
    assert_int_equal(h.plus, 3);
    struct fsm_cmd cc;
    memset(&cc, 0, sizeof cc);
    cc.type = FSM_CMD_CANCEL;
    cc.id = c0;
    assert_int_equal(tcmd(t, T0 + 6, &cc)->code, 0);
    assert_int_equal(h.minus, 3);
    assert_int_equal(h.c.used, 0);

    /* The counts kept by the feed equal a rebuild's. */
    uint64_t c1 = tsubmit(t, T0 + 4, "default", 0, "k", 2);
    assert_int_equal(tassign(t, T0 + 5, c1, w2), FSM_ITEM_OK);
    struct counts rb;
    sched__counts_init(&rb);
    assert_int_equal(sched__counts_rebuild(&rb, t->f), 0);
    assert_int_equal(sched__counts_worker(&rb, w2),
                     sched__counts_worker(&h.c, w2));
    assert_int_equal(sched__counts_key(&rb, tstr("k")),
                     sched__counts_key(&h.c, tstr("k")));
    assert_int_equal(rb.used, h.c.used);
    sched__counts_free(&rb);

    fsm_watch_running(t->f, NULL, NULL);
    sched__counts_free(&h.c);
}

/* A FIRE with REPLACE cancels the running previous run: -1 reported. */
static void test_counts_watch_replace(void **state)
{
    struct tfsm *t = *state;
    struct heard h;
    memset(&h, 0, sizeof h);
    sched__counts_init(&h.c);
    fsm_watch_running(t->f, heard_cb, &h);
    uint64_t w = treg(t, T0, "default", 10);
    uint64_t s =
        tschedule(t, T0, "{\"schedule\":\"@every 1s\",\"overlap\":\"replace\"}",
                  T0 + 1000);
    struct fsm_item it = {.job_id = s,
                          .nominal = T0 + 1000,
                          .next_at = T0 + 2000,
                          .action = FSM_FIRE_RUN};
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_FIRE;
    c.items = &it;
    c.n_items = 1;
    assert_int_equal(tcmd(t, T0 + 1000, &c)->code, 0);
    struct fsm_reader *rd;
    struct fsm_job js;
    tget(t, s, &js, &rd);
    uint64_t run = js.last_run;
    fsm_read_end(rd);
    assert_int_equal(tassign(t, T0 + 1000, run, w), FSM_ITEM_OK);
    assert_int_equal(h.plus, 1);
    it.nominal = T0 + 2000;
    it.next_at = T0 + 3000;
    it.action = FSM_FIRE_REPLACE;
    assert_int_equal(tcmd(t, T0 + 2000, &c)->code, 0);
    assert_int_equal(tfsm_status(t, run), FSM_CANCELLED);
    assert_int_equal(h.minus, 1);
    assert_int_equal(sched__counts_worker(&h.c, w), 0);
    fsm_watch_running(t->f, NULL, NULL);
    sched__counts_free(&h.c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_add_remove),
        cmocka_unit_test(test_counts_many_keys),
        cmocka_unit_test_setup_teardown(test_counts_rebuild, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_watch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_watch_replace, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
