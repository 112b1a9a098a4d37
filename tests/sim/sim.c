/* Deterministic simulation: the real FSM and the real leader's services
 * (sched/) on raft_fixture (in-memory network and disk, virtual time),
 * driven from one seed. Every server runs a struct sched through
 * tests/lib/fixture_sched.h, ticked every SCHED_TICK_MS of virtual time, so
 * the code that decides in rotad decides here: dispatch (ASSIGN), liveness
 * (WORKER_DOWN), the reclaim of unreceived leases (RELEASE), the clock
 * (PROMOTE, FIRE of a cron schedule) and the retry policy of results.
 *
 * Clients submit jobs with idempotency keys (and resubmit them) and cancel
 * them. Simulated workers behave as worker/main.c: they register
 * (sched_register), long-poll (sched_lease) and read each leased job's
 * token from that server's FSM, heartbeat every TTL/5 with the leases they
 * hold (sched_heartbeat; lost/cancelled verdicts drop them, an unknown
 * worker re-registers), and deliver results (sched_complete, retried until
 * a definite answer; sometimes a late result with a superseded token, or
 * the same result twice). Workers crash (heartbeats stop: liveness declares
 * them down) and pause (declared down meanwhile, they come back with their
 * old leases and results), and some lease answers never reach them (the
 * reclaim must give those jobs back). The network and the servers fail
 * (kill/revive, isolate, one-way drops, latency, election timeouts); in
 * half the seeds a spare server joins (raft_add, then raft_assign as
 * voter) and voters leave again (raft_remove, sometimes the leader
 * itself); --snapshots forces snapshot installs by a low threshold.
 * Invariants are checked as it goes; after the faults stop, everything
 * heals, every server becomes a voter, and every job must finish and every
 * server converge.
 *
 *   sim [--seeds N] [--first S] [--seed S] [--ops N] [--snapshots]
 *       [--no-membership] [--no-guard] [--plant token|ack|fire] [--expect TEXT]
 *       [--require-fix lowered|raised|rollbacks] [-v]
 *
 * The servers run with cluster/raft_guard.h, as rotad does: it works
 * around three raft 0.15 bugs this simulation found (a follower left
 * behind its leader, a snapshot sent forever, a NULL dereference when a
 * follower rolls back a configuration); --no-guard shows the first.
 * The fixture's disk is ordered by tests/lib/fixture_io.h (raft 0.15's
 * fixture truncates entries still being appended, and assumes its array
 * starts at index 1 after an install).
 *
 * Exit 0 when every seed passed; a failing seed prints itself and its
 * violation, and `sim --seed S` replays it bit for bit (same trace hash).
 * --plant turns on a test-only bug (token: the lease-token check off in
 * apply; fire: FIRE's fences off in apply; ack: a submit acknowledged
 * before its entry commits): with
 * --expect TEXT the run passes only if some seed fails with TEXT, which
 * shows the checks can fail. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/raft_guard.h"
#include "common/err.h"
#include "common/log.h"
#include "fsm/internal.h"
#include "tests/lib/cluster_fixture.h"
#include "tests/lib/fixture_sched.h"

#define MAX_JOBS 512
#define MAX_WORKERS 4
#define MAX_HELD 16
#define MAX_DELIVERED 4096
#define MAX_OPS_DEFAULT 160
#define WORKER_CONCURRENCY 8
#define POLL_WAIT_MS 1000
/* A worker gives up on a poll with no answer after this (its server died
 * or was cut off) and polls again. */
#define POLL_GIVE_UP_MS (POLL_WAIT_MS + 3000)

struct sjob
{
    uint64_t id;
    raft_index acked_at;           /* Index of the entry that created it. */
    uint8_t final[CLUSTER_MAX_N];  /* First final status seen per node. */
    uint64_t token[CLUSTER_MAX_N]; /* Last lease token seen per node. */
};

struct key
{
    uint64_t id; /* 0 until a submit with this key is acknowledged. */
    unsigned n_submits;
};

/* A lease a worker holds: running until @done_at, then its result waits
 * for delivery (@result_ok). */
struct lease
{
    uint64_t job, token;
    raft_time done_at;
    bool finished, result_ok;
};

enum { W_EMPTY, W_UP, W_PAUSED, W_CRASHED };

struct sworker
{
    int state;
    uint64_t id;     /* 0 until registered. */
    unsigned epoch;  /* A crash starts a new process: older callbacks die. */
    raft_time until; /* W_PAUSED/W_CRASHED: when it comes back. */
    bool registering, polling, completing;
    unsigned poll_seq;
    raft_time poll_sent, next_hb;
    struct lease held[MAX_HELD];
    unsigned n_held;
};

struct sim
{
    struct cluster_fixture *f;
    struct fixture_sched *fs;
    uint64_t rng;
    unsigned seed, ops, verbose;
    uint64_t trace; /* Hash of what happened: equal on replay. */
    struct sjob jobs[MAX_JOBS];
    unsigned n_jobs;
    struct key keys[MAX_JOBS];
    unsigned n_keys;
    struct sworker workers[MAX_WORKERS];
    struct
    {
        struct cluster_req *req;
        int key; /* SUBMIT: the idempotency key's number; else -1. */
    } pending[4096];
    unsigned n_pending;
    /* Every (job, token) a poll answered with: each at most once. */
    struct
    {
        uint64_t job, token;
    } delivered[MAX_DELIVERED];
    unsigned n_delivered;
    bool in_call;         /* Inside a sched_* call: no callback may fire. */
    unsigned outstanding; /* Calls whose callback has not fired yet. */
    char violation[512];
    bool snapshots;  /* Low snapshot threshold: installs to laggards. */
    bool membership; /* Half the seeds: a spare joins and voters leave. */
    bool all_ok;     /* Healing: workers succeed, nothing is dropped. */
    unsigned voters; /* Voters at bootstrap; a spare may join and leave. */
    struct raft_change changes[64]; /* Until the fixture is destroyed. */
    unsigned n_changes;
    unsigned n_membership; /* Changes that raft accepted. */
    uint64_t sched;        /* A recurring job the leaders fire, or 0. */
    struct cluster_req *sched_req;
    unsigned n_leases, n_unreceived, n_stale_sent, n_actions;
    /* A targeted fault: kill the leader right after its FIRE applied
     * there, before the others learn it committed (armed: occurrences
     * fired per server when armed). */
    bool armed;
    unsigned long long fired[CLUSTER_MAX_N];
    unsigned n_fire_kills;
};

static uint64_t next_rand(struct sim *s)
{
    /* xorshift64* */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 2685821657736338717ULL;
}

static unsigned pick(struct sim *s, unsigned n)
{
    return n == 0 ? 0 : (unsigned)(next_rand(s) % n);
}

static void mix(struct sim *s, uint64_t v)
{
    s->trace = (s->trace ^ v) * 1099511628211ULL;
}

static bool violate(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static bool violate(struct sim *s, const char *fmt, ...)
{
    va_list ap;
    if (s->violation[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(s->violation, sizeof s->violation, fmt, ap);
        va_end(ap);
    }
    return false;
}

static raft_time now_of(struct sim *s)
{
    return CLUSTER_TIME(s->f);
}

static void track_key(struct sim *s, struct cluster_req *req, int key)
{
    if (req != NULL && req->rv == 0 && s->n_pending < 4096) {
        s->pending[s->n_pending].req = req;
        s->pending[s->n_pending].key = key;
        s->n_pending++;
    }
}

static void track(struct sim *s, struct cluster_req *req)
{
    track_key(s, req, -1);
}

/* The server a client or worker reaches: the leader (HTTP forwards there),
 * if it is up. */
static unsigned reach(struct sim *s)
{
    unsigned leader = CLUSTER_LEADER(s->f);
    if (leader >= CLUSTER_N(s->f) || !CLUSTER_ALIVE(s->f, leader) ||
        CLUSTER_STATE(s->f, leader) != RAFT_LEADER) {
        return CLUSTER_N(s->f);
    }
    return leader;
}

/* ---- Clients ------------------------------------------------------------- */

static void submit(struct sim *s)
{
    unsigned i = pick(s, CLUSTER_N(s->f));
    unsigned k;
    char key[32], spec[48];
    struct cluster_job_in in;

    if (s->n_keys > 0 && pick(s, 4) == 0) {
        k = pick(s, s->n_keys); /* A retry of an earlier request. */
    } else if (s->n_keys < MAX_JOBS) {
        k = s->n_keys++;
    } else {
        return;
    }
    snprintf(key, sizeof key, "k%u", k);
    snprintf(spec, sizeof spec, "{\"payload\":{\"n\":%u}}", k);
    memset(&in, 0, sizeof in);
    in.idem_key = key;
    in.spec = spec;
    in.hash = k;
    s->keys[k].n_submits++;
    track_key(s, cluster_fixture_submit(s->f, i, &in, NULL, 1), (int)k);
}

static void cancel(struct sim *s)
{
    unsigned leader = reach(s);
    struct fsm_cmd c;
    if (leader >= CLUSTER_N(s->f) || s->n_jobs == 0) {
        return;
    }
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_CANCEL;
    c.id = s->jobs[pick(s, s->n_jobs)].id;
    track(s, cluster_fixture_submit_cmds(s->f, leader, &c, 1));
}

/* ---- Workers --------------------------------------------------------------
 * A callback's context: which worker (and which of its lives) asked. */

struct call
{
    struct sim *s;
    unsigned w, epoch, seq, server;
    uint64_t worker; /* Its id when it asked. */
    /* sched_complete: the items sent, and which were stale when sent. */
    unsigned n;
    uint64_t job[MAX_HELD + 1], token[MAX_HELD + 1];
    uint64_t held_token[MAX_HELD + 1]; /* The lease's own token. */
    bool stale[MAX_HELD + 1];
};

static struct call *call_new(struct sim *s, unsigned w, unsigned server)
{
    struct call *c = calloc(1, sizeof *c);
    if (c != NULL) {
        c->s = s;
        c->w = w;
        c->epoch = s->workers[w].epoch;
        c->worker = s->workers[w].id;
        c->server = server;
    }
    return c;
}

/* A callback fired: it must not be from inside the call (sched.h). */
static struct sworker *call_done(struct call *c)
{
    struct sim *s = c->s;
    s->outstanding--;
    if (s->in_call) {
        violate(s, "a sched callback fired inside its call");
    }
    if (c->epoch != s->workers[c->w].epoch) {
        return NULL; /* That process is gone. */
    }
    return &s->workers[c->w];
}

static void registered_cb(void *data, int status, const struct fsm_result *res)
{
    struct call *c = data;
    struct sworker *w = call_done(c);
    mix(c->s, 0x7265 + (uint64_t)status);
    if (w != NULL) {
        w->registering = false;
        if (status == 0 && res->code == 0 && res->n_ids == 1) {
            w->id = res->ids[0];
            w->next_hb = now_of(c->s);
            mix(c->s, w->id);
        }
    }
    free(c);
}

static void register_worker(struct sim *s, unsigned wi)
{
    struct sworker *w = &s->workers[wi];
    unsigned leader = reach(s);
    struct fsm_worker fw;
    struct call *c;

    if (leader >= CLUSTER_N(s->f) || (c = call_new(s, wi, leader)) == NULL) {
        return;
    }
    memset(&fw, 0, sizeof fw);
    fw.name.p = "w";
    fw.name.len = 1;
    fw.queues.p = "default";
    fw.queues.len = 7;
    fw.concurrency = WORKER_CONCURRENCY;
    s->in_call = true;
    int rv =
        sched_register(FIXTURE_SCHED(s->fs, leader), &fw, registered_cb, c);
    s->in_call = false;
    if (rv == 0) {
        w->registering = true;
        s->outstanding++;
    } else {
        free(c);
    }
}

static bool delivered_before(struct sim *s, uint64_t job, uint64_t token)
{
    for (unsigned k = 0; k < s->n_delivered; k++) {
        if (s->delivered[k].job == job && s->delivered[k].token == token) {
            return true;
        }
    }
    if (s->n_delivered < MAX_DELIVERED) {
        s->delivered[s->n_delivered].job = job;
        s->delivered[s->n_delivered].token = token;
        s->n_delivered++;
    }
    return false;
}

static void leased_cb(void *data, const uint64_t *jobs, unsigned n)
{
    struct call *c = data;
    struct sim *s = c->s;
    struct sworker *w = call_done(c);
    bool received =
        w != NULL && w->polling && c->seq == w->poll_seq && w->id == c->worker;

    mix(s, 0x1ea5e + n);
    /* Some answers never reach the worker (the connection broke): the
     * reclaim must give those jobs back. Not while healing. */
    if (received && n > 0 && !s->all_ok && pick(s, 16) == 0) {
        received = false;
    }
    for (unsigned k = 0; k < n; k++) {
        struct fsm_job job;
        mix(s, jobs[k]);
        if (cluster_fixture_get_job(s->f, c->server, jobs[k], &job) != 0 ||
            job.status != FSM_RUNNING || job.worker_id != c->worker ||
            job.lease_token == 0) {
            violate(s,
                    "server %u answered a poll with job %016llx, not leased "
                    "to the worker there (%s, worker %016llx)",
                    c->server, (unsigned long long)jobs[k],
                    fsm_status_name(job.status),
                    (unsigned long long)job.worker_id);
            continue;
        }
        if (delivered_before(s, jobs[k], job.lease_token)) {
            violate(s, "job %016llx leased twice with token %llu",
                    (unsigned long long)jobs[k],
                    (unsigned long long)job.lease_token);
        }
        s->n_leases++;
        if (!received || w->n_held == MAX_HELD) {
            s->n_unreceived++;
            continue;
        }
        struct lease *l = &w->held[w->n_held++];
        memset(l, 0, sizeof *l);
        l->job = jobs[k];
        l->token = job.lease_token;
        l->done_at = now_of(s) + pick(s, 600);
    }
    if (w != NULL && c->seq == w->poll_seq) {
        w->polling = false;
    }
    free(c);
}

static void poll(struct sim *s, unsigned wi, unsigned server)
{
    struct sworker *w = &s->workers[wi];
    struct call *c;
    if (w->n_held >= WORKER_CONCURRENCY ||
        (c = call_new(s, wi, server)) == NULL) {
        return;
    }
    c->seq = ++w->poll_seq;
    s->in_call = true;
    int rv =
        sched_lease(FIXTURE_SCHED(s->fs, server), w->id,
                    WORKER_CONCURRENCY - w->n_held, POLL_WAIT_MS, leased_cb, c);
    s->in_call = false;
    mix(s, (uint64_t)rv);
    if (rv == 0) {
        w->polling = true;
        w->poll_sent = now_of(s);
        s->outstanding++;
    } else {
        free(c);
        if (rv == ERR_NOTFOUND) {
            w->id = 0; /* Unknown there: register again (worker/main.c). */
        }
    }
}

static void drop_lease(struct sworker *w, unsigned k)
{
    w->held[k] = w->held[--w->n_held];
}

static void heartbeat(struct sim *s, unsigned wi, unsigned server)
{
    struct sworker *w = &s->workers[wi];
    struct sched_held held[MAX_HELD];
    uint8_t verdicts[MAX_HELD];
    unsigned n = w->n_held;

    for (unsigned k = 0; k < n; k++) {
        held[k].job = w->held[k].job;
        held[k].token = w->held[k].token;
        held[k].has_token = true;
    }
    int rv =
        sched_heartbeat(FIXTURE_SCHED(s->fs, server), w->id, held, n, verdicts);
    mix(s, 0x4b + (uint64_t)rv);
    w->next_hb = now_of(s) + sched_heartbeat_ms(FIXTURE_SCHED(s->fs, server));
    if (rv == ERR_NOTFOUND) {
        /* Declared down: every running lease is gone; results still
         * queued are delivered anyway (worker/main.c). */
        for (unsigned k = 0; k < w->n_held; k++) {
            if (!w->held[k].finished) {
                drop_lease(w, k--);
            }
        }
        w->id = 0;
        return;
    }
    if (rv != 0) {
        return;
    }
    /* Verdicts name leases by position: drop from the end. */
    for (unsigned k = n; k-- > 0;) {
        mix(s, verdicts[k]);
        if (verdicts[k] != SCHED_HELD_KEEP && !w->held[k].finished) {
            drop_lease(w, k);
        }
    }
}

/* The highest token of @job any server applied (tokens only grow). */
static uint64_t max_token(struct sim *s, uint64_t job)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < CLUSTER_N(s->f); i++) {
        struct fsm_job j;
        if (cluster_fixture_get_job(s->f, i, job, &j) == 0 &&
            j.lease_token > t) {
            t = j.lease_token;
        }
    }
    return t;
}

static void completed_cb(void *data, int status, const struct fsm_result *res)
{
    struct call *c = data;
    struct sim *s = c->s;
    struct sworker *w = call_done(c);

    mix(s, 0xc0 + (uint64_t)status);
    if (status == 0 && res->code == 0) {
        /* Stale completions must never be accepted. */
        for (unsigned k = 0; k < c->n && k < res->n_ids; k++) {
            mix(s, res->existed[k]);
            if (c->stale[k] && res->existed[k] == FSM_ITEM_OK) {
                violate(s, "stale completion accepted: job %016llx token %llu",
                        (unsigned long long)c->job[k],
                        (unsigned long long)c->token[k]);
            }
        }
    }
    if (w != NULL) {
        w->completing = false;
        /* A definite answer: the results are delivered (or stale). */
        for (unsigned k = 0; status == 0 && res->code == 0 && k < c->n; k++) {
            for (unsigned h = 0; h < w->n_held; h++) {
                if (w->held[h].finished && w->held[h].job == c->job[k] &&
                    w->held[h].token == c->held_token[k]) {
                    drop_lease(w, h);
                    break;
                }
            }
        }
    }
    free(c);
}

static void deliver(struct sim *s, unsigned wi, unsigned server)
{
    struct sworker *w = &s->workers[wi];
    struct fsm_item items[MAX_HELD + 1];
    struct call *c;
    unsigned n = 0;

    if (w->completing) {
        return;
    }
    for (unsigned k = 0; k < w->n_held; k++) {
        w->held[k].finished |= w->held[k].done_at <= now_of(s);
    }
    if ((c = call_new(s, wi, server)) == NULL) {
        return;
    }
    memset(items, 0, sizeof items);
    for (unsigned k = 0; k < w->n_held; k++) {
        struct lease *l = &w->held[k];
        if (!l->finished) {
            continue;
        }
        items[n].job_id = l->job;
        items[n].token = l->token;
        items[n].ok = s->all_ok || pick(s, 5) != 0;
        items[n].retryable = 1;
        c->job[n] = l->job;
        c->token[n] = c->held_token[n] = l->token;
        /* Superseded since (a paused worker's late result), for sure: a
         * newer token was applied somewhere. */
        c->stale[n] = max_token(s, l->job) > l->token;
        if (!s->all_ok && l->token > 1 && pick(s, 8) == 0) {
            /* A late result of an earlier attempt. */
            items[n].token = c->token[n] = l->token - 1 - pick(s, 3);
            c->stale[n] = true;
        }
        n++;
    }
    if (n > 0 && !s->all_ok && pick(s, 6) == 0) {
        /* The same result twice in one entry: the second is stale. */
        items[n] = items[0];
        c->job[n] = c->job[0];
        c->token[n] = c->token[0];
        c->held_token[n] = c->held_token[0];
        c->stale[n] = true;
        n++;
    }
    c->n = n;
    if (n == 0) {
        free(c);
        return;
    }
    for (unsigned k = 0; k < n; k++) {
        s->n_stale_sent += c->stale[k];
    }
    s->in_call = true;
    int rv = sched_complete(FIXTURE_SCHED(s->fs, server), w->id, items, n,
                            completed_cb, c);
    s->in_call = false;
    mix(s, 0xde + (uint64_t)rv);
    if (rv == 0) {
        w->completing = true;
        s->outstanding++;
    } else {
        free(c);
    }
}

/* One round of every worker: what worker/main.c's threads would do by now. */
static void workers_run(struct sim *s)
{
    raft_time now = now_of(s);
    unsigned server = reach(s);
    for (unsigned wi = 0; wi < MAX_WORKERS; wi++) {
        struct sworker *w = &s->workers[wi];
        if (w->state == W_EMPTY) {
            continue;
        }
        if (w->state != W_UP) {
            if (now < w->until && !s->all_ok) {
                continue;
            }
            w->state = W_UP; /* Restarted, or woken from its pause. */
            w->next_hb = now;
        }
        if (w->polling && now - w->poll_sent > POLL_GIVE_UP_MS) {
            w->polling = false; /* Its late answer is never received. */
        }
        if (server >= CLUSTER_N(s->f)) {
            continue;
        }
        if (w->id == 0) {
            if (!w->registering) {
                register_worker(s, wi);
            }
            continue;
        }
        if (now >= w->next_hb) {
            heartbeat(s, wi, server);
        }
        if (w->id != 0) {
            deliver(s, wi, server);
        }
        if (w->id != 0 && !w->polling) {
            poll(s, wi, server);
        }
    }
}

static void start_workers(struct sim *s, unsigned n)
{
    for (unsigned wi = 0; wi < n && wi < MAX_WORKERS; wi++) {
        if (s->workers[wi].state == W_EMPTY) {
            memset(&s->workers[wi], 0, sizeof s->workers[wi]);
            s->workers[wi].state = W_UP;
        }
    }
}

/* A worker process dies (its leases and results with it) and restarts
 * later as a new worker; or it pauses (a long GC, a stopped VM) and comes
 * back with everything it held, possibly declared down meanwhile. */
static void stop_worker(struct sim *s, bool crash)
{
    unsigned wi = pick(s, MAX_WORKERS);
    struct sworker *w = &s->workers[wi];
    unsigned ttl = sched_worker_ttl_ms(FIXTURE_SCHED(s->fs, 0));
    if (w->state != W_UP) {
        return;
    }
    w->state = crash ? W_CRASHED : W_PAUSED;
    w->until = now_of(s) + ttl / 2 + pick(s, 3 * ttl);
    if (crash) {
        unsigned epoch = w->epoch + 1;
        raft_time until = w->until;
        memset(w, 0, sizeof *w);
        w->state = W_CRASHED;
        w->epoch = epoch;
        w->until = until;
    }
    mix(s, 0x57 + wi * 2 + crash);
}

/* ---- Faults ---------------------------------------------------------------
 */

static unsigned n_down(struct sim *s)
{
    unsigned n = 0;
    for (unsigned i = 0; i < CLUSTER_N(s->f); i++) {
        n += !CLUSTER_ALIVE(s->f, i);
    }
    return n;
}

/* The fixture's "randomized" election timeout is a fixed value per server:
 * servers that keep timing out within a network latency of each other
 * split the vote forever (a fixture artefact, seen with four voters).
 * Draw new timeouts, from the seed, while there is no leader. */
static void shuffle_timeouts(struct sim *s)
{
    for (unsigned i = 0; i < CLUSTER_N(s->f); i++) {
        raft_fixture_set_randomized_election_timeout(&s->f->raft, i,
                                                     1000 + pick(s, 1000));
    }
}

static void fault(struct sim *s)
{
    struct cluster_fixture *f = s->f;
    unsigned i = pick(s, CLUSTER_N(f)), j = pick(s, CLUSTER_N(f));
    switch (pick(s, 7)) {
        case 0: /* Kill (a minority at most) or revive. */
            if (CLUSTER_ALIVE(f, i) && n_down(s) < (CLUSTER_N(f) - 1) / 2) {
                CLUSTER_KILL(f, i);
            } else if (!CLUSTER_ALIVE(f, i)) {
                CLUSTER_REVIVE(f, i);
            }
            break;
        case 1:
            CLUSTER_ISOLATE(f, i);
            break;
        case 2:
            CLUSTER_REJOIN(f, i);
            break;
        case 3: /* One-way drop. */
            if (i != j) {
                raft_fixture_disconnect(&f->raft, i, j);
            }
            break;
        case 4:
            if (i != j) {
                raft_fixture_reconnect(&f->raft, i, j);
            }
            break;
        case 5:
            raft_fixture_set_network_latency(&f->raft, i, 2 + pick(s, 40));
            break;
        default:
            shuffle_timeouts(s);
            break;
    }
}

static unsigned long long fired_on(struct sim *s, unsigned i)
{
    struct sched_stats st;
    sched_stats(FIXTURE_SCHED(s->fs, i), &st);
    return st.fired;
}

static void arm_fire_kill(struct sim *s)
{
    s->armed = true;
    for (unsigned i = 0; i < CLUSTER_N(s->f); i++) {
        s->fired[i] = fired_on(s, i);
    }
}

/* After each step: the armed kill, if a server just applied its FIRE. */
static void fire_kill(struct sim *s)
{
    for (unsigned i = 0; s->armed && i < CLUSTER_N(s->f); i++) {
        if (fired_on(s, i) == s->fired[i]) {
            continue;
        }
        s->armed = false;
        if (CLUSTER_ALIVE(s->f, i) && n_down(s) < (CLUSTER_N(s->f) - 1) / 2) {
            CLUSTER_KILL(s->f, i);
            s->n_fire_kills++;
            mix(s, 0xf1 + i);
        }
    }
}

static void heal(struct sim *s)
{
    struct cluster_fixture *f = s->f;
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        if (!CLUSTER_ALIVE(f, i)) {
            CLUSTER_REVIVE(f, i);
        }
        CLUSTER_REJOIN(f, i);
        raft_fixture_set_network_latency(&f->raft, i, 5);
        for (unsigned j = 0; j < CLUSTER_N(f); j++) {
            if (i != j) {
                raft_fixture_reconnect(&f->raft, i, j);
            }
        }
    }
}

/* ---- Membership -----------------------------------------------------------
 * Servers beyond the bootstrap voters start out of the configuration. The
 * leader adds one (raft_add, then raft_assign as voter once it caught up)
 * and removes a voter again (sometimes itself), so that the voters stay
 * between the bootstrap count and one more: the fault rules above keep a
 * majority of either alive. */

static void change_cb(struct raft_change *req, int status)
{
    struct sim *s = req->data;
    mix(s, (uint64_t)(req - s->changes) * 977 + (uint64_t)status);
}

static struct raft_change *change_new(struct sim *s)
{
    struct raft_change *req;
    if (s->n_changes == 64) {
        return NULL;
    }
    req = &s->changes[s->n_changes++];
    memset(req, 0, sizeof *req);
    req->data = s;
    return req;
}

/* Role of server @i in the leader's configuration; -1 when not in it. */
static int role_of(struct raft *leader, unsigned i)
{
    for (unsigned k = 0; k < leader->configuration.n; k++) {
        if (leader->configuration.servers[k].id == i + 1) {
            return leader->configuration.servers[k].role;
        }
    }
    return -1;
}

/* One step towards @all_voters (every server a voter) or, when false, a
 * random add or remove. Returns true when nothing is left to do. */
static bool membership(struct sim *s, bool all_voters)
{
    struct cluster_fixture *f = s->f;
    unsigned li = CLUSTER_LEADER(f), voters = 0, outside = 0,
             out[CLUSTER_MAX_N];
    struct raft *leader;
    struct raft_change *req;
    int rv = 0;

    if (li >= CLUSTER_N(f)) {
        return false;
    }
    leader = CLUSTER_RAFT(f, li);
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        int role = role_of(leader, i);
        if (role == RAFT_VOTER) {
            voters++;
        } else {
            out[outside++] = i;
        }
    }
    if (outside == 0) {
        return true;
    }
    if (all_voters || voters == s->voters) {
        unsigned i = out[pick(s, outside)];
        struct raft *r = CLUSTER_RAFT(f, i);
        if ((req = change_new(s)) == NULL) {
            return false;
        }
        if (role_of(leader, i) < 0) {
            rv = raft_add(leader, req, r->id, r->address, change_cb);
        } else {
            rv = raft_assign(leader, req, r->id, RAFT_VOTER, change_cb);
        }
    } else {
        /* Remove a voter: the leader itself one time in four. */
        unsigned i = li;
        if (pick(s, 4) != 0) {
            do {
                i = pick(s, CLUSTER_N(f));
            } while (i == li || role_of(leader, i) != RAFT_VOTER);
        }
        if ((req = change_new(s)) == NULL) {
            return false;
        }
        rv = raft_remove(leader, req, (raft_id)i + 1, change_cb);
    }
    mix(s, (uint64_t)rv);
    if (rv == 0) {
        s->n_membership++;
    } else {
        s->n_changes--; /* Not taken: raft has no reference to it. */
    }
    return false;
}

/* ---- A schedule -------------------------------------------------------------
 * One recurring job, every 2 s, that the leaders' clocks fire (sched/
 * clock.c and plan.c): each occurrence must be recorded once, on every
 * server, and run at most once, across leader changes (a new leader that
 * has not applied the last FIRE decides it again: apply fences it). Now
 * and then a client triggers a run now (sched_schedule_action). */

#define SCHED_FIRST (CLUSTER_EPOCH_MS + 2000)
#define SCHED_SPEC            \
    "{\"schedule\":\"@every " \
    "2s\",\"overlap\":\"allow\",\"catchup\":\"latest\"}"

static void action_cb(void *data, int status, const struct fsm_result *res)
{
    struct sim *s = data;
    s->outstanding--;
    if (s->in_call) {
        violate(s, "a sched callback fired inside its call");
    }
    mix(s, 0xac + (uint64_t)status + (res != NULL ? (uint64_t)res->code : 0));
}

static void schedule(struct sim *s)
{
    unsigned leader = reach(s);
    if (leader >= CLUSTER_N(s->f)) {
        return;
    }
    if (s->sched == 0) {
        if (s->sched_req == NULL || s->sched_req->done) {
            s->sched_req = cluster_fixture_submit_schedule_spec(
                s->f, leader, SCHED_FIRST, "schedule", SCHED_SPEC);
            track(s, s->sched_req);
        }
        return;
    }
    s->in_call = true;
    int rv = sched_schedule_action(FIXTURE_SCHED(s->fs, leader), s->sched,
                                   SCHED_TRIGGER, action_cb, s);
    s->in_call = false;
    mix(s, 0xa0 + (uint64_t)rv);
    if (rv == 0) {
        s->outstanding++;
        s->n_actions++;
    }
}

/* Occurrences recorded on server @i (each once), or -1 after a violation. */
static int check_runs(struct sim *s, unsigned i)
{
    struct cluster_runs r;
    if (s->sched == 0 || cluster_fixture_runs(s->f, i, s->sched, &r) != 0) {
        return 0;
    }
    if (r.dup) {
        violate(s, "server %u: a schedule occurrence recorded twice", i);
        return -1;
    }
    if (r.children != r.with_job) {
        violate(s,
                "server %u: %u schedule occurrences ran, as %u jobs (an "
                "occurrence ran twice)",
                i, r.with_job, r.children);
        return -1;
    }
    return (int)r.n;
}

/* ---- Invariants -----------------------------------------------------------
 */

/* Results of finished requests: acknowledged submits, the schedule. (The
 * workers' calls check theirs in their callbacks.) */
static bool harvest(struct sim *s)
{
    unsigned keep = 0;
    for (unsigned p = 0; p < s->n_pending; p++) {
        struct cluster_req *req = s->pending[p].req;
        int k = s->pending[p].key;
        if (!req->done) {
            s->pending[keep++] = s->pending[p];
            continue;
        }
        mix(s, req->index * 31 + (uint64_t)req->status);
        if (req == s->sched_req && req->status == 0 &&
            req->results[0].code == 0 && req->results[0].n_ids == 1) {
            s->sched = req->results[0].ids[0];
        }
        if (k < 0 || req->status != 0 || req->n_cmds != 1 ||
            req->results[0].code != 0 || req->results[0].n_ids != 1) {
            continue;
        }
        /* An acknowledged SUBMIT: one job per idempotency key. */
        uint64_t id = req->results[0].ids[0];
        mix(s, id);
        if (s->keys[k].id != 0 && s->keys[k].id != id) {
            return violate(s, "key k%d maps to %016llx and %016llx", k,
                           (unsigned long long)s->keys[k].id,
                           (unsigned long long)id);
        }
        if (s->keys[k].id == 0) {
            s->keys[k].id = id;
            if (s->n_jobs < MAX_JOBS) {
                memset(&s->jobs[s->n_jobs], 0, sizeof s->jobs[0]);
                s->jobs[s->n_jobs].id = id;
                s->jobs[s->n_jobs].acked_at = req->index;
                s->n_jobs++;
            }
        }
    }
    s->n_pending = keep;
    return s->violation[0] == '\0';
}

/* Per node and job: tokens never go down, a final status never changes,
 * every acknowledged job exists once the node applied its entry. */
static bool check_nodes(struct sim *s)
{
    struct cluster_fixture *f = s->f;
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        struct fsm_reader *rd;
        uint64_t applied = fsm_applied_index(CLUSTER_FSM(f, i));
        if (fsm_read_begin(CLUSTER_FSM(f, i), &rd) != 0) {
            return violate(s, "server %u: cannot read", i);
        }
        for (unsigned k = 0; k < s->n_jobs; k++) {
            struct sjob *j = &s->jobs[k];
            struct fsm_job job;
            int rv = fsm_get_job(rd, j->id, &job);
            if (rv != 0) {
                if (applied >= j->acked_at) {
                    fsm_read_end(rd);
                    return violate(s,
                                   "server %u (applied %llu): acknowledged job "
                                   "%016llx missing",
                                   i, (unsigned long long)applied,
                                   (unsigned long long)j->id);
                }
                continue;
            }
            if (job.lease_token < j->token[i]) {
                fsm_read_end(rd);
                return violate(s,
                               "server %u: job %016llx token went down %llu -> "
                               "%llu",
                               i, (unsigned long long)j->id,
                               (unsigned long long)j->token[i],
                               (unsigned long long)job.lease_token);
            }
            j->token[i] = job.lease_token;
            if (j->final[i] != 0 && job.status != j->final[i]) {
                fsm_read_end(rd);
                return violate(s,
                               "server %u: finished job %016llx changed %s -> "
                               "%s",
                               i, (unsigned long long)j->id,
                               fsm_status_name(j->final[i]),
                               fsm_status_name(job.status));
            }
            if (fsm_status_is_final(job.status)) {
                j->final[i] = job.status;
                for (unsigned o = 0; o < CLUSTER_N(f); o++) {
                    if (j->final[o] != 0 && j->final[o] != job.status) {
                        fsm_read_end(rd);
                        return violate(s,
                                       "job %016llx ended %s on server %u and "
                                       "%s on server %u",
                                       (unsigned long long)j->id,
                                       fsm_status_name(job.status), i,
                                       fsm_status_name(j->final[o]), o);
                    }
                }
            }
        }
        fsm_read_end(rd);
    }
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        if (check_runs(s, i) < 0) {
            return false;
        }
    }
    /* Equal applied index → equal state. */
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        for (unsigned o = i + 1; o < CLUSTER_N(f); o++) {
            uint64_t ai = fsm_applied_index(CLUSTER_FSM(f, i));
            uint64_t ao = fsm_applied_index(CLUSTER_FSM(f, o));
            if (ai == ao && ai > 0 &&
                cluster_fixture_digest(f, i) != cluster_fixture_digest(f, o)) {
                return violate(s,
                               "servers %u and %u differ at applied index %llu",
                               i, o, (unsigned long long)ai);
            }
        }
    }
    return true;
}

static bool all_final(struct sim *s, unsigned i)
{
    for (unsigned k = 0; k < s->n_jobs; k++) {
        struct fsm_job job;
        struct fsm_reader *rd;
        bool fin = false;
        if (fsm_read_begin(CLUSTER_FSM(s->f, i), &rd) == 0) {
            fin = fsm_get_job(rd, s->jobs[k].id, &job) == 0 &&
                  fsm_status_is_final(job.status);
            fsm_read_end(rd);
        }
        if (!fin) {
            return false;
        }
    }
    return true;
}

/* Why jobs did not finish: each unfinished job, and the workers. */
static void dump_unfinished(struct sim *s, unsigned leader)
{
    for (unsigned k = 0; leader < CLUSTER_N(s->f) && k < s->n_jobs; k++) {
        struct fsm_job j;
        if (cluster_fixture_get_job(s->f, leader, s->jobs[k].id, &j) == 0 &&
            !fsm_status_is_final(j.status)) {
            fprintf(stderr,
                    "job %016llx: %s worker %016llx token %llu attempts %u "
                    "run_at %lld\n",
                    (unsigned long long)j.id, fsm_status_name(j.status),
                    (unsigned long long)j.worker_id,
                    (unsigned long long)j.lease_token, (unsigned)j.attempts,
                    (long long)j.run_at);
            struct fsm_reader *rd;
            struct fsm_worker fw;
            if (fsm_read_begin(CLUSTER_FSM(s->f, leader), &rd) == 0) {
                if (fsm_get_worker(rd, j.worker_id, &fw) == 0) {
                    fprintf(stderr, "  its worker: down %d\n", fw.down);
                }
                fsm_read_end(rd);
            }
        }
    }
    for (unsigned wi = 0; wi < MAX_WORKERS; wi++) {
        struct sworker *w = &s->workers[wi];
        fprintf(stderr,
                "worker %u: state %d id %016llx held %u polling %d "
                "completing %d registering %d\n",
                wi, w->state, (unsigned long long)w->id, w->n_held, w->polling,
                w->completing, w->registering);
    }
}

/* ---- One seed -------------------------------------------------------------
 */

/* Why a seed failed: each server's raft state and configuration. */
static void dump(struct sim *s)
{
    for (unsigned i = 0; i < CLUSTER_N(s->f); i++) {
        struct raft *r = CLUSTER_RAFT(s->f, i);
        fprintf(stderr,
                "server %u: alive=%d state=%d term=%llu last_index=%llu "
                "commit=%llu applied=%llu voters:",
                i, CLUSTER_ALIVE(s->f, i), raft_state(r),
                (unsigned long long)r->current_term,
                (unsigned long long)raft_last_index(r),
                (unsigned long long)r->commit_index,
                (unsigned long long)raft_last_applied(r));
        for (unsigned k = 0; k < r->configuration.n; k++) {
            fprintf(stderr, " %llu/%d",
                    (unsigned long long)r->configuration.servers[k].id,
                    r->configuration.servers[k].role);
        }
        fprintf(stderr, "\n");
    }
}

static bool elect(struct sim *s, unsigned ms)
{
    for (unsigned t = 0; t < ms; t += 1000) {
        if (fixture_sched_step_until_has_leader(s->fs, 1000)) {
            return true;
        }
        shuffle_timeouts(s);
    }
    return false;
}

static bool run(struct sim *s)
{
    struct cluster_fixture *f;
    unsigned spares = s->membership && pick(s, 2) == 0 ? 1 : 0;
    unsigned n;

    s->voters = pick(s, 3) == 0 ? 5 : 3;
    f = s->f = cluster_fixture_create_spares(s->voters, spares);
    if (f == NULL) {
        return violate(s, "cannot create the fixture");
    }
    n = CLUSTER_N(f);
    shuffle_timeouts(s);
    for (unsigned i = 0; i < n; i++) {
        raft_set_pre_vote(CLUSTER_RAFT(f, i), true); /* As rotad. */
        raft_fixture_set_network_latency(&f->raft, i, 2 + pick(s, 20));
        raft_fixture_set_disk_latency(&f->raft, i, 1);
    }
    if (s->snapshots) {
        /* Snapshots (and installs to lagging servers) every few entries. */
        cluster_fixture_set_snapshot(f, 4 + pick(s, 16), 2 + pick(s, 4));
    }
    log_level = LOG_ERROR; /* The services warn of every worker down. */
    s->fs = fixture_sched_create(f, NULL, s->seed);
    if (s->fs == NULL) {
        return violate(s, "cannot create the services");
    }
    if (!fixture_sched_step_until_has_leader(s->fs, 10000)) {
        return violate(s, "no first leader");
    }
    start_workers(s, 2 + pick(s, 2));
    for (unsigned op = 0; op < s->ops; op++) {
        unsigned a = pick(s, 100);
        if (a < 40) {
            submit(s);
        } else if (a < 43) {
            stop_worker(s, true);
        } else if (a < 46) {
            stop_worker(s, false);
        } else if (a < 50) {
            cancel(s);
        } else if (a < 62) {
            fault(s);
        } else if (a < 65 && spares > 0) {
            membership(s, false);
        } else if (a < 70) {
            schedule(s);
        } else if (a < 72) {
            arm_fire_kill(s);
        }
        unsigned steps = 1 + pick(s, 30);
        for (unsigned k = 0; k < steps; k++) {
            fixture_sched_step(s->fs);
            fire_kill(s);
            if (k % 8 == 7) {
                workers_run(s);
            }
        }
        workers_run(s);
        mix(s, raft_fixture_time(&f->raft));
        if (!harvest(s) || (op % 8 == 0 && !check_nodes(s))) {
            return false;
        }
    }
    /* Heal; a leader within a bound; every job finished within a bound. */
    heal(s);
    s->armed = false;
    s->all_ok = true; /* Workers come back, succeed and drop nothing. */
    if (!elect(s, 20000)) {
        dump(s);
        return violate(s, "no leader 20 s after healing");
    }
    raft_time deadline = raft_fixture_time(&f->raft) + 120000;
    while (raft_fixture_time(&f->raft) < deadline) {
        bool members = membership(s, true); /* Every server a voter. */
        for (unsigned k = 0; k < 5; k++) {
            fixture_sched_step_until_elapsed(s->fs, 10);
            workers_run(s);
        }
        if (!harvest(s)) {
            return false;
        }
        unsigned leader = CLUSTER_LEADER(f);
        if (members && s->n_pending == 0 && leader < n &&
            all_final(s, leader)) {
            break;
        }
    }
    /* The services stop deciding (no more fires, polls answered empty):
     * what is in flight commits, then the servers must agree. */
    for (unsigned i = 0; i < n; i++) {
        sched_stop(FIXTURE_SCHED(s->fs, i));
    }
    /* Lagging servers catch up within a bound (a snapshot install whose
     * message was dropped is retried after raft's 30 s timeout). Without
     * cluster/raft_guard.h (--no-guard), raft 0.15 can leave a follower
     * behind the same leader forever: docs/reliability.md. */
    raft_time until = raft_fixture_time(&f->raft) + 60000;
    while (raft_fixture_time(&f->raft) < until) {
        fixture_sched_step_until_elapsed(s->fs, 200);
        bool same = true;
        for (unsigned i = 1; i < n && same; i++) {
            same = raft_last_applied(CLUSTER_RAFT(f, i)) ==
                   raft_last_applied(CLUSTER_RAFT(f, 0));
        }
        if (same) {
            break;
        }
    }
    fixture_sched_step_until_elapsed(s->fs, 500);
    if (!harvest(s) || !check_nodes(s)) {
        return false;
    }
    unsigned leader = CLUSTER_LEADER(f);
    if (leader >= n || !all_final(s, leader)) {
        dump_unfinished(s, leader);
        return violate(s, "jobs still unfinished 120 s after healing");
    }
    if (cluster_fixture_check_acked(f, 0) < 0) {
        return violate(s, "an acknowledged job is missing or different");
    }
    if (!cluster_fixture_check_converged(f, 0)) {
        for (unsigned i = 0; i < n; i++) {
            struct raft *r = CLUSTER_RAFT(f, i);
            fprintf(stderr,
                    "server %u: alive=%d state=%d last_index=%llu "
                    "commit=%llu applied=%llu\n",
                    i, CLUSTER_ALIVE(f, i), raft_state(r),
                    (unsigned long long)raft_last_index(r),
                    (unsigned long long)r->commit_index,
                    (unsigned long long)raft_last_applied(r));
            unsigned s0 = raft_fixture_n_send(&f->raft, i,
                                              RAFT_IO_APPEND_ENTRIES),
                     r0 = raft_fixture_n_recv(&f->raft, i,
                                              RAFT_IO_APPEND_ENTRIES),
                     r1 = raft_fixture_n_recv(&f->raft, i, 2);
            raft_fixture_step_until_elapsed(&f->raft, 1000);
            fprintf(
                stderr,
                "  1 s later: sent AE +%u, recv AE +%u, recv AER +%u; "
                "term %llu snapshot_index %llu commit %llu stored %llu "
                "(taking %llu, putting %d)\n",
                raft_fixture_n_send(&f->raft, i, RAFT_IO_APPEND_ENTRIES) - s0,
                raft_fixture_n_recv(&f->raft, i, RAFT_IO_APPEND_ENTRIES) - r0,
                raft_fixture_n_recv(&f->raft, i, 2) - r1,
                (unsigned long long)r->current_term,
                (unsigned long long)r->log.snapshot.last_index,
                (unsigned long long)r->commit_index,
                (unsigned long long)r->last_stored,
                (unsigned long long)r->snapshot.pending.term,
                r->snapshot.put.data != NULL);
            for (unsigned j = 0; j < n; j++) {
                if (j != i) {
                    fprintf(stderr, "  to %u: saturated=%d\n", j,
                            raft_fixture_saturated(&f->raft, i, j));
                }
            }
            for (unsigned k = 0;
                 raft_state(r) == RAFT_LEADER && k < r->configuration.n; k++) {
                struct raft_progress *p = &r->leader_state.progress[k];
                fprintf(stderr,
                        "  progress of %llu: state %u next %llu match %llu "
                        "snapshot %llu snapshot sent at %llu (now %llu)\n",
                        (unsigned long long)r->configuration.servers[k].id,
                        p->state, (unsigned long long)p->next_index,
                        (unsigned long long)p->match_index,
                        (unsigned long long)p->snapshot_index,
                        (unsigned long long)p->snapshot_last_send,
                        (unsigned long long)raft_fixture_time(&f->raft));
            }
        }
        return violate(s, "servers did not converge after healing");
    }
    for (unsigned i = 1; i < n; i++) {
        int r0 = check_runs(s, 0), ri = check_runs(s, i);
        if (r0 < 0 || ri < 0) {
            return false;
        }
        if (ri != r0) {
            return violate(s, "server %u records %d occurrences, server 0 %d",
                           i, ri, r0);
        }
    }
    if (!cluster_fixture_check_callbacks(f, false)) {
        return violate(s, "a request callback fired twice");
    }
    mix(s, cluster_fixture_digest(f, leader));
    return true;
}

static unsigned long long total_jobs, total_membership, total_fires,
    total_leases, total_unreceived, total_down, total_reclaimed, total_stale,
    total_actions;
static struct raft_guard_stats guard;

/* --expect TEXT: the run passes only if some seed fails with a violation
 * containing TEXT (to show that the checks catch a planted bug). */
static const char *expect;

/* --require-fix lowered|raised|rollbacks: fail unless the raft guard made
 * such a fix (so a test keeps exercising it when the sim changes). */
static const char *require_fix;
static unsigned expected_seen;

static bool snapshots_mode, membership_mode = true;

static bool run_seed(unsigned seed,
                     unsigned ops,
                     unsigned verbose,
                     uint64_t *trace)
{
    static struct sim s; /* Large: keep it off the stack. */
    memset(&s, 0, sizeof s);
    s.seed = seed;
    s.ops = ops;
    s.snapshots = snapshots_mode;
    s.membership = membership_mode;
    s.verbose = verbose;
    s.rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)seed * 0xBF58476D1CE4E5B9ULL);
    s.rng = s.rng != 0 ? s.rng : 1;
    s.trace = 14695981039346656037ULL;
    bool ok = run(&s);
    *trace = s.trace;
    raft_time end_time = s.f != NULL ? CLUSTER_TIME(s.f) : 0;
    unsigned long long ticks = s.fs != NULL ? s.fs->ticks : 0;
    for (unsigned i = 0; s.f != NULL && i < CLUSTER_N(s.f); i++) {
        struct raft_guard_stats gs;
        raft_guard_stats(&s.f->raft.servers[i].io, &gs);
        guard.clamped += gs.clamped;
        guard.raised += gs.raised;
        guard.rollbacks += gs.rollbacks;
        if (s.fs != NULL) {
            struct sched_stats st;
            sched_stats(FIXTURE_SCHED(s.fs, i), &st);
            total_fires += st.fired;
            total_down += st.lost;
            total_reclaimed += st.unreceived;
        }
    }
    total_membership += s.n_membership;
    total_jobs += s.n_jobs;
    total_leases += s.n_leases;
    total_unreceived += s.n_unreceived;
    total_stale += s.n_stale_sent;
    total_actions += s.n_actions;
    /* Every call's callback fires exactly once: the rest at shutdown. */
    fixture_sched_destroy(s.fs);
    if (ok && s.outstanding != 0) {
        ok = violate(&s, "%u sched callbacks never fired", s.outstanding);
    }
    if (!ok && expect != NULL && strstr(s.violation, expect) != NULL) {
        expected_seen++;
    }
    if (!ok) {
        fprintf(stderr,
                "seed %u FAILED: %s\n  replay: tests/sim/run --seed %u\n", seed,
                s.violation, seed);
    } else if (verbose) {
        fprintf(stderr,
                "seed %u ok: %u jobs, %llu ms virtual, %llu ticks, trace "
                "%016llx\n",
                seed, s.n_jobs, (unsigned long long)end_time, ticks,
                (unsigned long long)s.trace);
    }
    cluster_fixture_destroy(s.f);
    return ok;
}

int main(int argc, char **argv)
{
    unsigned first = 1, seeds = 100, ops = MAX_OPS_DEFAULT, verbose = 0;
    int single = -1;
    bool plant = false;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
            seeds = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--first") == 0 && i + 1 < argc) {
            first = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            single = (int)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc) {
            ops = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--plant") == 0 && i + 1 < argc &&
                   strcmp(argv[i + 1], "token") == 0) {
            plant = true;
            i++;
        } else if (strcmp(argv[i], "--plant") == 0 && i + 1 < argc &&
                   strcmp(argv[i + 1], "fire") == 0) {
            fsm_test_planted_bug = FSM_BUG_FIRE;
            i++;
        } else if (strcmp(argv[i], "--plant") == 0 && i + 1 < argc &&
                   strcmp(argv[i + 1], "ack") == 0) {
            cluster_fixture_plant_ack = true;
            i++;
        } else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc) {
            expect = argv[++i];
        } else if (strcmp(argv[i], "--no-membership") == 0) {
            membership_mode = false;
        } else if (strcmp(argv[i], "--require-fix") == 0 && i + 1 < argc) {
            require_fix = argv[++i];
        } else if (strcmp(argv[i], "--no-guard") == 0) {
            cluster_fixture_raft_guard = false;
        } else if (strcmp(argv[i], "--snapshots") == 0) {
            snapshots_mode = true;
        } else if (strcmp(argv[i], "-v") == 0) {
            verbose = 1;
        } else {
            fprintf(stderr,
                    "usage: sim [--seeds N] [--first S] [--seed S] [--ops N] "
                    "[--snapshots] [--no-membership] [--no-guard] [--plant "
                    "token|ack|fire] "
                    "[--expect TEXT] [--require-fix KIND] "
                    "[-v]\n");
            return 2;
        }
    }
    if (plant) {
        fsm_test_planted_bug = FSM_BUG_TOKEN;
    }
    if (single >= 0) {
        uint64_t t1, t2;
        bool ok = run_seed((unsigned)single, ops, 1, &t1);
        /* Replay: the same seed must do exactly the same. */
        bool ok2 = run_seed((unsigned)single, ops, 0, &t2);
        if (ok != ok2 || t1 != t2) {
            fprintf(stderr,
                    "seed %d is not deterministic: %016llx != %016llx\n",
                    single, (unsigned long long)t1, (unsigned long long)t2);
            return 1;
        }
        printf("%d passed, %d failed\n", ok ? 1 : 0, ok ? 0 : 1);
        return ok ? 0 : 1;
    }
    unsigned passed = 0, failed = 0;
    for (unsigned seed = first; seed < first + seeds; seed++) {
        uint64_t trace;
        if (run_seed(seed, ops, verbose, &trace)) {
            passed++;
        } else {
            failed++;
        }
        if ((seed - first + 1) % 100 == 0) {
            fprintf(stderr, "sim: %u/%u seeds, %u failed\n", seed - first + 1,
                    seeds, failed);
        }
    }
    fprintf(stderr,
            "sim: %u seeds, %llu acknowledged jobs, %llu membership changes; "
            "sched: %llu leases (%llu answers dropped), %llu released by "
            "worker-down, %llu reclaimed unreceived, %llu occurrences fired, "
            "%llu triggers, %llu stale results sent; "
            "raft guard %s: %llu results lowered, %llu raised, %llu "
            "rollbacks\n",
            seeds, total_jobs, total_membership, total_leases, total_unreceived,
            total_down, total_reclaimed, total_fires, total_actions,
            total_stale, cluster_fixture_raft_guard ? "on" : "off",
            guard.clamped, guard.raised, guard.rollbacks);
    if (require_fix != NULL) {
        unsigned long long n =
            strcmp(require_fix, "lowered") == 0  ? guard.clamped
            : strcmp(require_fix, "raised") == 0 ? guard.raised
                                                 : guard.rollbacks;
        if (n == 0) {
            fprintf(stderr, "sim: no raft guard fix of kind %s happened\n",
                    require_fix);
            failed++;
        }
    }
    if (expect != NULL) {
        /* Each seed that shows the expected violation is a pass. */
        printf("%u passed, %u failed (expected \"%s\" in %u seeds)\n",
               expected_seen > 0 ? 1 : 0, expected_seen > 0 ? 0 : 1, expect,
               expected_seen);
        return expected_seen > 0 ? 0 : 1;
    }
    printf("%u passed, %u failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
