/* Scheduling on the leader and its API: cron occurrences (what to fire,
 * catch-up, overlap), runs of a schedule, pause/resume/trigger, schedule
 * preview, the dead-letter queue, workflows, queues, retention.
 *
 * The leader decides with a clock and a calendar; the decision goes into
 * the log as a FIRE item naming the occurrence (see fsm/apply_sched.c), so
 * a leader change can neither skip nor double an occurrence.
 *
 * Catch-up: occurrences o1 < ... < on are due (<= now). One is "missed"
 * if it is more than MISFIRE_MS late. skip: run on if it is not missed;
 * latest: run on; all: run the last catchup_max. Every occurrence not run
 * is recorded (one record per contiguous range) with its reason. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_MODULE "sched"
#include "common/cron.h"
#include "common/err.h"
#include "common/log.h"
#include "http/internal.h"
#include "http/policy.h"

#define MISFIRE_MS 1000
#define MAX_ENUM 200000 /* Occurrences counted when catching up. */
#define CATCHUP_DEFAULT 10
#define BULK_MAX 1000 /* Jobs per DLQ bulk request. */
#define PREVIEW_MAX 100
#define RUNS_DEFAULT 100
#define RUNS_MAX 1000
#define WORKFLOW_MAX FSM_MAX_BATCH_JOBS

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- The schedule of a job (its spec) ----------------------------------- */

enum { OVERLAP_FORBID, OVERLAP_ALLOW, OVERLAP_REPLACE };
enum { CATCHUP_SKIP, CATCHUP_LATEST, CATCHUP_ALL };

struct sched_spec
{
    struct cron cron;
    char tz[64];
    int overlap;
    int catchup;
    unsigned catchup_max;
};

static int spec_load(const struct fsm_job *job, struct sched_spec *sp)
{
    json_t *spec = json_loadb(job->spec.p, job->spec.len, 0, NULL);
    const char *expr = json_string_value(json_object_get(spec, "schedule"));
    const char *tz = json_string_value(json_object_get(spec, "timezone"));
    const char *ov = json_string_value(json_object_get(spec, "overlap"));
    const char *cu = json_string_value(json_object_get(spec, "catchup"));
    json_t *max = json_object_get(spec, "catchup_max");
    int rv = -1;

    memset(sp, 0, sizeof *sp);
    if (expr != NULL && cron_parse(expr, &sp->cron, NULL, 0, NULL, 0) == 0) {
        snprintf(sp->tz, sizeof sp->tz, "%s", tz != NULL ? tz : "UTC");
        sp->overlap = ov == NULL                   ? OVERLAP_FORBID
                      : strcmp(ov, "allow") == 0   ? OVERLAP_ALLOW
                      : strcmp(ov, "replace") == 0 ? OVERLAP_REPLACE
                                                   : OVERLAP_FORBID;
        sp->catchup = cu == NULL                  ? CATCHUP_SKIP
                      : strcmp(cu, "latest") == 0 ? CATCHUP_LATEST
                      : strcmp(cu, "all") == 0    ? CATCHUP_ALL
                                                  : CATCHUP_SKIP;
        sp->catchup_max = json_is_integer(max)
                              ? (unsigned)json_integer_value(max)
                              : CATCHUP_DEFAULT;
        rv = 0;
    }
    json_decref(spec);
    return rv;
}

/* The previous run of @s if it has not ended (0 otherwise). */
static uint64_t busy_run(struct fsm_reader *rd,
                         const struct fsm_job *s,
                         int *status)
{
    struct fsm_job prev;
    if (s->last_run != 0 && fsm_get_job(rd, s->last_run, &prev) == 0 &&
        !fsm_status_is_final(prev.status)) {
        *status = prev.status;
        return s->last_run;
    }
    return 0;
}

static void fmt_time(int64_t ms, char *buf, size_t size)
{
    http__format_time(ms, buf, size);
}

unsigned http__sched_plan(struct fsm_reader *rd,
                          const struct fsm_job *s,
                          int64_t now,
                          struct fsm_item *items,
                          char (*reasons)[HTTP_REASON_SIZE],
                          unsigned cap)
{
    struct sched_spec sp;
    unsigned n = 0;
    int st = 0;

    if (cap < 2) {
        return 0;
    }
    memset(items, 0, 2 * sizeof *items);
    items[0].job_id = s->id;
    items[0].nominal = s->run_at;
    if (spec_load(s, &sp) != 0) {
        /* Cannot happen for a job the API accepted; stop it, say why. */
        items[0].action = FSM_FIRE_SKIP;
        items[0].next_at = FSM_NEVER;
        items[0].skipped = 1;
        snprintf(reasons[0], HTTP_REASON_SIZE, "the schedule does not parse");
        items[0].error.p = reasons[0];
        items[0].error.len = (uint32_t)strlen(reasons[0]);
        return 1;
    }
    /* Enumerate the due occurrences, keeping the first, the count, and the
     * last K (K = how many may run). */
    unsigned keep = sp.catchup == CATCHUP_ALL ? sp.catchup_max : 1;
    keep = keep < cap - 1 ? keep : cap - 1;
    int64_t *last = calloc(keep, sizeof *last);
    int64_t first = s->run_at, cur = s->run_at, next = FSM_NEVER;
    uint64_t count = 0;
    if (last == NULL) {
        return 0;
    }
    while (cur <= now && count < MAX_ENUM) {
        last[count % keep] = cur;
        count++;
        if (cron_next(&sp.cron, sp.tz, cur, &next) != 0) {
            next = FSM_NEVER;
            break;
        }
        cur = next;
    }
    if (count == MAX_ENUM && cur <= now) {
        /* Far behind: jump to the present. */
        if (cron_next(&sp.cron, sp.tz, now, &next) != 0) {
            next = FSM_NEVER;
        }
    } else if (count > 0 && cur > now) {
        next = cur;
    }
    if (count == 0) {
        free(last);
        return 0;
    }
    /* Which of the kept ones run: the newest @runs of them. */
    int64_t newest = last[(count - 1) % keep];
    uint64_t runs;
    if (sp.catchup == CATCHUP_ALL) {
        runs = count < keep ? count : keep;
    } else if (sp.catchup == CATCHUP_LATEST) {
        runs = 1;
    } else {
        runs = now - newest <= MISFIRE_MS ? 1 : 0;
    }
    uint64_t missed = count - runs;
    /* The run occurrences, oldest first. */
    int64_t run_at[1024];
    runs = runs < 1024 ? runs : 1024;
    for (uint64_t i = 0; i < runs; i++) {
        run_at[i] = last[(count - runs + i) % keep];
    }
    free(last);
    if (missed > 0) {
        char a[40], b[40];
        struct fsm_item *it = &items[n];
        memset(it, 0, sizeof *it);
        it->job_id = s->id;
        it->action = FSM_FIRE_SKIP;
        it->nominal = first;
        it->next_at = runs > 0 ? run_at[0] : next;
        it->skipped = missed > UINT32_MAX ? UINT32_MAX : (uint32_t)missed;
        fmt_time(first, a, sizeof a);
        fmt_time(runs > 0 ? run_at[0] - 1 : newest, b, sizeof b);
        snprintf(reasons[n], HTTP_REASON_SIZE,
                 "missed: %llu occurrence%s %s%s%s late by more than %d ms "
                 "(catchup=%s)",
                 (unsigned long long)missed, missed > 1 ? "s" : "", a,
                 missed > 1 ? " .. " : "", missed > 1 ? b : "", MISFIRE_MS,
                 sp.catchup == CATCHUP_ALL      ? "all"
                 : sp.catchup == CATCHUP_LATEST ? "latest"
                                                : "skip");
        it->error.p = reasons[n];
        it->error.len = (uint32_t)strlen(reasons[n]);
        n++;
    }
    uint64_t busy = busy_run(rd, s, &st);
    for (uint64_t i = 0; i < runs && n < cap; i++) {
        struct fsm_item *it = &items[n];
        memset(it, 0, sizeof *it);
        it->job_id = s->id;
        it->nominal = run_at[i];
        it->next_at = i + 1 < runs ? run_at[i + 1] : next;
        if (busy != 0 && sp.overlap == OVERLAP_FORBID) {
            it->action = FSM_FIRE_SKIP;
            it->skipped = 1;
            snprintf(reasons[n], HTTP_REASON_SIZE,
                     "overlap=forbid: run %016llx is still %s",
                     (unsigned long long)busy,
                     st != 0 ? fsm_status_name(st) : "running");
            it->error.p = reasons[n];
            it->error.len = (uint32_t)strlen(reasons[n]);
        } else {
            it->action =
                sp.overlap == OVERLAP_REPLACE ? FSM_FIRE_REPLACE : FSM_FIRE_RUN;
            busy = 1; /* The run just created is unfinished. */
            st = FSM_PENDING;
        }
        n++;
    }
    return n;
}

/* ---- Shared plumbing ---------------------------------------------------- */

static json_t *body_json(h2o_req_t *req, bool required)
{
    json_error_t jerr;
    json_t *o;
    if (req->entity.len == 0 && !required) {
        return json_object();
    }
    o = json_loadb(req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES,
                   &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        http__send_error(req, 400, "invalid_argument", "",
                         "want a JSON object (%s)",
                         req->entity.len == 0 ? "empty body" : jerr.text);
        return NULL;
    }
    return o;
}

static bool id_or_404(h2o_req_t *req, const char *s, size_t len, uint64_t *id)
{
    if (http__parse_id(s, len, id) != 0) {
        http__send_error(req, 404, "not_found", "id", "no job %.*s", (int)len,
                         s);
        return false;
    }
    return true;
}

static int submit_cmd(struct http_server *s,
                      const struct fsm_cmd *cmd,
                      cluster_submit_cb cb,
                      void *data)
{
    void *buf;
    size_t len;
    int rv = fsm_cmd_encode(cmd, &buf, &len);
    if (rv != 0) {
        return rv;
    }
    rv = cluster_submit(s->cluster, buf, len, cb, data);
    free(buf);
    return rv;
}

/* Submit @cmd for @req; the answer comes from @cb. */
static void submit_for(struct http_server *s,
                       h2o_req_t *req,
                       const struct fsm_cmd *cmd,
                       cluster_submit_cb cb,
                       int kind)
{
    struct call *call = http__call_new(s, req);
    call->kind = kind;
    int rv = submit_cmd(s, cmd, cb, call);
    if (rv != 0) {
        http__call_unref(call);
        http__send_err(req, rv, NULL, NULL);
    }
}

/* The common failure answers of a submit callback; true if answered. */
static bool failed(h2o_req_t *req, int status, const struct fsm_result *res)
{
    if (status != 0) {
        http__send_err(req, status, NULL, NULL);
        return true;
    }
    if (res->code != 0) {
        http__send_err(req, res->code, res->field, res->msg);
        return true;
    }
    return false;
}

static void send_job(struct http_server *s,
                     h2o_req_t *req,
                     uint64_t id,
                     int status)
{
    struct fsm_reader *rd;
    struct fsm_job job;
    struct sb b;
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        return;
    }
    if (fsm_get_job(rd, id, &job) != 0) {
        fsm_read_end(rd);
        http__send_err(req, ERR_NOTFOUND, "id", "job vanished");
        return;
    }
    http__sb_init(&b, &req->pool);
    http__job_write(&b, &job);
    fsm_read_end(rd);
    http__send_sb(req, status, &b, cluster_applied_index(s->cluster));
}

/* ---- Pause, resume, trigger --------------------------------------------- */

enum { K_JOB, K_TRIGGER, K_RETRY };

static void job_cmd_cb(void *data, int status, const struct fsm_result *res)
{
    struct call *call = data;
    struct http_server *s = call->s;
    int kind = call->kind;
    h2o_req_t *req = http__call_finish(call);

    if (req == NULL || failed(req, status, res)) {
        return;
    }
    if (res->n_ids != 1) {
        http__send_err(req, ERR_STORAGE, NULL, "no result");
        return;
    }
    uint8_t outcome = res->existed[0];
    if (kind == K_JOB) {
        send_job(s, req, res->ids[0], 200);
        return;
    }
    if (outcome == FSM_ITEM_NOTFOUND) {
        http__send_error(req, 404, "not_found", "id", "no job %016llx",
                         (unsigned long long)res->ids[0]);
    } else if (outcome != FSM_ITEM_OK) {
        http__send_error(req, 409, "conflict", "status",
                         kind == K_RETRY
                             ? "only failed or cancelled jobs can be retried"
                             : "the schedule changed meanwhile: try again");
    } else if (kind == K_RETRY) {
        send_job(s, req, res->ids[0], 200);
    } else {
        /* The run just created: the schedule's last_run. */
        struct fsm_reader *rd;
        struct fsm_job sj;
        uint64_t run = 0;
        if (fsm_read_begin(cluster_fsm(s->cluster), &rd) == 0) {
            if (fsm_get_job(rd, res->ids[0], &sj) == 0) {
                run = sj.last_run;
            }
            fsm_read_end(rd);
        }
        send_job(s, req, run, 201);
    }
}

/* Read the schedule @id: answers 404/400/409 itself and returns false. */
static bool load_schedule(struct http_server *s,
                          h2o_req_t *req,
                          uint64_t id,
                          struct fsm_reader *rd,
                          struct fsm_job *job)
{
    if (fsm_get_job(rd, id, job) != 0) {
        http__send_error(req, 404, "not_found", "id", "no job %016llx",
                         (unsigned long long)id);
        return false;
    }
    if (!(job->flags & FSM_JOB_RECURRING)) {
        http__send_error(req, 400, "invalid_argument", "id",
                         "job %016llx has no schedule", (unsigned long long)id);
        return false;
    }
    if (job->status != FSM_SCHEDULED) {
        http__send_error(req, 409, "conflict", "status", "the schedule is %s",
                         fsm_status_name(job->status));
        return false;
    }
    return true;
}

static void schedule_action(struct http_server *s,
                            h2o_req_t *req,
                            uint64_t id,
                            const char *action)
{
    struct fsm_reader *rd;
    struct fsm_job job;
    struct fsm_cmd cmd;
    struct fsm_item it;
    struct sched_spec sp;
    int64_t now = now_ms();

    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        return;
    }
    if (!load_schedule(s, req, id, rd, &job)) {
        fsm_read_end(rd);
        return;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.id = id;
    if (strcmp(action, "pause") == 0) {
        cmd.type = FSM_CMD_PAUSE;
    } else if (strcmp(action, "resume") == 0) {
        cmd.type = FSM_CMD_RESUME;
        if (spec_load(&job, &sp) != 0 ||
            cron_next(&sp.cron, sp.tz, now, &cmd.patch.run_at) != 0) {
            fsm_read_end(rd);
            http__send_error(req, 409, "conflict", "schedule",
                             "the schedule has no next occurrence");
            return;
        }
    } else {
        int st = 0;
        uint64_t busy = busy_run(rd, &job, &st);
        if (spec_load(&job, &sp) != 0) {
            sp.overlap = OVERLAP_FORBID;
        }
        if (busy != 0 && sp.overlap == OVERLAP_FORBID) {
            fsm_read_end(rd);
            http__send_error(req, 409, "conflict", "overlap",
                             "overlap=forbid: run %016llx is still %s",
                             (unsigned long long)busy, fsm_status_name(st));
            return;
        }
        memset(&it, 0, sizeof it);
        it.job_id = id;
        it.nominal = now;
        it.action =
            sp.overlap == OVERLAP_REPLACE ? FSM_FIRE_NOW_REPLACE : FSM_FIRE_NOW;
        cmd.type = FSM_CMD_FIRE;
        cmd.items = &it;
        cmd.n_items = 1;
    }
    fsm_read_end(rd);
    submit_for(s, req, &cmd, job_cmd_cb,
               cmd.type == FSM_CMD_FIRE ? K_TRIGGER : K_JOB);
}

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
    fmt_time(run->nominal, t, sizeof t);
    http__sb_printf(c->b, "%s{\"nominal_at\":\"%s\"", c->n++ ? "," : "", t);
    fmt_time(run->recorded_at, t, sizeof t);
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

static void runs_list(struct http_server *s, h2o_req_t *req, uint64_t id)
{
    char buf[64];
    struct fsm_reader *rd;
    struct fsm_job job;
    struct sb b;
    struct runs_ctx c = {NULL, &b, 0, RUNS_DEFAULT, 0};
    int64_t before = 0;

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
        fmt_time(c.next + 1, t, sizeof t);
        http__sb_printf(&b, ",\"next_before\":\"%s\"", t);
    }
    http__sb_puts(&b, "}");
    http__send_sb(req, 200, &b, cluster_applied_index(s->cluster));
}

/* ---- Preview ------------------------------------------------------------ */

static void preview(struct http_server *s, h2o_req_t *req)
{
    char expr[CRON_MAX_EXPR + 1], tz[128] = "UTC", nbuf[16], after[64];
    char part[32], why[160], t[40];
    struct cron c;
    int64_t cur = now_ms();
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
        fmt_time(cur, t, sizeof t);
        http__sb_printf(&b, "%s\"%s\"", i ? "," : "", t);
    }
    http__sb_puts(&b, "]}");
    http__send_sb(req, 200, &b, 0);
}

/* ---- Dead-letter queue -------------------------------------------------- */

struct bulk
{
    struct fsm_item *items;
    unsigned n, max;
};

static int bulk_cb(void *data, const struct fsm_job *job)
{
    struct bulk *bk = data;
    if (bk->n == bk->max) {
        return 1;
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

    if (req == NULL || failed(req, status, res)) {
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
static void dlq_bulk(struct http_server *s, h2o_req_t *req, uint8_t type)
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
    rv = submit_cmd(s, &cmd, bulk_cb_done, call);
    free(bk.items);
    if (rv != 0) {
        http__call_unref(call);
        http__send_err(req, rv, NULL, NULL);
    }
}

static void job_retry(struct http_server *s, h2o_req_t *req, uint64_t id)
{
    struct fsm_cmd cmd;
    struct fsm_item it;
    memset(&cmd, 0, sizeof cmd);
    memset(&it, 0, sizeof it);
    it.job_id = id;
    cmd.type = FSM_CMD_RETRY;
    cmd.items = &it;
    cmd.n_items = 1;
    submit_for(s, req, &cmd, job_cmd_cb, K_RETRY);
}

/* ---- Workflows ---------------------------------------------------------- */

static void wf_created_cb(void *data, int status, const struct fsm_result *res)
{
    struct call *call = data;
    struct http_server *s = call->s;
    h2o_req_t *req = http__call_finish(call);
    if (req == NULL || failed(req, status, res)) {
        return;
    }
    s->submitted += res->n_ids > 0 ? res->n_ids - 1 : 0;
    http__workflow_send(s, req, res->ids[0], 201);
}

/* Parse {"name", "jobs":[{"key", "depends_on":[keys or ids], ...job}]},
 * order the jobs parents first, and submit them as one command. */
static void workflow_submit(struct http_server *s, h2o_req_t *req)
{
    json_t *o = body_json(req, true), *jobs, *v;
    const char *name;
    size_t n, i;
    struct job_input *in = NULL;
    struct fsm_job *fjobs = NULL;
    uint64_t *deps = NULL;
    unsigned *order = NULL, *indeg = NULL;
    const char **keys = NULL;
    char field[96], msg[256];

    if (o == NULL) {
        return;
    }
    name = json_string_value(json_object_get(o, "name"));
    jobs = json_object_get(o, "jobs");
    n = json_array_size(jobs);
    if (name == NULL || name[0] == '\0' || strlen(name) > FSM_MAX_STR) {
        http__send_error(req, 400, "invalid_argument", "name",
                         "a name of 1..%d bytes is required", FSM_MAX_STR);
        goto out;
    }
    if (!json_is_array(jobs) || n == 0 || n > WORKFLOW_MAX) {
        http__send_error(req, 400, "invalid_argument", "jobs",
                         "an array of 1..%d jobs is required", WORKFLOW_MAX);
        goto out;
    }
    json_object_foreach(o, name, v)
    {
        if (strcmp(name, "name") != 0 && strcmp(name, "jobs") != 0) {
            http__send_error(req, 400, "invalid_argument", name,
                             "unknown field");
            goto out;
        }
    }
    name = json_string_value(json_object_get(o, "name"));
    in = calloc(n, sizeof *in);
    fjobs = calloc(n, sizeof *fjobs);
    deps = calloc(n * FSM_MAX_DEPS, sizeof *deps);
    order = calloc(n, sizeof *order);
    indeg = calloc(n, sizeof *indeg);
    keys = calloc(n, sizeof *keys);
    if (in == NULL || fjobs == NULL || deps == NULL || order == NULL ||
        indeg == NULL || keys == NULL) {
        http__send_err(req, ERR_NOMEM, NULL, NULL);
        goto out;
    }
    /* Keys first (unique), then each job without key/depends_on. */
    json_array_foreach(jobs, i, v)
    {
        keys[i] = json_string_value(json_object_get(v, "key"));
        if (keys[i] == NULL || keys[i][0] == '\0' ||
            strlen(keys[i]) > FSM_MAX_STR) {
            http__send_error(
                req, 400, "invalid_argument",
                (snprintf(field, sizeof field, "jobs[%zu].key", i), field),
                "jobs[%zu].key: a non-empty string is required", i);
            goto out;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(keys[i], keys[j]) == 0) {
                http__send_error(
                    req, 400, "invalid_argument",
                    (snprintf(field, sizeof field, "jobs[%zu].key", i), field),
                    "jobs[%zu].key: \"%s\" is used twice", i, keys[i]);
                goto out;
            }
        }
    }
    int64_t now = now_ms();
    json_array_foreach(jobs, i, v)
    {
        json_t *copy = json_copy(v), *dl;
        char prefix[32];
        int rv;
        json_object_del(copy, "key");
        json_object_del(copy, "depends_on");
        snprintf(prefix, sizeof prefix, "jobs[%zu].", i);
        rv = http__job_parse(
            &(struct job_parse_ctx){now, s->cfg.max_payload, prefix}, copy,
            &in[i],
            &(struct job_parse_err){field, sizeof field, msg, sizeof msg});
        json_decref(copy);
        if (rv == 0 && (in[i].job.flags & FSM_JOB_RECURRING)) {
            snprintf(field, sizeof field, "jobs[%zu].schedule", i);
            snprintf(msg, sizeof msg, "a workflow job cannot be recurring");
            rv = ERR_INVALID;
        }
        if (rv == 0 && in[i].job.idem_key.len > 0) {
            snprintf(field, sizeof field, "jobs[%zu].idempotency_key", i);
            snprintf(msg, sizeof msg, "not allowed in a workflow job");
            rv = ERR_INVALID;
        }
        if (rv != 0) {
            http__send_err(req, rv, field, msg);
            goto out;
        }
        dl = json_object_get(v, "depends_on");
        if (dl != NULL &&
            (!json_is_array(dl) || json_array_size(dl) > FSM_MAX_DEPS)) {
            http__send_error(
                req, 400, "invalid_argument",
                (snprintf(field, sizeof field, "jobs[%zu].depends_on", i),
                 field),
                "jobs[%zu].depends_on: an array of at most %d "
                "keys or job ids",
                i, FSM_MAX_DEPS);
            goto out;
        }
        size_t d;
        json_t *dv;
        json_array_foreach(dl, d, dv)
        {
            const char *ref = json_string_value(dv);
            uint64_t id = 0;
            size_t k;
            for (k = 0; ref != NULL && k < n; k++) {
                if (strcmp(keys[k], ref) == 0) {
                    break;
                }
            }
            if (ref != NULL && k < n) {
                if (k == i) {
                    http__send_error(req, 400, "invalid_argument",
                                     (snprintf(field, sizeof field,
                                               "jobs[%zu].depends_on", i),
                                      field),
                                     "jobs[%zu].depends_on: \"%s\" depends "
                                     "on itself",
                                     i, ref);
                    goto out;
                }
                deps[i * FSM_MAX_DEPS + d] = FSM_DEP_LOCAL | k; /* Index. */
                indeg[i]++;
            } else if (ref != NULL &&
                       http__parse_id(ref, strlen(ref), &id) == 0) {
                deps[i * FSM_MAX_DEPS + d] = id; /* An existing job. */
            } else {
                http__send_error(
                    req, 400, "invalid_argument",
                    (snprintf(field, sizeof field, "jobs[%zu].depends_on", i),
                     field),
                    "jobs[%zu].depends_on: no job with key "
                    "\"%s\" in this workflow",
                    i, ref != NULL ? ref : "(not a string)");
                goto out;
            }
        }
        in[i].job.n_deps = (uint32_t)json_array_size(dl);
    }
    /* Parents first; what cannot be ordered sits on a cycle. */
    unsigned *local = calloc(n * FSM_MAX_DEPS, sizeof *local);
    const unsigned **lp = calloc(n, sizeof *lp);
    if (local == NULL || lp == NULL) {
        free(local);
        free(lp);
        http__send_err(req, ERR_NOMEM, NULL, NULL);
        goto out;
    }
    for (i = 0; i < n; i++) {
        indeg[i] = 0;
        lp[i] = local + i * FSM_MAX_DEPS;
        for (uint32_t d = 0; d < in[i].job.n_deps; d++) {
            uint64_t ref = deps[i * FSM_MAX_DEPS + d];
            if (ref & FSM_DEP_LOCAL) {
                local[i * FSM_MAX_DEPS + indeg[i]++] =
                    (unsigned)(ref & ~FSM_DEP_LOCAL);
            }
        }
    }
    unsigned cyc = 0;
    int sorted = policy_topo_order((unsigned)n, indeg, lp, order, &cyc);
    free(local);
    free(lp);
    if (sorted != 0) {
        snprintf(field, sizeof field, "jobs[%u].depends_on", cyc);
        http__send_error(req, 400, "invalid_argument", field,
                         "%s: \"%s\" is on a dependency cycle", field,
                         keys[cyc]);
        goto out;
    }
    /* Jobs in that order, local references renumbered to positions. */
    unsigned *pos = indeg; /* Reused: position of each job in the order. */
    for (i = 0; i < n; i++) {
        pos[order[i]] = (unsigned)i;
    }
    for (i = 0; i < n; i++) {
        unsigned src = order[i];
        uint64_t *d = deps + src * FSM_MAX_DEPS;
        fjobs[i] = in[src].job;
        for (uint32_t k = 0; k < in[src].job.n_deps; k++) {
            if (d[k] & FSM_DEP_LOCAL) {
                d[k] = FSM_DEP_LOCAL | pos[d[k] & ~FSM_DEP_LOCAL];
            }
        }
        fjobs[i].deps = d;
    }
    /* The key goes into each job's spec, for GET /v1/workflows/{id}. */
    for (i = 0; i < n; i++) {
        unsigned src = order[i];
        json_t *spec = json_loadb(in[src].spec, strlen(in[src].spec), 0, NULL);
        json_object_set_new(spec, "workflow_key", json_string(keys[src]));
        free(in[src].spec);
        in[src].spec = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(spec);
        fjobs[i].spec.p = in[src].spec;
        fjobs[i].spec.len = (uint32_t)strlen(in[src].spec);
    }
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_CMD_SUBMIT;
    cmd.jobs = fjobs;
    cmd.n_jobs = (uint32_t)n;
    cmd.workflow.p = name;
    cmd.workflow.len = (uint32_t)strlen(name);
    submit_for(s, req, &cmd, wf_created_cb, 0);
out:
    if (in != NULL) {
        for (i = 0; i < n; i++) {
            http__job_input_free(&in[i]);
        }
    }
    free(in);
    free(fjobs);
    free(deps);
    free(order);
    free(indeg);
    free(keys);
    json_decref(o);
}

void http__workflow_send(struct http_server *s,
                         h2o_req_t *req,
                         uint64_t id,
                         int status)
{
    struct fsm_reader *rd;
    struct fsm_workflow wf;
    struct sb b;
    unsigned counts[8] = {0};
    char t[40];

    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        return;
    }
    if (fsm_get_workflow(rd, id, &wf) != 0) {
        fsm_read_end(rd);
        http__send_error(req, 404, "not_found", "id", "no workflow %016llx",
                         (unsigned long long)id);
        return;
    }
    http__sb_init(&b, &req->pool);
    http__sb_printf(&b,
                    "{\"id\":\"%016llx\",\"name\":", (unsigned long long)id);
    http__sb_json_str(&b, wf.name);
    fmt_time(wf.created_at, t, sizeof t);
    http__sb_printf(&b, ",\"created_at\":\"%s\",\"jobs\":[", t);
    for (uint32_t i = 0; i < wf.n; i++) {
        struct fsm_job job;
        if (fsm_get_job(rd, wf.first + i, &job) != 0) {
            continue;
        }
        counts[job.status < 8 ? job.status : 0]++;
        if (i > 0) {
            http__sb_puts(&b, ",");
        }
        http__job_write(&b, &job);
    }
    fsm_read_end(rd);
    /* failed if any failed; cancelled if any cancelled (and none failed);
     * completed when all completed; else running/pending. */
    const char *st = counts[FSM_FAILED]              ? "failed"
                     : counts[FSM_CANCELLED]         ? "cancelled"
                     : counts[FSM_COMPLETED] == wf.n ? "completed"
                     : counts[FSM_RUNNING] || counts[FSM_COMPLETED] ? "running"
                                                                    : "pending";
    bool unfinished = counts[FSM_SCHEDULED] || counts[FSM_WAITING] ||
                      counts[FSM_PENDING] || counts[FSM_RUNNING];
    if (unfinished && (counts[FSM_FAILED] || counts[FSM_CANCELLED])) {
        st = "running"; /* all_done children still to run. */
    }
    http__sb_printf(&b, "],\"status\":\"%s\",\"counts\":{", st);
    for (int k = 1; k <= FSM_STATUS_MAX; k++) {
        http__sb_printf(&b, "%s\"%s\":%u", k > 1 ? "," : "", fsm_status_name(k),
                        counts[k]);
    }
    http__sb_puts(&b, "}}");
    http__send_sb(req, status, &b, cluster_applied_index(s->cluster));
}

static void wf_cancel_cb(void *data, int status, const struct fsm_result *res)
{
    struct call *call = data;
    struct http_server *s = call->s;
    uint64_t id = call->id;
    h2o_req_t *req = http__call_finish(call);
    if (req == NULL || failed(req, status, res)) {
        return;
    }
    http__workflow_send(s, req, id, 200);
}

/* ---- Queues ------------------------------------------------------------- */

static void queue_write(struct sb *b,
                        const struct fsm_queue *q,
                        const uint64_t counts[8])
{
    http__sb_puts(b, "{\"name\":");
    http__sb_json_str(b, q->name);
    http__sb_printf(
        b, ",\"paused\":%s,\"concurrency\":", q->paused ? "true" : "false");
    if (q->concurrency > 0) {
        http__sb_printf(b, "%u", q->concurrency);
    } else {
        http__sb_puts(b, "null");
    }
    http__sb_puts(b, ",\"counts\":{");
    for (int k = 1; k <= FSM_STATUS_MAX; k++) {
        http__sb_printf(b, "%s\"%s\":%llu", k > 1 ? "," : "",
                        fsm_status_name(k), (unsigned long long)counts[k]);
    }
    http__sb_puts(b, "}}");
}

struct queues_ctx
{
    struct sb *b;
    unsigned n;
};

static void queues_cb(void *data,
                      const struct fsm_queue *q,
                      const uint64_t counts[8])
{
    struct queues_ctx *c = data;
    if (c->n++ > 0) {
        http__sb_puts(c->b, ",");
    }
    queue_write(c->b, q, counts);
}

static void queue_send(struct http_server *s,
                       h2o_req_t *req,
                       struct fsm_str name)
{
    struct fsm_reader *rd;
    struct fsm_queue q;
    uint64_t counts[8];
    struct sb b;
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        return;
    }
    fsm_get_queue(rd, name, &q, counts);
    http__sb_init(&b, &req->pool);
    queue_write(&b, &q, counts);
    fsm_read_end(rd);
    http__send_sb(req, 200, &b, cluster_applied_index(s->cluster));
}

static void queue_set_cb(void *data, int status, const struct fsm_result *res)
{
    struct call *call = data;
    struct http_server *s = call->s;
    char name[FSM_MAX_STR + 1];
    h2o_req_t *req;

    snprintf(name, sizeof name, "%s", (const char *)call + sizeof *call);
    req = http__call_finish(call);
    if (req == NULL || failed(req, status, res)) {
        return;
    }
    queue_send(s, req, (struct fsm_str){name, (uint32_t)strlen(name)});
}

static bool queue_name_ok(const char *q, size_t len)
{
    if (len == 0 || len > FSM_MAX_STR) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = q[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || strchr("_.:-", c) != NULL)) {
            return false;
        }
    }
    return true;
}

/* PUT /v1/queues/{name} {"paused": bool, "concurrency": n|null}: fields
 * left out keep their value. */
static void queue_put(struct http_server *s,
                      h2o_req_t *req,
                      const char *name,
                      size_t len)
{
    json_t *o = body_json(req, true), *v;
    struct fsm_reader *rd;
    struct fsm_cmd cmd;
    const char *k;

    if (o == NULL) {
        return;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_CMD_QUEUE_SET;
    cmd.queue.name.p = name;
    cmd.queue.name.len = (uint32_t)len;
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) == 0) {
        fsm_get_queue(rd, cmd.queue.name, &cmd.queue, NULL);
        fsm_read_end(rd);
    }
    cmd.queue.name.p = name; /* Not LMDB's memory. */
    json_object_foreach(o, k, v)
    {
        if (strcmp(k, "paused") == 0 && json_is_boolean(v)) {
            cmd.queue.paused = json_is_true(v);
        } else if (strcmp(k, "concurrency") == 0 &&
                   (json_is_null(v) ||
                    (json_is_integer(v) && json_integer_value(v) >= 0 &&
                     json_integer_value(v) <= 1000000))) {
            cmd.queue.concurrency =
                json_is_null(v) ? 0 : (uint32_t)json_integer_value(v);
        } else {
            http__send_error(req, 400, "invalid_argument", k,
                             strcmp(k, "paused") == 0 ? "must be a boolean"
                             : strcmp(k, "concurrency") == 0
                                 ? "must be null (no cap) or an integer in "
                                   "0..1000000 (0: no cap)"
                                 : "unknown field");
            json_decref(o);
            return;
        }
    }
    json_decref(o);
    /* The name rides after the call for the answer. */
    struct call *call = http__call_new_extra(s, req, len + 1);
    memcpy((char *)call + sizeof *call, name, len);
    ((char *)call + sizeof *call)[len] = 0;
    int rv = submit_cmd(s, &cmd, queue_set_cb, call);
    if (rv != 0) {
        http__call_unref(call);
        http__send_err(req, rv, NULL, NULL);
    }
}

/* ---- Routing ------------------------------------------------------------ */

static bool is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

static void not_allowed(h2o_req_t *req)
{
    http__send_error(req, 405, "method_not_allowed", NULL,
                     "%.*s is not allowed here", (int)req->method.len,
                     req->method.base);
}

/* Writes go to the leader; reads are served locally. */
static bool forwarded(struct http_server *s, h2o_req_t *req)
{
    if (is(req, "GET") || cluster_is_leader(s->cluster)) {
        return false;
    }
    http__forward(s, req);
    return true;
}

bool http__sched_route_job(struct http_server *s,
                           h2o_req_t *req,
                           const char *rest,
                           size_t len)
{
    static const char *const actions[] = {"runs", "pause", "resume", "trigger",
                                          "retry"};
    const char *slash = memchr(rest, '/', len);
    uint64_t id;

    if (slash == NULL) {
        return false;
    }
    size_t alen = len - (size_t)(slash - rest) - 1;
    const char *act = slash + 1;
    unsigned a;
    for (a = 0; a < 5; a++) {
        if (strlen(actions[a]) == alen && memcmp(actions[a], act, alen) == 0) {
            break;
        }
    }
    if (a == 5) {
        return false;
    }
    if (!id_or_404(req, rest, (size_t)(slash - rest), &id)) {
        return true;
    }
    if (a == 0) {
        if (is(req, "GET")) {
            runs_list(s, req, id);
        } else {
            not_allowed(req);
        }
        return true;
    }
    if (!is(req, "POST")) {
        not_allowed(req);
    } else if (!forwarded(s, req)) {
        if (a == 4) {
            job_retry(s, req, id);
        } else {
            schedule_action(s, req, id, actions[a]);
        }
    }
    return true;
}

static bool prefix_is(h2o_iovec_t path,
                      const char *p,
                      const char **rest,
                      size_t *len)
{
    size_t n = strlen(p);
    if (path.len < n || memcmp(path.base, p, n) != 0) {
        return false;
    }
    *rest = path.base + n;
    *len = path.len - n;
    return true;
}

bool http__sched_route(struct http_server *s, h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    const char *rest;
    size_t len;

    if (prefix_is(path, "/v1/schedule/preview", &rest, &len) && len == 0) {
        if (is(req, "GET")) {
            preview(s, req);
        } else {
            not_allowed(req);
        }
    } else if (prefix_is(path, "/v1/dlq", &rest, &len) && len == 0) {
        if (is(req, "GET")) {
            http__jobs_list_status(s, req, FSM_FAILED);
        } else if (!is(req, "DELETE")) {
            not_allowed(req);
        } else if (!forwarded(s, req)) {
            dlq_bulk(s, req, FSM_CMD_DELETE);
        }
    } else if (prefix_is(path, "/v1/dlq/retry", &rest, &len) && len == 0) {
        if (!is(req, "POST")) {
            not_allowed(req);
        } else if (!forwarded(s, req)) {
            dlq_bulk(s, req, FSM_CMD_RETRY);
        }
    } else if (prefix_is(path, "/v1/workflows", &rest, &len) && len == 0) {
        if (!is(req, "POST")) {
            not_allowed(req);
        } else if (!forwarded(s, req)) {
            workflow_submit(s, req);
        }
    } else if (prefix_is(path, "/v1/workflows/", &rest, &len)) {
        uint64_t id;
        if (http__parse_id(rest, len, &id) != 0) {
            http__send_error(req, 404, "not_found", "id", "no workflow %.*s",
                             (int)len, rest);
        } else if (is(req, "GET")) {
            http__workflow_send(s, req, id, 200);
        } else if (!is(req, "DELETE")) {
            not_allowed(req);
        } else if (!forwarded(s, req)) {
            struct fsm_cmd cmd;
            memset(&cmd, 0, sizeof cmd);
            cmd.type = FSM_CMD_CANCEL_WF;
            cmd.id = id;
            struct call *call = http__call_new(s, req);
            call->id = id;
            int rv = submit_cmd(s, &cmd, wf_cancel_cb, call);
            if (rv != 0) {
                http__call_unref(call);
                http__send_err(req, rv, NULL, NULL);
            }
        }
    } else if (prefix_is(path, "/v1/queues", &rest, &len) && len == 0) {
        if (is(req, "GET")) {
            struct fsm_reader *rd;
            struct sb b;
            struct queues_ctx c = {&b, 0};
            if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
                http__send_err(req, ERR_STORAGE, NULL, NULL);
                return true;
            }
            http__sb_init(&b, &req->pool);
            http__sb_puts(&b, "{\"queues\":[");
            fsm_queues(rd, queues_cb, &c);
            fsm_read_end(rd);
            http__sb_puts(&b, "]}");
            http__send_sb(req, 200, &b, cluster_applied_index(s->cluster));
        } else {
            not_allowed(req);
        }
    } else if (prefix_is(path, "/v1/queues/", &rest, &len)) {
        if (!queue_name_ok(rest, len)) {
            http__send_error(req, 400, "invalid_argument", "name",
                             "a queue name is 1..%d of letters, digits and "
                             "_.:-",
                             FSM_MAX_STR);
        } else if (is(req, "GET")) {
            queue_send(s, req, (struct fsm_str){rest, (uint32_t)len});
        } else if (!is(req, "PUT")) {
            not_allowed(req);
        } else if (!forwarded(s, req)) {
            queue_put(s, req, rest, len);
        }
    } else {
        return false;
    }
    return true;
}
