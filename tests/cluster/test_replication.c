/* Replication on a healthy 3-server cluster: batches of odd sizes converge,
 * and every entry handed to raft is padded to 8 bytes whatever the sizes of
 * the commands it holds. */

#include <stdio.h>
#include <string.h>

#include "cluster/raft_fsm.h"
#include "tests/lib/cluster_fixture.h"

/* 100 jobs in 10 entries of odd sizes. Even entries hold one SUBMIT command
 * per job (the group-commit shape), odd entries one command with all their
 * jobs. Some entries are proposed back to back, others after a step, so
 * AppendEntries carry one or several entries. */
static void test_replication_odd_batches_converge(void **state)
{
    static const unsigned sizes[] = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19};
    struct cluster_fixture *f = *state;
    struct cluster_req *reqs[10];
    struct cluster_job_in jobs[19];
    char specs[19][48];
    uint64_t ids[100];
    unsigned n_ids = 0;
    unsigned seq = 0;
    raft_index last = 0;

    CLUSTER_ELECT(f, 0);
    for (unsigned b = 0; b < 10; b++) {
        unsigned k = sizes[b];

        memset(jobs, 0, sizeof jobs);
        for (unsigned j = 0; j < k; j++) {
            snprintf(specs[j], sizeof specs[j], "{\"seq\":%u,\"batch\":%u}",
                     seq++, b);
            jobs[j].spec = specs[j];
        }
        if (b % 2 == 0) {
            reqs[b] = CLUSTER_SUBMIT_JOBS(f, 0, jobs, NULL, k);
        } else {
            reqs[b] = CLUSTER_SUBMIT_JOBS(f, 0, jobs, &k, 1);
        }
        assert_true(reqs[b]->index > last);
        last = reqs[b]->index;
        if (b % 3 == 2) {
            CLUSTER_STEP_UNTIL_ELAPSED(f, 20);
        }
    }
    CLUSTER_STEP_UNTIL_APPLIED(f, last, 5000);

    for (unsigned b = 0; b < 10; b++) {
        struct cluster_req *req = reqs[b];

        assert_true(req->done);
        assert_int_equal(req->status, 0);
        assert_int_equal(req->n_results, req->n_cmds);
        for (unsigned c = 0; c < req->n_cmds; c++) {
            assert_int_equal(req->results[c].code, 0);
            assert_int_equal(req->results[c].n_ids, req->jobs_in_cmd[c]);
            for (unsigned k = 0; k < req->results[c].n_ids; k++) {
                uint64_t id = req->results[c].ids[k];
                /* fsm.h: ids derive from the index of their entry. */
                assert_int_equal(id >> FSM_ID_SHIFT, req->index);
                for (unsigned m = 0; m < n_ids; m++) {
                    assert_true(ids[m] != id);
                }
                ids[n_ids++] = id;
            }
        }
    }
    assert_int_equal(n_ids, 100);
    assert_true(cluster_fixture_check_callbacks(f, true));
    assert_int_equal(cluster_fixture_check_acked(f, 0), 100);
    assert_true(cluster_fixture_check_converged(f, 0));
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        assert_int_equal(cluster_fixture_count_jobs(f, i), 100);
        assert_int_equal(cluster_fixture_list_count(f, i, NULL, NULL), 100);
        for (unsigned m = 0; m < n_ids; m++) {
            assert_true(CLUSTER_JOB_EXISTS(f, i, ids[m]));
        }
        /* The glue stores the raft index with the effect. */
        assert_int_equal(fsm_applied_index(CLUSTER_FSM(f, i)), last);
    }
}

/* Commands whose encoded sizes take every residue mod 8 (payloads of 1, 2,
 * 3, ... 63 bytes): every buffer given to raft_apply and every entry applied on
 * every server is a multiple of 8 bytes, and the payloads round-trip. A
 * follower is down while they are proposed, so it catches up with several
 * entries per AppendEntries. (The fixture's in-memory transport copies
 * entries one by one and cannot reproduce raft 0.15's TCP decoding bug; the
 * multi-process tests cover that.) */
static void test_replication_odd_sizes_padded(void **state)
{
    struct cluster_fixture *f = *state;
    struct cluster_job_in jobs[4];
    char specs[4][128];
    unsigned payload = 1;
    unsigned total = 0;
    raft_index last = 0;

    CLUSTER_ELECT(f, 0);
    CLUSTER_KILL(f, 2);
    for (unsigned e = 0; e < 24; e++) {
        unsigned n_cmds = e % 4 + 1;
        struct cluster_req *req;

        memset(jobs, 0, sizeof jobs);
        for (unsigned c = 0; c < n_cmds; c++) {
            char pad[80];

            memset(pad, 'a' + (char)(c + e) % 26, payload);
            pad[payload] = '\0';
            snprintf(specs[c], sizeof specs[c], "{\"p\":\"%s\"}", pad);
            jobs[c].spec = specs[c];
            payload = payload + 1 > 63 ? 1 : payload + 1;
        }
        req = CLUSTER_SUBMIT_JOBS(f, 0, jobs, NULL, n_cmds);
        assert_int_equal(req->buf_len % 8, 0);
        last = req->index;
        total += n_cmds;
        if (e % 5 == 4) {
            CLUSTER_STEP_UNTIL_ELAPSED(f, 30);
        }
    }
    /* The test is only worth something if the commands' sizes took every
     * residue mod 8 (odd ones included). */
    assert_int_equal(f->cmd_len_residues, 0xff);
    assert_int_equal(f->unaligned_submits, 0);

    CLUSTER_STEP_UNTIL_APPLIED(f, last, 5000);
    assert_int_equal(CLUSTER_LAST_APPLIED(f, 2), 1);
    CLUSTER_REVIVE(f, 2);
    CLUSTER_STEP_UNTIL_APPLIED(f, last, 10000);

    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        assert_true(f->nodes[i].entries_applied >= 24);
        assert_int_equal(f->nodes[i].unaligned_entries, 0);
    }
    assert_true(cluster_fixture_check_callbacks(f, true));
    assert_int_equal(cluster_fixture_check_acked(f, 0), (long)total);
    assert_true(cluster_fixture_check_converged(f, 0));
}

/* An entry that is not a batch (37 bytes of garbage) is rejected identically
 * on every replica without stopping it: the next entry applies everywhere. */
static void test_replication_bad_batch_rejected_everywhere(void **state)
{
    struct cluster_fixture *f = *state;
    struct cluster_job_in job = {.spec = "{\"after\":true}"};
    struct cluster_req *bad;
    struct cluster_req *good;
    char garbage[37];

    memset(garbage, 0x5a, sizeof garbage);
    CLUSTER_ELECT(f, 0);
    bad = CLUSTER_APPLY(f, 0, garbage, sizeof garbage);
    good = CLUSTER_SUBMIT_JOBS(f, 0, &job, NULL, 1);
    CLUSTER_STEP_UNTIL_APPLIED(f, good->index, 5000);

    assert_true(bad->done);
    assert_int_equal(bad->status, 0);
    assert_true(good->done);
    assert_int_equal(good->status, 0);
    assert_int_equal(good->results[0].code, 0);
    assert_int_equal(cluster_fixture_check_acked(f, 0), 1);
    assert_true(cluster_fixture_check_converged(f, 0));
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        assert_int_equal(cluster_fixture_count_jobs(f, i), 1);
        assert_int_equal(fsm_applied_index(CLUSTER_FSM(f, i)), good->index);
    }
}

/* A follower applies the last entry raft hands it after answering the
 * leader (cluster/raft_fsm.h): until then the entry is held, the fsm's
 * state and applied index are those of the entry before, and a read of
 * the fsm (CLUSTER_FSM, rotad: the loop's check phase) applies it first.
 * The leader never holds. */
static void test_replication_follower_applies_after_answering(void **state)
{
    struct cluster_fixture *f = *state;
    struct cluster_job_in job = {.spec = "{\"held\":true}"};
    struct cluster_raft_fsm_stats st;
    struct cluster_req *req;
    raft_index index;

    CLUSTER_ELECT(f, 0);
    req = CLUSTER_SUBMIT_JOBS(f, 0, &job, NULL, 1);
    index = req->index;
    CLUSTER_STEP_UNTIL_APPLIED_ON(f, 0, index, 5000);
    assert_true(req->done);
    assert_int_equal(req->results[0].code, 0);
    assert_int_equal(cluster_raft_fsm_held(&f->nodes[0].rf), 0);

    /* Follower 1 learns the commit from the leader's next message; raw
     * steps, which apply nothing held. */
    for (unsigned n = 0; n < 100000 && CLUSTER_LAST_APPLIED(f, 1) < index;
         n++) {
        CLUSTER_STEP(f);
    }
    assert_int_equal(CLUSTER_LAST_APPLIED(f, 1), index);
    assert_int_equal(cluster_raft_fsm_held(&f->nodes[1].rf), index);
    assert_true(fsm_applied_index(f->nodes[1].fsm) < index);
    /* What X-Rota-Index says meanwhile: not the held entry. */
    assert_int_equal(cluster_raft_fsm_applied(&f->nodes[1].rf), index - 1);

    /* Read: applied first, then found. */
    assert_true(CLUSTER_JOB_EXISTS(f, 1, req->results[0].ids[0]));
    assert_int_equal(cluster_raft_fsm_held(&f->nodes[1].rf), 0);
    assert_int_equal(fsm_applied_index(f->nodes[1].fsm), index);
    assert_int_equal(cluster_raft_fsm_applied(&f->nodes[1].rf), index);

    /* More entries: every follower apply was held, none of the leader's. */
    for (unsigned e = 0; e < 5; e++) {
        req = CLUSTER_SUBMIT_JOBS(f, 0, &job, NULL, 1);
        CLUSTER_STEP_UNTIL_ELAPSED(f, 10);
    }
    CLUSTER_STEP_UNTIL_APPLIED(f, req->index, 5000);
    assert_true(cluster_fixture_check_converged(f, 0));
    cluster_fixture_stats(f, 0, &st);
    assert_int_equal(st.applies_held, 0);
    for (unsigned i = 1; i < CLUSTER_N(f); i++) {
        cluster_fixture_stats(f, i, &st);
        assert_true(st.applies_held >= 6);
        assert_int_equal(st.applies_held, st.entries_applied);
        assert_int_equal(cluster_fixture_count_jobs(f, i), 6);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replication_odd_batches_converge,
                                        cluster_fixture_setup3,
                                        cluster_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_replication_odd_sizes_padded,
                                        cluster_fixture_setup3,
                                        cluster_fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_replication_bad_batch_rejected_everywhere,
            cluster_fixture_setup3, cluster_fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_replication_follower_applies_after_answering,
            cluster_fixture_setup3, cluster_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
