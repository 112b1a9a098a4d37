/* Actions on a schedule (pause, resume, trigger), decided by the leader one
 * at a time per schedule: each is decided on the state the previous one
 * (and the clock's FIRE of that schedule) left, so two triggers sent back
 * to back both run instead of the second being fenced off as a stale
 * decision. A trigger's occurrence is `now`, or just after the newest
 * recorded occurrence when that is not older (two triggers in one
 * millisecond are two occurrences). */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sched/internal.h"

struct action
{
    struct list link;
    struct sched *sc;
    uint64_t id;
    int kind;
    bool in_flight;
    sched_submit_cb cb;
    void *data;
    struct fsm_item item;
};

static void pump(struct sched *sc);

bool sched__action_busy(const struct sched *sc, uint64_t id)
{
    const struct list *it;
    LIST_FOREACH (it, &sc->actions) {
        if (CONTAINER_OF(it, struct action, link)->id == id) {
            return true;
        }
    }
    return false;
}

static void finish(struct action *a, int status, const struct fsm_result *res)
{
    list_remove(&a->link);
    a->cb(a->data, status, res);
    free(a);
}

static void reject(struct action *a,
                   int code,
                   const char *field,
                   const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
static void reject(struct action *a,
                   int code,
                   const char *field,
                   const char *fmt,
                   ...)
{
    struct fsm_result res;
    va_list ap;
    memset(&res, 0, sizeof res);
    res.code = code;
    snprintf(res.field, sizeof res.field, "%s", field);
    va_start(ap, fmt);
    vsnprintf(res.msg, sizeof res.msg, fmt, ap);
    va_end(ap);
    finish(a, 0, &res);
}

static void done_cb(void *data, int status, const struct fsm_result *res)
{
    struct action *a = data;
    struct sched *sc = a->sc;
    if (a->kind == SCHED_TRIGGER && status == 0 && res->code == 0 &&
        res->n_ids > 0 && res->existed[0] == FSM_ITEM_OK) {
        sc->stats.fire_runs++; /* A manual run: rota_schedule_fires_total. */
    }
    finish(a, status, res);
    pump(sc);
}

static int newest_cb(void *data, const struct fsm_run *run)
{
    *(int64_t *)data = run->nominal;
    return 1;
}

/* Trigger: refused while a run is unfinished under overlap=forbid. */
static bool decide_trigger(struct action *a,
                           struct fsm_reader *rd,
                           const struct fsm_job *job,
                           struct fsm_cmd *cmd)
{
    struct sched_spec sp;
    int st = 0;
    int64_t newest = 0, now = sched__now(a->sc);
    uint64_t busy = sched__busy_run(rd, job, &st);

    sched__spec_read(job, &sp);
    if (busy != 0 && sp.overlap == OVERLAP_FORBID) {
        reject(a, ERR_CONFLICT, "overlap",
               "overlap=forbid: run %016llx is "
               "still %s",
               (unsigned long long)busy, fsm_status_name(st));
        return false;
    }
    fsm_runs(rd, job->id, 0, newest_cb, &newest);
    memset(&a->item, 0, sizeof a->item);
    a->item.job_id = job->id;
    a->item.nominal = now > newest ? now : newest + 1;
    a->item.action =
        sp.overlap == OVERLAP_REPLACE ? FSM_FIRE_NOW_REPLACE : FSM_FIRE_NOW;
    cmd->type = FSM_CMD_FIRE;
    cmd->items = &a->item;
    cmd->n_items = 1;
    return true;
}

/* The command for @a, or false once it was answered with a rejection. */
static bool decide(struct action *a, struct fsm_reader *rd, struct fsm_cmd *cmd)
{
    struct fsm_job job;
    struct sched_spec sp;

    if (fsm_get_job(rd, a->id, &job) != 0) {
        reject(a, ERR_NOTFOUND, "id", "no job %016llx",
               (unsigned long long)a->id);
        return false;
    }
    if (!(job.flags & FSM_JOB_RECURRING)) {
        reject(a, ERR_INVALID, "id", "job %016llx has no schedule",
               (unsigned long long)a->id);
        return false;
    }
    if (job.status != FSM_SCHEDULED) {
        reject(a, ERR_CONFLICT, "status", "the schedule is %s",
               fsm_status_name(job.status));
        return false;
    }
    memset(cmd, 0, sizeof *cmd);
    cmd->id = a->id;
    if (a->kind == SCHED_PAUSE) {
        cmd->type = FSM_CMD_PAUSE;
        return true;
    }
    if (a->kind == SCHED_TRIGGER) {
        return decide_trigger(a, rd, &job, cmd);
    }
    cmd->type = FSM_CMD_RESUME;
    sched__spec_read(&job, &sp);
    if (!sp.has_cron || cron_next(&sp.cron, sp.tz, sched__now(a->sc),
                                  &cmd->patch.run_at) != 0) {
        reject(a, ERR_CONFLICT, "schedule",
               "the schedule has no next occurrence");
        return false;
    }
    return true;
}

/* Start @a: decide on the current state and submit. */
static void start(struct action *a)
{
    struct fsm_reader *rd;
    struct fsm_cmd cmd;
    int rv = fsm_read_begin(a->sc->io.fsm(a->sc->io.data), &rd);
    if (rv != 0) {
        finish(a, rv, NULL);
        return;
    }
    bool go = decide(a, rd, &cmd);
    fsm_read_end(rd);
    if (!go) {
        return;
    }
    rv = sched__submit_cmd(a->sc, &cmd, done_cb, a);
    if (rv != 0) {
        finish(a, rv, NULL);
        return;
    }
    a->in_flight = true;
}

/* Start every action that is first for its schedule and not held by an
 * in-flight FIRE. */
static void pump(struct sched *sc)
{
    struct list *it = sc->actions.next;
    while (it != &sc->actions) {
        struct action *a = CONTAINER_OF(it, struct action, link);
        bool first = true;
        for (struct list *p = sc->actions.next; p != it; p = p->next) {
            first &= CONTAINER_OF(p, struct action, link)->id != a->id;
        }
        if (a->in_flight || !first || sched__fire_pending(sc, a->id)) {
            it = it->next;
            continue;
        }
        start(a); /* May finish (and free) @a: restart the walk. */
        it = sc->actions.next;
    }
}

void sched__actions_pump(struct sched *sc)
{
    pump(sc);
}

int sched_schedule_action(struct sched *sc,
                          uint64_t id,
                          int action,
                          sched_submit_cb cb,
                          void *data)
{
    struct action *a;
    if (action != SCHED_PAUSE && action != SCHED_RESUME &&
        action != SCHED_TRIGGER) {
        return ERR_INVALID;
    }
    if (sc->stopped) {
        return ERR_SHUTDOWN;
    }
    if ((a = calloc(1, sizeof *a)) == NULL) {
        return ERR_NOMEM;
    }
    a->sc = sc;
    a->id = id;
    a->kind = action;
    a->cb = cb;
    a->data = data;
    list_push(&sc->actions, &a->link);
    pump(sc);
    return 0;
}

void sched__actions_fail_all(struct sched *sc, int status)
{
    struct list *it = sc->actions.next;
    while (it != &sc->actions) {
        struct action *a = CONTAINER_OF(it, struct action, link);
        it = it->next;
        if (!a->in_flight) {
            finish(a, status, NULL);
        }
    }
}

void sched__forget_actions(struct sched *sc)
{
    while (!list_empty(&sc->actions)) {
        struct action *a = CONTAINER_OF(sc->actions.next, struct action, link);
        list_remove(&a->link);
        free(a);
    }
}
