/* The dispatcher: lease requests (long-polls) wait in a FIFO list; each
 * round matches them with the ready index and proposes ONE ASSIGN entry
 * for all of them. One ASSIGN is in flight at a time, so no job is
 * proposed twice; the requests are answered once it applies, with each
 * job's fencing token in its record.
 *
 * sched__dispatch_choose() is the pure part: given a read snapshot, the
 * time and the running counts, which jobs go to which asking worker. Order
 * within a worker's queues: effective priority (a pending job gains one
 * level per aging interval waited, so a flood of high-priority work cannot
 * starve older low-priority jobs), then age, then id; limits: the worker's
 * free capacity, a queue's pause and concurrency, a concurrency key's
 * limit. */

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/vec.h"
#include "sched/internal.h"
#include "sched/policy.h"

#define MAX_LEVELS 32 /* Priority levels considered per queue for aging. */
#define MAX_CANDS (SCHED_MAX_LEASES + 4 * MAX_LEVELS + 64) /* Per ask. */

struct candidate
{
    uint64_t id;
    int64_t eff; /* Effective priority: priority + age / aging. */
    int64_t created;
    struct fsm_str ckey;
    uint32_t ckey_limit;
    unsigned queue; /* Index in the round's queue states. */
};

/* A queue as one round sees it (borrowed from the round's read txn). */
struct qstate
{
    struct fsm_str name;
    bool paused;
    uint32_t concurrency;
    uint64_t running;
    unsigned picked;
};

struct round
{
    struct fsm_reader *rd;
    int64_t now, aging_ms;
    const struct counts *running; /* Per concurrency key, before the round. */
    struct counts picked;         /* Per key, chosen this round. */
    struct qstate *qs;
    unsigned n_qs;
    size_t cap_qs;
    const uint64_t *taken; /* Chosen for earlier asks. */
    unsigned n_taken;
    struct candidate *cands;
};

static int qstate_of(struct round *r, struct fsm_str name)
{
    for (unsigned i = 0; i < r->n_qs; i++) {
        if (r->qs[i].name.len == name.len &&
            memcmp(r->qs[i].name.p, name.p, name.len) == 0) {
            return (int)i;
        }
    }
    if (VEC_RESERVE(r->qs, r->cap_qs, r->n_qs + 1) != 0) {
        return -1;
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

/* Room left in a queue this round (UINT32_MAX: no cap). */
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

static bool ckey_full(const struct round *r, struct fsm_str key, uint32_t limit)
{
    if (key.len == 0) {
        return false;
    }
    unsigned n =
        sched__counts_key(r->running, key) + sched__counts_key(&r->picked, key);
    return n >= (limit > 0 ? limit : 1);
}

struct pick
{
    struct round *r;
    struct fsm_str types; /* Of the asking worker. */
    unsigned n;           /* Gathered so far. */
    unsigned want;        /* Stop after this many from this walk. */
    unsigned got;
    unsigned budget; /* Index entries to examine at most. */
    unsigned queue;
    unsigned first; /* Candidates of this queue start here. */
};

static bool seen(const struct pick *p, uint64_t id)
{
    const struct round *r = p->r;
    for (unsigned i = 0; i < r->n_taken; i++) {
        if (r->taken[i] == id) {
            return true;
        }
    }
    for (unsigned i = p->first; i < p->n; i++) {
        if (r->cands[i].id == id) {
            return true; /* A level head already gathered. */
        }
    }
    return false;
}

static int pick_cb(void *data, const struct fsm_job *job)
{
    struct pick *p = data;
    struct round *r = p->r;
    if (p->budget-- == 0 || p->got == p->want || p->n == MAX_CANDS) {
        return 1;
    }
    if (!sched_worker_runs(p->types, job->type) || seen(p, job->id) ||
        ckey_full(r, job->ckey, job->ckey_limit)) {
        return 0;
    }
    struct candidate *c = &r->cands[p->n++];
    c->id = job->id;
    c->eff = policy_effective_priority(job->priority, r->now - job->created_at,
                                       r->aging_ms);
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

/* Gather candidates of every queue of @a's with room. */
static unsigned gather(struct round *r, const struct ask *a, unsigned cap)
{
    struct pick p;
    const char *q = a->queues.p, *end = a->queues.p + a->queues.len;

    memset(&p, 0, sizeof p);
    p.r = r;
    p.types = a->types;
    while (q < end && p.n < MAX_CANDS) {
        const char *comma = memchr(q, ',', (size_t)(end - q));
        const char *stop = comma != NULL ? comma : end;
        struct fsm_str name = {q, (uint32_t)(stop - q)};
        int qi = name.len > 0 ? qstate_of(r, name) : -1;
        q = stop + 1;
        unsigned room = qi >= 0 ? queue_room(&r->qs[qi]) : 0;
        if (room == 0) {
            continue;
        }
        p.queue = (unsigned)qi;
        p.first = p.n;
        /* The oldest of each level (aging), then the head of the index. */
        p.want = p.budget = MAX_LEVELS;
        p.got = 0;
        fsm_ready_heads(r->rd, name, MAX_LEVELS, pick_cb, &p);
        p.want = room < cap ? room : cap;
        p.got = 0;
        p.budget = p.want * 4 + 64;
        fsm_ready(r->rd, name, pick_cb, &p);
    }
    return p.n;
}

/* Up to @cap jobs for one ask; their ids go to @out. */
static unsigned choose(struct round *r,
                       const struct ask *a,
                       unsigned cap,
                       uint64_t *out)
{
    unsigned n = gather(r, a, cap), chosen = 0;

    qsort(r->cands, n, sizeof r->cands[0], cmp_candidate);
    for (unsigned i = 0; i < n && chosen < cap; i++) {
        struct candidate *c = &r->cands[i];
        struct qstate *qs = &r->qs[c->queue];
        if (queue_room(qs) == 0 || ckey_full(r, c->ckey, c->ckey_limit)) {
            continue;
        }
        qs->picked++;
        if (c->ckey.len > 0) {
            sched__counts_add(&r->picked, 0, c->ckey, +1);
        }
        out[chosen++] = c->id;
    }
    return chosen;
}

unsigned sched__dispatch_choose(struct fsm_reader *rd,
                                int64_t now,
                                int64_t aging_ms,
                                const struct counts *running,
                                struct ask *asks,
                                unsigned n_asks,
                                uint64_t *out,
                                unsigned max_out)
{
    struct round r;
    unsigned n = 0;

    memset(&r, 0, sizeof r);
    r.rd = rd;
    r.now = now;
    r.aging_ms = aging_ms;
    r.running = running;
    r.taken = out;
    sched__counts_init(&r.picked);
    r.cands = malloc(MAX_CANDS * sizeof *r.cands);
    for (unsigned i = 0; i < n_asks && r.cands != NULL; i++) {
        struct ask *a = &asks[i];
        unsigned cap = a->cap < max_out - n ? a->cap : max_out - n;
        a->first = n;
        a->got = 0;
        if (cap == 0) {
            continue;
        }
        r.n_taken = n;
        a->got = choose(&r, a, cap, out + n);
        n += a->got;
    }
    free(r.cands);
    free(r.qs);
    sched__counts_free(&r.picked);
    return n;
}

bool sched_list_has(struct fsm_str list, struct fsm_str name)
{
    const char *t = list.p, *end = list.p + list.len;
    while (t < end) {
        const char *comma = memchr(t, ',', (size_t)(end - t));
        const char *stop = comma != NULL ? comma : end;
        if ((size_t)(stop - t) == name.len &&
            memcmp(t, name.p, name.len) == 0) {
            return true;
        }
        t = stop + 1;
    }
    return false;
}

bool sched_worker_runs(struct fsm_str types, struct fsm_str type)
{
    if (types.len == 0) {
        return !(type.len == 5 && memcmp(type.p, "shell", 5) == 0);
    }
    return sched_list_has(types, type);
}

struct capable
{
    struct fsm_str type, queue;
    bool any;
};

static void capable_cb(void *data, const struct fsm_worker *w)
{
    struct capable *c = data;
    c->any |= !w->down && sched_list_has(w->queues, c->queue) &&
              sched_worker_runs(w->types, c->type);
}

bool sched_job_runnable(struct fsm_reader *rd, const struct fsm_job *job)
{
    struct capable c = {job->type, job->queue, false};
    fsm_workers(rd, capable_cb, &c);
    return c.any;
}

/* ---- The driver ---------------------------------------------------------- */

static void answer(struct waiter *w, const uint64_t *jobs, unsigned n)
{
    list_remove(&w->link);
    w->cb(w->data, jobs, n);
    free(w);
}

/* Per-queue counters of jobs just leased: started, and the start delay
 * from when the job was ready (run_at: delayed start, retry backoff; else
 * its creation) to its lease. */
static void count_started(struct sched *sc, const uint64_t *ids, unsigned n)
{
    struct fsm_reader *rd;
    sc->stats.started += n;
    if (n == 0 || fsm_read_begin(sc->io.fsm(sc->io.data), &rd) != 0) {
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        struct fsm_job job;
        if (fsm_get_job(rd, ids[i], &job) != 0) {
            continue;
        }
        struct sched_queue_stats *q = sched__qstats(sc, job.queue);
        int64_t ready = job.run_at > 0 ? job.run_at : job.created_at;
        q->started++;
        if (ready > 0 && job.started_at > 0) {
            sched_hist_observe(&q->start_delay,
                               (double)(job.started_at - ready) / 1000.0);
        }
    }
    fsm_read_end(rd);
}

struct assign_batch
{
    struct sched *sc;
    struct waiter **waiters; /* Those that got jobs, in item order. */
    unsigned n_waiters;
};

static void assigned_cb(void *data, int status, const struct fsm_result *res)
{
    struct assign_batch *ab = data;
    struct sched *sc = ab->sc;
    unsigned first = 0;

    sc->assign_busy = false;
    for (unsigned i = 0; i < ab->n_waiters; i++) {
        struct waiter *w = ab->waiters[i];
        unsigned n = w->got, k = 0;
        w->got = 0;
        if (status != 0 || res->code != 0) {
            if (sc->stopped) {
                /* sched_stop() answered the others; none will retry. */
                answer(w, NULL, 0);
            }
            continue; /* Stays waiting; the next round tries again. */
        }
        uint64_t *ids = malloc((n > 0 ? n : 1) * sizeof *ids);
        for (unsigned j = first; ids != NULL && j < first + n && j < res->n_ids;
             j++) {
            if (res->existed[j] == FSM_ITEM_OK) {
                ids[k++] = res->ids[j];
            }
        }
        count_started(sc, ids, k);
        answer(w, ids, k);
        free(ids);
        first += n;
    }
    free(ab->waiters);
    free(ab);
}

/* The asks of this round: waiting workers with free capacity. */
static unsigned collect_asks(struct sched *sc,
                             struct fsm_reader *rd,
                             struct ask *asks,
                             struct waiter **ws)
{
    unsigned n = 0;
    struct list *it;
    LIST_FOREACH (it, &sc->waiters) {
        struct waiter *w = CONTAINER_OF(it, struct waiter, link);
        struct fsm_worker wk;
        if (fsm_get_worker(rd, w->worker, &wk) != 0 || wk.down) {
            continue;
        }
        unsigned running = sched__counts_worker(&sc->running, w->worker);
        unsigned cap = running >= wk.concurrency ? 0 : wk.concurrency - running;
        cap = cap < w->max ? cap : w->max;
        if (cap == 0) {
            continue;
        }
        asks[n].worker = w->worker;
        asks[n].cap = cap;
        asks[n].queues = wk.queues;
        asks[n].types = wk.types;
        ws[n++] = w;
    }
    return n;
}

static void propose(struct sched *sc,
                    struct ask *asks,
                    struct waiter **ws,
                    unsigned n_asks,
                    const uint64_t *chosen,
                    unsigned n)
{
    struct fsm_item *items = calloc(n, sizeof *items);
    struct assign_batch *ab = malloc(sizeof *ab);
    unsigned n_ws = 0;

    if (items == NULL || ab == NULL) {
        free(items);
        free(ab);
        return;
    }
    for (unsigned i = 0; i < n_asks; i++) {
        for (unsigned j = 0; j < asks[i].got; j++) {
            items[asks[i].first + j].job_id = chosen[asks[i].first + j];
            items[asks[i].first + j].worker_id = asks[i].worker;
        }
        ws[i]->got = asks[i].got;
        if (asks[i].got > 0) {
            ws[n_ws++] = ws[i];
        }
    }
    ab->sc = sc;
    ab->waiters = ws;
    ab->n_waiters = n_ws;
    if (sched__submit_items(sc, FSM_CMD_ASSIGN, 0, items, n, assigned_cb, ab) ==
        0) {
        sc->assign_busy = true;
    } else {
        for (unsigned i = 0; i < n_ws; i++) {
            ws[i]->got = 0;
        }
        free(ws);
        free(ab);
    }
    free(items);
}

/* The room the asks leave (what sched__dispatch_choose can write). */
static unsigned asked(const struct ask *asks, unsigned n_asks)
{
    unsigned total = 0;
    for (unsigned i = 0; i < n_asks && total < MAX_ITEMS; i++) {
        total += asks[i].cap;
    }
    return total < MAX_ITEMS ? total : MAX_ITEMS;
}

void sched__dispatch(struct sched *sc)
{
    struct fsm_reader *rd;
    unsigned n_wait = 0, n_asks, n = 0, room = 0;
    uint64_t *chosen = NULL;
    struct list *it;

    if (sc->assign_busy || !sc->leader || list_empty(&sc->waiters)) {
        return;
    }
    LIST_FOREACH (it, &sc->waiters) {
        n_wait++;
    }
    struct ask *asks = calloc(n_wait, sizeof *asks);
    struct waiter **ws = calloc(n_wait, sizeof *ws);
    if (asks == NULL || ws == NULL ||
        fsm_read_begin(sc->io.fsm(sc->io.data), &rd) != 0) {
        free(asks);
        free(ws);
        return;
    }
    n_asks = collect_asks(sc, rd, asks, ws);
    /* Sized by what was asked: a poll for one job costs 8 bytes here, not
     * the whole entry's room, on every tick it waits. */
    if (n_asks > 0 && (room = asked(asks, n_asks)) > 0 &&
        (chosen = malloc(room * sizeof *chosen)) != NULL) {
        n = sched__dispatch_choose(rd, sched__now(sc),
                                   (int64_t)sc->cfg.aging_s * 1000,
                                   &sc->running, asks, n_asks, chosen, room);
    }
    fsm_read_end(rd);
    if (n > 0) {
        propose(sc, asks, ws, n_asks, chosen, n); /* Owns @ws. */
    } else {
        free(ws);
    }
    free(asks);
    free(chosen);
}

void sched__expire_waiters(struct sched *sc, int64_t now, bool all)
{
    struct list *it = sc->waiters.next;
    while (it != &sc->waiters) {
        struct waiter *w = CONTAINER_OF(it, struct waiter, link);
        it = it->next;
        if ((all || w->deadline <= now) && w->got == 0) {
            answer(w, NULL, 0);
        }
    }
}

int sched_lease(struct sched *sc,
                uint64_t worker,
                unsigned max,
                int64_t wait_ms,
                sched_lease_cb cb,
                void *data)
{
    int64_t now = sched__now(sc);
    int rv = sched_worker_known(sc, worker);
    if (rv != 0) {
        return rv;
    }
    if (sc->stopped) {
        return ERR_SHUTDOWN;
    }
    struct waiter *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return ERR_NOMEM;
    }
    w->worker = worker;
    w->max = max < 1 ? 1 : max > SCHED_MAX_LEASES ? SCHED_MAX_LEASES : max;
    wait_ms = wait_ms < 0                   ? 0
              : wait_ms > SCHED_MAX_WAIT_MS ? SCHED_MAX_WAIT_MS
                                            : wait_ms;
    w->deadline = now + wait_ms;
    w->cb = cb;
    w->data = data;
    list_push(&sc->waiters, &w->link);
    sched__live_touch(sc, worker, now); /* Polling is a sign of life. */
    sched__dispatch(sc);
    return 0;
}

void sched__forget(struct sched *sc)
{
    while (!list_empty(&sc->waiters)) {
        struct waiter *w = CONTAINER_OF(sc->waiters.next, struct waiter, link);
        list_remove(&w->link);
        free(w);
    }
    sched__forget_actions(sc);
}
