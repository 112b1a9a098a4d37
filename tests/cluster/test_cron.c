/* Cron occurrences across leader changes (raft_fixture, real FSM): a FIRE
 * that committed is not repeated by the next leader (its re-decision is
 * stale), and a FIRE lost with an isolated leader is fired once by the new
 * leader: every occurrence has exactly one run, on every replica. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tests/lib/cluster_fixture.h"

#define T1 (CLUSTER_EPOCH_MS + 60000)
#define T2 (CLUSTER_EPOCH_MS + 120000)
#define T3 (CLUSTER_EPOCH_MS + 180000)

static struct cluster_req *wait_req(struct cluster_fixture *f,
                                    struct cluster_req *req)
{
    return cluster_fixture_wait(f, req, 5000);
}

static uint64_t submit_schedule(struct cluster_fixture *f, unsigned i)
{
    return wait_req(f, cluster_fixture_submit_schedule(f, i, T1, NULL))
        ->results[0]
        .ids[0];
}

static struct fsm_cmd fire_cmd(struct fsm_item *it,
                               uint64_t id,
                               int64_t nominal,
                               int64_t next)
{
    struct fsm_cmd c;
    memset(it, 0, sizeof *it);
    it->job_id = id;
    it->nominal = nominal;
    it->next_at = next;
    it->action = FSM_FIRE_RUN;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_FIRE;
    c.items = it;
    c.n_items = 1;
    return c;
}

/* Runs recorded on server @i, and jobs whose parent is @sched. */
static struct cluster_runs runs_on(struct cluster_fixture *f,
                                   unsigned i,
                                   uint64_t sched,
                                   unsigned *children)
{
    struct cluster_runs c;
    assert_int_equal(cluster_fixture_runs(f, i, sched, &c), 0);
    assert_false(c.dup);
    *children = c.children;
    return c;
}

static int64_t run_at(struct cluster_fixture *f, unsigned i, uint64_t id)
{
    struct fsm_job j;
    assert_int_equal(cluster_fixture_get_job(f, i, id, &j), 0);
    return j.run_at;
}

/* The FIRE of T1 commits; the leader dies; the new leader, deciding from a
 * state read before it applied everything, fires T1 again: stale. It then
 * fires T2 once. */
static void test_committed_fire_not_doubled(void **state)
{
    struct cluster_fixture *f = *state;
    CLUSTER_STEP_UNTIL_HAS_LEADER(f, 10000);
    unsigned leader = CLUSTER_LEADER(f), next;
    uint64_t s = submit_schedule(f, leader);
    struct fsm_item it;
    struct fsm_cmd c = fire_cmd(&it, s, T1, T2);
    struct cluster_req *req;
    unsigned children;

    wait_req(f, cluster_fixture_submit_cmds(f, leader, &c, 1));
    CLUSTER_KILL(f, leader);
    CLUSTER_STEP_UNTIL_NEW_LEADER(f, leader, 10000);
    next = CLUSTER_LEADER(f);
    req = wait_req(f, cluster_fixture_submit_cmds(f, next, &c, 1));
    assert_int_equal(req->results[0].existed[0], FSM_ITEM_STALE);
    assert_int_equal(run_at(f, next, s), T2);
    c = fire_cmd(&it, s, T2, T3);
    req = wait_req(f, cluster_fixture_submit_cmds(f, next, &c, 1));
    assert_int_equal(req->results[0].existed[0], FSM_ITEM_OK);
    CLUSTER_REVIVE(f, leader);
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 10000);
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        struct cluster_runs n = runs_on(f, i, s, &children);
        assert_int_equal(n.n, 2);
        assert_int_equal(n.with_job, 2);
        assert_int_equal(n.nominal[0], T2); /* Newest first. */
        assert_int_equal(n.nominal[1], T1);
        assert_int_equal(children, 2);
    }
    assert_true(cluster_fixture_check_converged(f, 0));
}

/* The leader is cut off and fires T1: the entry never commits. The new
 * leader sees run_at = T1 and fires it; after the old leader rejoins, its
 * entry is gone and T1 has exactly one run everywhere (none skipped). */
static void test_lost_fire_not_skipped(void **state)
{
    struct cluster_fixture *f = *state;
    CLUSTER_STEP_UNTIL_HAS_LEADER(f, 10000);
    unsigned leader = CLUSTER_LEADER(f), next;
    uint64_t s = submit_schedule(f, leader);
    struct fsm_item it;
    struct fsm_cmd c = fire_cmd(&it, s, T1, T2);
    struct cluster_req *lost, *req;
    unsigned children;

    CLUSTER_ISOLATE(f, leader);
    lost = cluster_fixture_submit_cmds(f, leader, &c, 1);
    assert_int_equal(lost->rv, 0);
    CLUSTER_STEP_UNTIL_NEW_LEADER(f, leader, 10000);
    next = CLUSTER_LEADER(f);
    assert_int_equal(run_at(f, next, s), T1); /* Not fired yet here. */
    req = cluster_fixture_submit_cmds(f, next, &c, 1);
    assert_int_equal(req->rv, 0);
    CLUSTER_STEP_UNTIL_APPLIED_ON(f, next, req->index, 5000);
    assert_true(req->done);
    assert_int_equal(req->status, 0);
    assert_int_equal(req->results[0].existed[0], FSM_ITEM_OK);
    CLUSTER_REJOIN(f, leader);
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 10000);
    CLUSTER_STEP_UNTIL_ELAPSED(f, 2000);
    assert_true(lost->done);
    assert_int_not_equal(lost->status, 0); /* Its leadership was lost. */
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        struct cluster_runs n = runs_on(f, i, s, &children);
        assert_int_equal(n.n, 1);
        assert_int_equal(n.with_job, 1);
        assert_int_equal(n.nominal[0], T1);
        assert_int_equal(children, 1);
        assert_int_equal(run_at(f, i, s), T2);
    }
    assert_true(cluster_fixture_check_converged(f, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_committed_fire_not_doubled,
                                        cluster_fixture_setup3,
                                        cluster_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_lost_fire_not_skipped,
                                        cluster_fixture_setup3,
                                        cluster_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
