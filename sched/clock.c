/* The clock: due one-time jobs are promoted (delayed start, retry backoff
 * over) and due schedules fired (plan.c decides what a FIRE says), in at
 * most one PROMOTE and one FIRE entry in flight. A schedule with an action
 * in flight (actions.c) is left for the next tick, so its decisions are
 * made one at a time. */

#include <string.h>

#include "sched/internal.h"

struct due_ctx
{
    struct sched *sc;
    struct fsm_reader *rd;
    int64_t now;
    unsigned n_promote, n_fire;
};

static int due_cb(void *data, const struct fsm_job *job)
{
    struct due_ctx *d = data;
    struct sched *sc = d->sc;
    if (job->flags & FSM_JOB_RECURRING) {
        if (sched__action_busy(sc, job->id)) {
            return 0;
        }
        unsigned n =
            sched__plan(d->rd, job, d->now, sc->fire_items + d->n_fire,
                        sc->reasons + d->n_fire, MAX_ITEMS - d->n_fire);
        if (n > 0) {
            sc->fire_ids[sc->n_fire_ids++] = job->id;
        }
        d->n_fire += n;
    } else if (d->n_promote < MAX_ITEMS) {
        memset(&sc->promote_items[d->n_promote], 0, sizeof(struct fsm_item));
        sc->promote_items[d->n_promote++].job_id = job->id;
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
    sc->n_fire_ids = 0;
    if (status == 0 && res->code == 0) {
        for (uint32_t i = 0; i < res->n_ids; i++) {
            const struct fsm_item *it = &sc->fire_items[i];
            if (res->existed[i] != FSM_ITEM_OK) {
                continue;
            }
            sc->stats.fired++;
            if (it->action == FSM_FIRE_SKIP) {
                sc->stats.skips += it->skipped > 0 ? it->skipped : 1;
            } else {
                sc->stats.fire_runs++;
            }
        }
    }
    sched__actions_pump(sc); /* Actions held by this FIRE. */
}

void sched__clock(struct sched *sc, int64_t now)
{
    struct due_ctx d;

    if (sc->promote_busy || sc->fire_busy) {
        return;
    }
    memset(&d, 0, sizeof d);
    d.sc = sc;
    d.now = now;
    sc->n_fire_ids = 0;
    if (fsm_read_begin(sc->io.fsm(sc->io.data), &d.rd) != 0) {
        return;
    }
    fsm_due(d.rd, now, 2 * MAX_ITEMS, due_cb, &d);
    fsm_read_end(d.rd);
    if (d.n_promote > 0 &&
        sched__submit_items(sc, FSM_CMD_PROMOTE, 0, sc->promote_items,
                            d.n_promote, promoted_cb, sc) == 0) {
        sc->promote_busy = true;
    }
    if (d.n_fire > 0 && sched__submit_items(sc, FSM_CMD_FIRE, 0, sc->fire_items,
                                            d.n_fire, fired_cb, sc) == 0) {
        sc->fire_busy = true;
    } else {
        sc->n_fire_ids = 0;
    }
}

bool sched__fire_pending(const struct sched *sc, uint64_t id)
{
    for (unsigned i = 0; sc->fire_busy && i < sc->n_fire_ids; i++) {
        if (sc->fire_ids[i] == id) {
            return true;
        }
    }
    return false;
}
