/* Workers and the leader's services: registration, long-poll leases
 * (dispatcher), heartbeats (liveness), completions, and the clock that
 * promotes due scheduled jobs.
 *
 * Only the leader runs these (followers forward every /v1/workers request).
 * Heartbeat deadlines live in leader memory, never in the log; a worker
 * that misses its deadline is declared down by ONE committed WORKER_DOWN
 * command carrying its leases, which go back through the retry policy. A
 * new leader gives every known worker a fresh deadline plus grace first.
 *
 * Dispatch: lease requests wait in a FIFO list. A 5 ms tick (while leader)
 * matches them with the ready index (queue, priority, age), capped by each
 * worker's free capacity, and proposes ONE ASSIGN entry for all of them;
 * one ASSIGN is in flight at a time, so no job is proposed twice. Answers
 * go out once the entry is applied, with each job's fencing token. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_MODULE "workers"
#include "common/err.h"
#include "common/list.h"
#include "common/log.h"
#include "http/internal.h"
#include "http/policy.h"

#define TICK_MS 5
/* Heartbeat every TTL/5; a new leader adds GRACE (TTL/2) to every worker's
 * first deadline. */
#define TTL_MS ((int64_t)sc_ttl)
#define HEARTBEAT_MS ((int)(sc_ttl / 5))
#define GRACE_MS ((int64_t)sc_ttl / 2)
#define MAX_WAIT_MS 4000 /* Below the forwarding deadline (5 s). */
/* A burst of due jobs is promoted and leased in few entries: up to
 * MAX_ITEMS items per PROMOTE/ASSIGN/FIRE entry, MAX_LEASES per poll. */
#define MAX_LEASES 1024
#define MAX_ITEMS 4096
#define MAX_RESULTS 1000 /* Results in one completion request. */
#define MAX_RELEASE 1000 /* Leases released per WORKER_DOWN entry. */
#define RETENTION_BATCH_MAX 500

struct waiter
{
    struct list link;
    struct call *call;
    uint64_t worker;
    unsigned max;
    int64_t deadline;
    unsigned got; /* Jobs proposed for it in the in-flight ASSIGN. */
};

struct live
{
    uint64_t id;
    int64_t deadline;
    bool down_proposed;
    /* The leases the worker reported in its last heartbeat (sorted) and
     * when: see reclaim(). */
    uint64_t *reported;
    size_t n_reported;
    int64_t reported_at;
};

struct sched
{
    struct http_server *s;
    uv_timer_t tick;
    struct list waiters;
    bool leader;
    bool assign_busy;
    bool promote_busy;
    bool fire_busy;
    bool retain_busy;
    int64_t retained_at;
    /* Item buffers of the clock (one command of each in flight). */
    struct fsm_item promote_items[MAX_ITEMS];
    struct fsm_item fire_items[MAX_ITEMS];
    struct fsm_item retain_items[RETENTION_BATCH_MAX];
    struct fsm_item reclaim_items[MAX_RELEASE];
    bool reclaim_busy;
    int64_t reclaimed_at;
    char reasons[MAX_ITEMS][HTTP_REASON_SIZE];
    unsigned long long fired, expired, unreceived;
    struct live *live;
    unsigned n_live, cap_live;
    /* Metrics (this node while leader). */
    unsigned long long started, completed, failed, lost;
    unsigned long long duration_buckets[12];
    double duration_sum;
    unsigned long long duration_count;
};

static const double buckets_s[12] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                     0.5,   1,    2.5,   5,    10,  60};

static unsigned sc_ttl = 10000; /* From http_config.worker_ttl. */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Liveness table ------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static struct live *live_find(struct sched *sc, uint64_t id)
{
    for (unsigned i = 0; i < sc->n_live; i++) {
        if (sc->live[i].id == id) {
            return &sc->live[i];
        }
    }
    return NULL;
}

static struct live *live_touch(struct sched *sc, uint64_t id, int64_t until)
{
    struct live *l = live_find(sc, id);
    if (l == NULL) {
        if (sc->n_live == sc->cap_live) {
            unsigned cap = sc->cap_live == 0 ? 16 : sc->cap_live * 2;
            struct live *p = realloc(sc->live, cap * sizeof *p);
            if (p == NULL) {
                return NULL;
            }
            sc->live = p;
            sc->cap_live = cap;
        }
        l = &sc->live[sc->n_live++];
        memset(l, 0, sizeof *l);
        l->id = id;
    }
    l->deadline = until;
    return l;
}

static void grant_all_cb(void *data, const struct fsm_worker *w)
{
    struct sched *sc = data;
    if (!w->down) {
        live_touch(sc, w->id, now_ms() + TTL_MS + GRACE_MS);
    }
}

/* ---- Backoff (leader only: jitter is drawn here, apply only uses it) ---- */

static int64_t retry_at(const struct fsm_job *job, int64_t now)
{
    double initial = 1000, mult = 2, max = 3600000, jitter = 0;
    json_t *spec = job->spec.len > 0
                       ? json_loadb(job->spec.p, job->spec.len, 0, NULL)
                       : NULL;
    json_t *b = json_object_get(spec, "backoff");
    int64_t ms;

    if (json_is_object(b)) {
        json_t *v;
        if ((v = json_object_get(b, "initial")) != NULL &&
            http__parse_duration(v, &ms) == 0) {
            initial = (double)ms;
        }
        if ((v = json_object_get(b, "max")) != NULL &&
            http__parse_duration(v, &ms) == 0) {
            max = (double)ms;
        }
        if (json_is_number(v = json_object_get(b, "multiplier"))) {
            mult = json_number_value(v);
        }
        if (json_is_number(v = json_object_get(b, "jitter"))) {
            jitter = json_number_value(v);
        }
    }
    json_decref(spec);
    /* u in [0, 1): drawn here, on the leader; apply only sees the time. */
    double u = (double)random() / ((double)RAND_MAX + 1.0);
    return now +
           policy_backoff_ms(job->attempts, initial, mult, max, jitter, u);
}

/* Exit codes the job lists in no_retry_exit_codes fail it at once. */
static bool no_retry_exit_code(const struct fsm_job *job, int32_t code)
{
    bool found = false;
    if (job->spec.len == 0 ||
        memmem(job->spec.p, job->spec.len, "no_retry_exit_codes", 19) == NULL) {
        return false;
    }
    json_t *spec = json_loadb(job->spec.p, job->spec.len, 0, NULL);
    json_t *codes = json_object_get(spec, "no_retry_exit_codes"), *v;
    size_t i;
    json_array_foreach(codes, i, v)
    {
        found |= json_is_integer(v) && json_integer_value(v) == code;
    }
    json_decref(spec);
    return found;
}

/* ---- Submitting item commands ------------------------------------------- */

static int submit_items(struct http_server *s,
                        uint8_t type,
                        uint64_t id,
                        const struct fsm_item *items,
                        uint32_t n,
                        cluster_submit_cb cb,
                        void *data)
{
    struct fsm_cmd cmd;
    void *buf;
    size_t len;
    int rv;

    memset(&cmd, 0, sizeof cmd);
    cmd.type = type;
    cmd.id = id;
    cmd.items = items;
    cmd.n_items = n;
    rv = fsm_cmd_encode(&cmd, &buf, &len);
    if (rv != 0) {
        return rv;
    }
    rv = cluster_submit(s->cluster, buf, len, cb, data);
    free(buf);
    return rv;
}

/* ---- Dispatch ------------------------------------------------------------ */

/* Aging: a pending job gains one priority level per --priority-aging
 * seconds waited (default 60), so a flood of high-priority work cannot
 * starve older low-priority jobs. */
#define MAX_LEVELS 32 /* Priority levels considered per queue for aging. */
#define MAX_CANDS (MAX_LEASES + 4 * MAX_LEVELS + 64) /* Per waiter. */

struct candidate
{
    uint64_t id;
    int64_t eff; /* Effective priority: priority + age / AGING_MS. */
    int64_t created;
    struct fsm_str ckey;
    uint32_t ckey_limit;
    unsigned queue; /* Index in the round's queue states. */
};

/* What one dispatch round knows (all borrowed from its read txn). */
struct qstate
{
    struct fsm_str name;
    bool paused;
    uint32_t concurrency;
    uint64_t running;
    unsigned picked;
};

struct ckey_count
{
    struct fsm_str key;
    unsigned n;
};

struct round
{
    struct fsm_reader *rd;
    int64_t now;
    struct
    {
        uint64_t worker;
        unsigned n;
    } * wrun;
    unsigned n_wrun, cap_wrun;
    struct ckey_count *ck;
    unsigned n_ck, cap_ck;
    struct qstate *qs;
    unsigned n_qs, cap_qs;
    const uint64_t *taken;
    unsigned n_taken;
    int64_t aging_ms;
};

static struct ckey_count *ckey_find(struct round *r,
                                    struct fsm_str key,
                                    bool add)
{
    for (unsigned i = 0; i < r->n_ck; i++) {
        if (r->ck[i].key.len == key.len &&
            memcmp(r->ck[i].key.p, key.p, key.len) == 0) {
            return &r->ck[i];
        }
    }
    if (!add) {
        return NULL;
    }
    if (r->n_ck == r->cap_ck) {
        unsigned cap = r->cap_ck ? r->cap_ck * 2 : 64;
        struct ckey_count *ck = realloc(r->ck, cap * sizeof *ck);
        if (ck == NULL) {
            return NULL;
        }
        r->ck = ck;
        r->cap_ck = cap;
    }
    r->ck[r->n_ck].key = key;
    r->ck[r->n_ck].n = 0;
    return &r->ck[r->n_ck++];
}

static int round_running_cb(void *data, const struct fsm_job *job)
{
    struct round *r = data;
    unsigned i;
    for (i = 0; i < r->n_wrun && r->wrun[i].worker != job->worker_id; i++) {
    }
    if (i == r->n_wrun) {
        if (r->n_wrun == r->cap_wrun) {
            unsigned cap = r->cap_wrun ? r->cap_wrun * 2 : 16;
            void *w = realloc(r->wrun, cap * sizeof *r->wrun);
            if (w == NULL) {
                return 0;
            }
            r->wrun = w;
            r->cap_wrun = cap;
        }
        r->wrun[i].worker = job->worker_id;
        r->wrun[i].n = 0;
        r->n_wrun++;
    }
    r->wrun[i].n++;
    if (job->ckey.len > 0) {
        struct ckey_count *c = ckey_find(r, job->ckey, true);
        if (c != NULL) {
            c->n++;
        }
    }
    return 0;
}

static unsigned worker_running(struct round *r, uint64_t worker)
{
    for (unsigned i = 0; i < r->n_wrun; i++) {
        if (r->wrun[i].worker == worker) {
            return r->wrun[i].n;
        }
    }
    return 0;
}

static int qstate_of(struct round *r, struct fsm_str name)
{
    for (unsigned i = 0; i < r->n_qs; i++) {
        if (r->qs[i].name.len == name.len &&
            memcmp(r->qs[i].name.p, name.p, name.len) == 0) {
            return (int)i;
        }
    }
    if (r->n_qs == r->cap_qs) {
        unsigned cap = r->cap_qs ? r->cap_qs * 2 : 8;
        struct qstate *qs = realloc(r->qs, cap * sizeof *qs);
        if (qs == NULL) {
            return -1;
        }
        r->qs = qs;
        r->cap_qs = cap;
    }
    struct fsm_queue q;
    uint64_t counts[8];
    if (fsm_get_queue(r->rd, name, &q, counts) != 0) {
        return -1;
    }
    struct qstate *st = &r->qs[r->n_qs];
    st->name = name;
    st->paused = q.paused;
    st->concurrency = q.concurrency;
    st->running = counts[FSM_RUNNING];
    st->picked = 0;
    return (int)r->n_qs++;
}

/* Room left in queue @qi this round (UINT32_MAX: no cap). */
static unsigned queue_room(const struct qstate *q)
{
    if (q->paused) {
        return 0;
    }
    if (q->concurrency == 0) {
        return UINT32_MAX;
    }
    uint64_t used = q->running + q->picked;
    return used >= q->concurrency ? 0 : (unsigned)(q->concurrency - used);
}

static bool ckey_full(struct round *r, struct fsm_str key, uint32_t limit)
{
    struct ckey_count *c;
    if (key.len == 0) {
        return false;
    }
    c = ckey_find(r, key, false);
    return c != NULL && c->n >= (limit > 0 ? limit : 1);
}

struct pick
{
    struct round *r;
    struct candidate *c;
    unsigned n, max; /* Gathered so far / room in @c. */
    unsigned want;   /* Stop after this many from this walk. */
    unsigned got;
    unsigned budget; /* Index entries to examine at most. */
    unsigned queue;
    unsigned first; /* Candidates of this queue start here. */
};

static int pick_cb(void *data, const struct fsm_job *job)
{
    struct pick *p = data;
    struct round *r = p->r;
    if (p->budget-- == 0 || p->got == p->want || p->n == p->max) {
        return 1;
    }
    for (unsigned i = 0; i < r->n_taken; i++) {
        if (r->taken[i] == job->id) {
            return 0;
        }
    }
    for (unsigned i = p->first; i < p->n; i++) {
        if (p->c[i].id == job->id) {
            return 0; /* A level head already gathered. */
        }
    }
    if (ckey_full(r, job->ckey, job->ckey_limit)) {
        return 0;
    }
    struct candidate *c = &p->c[p->n++];
    int64_t age = r->now - job->created_at;
    c->id = job->id;
    c->eff = policy_effective_priority(job->priority, age, r->aging_ms);
    c->created = job->created_at;
    c->ckey = job->ckey;
    c->ckey_limit = job->ckey_limit;
    c->queue = p->queue;
    p->got++;
    return 0;
}

static int cmp_candidate(const void *a, const void *b)
{
    const struct candidate *x = a, *y = b;
    if (x->eff != y->eff) {
        return x->eff > y->eff ? -1 : 1;
    }
    if (x->created != y->created) {
        return x->created < y->created ? -1 : 1;
    }
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Choose up to @cap jobs for one waiter from the queues @queues
 * (comma-separated), best effective priority first, within queue
 * (paused, concurrency) and concurrency-key limits. Writes their ids to
 * @out and returns how many. */
static unsigned choose(struct round *r,
                       struct fsm_str queues,
                       unsigned cap,
                       struct candidate *cands,
                       uint64_t *out)
{
    struct pick p;
    const char *q = queues.p, *end = queues.p + queues.len;
    unsigned chosen = 0;

    memset(&p, 0, sizeof p);
    p.r = r;
    p.c = cands;
    p.max = MAX_CANDS;
    while (q < end && p.n < p.max) {
        const char *comma = memchr(q, ',', (size_t)(end - q));
        const char *stop = comma != NULL ? comma : end;
        struct fsm_str name = {q, (uint32_t)(stop - q)};
        int qi = name.len > 0 ? qstate_of(r, name) : -1;
        q = stop + 1;
        if (qi < 0) {
            continue;
        }
        unsigned room = queue_room(&r->qs[qi]);
        if (room == 0) {
            continue;
        }
        p.queue = (unsigned)qi;
        p.first = p.n;
        /* The oldest of each level (aging), then the head of the index. */
        p.want = MAX_LEVELS;
        p.got = 0;
        p.budget = MAX_LEVELS;
        fsm_ready_heads(r->rd, name, MAX_LEVELS, pick_cb, &p);
        p.want = room < cap ? room : cap;
        p.got = 0;
        p.budget = p.want * 4 + 64;
        fsm_ready(r->rd, name, pick_cb, &p);
    }
    qsort(cands, p.n, sizeof cands[0], cmp_candidate);
    for (unsigned i = 0; i < p.n && chosen < cap; i++) {
        struct candidate *c = &cands[i];
        struct qstate *qs = &r->qs[c->queue];
        if (queue_room(qs) == 0 || ckey_full(r, c->ckey, c->ckey_limit)) {
            continue;
        }
        qs->picked++;
        if (c->ckey.len > 0) {
            struct ckey_count *k = ckey_find(r, c->ckey, true);
            if (k != NULL) {
                k->n++;
            }
        }
        out[chosen++] = c->id;
    }
    return chosen;
}

struct running_count
{
    uint64_t worker;
    unsigned n;
};

static int count_running_cb(void *data, const struct fsm_job *job)
{
    struct running_count *rc = data;
    rc->n += job->worker_id == rc->worker;
    return 0;
}

struct assign_batch
{
    struct sched *sc;
    struct waiter **waiters; /* Those that got jobs, in item order. */
    unsigned n_waiters;
};

static void answer_leases(struct sched *sc,
                          struct waiter *w,
                          const struct fsm_result *res,
                          unsigned first,
                          unsigned n)
{
    h2o_req_t *req = http__call_finish(w->call);
    struct fsm_reader *rd;
    struct sb b;
    unsigned out = 0;

    list_remove(&w->link);
    free(w);
    if (req == NULL) {
        return; /* The worker went away: its leases expire with it. */
    }
    http__sb_init(&b, &req->pool);
    http__sb_puts(&b, "{\"leases\":[");
    if (res != NULL && fsm_read_begin(cluster_fsm(sc->s->cluster), &rd) == 0) {
        for (unsigned i = first; i < first + n && i < res->n_ids; i++) {
            struct fsm_job job;
            if (res->existed[i] != FSM_ITEM_OK ||
                fsm_get_job(rd, res->ids[i], &job) != 0) {
                continue;
            }
            http__sb_puts(&b, out++ > 0 ? ",{\"job\":" : "{\"job\":");
            http__job_write(&b, &job);
            http__sb_printf(&b, ",\"token\":%llu,\"attempt\":%u}",
                            (unsigned long long)job.lease_token, job.attempts);
            sc->started++;
        }
        fsm_read_end(rd);
    }
    http__sb_puts(&b, "]}");
    http__send_sb(req, 200, &b, 0);
}

static void assigned_cb(void *data, int status, const struct fsm_result *res)
{
    struct assign_batch *ab = data;
    struct sched *sc = ab->sc;
    unsigned first = 0;

    sc->assign_busy = false;
    for (unsigned i = 0; i < ab->n_waiters; i++) {
        struct waiter *w = ab->waiters[i];
        unsigned n = w->got;
        w->got = 0;
        if (status != 0 || res->code != 0) {
            continue; /* Stays waiting; the next tick tries again. */
        }
        answer_leases(sc, w, res, first, n);
        first += n;
    }
    free(ab->waiters);
    free(ab);
}

static void dispatch(struct sched *sc)
{
    struct fsm_item *items;
    struct waiter **ws;
    uint64_t *taken;
    struct candidate *cands;
    unsigned n_items = 0, n_ws = 0, n_wait = 0;
    struct round r;
    struct list *it;

    if (sc->assign_busy || list_empty(&sc->waiters)) {
        return;
    }
    LIST_FOREACH (it, &sc->waiters) {
        n_wait++;
    }
    memset(&r, 0, sizeof r);
    r.now = now_ms();
    r.aging_ms = (int64_t)sc->s->cfg.aging_s * 1000;
    items = calloc(MAX_ITEMS, sizeof *items);
    taken = calloc(MAX_ITEMS, sizeof *taken);
    cands = calloc(MAX_CANDS, sizeof *cands);
    ws = calloc(n_wait, sizeof *ws);
    if (items == NULL || taken == NULL || ws == NULL || cands == NULL ||
        fsm_read_begin(cluster_fsm(sc->s->cluster), &r.rd) != 0) {
        free(items);
        free(taken);
        free(cands);
        free(ws);
        return;
    }
    /* One pass over running jobs: per-worker load, per-key counts. */
    fsm_running(r.rd, round_running_cb, &r);
    r.taken = taken;
    LIST_FOREACH (it, &sc->waiters) {
        struct waiter *w = CONTAINER_OF(it, struct waiter, link);
        struct fsm_worker wk;
        unsigned cap, running;

        if (n_items == MAX_ITEMS || fsm_get_worker(r.rd, w->worker, &wk) != 0 ||
            wk.down) {
            continue;
        }
        running = worker_running(&r, w->worker);
        cap = running >= wk.concurrency ? 0 : wk.concurrency - running;
        cap = cap < w->max ? cap : w->max;
        cap = cap < MAX_ITEMS - n_items ? cap : MAX_ITEMS - n_items;
        if (cap == 0) {
            continue;
        }
        r.n_taken = n_items;
        w->got = choose(&r, wk.queues, cap, cands, taken + n_items);
        for (unsigned i = 0; i < w->got; i++) {
            items[n_items].job_id = taken[n_items];
            items[n_items].worker_id = w->worker;
            n_items++;
        }
        if (w->got > 0) {
            ws[n_ws++] = w;
        }
    }
    fsm_read_end(r.rd);
    free(r.wrun);
    free(r.ck);
    free(r.qs);
    free(taken);
    free(cands);
    if (n_items > 0) {
        struct assign_batch *ab = malloc(sizeof *ab);
        ab->sc = sc;
        ab->waiters = ws;
        ab->n_waiters = n_ws;
        if (submit_items(sc->s, FSM_CMD_ASSIGN, 0, items, n_items, assigned_cb,
                         ab) == 0) {
            sc->assign_busy = true;
            ws = NULL;
        } else {
            for (unsigned i = 0; i < n_ws; i++) {
                ws[i]->got = 0;
            }
            free(ab);
        }
    }
    free(ws);
    free(items);
}

/* ---- Liveness and the clock ---------------------------------------------- */

struct down_ctx
{
    uint64_t worker;
    struct fsm_item *items;
    unsigned n, cap;
    int64_t now;
};

static int collect_leases_cb(void *data, const struct fsm_job *job)
{
    struct down_ctx *d = data;
    if (job->worker_id != d->worker || d->n == d->cap) {
        return 0;
    }
    d->items[d->n].job_id = job->id;
    d->items[d->n].token = job->lease_token;
    d->items[d->n].retry_at = retry_at(job, d->now);
    d->n++;
    return 0;
}

static void down_done_cb(void *data, int status, const struct fsm_result *res)
{
    struct sched *sc = data;
    (void)sc;
    if (status == 0 && res->code == 0) {
        for (uint32_t i = 0; i < res->n_ids; i++) {
            sc->lost += res->existed[i] == FSM_ITEM_OK;
        }
    }
}

/* Release every lease of @worker through the retry policy: WORKER_DOWN
 * (missed deadline) or WORKER_DEL (deregistered). */
static int release_worker(struct sched *sc,
                          uint8_t type,
                          uint64_t worker,
                          cluster_submit_cb cb,
                          void *data)
{
    struct fsm_item items[MAX_RELEASE];
    struct down_ctx d = {worker, items, 0, MAX_RELEASE, now_ms()};
    struct fsm_reader *rd;

    memset(items, 0, sizeof items);
    if (fsm_read_begin(cluster_fsm(sc->s->cluster), &rd) != 0) {
        return ERR_STORAGE;
    }
    fsm_running(rd, collect_leases_cb, &d);
    fsm_read_end(rd);
    return submit_items(sc->s, type, worker, items, d.n, cb, data);
}

static void liveness(struct sched *sc, int64_t now)
{
    for (unsigned i = 0; i < sc->n_live; i++) {
        struct live *l = &sc->live[i];
        if (l->down_proposed || l->deadline > now) {
            continue;
        }
        if (release_worker(sc, FSM_CMD_WORKER_DOWN, l->id, down_done_cb, sc) ==
            0) {
            l->down_proposed = true;
            LOG(LOG_WARN, "worker down", "worker=%016llx",
                (unsigned long long)l->id);
        }
    }
}

/* The clock: due one-time jobs are promoted, due schedules fired (see
 * sched.c for what a FIRE decides), old finished jobs removed. */
struct due_ctx
{
    struct fsm_reader *rd;
    int64_t now;
    struct fsm_item *promote, *fire;
    char (*reasons)[HTTP_REASON_SIZE];
    unsigned n_promote, n_fire;
};

static int due_cb(void *data, const struct fsm_job *job)
{
    struct due_ctx *d = data;
    if (job->flags & FSM_JOB_RECURRING) {
        d->n_fire +=
            http__sched_plan(d->rd, job, d->now, d->fire + d->n_fire,
                             d->reasons + d->n_fire, MAX_ITEMS - d->n_fire);
    } else if (d->n_promote < MAX_ITEMS) {
        memset(&d->promote[d->n_promote], 0, sizeof d->promote[0]);
        d->promote[d->n_promote++].job_id = job->id;
    }
    return d->n_fire >= MAX_ITEMS - 1 && d->n_promote >= MAX_ITEMS;
}

static void promoted_cb(void *data, int status, const struct fsm_result *res)
{
    struct sched *sc = data;
    (void)status;
    (void)res;
    sc->promote_busy = false;
}

static void fired_cb(void *data, int status, const struct fsm_result *res)
{
    struct sched *sc = data;
    sc->fire_busy = false;
    if (status == 0 && res->code == 0) {
        for (uint32_t i = 0; i < res->n_ids; i++) {
            sc->fired += res->existed[i] == FSM_ITEM_OK;
        }
    }
}

static void clock_tick(struct sched *sc, int64_t now)
{
    struct due_ctx d;

    if (sc->promote_busy || sc->fire_busy) {
        return;
    }
    memset(&d, 0, sizeof d);
    d.now = now;
    d.promote = sc->promote_items;
    d.fire = sc->fire_items;
    d.reasons = sc->reasons;
    if (fsm_read_begin(cluster_fsm(sc->s->cluster), &d.rd) != 0) {
        return;
    }
    fsm_due(d.rd, now, 2 * MAX_ITEMS, due_cb, &d);
    fsm_read_end(d.rd);
    if (d.n_promote > 0 && submit_items(sc->s, FSM_CMD_PROMOTE, 0, d.promote,
                                        d.n_promote, promoted_cb, sc) == 0) {
        sc->promote_busy = true;
    }
    if (d.n_fire > 0 && submit_items(sc->s, FSM_CMD_FIRE, 0, d.fire, d.n_fire,
                                     fired_cb, sc) == 0) {
        sc->fire_busy = true;
    }
}

/* ---- Retention ----------------------------------------------------------- */

#define RETENTION_EVERY_MS 1000
#define RETENTION_BATCH RETENTION_BATCH_MAX

static int expired_cb(void *data, const struct fsm_job *job)
{
    struct due_ctx *d = data;
    if (d->n_promote == RETENTION_BATCH) {
        return 1;
    }
    memset(&d->promote[d->n_promote], 0, sizeof d->promote[0]);
    d->promote[d->n_promote++].job_id = job->id;
    return 0;
}

static void retained_cb(void *data, int status, const struct fsm_result *res)
{
    struct sched *sc = data;
    sc->retain_busy = false;
    if (status == 0 && res->code == 0) {
        for (uint32_t i = 0; i < res->n_ids; i++) {
            sc->expired += res->existed[i] == FSM_ITEM_OK;
        }
    }
}

/* Finished jobs past their retention go in bounded DELETE batches, one in
 * flight, at most one batch per second: the table stays bounded under a
 * constant stream of jobs without starving other writes. */
static void retention(struct sched *sc, int64_t now)
{
    static const uint8_t statuses[3] = {FSM_COMPLETED, FSM_FAILED,
                                        FSM_CANCELLED};
    struct due_ctx d;

    if (sc->retain_busy || now - sc->retained_at < RETENTION_EVERY_MS) {
        return;
    }
    sc->retained_at = now;
    memset(&d, 0, sizeof d);
    d.promote = sc->retain_items;
    if (fsm_read_begin(cluster_fsm(sc->s->cluster), &d.rd) != 0) {
        return;
    }
    for (int i = 0; i < 3; i++) {
        unsigned r = sc->s->cfg.retention_s[i];
        if (r > 0 && d.n_promote < RETENTION_BATCH) {
            fsm_expired(d.rd, statuses[i], now - (int64_t)r * 1000,
                        RETENTION_BATCH - d.n_promote, expired_cb, &d);
        }
    }
    fsm_read_end(d.rd);
    if (d.n_promote > 0 && submit_items(sc->s, FSM_CMD_DELETE, 0, d.promote,
                                        d.n_promote, retained_cb, sc) == 0) {
        sc->retain_busy = true;
    }
}

/* Leases a live worker did not report: the answer to its lease poll was
 * lost (the leader died or lost leadership after committing the ASSIGN, or
 * the forwarding follower was cut off). Without this the job would stay
 * running forever under a worker that heartbeats fine. Every TTL/2, one
 * pass over the running jobs gives back (RELEASE, retry policy) those whose
 * worker's last report, made at least TTL/2 after the lease, omits them. */
struct reclaim_ctx
{
    struct sched *sc;
    int64_t now;
    struct fsm_item *items;
    unsigned n;
};

static int reclaim_cb(void *data, const struct fsm_job *job)
{
    struct reclaim_ctx *r = data;
    struct live *l = live_find(r->sc, job->worker_id);
    if (l == NULL || l->reported == NULL ||
        l->reported_at < job->started_at + TTL_MS / 2 ||
        bsearch(&job->id, l->reported, l->n_reported, sizeof job->id,
                cmp_u64) != NULL) {
        return 0;
    }
    struct fsm_item *it = &r->items[r->n++];
    memset(it, 0, sizeof *it);
    it->job_id = job->id;
    it->worker_id = job->worker_id;
    it->token = job->lease_token;
    it->retryable = 1;
    it->retry_at = retry_at(job, r->now);
    it->error.p = "lease not received by the worker";
    it->error.len = (uint32_t)strlen(it->error.p);
    return r->n == MAX_RELEASE;
}

static void released_cb(void *data, int status, const struct fsm_result *res)
{
    struct sched *sc = data;
    sc->reclaim_busy = false;
    if (status == 0 && res->code == 0) {
        for (uint32_t i = 0; i < res->n_ids; i++) {
            sc->unreceived += res->existed[i] == FSM_ITEM_OK;
        }
    }
}

static void reclaim(struct sched *sc, int64_t now)
{
    struct reclaim_ctx r = {sc, now, sc->reclaim_items, 0};
    struct fsm_reader *rd;

    if (sc->reclaim_busy || now - sc->reclaimed_at < TTL_MS / 2 ||
        fsm_read_begin(cluster_fsm(sc->s->cluster), &rd) != 0) {
        return;
    }
    sc->reclaimed_at = now;
    fsm_running(rd, reclaim_cb, &r);
    fsm_read_end(rd);
    if (r.n > 0 && submit_items(sc->s, FSM_CMD_RELEASE, 0, r.items, r.n,
                                released_cb, sc) == 0) {
        sc->reclaim_busy = true;
        LOG(LOG_WARN, "lease not received", "jobs=%u", r.n);
    }
}

static void expire_waiters(struct sched *sc, int64_t now, bool all)
{
    struct list *it = sc->waiters.next;
    while (it != &sc->waiters) {
        struct waiter *w = CONTAINER_OF(it, struct waiter, link);
        it = it->next;
        if ((all || w->deadline <= now) && w->got == 0) {
            answer_leases(sc, w, NULL, 0, 0);
        }
    }
}

static void tick_cb(uv_timer_t *timer)
{
    struct sched *sc = timer->data;
    bool leader = cluster_is_leader(sc->s->cluster);
    int64_t now = now_ms();

    if (leader && !sc->leader) {
        /* New leader: every known worker gets a fresh deadline + grace
         * before any can be declared down. */
        struct fsm_reader *rd;
        for (unsigned i = 0; i < sc->n_live; i++) {
            free(sc->live[i].reported);
        }
        sc->n_live = 0;
        if (fsm_read_begin(cluster_fsm(sc->s->cluster), &rd) == 0) {
            fsm_workers(rd, grant_all_cb, sc);
            fsm_read_end(rd);
        }
        /* Not assign_busy: an ASSIGN submitted since raft made us leader
         * (a poll dispatches at once) may be in flight, and its callback
         * clears it; clearing it here let a second batch take the same
         * waiting poll and answer it twice (h2o abort, use after free).
         * The others guard idempotent, fenced commands. */
        sc->promote_busy = false;
        sc->fire_busy = sc->retain_busy = sc->reclaim_busy = false;
    }
    if (!leader && sc->leader) {
        expire_waiters(sc, now, true); /* They re-poll, via the new leader. */
    }
    sc->leader = leader;
    if (!leader) {
        return;
    }
    expire_waiters(sc, now, false);
    dispatch(sc);
    liveness(sc, now);
    clock_tick(sc, now);
    retention(sc, now);
    reclaim(sc, now);
}

/* ---- HTTP handlers ------------------------------------------------------- */

static struct sched *sched_of(struct http_server *s)
{
    return s->sched;
}

static json_t *body_object(h2o_req_t *req)
{
    json_t *o = req->entity.len > 0
                    ? json_loadb(req->entity.base, req->entity.len, 0, NULL)
                    : json_object();
    if (!json_is_object(o)) {
        json_decref(o);
        http__send_error(req, 400, "invalid_argument", "",
                         "want a JSON object");
        return NULL;
    }
    return o;
}

/* Answer the error of a failed submit or a rejected command; true if so. */
static bool submit_failed(h2o_req_t *req,
                          int status,
                          const struct fsm_result *res)
{
    if (status == 0 && res->code == 0) {
        return false;
    }
    http__send_err(req, status != 0 ? status : res->code,
                   status != 0 ? NULL : res->field,
                   status != 0 ? NULL : res->msg);
    return true;
}

static void registered_cb(void *data, int status, const struct fsm_result *res)
{
    struct call *call = data;
    struct http_server *s = call->s;
    h2o_req_t *req = http__call_finish(call);
    if (req == NULL) {
        return;
    }
    if (submit_failed(req, status, res)) {
        return;
    }
    char id[20];
    live_touch(sched_of(s), res->ids[0], now_ms() + TTL_MS);
    snprintf(id, sizeof id, "%016llx", (unsigned long long)res->ids[0]);
    http__send_json(req, 201,
                    json_pack("{s:s,s:i,s:i}", "id", id, "heartbeat_ms",
                              HEARTBEAT_MS, "ttl_ms", TTL_MS),
                    0);
}

static void workers_register(struct http_server *s, h2o_req_t *req)
{
    json_t *o = body_object(req), *q, *v;
    char queues[1025] = "";
    const char *name;
    long long conc = 1;
    size_t i, n = 0;
    struct fsm_cmd cmd;

    if (o == NULL) {
        return;
    }
    name = json_string_value(json_object_get(o, "name"));
    q = json_object_get(o, "queues");
    if (json_object_get(o, "concurrency") != NULL) {
        conc = json_is_integer(json_object_get(o, "concurrency"))
                   ? json_integer_value(json_object_get(o, "concurrency"))
                   : -1;
    }
    if (name == NULL || name[0] == '\0') {
        http__send_error(req, 400, "invalid_argument", "name",
                         "name: required");
    } else if (!json_is_array(q) || json_array_size(q) == 0) {
        http__send_error(req, 400, "invalid_argument", "queues",
                         "queues: a non-empty array of names");
    } else if (conc < 1 || conc > 10000) {
        http__send_error(req, 400, "invalid_argument", "concurrency",
                         "concurrency: an integer in 1..10000");
    } else {
        json_array_foreach(q, i, v)
        {
            const char *qs = json_string_value(v);
            if (qs == NULL || qs[0] == '\0' || strchr(qs, ',') != NULL ||
                n + strlen(qs) + 1 >= sizeof queues) {
                http__send_error(req, 400, "invalid_argument", "queues",
                                 "queues[%zu]: a queue name", i);
                json_decref(o);
                return;
            }
            n += (size_t)snprintf(queues + n, sizeof queues - n, "%s%s",
                                  n > 0 ? "," : "", qs);
        }
        memset(&cmd, 0, sizeof cmd);
        cmd.type = FSM_CMD_WORKER_REG;
        cmd.worker.name.p = name;
        cmd.worker.name.len = (uint32_t)strlen(name);
        cmd.worker.queues.p = queues;
        cmd.worker.queues.len = (uint32_t)n;
        cmd.worker.concurrency = (uint32_t)conc;
        void *buf;
        size_t len;
        if (fsm_cmd_encode(&cmd, &buf, &len) != 0) {
            http__send_err(req, ERR_NOMEM, NULL, NULL);
        } else {
            struct call *call = http__call_new(s, req);
            int rv = cluster_submit(s->cluster, buf, len, registered_cb, call);
            free(buf);
            if (rv != 0) {
                http__call_unref(call);
                http__send_err(req, rv, NULL, NULL);
            }
        }
    }
    json_decref(o);
}

static bool known_worker(struct http_server *s, h2o_req_t *req, uint64_t id)
{
    struct fsm_reader *rd;
    struct fsm_worker w;
    int rv = fsm_read_begin(cluster_fsm(s->cluster), &rd);
    if (rv == 0) {
        rv = fsm_get_worker(rd, id, &w);
        if (rv == 0 && w.down) {
            rv = ERR_NOTFOUND; /* Declared down: register again. */
        }
        fsm_read_end(rd);
    }
    if (rv != 0) {
        http__send_error(req, 404, "not_found", "id",
                         "no live worker %016llx: register again",
                         (unsigned long long)id);
        return false;
    }
    return true;
}

static void workers_lease(struct http_server *s, h2o_req_t *req, uint64_t id)
{
    struct sched *sc = sched_of(s);
    json_t *o = body_object(req);
    json_t *mx, *wt;
    struct waiter *w;

    if (o == NULL || !known_worker(s, req, id)) {
        json_decref(o);
        return;
    }
    mx = json_object_get(o, "max");
    wt = json_object_get(o, "wait_ms");
    w = calloc(1, sizeof *w);
    w->worker = id;
    w->max = json_is_integer(mx) && json_integer_value(mx) > 0
                 ? (unsigned)json_integer_value(mx)
                 : 1;
    w->max = w->max > MAX_LEASES ? MAX_LEASES : w->max;
    long long wait = json_is_integer(wt) ? json_integer_value(wt) : 0;
    wait = wait < 0 ? 0 : wait > MAX_WAIT_MS ? MAX_WAIT_MS : wait;
    w->deadline = now_ms() + wait;
    w->call = http__call_new(s, req);
    list_push(&sc->waiters, &w->link);
    live_touch(sc, id, now_ms() + TTL_MS); /* Polling is a sign of life. */
    json_decref(o);
    dispatch(sc);
}

/* Keep the lease ids a heartbeat reported (every lease the worker holds:
 * running, or with its result queued or being delivered). */
static void remember_report(struct live *l, json_t *running)
{
    uint64_t *ids;
    size_t i, n = 0;
    json_t *v;

    if (l == NULL || !json_is_array(running)) {
        return;
    }
    ids = malloc((json_array_size(running) + 1) * sizeof *ids);
    if (ids == NULL) {
        return;
    }
    json_array_foreach(running, i, v)
    {
        const char *js = json_string_value(json_object_get(v, "id"));
        if (js != NULL && http__parse_id(js, strlen(js), &ids[n]) == 0) {
            n++;
        }
    }
    qsort(ids, n, sizeof *ids, cmp_u64);
    free(l->reported);
    l->reported = ids;
    l->n_reported = n;
    l->reported_at = now_ms();
}

static void workers_heartbeat(struct http_server *s,
                              h2o_req_t *req,
                              uint64_t id)
{
    json_t *o = body_object(req), *running, *v;
    struct fsm_reader *rd;
    struct sb b;
    size_t i;
    unsigned nc = 0, nl = 0;
    char *lost;
    size_t lost_len = 0;

    if (o == NULL || !known_worker(s, req, id)) {
        json_decref(o);
        return;
    }
    running = json_object_get(o, "running");
    remember_report(live_touch(sched_of(s), id, now_ms() + TTL_MS), running);
    http__sb_init(&b, &req->pool);
    lost = h2o_mem_alloc_pool(&req->pool, json_array_size(running) * 24 + 1);
    http__sb_puts(&b, "{\"cancel\":[");
    if (json_is_array(running) &&
        fsm_read_begin(cluster_fsm(s->cluster), &rd) == 0) {
        json_array_foreach(running, i, v)
        {
            const char *js = json_string_value(json_object_get(v, "id"));
            json_t *tk = json_object_get(v, "token");
            struct fsm_job job;
            uint64_t jid;
            if (js == NULL || http__parse_id(js, strlen(js), &jid) != 0) {
                continue;
            }
            bool mine = fsm_get_job(rd, jid, &job) == 0 &&
                        job.status == FSM_RUNNING && json_is_integer(tk) &&
                        job.lease_token == (uint64_t)json_integer_value(tk);
            if (mine) {
                continue;
            }
            if (fsm_get_job(rd, jid, &job) == 0 &&
                job.status == FSM_CANCELLED) {
                http__sb_printf(&b, "%s\"%016llx\"", nc++ ? "," : "",
                                (unsigned long long)jid);
            } else {
                lost_len +=
                    (size_t)sprintf(lost + lost_len, "%s\"%016llx\"",
                                    nl++ ? "," : "", (unsigned long long)jid);
            }
        }
        fsm_read_end(rd);
    }
    http__sb_puts(&b, "],\"lost\":[");
    http__sb_put(&b, lost, lost_len);
    http__sb_puts(&b, "]}");
    json_decref(o);
    http__send_sb(req, 200, &b, 0);
}

struct complete_ctx
{
    struct call *call;
    int64_t *durations; /* ms, per item, for the histogram. */
    uint8_t *kind;      /* 1 success, 2 final failure, 0 retry. */
};

static void completed_cb(void *data, int status, const struct fsm_result *res)
{
    struct complete_ctx *cc = data;
    struct http_server *s = cc->call->s;
    struct sched *sc = sched_of(s);
    h2o_req_t *req = http__call_finish(cc->call);
    static const char *const names[] = {"ok", "stale", "not_found", "rejected"};

    if (status == 0 && res->code == 0) {
        for (uint32_t i = 0; i < res->n_ids; i++) {
            if (res->existed[i] != FSM_ITEM_OK) {
                continue;
            }
            sc->completed += cc->kind[i] == 1;
            sc->failed += cc->kind[i] == 2;
            if (cc->durations[i] >= 0) {
                double sec = (double)cc->durations[i] / 1000.0;
                sc->duration_sum += sec;
                sc->duration_count++;
                for (int k = 0; k < 12; k++) {
                    sc->duration_buckets[k] += sec <= buckets_s[k];
                }
            }
        }
    }
    free(cc->kind);
    free(cc->durations);
    free(cc);
    if (req == NULL) {
        return;
    }
    if (submit_failed(req, status, res)) {
        return;
    }
    struct sb b;
    bool any_stale = false;
    http__sb_init(&b, &req->pool);
    http__sb_puts(&b, "{\"results\":[");
    for (uint32_t i = 0; i < res->n_ids; i++) {
        unsigned o = res->existed[i] < 4 ? res->existed[i] : 3;
        any_stale |= o == FSM_ITEM_STALE;
        http__sb_printf(&b, "%s{\"id\":\"%016llx\",\"status\":\"%s\"}",
                        i ? "," : "", (unsigned long long)res->ids[i],
                        names[o]);
    }
    http__sb_puts(&b, "]}");
    /* A single stale result is a 409 (the lease was lost): the worker must
     * not retry it. Batches answer 200 with a status per result. */
    http__send_sb(req, res->n_ids == 1 && any_stale ? 409 : 200, &b, 0);
}

static void workers_complete(struct http_server *s, h2o_req_t *req, uint64_t id)
{
    struct sched *sc = sched_of(s);
    json_t *o = body_object(req), *results, *v;
    struct fsm_item *items;
    struct fsm_reader *rd;
    struct complete_ctx *cc;
    size_t i, n;

    if (o == NULL) {
        return;
    }
    results = json_object_get(o, "results");
    n = json_array_size(results);
    if (!json_is_array(results) || n == 0 || n > MAX_RESULTS) {
        http__send_error(req, 400, "invalid_argument", "results",
                         "results: an array of 1..%d results", MAX_RESULTS);
        json_decref(o);
        return;
    }
    live_touch(sc, id, now_ms() + TTL_MS);
    items = calloc(n, sizeof *items);
    cc = calloc(1, sizeof *cc);
    cc->durations = calloc(n, sizeof *cc->durations);
    cc->kind = calloc(n, 1);
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        goto out;
    }
    json_array_foreach(results, i, v)
    {
        const char *js = json_string_value(json_object_get(v, "id"));
        json_t *tk = json_object_get(v, "token");
        struct fsm_job job;
        struct fsm_item *it = &items[i];
        if (js == NULL || http__parse_id(js, strlen(js), &it->job_id) != 0 ||
            !json_is_integer(tk)) {
            fsm_read_end(rd);
            http__send_error(req, 400, "invalid_argument", "results",
                             "results[%zu]: id and token are required", i);
            goto out;
        }
        it->token = (uint64_t)json_integer_value(tk);
        it->ok = json_is_true(json_object_get(v, "ok"));
        it->retryable = !json_is_false(json_object_get(v, "retryable"));
        it->exit_code =
            (int32_t)json_integer_value(json_object_get(v, "exit_code"));
        const char *e = json_string_value(json_object_get(v, "error"));
        const char *out = json_string_value(json_object_get(v, "output"));
        if (e != NULL) {
            it->error.p = e;
            it->error.len = (uint32_t)strnlen(e, FSM_MAX_ERROR);
        }
        if (out != NULL) {
            it->output.p = out;
            it->output.len = (uint32_t)strnlen(out, 65536);
        }
        json_t *r = json_object_get(v, "result");
        if (r != NULL && !json_is_null(r)) {
            char *rs = json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY);
            size_t rl = strlen(rs);
            char *copy = h2o_mem_alloc_pool(&req->pool, rl + 1);
            memcpy(copy, rs, rl + 1);
            free(rs);
            it->result.p = copy;
            it->result.len = (uint32_t)rl;
        }
        cc->durations[i] = -1;
        if (fsm_get_job(rd, it->job_id, &job) == 0) {
            it->retry_at = retry_at(&job, now_ms());
            if (!it->ok && it->retryable &&
                no_retry_exit_code(&job, it->exit_code)) {
                it->retryable = 0;
            }
            if (job.started_at > 0) {
                cc->durations[i] = now_ms() - job.started_at;
            }
            cc->kind[i] = it->ok ? 1
                          : (!it->retryable || job.attempts >= job.max_attempts)
                              ? 2
                              : 0;
        }
    }
    fsm_read_end(rd);
    cc->call = http__call_new(s, req);
    int rv = submit_items(s, FSM_CMD_COMPLETE, 0, items, (uint32_t)n,
                          completed_cb, cc);
    if (rv != 0) {
        http__call_unref(cc->call);
        http__send_err(req, rv, NULL, NULL);
        goto out;
    }
    cc = NULL;
out:
    if (cc != NULL) {
        free(cc->kind);
        free(cc->durations);
        free(cc);
    }
    free(items);
    json_decref(o);
}

static void deregistered_cb(void *data,
                            int status,
                            const struct fsm_result *res)
{
    struct call *call = data;
    h2o_req_t *req = http__call_finish(call);
    if (req == NULL) {
        return;
    }
    if (submit_failed(req, status, res)) {
        return;
    }
    http__send_json(req, 200, json_pack("{s:b}", "deregistered", 1), 0);
}

static void workers_delete(struct http_server *s, h2o_req_t *req, uint64_t id)
{
    struct call *call = http__call_new(s, req);
    int rv = release_worker(sched_of(s), FSM_CMD_WORKER_DEL, id,
                            deregistered_cb, call);
    if (rv != 0) {
        http__call_unref(call);
        http__send_err(req, rv, NULL, NULL);
    }
}

struct list_workers
{
    struct sched *sc;
    struct sb *b;
    unsigned n;
    struct fsm_reader *rd;
};

static void list_worker_cb(void *data, const struct fsm_worker *w)
{
    struct list_workers *lw = data;
    struct live *l = live_find(lw->sc, w->id);
    struct running_count rc = {w->id, 0};
    char seen[40] = "";

    fsm_running(lw->rd, count_running_cb, &rc);
    http__sb_printf(lw->b,
                    "%s{\"id\":\"%016llx\",\"name\":", lw->n++ ? "," : "",
                    (unsigned long long)w->id);
    http__sb_json_str(lw->b, w->name);
    http__sb_puts(lw->b, ",\"queues\":");
    http__sb_json_str(lw->b, w->queues);
    if (l != NULL && !w->down) {
        /* The deadline is the last sign of life plus the TTL. */
        http__format_time(l->deadline - TTL_MS, seen, sizeof seen);
    }
    http__sb_printf(lw->b,
                    ",\"concurrency\":%u,\"running\":%u,\"state\":\"%s\","
                    "\"last_heartbeat\":%s%s%s}",
                    w->concurrency, rc.n,
                    w->down                               ? "down"
                    : l != NULL && l->deadline < now_ms() ? "late"
                                                          : "alive",
                    seen[0] ? "\"" : "", seen[0] ? seen : "null",
                    seen[0] ? "\"" : "");
}

static void workers_list(struct http_server *s, h2o_req_t *req)
{
    struct sb b;
    struct list_workers lw = {sched_of(s), &b, 0, NULL};
    if (fsm_read_begin(cluster_fsm(s->cluster), &lw.rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        return;
    }
    http__sb_init(&b, &req->pool);
    http__sb_puts(&b, "{\"workers\":[");
    fsm_workers(lw.rd, list_worker_cb, &lw);
    fsm_read_end(lw.rd);
    http__sb_puts(&b, "]}");
    http__send_sb(req, 200, &b, cluster_applied_index(s->cluster));
}

/* Routes under /v1/workers; the caller forwards writes to the leader. */
void http__workers_route(struct http_server *s,
                         h2o_req_t *req,
                         h2o_iovec_t path,
                         bool is_post,
                         bool is_delete)
{
    const char *rest = path.base + strlen("/v1/workers");
    size_t len = path.len - strlen("/v1/workers");
    uint64_t id;

    if (len == 0) {
        if (is_post) {
            workers_register(s, req);
        } else if (!is_delete) {
            workers_list(s, req);
        } else {
            http__send_error(req, 405, "method_not_allowed", NULL,
                             "DELETE /v1/workers/{id}");
        }
        return;
    }
    const char *slash = memchr(rest + 1, '/', len - 1);
    size_t idlen = (size_t)((slash != NULL ? slash : rest + len) - rest - 1);
    if (rest[0] != '/' || http__parse_id(rest + 1, idlen, &id) != 0) {
        http__send_error(req, 404, "not_found", "id", "no such worker");
        return;
    }
    if (slash == NULL) {
        if (is_delete) {
            workers_delete(s, req, id);
        } else {
            http__send_error(req, 405, "method_not_allowed", NULL,
                             "DELETE /v1/workers/{id}");
        }
        return;
    }
    h2o_iovec_t verb =
        h2o_iovec_init(slash + 1, (size_t)(rest + len - slash - 1));
    if (!is_post) {
        http__send_error(req, 405, "method_not_allowed", NULL, "use POST");
    } else if (h2o_memis(verb.base, verb.len, H2O_STRLIT("lease"))) {
        workers_lease(s, req, id);
    } else if (h2o_memis(verb.base, verb.len, H2O_STRLIT("heartbeat"))) {
        workers_heartbeat(s, req, id);
    } else if (h2o_memis(verb.base, verb.len, H2O_STRLIT("complete"))) {
        workers_complete(s, req, id);
    } else {
        http__send_error(req, 404, "not_found", NULL, "no such route");
    }
}

void http__workers_metrics(struct http_server *s, struct sb *b)
{
    struct sched *sc = sched_of(s);
    http__sb_printf(
        b,
        "# HELP jobs_started Jobs leased to workers (this node, "
        "while leader).\n# TYPE jobs_started counter\n"
        "jobs_started %llu\n"
        "# HELP jobs_completed Jobs completed successfully.\n"
        "# TYPE jobs_completed counter\njobs_completed %llu\n"
        "# HELP jobs_failed Jobs that ended failed (dead letter).\n"
        "# TYPE jobs_failed counter\njobs_failed %llu\n"
        "# HELP rota_leases_lost_total Leases ended by a worker "
        "declared down.\n# TYPE rota_leases_lost_total counter\n"
        "rota_leases_lost_total %llu\n"
        "# HELP rota_schedule_fires_total Cron occurrences recorded (run "
        "or skipped).\n# TYPE rota_schedule_fires_total counter\n"
        "rota_schedule_fires_total %llu\n"
        "# HELP rota_leases_unreceived_total Leases ended because the "
        "worker never received them.\n"
        "# TYPE rota_leases_unreceived_total counter\n"
        "rota_leases_unreceived_total %llu\n"
        "# HELP rota_jobs_expired_total Finished jobs removed by "
        "retention.\n# TYPE rota_jobs_expired_total counter\n"
        "rota_jobs_expired_total %llu\n"
        "# HELP job_duration_seconds Run time of accepted results.\n"
        "# TYPE job_duration_seconds histogram\n",
        sc->started, sc->completed, sc->failed, sc->lost, sc->fired,
        sc->unreceived, sc->expired);
    unsigned long long count = sc->duration_count;
    for (int k = 0; k < 12; k++) {
        http__sb_printf(b, "job_duration_seconds_bucket{le=\"%g\"} %llu\n",
                        buckets_s[k], sc->duration_buckets[k]);
    }
    http__sb_printf(b,
                    "job_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                    "job_duration_seconds_sum %.3f\n"
                    "job_duration_seconds_count %llu\n",
                    count, sc->duration_sum, count);
}

int http__workers_start(struct http_server *s)
{
    struct sched *sc = calloc(1, sizeof *sc);
    if (sc == NULL) {
        return ERR_NOMEM;
    }
    sc->s = s;
    sc_ttl = s->cfg.worker_ttl >= 500 ? s->cfg.worker_ttl : 10000;
    list_init(&sc->waiters);
    uv_timer_init(s->loop, &sc->tick);
    sc->tick.data = sc;
    s->sched = sc;
    srandom((unsigned)now_ms());
    return uv_timer_start(&sc->tick, tick_cb, TICK_MS, TICK_MS) == 0 ? 0
                                                                     : ERR_IO;
}

void http__workers_stop(struct http_server *s)
{
    struct sched *sc = s->sched;
    uv_timer_stop(&sc->tick);
    expire_waiters(sc, 0, true);
}
