/* Apply: one LMDB write transaction per raft entry, one child transaction
 * per command so that a rejected command leaves no trace (a batch submit is
 * all or nothing). A rejection is a result; only an LMDB failure makes
 * fsm_apply() return non-zero. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/internal.h"

int fsm__batch_header(const void *buf,
                      size_t len,
                      int64_t *time_ms,
                      uint32_t *n);

int fsm__reject(struct apply_ctx *a,
                int code,
                const char *field,
                const char *fmt,
                ...)
{
    va_list ap;
    a->res->code = code;
    snprintf(a->res->field, sizeof a->res->field, "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(a->res->msg, sizeof a->res->msg, fmt, ap);
    va_end(ap);
    return code;
}

int fsm__storage(struct apply_ctx *a, int rv)
{
    a->storage = rv;
    a->res->code = ERR_STORAGE;
    return rv;
}

int fsm__add_id(struct apply_ctx *a, uint64_t id, uint8_t existed)
{
    struct fsm *f = a->f;
    if (f->ids_used == f->ids_cap) {
        size_t cap = f->ids_cap == 0 ? 1024 : f->ids_cap * 2;
        uint64_t *ids = realloc(f->ids, cap * sizeof *ids);
        uint8_t *ex = ids != NULL ? realloc(f->existed, cap) : NULL;
        if (ids != NULL) {
            f->ids = ids;
        }
        if (ex == NULL) {
            return ERR_NOMEM;
        }
        f->existed = ex;
        f->ids_cap = cap;
    }
    f->ids[f->ids_used] = id;
    f->existed[f->ids_used] = existed;
    f->ids_used++;
    a->res->n_ids++;
    return 0;
}

static bool str_ok(struct fsm_str s, uint32_t max, bool required)
{
    if (s.len > max || (required && s.len == 0)) {
        return false;
    }
    return s.len == 0 || memchr(s.p, '\0', s.len) == NULL;
}

/* ---- SUBMIT ------------------------------------------------------------- */

/* The field @name of job @idx of a batch ("jobs[2].queue"), or @name alone
 * when @idx is negative (a single job). Formatted only when a command is
 * rejected: a bulk submit of valid jobs does no text formatting here. */
static const char *job_field(char *buf, size_t size, int idx, const char *name)
{
    if (idx < 0) {
        return name;
    }
    snprintf(buf, size, "jobs[%d].%s", idx, name);
    return buf;
}

static int validate_job(struct apply_ctx *a, const struct fsm_job *j, int idx)
{
    char field[64];
#define BAD(name, ...)                 \
    return fsm__reject(a, ERR_INVALID, \
                       job_field(field, sizeof field, idx, name), __VA_ARGS__)
    if (!str_ok(j->type, FSM_MAX_STR, true)) {
        BAD("type", "type must be 1..%d bytes without NUL", FSM_MAX_STR);
    }
    if (!str_ok(j->queue, FSM_MAX_STR, true)) {
        BAD("queue", "queue must be 1..%d bytes without NUL", FSM_MAX_STR);
    }
    if (!str_ok(j->user_id, FSM_MAX_STR, false)) {
        BAD("user_id", "user_id must be at most %d bytes", FSM_MAX_STR);
    }
    if (!str_ok(j->idem_key, FSM_MAX_STR, false)) {
        BAD("idempotency_key", "idempotency_key must be at most %d bytes",
            FSM_MAX_STR);
    }
    if (j->spec.len > FSM_MAX_SPEC) {
        BAD("payload", "spec over %d bytes", FSM_MAX_SPEC);
    }
    if (j->max_attempts < 1) {
        BAD("max_attempts", "max_attempts must be at least 1");
    }
    if (j->n_deps > FSM_MAX_DEPS) {
        BAD("depends_on", "more than %d dependencies", FSM_MAX_DEPS);
    }
#undef BAD
    return 0;
}

struct idem_val
{
    uint64_t id;
    uint64_t hash;
    int64_t created;
};

/* A new job of @queue would go past the queue's max_pending (jobs not yet
 * running: scheduled, waiting, pending)? Then reject the whole command. */
static int check_max_pending(struct apply_ctx *a, struct fsm_str queue, int idx)
{
    char field[64];
    MDB_val k = {queue.len, (void *)queue.p}, v;
    struct fsm_queue q;
    uint64_t counts[8], waiting;

    if (mdb_get(a->txn, a->f->dbi[DB_QUEUES], &k, &v) != 0 ||
        fsm__queue_decode(&v, &q) != 0 || q.max_pending == 0) {
        return 0;
    }
    fsm__queue_counts(a->f, a->txn, queue, counts);
    waiting = counts[FSM_SCHEDULED] + counts[FSM_WAITING] + counts[FSM_PENDING];
    if (waiting < q.max_pending) {
        return 0;
    }
    return fsm__reject(
        a, ERR_BUSY, job_field(field, sizeof field, idx, "queue"),
        "queue %.*s is full: %llu jobs waiting, max_pending "
        "%u; retry later",
        (int)queue.len, queue.p, (unsigned long long)waiting, q.max_pending);
}

static int submit_one(struct apply_ctx *a,
                      const struct fsm_job *in,
                      uint64_t hash,
                      int idx)
{
    struct fsm *f = a->f;
    struct fsm_job job = *in;
    char field[64];
    MDB_val k, v;
    bool waiting = false;
    int rv;

    if (in->idem_key.len > 0) {
        k.mv_size = in->idem_key.len;
        k.mv_data = (void *)in->idem_key.p;
        rv = mdb_get(a->txn, f->dbi[DB_IDEM], &k, &v);
        if (rv == 0 && v.mv_size == sizeof(struct idem_val)) {
            struct idem_val iv;
            memcpy(&iv, v.mv_data, sizeof iv);
            if (iv.hash != hash) {
                return fsm__reject(
                    a, ERR_CONFLICT,
                    job_field(field, sizeof field, idx, "idempotency_key"),
                    "idempotency key already used by job %016llx "
                    "with a different request",
                    (unsigned long long)iv.id);
            }
            return fsm__add_id(a, iv.id, 1);
        }
        if (rv != 0 && rv != MDB_NOTFOUND) {
            return fsm__storage(a, fsm__lmdb_error(f, rv, "get idem"));
        }
    }
    if (a->seq >= (1u << FSM_ID_SHIFT)) {
        return fsm__reject(a, ERR_TOOLARGE, "jobs",
                           "too many jobs in one entry");
    }
    if (!(in->flags & FSM_JOB_RECURRING) &&
        (rv = check_max_pending(a, in->queue, idx)) != 0) {
        return rv;
    }
    job.id = (a->index << FSM_ID_SHIFT) | a->seq;
    /* Ids of the dependencies, local references resolved (a workflow's
     * jobs come parents first, so a parent's id is already known). */
    uint64_t deps[FSM_MAX_DEPS];
    const char *dead = NULL;
    uint64_t dead_id = 0;
    for (uint32_t i = 0; i < in->n_deps && i < FSM_MAX_DEPS; i++) {
        struct fsm_job parent;
        uint64_t pid;
        memcpy(&pid, &in->deps[i], sizeof pid);
        if (pid & FSM_DEP_LOCAL) {
            uint64_t nth = pid & ~FSM_DEP_LOCAL;
            if (nth >= a->res->n_ids) {
                return fsm__reject(
                    a, ERR_INVALID,
                    job_field(field, sizeof field, idx, "depends_on"),
                    "job %llu of this request is not an "
                    "earlier one",
                    (unsigned long long)nth);
            }
            pid = a->f->ids[a->ids_off + nth];
        }
        deps[i] = pid;
        rv = fsm__get_job(f, a->txn, pid, &parent);
        if (rv == ERR_NOTFOUND) {
            return fsm__reject(
                a, ERR_INVALID,
                job_field(field, sizeof field, idx, "depends_on"),
                "unknown job %016llx", (unsigned long long)pid);
        }
        if (rv != 0) {
            return fsm__storage(a, rv);
        }
        if (fsm_status_is_final(parent.status) &&
            parent.status != FSM_COMPLETED) {
            if (!(in->flags & FSM_JOB_ALL_DONE) && dead == NULL) {
                dead = fsm_status_name(parent.status);
                dead_id = pid;
            }
        } else if (parent.status != FSM_COMPLETED) {
            unsigned char kb[16];
            MDB_val empty = {0, NULL};
            waiting = true;
            fsm__put_be64(kb, pid);
            fsm__put_be64(kb + 8, job.id);
            k.mv_size = 16;
            k.mv_data = kb;
            rv = mdb_put(a->txn, f->dbi[DB_DEPS], &k, &empty, 0);
            if (rv != 0) {
                return fsm__storage(a, fsm__lmdb_error(f, rv, "put dep"));
            }
        }
    }
    job.deps = deps;
    job.status = waiting               ? FSM_WAITING
                 : job.run_at > a->now ? FSM_SCHEDULED
                                       : FSM_PENDING;
    if (job.flags & FSM_JOB_RECURRING) {
        job.status = FSM_SCHEDULED; /* run_at: the first occurrence. */
        job.run_at = job.flags & FSM_JOB_PAUSED ? FSM_NEVER : job.run_at;
    }
    job.attempts = 0;
    job.created_at = job.updated_at = a->now;
    job.started_at = job.finished_at = 0;
    memset(&job.last_error, 0, sizeof job.last_error);
    memset(&job.result, 0, sizeof job.result);
    char why[80];
    if (dead != NULL) {
        /* A parent already failed or was cancelled: this job can never
         * run (unless it runs on all_done). */
        snprintf(why, sizeof why, "dependency %016llx %s",
                 (unsigned long long)dead_id, dead);
        job.status = FSM_CANCELLED;
        job.finished_at = a->now;
        job.last_error.p = why;
        job.last_error.len = (uint32_t)strlen(why);
    }
    rv = fsm__put_job(f, a->txn, NULL, &job);
    if (rv != 0) {
        return fsm__storage(a, rv);
    }
    if (in->idem_key.len > 0) {
        struct idem_val iv = {job.id, hash, a->now};
        k.mv_size = in->idem_key.len;
        k.mv_data = (void *)in->idem_key.p;
        v.mv_size = sizeof iv;
        v.mv_data = &iv;
        rv = mdb_put(a->txn, f->dbi[DB_IDEM], &k, &v, 0);
        if (rv != 0) {
            return fsm__storage(a, fsm__lmdb_error(f, rv, "put idem"));
        }
    }
    a->seq++;
    return fsm__add_id(a, job.id, 0);
}

static int put_workflow(struct apply_ctx *a,
                        const struct fsm_cmd *cmd,
                        uint64_t id)
{
    unsigned char kb[8], buf[20 + FSM_MAX_STR];
    MDB_val k = {8, kb}, v = {20 + cmd->workflow.len, buf};
    uint64_t first = id + 1;
    uint32_t n = cmd->n_jobs;
    int rv;

    fsm__put_be64(kb, id);
    memcpy(buf, &first, 8);
    memcpy(buf + 8, &n, 4);
    memcpy(buf + 12, &a->now, 8);
    memcpy(buf + 20, cmd->workflow.p, cmd->workflow.len);
    rv = mdb_put(a->txn, a->f->dbi[DB_WORKFLOWS], &k, &v, 0);
    return rv == 0 ? 0 : fsm__storage(a, fsm__lmdb_error(a->f, rv, "workflow"));
}

static int apply_submit(struct apply_ctx *a, const struct fsm_cmd *cmd)
{
    uint64_t wf = 0;
    int rv;

    if (cmd->n_jobs == 0) {
        return fsm__reject(a, ERR_INVALID, "jobs", "no jobs to submit");
    }
    if (cmd->n_jobs > FSM_MAX_BATCH_JOBS) {
        return fsm__reject(a, ERR_TOOLARGE, "jobs",
                           "%u jobs, over the limit of %d", cmd->n_jobs,
                           FSM_MAX_BATCH_JOBS);
    }
    for (uint32_t i = 0; i < cmd->n_jobs; i++) {
        rv = validate_job(a, &cmd->jobs[i], cmd->n_jobs > 1 ? (int)i : -1);
        if (rv != 0) {
            return rv;
        }
    }
    if (cmd->workflow.len > 0) {
        /* Its members get the ids right after its own, so none may be an
         * idempotent repeat of an older job. */
        if (cmd->workflow.len > FSM_MAX_STR ||
            memchr(cmd->workflow.p, 0, cmd->workflow.len) != NULL) {
            return fsm__reject(a, ERR_INVALID, "name", "bad workflow name");
        }
        if (a->seq + cmd->n_jobs + 1 >= (1u << FSM_ID_SHIFT)) {
            return fsm__reject(a, ERR_TOOLARGE, "jobs", "too many jobs");
        }
        wf = (a->index << FSM_ID_SHIFT) | a->seq++;
        rv = put_workflow(a, cmd, wf);
        if (rv != 0) {
            return rv;
        }
    }
    for (uint32_t i = 0; i < cmd->n_jobs; i++) {
        uint64_t hash = 0;
        struct fsm_job in = cmd->jobs[i];
        if (cmd->hashes != NULL) {
            memcpy(&hash, &cmd->hashes[i], sizeof hash);
        }
        if (wf != 0) {
            if (in.idem_key.len > 0) {
                char fld[64];
                snprintf(fld, sizeof fld, "jobs[%u].idempotency_key", i);
                return fsm__reject(a, ERR_INVALID, fld,
                                   "not allowed in a workflow job");
            }
            in.parent = wf;
            in.flags |= FSM_JOB_WORKFLOW;
        }
        in.flags &= FSM_JOB_RECURRING | FSM_JOB_PAUSED | FSM_JOB_ALL_DONE |
                    FSM_JOB_WORKFLOW;
        rv = submit_one(a, &in, hash, cmd->n_jobs > 1 ? (int)i : -1);
        if (rv != 0) {
            return rv;
        }
    }
    if (wf != 0) {
        /* The workflow id comes first in the result. */
        uint64_t *ids;
        rv = fsm__add_id(a, wf, 0);
        if (rv != 0) {
            return fsm__reject(a, rv, NULL, "out of memory");
        }
        ids = a->f->ids + a->ids_off;
        memmove(ids + 1, ids, (a->res->n_ids - 1) * sizeof *ids);
        ids[0] = wf;
    }
    return 0;
}

/* ---- PATCH / CANCEL ----------------------------------------------------- */

static int load_changeable(struct apply_ctx *a,
                           uint64_t id,
                           struct fsm_job *job,
                           const char *verb)
{
    int rv = fsm__get_job(a->f, a->txn, id, job);
    if (rv == ERR_NOTFOUND) {
        return fsm__reject(a, ERR_NOTFOUND, "id", "no job %016llx",
                           (unsigned long long)id);
    }
    if (rv != 0) {
        return fsm__storage(a, rv);
    }
    if (job->status == FSM_RUNNING || fsm_status_is_final(job->status)) {
        return fsm__reject(a, ERR_CONFLICT, "status", "cannot %s a %s job",
                           verb, fsm_status_name(job->status));
    }
    return 0;
}

static int apply_patch(struct apply_ctx *a, const struct fsm_cmd *cmd)
{
    struct fsm_job old, job;
    const struct fsm_job *p = &cmd->patch;
    int rv = load_changeable(a, cmd->id, &old, "change");

    if (rv != 0) {
        return rv;
    }
    job = old;
    if (cmd->mask & FSM_PATCH_PRIORITY) {
        job.priority = p->priority;
    }
    if (cmd->mask & FSM_PATCH_SPEC) {
        if (p->spec.len > FSM_MAX_SPEC) {
            return fsm__reject(a, ERR_TOOLARGE, "payload", "spec too large");
        }
        job.spec = p->spec;
    }
    if (cmd->mask & FSM_PATCH_QUEUE) {
        if (!str_ok(p->queue, FSM_MAX_STR, true)) {
            return fsm__reject(a, ERR_INVALID, "queue", "bad queue name");
        }
        job.queue = p->queue;
    }
    if (cmd->mask & FSM_PATCH_MAX_ATTEMPTS) {
        if (p->max_attempts < 1) {
            return fsm__reject(a, ERR_INVALID, "max_attempts", "must be >= 1");
        }
        job.max_attempts = p->max_attempts;
    }
    if (cmd->mask & FSM_PATCH_TIMEOUT) {
        job.timeout_ms = p->timeout_ms;
    }
    if ((cmd->mask & FSM_PATCH_RUN_AT) && (old.flags & FSM_JOB_RECURRING)) {
        return fsm__reject(a, ERR_INVALID, "run_at",
                           "a schedule's next run comes from its schedule: "
                           "use pause/resume/trigger");
    }
    if (cmd->mask & FSM_PATCH_RUN_AT) {
        job.run_at = p->run_at;
        if (job.status == FSM_SCHEDULED || job.status == FSM_PENDING) {
            job.status = job.run_at > a->now ? FSM_SCHEDULED : FSM_PENDING;
        }
    }
    job.updated_at = a->now;
    rv = fsm__put_job(a->f, a->txn, &old, &job);
    if (rv != 0) {
        return fsm__storage(a, rv);
    }
    return fsm__add_id(a, job.id, 0);
}

int fsm__cancel_job(struct apply_ctx *a,
                    const struct fsm_job *old,
                    const char *why)
{
    struct fsm_job job = *old;
    char *mem = NULL;
    int rv;

    /* A running job is cancelled at once: its lease ends here (a late
     * completion is stale) and its worker learns it from the next
     * heartbeat answer. */
    job.status = FSM_CANCELLED;
    job.worker_id = 0;
    job.finished_at = job.updated_at = a->now;
    if (why != NULL) {
        job.last_error.p = why;
        job.last_error.len = (uint32_t)strlen(why);
    }
    /* Copy what we still need from @old: its memory is LMDB's and the
     * writes below may change it. */
    if (old->status == FSM_RUNNING &&
        fsm__end_attempt(a, old, &job, FSM_ATTEMPT_CANCELLED, NULL, &mem) !=
            0) {
        return a->storage;
    }
    uint64_t deps[FSM_MAX_DEPS];
    uint32_t n_deps = old->n_deps < FSM_MAX_DEPS ? old->n_deps : FSM_MAX_DEPS;
    if (n_deps > 0) {
        memcpy(deps, old->deps, n_deps * sizeof deps[0]);
    }
    rv = fsm__put_job(a->f, a->txn, old, &job);
    free(mem);
    if (rv != 0) {
        return fsm__storage(a, rv);
    }
    for (uint32_t i = 0; i < n_deps; i++) {
        unsigned char kb[16];
        MDB_val k = {16, kb};
        fsm__put_be64(kb, deps[i]);
        fsm__put_be64(kb + 8, job.id);
        rv = mdb_del(a->txn, a->f->dbi[DB_DEPS], &k, NULL);
        if (rv != 0 && rv != MDB_NOTFOUND) {
            return fsm__storage(a, fsm__lmdb_error(a->f, rv, "del dep"));
        }
    }
    return fsm__job_ended(a, &job);
}

static int apply_cancel(struct apply_ctx *a, const struct fsm_cmd *cmd)
{
    struct fsm_job old;
    int rv = fsm__get_job(a->f, a->txn, cmd->id, &old);

    if (rv == ERR_NOTFOUND) {
        return fsm__reject(a, ERR_NOTFOUND, "id", "no job %016llx",
                           (unsigned long long)cmd->id);
    }
    if (rv != 0) {
        return fsm__storage(a, rv);
    }
    if (fsm_status_is_final(old.status)) {
        return fsm__reject(a, ERR_CONFLICT, "status", "cannot cancel a %s job",
                           fsm_status_name(old.status));
    }
    rv = fsm__cancel_job(a, &old, NULL);
    return rv != 0 ? rv : fsm__add_id(a, cmd->id, 0);
}

/* ---- Nodes -------------------------------------------------------------- */

static int apply_node(struct apply_ctx *a, const struct fsm_cmd *cmd)
{
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    int rv;

    if (cmd->node_id == 0) {
        return fsm__reject(a, ERR_INVALID, "id", "node id must not be 0");
    }
    fsm__put_be64(kb, cmd->node_id);
    if (cmd->type == FSM_CMD_NODE_DEL) {
        rv = mdb_del(a->txn, a->f->dbi[DB_NODES], &k, NULL);
        if (rv == MDB_NOTFOUND) {
            return fsm__reject(a, ERR_NOTFOUND, "id", "no node %llu",
                               (unsigned long long)cmd->node_id);
        }
        return rv == 0 ? 0 : fsm__storage(a, fsm__lmdb_error(a->f, rv, "del"));
    }
    if (cmd->raft_addr.len == 0 || cmd->raft_addr.len > 64) {
        return fsm__reject(a, ERR_INVALID, "raft_addr", "must be 1..64 bytes");
    }
    if (cmd->http_addr.len == 0 || cmd->http_addr.len > 64) {
        return fsm__reject(a, ERR_INVALID, "http_addr", "must be 1..64 bytes");
    }
    unsigned char buf[8 + 128];
    uint32_t rl = cmd->raft_addr.len, hl = cmd->http_addr.len;
    memcpy(buf, &rl, 4);
    memcpy(buf + 4, cmd->raft_addr.p, rl);
    memcpy(buf + 4 + rl, &hl, 4);
    memcpy(buf + 8 + rl, cmd->http_addr.p, hl);
    v.mv_size = 8 + rl + hl;
    v.mv_data = buf;
    rv = mdb_put(a->txn, a->f->dbi[DB_NODES], &k, &v, 0);
    return rv == 0 ? 0 : fsm__storage(a, fsm__lmdb_error(a->f, rv, "put node"));
}

/* ---- Driver ------------------------------------------------------------- */

static int apply_cmd(struct apply_ctx *a, const void *buf, size_t len)
{
    struct fsm_cmd cmd;
    struct fsm_job *jobs;
    int rv = fsm_cmd_decode(buf, len, &cmd, &jobs);

    if (rv == ERR_NOMEM) {
        return fsm__reject(a, ERR_NOMEM, NULL, "out of memory");
    }
    if (rv != 0) {
        return fsm__reject(a, ERR_CORRUPT, NULL, "command does not decode");
    }
    switch (cmd.type) {
        case FSM_CMD_SUBMIT:
            rv = apply_submit(a, &cmd);
            break;
        case FSM_CMD_PATCH:
            rv = apply_patch(a, &cmd);
            break;
        case FSM_CMD_CANCEL:
            rv = apply_cancel(a, &cmd);
            break;
        case FSM_CMD_NODE_SET:
        case FSM_CMD_NODE_DEL:
            rv = apply_node(a, &cmd);
            break;
        case FSM_CMD_NOOP:
            rv = 0;
            break;
        case FSM_CMD_WORKER_REG:
            rv = fsm__apply_worker_reg(a, &cmd);
            break;
        case FSM_CMD_WORKER_DEL:
        case FSM_CMD_WORKER_DOWN:
        case FSM_CMD_ASSIGN:
        case FSM_CMD_COMPLETE:
        case FSM_CMD_PROMOTE:
        case FSM_CMD_RELEASE:
            rv = fsm__apply_items(a, &cmd);
            break;
        case FSM_CMD_FIRE:
        case FSM_CMD_RETRY:
        case FSM_CMD_DELETE:
        case FSM_CMD_PAUSE:
        case FSM_CMD_RESUME:
        case FSM_CMD_QUEUE_SET:
        case FSM_CMD_CANCEL_WF:
            rv = fsm__apply_sched(a, &cmd);
            break;
        case FSM_CMD_TOKEN_SET:
        case FSM_CMD_TOKEN_DEL:
        case FSM_CMD_ACL_BOOTSTRAP:
            rv = fsm__apply_acl(a, &cmd);
            break;
        case FSM_CMD_WEBHOOK_SET:
        case FSM_CMD_WEBHOOK_DEL:
        case FSM_CMD_DELIVERY:
            rv = fsm__apply_webhook(a, &cmd);
            break;
        default:
            rv = fsm__reject(a, ERR_INVALID, NULL, "unknown command type %u",
                             cmd.type);
            break;
    }
    fsm_cmd_free(&cmd, jobs);
    return rv;
}

static int ensure_results(struct fsm *f, unsigned n)
{
    if (n <= f->results_cap) {
        return 0;
    }
    struct fsm_result *r = realloc(f->results, n * sizeof *r);
    if (r == NULL) {
        return ERR_NOMEM;
    }
    f->results = r;
    f->results_cap = n;
    return 0;
}

static int finish(struct fsm *f, MDB_txn *txn, uint64_t index)
{
    int rv = fsm__put_meta_u64(f, txn, FSM_META_APPLIED, index);
    if (rv != 0) {
        mdb_txn_abort(txn);
        return rv;
    }
    rv = mdb_txn_commit(txn);
    return rv == 0 ? 0 : fsm__lmdb_error(f, rv, "apply: commit");
}

/* What apply_commands() found: all applied, or (@each_alone false) a
 * command refused, so the entry must be applied again command by command. */
#define APPLY_AGAIN_ALONE (-1) /* Not an ERR_ code: those are positive. */

/* Apply the @count commands of @entry in @txn. With @each_alone, each in a
 * child transaction of its own that a refused command aborts (so it
 * changes nothing). Without, straight into @txn: LMDB then copies no page
 * per command (a child copies every page it touches that its parent made
 * dirty, and each child allocates its own dirty list), but a refused
 * command may have written part of what it does, so the first refusal
 * stops it with APPLY_AGAIN_ALONE and the caller starts again from a new
 * transaction. Both give the same results: a command sees what the ones
 * before it wrote either way. Else 0 or a storage error (@txn aborted). */
static int apply_commands(struct fsm *f,
                          MDB_txn *txn,
                          struct apply_ctx *a,
                          const unsigned char *p,
                          size_t len,
                          uint32_t count,
                          bool each_alone)
{
    size_t off = FSM_BATCH_HEADER;
    int rv;

    a->seq = 0;
    f->ids_used = 0;
    f->n_rchg = 0;
    f->keys_used = 0;
    fsm__ev_begin(f, a->now);
    fsm__counts_begin(f);
    for (uint32_t i = 0; i < count; i++) {
        struct fsm_result *r = &f->results[i];
        uint32_t clen = 0;
        memset(r, 0, sizeof *r);
        a->res = r;
        a->ids_off = f->ids_used;
        if (off + 4 <= len) {
            memcpy(&clen, p + off, 4);
        }
        if (off + 4 > len || clen > len - off - 4) {
            fsm__reject(a, ERR_CORRUPT, NULL, "command runs past the entry");
            r->ids = (uint64_t *)(uintptr_t)a->ids_off;
            off = len;
            continue;
        }
        size_t rchg_mark = f->n_rchg, keys_mark = f->keys_used;
        size_t ev_mark = fsm__ev_mark(f);
        a->txn = txn;
        if (each_alone) {
            rv = mdb_txn_begin(f->env, txn, 0, &a->txn);
            if (rv != 0) {
                mdb_txn_abort(txn);
                return fsm__lmdb_error(f, rv, "apply: child txn");
            }
        }
        apply_cmd(a, p + off + 4, clen);
        if (a->storage == 0 && r->code == 0 && each_alone) {
            /* The counters it moved go with its child transaction. */
            a->storage = fsm__counts_flush(f, a->txn);
        }
        if (a->storage != 0) {
            if (each_alone) {
                mdb_txn_abort(a->txn);
            }
            mdb_txn_abort(txn);
            return a->storage;
        }
        if (r->code != 0) {
            if (!each_alone) {
                return APPLY_AGAIN_ALONE; /* It may have written a part. */
            }
            fsm__counts_drop(f);
            mdb_txn_abort(a->txn);
            f->ids_used = a->ids_off;
            r->n_ids = 0;
            f->n_rchg = rchg_mark; /* Rejected: nothing changed. */
            f->keys_used = keys_mark;
            fsm__ev_rewind(f, ev_mark);
        } else if (each_alone) {
            rv = mdb_txn_commit(a->txn);
            if (rv != 0) {
                mdb_txn_abort(txn);
                return fsm__lmdb_error(f, rv, "apply: child commit");
            }
        }
        /* Offsets now, pointers once f->ids stops moving. */
        r->ids = (uint64_t *)(uintptr_t)a->ids_off;
        off += (4 + clen + 7) & ~(size_t)7;
    }
    rv = fsm__counts_flush(f, txn);
    if (rv != 0) {
        mdb_txn_abort(txn);
    }
    return rv;
}

int fsm_apply(struct fsm *f,
              uint64_t index,
              const void *entry,
              size_t len,
              const struct fsm_result **results,
              unsigned *n)
{
    struct apply_ctx a;
    MDB_txn *txn;
    uint32_t count;
    int rv;

    *results = NULL;
    *n = 0;
    rv = mdb_txn_begin(f->env, NULL, 0, &txn);
    if (rv != 0) {
        return fsm__lmdb_error(f, rv, "apply: begin");
    }
    if (index <= fsm__get_meta_u64(f, txn, FSM_META_APPLIED)) {
        mdb_txn_abort(txn); /* Replayed after a restart: done already. */
        return 0;
    }
    memset(&a, 0, sizeof a);
    a.f = f;
    a.index = index;
    fsm__ev_begin(f, 0);
    if (fsm__batch_header(entry, len, &a.now, &count) != 0 || count > len / 8) {
        return finish(f, txn, index);
    }
    if (ensure_results(f, count) != 0) {
        mdb_txn_abort(txn);
        snprintf(f->errmsg, sizeof f->errmsg, "apply: out of memory");
        return ERR_NOMEM;
    }
    rv = apply_commands(f, txn, &a, entry, len, count, false);
    if (rv == APPLY_AGAIN_ALONE) {
        mdb_txn_abort(txn);
        rv = mdb_txn_begin(f->env, NULL, 0, &txn);
        rv = rv != 0 ? fsm__lmdb_error(f, rv, "apply: begin")
                     : apply_commands(f, txn, &a, entry, len, count, true);
    }
    /* However the commands ended, nothing is held past them (the next pass
     * begins anew; an error leaves nothing for readers to see). */
    fsm__counts_end(f);
    if (rv != 0) {
        return rv;
    }
    for (uint32_t i = 0; i < count; i++) {
        size_t o = (size_t)(uintptr_t)f->results[i].ids;
        f->results[i].ids = f->ids != NULL ? f->ids + o : NULL;
        f->results[i].existed = f->existed != NULL ? f->existed + o : NULL;
    }
    rv = fsm__webhooks_deliver(f, txn, index);
    if (rv != 0) {
        mdb_txn_abort(txn);
        f->n_rchg = 0;
        return rv;
    }
    rv = finish(f, txn, index);
    if (rv != 0) {
        f->n_rchg = 0;
        return rv;
    }
    fsm__rchg_flush(f);
    fsm__ev_flush(f, index);
    *results = f->results;
    *n = count;
    return 0;
}
