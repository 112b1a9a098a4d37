/* h2o on the node's libuv loop: listener, routing, forwarding to the leader.
 *
 * Routing is a flat table on (method, path) with the seeds' aliases. Writes
 * on a follower are forwarded to the leader's HTTP address, one hop at most
 * (the leader refuses a forwarded request with 503 if it is no longer the
 * leader). With no known leader a write gets 503 + Retry-After. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "http"
#include "common/err.h"
#include "common/log.h"
#include "http/internal.h"

struct handler
{
    h2o_handler_t super;
    struct http_server *s;
};

/* ---- Async calls -------------------------------------------------------- */

static void call_dispose(void *p)
{
    struct call **holder = p;
    struct call *call = *holder;
    call->req = NULL;
    http__call_unref(call);
}

struct call *http__call_new(struct http_server *s, h2o_req_t *req)
{
    return http__call_new_extra(s, req, 0);
}

struct call *http__call_new_extra(struct http_server *s,
                                  h2o_req_t *req,
                                  size_t extra)
{
    struct call *call = calloc(1, sizeof *call + extra);
    struct call **holder;
    if (call == NULL) {
        return NULL;
    }
    call->refs = 2;
    call->req = req;
    call->s = s;
    holder = h2o_mem_alloc_shared(&req->pool, sizeof *holder, call_dispose);
    *holder = call;
    return call;
}

void http__call_unref(struct call *call)
{
    if (--call->refs == 0) {
        free(call);
    }
}

h2o_req_t *http__call_finish(struct call *call)
{
    h2o_req_t *req = call->req;
    http__call_unref(call);
    return req;
}

/* ---- Forwarding --------------------------------------------------------- */

static void forward_cb(void *data, const struct cluster_http_response *res)
{
    struct call *call = data;
    h2o_req_t *req = http__call_finish(call);
    char *copy;

    if (req == NULL) {
        return;
    }
    if (res->status == 0) {
        http__send_err(req, res->err == 0 ? ERR_UNAVAILABLE : res->err, NULL,
                       res->err == ERR_TIMEOUT
                           ? "the leader did not answer in time"
                           : "the leader cannot be reached");
        return;
    }
    if (res->retry_after != NULL) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER,
                       NULL,
                       h2o_strdup(&req->pool, res->retry_after, SIZE_MAX).base,
                       strlen(res->retry_after));
    }
    if (res->index != NULL) {
        h2o_iovec_t v = h2o_strdup(&req->pool, res->index, SIZE_MAX);
        h2o_add_header_by_str(&req->pool, &req->res.headers,
                              H2O_STRLIT("x-rota-index"), 0, NULL, v.base,
                              v.len);
    }
    copy = h2o_mem_alloc_pool(&req->pool, res->body_len + 1);
    memcpy(copy, res->body, res->body_len);
    http__send_text(req, res->status,
                    res->ctype != NULL ? res->ctype : "application/json", copy,
                    res->body_len);
}

void http__forward(struct http_server *s, h2o_req_t *req)
{
    static const char *const headers[] = {"Content-Type: application/json",
                                          "X-Rota-Forwarded: 1", NULL};
    char path[2048];
    struct call *call;
    int rv;

    if (h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-rota-forwarded"),
                               -1) != -1) {
        /* One hop at most: the sender thought we lead, we do not. */
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER,
                       NULL, H2O_STRLIT("1"));
        http__send_err(req, ERR_NOTLEADER, NULL,
                       "this node is no longer the leader");
        return;
    }
    if (req->path.len >= sizeof path) {
        http__send_err(req, ERR_TOOLARGE, NULL, "request path too long");
        return;
    }
    memcpy(path, req->path.base, req->path.len);
    path[req->path.len] = '\0';
    call = http__call_new(s, req);
    if (call == NULL) {
        http__send_err(req, ERR_NOMEM, NULL, NULL);
        return;
    }
    char method[16];
    snprintf(method, sizeof method, "%.*s", (int)req->method.len,
             req->method.base);
    rv = cluster_forward(s->cluster, method, path, headers, req->entity.base,
                         req->entity.len, forward_cb, call);
    if (rv != 0) {
        http__call_unref(call); /* The callback's reference. */
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER,
                       NULL, H2O_STRLIT("1"));
        http__send_err(req, rv == ERR_NOTLEADER ? ERR_NOLEADER : rv, NULL,
                       "no leader is known: retry later");
        return;
    }
    s->forwarded++;
}

/* ---- Routing ------------------------------------------------------------ */

static bool method_is(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

/* If @path starts with @prefix and has one more segment, set *rest. */
static bool match_id(h2o_iovec_t path,
                     const char *prefix,
                     const char **rest,
                     size_t *rest_len)
{
    size_t n = strlen(prefix);
    if (path.len <= n || memcmp(path.base, prefix, n) != 0) {
        return false;
    }
    if (memchr(path.base + n, '/', path.len - n) != NULL) {
        return false;
    }
    *rest = path.base + n;
    *rest_len = path.len - n;
    return true;
}

static bool path_is(h2o_iovec_t path, const char *p)
{
    return h2o_memis(path.base, path.len, p, strlen(p));
}

static void method_not_allowed(h2o_req_t *req)
{
    http__send_error(req, 405, "method_not_allowed", NULL,
                     "%.*s is not allowed on %.*s", (int)req->method.len,
                     req->method.base, (int)req->path_normalized.len,
                     req->path_normalized.base);
}

/* Writes and linearizable reads go to the leader. */
static bool must_forward(struct http_server *s, h2o_req_t *req)
{
    return !cluster_is_leader(s->cluster);
}

static void route_jobs(struct http_server *s, h2o_req_t *req)
{
    if (method_is(req, "POST")) {
        if (must_forward(s, req)) {
            http__forward(s, req);
        } else {
            http__jobs_submit(s, req);
        }
    } else if (method_is(req, "GET")) {
        http__jobs_list(s, req);
    } else {
        method_not_allowed(req);
    }
}

static void route_job(struct http_server *s,
                      h2o_req_t *req,
                      const char *id,
                      size_t len)
{
    char buf[32];
    bool linearizable = http__query(req, "consistency", buf, sizeof buf) &&
                        strcmp(buf, "linearizable") == 0;

    if (method_is(req, "GET")) {
        if (linearizable && must_forward(s, req)) {
            http__forward(s, req);
        } else {
            http__jobs_get(s, req, id, len);
        }
    } else if (method_is(req, "PATCH") || method_is(req, "DELETE")) {
        if (must_forward(s, req)) {
            http__forward(s, req);
        } else if (method_is(req, "PATCH")) {
            http__jobs_patch(s, req, id, len);
        } else {
            http__jobs_cancel(s, req, id, len);
        }
    } else {
        method_not_allowed(req);
    }
}

static void route_cluster(struct http_server *s,
                          h2o_req_t *req,
                          h2o_iovec_t path)
{
    const char *id;
    size_t len;

    if (path_is(path, "/v1/cluster")) {
        if (method_is(req, "GET")) {
            http__cluster_get(s, req);
        } else {
            method_not_allowed(req);
        }
    } else if (path_is(path, "/v1/cluster/nodes")) {
        if (!method_is(req, "POST")) {
            method_not_allowed(req);
        } else if (must_forward(s, req)) {
            http__forward(s, req);
        } else {
            http__cluster_add(s, req);
        }
    } else if (match_id(path, "/v1/cluster/nodes/", &id, &len)) {
        if (!method_is(req, "DELETE")) {
            method_not_allowed(req);
        } else if (must_forward(s, req)) {
            http__forward(s, req);
        } else {
            http__cluster_remove(s, req, id, len);
        }
    } else if (path_is(path, "/v1/cluster/transfer")) {
        if (!method_is(req, "POST")) {
            method_not_allowed(req);
        } else if (must_forward(s, req)) {
            http__forward(s, req);
        } else {
            http__cluster_transfer(s, req);
        }
    } else {
        http__send_error(req, 404, "not_found", NULL, "no route %.*s",
                         (int)path.len, path.base);
    }
}

static void route(struct http_server *s, h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    const char *id;
    size_t len;

    if (path_is(path, "/v1/jobs") || path_is(path, "/jobs") ||
        path_is(path, "/api/jobs")) {
        route_jobs(s, req);
    } else if (match_id(path, "/v1/jobs/", &id, &len) ||
               match_id(path, "/jobs/", &id, &len)) {
        route_job(s, req, id, len);
    } else if (path.len > 9 && memcmp(path.base, "/v1/jobs/", 9) == 0 &&
               http__sched_route_job(s, req, path.base + 9, path.len - 9)) {
        /* Answered: runs, pause, resume, trigger, retry. */
    } else if (http__sched_route(s, req)) {
        /* Answered: preview, dlq, workflows, queues. */
    } else if (match_id(path, "/api/job-status/", &id, &len)) {
        if (method_is(req, "GET")) {
            http__jobs_get(s, req, id, len);
        } else {
            method_not_allowed(req);
        }
    } else if (path_is(path, "/v1/workers") ||
               (path.len > 12 && memcmp(path.base, "/v1/workers/", 12) == 0)) {
        bool is_get = method_is(req, "GET");
        if (!is_get && must_forward(s, req)) {
            http__forward(s, req);
        } else {
            http__workers_route(s, req, path, method_is(req, "POST"),
                                method_is(req, "DELETE"));
        }
    } else if (path.len >= 11 && memcmp(path.base, "/v1/cluster", 11) == 0) {
        route_cluster(s, req, path);
    } else if (path_is(path, "/healthz")) {
        http__healthz(s, req);
    } else if (path_is(path, "/readyz")) {
        http__readyz(s, req);
    } else if (path_is(path, "/metrics")) {
        http__metrics(s, req);
    } else if (path_is(path, "/v1/debug/digest")) {
        http__digest(s, req);
    } else if (path_is(path, "/") || path_is(path, "/dashboard")) {
        http__dashboard(s, req);
    } else {
        http__send_error(req, 404, "not_found", NULL, "no route %.*s",
                         (int)path.len, path.base);
    }
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct handler *h = (struct handler *)self;
    struct http_server *s = h->s;

    if (req->entity.base != NULL && req->entity.len > s->cfg.max_body) {
        http__send_error(req, 413, "too_large", NULL,
                         "request body of %zu bytes is over the limit of %zu",
                         req->entity.len, s->cfg.max_body);
        return 0;
    }
    route(s, req);
    return 0;
}

/* ---- Listener ----------------------------------------------------------- */

static void on_accept(uv_stream_t *listener, int status)
{
    struct http_server *s = listener->data;
    uv_tcp_t *conn;
    h2o_socket_t *sock;

    if (status != 0) {
        return;
    }
    conn = malloc(sizeof *conn);
    if (conn == NULL) {
        return;
    }
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(conn, 1);
    sock = h2o_uv_socket_create((uv_stream_t *)conn, (uv_close_cb)free);
    h2o_accept(&s->accept_ctx, sock);
}

static int parse_addr(const char *addr, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(addr, ':');
    size_t n;
    if (colon == NULL || (n = (size_t)(colon - addr)) >= sizeof host) {
        return -1;
    }
    memcpy(host, addr, n);
    host[n] = '\0';
    return uv_ip4_addr(host, atoi(colon + 1), sa);
}

int http_server_start(uv_loop_t *loop,
                      struct cluster *c,
                      const struct http_config *cfg,
                      struct http_server **out,
                      char *errmsg,
                      size_t size)
{
    struct http_server *s = calloc(1, sizeof *s);
    struct sockaddr_in sa;
    h2o_hostconf_t *host;
    h2o_pathconf_t *path;
    struct handler *h;
    int rv;

    if (s == NULL) {
        snprintf(errmsg, size, "out of memory");
        return ERR_NOMEM;
    }
    s->loop = loop;
    s->cluster = c;
    s->cfg = *cfg;
    s->addr = strdup(cfg->addr);
    s->cfg.addr = s->addr;
    if (parse_addr(cfg->addr, &sa) != 0) {
        snprintf(errmsg, size, "http-addr %s: want a.b.c.d:port", cfg->addr);
        return ERR_INVALID;
    }
    h2o_config_init(&s->config);
    /* h2o refuses larger bodies with a plain-text 413; between max_body and
     * this we answer a JSON 413 ourselves. */
    s->config.max_request_entity_size = cfg->max_body * 8 + 4096;
    host = h2o_config_register_host(
        &s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    path = h2o_config_register_path(host, "/", 0);
    h = (struct handler *)h2o_create_handler(path, sizeof *h);
    h->s = s;
    h->super.on_req = on_req;
    h2o_context_init(&s->ctx, loop, &s->config);
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->config.hosts;

    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    rv = uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&s->listener, 1024, on_accept);
    }
    if (rv != 0) {
        snprintf(errmsg, size, "listen %s: %s", cfg->addr, uv_strerror(rv));
        return ERR_IO;
    }
    rv = http__workers_start(s);
    if (rv != 0) {
        snprintf(errmsg, size, "worker services: %s", err_strerror(rv));
        return rv;
    }
    *out = s;
    return 0;
}

static void listener_closed_cb(uv_handle_t *handle)
{
    struct http_server *s = handle->data;
    void (*cb)(void *) = s->close_cb;
    void *data = s->close_data;
    free(s->addr);
    /* The h2o context and config live until exit: h2o 2.2.5 cannot dispose
     * a context with connections still open. */
    cb(data);
}

void http_server_close(struct http_server *s,
                       void (*cb)(void *data),
                       void *data)
{
    s->close_cb = cb;
    s->close_data = data;
    http__workers_stop(s);
    uv_close((uv_handle_t *)&s->listener, listener_closed_cb);
}
