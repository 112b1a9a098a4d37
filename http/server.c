/* h2o on the node's libuv loop: listener, routing, forwarding to the leader.
 *
 * Routes are in routes.c. Writes on a follower are forwarded to the
 * leader's HTTP address, one hop at most (the leader refuses a forwarded
 * request with 503 if it is no longer the leader). With no known leader a
 * write gets 503 + Retry-After. */

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define LOG_MODULE "http"
#include "common/err.h"
#include "common/log.h"
#include "http/internal.h"

/* How long http_server_destroy() waits for connections to finish. */
#define HTTP_DRAIN_MS 2000

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

/* The code of a JSON error body ({"error":{"code":...}}), or "". */
static void error_code(const struct cluster_http_response *res,
                       char *out,
                       size_t size)
{
    json_t *b = json_loadb(res->body, res->body_len, 0, NULL);
    const char *code =
        json_string_value(json_object_get(json_object_get(b, "error"), "code"));
    snprintf(out, size, "%s", code != NULL ? code : "");
    json_decref(b);
}

/* A forward that failed without an answer, or with a 503/504 from a node
 * that is not (or no longer) the leader: hold the request for the next
 * leader (hold.c) if nothing was done with it, or if its outcome is
 * unknown but running it again is harmless. True if held. */
static bool forward_hold(struct http_server *s,
                         h2o_req_t *req,
                         const struct cluster_http_response *res)
{
    char code[32];
    if (res->status == 0) {
        return (res->not_sent || http__hold_safe_again(req)) &&
               http__hold(s, req, ERR_UNAVAILABLE,
                          "the leader cannot be reached");
    }
    if (res->status != 503 && res->status != 504) {
        return false;
    }
    error_code(res, code, sizeof code);
    if (strcmp(code, "not_leader") == 0 || strcmp(code, "no_leader") == 0) {
        return http__hold(s, req, ERR_NOLEADER, "no leader is known");
    }
    return (strcmp(code, "outcome_unknown") == 0 ||
            strcmp(code, "shutting_down") == 0 ||
            strcmp(code, "timeout") == 0) &&
           http__hold_safe_again(req) &&
           http__hold(s, req, ERR_UNAVAILABLE, "the leader did not answer");
}

static void forward_cb(void *data, const struct cluster_http_response *res)
{
    struct call *call = data;
    struct http_server *s = call->s;
    h2o_req_t *req = http__call_finish(call);
    char *copy;

    if (req == NULL || forward_hold(s, req, res)) {
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

/* The request headers the leader needs too: credentials. Copied into
 * @out as "Name: value" lines (pool memory), NULL-terminated. */
static void forwarded_headers(h2o_req_t *req, const char **out, size_t max)
{
    static const char *const names[] = {"authorization",
                                        "x-rota-worker-secret"};
    size_t n = 0;
    out[n++] = "Content-Type: application/json";
    out[n++] = "X-Rota-Forwarded: 1";
    for (size_t k = 0; k < sizeof names / sizeof names[0] && n + 1 < max; k++) {
        ssize_t i = h2o_find_header_by_str(&req->headers, names[k],
                                           strlen(names[k]), -1);
        if (i >= 0) {
            const h2o_iovec_t *v = &req->headers.entries[i].value;
            size_t len = strlen(names[k]) + 2 + v->len + 1;
            char *line = h2o_mem_alloc_pool(&req->pool, len);
            snprintf(line, len, "%s: %.*s", names[k], (int)v->len, v->base);
            out[n++] = line;
        }
    }
    out[n] = NULL;
}

void http__forward(struct http_server *s, h2o_req_t *req)
{
    const char *headers[8];
    char path[2048];
    struct call *call;
    int rv;

    if (h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-rota-forwarded"),
                               -1) != -1) {
        /* One hop at most: the sender thought we lead, we do not (it holds
         * the request for the next leader). */
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
    forwarded_headers(req, headers, sizeof headers / sizeof headers[0]);
    char method[16];
    snprintf(method, sizeof method, "%.*s", (int)req->method.len,
             req->method.base);
    struct cluster_http_req fr = {
        method, path, headers, req->entity.base, req->entity.len, 0};
    rv = cluster_forward(s->cluster, &fr, forward_cb, call);
    if (rv != 0) {
        http__call_unref(call); /* The callback's reference. */
        /* 503 + Retry-After, or held until a leader is known. */
        http__send_err(req, rv == ERR_NOTLEADER ? ERR_NOLEADER : rv, NULL,
                       "no leader is known: retry later");
        return;
    }
    s->forwarded++;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct handler *h = (struct handler *)self;
    struct http_server *s = h->s;

    if (s->ctx.shutdown_requested) {
        /* Closing: the services and the cluster may be gone already. */
        http__send_err(req, ERR_SHUTDOWN, NULL, NULL);
        return 0;
    }
    if (req->entity.base != NULL && req->entity.len > s->cfg.max_body) {
        http__send_error(req, 413, "too_large", NULL,
                         "request body of %zu bytes is over the limit of %zu",
                         req->entity.len, s->cfg.max_body);
        return 0;
    }
    http__route(s, req);
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

/* HTTPS: TLS 1.2 or later, HTTP/2 by ALPN, a client certificate asked for
 * and verified against the cluster CA when one is sent. */
static SSL_CTX *make_ssl_ctx(const struct http_config *cfg,
                             char *errmsg,
                             size_t size)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    const char *what = "context";

    if (ctx == NULL) {
        goto fail;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    what = cfg->tls_cert;
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        goto fail;
    }
    what = cfg->tls_key;
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        goto fail;
    }
    what = cfg->tls_ca;
    if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) != 1) {
        goto fail;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
fail:
    snprintf(errmsg, size, "https: %s: %s", what,
             ERR_reason_error_string(ERR_peek_last_error()) != NULL
                 ? ERR_reason_error_string(ERR_peek_last_error())
                 : "failed");
    SSL_CTX_free(ctx);
    return NULL;
}

int http_server_start(uv_loop_t *loop,
                      struct cluster *c,
                      struct sched *sc,
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
    s->sched = sc;
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
    if (http__hold_init(s) != 0) {
        snprintf(errmsg, size, "out of memory");
        return ERR_NOMEM;
    }
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->config.hosts;
    if (cfg->tls_cert != NULL) {
        s->ssl_ctx = make_ssl_ctx(cfg, errmsg, size);
        if (s->ssl_ctx == NULL) {
            return ERR_INVALID;
        }
        s->accept_ctx.ssl_ctx = s->ssl_ctx;
    }

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
    *out = s;
    return 0;
}

static void listener_closed_cb(uv_handle_t *handle)
{
    struct http_server *s = handle->data;
    s->close_cb(s->close_data);
}

/* h2o 2.2.5 has no call to close a connection from outside, but an HTTP/1
 * connection closes itself when its read sees EOF: shut the read side of
 * every open one. An idle keep-alive connection closes at once, one with a
 * request in progress once its answer is sent. */
static int shut_read(h2o_req_t *req, void *data)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    int fd = sock != NULL ? h2o_socket_get_fd(sock) : -1;
    (void)data;
    if (fd >= 0) {
        shutdown(fd, SHUT_RD);
    }
    return 0;
}

void http_server_close(struct http_server *s,
                       void (*cb)(void *data),
                       void *data)
{
    s->close_cb = cb;
    s->close_data = data;
    /* No more keep-alive, new requests get 503, HTTP/2 gets a GOAWAY. */
    h2o_context_request_shutdown(&s->ctx);
    http__hold_close(s);
    s->config.http1.callbacks.foreach_request(&s->ctx, shut_read, NULL);
    uv_close((uv_handle_t *)&s->listener, listener_closed_cb);
}

static bool connections_open(struct http_server *s)
{
    return !h2o_linklist_is_empty(&s->ctx.http1._conns) ||
           !h2o_linklist_is_empty(&s->ctx.http2._conns);
}

static void drain_timeout_cb(uv_timer_t *timer)
{
    *(bool *)timer->data = true;
}

static void drain_timer_closed_cb(uv_handle_t *handle)
{
    *(bool *)handle->data = true;
}

void http_server_destroy(struct http_server *s)
{
    uv_timer_t timer;
    bool expired = false, closed = false;

    /* The connections answered by the closing cluster are still sending. */
    if (connections_open(s)) {
        uv_timer_init(s->loop, &timer);
        timer.data = &expired;
        uv_timer_start(&timer, drain_timeout_cb, HTTP_DRAIN_MS, 0);
        while (connections_open(s) && !expired) {
            uv_run(s->loop, UV_RUN_ONCE);
        }
        timer.data = &closed;
        uv_close((uv_handle_t *)&timer, drain_timer_closed_cb);
        while (!closed) {
            uv_run(s->loop, UV_RUN_NOWAIT);
        }
    }
    if (connections_open(s)) {
        /* Disposing the context now would leave them dangling. */
        LOG(LOG_ERROR, "connections still open at exit", "after_ms=%d",
            HTTP_DRAIN_MS);
        return;
    }
    /* request_shutdown armed h2o's HTTP/2 GOAWAY resend; no HTTP/2
     * connection is left to send it to. */
    h2o_timeout_unlink(&s->ctx.http2._graceful_shutdown_timeout);
    h2o_context_dispose(&s->ctx);
    h2o_config_dispose(&s->config);
    http__hold_free(s);
    SSL_CTX_free(s->ssl_ctx);
    free(s->addr);
    free(s);
}
