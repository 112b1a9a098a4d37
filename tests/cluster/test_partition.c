/* Network partition: the leader is cut off from both followers. The
 * majority elects a new leader; what the old leader accepted alone is never
 * acknowledged, and after the partition heals it converges to the new
 * leader's state without those entries. */

#include <stdio.h>
#include <string.h>

#include "tests/lib/cluster_fixture.h"

static struct cluster_req *submit_tagged(struct cluster_fixture *f,
                                         unsigned i,
                                         const char *tag,
                                         unsigned n)
{
    struct cluster_job_in jobs[4];
    char specs[4][64];
    static unsigned seq;

    assert_true(n <= 4);
    memset(jobs, 0, sizeof jobs);
    for (unsigned j = 0; j < n; j++) {
        snprintf(specs[j], sizeof specs[j], "{\"tag\":\"%s\",\"n\":%u}", tag,
                 seq++);
        jobs[j].spec = specs[j];
    }
    return cluster_fixture_submit(f, i, jobs, &n, 1);
}

static void test_partition_old_leader_converges(void **state)
{
    struct cluster_fixture *f = *state;
    struct cluster_req *minority[3];
    struct cluster_req *late;
    struct cluster_req *req = NULL;
    unsigned leader;
    long acked;

    CLUSTER_ELECT(f, 0);
    for (unsigned e = 0; e < 5; e++) {
        req = submit_tagged(f, 0, "before", 2);
        assert_int_equal(req->rv, 0);
    }
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 5000);

    CLUSTER_ISOLATE(f, 0);
    /* Still leader as far as it knows: raft takes the entries. */
    for (unsigned e = 0; e < 3; e++) {
        minority[e] = submit_tagged(f, 0, "minority", 3);
        assert_int_equal(minority[e]->rv, 0);
    }
    CLUSTER_STEP_UNTIL_NEW_LEADER(f, 0, 10000);
    leader = CLUSTER_LEADER(f);
    assert_true(leader == 1 || leader == 2);

    /* The old leader steps down once it misses a quorum; its pending
     * applies are then failed, never acknowledged. */
    CLUSTER_STEP_UNTIL_STEPPED_DOWN(f, 0, 5000);
    assert_true(CLUSTER_STATE(f, 0) != RAFT_LEADER);
    for (unsigned e = 0; e < 3; e++) {
        assert_true(minority[e]->done);
        assert_int_equal(minority[e]->status, RAFT_LEADERSHIPLOST);
    }
    late = submit_tagged(f, 0, "minority", 1);
    assert_int_equal(late->rv, RAFT_NOTLEADER);

    for (unsigned e = 0; e < 5; e++) {
        req = submit_tagged(f, leader, "majority", 2);
        assert_int_equal(req->rv, 0);
    }
    CLUSTER_STEP_UNTIL_APPLIED_ON(f, 1, req->index, 5000);
    CLUSTER_STEP_UNTIL_APPLIED_ON(f, 2, req->index, 5000);
    assert_int_equal(cluster_fixture_list_count(f, 0, "minority", NULL), 0);
    assert_true(CLUSTER_LAST_APPLIED(f, 0) < req->index);

    /* Heal. The isolated node kept campaigning, so its term is higher and
     * it may force an election it cannot win (its log is behind). */
    CLUSTER_REJOIN(f, 0);
    CLUSTER_STEP_UNTIL_HAS_LEADER(f, 10000);
    assert_true(CLUSTER_LEADER(f) != 0);
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 10000);
    CLUSTER_STEP_UNTIL_ELAPSED(f, 500);

    assert_true(cluster_fixture_check_callbacks(f, true));
    acked = cluster_fixture_check_acked(f, 0);
    assert_int_equal(acked, 20);
    assert_true(cluster_fixture_check_converged(f, 0));
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        assert_int_equal(cluster_fixture_count_jobs(f, i), 20);
        assert_int_equal(cluster_fixture_list_count(f, i, "minority", NULL),
                         0);
        assert_int_equal(cluster_fixture_list_count(f, i, "majority", NULL),
                         10);
    }
    assert_int_equal(CLUSTER_DIGEST(f, 0), CLUSTER_DIGEST(f, leader));
}

/* One-way loss: the leader's messages to one follower are dropped. The
 * other follower is enough for a quorum; when the link comes back the
 * lagging follower catches up. */
static void test_partition_one_way_saturation(void **state)
{
    struct cluster_fixture *f = *state;
    struct cluster_req *req = NULL;

    CLUSTER_ELECT(f, 0);
    CLUSTER_SATURATE(f, 0, 2);
    for (unsigned e = 0; e < 6; e++) {
        req = submit_tagged(f, 0, "oneway", 3);
        assert_int_equal(req->rv, 0);
    }
    CLUSTER_STEP_UNTIL_APPLIED_ON(f, 1, req->index, 5000);
    assert_true(req->done);
    assert_int_equal(req->status, 0);
    CLUSTER_DESATURATE(f, 0, 2);
    CLUSTER_STEP_UNTIL_HAS_LEADER(f, 10000);
    /* Server 2's election timer may have fired meanwhile: whoever leads
     * now, every acknowledged job must be everywhere. */
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 10000);
    assert_true(cluster_fixture_check_callbacks(f, false));
    assert_int_equal(cluster_fixture_check_acked(f, 0), 18);
    assert_true(cluster_fixture_check_converged(f, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_partition_old_leader_converges,
                                        cluster_fixture_setup3,
                                        cluster_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_partition_one_way_saturation,
                                        cluster_fixture_setup3,
                                        cluster_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
