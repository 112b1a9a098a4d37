/* Leases across a leader change (raft_fixture, real FSM): assignments,
 * tokens and running state survive a new leader unchanged; the new leader
 * accepts the current token and refuses stale ones; tokens keep growing. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tests/lib/cluster_fixture.h"

/* Encode @cmd as a one-command sealed batch and apply it on server @i. */
static struct cluster_req *apply_cmd(struct cluster_fixture *f,
                                     unsigned i,
                                     const struct fsm_cmd *cmd)
{
    struct fsm_batch b;
    struct cluster_req *req;
    void *buf;
    size_t len;

    assert_int_equal(fsm_cmd_encode(cmd, &buf, &len), 0);
    fsm_batch_init(&b);
    assert_int_equal(fsm_batch_append(&b, buf, len), 0);
    fsm_batch_seal(&b, CLUSTER_EPOCH_MS);
    req = cluster_fixture_apply_cmds(f, i, b.buf, b.len, 1);
    fsm_batch_close(&b);
    free(buf);
    return cluster_fixture_wait(f, req, 5000);
}

static struct fsm_job get_job(struct cluster_fixture *f,
                              unsigned i,
                              uint64_t id)
{
    struct fsm_job j;
    assert_int_equal(cluster_fixture_get_job(f, i, id, &j), 0);
    return j; /* Only scalar fields are used. */
}

struct setup
{
    uint64_t worker;
    uint64_t jobs[10];
    uint64_t token;
};

static void register_and_assign(struct cluster_fixture *f,
                                unsigned leader,
                                struct setup *s)
{
    struct fsm_cmd c;
    struct fsm_item items[10];
    struct cluster_job_in in[10];
    unsigned per = 10;
    struct cluster_req *req;

    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_WORKER_REG;
    c.worker.name.p = "w1";
    c.worker.name.len = 2;
    c.worker.queues.p = "default";
    c.worker.queues.len = 7;
    c.worker.concurrency = 16;
    req = apply_cmd(f, leader, &c);
    s->worker = req->results[0].ids[0];

    memset(in, 0, sizeof in);
    req = cluster_fixture_submit(f, leader, in, &per, 1);
    assert_non_null(req);
    assert_true(cluster_fixture_step_until_applied(f, req->index, 5000));
    memcpy(s->jobs, req->results[0].ids, sizeof s->jobs);

    memset(items, 0, sizeof items);
    for (int k = 0; k < 10; k++) {
        items[k].job_id = s->jobs[k];
        items[k].worker_id = s->worker;
    }
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_ASSIGN;
    c.n_items = 10;
    c.items = items;
    req = apply_cmd(f, leader, &c);
    for (int k = 0; k < 10; k++) {
        assert_int_equal(req->results[0].existed[k], FSM_ITEM_OK);
    }
    s->token = req->index;
}

static void expect_leases(struct cluster_fixture *f,
                          unsigned i,
                          const struct setup *s,
                          uint8_t status)
{
    for (int k = 0; k < 10; k++) {
        struct fsm_job j = get_job(f, i, s->jobs[k]);
        assert_int_equal(j.status, status);
        assert_int_equal(j.lease_token, s->token);
        assert_int_equal(j.attempts, 1);
        if (status == FSM_RUNNING) {
            assert_int_equal(j.worker_id, s->worker);
        }
    }
}

static int complete(struct cluster_fixture *f,
                    unsigned i,
                    uint64_t job,
                    uint64_t token,
                    uint8_t ok)
{
    struct fsm_item it;
    struct fsm_cmd c;
    memset(&it, 0, sizeof it);
    it.job_id = job;
    it.token = token;
    it.ok = ok;
    it.retryable = 1;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_COMPLETE;
    c.n_items = 1;
    c.items = &it;
    return apply_cmd(f, i, &c)->results[0].existed[0];
}

static unsigned new_leader_after_killing(struct cluster_fixture *f,
                                         unsigned old)
{
    CLUSTER_KILL(f, old);
    CLUSTER_STEP_UNTIL_HAS_NO_LEADER(f, 10000);
    CLUSTER_STEP_UNTIL_HAS_LEADER(f, 10000);
    unsigned leader = CLUSTER_LEADER(f);
    assert_int_not_equal(leader, old);
    return leader;
}

static void test_leases_survive_leader_change(void **state)
{
    struct cluster_fixture *f = *state;
    struct setup s;

    CLUSTER_ELECT(f, 0);
    register_and_assign(f, 0, &s);
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        expect_leases(f, i, &s, FSM_RUNNING);
    }
    unsigned leader = new_leader_after_killing(f, 0);
    /* Nothing released or reassigned by the leader change. */
    for (unsigned i = 1; i < CLUSTER_N(f); i++) {
        expect_leases(f, i, &s, FSM_RUNNING);
    }
    assert_int_equal(complete(f, leader, s.jobs[0], s.token - 1, 1),
                     FSM_ITEM_STALE);
    for (int k = 0; k < 10; k++) {
        assert_int_equal(complete(f, leader, s.jobs[k], s.token, 1),
                         FSM_ITEM_OK);
    }
    assert_int_equal(complete(f, leader, s.jobs[0], s.token, 1),
                     FSM_ITEM_STALE); /* Accepted once only. */
    CLUSTER_REVIVE(f, 0);
    assert_true(cluster_fixture_step_until_applied(
        f, CLUSTER_LAST_INDEX(f, leader), 10000));
    assert_true(cluster_fixture_check_converged(f, 0x7));
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        expect_leases(f, i, &s, FSM_COMPLETED);
    }
}

static void test_leases_tokens_grow_across_leaders(void **state)
{
    struct cluster_fixture *f = *state;
    struct setup s;
    struct fsm_item it;
    struct fsm_cmd c;

    CLUSTER_ELECT(f, 0);
    register_and_assign(f, 0, &s);
    /* A retryable failure due now: the job is pending again. */
    assert_int_equal(complete(f, 0, s.jobs[0], s.token, 0), FSM_ITEM_OK);
    unsigned leader = new_leader_after_killing(f, 0);
    memset(&it, 0, sizeof it);
    it.job_id = s.jobs[0];
    it.worker_id = s.worker;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_ASSIGN;
    c.n_items = 1;
    c.items = &it;
    struct cluster_req *req = apply_cmd(f, leader, &c);
    assert_int_equal(req->results[0].existed[0], FSM_ITEM_OK);
    for (unsigned i = 1; i < CLUSTER_N(f); i++) {
        struct fsm_job j = get_job(f, i, s.jobs[0]);
        assert_int_equal(j.status, FSM_RUNNING);
        assert_int_equal(j.attempts, 2);
        assert_true(j.lease_token > s.token);
        assert_int_equal(j.lease_token, req->index);
    }
    /* The first attempt's token is stale now. */
    assert_int_equal(complete(f, leader, s.jobs[0], s.token, 1),
                     FSM_ITEM_STALE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_leases_survive_leader_change,
                                        cluster_fixture_setup3,
                                        cluster_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_leases_tokens_grow_across_leaders,
                                        cluster_fixture_setup3,
                                        cluster_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
