/* POST /v1/jobs/batch: a non-atomic batch. Each job is its own SUBMIT
 * command with its own answer (201 created, 200 existed by its
 * idempotency key, 400/403/409/429 for that job alone); the commands of
 * one request go out in one raft entry (the group commit). Client
 * libraries coalesce independent submits of many callers into one such
 * request (docs/api.md).
 *
 * The answer is 200 {"results":[{"status":201,"job":{...}} |
 * {"status":400,"error":{...}}, ...]} in the order of the request, once
 * every command is decided; the request itself fails only as a whole for
 * what concerns all of it (bad JSON, too many jobs, the node's write bound,
 * no leader). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "http/internal.h"

/* One job's outcome. */
struct item
{
    struct call *call; /* The request's; one reference per pending item. */
    int status;        /* HTTP status of this job's answer; 0: pending. */
    uint64_t id;
    /* A follower's job: the leader's rendering of it (forward channel),
     * in the request's pool; the local fsm may not have it yet. */
    char *json;
    size_t json_len;
    char code[32];
    char field[64];
    char msg[256];
};

struct batch
{
    unsigned n, pending;
    struct item items[];
};

static struct batch *batch_of(struct call *call)
{
    return (struct batch *)(void *)(call + 1);
}

static void item_fail(struct item *it,
                      int status,
                      const char *code,
                      const char *field,
                      const char *msg)
{
    it->status = status;
    snprintf(it->code, sizeof it->code, "%s", code);
    snprintf(it->field, sizeof it->field, "%s", field != NULL ? field : "");
    snprintf(it->msg, sizeof it->msg, "%s", msg);
}

static void item_err(struct item *it, int err, const char *field, const char *m)
{
    item_fail(it, err_http_status(err), err_code_name(err), field,
              m != NULL && m[0] != '\0' ? m : err_strerror(err));
}

static void write_item(struct sb *b, struct fsm_reader *rd, struct item *it)
{
    struct fsm_job job;
    if (it->code[0] == '\0' && it->json == NULL &&
        fsm_get_job(rd, it->id, &job) != 0) {
        item_err(it, ERR_NOTFOUND, NULL, "job vanished");
    }
    http__sb_printf(b, "{\"status\":%d,", it->status);
    if (it->code[0] == '\0' && it->json != NULL) {
        http__sb_puts(b, "\"job\":");
        http__sb_put(b, it->json, it->json_len);
    } else if (it->code[0] == '\0') {
        http__sb_puts(b, "\"job\":");
        http__job_write(b, &job);
    } else {
        http__sb_puts(b, "\"error\":{\"code\":");
        http__sb_json_str(
            b, (struct fsm_str){it->code, (uint32_t)strlen(it->code)});
        if (it->field[0] != '\0') {
            http__sb_puts(b, ",\"field\":");
            http__sb_json_str(
                b, (struct fsm_str){it->field, (uint32_t)strlen(it->field)});
        }
        http__sb_puts(b, ",\"message\":");
        http__sb_json_str(b,
                          (struct fsm_str){it->msg, (uint32_t)strlen(it->msg)});
        http__sb_puts(b, "}");
    }
    http__sb_puts(b, "}");
}

static void reply(struct http_server *s, h2o_req_t *req, struct batch *bt)
{
    struct fsm_reader *rd;
    struct sb b;
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, "cannot read the job table");
        return;
    }
    http__sb_init(&b, &req->pool);
    http__sb_puts(&b, "{\"results\":[");
    for (unsigned i = 0; i < bt->n; i++) {
        if (i > 0) {
            http__sb_puts(&b, ",");
        }
        write_item(&b, rd, &bt->items[i]);
        if (i == 0) {
            http__sb_reserve_records(&b, bt->n - 1);
        }
    }
    fsm_read_end(rd);
    http__sb_puts(&b, "]}");
    http__send_sb(req, 200, &b, cluster_applied_index(s->cluster));
}

/* The request's last reference to drop answers it (if it is still
 * there): the handler's own, or the last pending job's. */
static void item_done(struct call *call)
{
    struct batch *bt = batch_of(call);
    struct http_server *s = call->s;
    h2o_req_t *req;
    bool last = --bt->pending == 0;
    req = http__call_finish(call);
    if (last && req != NULL) {
        reply(s, req, bt);
    }
}

static void submitted_cb(void *data, int status, const struct fsm_result *res)
{
    struct item *it = data;
    if (status != 0) {
        item_err(it, status, NULL,
                 status == ERR_UNKNOWN ? "leadership was lost: the job may or "
                                         "may not be created; retry with an "
                                         "idempotency key"
                                       : NULL);
    } else if (res->code != 0) {
        item_err(it, res->code, res->field, res->msg);
    } else if (res->n_ids != 1) {
        item_err(it, ERR_CORRUPT, NULL, "no job id in the result");
    } else {
        it->id = res->ids[0];
        it->status = res->existed != NULL && res->existed[0] ? 200 : 201;
        http__count_created(it->call->s, res, 0);
    }
    item_done(it->call);
}

/* A follower's job, answered by the leader over the forward channel. */
static void fwd_item_cb(void *data, const struct cluster_fwd_answer *a)
{
    struct item *it = data;
    h2o_req_t *req = it->call->req;
    if (a->not_sent) {
        item_err(it, ERR_UNAVAILABLE, NULL,
                 "the leader could not be reached (not sent): retry");
    } else if (a->err != 0) {
        item_err(it, a->err, a->field[0] != '\0' ? a->field : NULL, a->msg);
    } else if (req != NULL) {
        it->json = h2o_mem_alloc_pool(&req->pool, a->body_len + 1);
        memcpy(it->json, a->body, a->body_len);
        it->json_len = a->body_len;
        it->status = a->status;
    }
    item_done(it->call);
}

/* Submit @cmd for @it: proposed here on the leader, sent over the forward
 * channel on a follower. */
static int item_submit(struct http_server *s,
                       struct fsm_cmd *cmd,
                       struct item *it)
{
    if (cluster_is_leader(s->cluster)) {
        return cluster_submit_cmd(s->cluster, cmd, submitted_cb, it);
    }
    return cluster_fwd_send_cmd(s->cluster, HTTP_FWD_SUBMIT, cmd, fwd_item_cb,
                                it);
}

/* Parse, check and submit job @i; its outcome goes to @it. */
static void submit_item(struct http_server *s,
                        h2o_req_t *req,
                        const struct http_args *a,
                        json_t *obj,
                        struct item *it)
{
    char field[64], msg[400];
    struct job_input in;
    struct fsm_cmd cmd;
    int64_t now = sched_now(s->sched);
    int rv;

    memset(&in, 0, sizeof in);
    rv = http__job_parse(
        &(struct job_parse_ctx){now, s->cfg.max_payload, -1}, obj, &in,
        &(struct job_parse_err){field, sizeof field, msg, sizeof msg});
    if (rv != 0) {
        item_err(it, rv, field, msg);
    } else if (!http__acl_allows(a, in.job.queue, in.job.type)) {
        item_fail(it, 403, "forbidden", "queue",
                  "this token may not act on this queue or type");
    } else {
        memset(&cmd, 0, sizeof cmd);
        cmd.type = FSM_CMD_SUBMIT;
        cmd.n_jobs = 1;
        cmd.jobs = &in.job;
        cmd.hashes = &in.hash;
        it->call->refs++;
        batch_of(it->call)->pending++;
        rv = item_submit(s, &cmd, it);
        if (rv != 0) {
            it->call->refs--;
            batch_of(it->call)->pending--;
            item_err(it, rv, NULL, NULL);
        }
    }
    http__job_input_free(&in);
}

void http__jobs_submit_batch(struct http_server *s,
                             h2o_req_t *req,
                             const struct http_args *a)
{
    json_t *body = http__body_json(req);
    json_t *list;
    struct call *call;
    struct batch *bt;
    const char *why;
    size_t n;
    int rv;

    if (body == NULL) {
        return;
    }
    list = json_is_array(body) ? body : json_object_get(body, "jobs");
    n = json_array_size(list);
    if (!json_is_array(list) || n == 0) {
        http__send_error(req, 400, "invalid_argument", "jobs",
                         "want {\"jobs\": [...]} or [...] with at least one "
                         "job");
    } else if (n > FSM_MAX_BATCH_JOBS) {
        http__send_error(req, 413, "too_large", "jobs",
                         "%zu jobs in one batch, over the limit of %d", n,
                         FSM_MAX_BATCH_JOBS);
    } else if ((rv = cluster_admit(s->cluster, req->entity.len, &why)) != 0) {
        http__send_err(req, rv, NULL, why);
    } else if (!cluster_is_leader(s->cluster) &&
               !cluster_fwd_ready(s->cluster)) {
        /* A follower without the forward channel (ROUTE_CHANNEL), or
         * leadership lost since routing. */
        http__forward(s, req);
    } else if ((call = http__call_new_extra(
                    s, req, sizeof *bt + n * sizeof bt->items[0])) == NULL) {
        http__send_err(req, ERR_NOMEM, NULL, NULL);
    } else {
        bt = batch_of(call);
        memset(bt, 0, sizeof *bt + n * sizeof bt->items[0]);
        bt->n = (unsigned)n;
        /* The handler's own reference (call_new's callback one) keeps the
         * request unanswered until every job was tried. */
        bt->pending = 1;
        for (unsigned i = 0; i < bt->n; i++) {
            bt->items[i].call = call;
            submit_item(s, req, a, json_array_get(list, i), &bt->items[i]);
        }
        item_done(call);
    }
    json_decref(body);
}
