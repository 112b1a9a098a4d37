/* Deterministic simulation: the real FSM on raft_fixture (in-memory network
 * and disk, virtual time), driven from one seed. Clients submit jobs with
 * idempotency keys (and resubmit them), simulated workers lease, complete
 * (sometimes with superseded tokens), crash and cancel; the network and the
 * servers fail (kill/revive, isolate, one-way drops, latency, election
 * timeouts); in half the seeds a spare server joins (raft_add, then
 * raft_assign as voter) and voters leave again (raft_remove, sometimes the
 * leader itself); leaders fire a cron schedule's occurrences (and stale
 * ones); --snapshots forces snapshot installs by a low threshold.
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
#include "fsm/internal.h"
#include "tests/lib/cluster_fixture.h"

#define MAX_JOBS 512
#define MAX_WORKERS 4
#define MAX_OPS_DEFAULT 160

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

/* A COMPLETE item we sent with a token already superseded at the time. */
struct stale
{
    struct cluster_req *req;
    unsigned item;
    uint64_t job, token;
};

struct sim
{
    struct cluster_fixture *f;
    uint64_t rng;
    unsigned seed, ops, verbose;
    uint64_t trace; /* Hash of what happened: equal on replay. */
    struct sjob jobs[MAX_JOBS];
    unsigned n_jobs;
    struct key keys[MAX_JOBS];
    unsigned n_keys;
    uint64_t workers[MAX_WORKERS];
    unsigned n_workers;
    struct
    {
        struct cluster_req *req;
        int key; /* SUBMIT: the idempotency key's number; else -1. */
    } pending[4096];
    unsigned n_pending;
    struct stale stale[1024];
    unsigned n_stale;
    char violation[512];
    bool snapshots;  /* Low snapshot threshold: installs to laggards. */
    bool membership; /* Half the seeds: a spare joins and voters leave. */
    unsigned voters; /* Voters at bootstrap; a spare may join and leave. */
    struct raft_change changes[64]; /* Until the fixture is destroyed. */
    unsigned n_changes;
    unsigned n_membership; /* Changes that raft accepted. */
    uint64_t sched;        /* A recurring job the leaders fire, or 0. */
    struct cluster_req *sched_req;
    unsigned n_fires;
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

/* ---- Client and worker actions ------------------------------------------ */

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

static void submit_items(struct sim *s,
                         unsigned i,
                         uint8_t type,
                         uint64_t id,
                         const struct fsm_item *items,
                         unsigned n,
                         unsigned *stale_at)
{
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = type;
    c.id = id;
    c.items = items;
    c.n_items = n;
    struct cluster_req *req = cluster_fixture_submit_cmds(s->f, i, &c, 1);
    track(s, req);
    for (unsigned k = 0; stale_at != NULL && k < n; k++) {
        if (stale_at[k] && req != NULL && req->rv == 0 && s->n_stale < 1024) {
            s->stale[s->n_stale++] =
                (struct stale){req, k, items[k].job_id, items[k].token};
        }
    }
}

static void register_worker(struct sim *s)
{
    unsigned leader = CLUSTER_LEADER(s->f);
    struct fsm_cmd c;
    if (leader >= CLUSTER_N(s->f) || s->n_workers == MAX_WORKERS) {
        return;
    }
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_WORKER_REG;
    c.worker.name.p = "w";
    c.worker.name.len = 1;
    c.worker.queues.p = "default";
    c.worker.queues.len = 7;
    c.worker.concurrency = 8;
    track(s, cluster_fixture_submit_cmds(s->f, leader, &c, 1));
}

struct scan
{
    struct sim *s;
    uint8_t status;
    uint64_t ids[16], tokens[16], workers[16];
    unsigned n;
};

static int scan_cb(void *data, const struct fsm_job *job)
{
    struct scan *sc = data;
    if (sc->n < 16) {
        sc->ids[sc->n] = job->id;
        sc->tokens[sc->n] = job->lease_token;
        sc->workers[sc->n] = job->worker_id;
        sc->n++;
    }
    return sc->n == 16;
}

/* Up to 16 jobs of @status on the leader, as its dispatcher would see. */
static unsigned scan(struct sim *s,
                     unsigned leader,
                     uint8_t status,
                     struct scan *sc)
{
    struct fsm_reader *rd;
    struct fsm_query q;
    char next[FSM_CURSOR_SIZE];
    memset(sc, 0, sizeof *sc);
    memset(&q, 0, sizeof q);
    q.status = status;
    q.limit = 16;
    if (fsm_read_begin(CLUSTER_FSM(s->f, leader), &rd) == 0) {
        fsm_list(rd, &q, scan_cb, sc, next);
        fsm_read_end(rd);
    }
    return sc->n;
}

static void assign(struct sim *s)
{
    unsigned leader = CLUSTER_LEADER(s->f);
    struct fsm_item items[16];
    struct scan sc;
    unsigned n;
    if (leader >= CLUSTER_N(s->f) || s->n_workers == 0) {
        return;
    }
    n = scan(s, leader, FSM_PENDING, &sc);
    n = n > 0 ? 1 + pick(s, n) : 0;
    memset(items, 0, sizeof items);
    for (unsigned k = 0; k < n; k++) {
        items[k].job_id = sc.ids[k];
        items[k].worker_id = s->workers[pick(s, s->n_workers)];
    }
    if (n > 0) {
        submit_items(s, leader, FSM_CMD_ASSIGN, 0, items, n, NULL);
    }
}

static void complete(struct sim *s, bool all_ok)
{
    unsigned leader = CLUSTER_LEADER(s->f);
    struct fsm_item items[17];
    unsigned stale_at[17] = {0};
    struct scan sc;
    unsigned n;
    if (leader >= CLUSTER_N(s->f)) {
        return;
    }
    n = scan(s, leader, FSM_RUNNING, &sc);
    n = n > 0 && !all_ok ? 1 + pick(s, n) : n;
    memset(items, 0, sizeof items);
    for (unsigned k = 0; k < n; k++) {
        items[k].job_id = sc.ids[k];
        items[k].token = sc.tokens[k];
        items[k].ok = all_ok || pick(s, 5) != 0;
        items[k].retryable = 1;
        /* A paused worker's late result: a superseded token. */
        if (!all_ok && sc.tokens[k] > 1 && pick(s, 5) == 0) {
            items[k].token = sc.tokens[k] - 1 - pick(s, 3);
            stale_at[k] = 1;
        }
    }
    if (n > 0 && !all_ok && pick(s, 4) == 0) {
        /* The same result twice in one entry: the second is stale. */
        items[n] = items[0];
        stale_at[n] = 1;
        n++;
    }
    if (n > 0) {
        submit_items(s, leader, FSM_CMD_COMPLETE, 0, items, n, stale_at);
    }
}

static void crash_worker(struct sim *s)
{
    unsigned leader = CLUSTER_LEADER(s->f);
    struct fsm_item items[16];
    struct scan sc;
    uint64_t w;
    unsigned n = 0;
    if (leader >= CLUSTER_N(s->f) || s->n_workers == 0) {
        return;
    }
    w = s->workers[pick(s, s->n_workers)];
    scan(s, leader, FSM_RUNNING, &sc);
    memset(items, 0, sizeof items);
    for (unsigned k = 0; k < sc.n; k++) {
        if (sc.workers[k] == w) {
            items[n].job_id = sc.ids[k];
            items[n].token = sc.tokens[k];
            n++;
        }
    }
    submit_items(s, leader, FSM_CMD_WORKER_DOWN, w, items, n, NULL);
}

static void cancel(struct sim *s)
{
    unsigned leader = CLUSTER_LEADER(s->f);
    struct fsm_cmd c;
    if (leader >= CLUSTER_N(s->f) || s->n_jobs == 0) {
        return;
    }
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_CANCEL;
    c.id = s->jobs[pick(s, s->n_jobs)].id;
    track(s, cluster_fixture_submit_cmds(s->f, leader, &c, 1));
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
 * One recurring job ("every minute"). Leaders fire its current occurrence,
 * and sometimes an older one, as a leader deciding from a stale state
 * would: each occurrence must be recorded once, on every server. */

#define SCHED_FIRST (CLUSTER_EPOCH_MS + 60000)
#define SCHED_EVERY 60000

static void schedule_submit(struct sim *s)
{
    unsigned leader = CLUSTER_LEADER(s->f);
    if (s->sched != 0 || leader >= CLUSTER_N(s->f) ||
        (s->sched_req != NULL && !s->sched_req->done)) {
        return;
    }
    s->sched_req =
        cluster_fixture_submit_schedule(s->f, leader, SCHED_FIRST, "schedule");
    track(s, s->sched_req);
}

static void fire(struct sim *s)
{
    unsigned leader = CLUSTER_LEADER(s->f);
    struct fsm_reader *rd;
    struct fsm_job job;
    struct fsm_item it;
    int rv = -1;
    if (s->sched == 0 || leader >= CLUSTER_N(s->f)) {
        schedule_submit(s);
        return;
    }
    if (fsm_read_begin(CLUSTER_FSM(s->f, leader), &rd) == 0) {
        rv = fsm_get_job(rd, s->sched, &job);
        fsm_read_end(rd);
    }
    if (rv != 0) {
        return; /* Not applied here yet. */
    }
    memset(&it, 0, sizeof it);
    it.job_id = s->sched;
    it.nominal = job.run_at;
    if (pick(s, 4) == 0 && job.run_at > SCHED_FIRST) {
        /* A stale decision: an occurrence already fired. */
        it.nominal = job.run_at - SCHED_EVERY * (1 + pick(s, 2));
    }
    it.next_at = it.nominal + SCHED_EVERY;
    it.action = FSM_FIRE_RUN;
    s->n_fires++;
    submit_items(s, leader, FSM_CMD_FIRE, 0, &it, 1, NULL);
}

struct runs
{
    uint64_t sched;
    int64_t nominal[256];
    unsigned n, with_job, children;
    bool dup;
};

static int runs_cb(void *data, const struct fsm_run *run)
{
    struct runs *r = data;
    for (unsigned k = 0; k < r->n; k++) {
        r->dup |= r->nominal[k] == run->nominal;
    }
    if (r->n < 256) {
        r->nominal[r->n++] = run->nominal;
    }
    r->with_job += run->job_id != 0;
    return 0;
}

static int children_cb(void *data, const struct fsm_job *job)
{
    struct runs *r = data;
    r->children += (job->flags & FSM_JOB_RUN) && job->parent == r->sched;
    return 0;
}

/* Occurrences recorded on server @i (each once), or -1 after a violation. */
static int check_runs(struct sim *s, unsigned i)
{
    struct fsm_reader *rd;
    struct runs r;
    if (s->sched == 0) {
        return 0;
    }
    struct fsm_query q;
    char cursor[FSM_CURSOR_SIZE], next[FSM_CURSOR_SIZE];
    memset(&r, 0, sizeof r);
    r.sched = s->sched;
    if (fsm_read_begin(CLUSTER_FSM(s->f, i), &rd) != 0) {
        return 0;
    }
    fsm_runs(rd, s->sched, 0, runs_cb, &r);
    memset(&q, 0, sizeof q);
    q.limit = 1000;
    do { /* Every job: the runs the schedule created. */
        next[0] = '\0';
        fsm_list(rd, &q, children_cb, &r, next);
        memcpy(cursor, next, sizeof cursor);
        q.cursor = cursor;
    } while (cursor[0] != '\0');
    fsm_read_end(rd);
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

/* Results of finished requests: acknowledged submits, workers, stale
 * completions. */
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
    /* Stale completions must never be accepted. */
    for (unsigned k = 0; k < s->n_stale; k++) {
        struct stale *st = &s->stale[k];
        if (!st->req->done) {
            continue;
        }
        if (st->req->status == 0 && st->req->results[0].code == 0 &&
            st->item < st->req->results[0].n_ids &&
            st->req->results[0].existed[st->item] == FSM_ITEM_OK) {
            return violate(s,
                           "stale completion accepted: job %016llx token %llu "
                           "(entry %llu)",
                           (unsigned long long)st->job,
                           (unsigned long long)st->token,
                           (unsigned long long)st->req->index);
        }
        s->stale[k--] = s->stale[--s->n_stale];
    }
    return true;
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

/* Workers registered by the leader: read them from its FSM. */
static void worker_cb(void *data, const struct fsm_worker *w)
{
    struct sim *s = data;
    for (unsigned i = 0; i < s->n_workers; i++) {
        if (s->workers[i] == w->id) {
            return;
        }
    }
    if (!w->down && s->n_workers < MAX_WORKERS) {
        s->workers[s->n_workers++] = w->id;
    }
}

static void refresh_workers(struct sim *s)
{
    unsigned leader = CLUSTER_LEADER(s->f);
    struct fsm_reader *rd;
    if (leader >= CLUSTER_N(s->f) ||
        fsm_read_begin(CLUSTER_FSM(s->f, leader), &rd) != 0) {
        return;
    }
    s->n_workers = 0;
    fsm_workers(rd, worker_cb, s);
    fsm_read_end(rd);
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
        if (raft_fixture_step_until_has_leader(&s->f->raft, 1000)) {
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
    if (!raft_fixture_step_until_has_leader(&f->raft, 10000)) {
        return violate(s, "no first leader");
    }
    for (unsigned op = 0; op < s->ops; op++) {
        unsigned a = pick(s, 100);
        if (s->n_workers < 2 && a < 50) {
            register_worker(s);
        } else if (a < 35) {
            submit(s);
        } else if (a < 55) {
            assign(s);
        } else if (a < 72) {
            complete(s, false);
        } else if (a < 75) {
            crash_worker(s);
        } else if (a < 78) {
            cancel(s);
        } else if (a < 88) {
            fault(s);
        } else if (a < 91 && spares > 0) {
            membership(s, false);
        } else if (a < 95) {
            fire(s);
        }
        unsigned steps = 1 + pick(s, 30);
        for (unsigned k = 0; k < steps; k++) {
            raft_fixture_step(&f->raft);
        }
        mix(s, raft_fixture_time(&f->raft));
        refresh_workers(s);
        if (!harvest(s) || (op % 8 == 0 && !check_nodes(s))) {
            return false;
        }
    }
    /* Heal; a leader within a bound; every job finished within a bound. */
    heal(s);
    if (!elect(s, 20000)) {
        dump(s);
        return violate(s, "no leader 20 s after healing");
    }
    raft_time deadline = raft_fixture_time(&f->raft) + 120000;
    while (raft_fixture_time(&f->raft) < deadline) {
        bool members = membership(s, true); /* Every server a voter. */
        if (s->n_workers == 0) {
            register_worker(s);
        }
        assign(s);
        complete(s, true);
        raft_fixture_step_until_elapsed(&f->raft, 50);
        refresh_workers(s);
        if (!harvest(s)) {
            return false;
        }
        unsigned leader = CLUSTER_LEADER(f);
        if (members && s->n_pending == 0 && leader < n &&
            all_final(s, leader)) {
            break;
        }
    }
    /* Lagging servers catch up within a bound (a snapshot install whose
     * message was dropped is retried after raft's 30 s timeout). Without
     * cluster/raft_guard.h (--no-guard), raft 0.15 can leave a follower
     * behind the same leader forever: docs/reliability.md. */
    raft_time until = raft_fixture_time(&f->raft) + 60000;
    while (raft_fixture_time(&f->raft) < until) {
        raft_fixture_step_until_elapsed(&f->raft, 200);
        bool same = true;
        for (unsigned i = 1; i < n && same; i++) {
            same = raft_last_applied(CLUSTER_RAFT(f, i)) ==
                   raft_last_applied(CLUSTER_RAFT(f, 0));
        }
        if (same) {
            break;
        }
    }
    raft_fixture_step_until_elapsed(&f->raft, 500);
    if (!harvest(s) || !check_nodes(s)) {
        return false;
    }
    unsigned leader = CLUSTER_LEADER(f);
    if (leader >= n || !all_final(s, leader)) {
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

static unsigned long long total_jobs, total_membership, total_fires;
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
    for (unsigned i = 0; s.f != NULL && i < CLUSTER_N(s.f); i++) {
        struct raft_guard_stats gs;
        raft_guard_stats(&s.f->raft.servers[i].io, &gs);
        guard.clamped += gs.clamped;
        guard.raised += gs.raised;
        guard.rollbacks += gs.rollbacks;
    }
    total_membership += s.n_membership;
    total_fires += s.n_fires;
    total_jobs += s.n_jobs;
    if (!ok && expect != NULL && strstr(s.violation, expect) != NULL) {
        expected_seen++;
    }
    if (!ok) {
        fprintf(stderr,
                "seed %u FAILED: %s\n  replay: tests/sim/run --seed %u\n", seed,
                s.violation, seed);
    } else if (verbose) {
        fprintf(stderr, "seed %u ok: %u jobs, trace %016llx\n", seed, s.n_jobs,
                (unsigned long long)s.trace);
    }
    if (s.f != NULL) {
        cluster_fixture_destroy(s.f);
    }
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
                    "token|ack] "
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
            "sim: %u seeds, %llu acknowledged jobs, %llu membership changes, "
            "%llu schedule fires; "
            "raft guard %s: %llu results lowered, %llu raised, %llu "
            "rollbacks\n",
            seeds, total_jobs, total_membership, total_fires,
            cluster_fixture_raft_guard ? "on" : "off", guard.clamped,
            guard.raised, guard.rollbacks);
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
