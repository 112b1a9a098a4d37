/* fsm/apply_lease.c: workers, leases with fencing tokens, completions,
 * retries, worker death, promotion, cancellation of running jobs. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tests/unit/fsm/helpers.h"

#define T0 1700000000000LL

#define setup tfsm_setup
#define teardown tfsm_teardown

static uint64_t reg(struct tfsm *t, const char *name)
{
    struct fsm_cmd c;
    unsigned n;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_WORKER_REG;
    c.worker.name = tstr(name);
    c.worker.queues = tstr("default");
    c.worker.concurrency = 4;
    const struct fsm_result *r = tfsm_apply(t, T0, &c, 1, &n);
    assert_int_equal(r->code, 0);
    return r->ids[0];
}

/* One item command; returns the outcome of its single item. */
static int item(struct tfsm *t,
                uint8_t type,
                uint64_t id,
                const struct fsm_item *it,
                int64_t now)
{
    struct fsm_cmd c;
    unsigned n;
    memset(&c, 0, sizeof c);
    c.type = type;
    c.id = id;
    c.n_items = 1;
    c.items = it;
    const struct fsm_result *r = tfsm_apply(t, now, &c, 1, &n);
    assert_int_equal(r->code, 0);
    assert_int_equal(r->n_ids, 1);
    return r->existed[0];
}

static struct fsm_job get(struct tfsm *t, uint64_t id)
{
    struct fsm_reader *rd;
    struct fsm_job j;
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    assert_int_equal(fsm_get_job(rd, id, &j), 0);
    fsm_read_end(rd); /* Only scalar fields are used after this. */
    return j;
}

static uint64_t submit1(struct tfsm *t, uint32_t max_attempts)
{
    struct fsm_job j = tjob("shell");
    j.max_attempts = max_attempts;
    return tfsm_submit(t, T0, &j, 1)->ids[0];
}

static uint64_t assign(struct tfsm *t, uint64_t job, uint64_t worker)
{
    struct fsm_item it = {.job_id = job, .worker_id = worker};
    assert_int_equal(item(t, FSM_CMD_ASSIGN, 0, &it, T0 + 1), FSM_ITEM_OK);
    struct fsm_job j = get(t, job);
    assert_int_equal(j.status, FSM_RUNNING);
    assert_int_equal(j.lease_token, t->index);
    assert_int_equal(j.worker_id, worker);
    return j.lease_token;
}

static void test_lease_assign_complete(void **state)
{
    struct tfsm *t = *state;
    uint64_t w = reg(t, "w1");
    uint64_t job = submit1(t, 3);
    uint64_t token = assign(t, job, w);
    struct fsm_item again = {.job_id = job, .worker_id = w};
    /* Not pending any more: a second assign is skipped. */
    assert_int_equal(item(t, FSM_CMD_ASSIGN, 0, &again, T0), FSM_ITEM_SKIPPED);
    struct fsm_item done = {.job_id = job, .token = token + 1, .ok = 1};
    assert_int_equal(item(t, FSM_CMD_COMPLETE, 0, &done, T0 + 5),
                     FSM_ITEM_STALE);
    done.token = token;
    done.result = tstr("{\"n\":1}");
    done.output = tstr("hi\n");
    assert_int_equal(item(t, FSM_CMD_COMPLETE, 0, &done, T0 + 5), FSM_ITEM_OK);
    struct fsm_job j = get(t, job);
    assert_int_equal(j.status, FSM_COMPLETED);
    assert_int_equal(j.finished_at, T0 + 5);
    assert_int_equal(j.attempts, 1);
    /* Accepted once: the same completion again is stale. */
    assert_int_equal(item(t, FSM_CMD_COMPLETE, 0, &done, T0 + 6),
                     FSM_ITEM_STALE);
}

static void test_lease_retry_then_dead_letter(void **state)
{
    struct tfsm *t = *state;
    uint64_t w = reg(t, "w1");
    uint64_t job = submit1(t, 2);
    uint64_t tok1 = assign(t, job, w);
    struct fsm_item fail = {.job_id = job,
                            .token = tok1,
                            .retryable = 1,
                            .exit_code = 3,
                            .retry_at = T0 + 1000,
                            .error = tstr("exit 3")};
    assert_int_equal(item(t, FSM_CMD_COMPLETE, 0, &fail, T0 + 10), FSM_ITEM_OK);
    struct fsm_job j = get(t, job);
    assert_int_equal(j.status, FSM_SCHEDULED);
    assert_int_equal(j.run_at, T0 + 1000);
    /* Not due yet: promote skips; then due. */
    struct fsm_item p = {.job_id = job};
    assert_int_equal(item(t, FSM_CMD_PROMOTE, 0, &p, T0 + 999),
                     FSM_ITEM_SKIPPED);
    assert_int_equal(item(t, FSM_CMD_PROMOTE, 0, &p, T0 + 1000), FSM_ITEM_OK);
    uint64_t tok2 = assign(t, job, w);
    assert_true(tok2 > tok1); /* Tokens grow per job. */
    fail.token = tok2;
    assert_int_equal(item(t, FSM_CMD_COMPLETE, 0, &fail, T0 + 2000),
                     FSM_ITEM_OK);
    j = get(t, job);
    assert_int_equal(j.status, FSM_FAILED); /* max_attempts reached. */
    assert_int_equal(j.attempts, 2);
    /* Non-retryable failures go straight to the dead-letter queue. */
    uint64_t job2 = submit1(t, 5);
    uint64_t tok = assign(t, job2, w);
    struct fsm_item bad = {.job_id = job2, .token = tok, .error = tstr("x")};
    assert_int_equal(item(t, FSM_CMD_COMPLETE, 0, &bad, T0), FSM_ITEM_OK);
    assert_int_equal(get(t, job2).status, FSM_FAILED);
}

static void test_lease_worker_down(void **state)
{
    struct tfsm *t = *state;
    uint64_t w1 = reg(t, "w1"), w2 = reg(t, "w2");
    uint64_t job = submit1(t, 3);
    uint64_t tok = assign(t, job, w1);
    struct fsm_item lost = {.job_id = job, .token = tok, .retry_at = T0};
    /* Releasing it as another worker's is stale. */
    assert_int_equal(item(t, FSM_CMD_WORKER_DOWN, w2, &lost, T0 + 20),
                     FSM_ITEM_STALE);
    assert_int_equal(item(t, FSM_CMD_WORKER_DOWN, w1, &lost, T0 + 20),
                     FSM_ITEM_OK);
    struct fsm_job j = get(t, job);
    assert_int_equal(j.status, FSM_PENDING); /* retry_at passed. */
    assert_int_equal(j.attempts, 1);         /* The lost attempt counts. */
    /* A down worker gets no leases; its late completion is stale. */
    struct fsm_item a = {.job_id = job, .worker_id = w1};
    assert_int_equal(item(t, FSM_CMD_ASSIGN, 0, &a, T0 + 30), FSM_ITEM_STALE);
    struct fsm_item late = {.job_id = job, .token = tok, .ok = 1};
    assert_int_equal(item(t, FSM_CMD_COMPLETE, 0, &late, T0 + 40),
                     FSM_ITEM_STALE);
    assign(t, job, reg(t, "w3")); /* w2 is down too: WORKER_DOWN marks it. */
}

/* A lease the worker never received: RELEASE ends it through the retry
 * policy without marking the (live) worker down; a wrong worker or token
 * is stale, and the worker's late result for it too. */
static void test_lease_release_unreceived(void **state)
{
    struct tfsm *t = *state;
    uint64_t w1 = reg(t, "w1"), w2 = reg(t, "w2");
    uint64_t job = submit1(t, 3);
    uint64_t tok = assign(t, job, w1);
    struct fsm_item r = {.job_id = job, .worker_id = w2, .token = tok};
    assert_int_equal(item(t, FSM_CMD_RELEASE, 0, &r, T0 + 5), FSM_ITEM_STALE);
    r.worker_id = w1;
    r.token = tok - 1;
    assert_int_equal(item(t, FSM_CMD_RELEASE, 0, &r, T0 + 5), FSM_ITEM_STALE);
    r.token = tok;
    r.error = tstr("lease not received by the worker");
    assert_int_equal(item(t, FSM_CMD_RELEASE, 0, &r, T0 + 6), FSM_ITEM_OK);
    struct fsm_job j = get(t, job);
    assert_int_equal(j.status, FSM_PENDING);
    assert_int_equal(j.attempts, 1);
    struct fsm_item late = {.job_id = job, .token = tok, .ok = 1};
    assert_int_equal(item(t, FSM_CMD_COMPLETE, 0, &late, T0 + 7),
                     FSM_ITEM_STALE);
    assign(t, job, w1); /* w1 is still alive: it may get the job again. */
}

static void test_lease_cancel_running(void **state)
{
    struct tfsm *t = *state;
    uint64_t w = reg(t, "w1");
    uint64_t job = submit1(t, 3);
    uint64_t tok = assign(t, job, w);
    struct fsm_cmd c;
    unsigned n;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_CANCEL;
    c.id = job;
    assert_int_equal(tfsm_apply(t, T0 + 50, &c, 1, &n)->code, 0);
    assert_int_equal(get(t, job).status, FSM_CANCELLED);
    struct fsm_item done = {.job_id = job, .token = tok, .ok = 1};
    assert_int_equal(item(t, FSM_CMD_COMPLETE, 0, &done, T0 + 60),
                     FSM_ITEM_STALE);
    assert_int_equal(get(t, job).status, FSM_CANCELLED);
}

static void test_lease_dependencies_released(void **state)
{
    struct tfsm *t = *state;
    uint64_t w = reg(t, "w1");
    uint64_t parent = submit1(t, 1);
    struct fsm_job child = tjob("child");
    child.deps = &parent;
    child.n_deps = 1;
    uint64_t cid = tfsm_submit(t, T0, &child, 1)->ids[0];
    assert_int_equal(get(t, cid).status, FSM_WAITING);
    uint64_t tok = assign(t, parent, w);
    struct fsm_item done = {.job_id = parent, .token = tok, .ok = 1};
    assert_int_equal(item(t, FSM_CMD_COMPLETE, 0, &done, T0 + 5), FSM_ITEM_OK);
    assert_int_equal(get(t, cid).status, FSM_PENDING);
}

struct count
{
    int n;
};

static int count_cb(void *data, const struct fsm_job *job)
{
    (void)job;
    ((struct count *)data)->n++;
    return 0;
}

static void test_lease_reads(void **state)
{
    struct tfsm *t = *state;
    uint64_t w = reg(t, "w1");
    struct fsm_job jobs[3] = {tjob("a"), tjob("b"), tjob("c")};
    jobs[0].priority = 1;
    jobs[1].priority = 9;
    jobs[2].run_at = T0 + 100;
    const struct fsm_result *r = tfsm_submit(t, T0, jobs, 3);
    uint64_t low = r->ids[0], high = r->ids[1];
    struct fsm_reader *rd;
    struct fsm_job first;
    struct count c = {0};

    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    (void)first;
    assert_int_equal(fsm_due(rd, T0 + 99, 10, count_cb, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(fsm_due(rd, T0 + 100, 10, count_cb, &c), 0);
    assert_int_equal(c.n, 1);
    fsm_read_end(rd);
    assign(t, high, w);
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    c.n = 0;
    assert_int_equal(fsm_running(rd, count_cb, &c), 0);
    assert_int_equal(c.n, 1);
    struct fsm_worker wk;
    assert_int_equal(fsm_get_worker(rd, w, &wk), 0);
    assert_int_equal(wk.concurrency, 4);
    assert_memory_equal(wk.name.p, "w1", 2);
    fsm_read_end(rd);
    (void)low;
}

static int first_cb(void *data, const struct fsm_job *job)
{
    *(uint64_t *)data = job->id;
    return 1;
}

static void test_lease_ready_order(void **state)
{
    struct tfsm *t = *state;
    struct fsm_job jobs[3] = {tjob("a"), tjob("b"), tjob("c")};
    jobs[0].priority = 1;
    jobs[1].priority = 9;
    jobs[2].priority = 9;
    const struct fsm_result *r = tfsm_submit(t, T0, jobs, 3);
    uint64_t high = r->ids[1], first = 0;
    struct fsm_reader *rd;
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    assert_int_equal(fsm_ready(rd, tstr("default"), first_cb, &first), 0);
    fsm_read_end(rd);
    assert_int_equal(first, high); /* Priority 9, and the older of the two. */
}

/* Many status changes in one transaction: LMDB may move pages under a
 * decoded record, so every index entry must still be right after it. */
static void test_lease_indexes_after_bulk_changes(void **state)
{
    struct tfsm *t = *state;
    enum { N = 600 };
    static struct fsm_job jobs[N];
    static struct fsm_item items[N];
    uint64_t ids[N];
    uint64_t w = reg(t, "w1");
    struct fsm_cmd c;
    unsigned n;

    for (int i = 0; i < N; i++) {
        jobs[i] = tjob("shell-with-a-longer-type-name");
        jobs[i].user_id = tstr("user-with-a-longer-name");
    }
    for (int i = 0; i < N; i += 200) {
        const struct fsm_result *r = tfsm_submit(t, T0, jobs + i, 200);
        assert_int_equal(r->code, 0);
        memcpy(ids + i, r->ids, 200 * sizeof ids[0]);
    }
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_ASSIGN;
    c.n_items = N;
    c.items = items;
    for (int i = 0; i < N; i++) {
        items[i].job_id = ids[i];
        items[i].worker_id = w;
    }
    const struct fsm_result *r = tfsm_apply(t, T0 + 1, &c, 1, &n);
    assert_int_equal(r->code, 0);
    c.type = FSM_CMD_COMPLETE;
    for (int i = 0; i < N; i++) {
        items[i].token = t->index;
        items[i].ok = 1;
        items[i].output = tstr("some output that makes the record grow");
    }
    r = tfsm_apply(t, T0 + 2, &c, 1, &n);
    assert_int_equal(r->code, 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r->existed[i], FSM_ITEM_OK);
    }
    struct fsm_query q;
    struct fsm_reader *rd;
    struct count cnt = {0};
    char next[FSM_CURSOR_SIZE];
    memset(&q, 0, sizeof q);
    q.limit = 1000;
    q.status = FSM_COMPLETED;
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    q.type = tstr("shell-with-a-longer-type-name");
    assert_int_equal(fsm_list(rd, &q, count_cb, &cnt, next), 0);
    assert_int_equal(cnt.n, N);
    cnt.n = 0;
    q.type = tstr("");
    q.user_id = tstr("user-with-a-longer-name");
    assert_int_equal(fsm_list(rd, &q, count_cb, &cnt, next), 0);
    assert_int_equal(cnt.n, N);
    cnt.n = 0;
    q.user_id = tstr("");
    q.queue = tstr("default");
    assert_int_equal(fsm_list(rd, &q, count_cb, &cnt, next), 0);
    assert_int_equal(cnt.n, N);
    cnt.n = 0;
    q.queue = tstr("");
    q.status = FSM_RUNNING;
    assert_int_equal(fsm_list(rd, &q, count_cb, &cnt, next), 0);
    assert_int_equal(cnt.n, 0);
    fsm_read_end(rd);
}

static unsigned history_of(struct tfsm *t,
                           uint64_t id,
                           struct fsm_attempt *last)
{
    struct fsm_reader *rd;
    struct fsm_job j;
    struct fsm_attempt at;
    unsigned n = 0;
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    assert_int_equal(fsm_get_job(rd, id, &j), 0);
    struct fsm_str h = j.history;
    int rv;
    while ((rv = fsm_attempt_next(&h, &at)) == 1) {
        n++;
        *last = at;
        last->error.p = NULL; /* Borrowed: not valid after read_end. */
        last->output.p = NULL;
    }
    assert_int_equal(rv, 0);
    fsm_read_end(rd);
    return n;
}

static void test_lease_history(void **state)
{
    struct tfsm *t = *state;
    uint64_t w = reg(t, "w1");
    uint64_t job = submit1(t, 100);
    struct fsm_attempt last;

    for (unsigned k = 1; k <= FSM_MAX_HISTORY + 3; k++) {
        uint64_t tok = assign(t, job, w);
        struct fsm_item fail = {.job_id = job,
                                .token = tok,
                                .retryable = 1,
                                .exit_code = (int32_t)k,
                                .retry_at = 0,
                                .error = tstr("boom"),
                                .output = tstr("out")};
        assert_int_equal(item(t, FSM_CMD_COMPLETE, 0, &fail, T0 + k),
                         FSM_ITEM_OK);
        unsigned n = history_of(t, job, &last);
        assert_int_equal(n, k < FSM_MAX_HISTORY ? k : FSM_MAX_HISTORY);
        assert_int_equal(last.number, k);
        assert_int_equal(last.outcome, FSM_ATTEMPT_FAILED);
        assert_int_equal(last.token, tok);
        assert_int_equal(last.exit_code, (int32_t)k);
        assert_int_equal(last.worker_id, w);
        assert_int_equal(last.finished_at, T0 + k);
    }
    uint64_t tok = assign(t, job, w);
    struct fsm_item lost = {.job_id = job, .token = tok, .retry_at = 0};
    assert_int_equal(item(t, FSM_CMD_WORKER_DOWN, w, &lost, T0), FSM_ITEM_OK);
    history_of(t, job, &last);
    assert_int_equal(last.outcome, FSM_ATTEMPT_LOST);
    tok = assign(t, job, reg(t, "w2"));
    struct fsm_cmd c;
    unsigned n;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_CANCEL;
    c.id = job;
    assert_int_equal(tfsm_apply(t, T0, &c, 1, &n)->code, 0);
    history_of(t, job, &last);
    assert_int_equal(last.outcome, FSM_ATTEMPT_CANCELLED);
    assert_int_equal(last.token, tok);
}

/* ---- Who ran it: worker name and host in each attempt --------------------
 */

static const struct fsm_result *reg_host(struct tfsm *t,
                                         const char *name,
                                         struct fsm_str host)
{
    struct fsm_cmd c;
    unsigned n;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_WORKER_REG;
    c.worker.name = tstr(name);
    c.worker.host = host;
    c.worker.queues = tstr("default");
    c.worker.concurrency = 1;
    return tfsm_apply(t, T0, &c, 1, &n);
}

/* The name and host of the last attempt of @id ("" when empty), and the
 * job's own copy, which only a running job holds. */
struct who
{
    unsigned n;
    uint8_t outcome;
    uint64_t worker_id;
    char name[64], host[64];
    uint32_t job_name_len;
};

static struct who who_ran(struct tfsm *t, uint64_t id)
{
    struct fsm_reader *rd;
    struct fsm_job j;
    struct fsm_attempt at;
    struct who w;
    memset(&w, 0, sizeof w);
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    assert_int_equal(fsm_get_job(rd, id, &j), 0);
    w.job_name_len = j.worker_name.len + j.worker_host.len;
    struct fsm_str h = j.history;
    while (fsm_attempt_next(&h, &at) == 1) {
        w.n++;
        w.outcome = at.outcome;
        w.worker_id = at.worker_id;
        snprintf(w.name, sizeof w.name, "%.*s", (int)at.worker_name.len,
                 at.worker_name.p != NULL ? at.worker_name.p : "");
        snprintf(w.host, sizeof w.host, "%.*s", (int)at.worker_host.len,
                 at.worker_host.p != NULL ? at.worker_host.p : "");
    }
    fsm_read_end(rd);
    return w;
}

/* Every way an attempt ends records the worker as it registered: failure,
 * loss by WORKER_DEL (which deletes the worker's record in the same
 * command, before it ends the leases), release, cancel, success. */
static void test_lease_history_names(void **state)
{
    struct tfsm *t = *state;
    uint64_t w1 = reg_host(t, "w1", tstr("host-a"))->ids[0];
    uint64_t w2 = reg(t, "w2"); /* No host. */
    uint64_t job = submit1(t, 10);
    struct who w;

    uint64_t tok = assign(t, job, w1);
    struct fsm_item fail = {.job_id = job, .token = tok, .retryable = 1};
    assert_int_equal(item(t, FSM_CMD_COMPLETE, 0, &fail, T0 + 2), FSM_ITEM_OK);
    w = who_ran(t, job);
    assert_int_equal(w.n, 1);
    assert_int_equal(w.outcome, FSM_ATTEMPT_FAILED);
    assert_int_equal(w.worker_id, w1);
    assert_string_equal(w.name, "w1");
    assert_string_equal(w.host, "host-a");
    assert_int_equal(w.job_name_len, 0); /* Not running: no copy kept. */

    tok = assign(t, job, w2);
    assert_int_not_equal(who_ran(t, job).job_name_len, 0);
    struct fsm_item lost = {.job_id = job, .token = tok};
    assert_int_equal(item(t, FSM_CMD_WORKER_DEL, w2, &lost, T0 + 3),
                     FSM_ITEM_OK);
    w = who_ran(t, job);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.outcome, FSM_ATTEMPT_LOST);
    assert_int_equal(w.worker_id, w2);
    assert_string_equal(w.name, "w2"); /* Its record is gone already. */
    assert_string_equal(w.host, "");

    tok = assign(t, job, w1);
    struct fsm_item rel = {.job_id = job, .worker_id = w1, .token = tok};
    assert_int_equal(item(t, FSM_CMD_RELEASE, 0, &rel, T0 + 4), FSM_ITEM_OK);
    w = who_ran(t, job);
    assert_int_equal(w.outcome, FSM_ATTEMPT_LOST);
    assert_string_equal(w.name, "w1");

    uint64_t w3 = reg_host(t, "w3", tstr("host-c"))->ids[0];
    tok = assign(t, job, w3);
    struct fsm_item ok = {.job_id = job, .token = tok, .ok = 1};
    assert_int_equal(item(t, FSM_CMD_COMPLETE, 0, &ok, T0 + 5), FSM_ITEM_OK);
    w = who_ran(t, job);
    assert_int_equal(w.n, 4);
    assert_int_equal(w.outcome, FSM_ATTEMPT_OK);
    assert_string_equal(w.name, "w3");
    assert_string_equal(w.host, "host-c");
    assert_int_equal(w.job_name_len, 0);

    uint64_t job2 = submit1(t, 1);
    assign(t, job2, w3);
    struct fsm_cmd c;
    unsigned n;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_CANCEL;
    c.id = job2;
    assert_int_equal(tfsm_apply(t, T0 + 6, &c, 1, &n)->code, 0);
    w = who_ran(t, job2);
    assert_int_equal(w.outcome, FSM_ATTEMPT_CANCELLED);
    assert_string_equal(w.name, "w3");
    assert_string_equal(w.host, "host-c");
}

/* host is optional, bounded like name, and has no NUL. */
static void test_lease_worker_host_checked(void **state)
{
    struct tfsm *t = *state;
    char big[FSM_MAX_STR + 1];
    const struct fsm_result *r;

    memset(big, 'h', sizeof big);
    r = reg_host(t, "w", (struct fsm_str){big, FSM_MAX_STR + 1});
    assert_int_equal(r->code, ERR_INVALID);
    assert_string_equal(r->field, "host");
    r = reg_host(t, "w", (struct fsm_str){"a\0b", 3});
    assert_int_equal(r->code, ERR_INVALID);
    assert_string_equal(r->field, "host");
    r = reg_host(t, "w", (struct fsm_str){big, FSM_MAX_STR});
    assert_int_equal(r->code, 0);
    uint64_t id = r->ids[0];
    struct fsm_reader *rd;
    struct fsm_worker wk;
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    assert_int_equal(fsm_get_worker(rd, id, &wk), 0);
    assert_int_equal(wk.host.len, FSM_MAX_STR);
    assert_memory_equal(wk.host.p, big, FSM_MAX_STR);
    fsm_read_end(rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lease_assign_complete, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lease_retry_then_dead_letter,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_worker_down, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lease_release_unreceived, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lease_cancel_running, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lease_dependencies_released, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lease_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_ready_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lease_indexes_after_bulk_changes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_history_names, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lease_worker_host_checked, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
