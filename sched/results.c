/* Worker registration and results: REGISTER, WORKER_DEL and COMPLETE as
 * the leader submits them. A completion gets the retry policy here (the
 * backoff instant with jitter drawn on the leader, no_retry_exit_codes);
 * apply only uses what the item says. */

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sched/internal.h"
#include "sched/policy.h"

/* A caller's callback, with what to do before it. */
struct relay
{
    struct sched *sc;
    sched_submit_cb cb;
    void *data;
    int64_t *durations; /* COMPLETE: ms per item (-1: unknown). */
    uint8_t *kind;      /* COMPLETE: an OUTCOME_* per item. */
    unsigned *slot;     /* COMPLETE: the item's queue counters. */
};

/* What a result does to its job (0: the job was not found). */
enum { OUTCOME_OK = 1, OUTCOME_DEAD, OUTCOME_RETRY };

static struct relay *relay_new(struct sched *sc, sched_submit_cb cb, void *data)
{
    struct relay *r = calloc(1, sizeof *r);
    if (r != NULL) {
        r->sc = sc;
        r->cb = cb;
        r->data = data;
    }
    return r;
}

static void relay_free(struct relay *r)
{
    free(r->durations);
    free(r->kind);
    free(r->slot);
    free(r);
}

static void registered_cb(void *data, int status, const struct fsm_result *res)
{
    struct relay *r = data;
    if (status == 0 && res->code == 0 && res->n_ids > 0) {
        sched__live_touch(r->sc, res->ids[0], sched__now(r->sc));
    }
    r->cb(r->data, status, res);
    relay_free(r);
}

int sched_register(struct sched *sc,
                   const struct fsm_worker *w,
                   sched_submit_cb cb,
                   void *data)
{
    struct fsm_cmd cmd;
    struct relay *r = relay_new(sc, cb, data);
    int rv;

    if (r == NULL) {
        return ERR_NOMEM;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_CMD_WORKER_REG;
    cmd.worker = *w;
    rv = sched__submit_cmd(sc, &cmd, registered_cb, r);
    if (rv != 0) {
        relay_free(r);
    }
    return rv;
}

int sched_deregister(struct sched *sc,
                     uint64_t worker,
                     sched_submit_cb cb,
                     void *data)
{
    return sched__release_worker(sc, FSM_CMD_WORKER_DEL, worker, cb, data);
}

static void record_durations(struct sched *sc,
                             const struct relay *r,
                             const struct fsm_result *res)
{
    struct sched_stats *st = &sc->stats;
    for (uint32_t i = 0; i < res->n_ids; i++) {
        if (res->existed[i] != FSM_ITEM_OK || r->kind[i] == 0) {
            continue;
        }
        struct sched_queue_stats *q = &sc->qstats[r->slot[i]];
        st->completed += r->kind[i] == OUTCOME_OK;
        st->failed += r->kind[i] == OUTCOME_DEAD;
        q->completed += r->kind[i] == OUTCOME_OK;
        q->failed += r->kind[i] != OUTCOME_OK;
        q->dead += r->kind[i] == OUTCOME_DEAD;
        if (r->durations[i] < 0) {
            continue;
        }
        double sec = (double)r->durations[i] / 1000.0;
        sched_hist_observe(&q->duration, sec);
        st->duration_sum += sec;
        st->duration_count++;
        for (int k = 0; k < SCHED_DURATION_BUCKETS; k++) {
            st->duration_buckets[k] += sec <= sched_duration_bounds_s[k];
        }
    }
}

static void completed_cb(void *data, int status, const struct fsm_result *res)
{
    struct relay *r = data;
    if (status == 0 && res->code == 0) {
        record_durations(r->sc, r, res);
    }
    r->cb(r->data, status, res);
    relay_free(r);
}

/* The retry policy of one result, from the job as it is now. */
static void apply_policy(struct sched *sc,
                         struct fsm_reader *rd,
                         struct fsm_item *it,
                         int64_t now,
                         int64_t *duration,
                         uint8_t *kind,
                         unsigned *slot)
{
    struct fsm_job job;
    struct sched_spec sp;

    *duration = -1;
    if (fsm_get_job(rd, it->job_id, &job) != 0) {
        return;
    }
    *slot = sched__qstats_slot(sc, job.queue);
    if (!it->ok) {
        /* Only a failure reads the spec (backoff, no_retry_exit_codes):
         * apply uses retry_at for nothing else, and parsing every
         * successful job's spec was ~3% of the leader's CPU end to end. */
        sched__spec_read(&job, &sp);
        it->retry_at =
            now + policy_backoff_ms(job.attempts, sp.initial_ms, sp.multiplier,
                                    sp.max_ms, sp.jitter, sched__uniform(sc));
        if (it->retryable && sched__spec_no_retry(&sp, it->exit_code)) {
            it->retryable = 0;
        }
    }
    if (job.started_at > 0) {
        *duration = now - job.started_at;
    }
    *kind = it->ok ? OUTCOME_OK
            : (!it->retryable || job.attempts >= job.max_attempts)
                ? OUTCOME_DEAD
                : OUTCOME_RETRY;
}

int sched_complete(struct sched *sc,
                   uint64_t worker,
                   struct fsm_item *items,
                   unsigned n,
                   sched_submit_cb cb,
                   void *data)
{
    int64_t now = sched__now(sc);
    struct relay *r = relay_new(sc, cb, data);
    struct fsm_reader *rd;
    int rv;

    if (r == NULL || (r->durations = calloc(n, sizeof *r->durations)) == NULL ||
        (r->kind = calloc(n, 1)) == NULL ||
        (r->slot = calloc(n, sizeof *r->slot)) == NULL) {
        if (r != NULL) {
            relay_free(r);
        }
        return ERR_NOMEM;
    }
    sched__live_touch(sc, worker, now);
    rv = fsm_read_begin(sc->io.fsm(sc->io.data), &rd);
    if (rv != 0) {
        relay_free(r);
        return rv;
    }
    for (unsigned i = 0; i < n; i++) {
        apply_policy(sc, rd, &items[i], now, &r->durations[i], &r->kind[i],
                     &r->slot[i]);
    }
    fsm_read_end(rd);
    rv =
        sched__submit_items(sc, FSM_CMD_COMPLETE, 0, items, n, completed_cb, r);
    if (rv != 0) {
        relay_free(r);
    }
    return rv;
}
