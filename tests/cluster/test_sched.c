/* The real leader's services (sched/) on the cluster fixture, through
 * tests/lib/fixture_sched.h: a dispatch cut by a leader change, a worker
 * that dies, a lease answer that never reaches its worker, and a cron
 * occurrence decided again by the next leader. Workers here are driven by
 * the test (register, long-poll, heartbeat every TTL/5, complete). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "tests/lib/cluster_fixture.h"
#include "tests/lib/fixture_sched.h"

#define TTL 2000
#define MAX_SEEN 64

struct t
{
    struct cluster_fixture *f;
    struct fixture_sched *fs;
    /* Every lease a poll answered with: (job, token) at most once. */
    uint64_t seen_job[MAX_SEEN], seen_token[MAX_SEEN];
    unsigned n_seen;
    /* Commands of the services, by type, that applied with some item OK
     * or STALE (see on_result). */
    unsigned ok[32], stale[32];
    unsigned applied[32];    /* Commands applied (code 0), by type. */
    unsigned assigns_failed; /* ASSIGN entries whose leadership was lost. */
    unsigned polls_out;      /* Polls not answered yet. */
};

static void on_result(void *data,
                      unsigned server,
                      const struct fsm_cmd *cmd,
                      int status,
                      const struct fsm_result *res)
{
    struct t *t = data;
    (void)server;
    if (cmd->type >= 32) {
        return;
    }
    if (status != 0) {
        t->assigns_failed += cmd->type == FSM_CMD_ASSIGN;
        return;
    }
    t->applied[cmd->type] += res->code == 0;
    for (uint32_t i = 0; res->code == 0 && i < res->n_ids; i++) {
        t->ok[cmd->type] += res->existed[i] == FSM_ITEM_OK;
        t->stale[cmd->type] += res->existed[i] == FSM_ITEM_STALE;
    }
}

/* Services with cancelled jobs kept @retention_cancelled s (0: kept). */
static int setup_with(void **state, unsigned retention_cancelled)
{
    struct t *t = calloc(1, sizeof *t);
    struct sched_config cfg;
    if (t == NULL || (t->f = cluster_fixture_create(3)) == NULL) {
        free(t);
        return -1;
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.worker_ttl_ms = TTL;
    cfg.aging_s = 60;
    cfg.retention_s[2] = retention_cancelled;
    if ((t->fs = fixture_sched_create(t->f, &cfg, 42)) == NULL) {
        cluster_fixture_destroy(t->f);
        free(t);
        return -1;
    }
    log_level = LOG_ERROR; /* Workers down, leases not received: expected. */
    t->fs->on_result = on_result;
    t->fs->on_result_data = t;
    *state = t;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 0);
}

static int setup_retention(void **state)
{
    return setup_with(state, 1);
}

static int teardown(void **state)
{
    struct t *t = *state;
    fixture_sched_destroy(t->fs);
    cluster_fixture_destroy(t->f);
    free(t);
    return 0;
}

static raft_time now_ms(struct t *t)
{
    return CLUSTER_TIME(t->f);
}

static unsigned elect(struct t *t)
{
    assert_true(fixture_sched_step_until_has_leader(t->fs, 10000));
    return CLUSTER_LEADER(t->f);
}

static bool new_leader(struct fixture_sched *fs, void *arg)
{
    unsigned old = *(unsigned *)arg, l = CLUSTER_LEADER(fs->f);
    return l < CLUSTER_N(fs->f) && l != old;
}

static unsigned elect_other(struct t *t, unsigned old)
{
    assert_true(fixture_sched_step_until(t->fs, new_leader, &old, 20000));
    return CLUSTER_LEADER(t->f);
}

/* Submit @n jobs on @leader and wait until they applied everywhere. */
static void submit_jobs(struct t *t, unsigned leader, unsigned n, uint64_t *ids)
{
    struct cluster_job_in in[8];
    assert_true(n <= 8);
    memset(in, 0, sizeof in);
    struct cluster_req *req = cluster_fixture_submit(t->f, leader, in, &n, 1);
    assert_int_equal(req->rv, 0);
    assert_true(fixture_sched_step_until_applied(t->fs, req->index, 5000));
    assert_int_equal(req->status, 0);
    assert_int_equal(req->results[0].n_ids, n);
    memcpy(ids, req->results[0].ids, n * sizeof *ids);
}

static struct fsm_job job_on(struct t *t, unsigned i, uint64_t id)
{
    struct fsm_job j;
    assert_int_equal(cluster_fixture_get_job(t->f, i, id, &j), 0);
    return j;
}

/* ---- A test worker -------------------------------------------------------
 */

struct tworker
{
    struct t *t;
    uint64_t id;
    bool dead;     /* Stops everything (heartbeats included). */
    bool deaf;     /* Drops every lease answer it gets. */
    bool no_polls; /* Heartbeats, never polls. */
    /* The poll in flight: a context the callback owns. */
    struct poll *poll;
    raft_time next_hb;
    uint64_t held[16], tokens[16];
    unsigned n_held, polls_answered, jobs_dropped;
};

struct poll
{
    struct t *t;
    struct tworker *w; /* NULL: the worker gave up on it. */
    unsigned server;
    unsigned answers;
};

static void registered_cb(void *data, int status, const struct fsm_result *res)
{
    uint64_t *id = data;
    assert_int_equal(status, 0);
    assert_int_equal(res->code, 0);
    *id = res->ids[0];
}

static bool is_set(struct fixture_sched *fs, void *arg)
{
    (void)fs;
    return *(uint64_t *)arg != 0;
}

static void worker_register(struct t *t, unsigned leader, struct tworker *w)
{
    struct fsm_worker fw;
    memset(w, 0, sizeof *w);
    w->t = t;
    memset(&fw, 0, sizeof fw);
    fw.name.p = "w";
    fw.name.len = 1;
    fw.queues.p = "default";
    fw.queues.len = 7;
    fw.concurrency = 8;
    assert_int_equal(sched_register(FIXTURE_SCHED(t->fs, leader), &fw,
                                    registered_cb, &w->id),
                     0);
    assert_true(fixture_sched_step_until(t->fs, is_set, &w->id, 5000));
    w->next_hb = now_ms(t);
}

static void leased_cb(void *data, const uint64_t *jobs, unsigned n)
{
    struct poll *p = data;
    struct tworker *w = p->w;
    p->t->polls_out--;
    p->answers++;
    assert_int_equal(p->answers, 1); /* Exactly once. */
    if (w != NULL) {
        struct t *t = w->t;
        w->poll = NULL;
        w->polls_answered++;
        for (unsigned k = 0; k < n; k++) {
            struct fsm_job j = job_on(t, p->server, jobs[k]);
            assert_int_equal(j.status, FSM_RUNNING);
            assert_int_equal(j.worker_id, w->id);
            for (unsigned s = 0; s < t->n_seen; s++) {
                assert_false(t->seen_job[s] == jobs[k] &&
                             t->seen_token[s] == j.lease_token);
            }
            assert_true(t->n_seen < MAX_SEEN);
            t->seen_job[t->n_seen] = jobs[k];
            t->seen_token[t->n_seen++] = j.lease_token;
            if (w->deaf) {
                w->jobs_dropped++;
                continue;
            }
            /* Not leased to it twice at once. */
            for (unsigned h = 0; h < w->n_held; h++) {
                assert_int_not_equal(w->held[h], jobs[k]);
            }
            w->held[w->n_held] = jobs[k];
            w->tokens[w->n_held++] = j.lease_token;
        }
    }
    free(p);
}

static struct poll *worker_poll(struct tworker *w, unsigned server)
{
    struct poll *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->t = w->t;
    p->w = w;
    p->server = server;
    assert_int_equal(sched_lease(FIXTURE_SCHED(w->t->fs, server), w->id, 8,
                                 SCHED_MAX_WAIT_MS, leased_cb, p),
                     0);
    assert_int_equal(p->answers, 0); /* Never from inside the call. */
    w->poll = p;
    w->t->polls_out++;
    return p;
}

static void completed_cb(void *data, int status, const struct fsm_result *res)
{
    unsigned *pending = data;
    (void)status;
    (void)res;
    (*pending)--;
}

/* What the worker does by now on @server: heartbeat when due (dropping
 * what the leader says it lost), deliver every held job's result, poll. */
static unsigned completing;
static void worker_round(struct tworker *w, unsigned server)
{
    struct t *t = w->t;
    struct sched *sc = FIXTURE_SCHED(t->fs, server);
    if (w->dead) {
        return;
    }
    if (now_ms(t) >= w->next_hb) {
        struct sched_held held[16];
        uint8_t verdicts[16];
        for (unsigned k = 0; k < w->n_held; k++) {
            held[k].job = w->held[k];
            held[k].token = w->tokens[k];
            held[k].has_token = true;
        }
        w->next_hb = now_ms(t) + sched_heartbeat_ms(sc);
        if (sched_heartbeat(sc, w->id, held, w->n_held, verdicts) != 0) {
            return;
        }
    }
    if (w->n_held > 0) {
        struct fsm_item items[16];
        memset(items, 0, sizeof items);
        for (unsigned k = 0; k < w->n_held; k++) {
            items[k].job_id = w->held[k];
            items[k].token = w->tokens[k];
            items[k].ok = 1;
        }
        if (sched_complete(sc, w->id, items, w->n_held, completed_cb,
                           &completing) == 0) {
            completing++;
            w->n_held = 0;
        }
    }
    if (w->poll == NULL && !w->no_polls) {
        worker_poll(w, server);
    }
}

static bool all_completed(struct t *t, const uint64_t *ids, unsigned n)
{
    unsigned leader = CLUSTER_LEADER(t->f);
    if (leader >= CLUSTER_N(t->f)) {
        return false;
    }
    for (unsigned k = 0; k < n; k++) {
        if (job_on(t, leader, ids[k]).status != FSM_COMPLETED) {
            return false;
        }
    }
    return true;
}

/* Run @ws (workers on the current leader) until @ids all completed. */
static void run_until_completed(struct t *t,
                                struct tworker **ws,
                                unsigned n_ws,
                                const uint64_t *ids,
                                unsigned n,
                                unsigned max_ms)
{
    raft_time until = now_ms(t) + max_ms;
    while (!all_completed(t, ids, n)) {
        assert_true(now_ms(t) < until);
        unsigned leader = CLUSTER_LEADER(t->f);
        for (unsigned k = 0; k < n_ws && leader < CLUSTER_N(t->f); k++) {
            worker_round(ws[k], leader);
        }
        fixture_sched_step_until_elapsed(t->fs, 20);
    }
}

static void give_up_poll(struct tworker *w)
{
    if (w->poll != NULL) {
        w->poll->w = NULL;
        w->poll = NULL;
    }
}

/* ---- (a) A leader change in the middle of a dispatch ---------------------
 * The worker's poll makes the leader propose an ASSIGN; the leader dies
 * once a follower stored it but before it commits. The worker gives up on
 * that poll and polls the next leader. Whether the ASSIGN survives or not,
 * no job is leased twice with one token (nor to the worker twice at once),
 * the old poll is answered once (empty: its leader stepped down), and
 * every job runs to completion (a lease whose answer was lost is
 * reclaimed). */
static void test_sched_leader_change_mid_dispatch(void **state)
{
    struct t *t = *state;
    unsigned leader = elect(t);
    uint64_t ids[3];
    struct tworker w;
    struct tworker *ws[] = {&w};

    worker_register(t, leader, &w);
    submit_jobs(t, leader, 3, ids);
    struct poll *first = worker_poll(&w, leader);
    assert_int_equal(t->fs->nodes[leader].n_queue, 1); /* The ASSIGN. */
    fixture_sched_flush(t->fs);
    raft_index assign = CLUSTER_LAST_INDEX(t->f, leader);
    unsigned follower = (leader + 1) % CLUSTER_N(t->f);
    assert_true(
        cluster_fixture_step_until_stored(t->f, follower, assign, 2000));
    assert_true(CLUSTER_LAST_APPLIED(t->f, leader) < assign);
    CLUSTER_KILL(t->f, leader);
    give_up_poll(&w); /* Its connection to the dead leader broke. */
    unsigned next = elect_other(t, leader);
    run_until_completed(t, ws, 1, ids, 3, 30000);
    CLUSTER_REVIVE(t->f, leader);
    fixture_sched_step_until_elapsed(t->fs, 3000);
    /* The dead leader's ASSIGN entry failed there (leadership lost) and
     * the first poll was answered once (empty) after it came back; the
     * entry itself committed under the next leader: the jobs were leased
     * to the worker with an answer it never got, and the reclaim gave them
     * back (this run takes that branch; if the entry were lost instead,
     * the jobs would run on their first attempt). */
    assert_int_equal(t->assigns_failed, 1);
    assert_int_equal(t->polls_out, w.poll != NULL ? 1 : 0);
    assert_int_equal(t->ok[FSM_CMD_RELEASE], 3);
    for (unsigned k = 0; k < 3; k++) {
        struct fsm_job j = job_on(t, next, ids[k]);
        assert_int_equal(j.status, FSM_COMPLETED);
        assert_int_equal(j.attempts, 2);
    }
    (void)first;
    assert_true(fixture_sched_step_until_applied(
        t->fs, CLUSTER_LAST_INDEX(t->f, next), 5000));
    assert_true(cluster_fixture_check_converged(t->f, 0));
    assert_true(cluster_fixture_check_callbacks(t->f, false));
}

/* ---- (b) A worker dies -----------------------------------------------------
 * W1 leases the jobs and stops heartbeating. WORKER_DOWN commits once its
 * TTL passed (not before), with its leases; they go back through the retry
 * policy and W2 runs them. */
static void test_sched_worker_death(void **state)
{
    struct t *t = *state;
    unsigned leader = elect(t);
    uint64_t ids[3];
    struct tworker w1, w2;
    struct tworker *ws[] = {&w1, &w2};

    worker_register(t, leader, &w1);
    worker_register(t, leader, &w2);
    w2.no_polls = true;
    submit_jobs(t, leader, 3, ids);
    worker_poll(&w1, leader);
    while (w1.poll != NULL) {
        worker_round(&w2, leader);
        fixture_sched_step(t->fs);
    }
    assert_int_equal(w1.n_held, 3);
    raft_time last_sign = now_ms(t); /* Its poll; it dies now. */
    w1.dead = true;
    /* Alive until its TTL passed. */
    while (now_ms(t) < last_sign + TTL - 50) {
        worker_round(&w2, leader);
        fixture_sched_step_until_elapsed(t->fs, 20);
    }
    assert_int_equal(t->ok[FSM_CMD_WORKER_DOWN], 0);
    assert_int_equal(job_on(t, leader, ids[0]).worker_id, w1.id);
    while (t->ok[FSM_CMD_WORKER_DOWN] < 3) {
        assert_true(now_ms(t) < last_sign + TTL + 1000);
        worker_round(&w2, leader);
        fixture_sched_step_until_elapsed(t->fs, 20);
    }
    assert_int_equal(sched_worker_known(FIXTURE_SCHED(t->fs, leader), w1.id),
                     ERR_NOTFOUND);
    w2.no_polls = false;
    run_until_completed(t, ws, 2, ids, 3, 30000);
    for (unsigned k = 0; k < 3; k++) {
        struct fsm_job j = job_on(t, leader, ids[k]);
        assert_int_equal(j.attempts, 2);
    }
    assert_int_equal(w2.n_held, 0);
    assert_int_equal(sched_worker_known(FIXTURE_SCHED(t->fs, leader), w2.id),
                     0);
}

/* ---- (c) A lease answer the worker never got -------------------------------
 * The poll's answer is dropped on the way: the worker keeps heartbeating
 * without those leases. The reclaim releases them once a report made TTL/2
 * after the lease omits them (within about a TTL), without declaring the
 * worker down; it then runs them. */
static void test_sched_unreceived_lease_reclaimed(void **state)
{
    struct t *t = *state;
    unsigned leader = elect(t);
    uint64_t ids[2];
    struct tworker w;
    struct tworker *ws[] = {&w};

    worker_register(t, leader, &w);
    submit_jobs(t, leader, 2, ids);
    w.deaf = true;
    worker_poll(&w, leader);
    while (w.poll != NULL) {
        fixture_sched_step(t->fs);
    }
    w.deaf = false;
    w.no_polls = true;
    assert_int_equal(w.jobs_dropped, 2);
    struct fsm_job j = job_on(t, leader, ids[0]);
    int64_t started = j.started_at;
    assert_int_equal(j.status, FSM_RUNNING);
    while (t->ok[FSM_CMD_RELEASE] < 2) {
        int64_t now = CLUSTER_EPOCH_MS + (int64_t)now_ms(t);
        assert_true(now < started + TTL + TTL / 2);
        /* Not before a report made TTL/2 after the lease. */
        if (now < started + TTL / 2) {
            assert_int_equal(job_on(t, leader, ids[0]).status, FSM_RUNNING);
        }
        worker_round(&w, leader);
        fixture_sched_step_until_elapsed(t->fs, 20);
    }
    assert_int_equal(t->ok[FSM_CMD_WORKER_DOWN], 0);
    assert_int_equal(sched_worker_known(FIXTURE_SCHED(t->fs, leader), w.id), 0);
    j = job_on(t, leader, ids[0]);
    assert_int_not_equal(j.status, FSM_RUNNING);
    assert_int_equal(j.worker_id, 0);
    w.no_polls = false;
    run_until_completed(t, ws, 1, ids, 2, 30000);
    for (unsigned k = 0; k < 2; k++) {
        assert_int_equal(job_on(t, leader, ids[k]).attempts, 2);
    }
    assert_int_equal(t->ok[FSM_CMD_WORKER_DOWN], 0);
}

/* ---- (d) A FIRE decided by a deposed leader --------------------------------
 * The leader's clock fires occurrence T1 and dies right after applying it,
 * before the others learn that it committed. The next leader decides T1
 * again from its older state: apply fences that FIRE off (stale), and T1
 * has one run, on every server. */
#define EVERY 2000
#define T1 (CLUSTER_EPOCH_MS + EVERY)

static bool fired(struct fixture_sched *fs, void *arg)
{
    struct t *t = arg;
    (void)fs;
    return t->ok[FSM_CMD_FIRE] > 0;
}

static void test_sched_deposed_fire_fenced(void **state)
{
    struct t *t = *state;
    unsigned leader = elect(t);
    struct cluster_req *req = cluster_fixture_submit_schedule_spec(
        t->f, leader, T1, NULL,
        "{\"schedule\":\"@every 2s\",\"catchup\":\"latest\"}");
    assert_int_equal(req->rv, 0);
    assert_true(fixture_sched_step_until_applied(t->fs, req->index, 5000));
    uint64_t s = req->results[0].ids[0];

    assert_true(fixture_sched_step_until(t->fs, fired, t, 5000));
    assert_int_equal(CLUSTER_LEADER(t->f), leader);
    CLUSTER_KILL(t->f, leader); /* Right after its FIRE of T1 applied. */
    for (unsigned i = 0; i < CLUSTER_N(t->f); i++) {
        if (i != leader) {
            assert_int_equal(job_on(t, i, s).run_at, T1); /* Not known. */
        }
    }
    unsigned next = elect_other(t, leader);
    (void)next;
    /* The new leader's FIRE of T1: stale. Then T2 fires once. */
    while (t->ok[FSM_CMD_FIRE] < 2) {
        fixture_sched_step_until_elapsed(t->fs, 50);
        assert_true(now_ms(t) < 20000);
    }
    assert_int_equal(t->stale[FSM_CMD_FIRE], 1);
    CLUSTER_REVIVE(t->f, leader);
    fixture_sched_step_until_elapsed(t->fs, 3000);
    for (unsigned i = 0; i < CLUSTER_N(t->f); i++) {
        struct cluster_runs r;
        assert_int_equal(cluster_fixture_runs(t->f, i, s, &r), 0);
        assert_false(r.dup);
        assert_int_equal(r.children, r.with_job);
        assert_true(r.n >= 2);
        assert_int_equal(r.nominal[r.n - 1], T1); /* Oldest last: once. */
    }
}

/* ---- An ASSIGN in flight commits before WORKER_DOWN -----------------------
 * W polls and dies; its poll waits (SCHED_MAX_WAIT_MS, longer than the
 * TTL). Just before W's deadline a job arrives: the leader proposes an
 * ASSIGN to W and, cut off from the others for a moment, cannot commit
 * it before liveness proposes W's WORKER_DOWN, listing the leases it has
 * applied: none. Both commit, in that order: the job runs under a worker
 * that is down. Liveness never looks at W again and no report of W will
 * omit it; the reclaim gives back leases of down workers, and W2 runs the
 * job. (Without that, found by tests/sim with leader changes, the job
 * stays running forever.) */
static void test_sched_assign_in_flight_before_worker_down(void **state)
{
    struct t *t = *state;
    unsigned leader = elect(t);
    uint64_t ids[1];
    struct cluster_job_in in;
    struct tworker w, w2;
    struct tworker *ws[] = {&w2};

    worker_register(t, leader, &w);
    worker_register(t, leader, &w2);
    w2.no_polls = true;
    worker_poll(&w, leader);
    raft_time polled = now_ms(t);
    w.dead = true;
    while (now_ms(t) < polled + TTL - 400) {
        worker_round(&w2, leader);
        fixture_sched_step_until_elapsed(t->fs, 20);
    }
    memset(&in, 0, sizeof in);
    struct cluster_req *req =
        cluster_fixture_submit(t->f, leader, &in, NULL, 1);
    assert_int_equal(req->rv, 0);
    /* Step (ticking every step) until the dispatch queued the ASSIGN. */
    while (t->fs->nodes[leader].n_queue == 0) {
        assert_true(now_ms(t) < polled + TTL - 100);
        raft_fixture_step(&t->f->raft);
        fixture_sched_tick(t->fs);
    }
    assert_true(req->done);
    ids[0] = req->results[0].ids[0];
    CLUSTER_ISOLATE(t->f, leader);
    fixture_sched_flush(t->fs);
    raft_index assign = CLUSTER_LAST_INDEX(t->f, leader);
    while (CLUSTER_LAST_INDEX(t->f, leader) == assign) {
        assert_true(now_ms(t) < polled + TTL + 500);
        worker_round(&w2, leader);
        fixture_sched_step(t->fs); /* Until liveness proposes. */
    }
    assert_int_equal(CLUSTER_STATE(t->f, leader), RAFT_LEADER);
    CLUSTER_REJOIN(t->f, leader);
    while (t->applied[FSM_CMD_WORKER_DOWN] == 0) {
        assert_true(now_ms(t) < polled + TTL + 3000);
        worker_round(&w2, leader);
        fixture_sched_step_until_elapsed(t->fs, 10);
    }
    assert_int_equal(CLUSTER_LEADER(t->f), leader);
    /* The race: the WORKER_DOWN released nothing, the job runs under the
     * down worker. */
    assert_int_equal(t->ok[FSM_CMD_WORKER_DOWN], 0);
    struct fsm_job j = job_on(t, leader, ids[0]);
    assert_int_equal(j.status, FSM_RUNNING);
    assert_int_equal(j.worker_id, w.id);
    assert_int_equal(sched_worker_known(FIXTURE_SCHED(t->fs, leader), w.id),
                     ERR_NOTFOUND);
    w2.no_polls = false;
    run_until_completed(t, ws, 1, ids, 1, 10000);
    assert_int_equal(t->ok[FSM_CMD_RELEASE], 1);
    assert_int_equal(job_on(t, leader, ids[0]).attempts, 2);
}

/* ---- Shutdown with an ASSIGN in flight -------------------------------------
 * sched_stop() answers the waiting polls, but not one whose ASSIGN is in
 * flight; when closing fails that entry, the poll must still be answered
 * (once, empty): every call that returned 0 fires its callback. */
static void test_sched_stop_answers_poll_in_flight(void **state)
{
    struct t *t = *state;
    unsigned leader = elect(t);
    uint64_t ids[1];
    struct tworker w;

    worker_register(t, leader, &w);
    submit_jobs(t, leader, 1, ids);
    worker_poll(&w, leader);
    fixture_sched_flush(t->fs); /* The ASSIGN, proposed, not committed. */
    assert_int_equal(t->polls_out, 1);
    fixture_sched_destroy(t->fs); /* Stop, close raft, destroy. */
    t->fs = NULL;
    assert_int_equal(t->polls_out, 0);
    assert_int_equal(w.polls_answered, 1);
    assert_int_equal(w.n_held, 0);
}

/* Retention keeps up with a stream of finished jobs: a full DELETE batch
 * is followed by the next as soon as it applied, not a second later. 1500
 * cancelled jobs past a 1 s retention are all gone within 1 s of virtual
 * time (one batch of RETENTION_BATCH per second took 3 s). */
static bool all_deleted(struct fixture_sched *fs, void *arg)
{
    struct t *t = arg;
    (void)fs;
    return t->ok[FSM_CMD_DELETE] >= 1500;
}

static void test_sched_retention_keeps_up(void **state)
{
    struct t *t = *state;
    unsigned leader;
    uint64_t parent;
    struct fsm_cmd cmd;
    struct cluster_req *req;

    leader = elect(t);
    submit_jobs(t, leader, 1, &parent);
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_CMD_CANCEL;
    cmd.id = parent;
    req = cluster_fixture_submit_cmds(t->f, leader, &cmd, 1);
    assert_int_equal(req->rv, 0);
    assert_true(fixture_sched_step_until_applied(t->fs, req->index, 5000));

    /* 1500 children of the cancelled parent: cancelled on arrival. */
    static struct fsm_job jobs[500];
    memset(jobs, 0, sizeof jobs);
    for (unsigned k = 0; k < 500; k++) {
        jobs[k].type = (struct fsm_str){"noop", 4};
        jobs[k].queue = (struct fsm_str){"default", 7};
        jobs[k].user_id = (struct fsm_str){"tester", 6};
        jobs[k].spec = (struct fsm_str){"{}", 2};
        jobs[k].max_attempts = 1;
        jobs[k].deps = &parent;
        jobs[k].n_deps = 1;
    }
    for (unsigned r = 0; r < 3; r++) {
        memset(&cmd, 0, sizeof cmd);
        cmd.type = FSM_CMD_SUBMIT;
        cmd.jobs = jobs;
        cmd.n_jobs = 500;
        req = cluster_fixture_submit_cmds(t->f, leader, &cmd, 1);
        assert_int_equal(req->rv, 0);
        assert_true(fixture_sched_step_until_applied(t->fs, req->index, 5000));
        assert_int_equal(req->results[0].code, 0);
    }
    /* Past the retention, the first sweep starts within a second; then
     * the batches follow each other. */
    fixture_sched_step_until_elapsed(t->fs, 1000);
    assert_true(fixture_sched_step_until(t->fs, all_deleted, t, 2000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sched_leader_change_mid_dispatch,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sched_worker_death, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sched_unreceived_lease_reclaimed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sched_deposed_fire_fenced, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_sched_assign_in_flight_before_worker_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sched_stop_answers_poll_in_flight,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sched_retention_keeps_up,
                                        setup_retention, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
