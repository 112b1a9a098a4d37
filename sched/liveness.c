/* Liveness: heartbeat deadlines live in leader memory, never in the log. A
 * worker that misses its deadline is declared down by ONE committed
 * WORKER_DOWN command carrying its leases, which go back through the retry
 * policy. A new leader gives every known worker a fresh deadline plus
 * grace (TTL/2) first.
 *
 * Reclaim: leases a live worker did not report. The answer to its lease
 * poll was lost (the leader died or lost leadership after committing the
 * ASSIGN, or the forwarding follower was cut off); without this the job
 * would stay running forever under a worker that heartbeats fine. Every
 * TTL/2, one pass over the running jobs gives back (RELEASE, retry policy)
 * those whose worker's last report, made at least TTL/2 after the lease,
 * omits them; and those of a worker the state says is down or removed: a
 * WORKER_DOWN lists the leases its leader had applied, so a lease whose
 * ASSIGN was still uncommitted then (proposed by a deposed leader, or in
 * flight) commits before it and is left under a down worker that nothing
 * else looks at again (found by tests/sim). */

#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "sched"
#include "common/err.h"
#include "common/log.h"
#include "common/vec.h"
#include "sched/internal.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct live *sched__live_find(struct sched *sc, uint64_t id)
{
    for (unsigned i = 0; i < sc->n_live; i++) {
        if (sc->live[i].id == id) {
            return &sc->live[i];
        }
    }
    return NULL;
}

static struct live *live_add(struct sched *sc, uint64_t id)
{
    if (VEC_RESERVE(sc->live, sc->cap_live, sc->n_live + 1) != 0) {
        return NULL;
    }
    struct live *l = &sc->live[sc->n_live++];
    memset(l, 0, sizeof *l);
    l->id = id;
    return l;
}

struct live *sched__live_touch(struct sched *sc, uint64_t id, int64_t now)
{
    struct live *l = sched__live_find(sc, id);
    if (l == NULL && (l = live_add(sc, id)) == NULL) {
        return NULL;
    }
    l->deadline = now + sc->ttl_ms;
    l->seen = now;
    return l;
}

struct reset_ctx
{
    struct sched *sc;
    int64_t until;
};

static void grant_cb(void *data, const struct fsm_worker *w)
{
    struct reset_ctx *r = data;
    struct live *l;
    if (!w->down && (l = live_add(r->sc, w->id)) != NULL) {
        l->deadline = r->until;
    }
}

void sched__live_reset(struct sched *sc, int64_t now)
{
    struct reset_ctx r = {sc, now + sc->ttl_ms + sc->ttl_ms / 2};
    struct fsm_reader *rd;
    for (unsigned i = 0; i < sc->n_live; i++) {
        free(sc->live[i].reported);
    }
    sc->n_live = 0;
    if (fsm_read_begin(sc->io.fsm(sc->io.data), &rd) == 0) {
        fsm_workers(rd, grant_cb, &r);
        fsm_read_end(rd);
    }
}

/* ---- Declaring workers down ------------------------------------------- */

void sched__count_lease_ends(struct sched *sc,
                             const struct fsm_result *res,
                             const struct lease_end *ends)
{
    for (uint32_t i = 0; i < res->n_ids; i++) {
        if (res->existed[i] == FSM_ITEM_OK) {
            sc->qstats[ends[i].slot].failed++;
            sc->qstats[ends[i].slot].dead += ends[i].dead;
        }
    }
}

static struct lease_end lease_end_of(struct sched *sc,
                                     const struct fsm_job *job)
{
    struct lease_end e = {sched__qstats_slot(sc, job->queue),
                          job->attempts >= job->max_attempts};
    return e;
}

/* A WORKER_DOWN/DEL in flight: its leases' counters, then the caller's
 * callback. */
struct release
{
    struct sched *sc;
    sched_submit_cb cb;
    void *data;
    struct lease_end ends[MAX_RELEASE];
};

static void release_done_cb(void *data,
                            int status,
                            const struct fsm_result *res)
{
    struct release *rel = data;
    if (status == 0 && res->code == 0) {
        sched__count_lease_ends(rel->sc, res, rel->ends);
    }
    rel->cb(rel->data, status, res);
    free(rel);
}

struct down_ctx
{
    struct sched *sc;
    uint64_t worker;
    struct fsm_item *items;
    struct lease_end *ends;
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
    d->items[d->n].retry_at =
        sched__retry_at(job, d->now, sched__uniform(d->sc));
    d->ends[d->n] = lease_end_of(d->sc, job);
    d->n++;
    return 0;
}

int sched__release_worker(struct sched *sc,
                          uint8_t type,
                          uint64_t worker,
                          sched_submit_cb cb,
                          void *data)
{
    struct fsm_item *items = calloc(MAX_RELEASE, sizeof *items);
    struct release *rel = malloc(sizeof *rel);
    struct down_ctx d = {sc, worker,      items,         NULL,
                         0,  MAX_RELEASE, sched__now(sc)};
    struct fsm_reader *rd;
    int rv;

    if (items == NULL || rel == NULL) {
        free(items);
        free(rel);
        return ERR_NOMEM;
    }
    rel->sc = sc;
    rel->cb = cb;
    rel->data = data;
    d.ends = rel->ends;
    rv = fsm_read_begin(sc->io.fsm(sc->io.data), &rd);
    if (rv == 0) {
        if (sched__counts_worker(&sc->running, worker) > 0) {
            fsm_running(rd, collect_leases_cb, &d);
        }
        fsm_read_end(rd);
        rv = sched__submit_items(sc, type, worker, items, d.n, release_done_cb,
                                 rel);
    }
    free(items);
    if (rv != 0) {
        free(rel);
    }
    return rv;
}

static void down_done_cb(void *data, int status, const struct fsm_result *res)
{
    struct sched *sc = data;
    if (status == 0 && res->code == 0) {
        for (uint32_t i = 0; i < res->n_ids; i++) {
            sc->stats.lost += res->existed[i] == FSM_ITEM_OK;
        }
    }
}

void sched__liveness(struct sched *sc, int64_t now)
{
    for (unsigned i = 0; i < sc->n_live; i++) {
        struct live *l = &sc->live[i];
        if (l->down_proposed || l->deadline > now) {
            continue;
        }
        if (sched__release_worker(sc, FSM_CMD_WORKER_DOWN, l->id, down_done_cb,
                                  sc) == 0) {
            l->down_proposed = true;
            LOG(LOG_WARN, "worker down", "worker=%016llx",
                (unsigned long long)l->id);
        }
    }
}

/* ---- Reclaiming unreceived leases -------------------------------------- */

struct reclaim_ctx
{
    struct sched *sc;
    struct fsm_reader *rd;
    int64_t now;
    unsigned n;
};

/* A lease of a worker declared down or removed: its WORKER_DOWN (or DEL)
 * was decided on a state without it (an ASSIGN proposed by a deposed
 * leader, or in flight, committed before it), so nothing else ends it. */
static bool orphaned(struct reclaim_ctx *r, const struct fsm_job *job)
{
    struct fsm_worker w;
    int rv = fsm_get_worker(r->rd, job->worker_id, &w);
    return rv == ERR_NOTFOUND || (rv == 0 && w.down);
}

static int reclaim_cb(void *data, const struct fsm_job *job)
{
    struct reclaim_ctx *r = data;
    struct live *l = sched__live_find(r->sc, job->worker_id);
    bool orphan = orphaned(r, job);
    if (!orphan && (l == NULL || l->reported == NULL ||
                    l->reported_at < job->started_at + r->sc->ttl_ms / 2 ||
                    bsearch(&job->id, l->reported, l->n_reported,
                            sizeof job->id, cmp_u64) != NULL)) {
        return 0;
    }
    r->sc->reclaim_ends[r->n] = lease_end_of(r->sc, job);
    struct fsm_item *it = &r->sc->reclaim_items[r->n++];
    memset(it, 0, sizeof *it);
    it->job_id = job->id;
    it->worker_id = job->worker_id;
    it->token = job->lease_token;
    it->retryable = 1;
    it->retry_at = sched__retry_at(job, r->now, sched__uniform(r->sc));
    it->error.p =
        orphan ? "lease lost: worker down" : "lease not received by the worker";
    it->error.len = (uint32_t)strlen(it->error.p);
    return r->n == MAX_RELEASE;
}

static void released_cb(void *data, int status, const struct fsm_result *res)
{
    struct sched *sc = data;
    sc->reclaim_busy = false;
    if (status == 0 && res->code == 0) {
        for (uint32_t i = 0; i < res->n_ids; i++) {
            sc->stats.unreceived += res->existed[i] == FSM_ITEM_OK;
        }
        sched__count_lease_ends(sc, res, sc->reclaim_ends);
    }
}

void sched__reclaim(struct sched *sc, int64_t now)
{
    struct reclaim_ctx r = {sc, NULL, now, 0};

    if (sc->reclaim_busy || now - sc->reclaimed_at < sc->ttl_ms / 2 ||
        fsm_read_begin(sc->io.fsm(sc->io.data), &r.rd) != 0) {
        return;
    }
    sc->reclaimed_at = now;
    fsm_running(r.rd, reclaim_cb, &r);
    fsm_read_end(r.rd);
    if (r.n > 0 &&
        sched__submit_items(sc, FSM_CMD_RELEASE, 0, sc->reclaim_items, r.n,
                            released_cb, sc) == 0) {
        sc->reclaim_busy = true;
        LOG(LOG_WARN, "lease not received", "jobs=%u", r.n);
    }
}

/* ---- Heartbeats ------------------------------------------------------------
 */

int sched_worker_known(struct sched *sc, uint64_t worker)
{
    struct fsm_reader *rd;
    struct fsm_worker w;
    int rv = fsm_read_begin(sc->io.fsm(sc->io.data), &rd);
    if (rv == 0) {
        rv = fsm_get_worker(rd, worker, &w);
        if (rv == 0 && w.down) {
            rv = ERR_NOTFOUND; /* Declared down: register again. */
        }
        fsm_read_end(rd);
    }
    return rv == ERR_STORAGE ? rv : rv != 0 ? ERR_NOTFOUND : 0;
}

/* Keep the leases a heartbeat reported (every lease the worker holds:
 * running, or with its result queued or being delivered). */
static void remember_report(struct live *l,
                            const struct sched_held *held,
                            unsigned n,
                            int64_t now)
{
    uint64_t *ids = malloc((n + 1) * sizeof *ids);
    if (l == NULL || ids == NULL) {
        free(ids);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        ids[i] = held[i].job;
    }
    qsort(ids, n, sizeof *ids, cmp_u64);
    free(l->reported);
    l->reported = ids;
    l->n_reported = n;
    l->reported_at = now;
}

int sched_heartbeat(struct sched *sc,
                    uint64_t worker,
                    const struct sched_held *held,
                    unsigned n,
                    uint8_t *verdicts)
{
    int64_t now = sched__now(sc);
    struct fsm_reader *rd;
    int rv = sched_worker_known(sc, worker);

    if (rv != 0) {
        return rv;
    }
    remember_report(sched__live_touch(sc, worker, now), held, n, now);
    if ((rv = fsm_read_begin(sc->io.fsm(sc->io.data), &rd)) != 0) {
        return rv;
    }
    for (unsigned i = 0; i < n; i++) {
        struct fsm_job job;
        bool found = fsm_get_job(rd, held[i].job, &job) == 0;
        if (found && job.status == FSM_RUNNING && held[i].has_token &&
            job.lease_token == held[i].token) {
            verdicts[i] = SCHED_HELD_KEEP;
        } else if (found && job.status == FSM_CANCELLED) {
            verdicts[i] = SCHED_HELD_CANCEL;
        } else {
            verdicts[i] = SCHED_HELD_LOST;
        }
    }
    fsm_read_end(rd);
    return 0;
}

void sched_worker_view(struct sched *sc,
                       uint64_t worker,
                       struct sched_worker_view *v)
{
    struct live *l = sched__live_find(sc, worker);
    memset(v, 0, sizeof *v);
    v->running = sched__counts_worker(&sc->running, worker);
    if (l != NULL) {
        v->last_seen = l->seen > 0 ? l->seen : l->deadline - sc->ttl_ms;
        v->late = l->deadline < sched__now(sc);
    }
}
