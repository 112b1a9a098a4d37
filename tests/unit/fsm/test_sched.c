/* fsm/apply_sched.c and the DAG rules: cron occurrences (FIRE) fenced by
 * the schedule's run_at, pause/resume, requeue and removal of finished
 * jobs, queue settings and counts, workflows with local dependencies,
 * cancellation of descendants of a failed parent, trigger all_done. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tests/unit/fsm/helpers.h"

#define T0 1700000000000LL

#define setup tfsm_setup
#define teardown tfsm_teardown

static const struct fsm_result *cmd1(struct tfsm *t,
                                     int64_t now,
                                     const struct fsm_cmd *c)
{
    unsigned n;
    const struct fsm_result *r = tfsm_apply(t, now, c, 1, &n);
    assert_int_equal(n, 1);
    return r;
}

/* One item command; the outcome of its single item. */
static int item(struct tfsm *t,
                uint8_t type,
                const struct fsm_item *it,
                int64_t now)
{
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = type;
    c.n_items = 1;
    c.items = it;
    const struct fsm_result *r = cmd1(t, now, &c);
    assert_int_equal(r->code, 0);
    assert_int_equal(r->n_ids, 1);
    return r->existed[0];
}

static struct fsm_job get(struct tfsm *t, uint64_t id, struct fsm_reader **rd)
{
    struct fsm_job j;
    assert_int_equal(fsm_read_begin(t->f, rd), 0);
    assert_int_equal(fsm_get_job(*rd, id, &j), 0);
    return j;
}

static uint64_t schedule(struct tfsm *t, int64_t first)
{
    struct fsm_job j = tjob("report");
    j.flags = FSM_JOB_RECURRING;
    j.run_at = first;
    j.spec = tstr("{\"schedule\":\"@every 1s\"}");
    const struct fsm_result *r = tfsm_submit(t, T0, &j, 1);
    assert_int_equal(r->code, 0);
    return r->ids[0];
}

struct runs
{
    unsigned n;
    struct fsm_run r[16];
    char reason[16][64];
};

static int run_cb(void *data, const struct fsm_run *run)
{
    struct runs *rs = data;
    if (rs->n < 16) {
        rs->r[rs->n] = *run;
        snprintf(rs->reason[rs->n], 64, "%.*s", (int)run->reason.len,
                 run->reason.p);
        rs->n++;
    }
    return 0;
}

static void runs_of(struct tfsm *t, uint64_t id, struct runs *rs)
{
    struct fsm_reader *rd;
    memset(rs, 0, sizeof *rs);
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    fsm_runs(rd, id, 0, run_cb, rs);
    fsm_read_end(rd);
}

static struct fsm_item fire(uint64_t id,
                            int64_t nominal,
                            int64_t next,
                            uint8_t action)
{
    struct fsm_item it;
    memset(&it, 0, sizeof it);
    it.job_id = id;
    it.nominal = nominal;
    it.next_at = next;
    it.action = action;
    return it;
}

/* A recurring job is not promoted; FIRE creates one run per occurrence and
 * moves run_at; firing the same occurrence again (a second leader) is
 * stale and creates nothing. */
static void test_fire_once(void **state)
{
    struct tfsm *t = *state;
    uint64_t s = schedule(t, T0 + 1000);
    struct fsm_reader *rd;
    struct runs rs;
    struct fsm_item it = fire(s, T0 + 1000, T0 + 2000, FSM_FIRE_RUN);

    assert_int_equal(tfsm_status(t, s), FSM_SCHEDULED);
    struct fsm_item p = {.job_id = s};
    assert_int_equal(item(t, FSM_CMD_PROMOTE, &p, T0 + 5000), FSM_ITEM_SKIPPED);
    assert_int_equal(item(t, FSM_CMD_FIRE, &it, T0 + 1001), FSM_ITEM_OK);
    assert_int_equal(item(t, FSM_CMD_FIRE, &it, T0 + 1002), FSM_ITEM_STALE);
    struct fsm_job j = get(t, s, &rd);
    assert_int_equal(j.run_at, T0 + 2000);
    uint64_t run = j.last_run;
    fsm_read_end(rd);
    assert_int_not_equal(run, 0);
    j = get(t, run, &rd);
    assert_int_equal(j.status, FSM_PENDING);
    assert_int_equal(j.parent, s);
    assert_int_equal(j.nominal_at, T0 + 1000);
    assert_true(j.flags & FSM_JOB_RUN);
    assert_int_equal(j.type.len, 6);
    fsm_read_end(rd);
    runs_of(t, s, &rs);
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].job_id, run);
    assert_int_equal(rs.r[0].nominal, T0 + 1000);

    /* A skip is recorded with its reason and moves on. */
    it = fire(s, T0 + 2000, T0 + 3000, FSM_FIRE_SKIP);
    it.error = tstr("overlap: previous run still running");
    it.skipped = 1;
    assert_int_equal(item(t, FSM_CMD_FIRE, &it, T0 + 2001), FSM_ITEM_OK);
    runs_of(t, s, &rs);
    assert_int_equal(rs.n, 2);
    assert_int_equal(rs.r[0].nominal, T0 + 2000); /* Newest first. */
    assert_int_equal(rs.r[0].job_id, 0);
    assert_string_equal(rs.reason[0], "overlap: previous run still running");
    /* A schedule that would not move forward is refused. */
    it = fire(s, T0 + 3000, T0 + 3000, FSM_FIRE_RUN);
    assert_int_equal(item(t, FSM_CMD_FIRE, &it, T0 + 3001), FSM_ITEM_SKIPPED);
}

/* REPLACE cancels the previous unfinished run; NOW runs without moving
 * run_at; pause stops FIRE until resume. */
static void test_replace_now_pause(void **state)
{
    struct tfsm *t = *state;
    uint64_t s = schedule(t, T0 + 1000);
    struct fsm_reader *rd;
    struct fsm_item it = fire(s, T0 + 1000, T0 + 2000, FSM_FIRE_RUN);

    assert_int_equal(item(t, FSM_CMD_FIRE, &it, T0 + 1000), FSM_ITEM_OK);
    struct fsm_job j = get(t, s, &rd);
    uint64_t first = j.last_run;
    fsm_read_end(rd);
    it = fire(s, T0 + 2000, T0 + 3000, FSM_FIRE_REPLACE);
    assert_int_equal(item(t, FSM_CMD_FIRE, &it, T0 + 2000), FSM_ITEM_OK);
    assert_int_equal(tfsm_status(t, first), FSM_CANCELLED);

    it = fire(s, T0 + 2500, 0, FSM_FIRE_NOW);
    assert_int_equal(item(t, FSM_CMD_FIRE, &it, T0 + 2500), FSM_ITEM_OK);
    j = get(t, s, &rd);
    assert_int_equal(j.run_at, T0 + 3000);
    fsm_read_end(rd);

    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_PAUSE;
    c.id = s;
    assert_int_equal(cmd1(t, T0 + 2600, &c)->code, 0);
    it = fire(s, T0 + 3000, T0 + 4000, FSM_FIRE_RUN);
    assert_int_equal(item(t, FSM_CMD_FIRE, &it, T0 + 3000), FSM_ITEM_STALE);
    c.type = FSM_CMD_RESUME;
    c.patch.run_at = T0 + 9000;
    assert_int_equal(cmd1(t, T0 + 5000, &c)->code, 0);
    j = get(t, s, &rd);
    assert_int_equal(j.run_at, T0 + 9000);
    assert_false(j.flags & FSM_JOB_PAUSED);
    fsm_read_end(rd);
    /* Its run_at is not PATCHed: it comes from the schedule. */
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_PATCH;
    c.id = s;
    c.mask = FSM_PATCH_RUN_AT;
    c.patch.run_at = T0 + 1;
    const struct fsm_result *pr = cmd1(t, T0 + 5000, &c);
    assert_int_equal(pr->code, ERR_INVALID);
    assert_string_equal(pr->field, "run_at");
    /* Pausing a job that is not a schedule is a 400 naming the id. */
    struct fsm_job plain = tjob("x");
    uint64_t pid = tfsm_submit(t, T0, &plain, 1)->ids[0];
    c.type = FSM_CMD_PAUSE;
    c.id = pid;
    const struct fsm_result *r = cmd1(t, T0, &c);
    assert_int_equal(r->code, ERR_INVALID);
    assert_string_equal(r->field, "id");
}

static uint64_t reg(struct tfsm *t)
{
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_WORKER_REG;
    c.worker.name = tstr("w");
    c.worker.queues = tstr("default");
    c.worker.concurrency = 100;
    return cmd1(t, T0, &c)->ids[0];
}

/* Lease @id to @w and end it with @ok (no retry). */
static void run_job(struct tfsm *t, uint64_t w, uint64_t id, bool ok)
{
    struct fsm_item it;
    memset(&it, 0, sizeof it);
    it.job_id = id;
    it.worker_id = w;
    assert_int_equal(item(t, FSM_CMD_ASSIGN, &it, T0), FSM_ITEM_OK);
    it.token = t->index;
    it.ok = ok;
    it.retryable = 0;
    it.error = tstr("boom");
    assert_int_equal(item(t, FSM_CMD_COMPLETE, &it, T0), FSM_ITEM_OK);
}

/* Removing a finished run (retention, DELETE) removes its occurrence's
 * record too, and the occurrence still cannot be fired again. */
static void test_run_record_pruned(void **state)
{
    struct tfsm *t = *state;
    uint64_t w = reg(t);
    uint64_t s = schedule(t, T0 + 1000);
    struct fsm_reader *rd;
    struct runs rs;
    struct fsm_item it = fire(s, T0 + 1000, T0 + 2000, FSM_FIRE_RUN);

    assert_int_equal(item(t, FSM_CMD_FIRE, &it, T0 + 1001), FSM_ITEM_OK);
    it = fire(s, T0 + 2000, T0 + 3000, FSM_FIRE_RUN);
    assert_int_equal(item(t, FSM_CMD_FIRE, &it, T0 + 2001), FSM_ITEM_OK);
    struct fsm_job j = get(t, s, &rd);
    uint64_t second = j.last_run;
    fsm_read_end(rd);
    runs_of(t, s, &rs);
    assert_int_equal(rs.n, 2);
    uint64_t first = rs.r[1].job_id;
    assert_int_equal(rs.r[0].job_id, second);
    run_job(t, w, first, true);
    struct fsm_item del = {.job_id = first};
    assert_int_equal(item(t, FSM_CMD_DELETE, &del, T0 + 5000), FSM_ITEM_OK);
    runs_of(t, s, &rs);
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].nominal, T0 + 2000);
    /* A stale FIRE of the pruned occurrence is still refused. */
    it = fire(s, T0 + 1000, T0 + 2000, FSM_FIRE_RUN);
    assert_int_equal(item(t, FSM_CMD_FIRE, &it, T0 + 5001), FSM_ITEM_STALE);
    runs_of(t, s, &rs);
    assert_int_equal(rs.n, 1);
}

/* A 3-level workflow with local dependencies: a → b → c, and d runs on
 * all_done. a fails: b and c are cancelled naming their parent, d runs. */
static void test_workflow_failure_propagates(void **state)
{
    struct tfsm *t = *state;
    uint64_t w = reg(t);
    struct fsm_job jobs[4] = {tjob("a"), tjob("b"), tjob("c"), tjob("d")};
    uint64_t dep_a = FSM_DEP_LOCAL | 0, dep_b = FSM_DEP_LOCAL | 1;
    jobs[1].deps = &dep_a;
    jobs[1].n_deps = 1;
    jobs[2].deps = &dep_b;
    jobs[2].n_deps = 1;
    jobs[3].deps = &dep_a;
    jobs[3].n_deps = 1;
    jobs[3].flags = FSM_JOB_ALL_DONE;
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_SUBMIT;
    c.jobs = jobs;
    c.n_jobs = 4;
    c.workflow = tstr("nightly");
    const struct fsm_result *r = cmd1(t, T0, &c);
    assert_int_equal(r->code, 0);
    assert_int_equal(r->n_ids, 5);
    uint64_t wf = r->ids[0], a = r->ids[1], b = r->ids[2], cc = r->ids[3],
             d = r->ids[4];
    assert_int_equal(a, wf + 1);
    assert_int_equal(tfsm_status(t, a), FSM_PENDING);
    assert_int_equal(tfsm_status(t, b), FSM_WAITING);
    assert_int_equal(tfsm_status(t, cc), FSM_WAITING);

    struct fsm_reader *rd;
    struct fsm_workflow info;
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    assert_int_equal(fsm_get_workflow(rd, wf, &info), 0);
    assert_int_equal(info.first, a);
    assert_int_equal(info.n, 4);
    assert_int_equal(info.name.len, 7);
    fsm_read_end(rd);

    run_job(t, w, a, false);
    assert_int_equal(tfsm_status(t, a), FSM_FAILED);
    assert_int_equal(tfsm_status(t, b), FSM_CANCELLED);
    assert_int_equal(tfsm_status(t, cc), FSM_CANCELLED);
    assert_int_equal(tfsm_status(t, d), FSM_PENDING);
    struct fsm_job jc = get(t, cc, &rd);
    char want[64];
    snprintf(want, sizeof want, "dependency %016llx cancelled",
             (unsigned long long)b);
    assert_int_equal(jc.last_error.len, strlen(want));
    assert_memory_equal(jc.last_error.p, want, strlen(want));
    fsm_read_end(rd);

    /* A dependency on a job that is already failed: cancelled at once. */
    struct fsm_job late = tjob("late");
    late.deps = &a;
    late.n_deps = 1;
    uint64_t l = tfsm_submit(t, T0, &late, 1)->ids[0];
    assert_int_equal(tfsm_status(t, l), FSM_CANCELLED);
}

/* Completed parents release; cancelling a workflow cancels its unfinished
 * jobs, running ones included. */
static void test_workflow_cancel(void **state)
{
    struct tfsm *t = *state;
    uint64_t w = reg(t);
    struct fsm_job jobs[3] = {tjob("a"), tjob("b"), tjob("c")};
    uint64_t dep_a = FSM_DEP_LOCAL | 0;
    jobs[1].deps = &dep_a;
    jobs[1].n_deps = 1;
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_SUBMIT;
    c.jobs = jobs;
    c.n_jobs = 3;
    c.workflow = tstr("wf");
    const struct fsm_result *r = cmd1(t, T0, &c);
    uint64_t wf = r->ids[0], a = r->ids[1], b = r->ids[2], cj = r->ids[3];
    run_job(t, w, a, true);
    assert_int_equal(tfsm_status(t, b), FSM_PENDING);
    struct fsm_item it = {.job_id = b, .worker_id = w};
    assert_int_equal(item(t, FSM_CMD_ASSIGN, &it, T0), FSM_ITEM_OK);
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_CANCEL_WF;
    c.id = wf;
    r = cmd1(t, T0, &c);
    assert_int_equal(r->code, 0);
    assert_int_equal(r->n_ids, 2);
    assert_int_equal(tfsm_status(t, a), FSM_COMPLETED);
    assert_int_equal(tfsm_status(t, b), FSM_CANCELLED);
    assert_int_equal(tfsm_status(t, cj), FSM_CANCELLED);
    c.id = wf + 100;
    assert_int_equal(cmd1(t, T0, &c)->code, ERR_NOTFOUND);
}

/* Failed jobs are requeued with fresh attempts; finished ones removed
 * with their indexes and counts; unfinished ones are not touched. */
static void test_retry_delete(void **state)
{
    struct tfsm *t = *state;
    uint64_t w = reg(t);
    struct fsm_job j = tjob("x");
    j.idem_key = tstr("k1");
    uint64_t id = tfsm_submit(t, T0, &j, 1)->ids[0];
    run_job(t, w, id, false);
    assert_int_equal(tfsm_status(t, id), FSM_FAILED);
    struct fsm_item it = {.job_id = id};
    assert_int_equal(item(t, FSM_CMD_RETRY, &it, T0), FSM_ITEM_OK);
    struct fsm_reader *rd;
    struct fsm_job got = get(t, id, &rd);
    assert_int_equal(got.status, FSM_PENDING);
    assert_int_equal(got.attempts, 0);
    fsm_read_end(rd);
    /* Pending: neither retried nor deleted. */
    assert_int_equal(item(t, FSM_CMD_RETRY, &it, T0), FSM_ITEM_SKIPPED);
    assert_int_equal(item(t, FSM_CMD_DELETE, &it, T0), FSM_ITEM_SKIPPED);
    run_job(t, w, id, true);
    assert_int_equal(item(t, FSM_CMD_DELETE, &it, T0), FSM_ITEM_OK);
    assert_int_equal(tfsm_status(t, id), 0);
    uint64_t counts[8];
    struct fsm_queue q;
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    fsm_count_by_status(rd, counts);
    assert_int_equal(counts[FSM_COMPLETED], 0);
    assert_int_equal(fsm_get_queue(rd, tstr("default"), &q, counts), 0);
    assert_int_equal(counts[FSM_COMPLETED], 0);
    fsm_read_end(rd);
    /* The idempotency key is free again. */
    const struct fsm_result *r = tfsm_submit(t, T0, &j, 1);
    assert_int_equal(r->existed[0], 0);
    assert_int_not_equal(r->ids[0], id);
}

struct qseen
{
    unsigned n;
    char names[8][16];
    struct fsm_queue q[8];
    uint64_t pending[8];
};

static void queue_cb(void *data,
                     const struct fsm_queue *q,
                     const uint64_t counts[8])
{
    struct qseen *s = data;
    if (s->n < 8) {
        snprintf(s->names[s->n], 16, "%.*s", (int)q->name.len, q->name.p);
        s->q[s->n] = *q;
        s->pending[s->n] = counts[FSM_PENDING];
        s->n++;
    }
}

/* Queue settings and per-queue counts, merged in name order. */
static void test_queues(void **state)
{
    struct tfsm *t = *state;
    struct fsm_job jobs[3] = {tjob("x"), tjob("x"), tjob("x")};
    jobs[2].queue = tstr("mail");
    assert_int_equal(tfsm_submit(t, T0, jobs, 3)->code, 0);
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_QUEUE_SET;
    c.queue.name = tstr("batch");
    c.queue.paused = 1;
    c.queue.concurrency = 5;
    assert_int_equal(cmd1(t, T0, &c)->code, 0);
    c.queue.name = tstr("");
    const struct fsm_result *r = cmd1(t, T0, &c);
    assert_int_equal(r->code, ERR_INVALID);
    assert_string_equal(r->field, "name");

    struct qseen s;
    struct fsm_reader *rd;
    memset(&s, 0, sizeof s);
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    fsm_queues(rd, queue_cb, &s);
    fsm_read_end(rd);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.names[0], "batch");
    assert_int_equal(s.q[0].paused, 1);
    assert_int_equal(s.q[0].concurrency, 5);
    assert_int_equal(s.pending[0], 0);
    assert_string_equal(s.names[1], "default");
    assert_int_equal(s.pending[1], 2);
    assert_string_equal(s.names[2], "mail");
    assert_int_equal(s.pending[2], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fire_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_record_pruned, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replace_now_pause, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_workflow_failure_propagates, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_workflow_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queues, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
