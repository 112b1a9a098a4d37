/* The leader's counters (this node, while leader): per queue, bounded to
 * SCHED_STATS_QUEUES names plus SCHED_STATS_OTHER. Rendered by
 * http/metrics.c; docs/operations.md lists them. */

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sched/internal.h"

const double sched_duration_bounds_s[SCHED_DURATION_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60};

void sched_hist_observe(struct sched_hist *h, double seconds)
{
    int k = 0;
    if (seconds < 0) {
        seconds = 0;
    }
    while (k < SCHED_DURATION_BUCKETS && seconds > sched_duration_bounds_s[k]) {
        k++;
    }
    h->buckets[k]++;
    h->sum += seconds;
    h->count++;
}

int sched__qstats_init(struct sched *sc)
{
    sc->qstats = calloc(SCHED_STATS_QUEUES + 1, sizeof *sc->qstats);
    if (sc->qstats == NULL) {
        return ERR_NOMEM;
    }
    memcpy(sc->qstats[SCHED_STATS_QUEUES].name, SCHED_STATS_OTHER,
           sizeof SCHED_STATS_OTHER);
    return 0;
}

unsigned sched__qstats_slot(struct sched *sc, struct fsm_str queue)
{
    if (queue.len == 0) {
        queue.p = "default";
        queue.len = 7;
    }
    for (unsigned i = 0; i < sc->n_qstats; i++) {
        const char *name = sc->qstats[i].name;
        if (strlen(name) == queue.len &&
            memcmp(name, queue.p, queue.len) == 0) {
            return i;
        }
    }
    if (sc->n_qstats == SCHED_STATS_QUEUES ||
        queue.len > SCHED_STATS_NAME_MAX) {
        sc->qstats_other = true;
        return SCHED_STATS_QUEUES;
    }
    memcpy(sc->qstats[sc->n_qstats].name, queue.p, queue.len);
    sc->qstats[sc->n_qstats].name[queue.len] = '\0';
    return sc->n_qstats++;
}

struct sched_queue_stats *sched__qstats(struct sched *sc, struct fsm_str queue)
{
    return &sc->qstats[sched__qstats_slot(sc, queue)];
}

const struct sched_queue_stats *sched_queue_stats(const struct sched *sc,
                                                  unsigned *n)
{
    /* The table is full whenever the overflow entry is used: it follows
     * the named ones. */
    *n = sc->n_qstats + (sc->qstats_other ? 1 : 0);
    return sc->qstats;
}

void sched_count_submitted(struct sched *sc, struct fsm_str queue, unsigned n)
{
    sched__qstats(sc, queue)->submitted += n;
}

void sched_stats(const struct sched *sc, struct sched_stats *out)
{
    *out = sc->stats;
}
