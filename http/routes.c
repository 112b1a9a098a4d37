/* The route table: every route of the API in one place, with its handler,
 * whether it must run on the leader, and the role it needs. Routing,
 * forwarding decisions, the 404/405 answers and the tests that walk every
 * route (tests/integration/test_routes.py) all read this table.
 *
 * A pattern is literal segments and at most one {variable} segment, which
 * the handler gets in http_args. A path that matches a pattern but not its
 * method gets 405; no pattern at all, 404. */

#include <endian.h>
#include <string.h>

#include "common/err.h"
#include "http/internal.h"

#define LEADER ROUTE_LEADER
#define LINEAR ROUTE_LINEARIZABLE

#define METRICS ROUTE_METRICS

/* Roles (docs/api.md, Access control; enforced with rotad --acl by
 * http__acl_authorize): admin can call every route; submit calls its own
 * routes and the read routes, limited to its token's queues and types;
 * worker calls the worker protocol; read calls GET routes. NULL: no token
 * needed. */
#define READ "read"
#define SUBMIT "submit"
#define WORKER "worker"
#define ADMIN "admin"

/* Routes without a relay handler leave that last member out (NULL). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
const struct http_route http__routes[] = {
    {"POST", "/v1/jobs", http__jobs_submit, LEADER | ROUTE_CHANNEL, SUBMIT},
    {"POST", "/v1/jobs/batch", http__jobs_submit_batch, LEADER | ROUTE_CHANNEL,
     SUBMIT},
    {"GET", "/v1/jobs", http__jobs_list, 0, READ},
    {"GET", "/v1/jobs/{id}", http__jobs_get, LINEAR, READ},
    {"PATCH", "/v1/jobs/{id}", http__jobs_patch, LEADER, SUBMIT},
    {"DELETE", "/v1/jobs/{id}", http__jobs_cancel, LEADER, SUBMIT},
    {"GET", "/v1/jobs/{id}/runs", http__schedule_runs, 0, READ},
    {"POST", "/v1/jobs/{id}/pause", http__schedule_pause, LEADER, SUBMIT},
    {"POST", "/v1/jobs/{id}/resume", http__schedule_resume, LEADER, SUBMIT},
    {"POST", "/v1/jobs/{id}/trigger", http__schedule_trigger, LEADER, SUBMIT},
    {"POST", "/v1/jobs/{id}/retry", http__job_retry, LEADER, SUBMIT},
    {"GET", "/v1/events", http__events_stream, 0, READ},
    {"POST", "/v1/webhooks", http__webhooks_create, LEADER, ADMIN},
    {"GET", "/v1/webhooks", http__webhooks_list, 0, ADMIN},
    {"GET", "/v1/webhooks/{id}", http__webhook_get, 0, ADMIN},
    {"DELETE", "/v1/webhooks/{id}", http__webhook_delete, LEADER, ADMIN},
    {"GET", "/v1/webhooks/{id}/deliveries", http__webhook_deliveries, 0, ADMIN},
    {"GET", "/v1/schedule/preview", http__schedule_preview, 0, READ},
    {"GET", "/v1/dlq", http__dlq_list, 0, READ},
    {"DELETE", "/v1/dlq", http__dlq_delete, LEADER, ADMIN},
    {"POST", "/v1/dlq/retry", http__dlq_retry, LEADER, SUBMIT},
    {"POST", "/v1/workflows", http__workflow_submit, LEADER, SUBMIT},
    {"GET", "/v1/workflows/{id}", http__workflow_get, 0, READ},
    {"DELETE", "/v1/workflows/{id}", http__workflow_cancel, LEADER, SUBMIT},
    {"GET", "/v1/queues", http__queues_list, 0, READ},
    {"GET", "/v1/queues/{name}", http__queue_get, 0, READ},
    {"PUT", "/v1/queues/{name}", http__queue_put, LEADER, ADMIN},
    {"POST", "/v1/workers", http__workers_register, LEADER, WORKER},
    {"GET", "/v1/workers", http__workers_list, 0, READ},
    {"DELETE", "/v1/workers/{id}", http__workers_delete, LEADER, WORKER},
    {"POST", "/v1/workers/{id}/lease", http__workers_lease, LEADER, WORKER,
     http__workers_lease_relayed},
    {"POST", "/v1/workers/{id}/heartbeat", http__workers_heartbeat, LEADER,
     WORKER, http__workers_heartbeat_relayed},
    {"POST", "/v1/workers/{id}/complete", http__workers_complete, LEADER,
     WORKER, http__workers_complete_relayed},
    {"GET", "/v1/cluster", http__cluster_get, 0, NULL},
    {"POST", "/v1/cluster/nodes", http__cluster_add, LEADER, ADMIN},
    {"DELETE", "/v1/cluster/nodes/{id}", http__cluster_remove, LEADER, ADMIN},
    {"POST", "/v1/cluster/transfer", http__cluster_transfer, LEADER, ADMIN},
    {"GET", "/v1/debug/digest", http__digest, 0, READ},
    {"GET", "/v1/snapshot", http__snapshot, LEADER, ADMIN},
    {"POST", "/v1/acl/bootstrap", http__acl_bootstrap, LEADER, NULL},
    {"POST", "/v1/acl/tokens", http__acl_tokens_create, LEADER, ADMIN},
    {"GET", "/v1/acl/tokens", http__acl_tokens_list, 0, ADMIN},
    {"DELETE", "/v1/acl/tokens/{id}", http__acl_tokens_delete, LEADER, ADMIN},
    {"GET", "/healthz", http__healthz, 0, NULL},
    {"GET", "/readyz", http__readyz, 0, NULL},
    {"GET", "/metrics", http__metrics, METRICS, READ},
    {"GET", "/", http__dashboard, 0, NULL},
    {"GET", "/dashboard", http__dashboard, 0, NULL},
    {"GET", "/ui/{file}", http__dashboard_file, 0, NULL},
    {"GET", "/v1/openapi.json", http__openapi, 0, NULL},
    /* The seeds' aliases. */
    {"POST", "/jobs", http__jobs_submit, LEADER, SUBMIT},
    {"GET", "/jobs", http__jobs_list, 0, READ},
    {"POST", "/api/jobs", http__jobs_submit, LEADER, SUBMIT},
    {"GET", "/api/jobs", http__jobs_list, 0, READ},
    {"GET", "/jobs/{id}", http__jobs_get, LINEAR, READ},
    {"PATCH", "/jobs/{id}", http__jobs_patch, LEADER, SUBMIT},
    {"DELETE", "/jobs/{id}", http__jobs_cancel, LEADER, SUBMIT},
    {"GET", "/api/job-status/{id}", http__jobs_get, 0, READ},
};
#pragma GCC diagnostic pop

const size_t http__n_routes = sizeof http__routes / sizeof http__routes[0];

/* Does @path match @pattern? Sets a->id to the variable segment. */
static bool match(const char *pattern,
                  const char *path,
                  size_t len,
                  struct http_args *a)
{
    const char *p = pattern, *s = path, *end = path + len;

    while (*p != '\0') {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            const char *seg = s;
            while (s < end && *s != '/') {
                s++;
            }
            if (s == seg) {
                return false; /* An empty segment is no id. */
            }
            a->id = h2o_iovec_init(seg, (size_t)(s - seg));
            p = close + 1;
        } else if (s < end && *p == *s) {
            p++;
            s++;
        } else {
            return false;
        }
    }
    return s == end;
}

const struct http_route *http__route_find(const char *method,
                                          size_t method_len,
                                          const char *path,
                                          size_t path_len,
                                          struct http_args *a,
                                          bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < http__n_routes; i++) {
        const struct http_route *r = &http__routes[i];
        *a = (struct http_args){{NULL, 0}, NULL};
        if (!match(r->pattern, path, path_len, a)) {
            continue;
        }
        *path_known = true;
        if (h2o_memis(method, method_len, r->method, strlen(r->method))) {
            return r;
        }
    }
    *a = (struct http_args){{NULL, 0}, NULL};
    return NULL;
}

/* Must @r run here, or be forwarded to the leader? */
static bool must_forward(struct http_server *s,
                         h2o_req_t *req,
                         const struct http_route *r)
{
    char buf[32];
    if (cluster_is_leader(s->cluster)) {
        return false;
    }
    if ((r->flags & ROUTE_CHANNEL) && cluster_fwd_ready(s->cluster)) {
        return false;
    }
    if (r->flags & ROUTE_LEADER) {
        return true;
    }
    return (r->flags & ROUTE_LINEARIZABLE) &&
           http__query(req, "consistency", buf, sizeof buf) != NULL &&
           strcmp(buf, "linearizable") == 0;
}

/* ---- Relayed calls ---------------------------------------------------------
 * A follower with an open forward channel sends the calls of a route with a
 * relay handler to the leader as one frame (HTTP_FWD_RELAY): u16 method
 * length, method, u16 path length, path, u16 secret length, the worker's
 * secret header, then the body; all lengths little endian. The follower
 * checked the caller's token against the route's role (the channel is node
 * to node: mutual TLS in secure mode), so the leader finds the route again
 * and runs its relay handler, whose answer comes back as the leader
 * rendered it. */

#define RELAY_MAX_PART 4096 /* Method, path or secret. */

static char *put_part(char *p, const char *s, size_t n)
{
    uint16_t v = htole16((uint16_t)n);
    memcpy(p, &v, 2);
    if (n > 0) {
        memcpy(p + 2, s, n);
    }
    return p + 2 + n;
}

/* Follower: relay @req over the channel; false if it cannot go (not open,
 * full): then the caller forwards it over HTTP. */
static bool relay(struct http_server *s, h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized, secret = {NULL, 0};
    ssize_t i = h2o_find_header_by_str(&req->headers,
                                       H2O_STRLIT(HTTP_WORKER_SECRET), -1);
    size_t len;
    char *buf, *p;

    if (i >= 0) {
        secret = req->headers.entries[i].value;
    }
    if (!cluster_fwd_ready(s->cluster) || req->method.len > RELAY_MAX_PART ||
        path.len > RELAY_MAX_PART || secret.len > RELAY_MAX_PART) {
        return false;
    }
    len = 6 + req->method.len + path.len + secret.len + req->entity.len;
    buf = h2o_mem_alloc_pool(&req->pool, len);
    p = put_part(buf, req->method.base, req->method.len);
    p = put_part(p, path.base, path.len);
    p = put_part(p, secret.base, secret.len);
    if (req->entity.len > 0) {
        memcpy(p, req->entity.base, req->entity.len);
    }
    return http__fwd_send(s, req, HTTP_FWD_RELAY, buf, len);
}

/* One length-prefixed part of a relayed frame; false past its end. */
static bool get_part(const char **p, const char *end, h2o_iovec_t *out)
{
    uint16_t v;
    if (end - *p < 2) {
        return false;
    }
    memcpy(&v, *p, 2);
    v = le16toh(v);
    if ((size_t)(end - *p - 2) < v) {
        return false;
    }
    *out = h2o_iovec_init(*p + 2, v);
    *p += 2 + v;
    return true;
}

void http__relay_handle(struct http_server *s,
                        struct cluster_fwd_call *fc,
                        const void *payload,
                        size_t len)
{
    const char *p = payload, *end = p + len;
    h2o_iovec_t method, path;
    struct http_relayed r = {fc, {NULL, 0}, {NULL, 0}};
    const struct http_route *route = NULL;
    struct http_args a;
    bool known;

    if (get_part(&p, end, &method) && get_part(&p, end, &path) &&
        get_part(&p, end, &r.secret)) {
        route = http__route_find(method.base, method.len, path.base, path.len,
                                 &a, &known);
    }
    if (route == NULL || route->relay == NULL) {
        cluster_fwd_reply(fc, &(struct cluster_fwd_answer){
                                  .err = ERR_INVALID,
                                  .msg = "not a relayed route",
                              });
        return;
    }
    if (!cluster_is_leader(s->cluster)) {
        cluster_fwd_reply(fc, &(struct cluster_fwd_answer){
                                  .err = ERR_NOTLEADER,
                                  .msg = "this node is no longer the leader",
                              });
        return;
    }
    r.body = h2o_iovec_init(p, (size_t)(end - p));
    route->relay(s, &r, &a);
}

/* Browser safety: a body must say it is JSON (a cross-site form or
 * text/plain "simple request" cannot), and a request a browser marks with
 * another site's Origin is refused unless that origin is in --cors-origins.
 * True if @req may go on (else it was answered). */
static bool same_site(struct http_server *s, h2o_req_t *req)
{
    ssize_t i;
    if (req->entity.len > 0) {
        i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
        const h2o_iovec_t *ct = i >= 0 ? &req->headers.entries[i].value : NULL;
        if (ct == NULL || ct->len < 16 ||
            !h2o_lcstris(ct->base, 16, H2O_STRLIT("application/json"))) {
            http__send_error(req, 415, "unsupported_media_type", "content-type",
                             "a request body must be Content-Type: "
                             "application/json");
            return false;
        }
    }
    i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    if (i < 0) {
        return true; /* Not a browser's cross-origin request. */
    }
    const h2o_iovec_t *o = &req->headers.entries[i].value;
    const char *host = o->len > 0 ? memchr(o->base, '/', o->len) : NULL;
    /* "scheme://authority": the authority must be this node's own. */
    if (host != NULL && (size_t)(host - o->base) + 2 <= o->len &&
        host[1] == '/' &&
        h2o_memis(host + 2, o->len - (size_t)(host + 2 - o->base),
                  req->authority.base, req->authority.len)) {
        return true;
    }
    if (s->cfg.cors_origins != NULL &&
        sched_list_has((struct fsm_str){s->cfg.cors_origins,
                                        (uint32_t)strlen(s->cfg.cors_origins)},
                       (struct fsm_str){o->base, (uint32_t)o->len})) {
        return true;
    }
    http__send_error(req, 403, "forbidden", "origin",
                     "cross-site request from %.*s refused (--cors-origins)",
                     (int)(o->len < 200 ? o->len : 200), o->base);
    return false;
}

void http__route(struct http_server *s, h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    struct http_args a;
    bool path_known;
    const struct http_route *r;

    if (!same_site(s, req)) {
        return;
    }

    r = http__route_find(req->method.base, req->method.len, path.base, path.len,
                         &a, &path_known);
    if (r != NULL) {
        /* A follower checks, then forwards (with the Authorization
         * header); the leader checks again. */
        if (s->cfg.acl && !http__acl_authorize(s, req, r, &a)) {
            return;
        }
        if (must_forward(s, req, r)) {
            if (r->relay == NULL || !relay(s, req)) {
                http__forward(s, req);
            }
        } else {
            r->handler(s, req, &a);
        }
        return;
    }
    if (path_known) {
        http__send_error(req, 405, "method_not_allowed", NULL,
                         "%.*s is not allowed on %.*s", (int)req->method.len,
                         req->method.base, (int)path.len, path.base);
    } else {
        http__send_error(req, 404, "not_found", NULL, "no route %.*s",
                         (int)path.len, path.base);
    }
}
