/* The event log of the entry being applied (fsm_watch_events): noted while
 * the commands apply, dropped with a rejected command, reported in order
 * once the entry commits. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/vec.h"
#include "fsm/internal.h"

/* A noted error is cut here: the event says what happened, the job's
 * record has the whole text. */
#define EV_MAX_ERROR 512

static const char *const names[] = {
    NULL,         "job.created",  "job.started",    "job.completed",
    "job.failed", "job.retrying", "job.dead",       "job.cancelled",
    "worker.up",  "worker.down",  "schedule.fired", "schedule.skipped",
};

const char *fsm_event_name(int kind)
{
    return kind >= 1 && kind <= FSM_EV_MAX ? names[kind] : NULL;
}

void fsm_watch_events(struct fsm *f, fsm_event_cb cb, void *data)
{
    f->ev_cb = cb;
    f->ev_data = data;
}

void fsm__ev_begin(struct fsm *f, int64_t now)
{
    f->n_ev = 0;
    f->ev_strs_used = 0;
    f->ev_now = now;
}

size_t fsm__ev_mark(const struct fsm *f)
{
    return f->n_ev;
}

void fsm__ev_rewind(struct fsm *f, size_t mark)
{
    f->n_ev = mark;
}

/* Copy @s into the string buffer; its offset goes in the pointer until
 * the flush (the buffer may move). False when out of memory. */
static bool keep(struct fsm *f, struct fsm_str *s, uint32_t max)
{
    uint32_t len = s->len < max ? s->len : max;
    if (len < s->len) { /* Cut at a UTF-8 character boundary. */
        while (len > 0 && ((unsigned char)s->p[len] & 0xc0) == 0x80) {
            len--;
        }
    }
    if (VEC_RESERVE(f->ev_strs, f->ev_strs_cap, f->ev_strs_used + len + 1) !=
        0) {
        return false;
    }
    if (len > 0) {
        memcpy(f->ev_strs + f->ev_strs_used, s->p, len);
    }
    s->p = (const char *)(uintptr_t)f->ev_strs_used;
    s->len = len;
    f->ev_strs_used += len;
    return true;
}

/* Out of memory loses the event, never the state: a watcher sees a gap
 * (as after a restore). */
static struct fsm_event *note(struct fsm *f,
                              int kind,
                              uint64_t id,
                              struct fsm_str type,
                              struct fsm_str queue)
{
    if (VEC_RESERVE(f->ev, f->cap_ev, f->n_ev + 1) != 0) {
        return NULL;
    }
    struct fsm_event *e = &f->ev[f->n_ev];
    memset(e, 0, sizeof *e);
    e->kind = (uint8_t)kind;
    e->id = id;
    e->type = type;
    e->queue = queue;
    if (!keep(f, &e->type, FSM_MAX_STR) || !keep(f, &e->queue, FSM_MAX_STR) ||
        !keep(f, &e->name, 0) || !keep(f, &e->error, 0)) {
        return NULL;
    }
    f->n_ev++;
    return e;
}

static void job_event(struct fsm *f,
                      int kind,
                      const struct fsm_job *job,
                      bool with_error)
{
    struct fsm_event *e = note(f, kind, job->id, job->type, job->queue);
    if (e == NULL) {
        return;
    }
    e->status = job->status;
    e->attempts = job->attempts;
    if (with_error) {
        struct fsm_str err = job->last_error;
        if (!keep(f, &err, EV_MAX_ERROR)) {
            f->n_ev--;
            return;
        }
        f->ev[f->n_ev - 1].error = err;
    }
}

void fsm__ev_job(struct fsm *f,
                 const struct fsm_job *old,
                 const struct fsm_job *job)
{
    if (old == NULL) {
        job_event(f, FSM_EV_JOB_CREATED, job, false);
        if (job->status == FSM_CANCELLED) {
            job_event(f, FSM_EV_JOB_CANCELLED, job, false);
        }
        return;
    }
    if (old->status == job->status) {
        return;
    }
    switch (job->status) {
        case FSM_RUNNING:
            job_event(f, FSM_EV_JOB_STARTED, job, false);
            break;
        case FSM_COMPLETED:
            job_event(f, FSM_EV_JOB_COMPLETED, job, false);
            break;
        case FSM_CANCELLED:
            job_event(f, FSM_EV_JOB_CANCELLED, job, false);
            break;
        case FSM_FAILED:
            if (old->status == FSM_RUNNING) {
                job_event(f, FSM_EV_JOB_FAILED, job, true);
            }
            job_event(f, FSM_EV_JOB_DEAD, job, true);
            break;
        case FSM_PENDING:
        case FSM_SCHEDULED:
            if (old->status == FSM_RUNNING) {
                job_event(f, FSM_EV_JOB_FAILED, job, true);
                job_event(f, FSM_EV_JOB_RETRYING, job, false);
            }
            break;
        default:
            break; /* Waiting for dependencies, or becoming due: no event. */
    }
}

void fsm__ev_worker(struct fsm *f, int kind, const struct fsm_worker *w)
{
    struct fsm_str none = {NULL, 0};
    struct fsm_event *e = note(f, kind, w->id, none, none);
    if (e == NULL) {
        return;
    }
    struct fsm_str name = w->name;
    if (!keep(f, &name, FSM_MAX_STR)) {
        f->n_ev--;
        return;
    }
    f->ev[f->n_ev - 1].name = name;
}

void fsm__ev_schedule(struct fsm *f,
                      int kind,
                      const struct fsm_job *s,
                      uint64_t run,
                      struct fsm_str error)
{
    struct fsm_event *e = note(f, kind, s->id, s->type, s->queue);
    if (e == NULL) {
        return;
    }
    e->run = run;
    e->status = s->status;
    if (!keep(f, &error, EV_MAX_ERROR)) {
        f->n_ev--;
        return;
    }
    f->ev[f->n_ev - 1].error = error;
}

static void fix(const struct fsm *f, struct fsm_str *s)
{
    s->p = f->ev_strs + (uintptr_t)s->p;
}

void fsm__ev_flush(struct fsm *f, uint64_t index)
{
    for (size_t i = 0; i < f->n_ev && f->ev_cb != NULL; i++) {
        struct fsm_event *e = &f->ev[i];
        e->index = index;
        e->pos = (uint32_t)i;
        e->at = f->ev_now;
        fix(f, &e->type);
        fix(f, &e->queue);
        fix(f, &e->name);
        fix(f, &e->error);
        f->ev_cb(f->ev_data, e);
    }
    f->n_ev = 0;
    f->ev_strs_used = 0;
}
