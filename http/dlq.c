/* The dead-letter queue: GET /v1/dlq (failed jobs), POST /v1/dlq/retry and
 * DELETE /v1/dlq in bounded batches, POST /v1/jobs/{id}/retry. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "http/internal.h"

#define BULK_MAX 1000 /* Jobs per DLQ bulk request. */

/* ---- Dead-letter queue -------------------------------------------------- */

struct bulk
{
    struct fsm_item *items;
    unsigned n, max;
    const struct http_args *acl; /* Jobs it may not touch are left. */
};

static int bulk_cb(void *data, const struct fsm_job *job)
{
    struct bulk *bk = data;
    if (bk->n == bk->max) {
        return 1;
    }
    if (!http__acl_allows(bk->acl, job->queue, job->type)) {
        return 0;
    }
    memset(&bk->items[bk->n], 0, sizeof bk->items[0]);
    bk->items[bk->n++].job_id = job->id;
    return 0;
}

static void bulk_cb_done(void *data, int status, const struct fsm_result *res)
{
    struct call *call = data;
    bool more = call->batch;
    int kind = call->kind;
    h2o_req_t *req = http__call_finish(call);
    unsigned ok = 0;

    if (req == NULL || http__failed(req, status, res)) {
        return;
    }
    for (uint32_t i = 0; i < res->n_ids; i++) {
        ok += res->existed[i] == FSM_ITEM_OK;
    }
    http__send_json(req, 200,
                    json_pack("{s:i,s:i,s:b}", "matched", (int)res->n_ids,
                              kind == FSM_CMD_RETRY ? "retried" : "deleted",
                              (int)ok, "more", more),
                    0);
}

/* POST /v1/dlq/retry, DELETE /v1/dlq: failed jobs matching the filters
 * (queue, type, user_id), at most ?limit (1..1000, default 1000) per
 * request; "more" says whether matching jobs are left. */
static void dlq_bulk(struct http_server *s,
                     h2o_req_t *req,
                     const struct http_args *a,
                     uint8_t type)
{
    char user[FSM_MAX_STR + 1], queue[FSM_MAX_STR + 1], jtype[FSM_MAX_STR + 1],
        lim[16], next[FSM_CURSOR_SIZE];
    struct fsm_query q;
    struct fsm_reader *rd;
    struct fsm_cmd cmd;
    struct bulk bk;
    int rv;

    memset(&q, 0, sizeof q);
    q.status = FSM_FAILED;
    q.limit = BULK_MAX;
    http__query_str(req, "user_id", user, sizeof user, &q.user_id);
    http__query_str(req, "queue", queue, sizeof queue, &q.queue);
    http__query_str(req, "type", jtype, sizeof jtype, &q.type);
    /* A filter outside the token's limits is refused; without one, the
     * jobs it may not touch are skipped. */
    if (!http__acl_check(s, req, a, q.queue, q.type, "queue")) {
        return;
    }
    if (http__query(req, "limit", lim, sizeof lim) != NULL) {
        char *end;
        long v = strtol(lim, &end, 10);
        if (*end != '\0' || v < 1 || v > BULK_MAX) {
            http__send_error(req, 400, "invalid_argument", "limit",
                             "must be an integer in 1..%d", BULK_MAX);
            return;
        }
        q.limit = (unsigned)v;
    }
    bk.items = calloc(q.limit, sizeof *bk.items);
    bk.n = 0;
    bk.max = q.limit;
    bk.acl = a;
    if (bk.items == NULL || fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        free(bk.items);
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        return;
    }
    rv = fsm_list(rd, &q, bulk_cb, &bk, next);
    fsm_read_end(rd);
    if (rv != 0) {
        free(bk.items);
        http__send_err(req, rv, NULL, NULL);
        return;
    }
    if (bk.n == 0) {
        free(bk.items);
        http__send_json(req, 200,
                        json_pack("{s:i,s:i,s:b}", "matched", 0,
                                  type == FSM_CMD_RETRY ? "retried" : "deleted",
                                  0, "more", 0),
                        0);
        return;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = type;
    cmd.items = bk.items;
    cmd.n_items = bk.n;
    struct call *call = http__call_new(s, req);
    call->kind = type;
    call->batch = next[0] != '\0';
    rv = http__submit_cmd(s, &cmd, bulk_cb_done, call);
    free(bk.items);
    if (rv != 0) {
        http__call_unref(call);
        http__send_err(req, rv, NULL, NULL);
    }
}

static void retried_cb(void *data, int status, const struct fsm_result *res)
{
    struct call *call = data;
    struct http_server *s = call->s;
    h2o_req_t *req = http__call_finish(call);

    if (req == NULL || http__failed(req, status, res)) {
        return;
    }
    if (res->n_ids != 1) {
        http__send_err(req, ERR_STORAGE, NULL, "no result");
    } else if (res->existed[0] == FSM_ITEM_NOTFOUND) {
        http__send_error(req, 404, "not_found", "id", "no job %016llx",
                         (unsigned long long)res->ids[0]);
    } else if (res->existed[0] != FSM_ITEM_OK) {
        http__send_error(req, 409, "conflict", "status",
                         "only failed or cancelled jobs can be retried");
    } else {
        http__send_job(s, req, res->ids[0], 200);
    }
}

/* POST /v1/jobs/{id}/retry */
void http__job_retry(struct http_server *s,
                     h2o_req_t *req,
                     const struct http_args *a)
{
    struct fsm_cmd cmd;
    struct fsm_item it;
    uint64_t id;
    if (!http__id_or_404(req, a->id.base, a->id.len, &id) ||
        !http__acl_check_job(s, req, a, id)) {
        return;
    }
    memset(&cmd, 0, sizeof cmd);
    memset(&it, 0, sizeof it);
    it.job_id = id;
    cmd.type = FSM_CMD_RETRY;
    cmd.items = &it;
    cmd.n_items = 1;
    http__submit_for(s, req, &cmd, retried_cb, 0);
}

void http__dlq_list(struct http_server *s,
                    h2o_req_t *req,
                    const struct http_args *a)
{
    http__jobs_list_status(s, req, FSM_FAILED);
}

void http__dlq_retry(struct http_server *s,
                     h2o_req_t *req,
                     const struct http_args *a)
{
    dlq_bulk(s, req, a, FSM_CMD_RETRY);
}

void http__dlq_delete(struct http_server *s,
                      h2o_req_t *req,
                      const struct http_args *a)
{
    dlq_bulk(s, req, a, FSM_CMD_DELETE);
}
