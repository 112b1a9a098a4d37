/* Apply for scheduling commands: cron occurrences (FIRE), pause/resume of
 * schedules, requeue and removal of finished jobs (dead-letter queue,
 * retention), queue settings and workflow cancellation.
 *
 * Every decision that needs a clock or a calendar (which occurrence is due,
 * the next one, skip or run) is the leader's and arrives in the command;
 * apply only checks it against the state. A FIRE item names the occurrence
 * it fires (@nominal): if that is not the schedule's current run_at the
 * item is STALE, so two leaders firing the same occurrence create one run,
 * and an occurrence is never lost because run_at moves only with a
 * committed FIRE. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/internal.h"

#define MAX_REASON 512

void fsm__run_key(unsigned char kb[16], uint64_t schedule, int64_t nominal)
{
    fsm__put_be64(kb, schedule);
    /* Flip the sign bit: byte order is then numeric order. */
    fsm__put_be64(kb + 8, (uint64_t)nominal ^ (1ULL << 63));
}

/* Record: paused (1 byte), 3 zero bytes, concurrency (4), and only when
 * set max_pending (4): a queue without it keeps the old 8 bytes. */
int fsm__queue_decode(const MDB_val *v, struct fsm_queue *q)
{
    if (v->mv_size != 8 && v->mv_size != 12) {
        return ERR_CORRUPT;
    }
    q->paused = ((const unsigned char *)v->mv_data)[0];
    memcpy(&q->concurrency, (const unsigned char *)v->mv_data + 4, 4);
    q->max_pending = 0;
    if (v->mv_size == 12) {
        memcpy(&q->max_pending, (const unsigned char *)v->mv_data + 8, 4);
    }
    return 0;
}

/* A stable copy of a job: LMDB memory dies with the next write. */
struct job_copy
{
    struct fsm_job job;
    void *buf;
};

static int copy_job(struct apply_ctx *a,
                    const struct fsm_job *src,
                    struct job_copy *out)
{
    size_t len;
    int rv = fsm_job_encode(src, &out->buf, &len);
    if (rv == 0 && fsm_job_decode(out->buf, len, &out->job) != 0) {
        free(out->buf);
        rv = ERR_CORRUPT;
    }
    return rv == 0 ? 0 : fsm__storage(a, rv);
}

static int put_run(struct apply_ctx *a,
                   uint64_t schedule,
                   const struct fsm_item *it,
                   uint64_t job_id)
{
    unsigned char kb[16], buf[20 + MAX_REASON];
    uint32_t reason = it->error.len < MAX_REASON ? it->error.len : MAX_REASON;
    uint32_t skipped = it->skipped > 0 ? it->skipped : 1;
    MDB_val k = {16, kb}, v = {20 + reason, buf};
    int rv;

    fsm__run_key(kb, schedule, it->nominal);
    memcpy(buf, &job_id, 8);
    memcpy(buf + 8, &a->now, 8);
    memcpy(buf + 16, &skipped, 4);
    if (reason > 0) {
        memcpy(buf + 20, it->error.p, reason);
    }
    rv = mdb_put(a->txn, a->f->dbi[DB_RUNS], &k, &v, MDB_NOOVERWRITE);
    if (rv == MDB_KEYEXIST) {
        return FSM_ITEM_STALE; /* This occurrence was recorded already. */
    }
    return rv == 0 ? 0 : fsm__storage(a, fsm__lmdb_error(a->f, rv, "run"));
}

/* This occurrence of @schedule was recorded already (a repeat). */
static bool run_recorded(struct apply_ctx *a,
                         uint64_t schedule,
                         int64_t nominal)
{
    unsigned char kb[16];
    MDB_val k = {16, kb}, v;
    fsm__run_key(kb, schedule, nominal);
    return mdb_get(a->txn, a->f->dbi[DB_RUNS], &k, &v) == 0;
}

/* Create the run of @s for the occurrence @nominal. */
static int create_run(struct apply_ctx *a,
                      const struct fsm_job *s,
                      int64_t nominal,
                      uint64_t *id)
{
    struct fsm_job run;

    if (a->seq >= (1u << FSM_ID_SHIFT)) {
        return fsm__reject(a, ERR_TOOLARGE, NULL, "too many ids in one entry");
    }
    memset(&run, 0, sizeof run);
    run.id = (a->index << FSM_ID_SHIFT) | a->seq++;
    run.status = FSM_PENDING;
    run.priority = s->priority;
    run.max_attempts = s->max_attempts;
    run.timeout_ms = s->timeout_ms;
    run.type = s->type;
    run.queue = s->queue;
    run.user_id = s->user_id;
    run.spec = s->spec;
    run.ckey = s->ckey;
    run.ckey_limit = s->ckey_limit;
    run.flags = FSM_JOB_RUN;
    run.parent = s->id;
    run.nominal_at = nominal;
    run.created_at = run.updated_at = a->now;
    *id = run.id;
    int rv = fsm__put_job(a->f, a->txn, NULL, &run);
    return rv == 0 ? 0 : fsm__storage(a, rv);
}

static int item_fire(struct apply_ctx *a,
                     const struct fsm_item *it,
                     const struct fsm_job *old)
{
    struct job_copy c;
    struct fsm_job s;
    uint64_t run_id = 0;
    int rv;

    if (!(old->flags & FSM_JOB_RECURRING) || old->status != FSM_SCHEDULED) {
        return FSM_ITEM_SKIPPED;
    }
    bool now = it->action == FSM_FIRE_NOW || it->action == FSM_FIRE_NOW_REPLACE;
    bool replace =
        it->action == FSM_FIRE_REPLACE || it->action == FSM_FIRE_NOW_REPLACE;
    if (now) {
        if (it->nominal <= 0) {
            return FSM_ITEM_SKIPPED;
        }
    } else if ((old->flags & FSM_JOB_PAUSED) ||
               (old->run_at != it->nominal &&
                fsm_test_planted_bug != FSM_BUG_FIRE)) {
        return FSM_ITEM_STALE; /* Fired already, or paused since. */
    } else if (it->next_at <= it->nominal) {
        return FSM_ITEM_SKIPPED; /* The schedule must move forward. */
    }
    if (copy_job(a, old, &c) != 0) {
        return -1;
    }
    s = c.job;
    rv = run_recorded(a, s.id, it->nominal) &&
                 fsm_test_planted_bug != FSM_BUG_FIRE
             ? FSM_ITEM_STALE
             : 0;
    if (rv == 0 && it->action != FSM_FIRE_SKIP) {
        if (replace && s.last_run != 0) {
            struct fsm_job prev;
            if (fsm__get_job(a->f, a->txn, s.last_run, &prev) == 0 &&
                !fsm_status_is_final(prev.status)) {
                rv = fsm__cancel_job(a, &prev, "replaced by a newer run");
            }
        }
        if (rv == 0) {
            rv = create_run(a, &s, it->nominal, &run_id);
        }
    }
    if (rv == 0) {
        rv = put_run(a, s.id, it, run_id);
    }
    if (rv == 0) {
        fsm__ev_schedule(a->f,
                         it->action == FSM_FIRE_SKIP ? FSM_EV_SCHEDULE_SKIPPED
                                                     : FSM_EV_SCHEDULE_FIRED,
                         &s, run_id, it->error);
    }
    if (rv == 0) {
        struct fsm_job prev;
        /* @old is stale after the writes above: re-read it for the put. */
        if (fsm__get_job(a->f, a->txn, s.id, &prev) != 0) {
            free(c.buf);
            return -1;
        }
        struct fsm_job next = s;
        if (run_id != 0) {
            next.last_run = run_id;
        }
        if (!now) {
            next.run_at = it->next_at;
        }
        next.updated_at = a->now;
        rv = fsm__put_job(a->f, a->txn, &prev, &next);
        if (rv != 0) {
            rv = fsm__storage(a, rv);
        }
    }
    free(c.buf);
    if (rv == FSM_ITEM_STALE) {
        return FSM_ITEM_STALE;
    }
    return rv == 0 ? FSM_ITEM_OK : -1;
}

static int item_retry(struct apply_ctx *a, const struct fsm_job *old)
{
    struct fsm_job job = *old;

    if ((old->status != FSM_FAILED && old->status != FSM_CANCELLED) ||
        (old->flags & FSM_JOB_RECURRING)) {
        return FSM_ITEM_SKIPPED;
    }
    /* Fresh attempts; the history and the last error stay. */
    job.status = FSM_PENDING;
    job.attempts = 0;
    job.run_at = 0;
    job.finished_at = 0;
    job.worker_id = 0;
    job.updated_at = a->now;
    int rv = fsm__put_job(a->f, a->txn, old, &job);
    return rv == 0 ? FSM_ITEM_OK : (fsm__storage(a, rv), -1);
}

static int delete_runs(struct apply_ctx *a, uint64_t schedule)
{
    unsigned char kb[16];
    MDB_val k = {8, kb}, v;
    MDB_cursor *cur;
    int rv;

    fsm__put_be64(kb, schedule);
    rv = mdb_cursor_open(a->txn, a->f->dbi[DB_RUNS], &cur);
    if (rv != 0) {
        return fsm__storage(a, fsm__lmdb_error(a->f, rv, "runs cursor"));
    }
    for (rv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rv == 0 && k.mv_size == 16 && memcmp(k.mv_data, kb, 8) == 0;
         rv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        rv = mdb_cursor_del(cur, 0);
        if (rv != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    return rv == 0 || rv == MDB_NOTFOUND
               ? 0
               : fsm__storage(a, fsm__lmdb_error(a->f, rv, "del runs"));
}

/* A run job leaves with its occurrence's record, so that retention keeps a
 * schedule's history bounded too. The schedule's run_at fence still stops
 * a stale FIRE of that occurrence. */
static int delete_run_record(struct apply_ctx *a, const struct fsm_job *run)
{
    unsigned char kb[16];
    MDB_val k = {16, kb}, v;
    uint64_t job_id;
    int rv;

    fsm__run_key(kb, run->parent, run->nominal_at);
    rv = mdb_get(a->txn, a->f->dbi[DB_RUNS], &k, &v);
    if (rv == MDB_NOTFOUND) {
        return 0;
    }
    if (rv == 0 && v.mv_size >= 20) {
        /* Only the record of this run (put_run: job id first). */
        memcpy(&job_id, v.mv_data, 8);
        if (job_id != run->id) {
            return 0;
        }
        rv = mdb_del(a->txn, a->f->dbi[DB_RUNS], &k, NULL);
    }
    return rv == 0 || rv == MDB_NOTFOUND
               ? 0
               : fsm__storage(a, fsm__lmdb_error(a->f, rv, "del run"));
}

static int item_delete(struct apply_ctx *a, const struct fsm_job *old)
{
    uint64_t id = old->id;
    bool recurring = (old->flags & FSM_JOB_RECURRING) != 0;

    if (!fsm_status_is_final(old->status)) {
        return FSM_ITEM_SKIPPED;
    }
    int rv = fsm__del_job(a->f, a->txn, old);
    if (rv != 0) {
        fsm__storage(a, rv);
        return -1;
    }
    if (recurring && delete_runs(a, id) != 0) {
        return -1;
    }
    if ((old->flags & FSM_JOB_RUN) && old->parent != 0 &&
        delete_run_record(a, old) != 0) {
        return -1;
    }
    return FSM_ITEM_OK;
}

static int apply_items(struct apply_ctx *a, const struct fsm_cmd *cmd)
{
    for (uint32_t i = 0; i < cmd->n_items; i++) {
        const struct fsm_item *it = &cmd->items[i];
        struct fsm_job old;
        int outcome;
        int rv = fsm__get_job(a->f, a->txn, it->job_id, &old);
        if (rv == ERR_NOTFOUND) {
            outcome = FSM_ITEM_NOTFOUND;
        } else if (rv != 0) {
            return fsm__storage(a, rv);
        } else if (cmd->type == FSM_CMD_FIRE) {
            outcome = item_fire(a, it, &old);
        } else if (cmd->type == FSM_CMD_RETRY) {
            outcome = item_retry(a, &old);
        } else {
            outcome = item_delete(a, &old);
        }
        if (a->res->code != 0 && a->storage == 0) {
            return a->res->code; /* Rejected (out of ids). */
        }
        if (outcome < 0 || a->storage != 0) {
            return a->storage != 0 ? a->storage : ERR_STORAGE;
        }
        rv = fsm__add_id(a, it->job_id, (uint8_t)outcome);
        if (rv != 0) {
            return fsm__reject(a, rv, NULL, "out of memory");
        }
    }
    return 0;
}

static int load_schedule(struct apply_ctx *a, uint64_t id, struct fsm_job *job)
{
    int rv = fsm__get_job(a->f, a->txn, id, job);
    if (rv == ERR_NOTFOUND) {
        return fsm__reject(a, ERR_NOTFOUND, "id", "no job %016llx",
                           (unsigned long long)id);
    }
    if (rv != 0) {
        return fsm__storage(a, rv);
    }
    if (!(job->flags & FSM_JOB_RECURRING)) {
        return fsm__reject(a, ERR_INVALID, "id", "job %016llx has no schedule",
                           (unsigned long long)id);
    }
    if (job->status != FSM_SCHEDULED) {
        return fsm__reject(a, ERR_CONFLICT, "status", "the schedule is %s",
                           fsm_status_name(job->status));
    }
    return 0;
}

static int apply_pause(struct apply_ctx *a, const struct fsm_cmd *cmd)
{
    struct fsm_job old, job;
    int rv = load_schedule(a, cmd->id, &old);

    if (rv != 0) {
        return rv;
    }
    job = old;
    if (cmd->type == FSM_CMD_PAUSE) {
        job.flags |= FSM_JOB_PAUSED;
        job.run_at = FSM_NEVER;
    } else if (old.flags & FSM_JOB_PAUSED) {
        if (cmd->patch.run_at <= 0 || cmd->patch.run_at == FSM_NEVER) {
            return fsm__reject(a, ERR_INVALID, "run_at", "no next occurrence");
        }
        job.flags &= ~(uint32_t)FSM_JOB_PAUSED;
        job.run_at = cmd->patch.run_at;
    }
    job.updated_at = a->now;
    rv = fsm__put_job(a->f, a->txn, &old, &job);
    return rv != 0 ? fsm__storage(a, rv) : fsm__add_id(a, cmd->id, 0);
}

static int apply_queue_set(struct apply_ctx *a, const struct fsm_cmd *cmd)
{
    const struct fsm_queue *q = &cmd->queue;
    unsigned char val[12] = {0};
    MDB_val k = {q->name.len, (void *)q->name.p},
            v = {q->max_pending != 0 ? 12 : 8, val};
    int rv;

    if (q->name.len == 0 || q->name.len > FSM_MAX_STR ||
        memchr(q->name.p, 0, q->name.len) != NULL) {
        return fsm__reject(a, ERR_INVALID, "name",
                           "queue name must be 1..%d "
                           "bytes without NUL",
                           FSM_MAX_STR);
    }
    if (q->paused == 0 && q->concurrency == 0 && q->max_pending == 0) {
        rv = mdb_del(a->txn, a->f->dbi[DB_QUEUES], &k, NULL);
        rv = rv == MDB_NOTFOUND ? 0 : rv;
    } else {
        val[0] = q->paused ? 1 : 0;
        memcpy(val + 4, &q->concurrency, 4);
        memcpy(val + 8, &q->max_pending, 4);
        rv = mdb_put(a->txn, a->f->dbi[DB_QUEUES], &k, &v, 0);
    }
    return rv == 0 ? 0 : fsm__storage(a, fsm__lmdb_error(a->f, rv, "queue"));
}

static int apply_cancel_wf(struct apply_ctx *a, const struct fsm_cmd *cmd)
{
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    uint64_t first;
    uint32_t n;
    int rv;

    fsm__put_be64(kb, cmd->id);
    rv = mdb_get(a->txn, a->f->dbi[DB_WORKFLOWS], &k, &v);
    if (rv == MDB_NOTFOUND) {
        return fsm__reject(a, ERR_NOTFOUND, "id", "no workflow %016llx",
                           (unsigned long long)cmd->id);
    }
    if (rv != 0 || v.mv_size < 20) {
        return fsm__storage(
            a, rv != 0 ? fsm__lmdb_error(a->f, rv, "wf") : ERR_CORRUPT);
    }
    memcpy(&first, v.mv_data, 8);
    memcpy(&n, (const unsigned char *)v.mv_data + 8, 4);
    for (uint32_t i = 0; i < n; i++) {
        struct fsm_job job;
        rv = fsm__get_job(a->f, a->txn, first + i, &job);
        if (rv == ERR_NOTFOUND) {
            continue;
        }
        if (rv != 0) {
            return fsm__storage(a, rv);
        }
        if (fsm_status_is_final(job.status)) {
            continue;
        }
        rv = fsm__cancel_job(a, &job, "workflow cancelled");
        if (rv == 0) {
            rv = fsm__add_id(a, first + i, 0);
        }
        if (rv != 0) {
            return a->storage != 0 ? a->storage : rv;
        }
    }
    return 0;
}

int fsm__apply_sched(struct apply_ctx *a, const struct fsm_cmd *cmd)
{
    switch (cmd->type) {
        case FSM_CMD_FIRE:
        case FSM_CMD_RETRY:
        case FSM_CMD_DELETE:
            return apply_items(a, cmd);
        case FSM_CMD_PAUSE:
        case FSM_CMD_RESUME:
            return apply_pause(a, cmd);
        case FSM_CMD_QUEUE_SET:
            return apply_queue_set(a, cmd);
        case FSM_CMD_CANCEL_WF:
            return apply_cancel_wf(a, cmd);
        default:
            return fsm__reject(a, ERR_INVALID, NULL, "unknown command");
    }
}
