/* Apply for workers and leases: register, assign (lease), complete, worker
 * down/removed, promote scheduled jobs.
 *
 * Fencing: an assign sets the job's lease_token to the raft index of the
 * entry, so tokens grow strictly per job. A completion (or a worker-down
 * release) whose token or worker is not the job's current one is STALE and
 * changes nothing: a paused worker's late result can never overwrite the
 * accepted one. Items apply one by one; a stale item does not spoil the
 * others. Times come from the leader (batch time, retry_at). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/internal.h"

int fsm_test_planted_bug = 0;

#define MAX_WORKER_QUEUES 1024
#define MAX_CONCURRENCY 10000
#define MAX_OUTPUT (256 * 1024)

static int get_worker(struct apply_ctx *a, uint64_t id, struct fsm_worker *w)
{
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    int rv;
    fsm__put_be64(kb, id);
    rv = mdb_get(a->txn, a->f->dbi[DB_WORKERS], &k, &v);
    if (rv == MDB_NOTFOUND) {
        return ERR_NOTFOUND;
    }
    if (rv != 0) {
        return fsm__storage(a, fsm__lmdb_error(a->f, rv, "get worker"));
    }
    return fsm_worker_decode(v.mv_data, v.mv_size, w) == 0 ? 0 : ERR_CORRUPT;
}

static int put_worker(struct apply_ctx *a, const struct fsm_worker *w)
{
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    void *buf;
    size_t len;
    int rv = fsm_worker_encode(w, &buf, &len);
    if (rv != 0) {
        return fsm__storage(a, rv);
    }
    fsm__put_be64(kb, w->id);
    v.mv_size = len;
    v.mv_data = buf;
    rv = mdb_put(a->txn, a->f->dbi[DB_WORKERS], &k, &v, 0);
    free(buf);
    return rv == 0 ? 0
                   : fsm__storage(a, fsm__lmdb_error(a->f, rv, "put worker"));
}

int fsm__apply_worker_reg(struct apply_ctx *a, const struct fsm_cmd *cmd)
{
    struct fsm_worker w = cmd->worker;

    if (w.name.len == 0 || w.name.len > FSM_MAX_STR) {
        return fsm__reject(a, ERR_INVALID, "name", "name must be 1..%d bytes",
                           FSM_MAX_STR);
    }
    if (w.queues.len == 0 || w.queues.len > MAX_WORKER_QUEUES) {
        return fsm__reject(a, ERR_INVALID, "queues",
                           "queues must be 1..%d bytes", MAX_WORKER_QUEUES);
    }
    if (w.concurrency < 1 || w.concurrency > MAX_CONCURRENCY) {
        return fsm__reject(a, ERR_INVALID, "concurrency",
                           "concurrency must be 1..%d", MAX_CONCURRENCY);
    }
    if (w.types.len > MAX_WORKER_QUEUES) {
        return fsm__reject(a, ERR_INVALID, "types", "types must be 0..%d bytes",
                           MAX_WORKER_QUEUES);
    }
    if (w.host.len > FSM_MAX_STR ||
        (w.host.len > 0 && memchr(w.host.p, 0, w.host.len) != NULL)) {
        return fsm__reject(a, ERR_INVALID, "host",
                           "host must be 0..%d bytes without NUL", FSM_MAX_STR);
    }
    if (w.secret_hash.len != 0 && w.secret_hash.len != 64) {
        return fsm__reject(a, ERR_INVALID, "secret",
                           "a secret hash is 64 hex digits");
    }
    if (a->seq >= (1u << FSM_ID_SHIFT)) {
        return fsm__reject(a, ERR_TOOLARGE, NULL, "too many ids in one entry");
    }
    w.id = (a->index << FSM_ID_SHIFT) | a->seq++;
    w.registered_at = a->now;
    w.down = 0;
    int rv = put_worker(a, &w);
    if (rv == 0) {
        fsm__ev_worker(a->f, FSM_EV_WORKER_UP, &w);
    }
    return rv != 0 ? rv : fsm__add_id(a, w.id, 0);
}

static int put(struct apply_ctx *a,
               const struct fsm_job *old,
               const struct fsm_job *job)
{
    int rv = fsm__put_job(a->f, a->txn, old, job);
    return rv == 0 ? 0 : fsm__storage(a, rv);
}

int fsm__end_attempt(struct apply_ctx *a,
                     const struct fsm_job *old,
                     struct fsm_job *job,
                     uint8_t outcome,
                     const struct fsm_item *it,
                     char **mem)
{
    struct fsm_attempt at;
    memset(&at, 0, sizeof at);
    at.number = old->attempts;
    at.outcome = outcome;
    at.worker_id = old->worker_id;
    at.token = old->lease_token;
    at.started_at = old->started_at;
    at.finished_at = a->now;
    /* Who ran it: copied into the job at ASSIGN, because WORKER_DEL
     * deletes the worker's record before it ends the worker's leases (and a
     * late COMPLETE may arrive after the record is gone). A job assigned
     * by an older version has no copy: then the record, if it is still
     * there. */
    at.worker_name = old->worker_name;
    at.worker_host = old->worker_host;
    if (at.worker_name.len == 0) {
        struct fsm_worker w;
        if (get_worker(a, old->worker_id, &w) == 0) {
            at.worker_name = w.name;
            at.worker_host = w.host;
        } else if (a->storage != 0) {
            return a->storage;
        }
    }
    if (it != NULL) {
        at.exit_code = it->exit_code;
        at.error = it->error;
        at.output = it->output;
    }
    /* Copies old->history (LMDB's memory) before anything is written. */
    int rv = fsm_attempt_append(old->history, &at, &job->history, mem);
    job->worker_name = (struct fsm_str){NULL, 0};
    job->worker_host = (struct fsm_str){NULL, 0};
    return rv == 0 ? 0 : fsm__storage(a, rv);
}

void fsm__attempt_failed(struct apply_ctx *a,
                         struct fsm_job *job,
                         const struct fsm_item *it)
{
    job->last_error = it->error;
    job->exit_code = it->exit_code;
    job->output = it->output;
    job->worker_id = 0;
    job->updated_at = a->now;
    if (it->retryable && job->attempts < job->max_attempts) {
        job->run_at = it->retry_at;
        job->status = it->retry_at > a->now ? FSM_SCHEDULED : FSM_PENDING;
    } else {
        job->status = FSM_FAILED; /* The dead-letter queue. */
        job->finished_at = a->now;
    }
}

/* The children still waiting on @parent (their deps entries are removed:
 * @parent has ended). A malloc'ed array in *out. */
static int take_children(struct apply_ctx *a,
                         uint64_t parent,
                         uint64_t **out,
                         size_t *n_out)
{
    unsigned char kb[16];
    MDB_val k = {8, kb}, v;
    MDB_cursor *cur;
    uint64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rv;

    fsm__put_be64(kb, parent);
    rv = mdb_cursor_open(a->txn, a->f->dbi[DB_DEPS], &cur);
    if (rv != 0) {
        return fsm__storage(a, fsm__lmdb_error(a->f, rv, "deps cursor"));
    }
    for (rv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rv == 0 && k.mv_size == 16 && memcmp(k.mv_data, kb, 8) == 0;
         rv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (n == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            uint64_t *grown = realloc(ids, cap * sizeof *ids);
            if (grown == NULL) {
                mdb_cursor_close(cur);
                free(ids);
                return fsm__storage(a, ERR_NOMEM);
            }
            ids = grown;
        }
        ids[n++] = fsm__get_be64((const unsigned char *)k.mv_data + 8);
    }
    mdb_cursor_close(cur);
    for (size_t i = 0; i < n; i++) {
        fsm__put_be64(kb + 8, ids[i]);
        k.mv_size = 16;
        k.mv_data = kb;
        rv = mdb_del(a->txn, a->f->dbi[DB_DEPS], &k, NULL);
        if (rv != 0 && rv != MDB_NOTFOUND) {
            free(ids);
            return fsm__storage(a, fsm__lmdb_error(a->f, rv, "del dep"));
        }
    }
    *out = ids;
    *n_out = n;
    return 0;
}

/* What a waiting child does now: 0 keep waiting, 1 run, 2 cancel (*dead:
 * the parent that failed or was cancelled). */
static int child_verdict(struct apply_ctx *a,
                         const struct fsm_job *child,
                         uint64_t *dead)
{
    int verdict = 1;
    for (uint32_t d = 0; d < child->n_deps; d++) {
        struct fsm_job p;
        uint64_t pid;
        memcpy(&pid, &child->deps[d], sizeof pid);
        if (fsm__get_job(a->f, a->txn, pid, &p) != 0) {
            continue; /* Removed by retention: it had ended. */
        }
        if (!fsm_status_is_final(p.status)) {
            verdict = 0;
        } else if (p.status != FSM_COMPLETED &&
                   !(child->flags & FSM_JOB_ALL_DONE)) {
            *dead = pid;
            return 2;
        }
    }
    return verdict;
}

int fsm__release_children(struct apply_ctx *a, uint64_t parent)
{
    uint64_t *children = NULL;
    size_t n = 0;
    int rv = take_children(a, parent, &children, &n);

    for (size_t i = 0; rv == 0 && i < n; i++) {
        struct fsm_job old, job;
        uint64_t dead = 0;
        int verdict;
        if (fsm__get_job(a->f, a->txn, children[i], &old) != 0 ||
            old.status != FSM_WAITING) {
            continue;
        }
        verdict = child_verdict(a, &old, &dead);
        if (verdict == 1) {
            job = old;
            job.status = job.run_at > a->now ? FSM_SCHEDULED : FSM_PENDING;
            job.updated_at = a->now;
            rv = put(a, &old, &job);
        } else if (verdict == 2) {
            struct fsm_job p;
            char why[96];
            snprintf(why, sizeof why, "dependency %016llx %s",
                     (unsigned long long)dead,
                     fsm__get_job(a->f, a->txn, dead, &p) == 0
                         ? fsm_status_name(p.status)
                         : "ended");
            /* Recursion depth is the depth of the DAG below @parent. */
            rv = fsm__cancel_job(a, &old, why);
        }
    }
    free(children);
    return rv != 0 ? rv : a->storage;
}

int fsm__job_ended(struct apply_ctx *a, const struct fsm_job *job)
{
    if (!fsm_status_is_final(job->status)) {
        return 0;
    }
    return fsm__release_children(a, job->id);
}

static int item_assign(struct apply_ctx *a,
                       const struct fsm_item *it,
                       struct fsm_job *old)
{
    struct fsm_worker w;
    struct fsm_job job = *old;
    int rv;

    if (old->status != FSM_PENDING) {
        return FSM_ITEM_SKIPPED;
    }
    rv = get_worker(a, it->worker_id, &w);
    if (a->storage != 0) {
        return -1;
    }
    if (rv != 0 || w.down) {
        return FSM_ITEM_STALE;
    }
    job.status = FSM_RUNNING;
    job.attempts++;
    job.worker_id = it->worker_id;
    job.worker_name = w.name; /* Borrowed: put() encodes before writing. */
    job.worker_host = w.host;
    job.lease_token = a->index;
    job.started_at = job.updated_at = a->now;
    job.finished_at = 0;
    return put(a, old, &job) == 0 ? FSM_ITEM_OK : -1;
}

static int item_complete(struct apply_ctx *a,
                         const struct fsm_item *it,
                         struct fsm_job *old)
{
    struct fsm_job job = *old;
    char *mem = NULL;
    int rv;

    if (old->status != FSM_RUNNING || (old->lease_token != it->token &&
                                       fsm_test_planted_bug != FSM_BUG_TOKEN)) {
        return FSM_ITEM_STALE;
    }
    if (it->output.len > MAX_OUTPUT || it->result.len > MAX_OUTPUT ||
        it->error.len > FSM_MAX_ERROR) {
        return FSM_ITEM_SKIPPED;
    }
    if (fsm__end_attempt(a, old, &job,
                         it->ok ? FSM_ATTEMPT_OK : FSM_ATTEMPT_FAILED, it,
                         &mem) != 0) {
        return -1;
    }
    if (it->ok) {
        job.status = FSM_COMPLETED;
        job.finished_at = job.updated_at = a->now;
        job.result = it->result;
        job.output = it->output;
        job.exit_code = it->exit_code;
        memset(&job.last_error, 0, sizeof job.last_error);
        job.worker_id = 0;
        rv = put(a, old, &job);
        free(mem);
        if (rv != 0 || fsm__job_ended(a, &job) != 0) {
            return -1;
        }
        return FSM_ITEM_OK;
    }
    fsm__attempt_failed(a, &job, it);
    rv = put(a, old, &job);
    free(mem);
    if (rv != 0 || fsm__job_ended(a, &job) != 0) {
        return -1;
    }
    return FSM_ITEM_OK;
}

/* Worker down or removed: its leases end through the retry policy. */
static int item_release(struct apply_ctx *a,
                        uint64_t worker,
                        const struct fsm_item *it,
                        struct fsm_job *old)
{
    struct fsm_job job = *old;
    struct fsm_item lost = *it;

    if (old->status != FSM_RUNNING || old->worker_id != worker ||
        old->lease_token != it->token) {
        return FSM_ITEM_STALE;
    }
    lost.retryable = 1;
    if (lost.error.len == 0) {
        lost.error.p = "lease lost: worker down";
        lost.error.len = (uint32_t)strlen(lost.error.p);
    }
    char *mem = NULL;
    if (fsm__end_attempt(a, old, &job, FSM_ATTEMPT_LOST, &lost, &mem) != 0) {
        return -1;
    }
    fsm__attempt_failed(a, &job, &lost);
    int rv = put(a, old, &job);
    free(mem);
    if (rv != 0 || fsm__job_ended(a, &job) != 0) {
        return -1;
    }
    return FSM_ITEM_OK;
}

static int item_promote(struct apply_ctx *a, struct fsm_job *old)
{
    struct fsm_job job = *old;
    if (old->status != FSM_SCHEDULED || old->run_at > a->now ||
        (old->flags & FSM_JOB_RECURRING)) {
        return FSM_ITEM_SKIPPED;
    }
    job.status = FSM_PENDING;
    job.updated_at = a->now;
    return put(a, old, &job) == 0 ? FSM_ITEM_OK : -1;
}

int fsm__apply_items(struct apply_ctx *a, const struct fsm_cmd *cmd)
{
    if (cmd->type == FSM_CMD_WORKER_DEL || cmd->type == FSM_CMD_WORKER_DOWN) {
        struct fsm_worker w;
        int rv = get_worker(a, cmd->id, &w);
        if (a->storage != 0) {
            return a->storage;
        }
        if (rv == ERR_NOTFOUND) {
            return fsm__reject(a, ERR_NOTFOUND, "id", "no worker %016llx",
                               (unsigned long long)cmd->id);
        }
        if (!w.down) { /* Before the write: @w borrows from its page. */
            fsm__ev_worker(a->f, FSM_EV_WORKER_DOWN, &w);
        }
        if (cmd->type == FSM_CMD_WORKER_DOWN) {
            w.down = 1;
            rv = put_worker(a, &w);
        } else {
            unsigned char kb[8];
            MDB_val k = {8, kb};
            fsm__put_be64(kb, cmd->id);
            rv = mdb_del(a->txn, a->f->dbi[DB_WORKERS], &k, NULL);
            if (rv != 0) {
                rv = fsm__storage(a, fsm__lmdb_error(a->f, rv, "del worker"));
            }
        }
        if (rv != 0) {
            return rv;
        }
    }
    for (uint32_t i = 0; i < cmd->n_items; i++) {
        const struct fsm_item *it = &cmd->items[i];
        struct fsm_job old;
        int outcome;
        int rv = fsm__get_job(a->f, a->txn, it->job_id, &old);
        if (rv == ERR_NOTFOUND) {
            outcome = FSM_ITEM_NOTFOUND;
        } else if (rv != 0) {
            return fsm__storage(a, rv);
        } else {
            switch (cmd->type) {
                case FSM_CMD_ASSIGN:
                    outcome = item_assign(a, it, &old);
                    break;
                case FSM_CMD_COMPLETE:
                    outcome = item_complete(a, it, &old);
                    break;
                case FSM_CMD_PROMOTE:
                    outcome = item_promote(a, &old);
                    break;
                case FSM_CMD_RELEASE:
                    outcome = item_release(a, it->worker_id, it, &old);
                    break;
                default:
                    outcome = item_release(a, cmd->id, it, &old);
                    break;
            }
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
