/* Schedules: the runs of a schedule, pause/resume/trigger (decided by the
 * leader's services, sched/actions.c) and GET /v1/schedule/preview. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "http/internal.h"
#include "sched/cron.h"

#define PREVIEW_MAX 100
#define RUNS_DEFAULT 100
#define RUNS_MAX 1000

/* ---- Runs --------------------------------------------------------------- */

struct runs_ctx
{
    struct fsm_reader *rd;
    struct sb *b;
    unsigned n, limit;
    int64_t next;
};

static int run_cb(void *data, const struct fsm_run *run)
{
    struct runs_ctx *c = data;
    struct fsm_job job;
    char t[40];

    if (c->n == c->limit) {
        c->next = run->nominal;
        return 1;
    }
    http__format_time(run->nominal, t, sizeof t);
    http__sb_printf(c->b, "%s{\"nominal_at\":\"%s\"", c->n++ ? "," : "", t);
    http__format_time(run->recorded_at, t, sizeof t);
    http__sb_printf(c->b, ",\"recorded_at\":\"%s\"", t);
    if (run->job_id == 0) {
        http__sb_printf(c->b, ",\"outcome\":\"skipped\",\"occurrences\":%u",
                        run->skipped);
    } else if (fsm_get_job(c->rd, run->job_id, &job) == 0) {
        http__sb_printf(c->b, ",\"job_id\":\"%016llx\",\"outcome\":\"%s\"",
                        (unsigned long long)run->job_id,
                        fsm_status_name(job.status));
        if (job.last_error.len > 0) {
            http__sb_puts(c->b, ",\"error\":");
            http__sb_json_str(c->b, job.last_error);
        }
    } else {
        http__sb_printf(c->b, ",\"job_id\":\"%016llx\",\"outcome\":\"expired\"",
                        (unsigned long long)run->job_id);
    }
    if (run->reason.len > 0) {
        http__sb_puts(c->b, ",\"reason\":");
        http__sb_json_str(c->b, run->reason);
    }
    http__sb_puts(c->b, "}");
    return 0;
}

void http__schedule_runs(struct http_server *s,
                         h2o_req_t *req,
                         const struct http_args *a)
{
    uint64_t id;
    char buf[64];
    struct fsm_reader *rd;
    struct fsm_job job;
    struct sb b;
    struct runs_ctx c = {NULL, &b, 0, RUNS_DEFAULT, 0};
    int64_t before = 0;

    if (!http__id_or_404(req, a->id.base, a->id.len, &id)) {
        return;
    }
    if (http__query(req, "limit", buf, sizeof buf) != NULL) {
        char *end;
        long v = strtol(buf, &end, 10);
        if (*end != '\0' || v < 1 || v > RUNS_MAX) {
            http__send_error(req, 400, "invalid_argument", "limit",
                             "must be an integer in 1..%d", RUNS_MAX);
            return;
        }
        c.limit = (unsigned)v;
    }
    if (http__query(req, "before", buf, sizeof buf) != NULL &&
        http__parse_time(buf, &before) != 0) {
        http__send_error(req, 400, "invalid_argument", "before",
                         "must be an RFC 3339 time");
        return;
    }
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        return;
    }
    if (fsm_get_job(rd, id, &job) != 0) {
        fsm_read_end(rd);
        http__send_error(req, 404, "not_found", "id", "no job %016llx",
                         (unsigned long long)id);
        return;
    }
    c.rd = rd;
    http__sb_init(&b, &req->pool);
    http__sb_printf(&b, "{\"schedule_id\":\"%016llx\",\"runs\":[",
                    (unsigned long long)id);
    fsm_runs(rd, id, before, run_cb, &c);
    fsm_read_end(rd);
    http__sb_puts(&b, "]");
    if (c.next != 0) {
        /* The next page: runs strictly before the last one shown. */
        char t[40];
        http__format_time(c.next + 1, t, sizeof t);
        http__sb_printf(&b, ",\"next_before\":\"%s\"", t);
    }
    http__sb_puts(&b, "}");
    http__send_sb(req, 200, &b, cluster_applied_index(s->cluster));
}

/* ---- Preview ------------------------------------------------------------ */

void http__schedule_preview(struct http_server *s,
                            h2o_req_t *req,
                            const struct http_args *a)
{
    char expr[CRON_MAX_EXPR + 1], tz[128] = "UTC", nbuf[16], after[64];
    char part[32], why[160], t[40];
    struct cron c;
    int64_t cur = sched_now(s->sched);
    long n = 10;
    struct sb b;

    if (http__query(req, "schedule", expr, sizeof expr) == NULL ||
        expr[0] == '\0') {
        http__send_error(req, 400, "invalid_argument", "schedule",
                         "the query parameter schedule is required");
        return;
    }
    if (cron_parse(expr, &c, part, sizeof part, why, sizeof why) != 0) {
        http__send_error(req, 400, "invalid_argument", "schedule", "%s: %s",
                         part, why);
        return;
    }
    if (http__query(req, "timezone", tz, sizeof tz) != NULL &&
        !cron_tz_valid(tz)) {
        http__send_error(req, 400, "invalid_argument", "timezone",
                         "unknown time zone \"%s\"", tz);
        return;
    }
    if (http__query(req, "n", nbuf, sizeof nbuf) != NULL) {
        char *end;
        n = strtol(nbuf, &end, 10);
        if (*end != '\0' || n < 1 || n > PREVIEW_MAX) {
            http__send_error(req, 400, "invalid_argument", "n",
                             "must be an integer in 1..%d", PREVIEW_MAX);
            return;
        }
    }
    if (http__query(req, "after", after, sizeof after) != NULL &&
        http__parse_time(after, &cur) != 0) {
        http__send_error(req, 400, "invalid_argument", "after",
                         "must be an RFC 3339 time");
        return;
    }
    http__sb_init(&b, &req->pool);
    http__sb_puts(&b, "{\"schedule\":");
    http__sb_json_str(&b, (struct fsm_str){expr, (uint32_t)strlen(expr)});
    http__sb_puts(&b, ",\"timezone\":");
    http__sb_json_str(&b, (struct fsm_str){tz, (uint32_t)strlen(tz)});
    http__sb_puts(&b, ",\"times\":[");
    for (long i = 0; i < n; i++) {
        if (cron_next(&c, tz, cur, &cur) != 0) {
            break;
        }
        http__format_time(cur, t, sizeof t);
        http__sb_printf(&b, "%s\"%s\"", i ? "," : "", t);
    }
    http__sb_puts(&b, "]}");
    http__send_sb(req, 200, &b, 0);
}

/* ---- Pause, resume, trigger --------------------------------------------- */

static void action_cb(void *data, int status, const struct fsm_result *res)
{
    struct call *call = data;
    struct http_server *s = call->s;
    int kind = call->kind;
    h2o_req_t *req = http__call_finish(call);
    struct fsm_reader *rd;
    struct fsm_job sj;
    uint64_t run = 0;

    if (req == NULL || http__failed(req, status, res)) {
        return;
    }
    if (res->n_ids != 1) {
        http__send_err(req, ERR_STORAGE, NULL, "no result");
        return;
    }
    if (kind != SCHED_TRIGGER) {
        http__send_job(s, req, res->ids[0], 200);
        return;
    }
    if (res->existed[0] == FSM_ITEM_NOTFOUND) {
        http__send_error(req, 404, "not_found", "id", "no job %016llx",
                         (unsigned long long)res->ids[0]);
        return;
    }
    if (res->existed[0] != FSM_ITEM_OK) {
        http__send_error(req, 409, "conflict", "status",
                         "the schedule was paused or removed meanwhile");
        return;
    }
    /* The run just created: the schedule's last_run. */
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) == 0) {
        if (fsm_get_job(rd, res->ids[0], &sj) == 0) {
            run = sj.last_run;
        }
        fsm_read_end(rd);
    }
    http__send_job(s, req, run, 201);
}

static void schedule_action(struct http_server *s,
                            h2o_req_t *req,
                            const struct http_args *a,
                            int action)
{
    uint64_t id;
    if (!http__id_or_404(req, a->id.base, a->id.len, &id) ||
        !http__acl_check_job(s, req, a, id)) {
        return;
    }
    struct call *call = http__call_new(s, req);
    call->kind = action;
    int rv = sched_schedule_action(s->sched, id, action, action_cb, call);
    if (rv != 0) {
        http__call_unref(call);
        http__send_err(req, rv, NULL, NULL);
    }
}

void http__schedule_pause(struct http_server *s,
                          h2o_req_t *req,
                          const struct http_args *a)
{
    schedule_action(s, req, a, SCHED_PAUSE);
}

void http__schedule_resume(struct http_server *s,
                           h2o_req_t *req,
                           const struct http_args *a)
{
    schedule_action(s, req, a, SCHED_RESUME);
}

void http__schedule_trigger(struct http_server *s,
                            h2o_req_t *req,
                            const struct http_args *a)
{
    schedule_action(s, req, a, SCHED_TRIGGER);
}
