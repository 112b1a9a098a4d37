/* Workflows: POST /v1/workflows (a DAG of jobs submitted as one command,
 * parents first), GET and DELETE /v1/workflows/{id}. */

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
    s->submitted += res->n_ids > 0 ? res->n_ids - 1 : 0;
    http__workflow_send(s, req, res->ids[0], 201);
}

/* Parse {"name", "jobs":[{"key", "depends_on":[keys or ids], ...job}]},
 * order the jobs parents first, and submit them as one command. */
void http__workflow_submit(struct http_server *s,
                           h2o_req_t *req,
                           const struct http_args *a)
{
    json_t *o = http__body_object(req, true), *jobs, *v;
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
    int64_t now = sched_now(s->sched);
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
    http__submit_for(s, req, &cmd, wf_created_cb, 0);
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

void http__workflow_cancel(struct http_server *s,
                           h2o_req_t *req,
                           const struct http_args *a)
{
    struct fsm_cmd cmd;
    uint64_t id;
    if (!workflow_id(req, a, &id)) {
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
