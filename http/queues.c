/* Queues: GET /v1/queues, GET and PUT /v1/queues/{name} (pause,
 * concurrency, max_pending). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "http/internal.h"

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
    http__sb_puts(b, ",\"max_pending\":");
    if (q->max_pending > 0) {
        http__sb_printf(b, "%u", q->max_pending);
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
    if (req == NULL || http__failed(req, status, res)) {
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

#define QUEUE_MAX_CONCURRENCY 1000000
#define QUEUE_MAX_PENDING 1000000000

/* A cap: null or 0 (none) or an integer in 1..@max. NULL, or why not. */
static const char *cap_field(json_t *v, uint32_t max, uint32_t *out)
{
    if (json_is_null(v)) {
        *out = 0;
        return NULL;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > (json_int_t)max) {
        return max == QUEUE_MAX_CONCURRENCY
                   ? "must be null (no cap) or an integer in 0..1000000 "
                     "(0: no cap)"
                   : "must be null (no cap) or an integer in 0..1000000000 "
                     "(0: no cap)";
    }
    *out = (uint32_t)json_integer_value(v);
    return NULL;
}

/* PUT /v1/queues/{name} {"paused": bool, "concurrency": n|null,
 * "max_pending": n|null}: fields left out keep their value. */
static void queue_put(struct http_server *s,
                      h2o_req_t *req,
                      const char *name,
                      size_t len)
{
    /* Called with a checked name (http__queue_put). */
    json_t *o = http__body_object(req, true), *v;
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
        const char *why = NULL;
        if (strcmp(k, "paused") == 0) {
            why = json_is_boolean(v) ? NULL : "must be a boolean";
            cmd.queue.paused = json_is_true(v);
        } else if (strcmp(k, "concurrency") == 0) {
            why = cap_field(v, QUEUE_MAX_CONCURRENCY, &cmd.queue.concurrency);
        } else if (strcmp(k, "max_pending") == 0) {
            why = cap_field(v, QUEUE_MAX_PENDING, &cmd.queue.max_pending);
        } else {
            why = "unknown field";
        }
        if (why != NULL) {
            http__send_error(req, 400, "invalid_argument", k, "%s: %s", k, why);
            json_decref(o);
            return;
        }
    }
    json_decref(o);
    /* The name rides after the call for the answer. */
    struct call *call = http__call_new_extra(s, req, len + 1);
    memcpy((char *)call + sizeof *call, name, len);
    ((char *)call + sizeof *call)[len] = 0;
    int rv = http__submit_cmd(s, &cmd, queue_set_cb, call);
    if (rv != 0) {
        http__call_unref(call);
        http__send_err(req, rv, NULL, NULL);
    }
}

static bool queue_name(h2o_req_t *req, const struct http_args *a)
{
    if (!queue_name_ok(a->id.base, a->id.len)) {
        http__send_error(req, 400, "invalid_argument", "name",
                         "a queue name is 1..%d of letters, digits and _.:-",
                         FSM_MAX_STR);
        return false;
    }
    return true;
}

void http__queues_list(struct http_server *s,
                       h2o_req_t *req,
                       const struct http_args *a)
{
    struct fsm_reader *rd;
    struct sb b;
    struct queues_ctx c = {&b, 0};
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        return;
    }
    http__sb_init(&b, &req->pool);
    http__sb_puts(&b, "{\"queues\":[");
    fsm_queues(rd, queues_cb, &c);
    fsm_read_end(rd);
    http__sb_puts(&b, "]}");
    http__send_sb(req, 200, &b, cluster_applied_index(s->cluster));
}

void http__queue_get(struct http_server *s,
                     h2o_req_t *req,
                     const struct http_args *a)
{
    if (queue_name(req, a)) {
        queue_send(s, req, (struct fsm_str){a->id.base, (uint32_t)a->id.len});
    }
}

void http__queue_put(struct http_server *s,
                     h2o_req_t *req,
                     const struct http_args *a)
{
    if (queue_name(req, a)) {
        queue_put(s, req, a->id.base, a->id.len);
    }
}
