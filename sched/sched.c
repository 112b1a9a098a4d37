/* The leader's services as one object: creation, the tick that runs them,
 * leadership changes, and the plumbing the other files share (time and
 * randomness from sched_io, submitting item commands).
 *
 * A node that becomes leader rebuilds what the services keep in memory
 * (worker deadlines with grace, running counts); one that stops being
 * leader answers its waiting lease requests, which re-poll via the new
 * leader. */

#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "sched"
#include "common/err.h"
#include "common/log.h"
#include "sched/internal.h"

int64_t sched__now(struct sched *sc)
{
    return sc->io.now(sc->io.data);
}

int64_t sched_now(struct sched *sc)
{
    return sched__now(sc);
}

double sched__uniform(struct sched *sc)
{
    return (double)(sc->io.random(sc->io.data) >> 11) * 0x1.0p-53;
}

int sched__submit_cmd(struct sched *sc,
                      const struct fsm_cmd *cmd,
                      sched_submit_cb cb,
                      void *data)
{
    void *buf;
    size_t len;
    int rv = fsm_cmd_encode(cmd, &buf, &len);
    if (rv != 0) {
        return rv;
    }
    rv = sc->io.submit(sc->io.data, buf, len, cb, data);
    free(buf);
    return rv;
}

int sched__submit_items(struct sched *sc,
                        uint8_t type,
                        uint64_t id,
                        const struct fsm_item *items,
                        uint32_t n,
                        sched_submit_cb cb,
                        void *data)
{
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = type;
    cmd.id = id;
    cmd.items = items;
    cmd.n_items = n;
    return sched__submit_cmd(sc, &cmd, cb, data);
}

int sched_create(const struct sched_io *io,
                 const struct sched_config *cfg,
                 struct sched **out)
{
    struct sched *sc = calloc(1, sizeof *sc);
    if (sc == NULL) {
        return ERR_NOMEM;
    }
    if (sched__qstats_init(sc) != 0) {
        free(sc);
        return ERR_NOMEM;
    }
    sc->io = *io;
    sc->cfg = *cfg;
    sc->ttl_ms = cfg->worker_ttl_ms >= 500 ? cfg->worker_ttl_ms : 10000;
    list_init(&sc->waiters);
    list_init(&sc->actions);
    sched__counts_init(&sc->running);
    /* Counts follow every applied entry, on every node; a new leader
     * rebuilds them anyway. */
    fsm_watch_running(io->fsm(io->data), sched__counts_watch, &sc->running);
    *out = sc;
    return 0;
}

void sched_stop(struct sched *sc)
{
    sc->stopped = true;
    sched__expire_waiters(sc, 0, true);
    sched__actions_fail_all(sc, ERR_SHUTDOWN);
}

void sched_destroy(struct sched *sc)
{
    if (sc == NULL) {
        return;
    }
    fsm_watch_running(sc->io.fsm(sc->io.data), NULL, NULL);
    sched__forget(sc); /* Requests still waiting: their callers are gone. */
    for (unsigned i = 0; i < sc->n_live; i++) {
        free(sc->live[i].reported);
    }
    free(sc->live);
    sched__counts_free(&sc->running);
    free(sc->qstats);
    free(sc);
}

static void became_leader(struct sched *sc, int64_t now)
{
    sched__live_reset(sc, now);
    if (sched__counts_rebuild(&sc->running, sc->io.fsm(sc->io.data)) != 0) {
        LOG(LOG_WARN, "running counts not rebuilt", "reason=storage");
    }
    /* Not assign_busy: an ASSIGN submitted since raft made us leader (a
     * poll dispatches at once) may be in flight, and its callback clears
     * it; clearing it here let a second batch take the same waiting poll
     * and answer it twice. The others guard idempotent, fenced commands. */
    sc->promote_busy = false;
    sc->fire_busy = sc->retain_busy = sc->reclaim_busy = false;
    sc->n_fire_ids = 0;
}

void sched_tick(struct sched *sc)
{
    bool leader = !sc->stopped && sc->io.is_leader(sc->io.data);
    int64_t now = sched__now(sc);

    if (leader && !sc->leader) {
        became_leader(sc, now);
    }
    sc->leader = leader;
    if (!leader) {
        /* Polls wait on the leader only: they re-poll via the new one. */
        sched__expire_waiters(sc, now, true);
        return;
    }
    if (sc->running.restores != fsm_restores(sc->io.fsm(sc->io.data))) {
        sched__counts_rebuild(&sc->running, sc->io.fsm(sc->io.data));
    }
    sched__expire_waiters(sc, now, false);
    sched__dispatch(sc);
    sched__liveness(sc, now);
    sched__clock(sc, now);
    sched__retention(sc, now);
    sched__reclaim(sc, now);
}

unsigned sched_worker_ttl_ms(const struct sched *sc)
{
    return (unsigned)sc->ttl_ms;
}

unsigned sched_heartbeat_ms(const struct sched *sc)
{
    return (unsigned)(sc->ttl_ms / 5);
}
