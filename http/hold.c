/* Holding requests through elections (--leader-hold, docs/api.md).
 *
 * A request that needs the leader while none is known, or whose leader
 * said "not the leader" or could not be connected to, has not been acted
 * on anywhere. Instead of answering 503 at once it is parked here and
 * routed again as soon as a leader is known (or a new one is), so a client
 * sees a pause instead of an error; 503 + Retry-After only once the hold
 * ran out. A request whose outcome is unknown (its forward was cut after it
 * was sent, or the leader lost leadership with it in the log) is held only
 * when running it twice gives the same answer: GET, PUT, or a body whose
 * every job carries an idempotency key.
 *
 * Bounds: HOLD_MAX requests and HOLD_MAX_BYTES of bodies parked at once
 * (more get their 503 at once); a request forwarded by another node is
 * never held here (the node it came through holds it). */

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/list.h"
#include "http/internal.h"

#define HOLD_MAX 4096
#define HOLD_MAX_BYTES ((size_t)64 << 20)
#define HOLD_TICK_MS 10
/* A parked request is routed again at the latest after this (doubling
 * from HOLD_TICK_MS), at once when the leader changes. */
#define HOLD_BACKOFF_MAX_MS 200

struct hold_state;

struct hold
{
    struct list link; /* In st->holds (every record whose request lives). */
    struct hold_state *st;
    h2o_req_t *req;
    uint64_t deadline; /* uv_now() ms. */
    uint64_t not_before;
    uint64_t leader; /* usable_leader() when parked. */
    unsigned backoff;
    bool parked;
    int err; /* Answered at the deadline. */
    char msg[160];
};

struct hold_state
{
    struct list holds;
    unsigned n;
    size_t bytes;
    uv_timer_t *timer; /* malloc'ed: it outlives @s while closing. */
    bool closing;
};

static void hold_dispose(void *p)
{
    struct hold *h = *(struct hold **)p;
    h->st->n--;
    h->st->bytes -= h->req->entity.len;
    list_remove(&h->link);
    free(h);
}

static struct hold *find(struct hold_state *st, h2o_req_t *req)
{
    struct list *it;
    LIST_FOREACH (it, &st->holds) {
        struct hold *h = CONTAINER_OF(it, struct hold, link);
        if (h->req == req) {
            return h;
        }
    }
    return NULL;
}

static bool forwarded(h2o_req_t *req)
{
    return h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-rota-forwarded"),
                                  -1) != -1;
}

static void timer_cb(uv_timer_t *t);

/* The leader a request can be routed to now: this node, or one whose HTTP
 * address is in the node table. 0 while none is known, and also while a
 * follower knows the leader from raft but has not applied the leader's
 * address yet (a new cluster's first moments): routing would only park
 * the request again. */
static uint64_t usable_leader(struct http_server *s)
{
    char http[256];
    uint64_t id = cluster_leader(s->cluster, http, sizeof http);
    return id != 0 && (id == cluster_id(s->cluster) || http[0] != '\0') ? id
                                                                        : 0;
}

bool http__hold(struct http_server *s, h2o_req_t *req, int err, const char *msg)
{
    struct hold_state *st = s->hold;
    uint64_t now = uv_now(s->loop);
    struct hold *h;

    if (st == NULL || st->closing || s->cfg.leader_hold == 0 ||
        s->ctx.shutdown_requested || forwarded(req)) {
        return false;
    }
    h = find(st, req);
    if (h == NULL) {
        if (st->n >= HOLD_MAX || st->bytes + req->entity.len > HOLD_MAX_BYTES) {
            return false;
        }
        h = calloc(1, sizeof *h);
        if (h == NULL) {
            return false;
        }
        struct hold **holder =
            h2o_mem_alloc_shared(&req->pool, sizeof *holder, hold_dispose);
        *holder = h;
        h->st = st;
        h->req = req;
        h->deadline = now + s->cfg.leader_hold;
        h->backoff = HOLD_TICK_MS;
        list_push(&st->holds, &h->link);
        st->n++;
        st->bytes += req->entity.len;
        s->leader_held++;
    }
    if (now >= h->deadline) {
        return false;
    }
    h->parked = true;
    h->err = err;
    snprintf(h->msg, sizeof h->msg, "%s",
             msg != NULL && msg[0] != '\0' ? msg : err_strerror(err));
    h->leader = usable_leader(s);
    h->not_before = now + h->backoff;
    h->backoff = h->backoff * 2 < HOLD_BACKOFF_MAX_MS ? h->backoff * 2
                                                      : HOLD_BACKOFF_MAX_MS;
    if (!uv_is_active((uv_handle_t *)st->timer)) {
        uv_timer_start(st->timer, timer_cb, HOLD_TICK_MS, HOLD_TICK_MS);
    }
    return true;
}

/* Every idempotency_key of the jobs in a submit body (one job, an array, or
 * {"jobs": [...]}) present? */
static bool all_keyed(json_t *body)
{
    json_t *jobs = json_is_array(body) ? body : json_object_get(body, "jobs");
    json_t *v;
    size_t i;

    if (!json_is_array(jobs)) {
        return json_is_string(json_object_get(body, "idempotency_key"));
    }
    if (json_array_size(jobs) == 0) {
        return false;
    }
    json_array_foreach(jobs, i, v)
    {
        if (!json_is_string(json_object_get(v, "idempotency_key"))) {
            return false;
        }
    }
    return true;
}

bool http__hold_safe_again(h2o_req_t *req)
{
    json_t *body;
    bool keyed;

    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
        h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")) ||
        h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT"))) {
        return true;
    }
    /* Not DELETE: a cancel that did commit answers 409 the second time,
     * which would tell the client its cancel failed (the fault suite's
     * cancel_violations). */
    if (req->entity.len == 0) {
        return false;
    }
    body = json_loadb(req->entity.base, req->entity.len, 0, NULL);
    keyed = body != NULL && all_keyed(body);
    json_decref(body);
    return keyed;
}

static void release(struct http_server *s, struct hold *h, bool answer)
{
    h2o_req_t *req = h->req;
    h->parked = false;
    if (answer) {
        s->leader_held_expired++;
        http__send_err(req, h->err, NULL, h->msg);
    } else {
        http__route(s, req);
    }
}

static void timer_cb(uv_timer_t *t)
{
    struct http_server *s = t->data;
    struct hold_state *st = s->hold;
    uint64_t now = uv_now(s->loop);
    uint64_t leader = usable_leader(s);
    struct hold *due[64];
    unsigned n = 0;
    struct list *it;

    /* Collect first: routing a request may park it again or free it. */
    LIST_FOREACH (it, &st->holds) {
        struct hold *h = CONTAINER_OF(it, struct hold, link);
        if (!h->parked) {
            continue;
        }
        if (n < sizeof due / sizeof due[0] &&
            (now >= h->deadline ||
             (leader != 0 && (leader != h->leader || now >= h->not_before)))) {
            due[n++] = h;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        release(s, due[i], now >= due[i]->deadline);
    }
    /* Stop only once nothing is parked: routing a released request may
     * have parked it again at once (cluster_forward can say "no leader"
     * without going async), and http__hold does not restart a timer that
     * is still running. Stopping then left it parked with no timer: never
     * routed again, never answered at its deadline. */
    LIST_FOREACH (it, &st->holds) {
        if (CONTAINER_OF(it, struct hold, link)->parked) {
            return;
        }
    }
    uv_timer_stop(t);
}

int http__hold_init(struct http_server *s)
{
    struct hold_state *st = calloc(1, sizeof *st);
    if (st == NULL || (st->timer = malloc(sizeof *st->timer)) == NULL) {
        free(st);
        return ERR_NOMEM;
    }
    list_init(&st->holds);
    uv_timer_init(s->loop, st->timer);
    st->timer->data = s;
    s->hold = st;
    return 0;
}

/* Closing: every parked request gets its 503 now. */
void http__hold_close(struct http_server *s)
{
    struct hold_state *st = s->hold;
    struct list *it;
    bool again = true;

    if (st == NULL) {
        return;
    }
    st->closing = true;
    while (again) {
        again = false;
        LIST_FOREACH (it, &st->holds) {
            struct hold *h = CONTAINER_OF(it, struct hold, link);
            if (h->parked) {
                h->parked = false;
                http__send_err(h->req, ERR_SHUTDOWN, NULL, NULL);
                again = true;
                break;
            }
        }
    }
    uv_close((uv_handle_t *)st->timer, (uv_close_cb)free);
}

/* After the connections closed: no record is left. */
void http__hold_free(struct http_server *s)
{
    free(s->hold);
    s->hold = NULL;
}
