/* Workflows: POST /v1/workflows (a DAG of jobs submitted as one command,
 * parents first), GET and DELETE /v1/workflows/{id}. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "http/internal.h"
#include "sched/policy.h"

#define WORKFLOW_MAX FSM_MAX_BATCH_JOBS

/* ---- Workflows ---------------------------------------------------------- */

static void wf_created_cb(void *data, int status, const struct fsm_result *res)
{
    struct call *call = data;
    struct http_server *s = call->s;
    h2o_req_t *req = http__call_finish(call);
    if (req == NULL || http__failed(req, status, res)) {
        return;
    }
    http__count_created(s, res, 1);
    http__workflow_send(s, req, res->ids[0], 201);
}

/* A workflow being parsed: the jobs as given (index i), their local
 * dependencies, then the order parents first. An error names the field. */
struct wf
{
    size_t n;
    struct job_input *in;
    struct fsm_job *jobs; /* In submit order. */
    uint64_t *deps;       /* FSM_MAX_DEPS per job (index i). */
    unsigned *order, *indeg;
    const char **keys;
    char field[96], msg[256];
};

static int wf_fail(struct wf *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int wf_fail(struct wf *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg, sizeof w->msg, fmt, ap);
    va_end(ap);
    return ERR_INVALID;
}

static int wf_alloc(struct wf *w, size_t n)
{
    w->n = n;
    w->in = calloc(n, sizeof *w->in);
    w->jobs = calloc(n, sizeof *w->jobs);
    w->deps = calloc(n * FSM_MAX_DEPS, sizeof *w->deps);
    w->order = calloc(n, sizeof *w->order);
    w->indeg = calloc(n, sizeof *w->indeg);
    w->keys = calloc(n, sizeof *w->keys);
    return w->in == NULL || w->jobs == NULL || w->deps == NULL ||
                   w->order == NULL || w->indeg == NULL || w->keys == NULL
               ? ERR_NOMEM
               : 0;
}

static void wf_free(struct wf *w)
{
    for (size_t i = 0; w->in != NULL && i < w->n; i++) {
        http__job_input_free(&w->in[i]);
    }
    free(w->in);
    free(w->jobs);
    free(w->deps);
    free(w->order);
    free(w->indeg);
    free(w->keys);
}

/* {"name", "jobs"} and nothing else. */
static int wf_check_top(struct wf *w, json_t *o, size_t *n)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    json_t *jobs = json_object_get(o, "jobs"), *v;
    const char *key;

    *n = json_array_size(jobs);
    if (name == NULL || name[0] == '\0' || strlen(name) > FSM_MAX_STR) {
        snprintf(w->field, sizeof w->field, "name");
        return wf_fail(w, "a name of 1..%d bytes is required", FSM_MAX_STR);
    }
    if (!json_is_array(jobs) || *n == 0 || *n > WORKFLOW_MAX) {
        snprintf(w->field, sizeof w->field, "jobs");
        return wf_fail(w, "an array of 1..%d jobs is required", WORKFLOW_MAX);
    }
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "name") != 0 && strcmp(key, "jobs") != 0) {
            snprintf(w->field, sizeof w->field, "%s", key);
            return wf_fail(w, "unknown field");
        }
    }
    return 0;
}

/* Every job's key: non-empty and unique. */
static int wf_keys(struct wf *w, json_t *jobs)
{
    size_t i;
    json_t *v;
    json_array_foreach(jobs, i, v)
    {
        const char *k = json_string_value(json_object_get(v, "key"));
        snprintf(w->field, sizeof w->field, "jobs[%zu].key", i);
        if (k == NULL || k[0] == '\0' || strlen(k) > FSM_MAX_STR) {
            return wf_fail(w, "jobs[%zu].key: a non-empty string is required",
                           i);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(k, w->keys[j]) == 0) {
                return wf_fail(w, "jobs[%zu].key: \"%s\" is used twice", i, k);
            }
        }
        w->keys[i] = k;
    }
    return 0;
}

/* Dependency @d of job @i: a key of this workflow or an existing job id. */
static int wf_dep(struct wf *w, size_t i, size_t d, const char *ref)
{
    uint64_t id = 0;
    size_t k;

    snprintf(w->field, sizeof w->field, "jobs[%zu].depends_on", i);
    for (k = 0; ref != NULL && k < w->n; k++) {
        if (strcmp(w->keys[k], ref) == 0) {
            break;
        }
    }
    if (ref != NULL && k < w->n) {
        if (k == i) {
            return wf_fail(w, "jobs[%zu].depends_on: \"%s\" depends on itself",
                           i, ref);
        }
        w->deps[i * FSM_MAX_DEPS + d] = FSM_DEP_LOCAL | k; /* Index. */
        return 0;
    }
    if (ref != NULL && http__parse_id(ref, strlen(ref), &id) == 0) {
        w->deps[i * FSM_MAX_DEPS + d] = id; /* An existing job. */
        return 0;
    }
    return wf_fail(w,
                   "jobs[%zu].depends_on: no job with key \"%s\" in this "
                   "workflow",
                   i, ref != NULL ? ref : "(not a string)");
}

/* Job @i without key/depends_on, then its dependencies. */
static int wf_job(struct http_server *s,
                  struct wf *w,
                  size_t i,
                  json_t *v,
                  int64_t now)
{
    json_t *copy = json_copy(v), *dl, *dv;
    size_t d;
    int rv;

    json_object_del(copy, "key");
    json_object_del(copy, "depends_on");
    rv = http__job_parse(
        &(struct job_parse_ctx){now, s->cfg.max_payload, (long)i}, copy,
        &w->in[i],
        &(struct job_parse_err){w->field, sizeof w->field, w->msg,
                                sizeof w->msg});
    json_decref(copy);
    if (rv != 0) {
        return rv;
    }
    if (w->in[i].job.flags & FSM_JOB_RECURRING) {
        snprintf(w->field, sizeof w->field, "jobs[%zu].schedule", i);
        return wf_fail(w, "a workflow job cannot be recurring");
    }
    if (w->in[i].job.idem_key.len > 0) {
        snprintf(w->field, sizeof w->field, "jobs[%zu].idempotency_key", i);
        return wf_fail(w, "not allowed in a workflow job");
    }
    dl = json_object_get(v, "depends_on");
    if (dl != NULL &&
        (!json_is_array(dl) || json_array_size(dl) > FSM_MAX_DEPS)) {
        snprintf(w->field, sizeof w->field, "jobs[%zu].depends_on", i);
        return wf_fail(w,
                       "jobs[%zu].depends_on: an array of at most %d keys or "
                       "job ids",
                       i, FSM_MAX_DEPS);
    }
    json_array_foreach(dl, d, dv)
    {
        if ((rv = wf_dep(w, i, d, json_string_value(dv))) != 0) {
            return rv;
        }
    }
    w->in[i].job.n_deps = (uint32_t)json_array_size(dl);
    return 0;
}

/* Parents first (what cannot be ordered sits on a cycle), local references
 * renumbered to positions in that order. */
static int wf_order(struct wf *w)
{
    size_t n = w->n;
    unsigned *local = calloc(n * FSM_MAX_DEPS, sizeof *local), cyc = 0;
    const unsigned **lp = calloc(n, sizeof *lp);
    int sorted;

    if (local == NULL || lp == NULL) {
        free(local);
        free(lp);
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        w->indeg[i] = 0;
        lp[i] = local + i * FSM_MAX_DEPS;
        for (uint32_t d = 0; d < w->in[i].job.n_deps; d++) {
            uint64_t ref = w->deps[i * FSM_MAX_DEPS + d];
            if (ref & FSM_DEP_LOCAL) {
                local[i * FSM_MAX_DEPS + w->indeg[i]++] =
                    (unsigned)(ref & ~FSM_DEP_LOCAL);
            }
        }
    }
    sorted = policy_topo_order((unsigned)n, w->indeg, lp, w->order, &cyc);
    free(local);
    free(lp);
    if (sorted != 0) {
        snprintf(w->field, sizeof w->field, "jobs[%u].depends_on", cyc);
        return wf_fail(w, "%s: \"%s\" is on a dependency cycle", w->field,
                       w->keys[cyc]);
    }
    unsigned *pos = w->indeg; /* Reused: position of each job in the order. */
    for (size_t i = 0; i < n; i++) {
        pos[w->order[i]] = (unsigned)i;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned src = w->order[i];
        uint64_t *d = w->deps + src * FSM_MAX_DEPS;
        w->jobs[i] = w->in[src].job;
        for (uint32_t k = 0; k < w->in[src].job.n_deps; k++) {
            if (d[k] & FSM_DEP_LOCAL) {
                d[k] = FSM_DEP_LOCAL | pos[d[k] & ~FSM_DEP_LOCAL];
            }
        }
        w->jobs[i].deps = d;
    }
    return 0;
}

/* The key goes into each job's spec, for GET /v1/workflows/{id}. */
static void wf_keys_into_specs(struct wf *w)
{
    for (size_t i = 0; i < w->n; i++) {
        struct job_input *in = &w->in[w->order[i]];
        json_t *spec = json_loadb(in->spec, strlen(in->spec), 0, NULL);
        json_object_set_new(spec, "workflow_key",
                            json_string(w->keys[w->order[i]]));
        free(in->spec);
        in->spec = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(spec);
        w->jobs[i].spec.p = in->spec;
        w->jobs[i].spec.len = (uint32_t)strlen(in->spec);
    }
}

static int wf_parse(struct http_server *s, struct wf *w, json_t *o)
{
    json_t *jobs = json_object_get(o, "jobs"), *v;
    int64_t now = sched_now(s->sched);
    size_t n, i;
    int rv;

    if ((rv = wf_check_top(w, o, &n)) != 0 || (rv = wf_alloc(w, n)) != 0 ||
        (rv = wf_keys(w, jobs)) != 0) {
        return rv;
    }
    json_array_foreach(jobs, i, v)
    {
        if ((rv = wf_job(s, w, i, v, now)) != 0) {
            return rv;
        }
    }
    if ((rv = wf_order(w)) != 0) {
        return rv;
    }
    wf_keys_into_specs(w);
    return 0;
}

/* Parse {"name", "jobs":[{"key", "depends_on":[keys or ids], ...job}]},
 * order the jobs parents first, and submit them as one command. */
void http__workflow_submit(struct http_server *s,
                           h2o_req_t *req,
                           const struct http_args *a)
{
    json_t *o = http__body_object(req, true);
    struct wf w;
    const char *why;
    int rv;

    if (o == NULL) {
        return;
    }
    memset(&w, 0, sizeof w);
    rv = wf_parse(s, &w, o);
    for (size_t i = 0; rv == 0 && i < w.n; i++) {
        if (!http__acl_check(s, req, a, w.jobs[i].queue, w.jobs[i].type,
                             "jobs")) {
            rv = -1; /* Answered. */
        }
    }
    if (rv > 0) {
        http__send_err(req, rv, w.field[0] ? w.field : NULL,
                       w.msg[0] ? w.msg : NULL);
    } else if (rv == 0 &&
               (rv = cluster_admit(s->cluster, req->entity.len, &why)) != 0) {
        http__send_err(req, rv, NULL, why);
    } else if (rv == 0) {
        const char *name = json_string_value(json_object_get(o, "name"));
        struct fsm_cmd cmd;
        memset(&cmd, 0, sizeof cmd);
        cmd.type = FSM_CMD_SUBMIT;
        cmd.jobs = w.jobs;
        cmd.n_jobs = (uint32_t)w.n;
        cmd.workflow.p = name;
        cmd.workflow.len = (uint32_t)strlen(name);
        http__submit_for(s, req, &cmd, wf_created_cb, 0);
    }
    wf_free(&w);
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
    http__format_time(wf.created_at, t, sizeof t);
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
    if (req == NULL || http__failed(req, status, res)) {
        return;
    }
    http__workflow_send(s, req, id, 200);
}

static bool workflow_id(h2o_req_t *req, const struct http_args *a, uint64_t *id)
{
    if (http__parse_id(a->id.base, a->id.len, id) != 0) {
        http__send_error(req, 404, "not_found", "id", "no workflow %.*s",
                         (int)a->id.len, a->id.base);
        return false;
    }
    return true;
}

void http__workflow_get(struct http_server *s,
                        h2o_req_t *req,
                        const struct http_args *a)
{
    uint64_t id;
    if (workflow_id(req, a, &id)) {
        http__workflow_send(s, req, id, 200);
    }
}

/* May the caller's token act on every member of workflow @id? (An
 * unknown workflow passes: the command answers 404.) */
static bool workflow_allowed(struct http_server *s,
                             h2o_req_t *req,
                             const struct http_args *a,
                             uint64_t id)
{
    struct fsm_reader *rd;
    struct fsm_workflow wf;

    if (a->token == NULL ||
        (a->token->queues.len == 0 && a->token->types.len == 0)) {
        return true;
    }
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        return false;
    }
    uint64_t first = 0;
    uint32_t n = 0;
    if (fsm_get_workflow(rd, id, &wf) == 0) {
        first = wf.first;
        n = wf.n;
    }
    fsm_read_end(rd);
    for (uint32_t i = 0; i < n; i++) {
        if (!http__acl_check_job(s, req, a, first + i)) {
            return false;
        }
    }
    return true;
}

void http__workflow_cancel(struct http_server *s,
                           h2o_req_t *req,
                           const struct http_args *a)
{
    struct fsm_cmd cmd;
    uint64_t id;
    if (!workflow_id(req, a, &id) || !workflow_allowed(s, req, a, id)) {
        return;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_CMD_CANCEL_WF;
    cmd.id = id;
    struct call *call = http__call_new(s, req);
    call->id = id;
    int rv = http__submit_cmd(s, &cmd, wf_cancel_cb, call);
    if (rv != 0) {
        http__call_unref(call);
        http__send_err(req, rv, NULL, NULL);
    }
}
