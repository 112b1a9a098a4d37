/* Retention: finished jobs past their retention go in bounded DELETE
 * batches, one in flight. A sweep looks once a second; a full batch is
 * followed by the next as soon as it applied, so retention keeps up with
 * any stream of finished jobs (one entry of RETENTION_BATCH deletes per
 * commit) while other writes still get their turn between its entries. */

#include <string.h>

#include "sched/internal.h"

struct expired_ctx
{
    struct fsm_item *items;
    unsigned n;
};

static int expired_cb(void *data, const struct fsm_job *job)
{
    struct expired_ctx *d = data;
    if (d->n == RETENTION_BATCH) {
        return 1;
    }
    memset(&d->items[d->n], 0, sizeof d->items[0]);
    d->items[d->n++].job_id = job->id;
    return 0;
}

static void retained_cb(void *data, int status, const struct fsm_result *res)
{
    struct sched *sc = data;
    sc->retain_busy = false;
    if (status == 0 && res->code == 0) {
        for (uint32_t i = 0; i < res->n_ids; i++) {
            sc->stats.expired += res->existed[i] == FSM_ITEM_OK;
        }
        if (res->n_ids == RETENTION_BATCH) {
            sc->retained_at = INT64_MIN / 2; /* More may wait: look again. */
        }
    }
}

void sched__retention(struct sched *sc, int64_t now)
{
    static const uint8_t statuses[3] = {FSM_COMPLETED, FSM_FAILED,
                                        FSM_CANCELLED};
    struct expired_ctx d = {sc->retain_items, 0};
    struct fsm_reader *rd;

    if (sc->retain_busy || now - sc->retained_at < RETENTION_EVERY_MS) {
        return;
    }
    sc->retained_at = now;
    if (fsm_read_begin(sc->io.fsm(sc->io.data), &rd) != 0) {
        return;
    }
    for (int i = 0; i < 3; i++) {
        unsigned r = sc->cfg.retention_s[i];
        if (r > 0 && d.n < RETENTION_BATCH) {
            fsm_expired(rd, statuses[i], now - (int64_t)r * 1000,
                        RETENTION_BATCH - d.n, expired_cb, &d);
        }
    }
    fsm_read_end(rd);
    if (d.n > 0 && sched__submit_items(sc, FSM_CMD_DELETE, 0, d.items, d.n,
                                       retained_cb, sc) == 0) {
        sc->retain_busy = true;
    }
}
