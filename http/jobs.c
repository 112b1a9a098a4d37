/* Job handlers: submit (one or a batch), get, list, patch, cancel.
 *
 * Writes run on the leader only (server.c forwards otherwise): parse and
 * validate → encode one fsm command → cluster_submit() → the group commit
 * replies after the entry is committed and applied → read the records back
 * from the local fsm and render them. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "http/internal.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000

enum { CALL_SUBMIT, CALL_ONE };

/* Render the jobs of @res (ids) from the local fsm into @b (from @pool),
 * counting the new ones in the metrics if @count (one read per job, not a
 * second pass): 0, ERR_NOTFOUND if a single job is not there, or a read
 * error. */
static int render_jobs(struct http_server *s,
                       h2o_mem_pool_t *pool,
                       const struct fsm_result *res,
                       bool batch,
                       bool count,
                       struct sb *b)
{
    struct fsm_reader *rd;
    uint32_t found = 0;
    int rv = fsm_read_begin(cluster_fsm(s->cluster), &rd);

    if (rv != 0) {
        return rv;
    }
    http__sb_init(b, pool);
    if (batch) {
        http__sb_puts(b, "{\"jobs\":[");
    }
    for (uint32_t i = 0; i < res->n_ids; i++) {
        struct fsm_job job;
        bool created = count && (res->existed == NULL || !res->existed[i]);
        s->submitted += created;
        if (fsm_get_job(rd, res->ids[i], &job) == 0) {
            if (created) {
                sched_count_submitted(s->sched, job.queue, 1);
            }
            if (found++ > 0) {
                http__sb_put(b, ",", 1);
            }
            http__job_write(b, &job);
            if (found == 1) {
                http__sb_reserve_records(b, res->n_ids - 1);
            }
        }
    }
    fsm_read_end(rd);
    if (batch) {
        http__sb_puts(b, "]}");
    } else if (found != 1) {
        return ERR_NOTFOUND;
    }
    return 0;
}

/* How many of @res's jobs are new (not found by their idempotency key). */
static int created_count(const struct fsm_result *res)
{
    int created = 0;
    for (uint32_t i = 0; i < res->n_ids; i++) {
        created += res->existed == NULL || !res->existed[i];
    }
    return created;
}

/* A write's answer, whichever way it goes back (HTTP here, or the forward
 * channel to the follower the client reached): an error, or the jobs of
 * @res rendered into @body with @status. */
struct outcome
{
    int err;
    const char *field, *msg;
    int status;
    struct sb body;
};

static void settle(struct http_server *s,
                   h2o_mem_pool_t *pool,
                   int status,
                   const struct fsm_result *res,
                   int kind,
                   bool batch,
                   struct outcome *o)
{
    int created, rv;

    memset(o, 0, sizeof *o);
    if (status != 0) {
        o->err = status;
        o->msg = status == ERR_UNKNOWN
                     ? "leadership was lost: the write may or may not be "
                       "committed; retry with an idempotency key"
                     : NULL;
        return;
    }
    if (res->code != 0) {
        o->err = res->code;
        o->field = res->field;
        o->msg = res->msg;
        return;
    }
    created = kind == CALL_SUBMIT ? created_count(res) : 0;
    rv = render_jobs(s, pool, res, batch, created > 0, &o->body);
    if (rv != 0) {
        o->err = rv;
        o->msg =
            rv == ERR_NOTFOUND ? "job vanished" : "cannot read the job table";
        return;
    }
    o->status = created > 0 ? 201 : 200;
}

/* ---- The forward channel: a follower's side ------------------------------ */

/* Follower: send @cmd over the channel; false if it is not open (the
 * caller forwards over HTTP then). */
static bool fwd_submit(struct http_server *s,
                       h2o_req_t *req,
                       struct fsm_cmd *cmd,
                       bool batch)
{
    void *buf;
    size_t len;
    bool sent;

    if (!cluster_fwd_ready(s->cluster) || fsm_cmd_encode(cmd, &buf, &len)) {
        return false;
    }
    sent = http__fwd_send(
        s, req, batch ? HTTP_FWD_SUBMIT_BATCH : HTTP_FWD_SUBMIT, buf, len);
    free(buf);
    return sent;
}

/* ---- The forward channel: the leader's side ------------------------------ */

struct fwd_submit
{
    struct http_server *s;
    struct cluster_fwd_call *fc;
    bool batch;
};

static void fwd_reply_err(struct cluster_fwd_call *fc,
                          int err,
                          const char *field,
                          const char *msg)
{
    struct cluster_fwd_answer a = {.err = err, .field = field, .msg = msg};
    cluster_fwd_reply(fc, &a);
}

static void fwd_submitted_cb(void *data,
                             int status,
                             const struct fsm_result *res)
{
    struct fwd_submit *fs = data;
    h2o_mem_pool_t pool;
    struct outcome o;

    h2o_mem_init_pool(&pool);
    settle(fs->s, &pool, status, res, CALL_SUBMIT, fs->batch, &o);
    cluster_fwd_reply(fs->fc,
                      &(struct cluster_fwd_answer){
                          .err = o.err,
                          .field = o.field,
                          .msg = o.msg,
                          .status = o.status,
                          .index = cluster_applied_index(fs->s->cluster),
                          .body = o.body.p,
                          .body_len = o.err == 0 ? o.body.len : 0,
                      });
    h2o_mem_clear_pool(&pool);
    free(fs);
}

/* A SUBMIT from a follower that parsed, validated and checked it against
 * the ACL (the channel is node to node: mutual TLS in secure mode), or a
 * relayed call (routes.c). Only SUBMIT commands are taken as commands. */
void http__fwd_handle(void *data,
                      struct cluster_fwd_call *fc,
                      uint32_t kind,
                      const void *payload,
                      size_t len)
{
    struct http_server *s = data;
    struct fwd_submit *fs;
    const char *why;
    int rv;

    if (kind == HTTP_FWD_RELAY) {
        http__relay_handle(s, fc, payload, len);
        return;
    }
    if (kind != HTTP_FWD_SUBMIT && kind != HTTP_FWD_SUBMIT_BATCH) {
        fwd_reply_err(fc, ERR_INVALID, NULL, HTTP_FWD_UNKNOWN_KIND);
        return;
    }
    /* Apply decodes it (and rejects it alone if it does not). */
    if (fsm_cmd_type(payload, len) != FSM_CMD_SUBMIT) {
        fwd_reply_err(fc, ERR_INVALID, NULL, "not a submit command");
        return;
    }
    if ((rv = cluster_admit(s->cluster, len, &why)) != 0) {
        fwd_reply_err(fc, rv, NULL, why);
        return;
    }
    fs = malloc(sizeof *fs);
    if (fs == NULL) {
        fwd_reply_err(fc, ERR_NOMEM, NULL, NULL);
        return;
    }
    fs->s = s;
    fs->fc = fc;
    fs->batch = kind == HTTP_FWD_SUBMIT_BATCH;
    rv = cluster_submit(s->cluster, payload, len, fwd_submitted_cb, fs);
    if (rv != 0) {
        free(fs);
        fwd_reply_err(fc, rv, NULL, NULL);
    }
}

static void submitted_cb(void *data, int status, const struct fsm_result *res)
{
    struct call *call = data;
    struct http_server *s = call->s;
    bool batch = call->batch;
    int kind = call->kind;
    h2o_req_t *req = http__call_finish(call);
    struct outcome o;

    if (req == NULL) {
        return;
    }
    if (status == ERR_NOTLEADER) {
        /* Never proposed (raft_apply refused it): safe to forward. */
        http__forward(s, req);
        return;
    }
    settle(s, &req->pool, status, res, kind, batch, &o);
    if (o.err != 0) {
        http__send_err(req, o.err, o.field, o.msg);
    } else {
        http__send_sb(req, o.status, &o.body,
                      cluster_applied_index(s->cluster));
    }
}

static void submit_encoded(struct http_server *s,
                           h2o_req_t *req,
                           struct fsm_cmd *cmd,
                           int kind,
                           bool batch)
{
    struct call *call;
    const char *why;
    int rv;

    if (kind == CALL_SUBMIT && !cluster_is_leader(s->cluster)) {
        /* A follower here: the route has ROUTE_CHANNEL. */
        if (!fwd_submit(s, req, cmd, batch)) {
            http__forward(s, req);
        }
        return;
    }
    /* New jobs wait while the node has more uncommitted writes than it
     * may hold (cluster_admit): 429 + Retry-After, nothing proposed. */
    if (kind == CALL_SUBMIT &&
        (rv = cluster_admit(s->cluster, req->entity.len, &why)) != 0) {
        http__send_err(req, rv, NULL, why);
        return;
    }
    call = http__call_new(s, req);
    call->kind = kind;
    call->batch = batch;
    rv = cluster_submit_cmd(s->cluster, cmd, submitted_cb, call);
    if (rv != 0) {
        http__call_unref(call);
        if (rv == ERR_NOTLEADER) {
            http__forward(s, req); /* Lost leadership since routing. */
        } else {
            http__send_err(req, rv, NULL, NULL);
        }
    }
}

void http__jobs_submit(struct http_server *s,
                       h2o_req_t *req,
                       const struct http_args *a)
{
    json_t *body = http__body_json(req);
    json_t *list;
    struct job_input *ins;
    struct fsm_job *jobs;
    uint64_t *hashes;
    struct fsm_cmd cmd;
    bool batch;
    size_t n;
    int64_t now = sched_now(s->sched);
    int rv = 0;

    if (body == NULL) {
        return;
    }
    batch = json_is_array(body) ||
            (json_is_object(body) && json_object_size(body) == 1 &&
             json_is_array(json_object_get(body, "jobs")));
    list = json_is_array(body) ? body : json_object_get(body, "jobs");
    n = batch ? json_array_size(list) : 1;
    if (batch && n == 0) {
        json_decref(body);
        http__send_error(req, 400, "invalid_argument", "jobs",
                         "a batch needs at least one job");
        return;
    }
    if (n > FSM_MAX_BATCH_JOBS) {
        json_decref(body);
        http__send_error(req, 413, "too_large", "jobs",
                         "%zu jobs in one batch, over the limit of %d", n,
                         FSM_MAX_BATCH_JOBS);
        return;
    }
    ins = calloc(n, sizeof *ins);
    jobs = calloc(n, sizeof *jobs);
    hashes = calloc(n, sizeof *hashes);
    for (size_t i = 0; i < n && ins != NULL && jobs && hashes; i++) {
        char field[64], msg[400];
        /* Field names of a batch ("jobs[2].queue") are formatted only for
         * an error: a bulk submit of valid jobs formats no text here. */
        rv = http__job_parse(
            &(struct job_parse_ctx){now, s->cfg.max_payload,
                                    batch ? (long)i : -1},
            batch ? json_array_get(list, i) : body, &ins[i],
            &(struct job_parse_err){field, sizeof field, msg, sizeof msg});
        if (rv != 0) {
            http__send_err(req, rv, field, msg);
            for (size_t j = 0; j <= i; j++) {
                http__job_input_free(&ins[j]);
            }
            goto out;
        }
        jobs[i] = ins[i].job;
        hashes[i] = ins[i].hash;
        if (!http__acl_allows(a, jobs[i].queue, jobs[i].type)) {
            if (batch) {
                snprintf(field, sizeof field, "jobs[%zu].queue", i);
            }
            http__acl_check(s, req, a, jobs[i].queue, jobs[i].type,
                            batch ? field : "queue");
            for (size_t j = 0; j <= i; j++) {
                http__job_input_free(&ins[j]);
            }
            goto out;
        }
    }
    if (ins == NULL || jobs == NULL || hashes == NULL) {
        http__send_err(req, ERR_NOMEM, NULL, NULL);
        goto out;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_CMD_SUBMIT;
    cmd.n_jobs = (uint32_t)n;
    cmd.jobs = jobs;
    cmd.hashes = hashes;
    submit_encoded(s, req, &cmd, CALL_SUBMIT, batch);
    for (size_t i = 0; i < n; i++) {
        http__job_input_free(&ins[i]);
    }
out:
    free(ins);
    free(jobs);
    free(hashes);
    json_decref(body);
}

static bool parse_id_or_404(h2o_req_t *req,
                            const char *id,
                            size_t len,
                            uint64_t *out)
{
    if (http__parse_id(id, len, out) != 0) {
        http__send_error(req, 404, "not_found", "id", "no job with id \"%.*s\"",
                         (int)len, id);
        return false;
    }
    return true;
}

void http__job_answer(struct http_server *s, h2o_req_t *req, uint64_t id)
{
    struct fsm_reader *rd;
    struct fsm_job job;
    int rv = fsm_read_begin(cluster_fsm(s->cluster), &rd);

    if (rv != 0) {
        http__send_err(req, rv, NULL, "cannot read the job table");
        return;
    }
    rv = fsm_get_job(rd, id, &job);
    if (rv == 0) {
        struct sb b;
        http__sb_init(&b, &req->pool);
        http__job_write(&b, &job);
        if (job.status == FSM_PENDING && !sched_job_runnable(rd, &job)) {
            /* The object is open again for one more field. */
            char why[640];
            int n = snprintf(why, sizeof why,
                             "a live worker on queue %.*s that runs type %.*s",
                             (int)job.queue.len, job.queue.p, (int)job.type.len,
                             job.type.p);
            b.len--;
            http__sb_puts(&b, ",\"waiting_for\":");
            http__sb_json_str(&b, (struct fsm_str){why, (uint32_t)n});
            http__sb_puts(&b, "}");
        }
        fsm_read_end(rd);
        http__send_sb(req, 200, &b, cluster_applied_index(s->cluster));
        return;
    }
    fsm_read_end(rd);
    if (rv == ERR_NOTFOUND) {
        http__send_error(req, 404, "not_found", "id", "no job with id %016llx",
                         (unsigned long long)id);
    } else {
        http__send_err(req, rv, NULL, NULL);
    }
}

struct linear_read
{
    struct call *call;
    uint64_t id;
};

static void barrier_done_cb(void *data, int status, const char *msg)
{
    struct linear_read *lr = data;
    struct http_server *s = lr->call->s;
    uint64_t id = lr->id;
    h2o_req_t *req = http__call_finish(lr->call);

    free(lr);
    if (req == NULL) {
        return;
    }
    if (status == ERR_NOTLEADER) {
        /* Never proposed (raft_apply refused it): safe to forward. */
        http__forward(s, req);
        return;
    }
    if (status != 0) {
        http__send_err(req, status, NULL, msg);
        return;
    }
    http__job_answer(s, req, id);
}

void http__jobs_get(struct http_server *s,
                    h2o_req_t *req,
                    const struct http_args *a)
{
    const char *ids = a->id.base;
    size_t len = a->id.len;
    char buf[32];
    uint64_t id;

    if (!parse_id_or_404(req, ids, len, &id)) {
        return;
    }
    if (http__job_wait(s, req, id) != 0) {
        return; /* Parked until the job ends, or answered 400/503. */
    }
    if (http__query(req, "consistency", buf, sizeof buf) != NULL &&
        strcmp(buf, "linearizable") == 0 && cluster_is_leader(s->cluster)) {
        struct linear_read *lr = malloc(sizeof *lr);
        int rv;
        lr->call = http__call_new(s, req);
        lr->id = id;
        rv = cluster_barrier(s->cluster, barrier_done_cb, lr);
        if (rv != 0) {
            http__call_unref(lr->call);
            free(lr);
            http__send_err(req, rv, NULL, NULL);
        }
        return;
    }
    http__job_answer(s, req, id);
}

struct list_ctx
{
    struct sb b;
    unsigned n;
    size_t max_bytes; /* The page ends after the item that passes it. */
};

/* A page that grew past this is likely to reach max_bytes: its buffer
 * grows once to the whole page instead of doubling (each doubling copies
 * the page and touches fresh memory, in the request's pool until the
 * answer is written). */
#define LIST_BIG_PAGE ((size_t)256 << 10)

static void list_reserve(struct list_ctx *ctx, const struct fsm_job *job)
{
    struct sb *b = &ctx->b;
    size_t need = job->spec.len + 8192; /* The record around the spec. */
    size_t cap;
    char *p;

    if (b->len + need <= b->cap || b->len < LIST_BIG_PAGE) {
        return; /* Fits, or small: the usual doubling. */
    }
    cap = ctx->max_bytes > b->len ? ctx->max_bytes : b->len;
    cap += need;
    p = h2o_mem_alloc_pool(b->pool, cap);
    memcpy(p, b->p, b->len);
    b->p = p;
    b->cap = cap;
}

static int list_cb(void *data, const struct fsm_job *job)
{
    struct list_ctx *ctx = data;
    list_reserve(ctx, job);
    if (ctx->n++ > 0) {
        http__sb_put(&ctx->b, ",", 1);
    }
    http__job_write(&ctx->b, job);
    /* Full: fsm_list stops here and the cursor continues after this job. */
    return ctx->b.len >= ctx->max_bytes ? 1 : 0;
}

bool http__query_str(h2o_req_t *req,
                     const char *name,
                     char *buf,
                     size_t size,
                     struct fsm_str *out)
{
    if (http__query(req, name, buf, size) == NULL || buf[0] == '\0') {
        return false;
    }
    out->p = buf;
    out->len = (uint32_t)strlen(buf);
    return true;
}

void http__jobs_list(struct http_server *s,
                     h2o_req_t *req,
                     const struct http_args *a)
{
    http__jobs_list_status(s, req, 0);
}

/* A list request parsed and waiting for its turn (http__defer): the
 * strings the query points to live here. */
struct list_req
{
    struct fsm_query q;
    char user[FSM_MAX_STR + 1], queue[FSM_MAX_STR + 1], type[FSM_MAX_STR + 1],
        cursor[FSM_CURSOR_SIZE];
};

static void list_render(struct call *call)
{
    struct http_server *s = call->s;
    struct list_req *lr = (struct list_req *)(call + 1);
    h2o_req_t *req = call->req;
    char next[FSM_CURSOR_SIZE];
    struct fsm_reader *rd;
    struct list_ctx ctx;
    int rv;

    http__call_unref(call); /* The deferred reference; the pool's remains. */
    if (req == NULL) {
        return; /* The client went away (HTTP/2 reset). */
    }
    if (s->ctx.shutdown_requested) {
        http__send_err(req, ERR_SHUTDOWN, NULL, NULL);
        return;
    }
    if (http__output_full(s, req)) {
        return; /* Do not render a page nobody may be reading. */
    }
    rv = fsm_read_begin(cluster_fsm(s->cluster), &rd);
    if (rv != 0) {
        http__send_err(req, rv, NULL, "cannot read the job table");
        return;
    }
    http__sb_init(&ctx.b, &req->pool);
    ctx.n = 0;
    ctx.max_bytes = s->cfg.page_max_bytes;
    http__sb_puts(&ctx.b, "{\"jobs\":[");
    rv = fsm_list(rd, &lr->q, list_cb, &ctx, next);
    fsm_read_end(rd);
    if (rv != 0) {
        http__send_err(
            req, rv, rv == ERR_INVALID ? "cursor" : NULL,
            rv == ERR_INVALID ? "cursor does not match this query" : NULL);
        return;
    }
    http__sb_puts(&ctx.b, "]");
    if (next[0] != '\0') {
        /* Cursors are [A-Za-z0-9] only: no escaping needed. */
        http__sb_printf(&ctx.b, ",\"next_cursor\":\"%s\"", next);
    }
    http__sb_puts(&ctx.b, "}");
    http__send_sb(req, 200, &ctx.b, cluster_applied_index(s->cluster));
}

void http__jobs_list_status(struct http_server *s,
                            h2o_req_t *req,
                            uint8_t fixed)
{
    char status[32], limit[16], order[8];
    struct list_req *lr;
    struct call *call;

    call = http__call_new_extra(s, req, sizeof *lr);
    if (call == NULL) {
        http__send_err(req, ERR_NOMEM, NULL, NULL);
        return;
    }
    lr = (struct list_req *)(call + 1);
    memset(&lr->q, 0, sizeof lr->q);
    lr->q.limit = LIST_DEFAULT;
    lr->q.status = fixed;
    if (fixed == 0 &&
        http__query(req, "status", status, sizeof status) != NULL) {
        lr->q.status = (uint8_t)fsm_status_parse(status);
        if (lr->q.status == 0) {
            http__call_unref(call);
            http__send_error(req, 400, "invalid_argument", "status",
                             "unknown status \"%s\"", status);
            return;
        }
    }
    http__query_str(req, "user_id", lr->user, sizeof lr->user, &lr->q.user_id);
    http__query_str(req, "queue", lr->queue, sizeof lr->queue, &lr->q.queue);
    http__query_str(req, "type", lr->type, sizeof lr->type, &lr->q.type);
    if (http__query(req, "limit", limit, sizeof limit) != NULL) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (*end != '\0' || v < 1 || v > LIST_MAX) {
            http__call_unref(call);
            http__send_error(req, 400, "invalid_argument", "limit",
                             "must be an integer in 1..%d", LIST_MAX);
            return;
        }
        lr->q.limit = (unsigned)v;
    }
    if (http__query(req, "order", order, sizeof order) != NULL) {
        lr->q.desc = strcmp(order, "desc") == 0;
        if (!lr->q.desc && strcmp(order, "asc") != 0) {
            http__call_unref(call);
            http__send_error(req, 400, "invalid_argument", "order",
                             "must be asc or desc");
            return;
        }
    }
    if (http__query(req, "cursor", lr->cursor, sizeof lr->cursor) != NULL &&
        lr->cursor[0] != '\0') {
        lr->q.cursor = lr->cursor;
    }
    /* Rendered from the loop, one page per iteration: a burst of big
     * pages leaves room for other requests between them. */
    http__defer(s, call, list_render);
}

void http__jobs_patch(struct http_server *s,
                      h2o_req_t *req,
                      const struct http_args *a)
{
    const char *ids = a->id.base;
    size_t len = a->id.len;
    struct job_input in;
    struct fsm_cmd cmd;
    char field[64], msg[400];
    json_t *body;
    uint64_t id;
    int rv;

    if (!parse_id_or_404(req, ids, len, &id) ||
        !http__acl_check_job(s, req, a, id) ||
        (body = http__body_json(req)) == NULL) {
        return;
    }
    memset(&cmd, 0, sizeof cmd);
    rv = http__job_patch_parse(
        &(struct job_parse_ctx){sched_now(s->sched), s->cfg.max_payload, -1},
        body, &in, &cmd.mask,
        &(struct job_parse_err){field, sizeof field, msg, sizeof msg});
    if (rv != 0) {
        http__send_err(req, rv, field, msg);
        json_decref(body);
        return;
    }
    if ((cmd.mask & FSM_PATCH_QUEUE) &&
        !http__acl_check(s, req, a, in.job.queue, (struct fsm_str){NULL, 0},
                         "queue")) {
        json_decref(body);
        http__job_input_free(&in);
        return;
    }
    if (cmd.mask & FSM_PATCH_SPEC) {
        /* The payload lives in spec: merge it into the stored spec. */
        struct fsm_reader *rd;
        struct fsm_job job;
        json_t *spec = NULL;
        rv = fsm_read_begin(cluster_fsm(s->cluster), &rd);
        if (rv == 0) {
            rv = fsm_get_job(rd, id, &job);
            if (rv == 0) {
                spec = json_loadb(job.spec.p, job.spec.len, 0, NULL);
            }
            fsm_read_end(rd);
        }
        if (rv != 0) {
            http__send_err(req, rv, rv == ERR_NOTFOUND ? "id" : NULL,
                           rv == ERR_NOTFOUND ? "no such job" : NULL);
            json_decref(body);
            http__job_input_free(&in);
            return;
        }
        if (spec == NULL) {
            spec = json_object();
        }
        json_object_set(spec, "payload", json_object_get(body, "payload"));
        in.spec = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(spec);
        in.job.spec.p = in.spec;
        in.job.spec.len = (uint32_t)strlen(in.spec);
    }
    cmd.type = FSM_CMD_PATCH;
    cmd.id = id;
    cmd.patch = in.job;
    submit_encoded(s, req, &cmd, CALL_ONE, false);
    http__job_input_free(&in);
    json_decref(body);
}

void http__jobs_cancel(struct http_server *s,
                       h2o_req_t *req,
                       const struct http_args *a)
{
    const char *ids = a->id.base;
    size_t len = a->id.len;
    struct fsm_cmd cmd;
    uint64_t id;

    if (!parse_id_or_404(req, ids, len, &id) ||
        !http__acl_check_job(s, req, a, id)) {
        return;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_CMD_CANCEL;
    cmd.id = id;
    submit_encoded(s, req, &cmd, CALL_ONE, false);
}
