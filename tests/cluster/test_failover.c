/* Leader failover: committed jobs survive, pending applies on the dead
 * leader end with RAFT_LEADERSHIPLOST or commit (never silently), and an
 * idempotent re-submit on the new leader finds the original job. */

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "tests/lib/cluster_fixture.h"

/* Submit @n_entries entries of @per_entry jobs each on server @i, with specs
 * {"phase":"@phase","n":k}. Returns the last request. */
static struct cluster_req *submit_phase(struct cluster_fixture *f,
                                        unsigned i,
                                        const char *phase,
                                        unsigned n_entries,
                                        unsigned per_entry,
                                        bool expect_ok)
{
    struct cluster_req *req = NULL;
    static unsigned seq;

    for (unsigned e = 0; e < n_entries; e++) {
        struct cluster_job_in jobs[8];
        char specs[8][64];

        assert_true(per_entry <= 8);
        memset(jobs, 0, sizeof jobs);
        for (unsigned j = 0; j < per_entry; j++) {
            snprintf(specs[j], sizeof specs[j], "{\"phase\":\"%s\",\"n\":%u}",
                     phase, seq++);
            jobs[j].spec = specs[j];
        }
        req = cluster_fixture_submit(f, i, jobs, &per_entry, 1);
        assert_non_null(req);
        if (expect_ok) {
            assert_int_equal(req->rv, 0);
        }
    }
    return req;
}

/* Jobs of requests submitted on @server whose outcome is unknown (callback
 * with a non-zero status, or none yet). */
static long unknown_jobs(struct cluster_fixture *f, unsigned server)
{
    long n = 0;
    for (struct cluster_req *req = f->reqs; req != NULL; req = req->next) {
        if (req->server == server && req->rv == 0 &&
            (!req->done || req->status != 0)) {
            n += req->n_jobs;
        }
    }
    return n;
}

static void test_failover_leader_killed(void **state)
{
    struct cluster_fixture *f = *state;
    struct cluster_req *pending[3];
    struct cluster_req *req;
    unsigned leader;
    unsigned follower;
    long acked;
    long unknown;

    CLUSTER_ELECT(f, 0);
    req = submit_phase(f, 0, "before", 10, 2, true);
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 5000);

    /* Proposed on the leader, then it dies before replicating them. */
    for (unsigned p = 0; p < 3; p++) {
        pending[p] = submit_phase(f, 0, "pending", 1, 3, true);
    }
    CLUSTER_KILL(f, 0);
    CLUSTER_STEP_UNTIL_HAS_NO_LEADER(f, 5000);
    CLUSTER_STEP_UNTIL_HAS_LEADER(f, 10000);
    leader = CLUSTER_LEADER(f);
    assert_true(leader == 1 || leader == 2);

    req = submit_phase(f, leader, "after", 10, 2, true);
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 5000);
    assert_int_equal(cluster_fixture_check_acked(f, 1u << 1 | 1u << 2), 40);

    /* Kill and revive a follower of the new leader too. */
    follower = leader == 1 ? 2 : 1;
    CLUSTER_KILL(f, follower);
    req = submit_phase(f, leader, "one-down", 1, 1, false);
    assert_int_equal(req->rv, 0);
    /* The dead leader comes back first: it must give way. */
    CLUSTER_REVIVE(f, 0);
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 10000);
    CLUSTER_REVIVE(f, follower);
    req = submit_phase(f, leader, "all-back", 3, 2, true);
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 10000);
    CLUSTER_STEP_UNTIL_ELAPSED(f, 500);

    /* Every pending apply on the old leader was answered, and only with
     * success or "leadership lost". */
    for (unsigned p = 0; p < 3; p++) {
        assert_true(pending[p]->done);
        if (pending[p]->status != 0) {
            assert_int_equal(pending[p]->status, RAFT_LEADERSHIPLOST);
        }
    }
    assert_true(cluster_fixture_check_callbacks(f, true));
    acked = cluster_fixture_check_acked(f, 0);
    assert_true(acked >= 47);
    unknown = unknown_jobs(f, 0);
    assert_true(cluster_fixture_check_converged(f, 0));
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        long total = cluster_fixture_count_jobs(f, i);
        long ghosts = cluster_fixture_list_count(f, i, "\"pending\"", NULL);

        /* No acknowledged job is missing (checked above); the only other
         * jobs allowed are those whose outcome was reported unknown. */
        assert_true(total >= acked);
        assert_true(total <= acked + unknown);
        assert_true(ghosts <= unknown);
        assert_int_equal(cluster_fixture_list_count(f, i, NULL, NULL), total);
    }
}

static struct cluster_req *submit_idem(struct cluster_fixture *f,
                                       unsigned i,
                                       const char *spec,
                                       const char *key,
                                       uint64_t hash)
{
    struct cluster_job_in job = {.spec = spec, .idem_key = key, .hash = hash};
    return CLUSTER_SUBMIT_JOBS(f, i, &job, NULL, 1);
}

/* Case A: the job was acknowledged, then the leader died; case B: the job
 * reached both followers but the leader died before it learned it
 * committed (the client saw no answer). Re-submitting either on the new
 * leader returns the original id, and each key names exactly one job. */
static void test_failover_idempotent_resubmit(void **state)
{
    struct cluster_fixture *f = *state;
    struct cluster_req *a1;
    struct cluster_req *b1;
    struct cluster_req *a2;
    struct cluster_req *b2;
    struct cluster_req *c;
    uint64_t id_a;
    unsigned leader;

    CLUSTER_ELECT(f, 0);
    a1 = submit_idem(f, 0, "{\"k\":\"A\"}", "key-A", 0xA);
    CLUSTER_STEP_UNTIL_APPLIED(f, a1->index, 5000);
    assert_true(a1->done);
    assert_int_equal(a1->status, 0);
    assert_int_equal(a1->results[0].code, 0);
    assert_int_equal(a1->results[0].n_ids, 1);
    assert_non_null(a1->results[0].existed);
    assert_int_equal(a1->results[0].existed[0], 0);
    id_a = a1->results[0].ids[0];

    b1 = submit_idem(f, 0, "{\"k\":\"B\"}", "key-B", 0xB);
    CLUSTER_STEP_UNTIL_STORED(f, 1, b1->index, 1000);
    CLUSTER_STEP_UNTIL_STORED(f, 2, b1->index, 1000);
    assert_false(b1->done); /* The leader has not heard back yet. */
    CLUSTER_KILL(f, 0);
    CLUSTER_STEP_UNTIL_HAS_NO_LEADER(f, 5000);
    CLUSTER_STEP_UNTIL_HAS_LEADER(f, 10000);
    leader = CLUSTER_LEADER(f);
    assert_true(leader == 1 || leader == 2);

    a2 = submit_idem(f, leader, "{\"k\":\"A\"}", "key-A", 0xA);
    b2 = submit_idem(f, leader, "{\"k\":\"B\"}", "key-B", 0xB);
    /* Same key, another request: a conflict, not a new job. */
    c = submit_idem(f, leader, "{\"k\":\"B2\"}", "key-B", 0xBAD);
    CLUSTER_STEP_UNTIL_APPLIED(f, c->index, 5000);

    assert_true(a2->done && b2->done && c->done);
    assert_int_equal(a2->status, 0);
    assert_int_equal(a2->results[0].code, 0);
    assert_int_equal(a2->results[0].n_ids, 1);
    assert_int_equal(a2->results[0].ids[0], id_a);
    assert_non_null(a2->results[0].existed);
    assert_int_equal(a2->results[0].existed[0], 1);

    assert_int_equal(b2->status, 0);
    assert_int_equal(b2->results[0].code, 0);
    assert_int_equal(b2->results[0].n_ids, 1);
    /* The original entry committed under the new leader: its id comes from
     * the original index, whoever applied it. */
    assert_int_equal(b2->results[0].ids[0] >> FSM_ID_SHIFT, b1->index);
    assert_non_null(b2->results[0].existed);
    assert_int_equal(b2->results[0].existed[0], 1);

    assert_int_equal(c->status, 0);
    assert_int_equal(c->results[0].code, ERR_CONFLICT);

    CLUSTER_REVIVE(f, 0);
    CLUSTER_STEP_UNTIL_APPLIED(f, c->index, 10000);
    CLUSTER_STEP_UNTIL_ELAPSED(f, 500);
    assert_true(b1->done);
    if (b1->status != 0) {
        assert_int_equal(b1->status, RAFT_LEADERSHIPLOST);
    } else {
        assert_int_equal(b1->results[0].ids[0], b2->results[0].ids[0]);
    }
    assert_true(cluster_fixture_check_callbacks(f, true));
    assert_true(cluster_fixture_check_converged(f, 0));
    assert_true(cluster_fixture_check_acked(f, 0) >= 3);
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        assert_int_equal(cluster_fixture_list_count(f, i, NULL, "key-A"), 1);
        assert_int_equal(cluster_fixture_list_count(f, i, NULL, "key-B"), 1);
        assert_int_equal(cluster_fixture_list_count(f, i, "B2", NULL), 0);
        assert_int_equal(cluster_fixture_count_jobs(f, i), 2);
        assert_true(CLUSTER_JOB_EXISTS(f, i, id_a));
        assert_true(CLUSTER_JOB_EXISTS(f, i, b2->results[0].ids[0]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failover_leader_killed,
                                        cluster_fixture_setup3,
                                        cluster_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_failover_idempotent_resubmit,
                                        cluster_fixture_setup3,
                                        cluster_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
