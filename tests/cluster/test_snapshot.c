/* Snapshots: with a low threshold the leader's log is compacted while a
 * follower is down; when it comes back it can only catch up through
 * InstallSnapshot (fsm_restore through the glue), and it then applies new
 * entries on top of the restored state. */

#include <stdio.h>
#include <string.h>

#include "cluster/raft_fsm.h"
#include "tests/lib/cluster_fixture.h"

static struct cluster_req *submit_entry(struct cluster_fixture *f,
                                        unsigned i,
                                        unsigned e,
                                        unsigned n_jobs,
                                        unsigned *seq)
{
    struct cluster_job_in jobs[4];
    char specs[4][64];

    assert_true(n_jobs <= 4);
    memset(jobs, 0, sizeof jobs);
    for (unsigned j = 0; j < n_jobs; j++) {
        snprintf(specs[j], sizeof specs[j], "{\"entry\":%u,\"seq\":%u}", e,
                 (*seq)++);
        jobs[j].spec = specs[j];
    }
    /* Alternate the two batch shapes. */
    if (e % 2 == 0) {
        return CLUSTER_SUBMIT_JOBS(f, i, jobs, &n_jobs, 1);
    }
    return CLUSTER_SUBMIT_JOBS(f, i, jobs, NULL, n_jobs);
}

static void test_snapshot_install_on_lagging_follower(void **state)
{
    struct cluster_fixture *f = *state;
    struct cluster_raft_fsm_stats st;
    struct cluster_req *req = NULL;
    unsigned seq = 0;
    unsigned long long applied_before;
    unsigned long long restored;

    CLUSTER_SET_SNAPSHOT(f, 8, 4);
    CLUSTER_ELECT(f, 0);
    CLUSTER_KILL(f, 2);

    /* 200 jobs in 60 entries: 20 of 4 jobs, 40 of 3. */
    for (unsigned e = 0; e < 60; e++) {
        req = submit_entry(f, 0, e, e < 20 ? 4 : 3, &seq);
        if (e % 5 == 4) {
            CLUSTER_STEP_UNTIL_ELAPSED(f, 40);
        }
    }
    assert_int_equal(seq, 200);
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 10000);
    CLUSTER_STEP_UNTIL_ELAPSED(f, 200); /* Let the last snapshot land. */

    cluster_fixture_stats(f, 0, &st);
    assert_true(st.snapshots_taken > 0);
    cluster_fixture_stats(f, 1, &st);
    assert_true(st.snapshots_taken > 0);
    cluster_fixture_stats(f, 2, &st);
    assert_int_equal(st.snapshots_restored, 0);
    assert_int_equal(CLUSTER_LAST_APPLIED(f, 2), 1);
    applied_before = f->nodes[2].entries_applied;

    CLUSTER_REVIVE(f, 2);
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 30000);

    cluster_fixture_stats(f, 2, &st);
    assert_true(st.snapshots_restored > 0);
    /* It skipped most entries: they reached it inside the snapshot. */
    assert_true(f->nodes[2].entries_applied - applied_before < 60);
    assert_true(cluster_fixture_check_callbacks(f, true));
    assert_int_equal(cluster_fixture_check_acked(f, 0), 200);
    assert_true(cluster_fixture_check_converged(f, 0));
    assert_int_equal(CLUSTER_DIGEST(f, 2), CLUSTER_DIGEST(f, 0));
    assert_int_equal(cluster_fixture_count_jobs(f, 2), 200);
    assert_int_equal(cluster_fixture_list_count(f, 2, NULL, NULL), 200);

    /* Life after restore: new entries apply on top of the restored state
     * (with a longer trailing log, so they reach it as entries), and the
     * restored node takes snapshots of its own. */
    CLUSTER_SET_SNAPSHOT(f, 8, 64);
    restored = st.snapshots_restored;
    applied_before = f->nodes[2].entries_applied;
    for (unsigned e = 60; e < 80; e++) {
        req = submit_entry(f, 0, e, 2, &seq);
        if (e % 4 == 3) {
            CLUSTER_STEP_UNTIL_ELAPSED(f, 40);
        }
    }
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 10000);
    CLUSTER_STEP_UNTIL_ELAPSED(f, 200);
    cluster_fixture_stats(f, 2, &st);
    assert_int_equal(st.snapshots_restored, restored);
    assert_int_equal(f->nodes[2].entries_applied - applied_before, 20);
    assert_true(st.snapshots_taken > 0);
    assert_int_equal(cluster_fixture_check_acked(f, 0), 240);
    assert_true(cluster_fixture_check_converged(f, 0));
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        assert_int_equal(fsm_applied_index(CLUSTER_FSM(f, i)), req->index);
    }
}

/* The leader itself is replaced by a follower that was restored from a
 * snapshot: the new leader serves everything committed before. */
static void test_snapshot_restored_follower_becomes_leader(void **state)
{
    struct cluster_fixture *f = *state;
    struct cluster_raft_fsm_stats st;
    struct cluster_req *req = NULL;
    unsigned seq = 0;

    CLUSTER_SET_SNAPSHOT(f, 8, 4);
    CLUSTER_ELECT(f, 0);
    CLUSTER_KILL(f, 2);
    for (unsigned e = 0; e < 30; e++) {
        req = submit_entry(f, 0, e, 3, &seq);
        if (e % 6 == 5) {
            CLUSTER_STEP_UNTIL_ELAPSED(f, 40);
        }
    }
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 10000);
    CLUSTER_REVIVE(f, 2);
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 30000);
    cluster_fixture_stats(f, 2, &st);
    assert_true(st.snapshots_restored > 0);

    /* Make server 1 slow to campaign, so the restored server 2 wins the
     * election once the leader dies. */
    raft_fixture_set_randomized_election_timeout(&f->raft, 1, 4000);
    CLUSTER_STEP_UNTIL_ELAPSED(f, 300); /* Heartbeats reset the timers. */
    CLUSTER_KILL(f, 0);
    CLUSTER_STEP_UNTIL_HAS_NO_LEADER(f, 5000);
    CLUSTER_STEP_UNTIL_HAS_LEADER(f, 10000);
    assert_int_equal(CLUSTER_LEADER(f), 2);
    for (unsigned e = 30; e < 40; e++) {
        req = submit_entry(f, CLUSTER_LEADER(f), e, 1, &seq);
    }
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 10000);
    CLUSTER_REVIVE(f, 0);
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 30000);
    assert_int_equal(cluster_fixture_check_acked(f, 0), 100);
    assert_true(cluster_fixture_check_converged(f, 0));
}

/* The same two with the glue's async snapshots (FSM version 3), as rotad
 * runs them. */
static void test_snapshot_install_async(void **state)
{
    test_snapshot_install_on_lagging_follower(state);
}

static void test_snapshot_restored_becomes_leader_async(void **state)
{
    test_snapshot_restored_follower_becomes_leader(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_snapshot_install_on_lagging_follower, cluster_fixture_setup3,
            cluster_fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_snapshot_restored_follower_becomes_leader,
            cluster_fixture_setup3, cluster_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_install_async,
                                        cluster_fixture_setup3_async,
                                        cluster_fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_snapshot_restored_becomes_leader_async,
            cluster_fixture_setup3_async, cluster_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
