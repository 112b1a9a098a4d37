/* h2o on the node's libuv loop: listener, routing, forwarding to the leader.
 *
 * Routes are in routes.c. Writes on a follower are forwarded to the
 * leader's HTTP address, one hop at most (the leader refuses a forwarded
 * request with 503 if it is no longer the leader). With no known leader a
 * write gets 503 + Retry-After.
 *
 * Output limits (h2o 2.2.5 has none of its own). An HTTP/1 connection holds
 * one answer at a time (h2o stops reading while a request is processed and
 * parses the next pipelined one only once the answer is written), but a
 * client that never reads keeps that answer, and its request's pool, for
 * ever. So: a sweep closes connections whose pending write made no progress
 * for cfg.write_timeout_ms; answers not yet written are counted
 * (s->buffered) and big ones are refused with 503 over cfg.max_buffered.
 * Ambiguous HTTP/1 framing (Content-Length twice, with Transfer-Encoding,
 * folded header lines) gets 400 and the connection is closed, so the bytes
 * that follow are never read as a request. Errors h2o answers itself
 * (broken chunked encoding, bodies over its limit) are rewritten as our
 * JSON error shape by a filter. */

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define LOG_MODULE "http"
#include "common/err.h"
#include "common/log.h"
#include "http/internal.h"

/* How long http_server_destroy() waits for connections to finish. */
#define HTTP_DRAIN_MS 2000
/* Defaults of the output limits (struct http_config). */
#define HTTP_WRITE_TIMEOUT_MS 10000
#define HTTP_PAGE_MAX_BYTES ((size_t)4 << 20)
#define HTTP_MAX_BUFFERED ((size_t)64 << 20)
/* The stalled-write sweep runs this often at most. */
#define HTTP_SWEEP_MS 1000

/* An accepted connection: the libuv handle h2o's socket wraps. */
struct conn
{
    uv_tcp_t tcp; /* First: h2o closes it with conn_closed_cb. */
    struct http_server *s;
    h2o_linklist_t link;  /* On s->conns. */
    size_t queued;        /* tcp.write_queue_size at the last sweep. */
    uint64_t progress_at; /* uv_now() when it last changed. */
    bool stalled;         /* Shut down by the sweep. */
};

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
        method, path, headers, req->entity.base, req->entity.len, 0, false};
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

/* ---- The forward channel: a follower's side ------------------------------ */

/* The leader's answer to a request sent over the channel, relayed to the
 * client as the leader gave it. */
static void fwd_answered(void *data, const struct cluster_fwd_answer *a)
{
    struct call *call = data;
    struct http_server *s = call->s;
    h2o_req_t *req = http__call_finish(call);
    struct sb b;

    if (req == NULL) {
        return;
    }
    if (a->not_sent ||
        (a->err == ERR_INVALID && strcmp(a->msg, HTTP_FWD_UNKNOWN_KIND) == 0)) {
        /* Nothing was done with it: the channel broke before the bytes
         * left, or the leader is older than this kind (a rolling upgrade,
         * followers first). HTTP forwarding (which holds the request if no
         * leader is known). */
        http__forward(s, req);
        return;
    }
    if (a->err != 0) {
        http__send_err(req, a->err, a->field[0] != '\0' ? a->field : NULL,
                       a->msg[0] != '\0' ? a->msg : NULL);
        return;
    }
    http__sb_init(&b, &req->pool);
    http__sb_put(&b, a->body, a->body_len);
    http__send_sb(req, a->status, &b, a->index);
}

bool http__fwd_send(struct http_server *s,
                    h2o_req_t *req,
                    uint32_t kind,
                    const void *payload,
                    size_t len)
{
    struct call *call = http__call_new(s, req);
    if (call == NULL) {
        return false;
    }
    if (cluster_fwd_send(s->cluster, kind, payload, len, fwd_answered, call) !=
        0) {
        http__call_unref(call);
        return false;
    }
    s->forwarded++;
    return true;
}

/* ---- Output accounting ------------------------------------------------ */

struct http_server *http__server_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(struct http_server, ctx, req->conn->ctx);
}

/* An answer sent and not yet written out, in its request's pool. */
struct held
{
    h2o_linklist_t link; /* On s->held. */
    struct http_server *s;
    h2o_req_t *req;
    size_t len;
    size_t sent;          /* req->bytes_sent at the last sweep (HTTP/2). */
    uint64_t progress_at; /* uv_now() when it last changed. */
};

static void held_dispose(void *p)
{
    struct held *h = p;
    h->s->buffered -= h->len;
    h2o_linklist_unlink(&h->link);
}

bool http__output_reserve(struct http_server *s, h2o_req_t *req, size_t len)
{
    struct held *h;
    if (len > HTTP_BIG_ANSWER && s->buffered + len > s->cfg.max_buffered) {
        return false;
    }
    h = h2o_mem_alloc_shared(&req->pool, sizeof *h, held_dispose);
    memset(h, 0, sizeof *h);
    h->s = s;
    h->req = req;
    h->len = len;
    h->sent = 0;
    h->progress_at = uv_now(s->loop);
    h2o_linklist_insert(&s->held, &h->link);
    s->buffered += len;
    return true;
}

bool http__output_full(struct http_server *s, h2o_req_t *req)
{
    if (s->buffered < s->cfg.max_buffered) {
        return false;
    }
    s->busy_refused++;
    http__send_err(req, ERR_UNAVAILABLE, NULL,
                   "too many answers are waiting for their clients to read "
                   "them: retry later");
    return true;
}

/* ---- Deferred calls ----------------------------------------------------- */

static void deferred_run_one(struct http_server *s)
{
    struct call *call =
        H2O_STRUCT_FROM_MEMBER(struct call, deferred, s->deferred.next);
    h2o_linklist_unlink(&call->deferred);
    call->deferred_cb(call);
}

static void deferred_idle_cb(uv_idle_t *idle)
{
    struct http_server *s = idle->data;
    if (!h2o_linklist_is_empty(&s->deferred)) {
        deferred_run_one(s);
    }
    if (h2o_linklist_is_empty(&s->deferred)) {
        uv_idle_stop(idle);
    }
}

void http__defer(struct http_server *s,
                 struct call *call,
                 void (*cb)(struct call *call))
{
    call->deferred_cb = cb;
    h2o_linklist_insert(&s->deferred, &call->deferred);
    uv_idle_start(&s->deferred_idle, deferred_idle_cb);
}

/* ---- Strict HTTP/1 framing ---------------------------------------------- */

static bool line_is(const char *p, size_t n, const char *name)
{
    size_t len = strlen(name);
    return n > len && p[len] == ':' && strncasecmp(p, name, len) == 0;
}

/* Why @req's framing is ambiguous, or NULL. h2o 2.2.5 keeps Content-Length
 * and Transfer-Encoding out of req->headers (it uses the first
 * Content-Length, or Transfer-Encoding over it), so the header lines are
 * read again from the connection's input, where an HTTP/1 request stays
 * until its answer is written. picohttpparser reports a folded line as a
 * header without a name. */
static const char *framing_error(h2o_req_t *req)
{
    h2o_socket_t *sock;
    const char *p, *end;
    unsigned n_cl = 0, n_te = 0;
    bool first = true;

    for (size_t i = 0; i < req->headers.size; i++) {
        if (req->headers.entries[i].name->len == 0) {
            return "a folded header line (obs-fold) is not accepted";
        }
    }
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL ||
        (sock = req->conn->callbacks->get_socket(req->conn)) == NULL ||
        sock->input == NULL) {
        return NULL;
    }
    p = sock->input->bytes;
    end = p + (sock->input->size < H2O_MAX_REQLEN ? sock->input->size
                                                  : H2O_MAX_REQLEN);
    if ((size_t)(end - p) < req->input.method.len ||
        memcmp(p, req->input.method.base, req->input.method.len) != 0) {
        return NULL; /* Not the request line: do not guess. */
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl != NULL ? nl : end) - p);
        if (n > 0 && p[n - 1] == '\r') {
            n--;
        }
        if (n == 0 || nl == NULL) {
            break; /* End of the header. */
        }
        if (!first) {
            if (p[0] == ' ' || p[0] == '\t') {
                return "a folded header line (obs-fold) is not accepted";
            }
            n_cl += line_is(p, n, "content-length");
            n_te += line_is(p, n, "transfer-encoding");
        }
        first = false;
        p = nl + 1;
    }
    if (n_cl > 0 && n_te > 0) {
        return "both Content-Length and Transfer-Encoding";
    }
    if (n_cl > 1) {
        return "Content-Length more than once";
    }
    if (n_te > 1) {
        return "Transfer-Encoding more than once";
    }
    return NULL;
}

/* ---- h2o's own error answers as JSON ----------------------------------- */

struct json_errors_ostream
{
    h2o_ostream_t super;
    bool sent;
};

static const char *code_of_status(int status)
{
    switch (status) {
        case 400:
        case 417:
            return err_code_name(ERR_INVALID);
        case 404:
            return err_code_name(ERR_NOTFOUND);
        case 413:
            return err_code_name(ERR_TOOLARGE);
        case 503:
            return err_code_name(ERR_UNAVAILABLE);
        default:
            return "internal";
    }
}

static void json_errors_send(h2o_ostream_t *self,
                             h2o_req_t *req,
                             h2o_iovec_t *bufs,
                             size_t n,
                             h2o_send_state_t state)
{
    struct json_errors_ostream *o = (struct json_errors_ostream *)self;
    char msg[256];
    size_t len = 0;
    h2o_iovec_t body = {NULL, 0};

    if (!o->sent) {
        json_t *v;
        o->sent = true;
        for (size_t i = 0; i < n && len + 1 < sizeof msg; i++) {
            size_t k = bufs[i].len < sizeof msg - 1 - len
                           ? bufs[i].len
                           : sizeof msg - 1 - len;
            memcpy(msg + len, bufs[i].base, k);
            len += k;
        }
        while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r')) {
            len--;
        }
        msg[len] = '\0';
        v = json_pack("{s:{s:s,s:s%}}", "error", "code",
                      code_of_status(req->res.status), "message", msg, len);
        if (v == NULL) {
            v = json_pack("{s:{s:s,s:s}}", "error", "code",
                          code_of_status(req->res.status), "message",
                          "invalid request");
        }
        body.len = json_dumpb(v, NULL, 0, JSON_COMPACT);
        body.base = h2o_mem_alloc_pool(&req->pool, body.len + 1);
        json_dumpb(v, body.base, body.len, JSON_COMPACT);
        body.base[body.len++] = '\n';
        json_decref(v);
        /* Before the headers go out: the last ostream writes them. */
        req->res.content_length = body.len;
        if (n == 0) {
            body.len = 0; /* HEAD */
        }
    }
    h2o_ostream_send_next(self, req, &body, body.len > 0 ? 1 : 0, state);
}

/* Answers h2o makes itself are text/plain with this exact type; ours
 * never are. Rewrite them (status kept) as {"error":{...}}. */
static void json_errors_setup(h2o_filter_t *self,
                              h2o_req_t *req,
                              h2o_ostream_t **slot)
{
    static const char h2o_type[] = "text/plain; charset=utf-8";
    ssize_t i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);

    if (req->res.status >= 400 && i >= 0 &&
        h2o_memis(req->res.headers.entries[i].value.base,
                  req->res.headers.entries[i].value.len,
                  H2O_STRLIT(h2o_type))) {
        struct json_errors_ostream *o =
            (struct json_errors_ostream *)h2o_add_ostream(req, sizeof *o, slot);
        o->super.do_send = json_errors_send;
        o->sent = false;
        req->res.headers.entries[i].value =
            h2o_iovec_init(H2O_STRLIT("application/json"));
        slot = &o->super.next;
    }
    (void)self;
    h2o_setup_next_ostream(req, slot);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct handler *h = (struct handler *)self;
    struct http_server *s = h->s;
    const char *why;

    if (s->ctx.shutdown_requested) {
        /* Closing: the services and the cluster may be gone already. */
        http__send_err(req, ERR_SHUTDOWN, NULL, NULL);
        return 0;
    }
    if ((why = framing_error(req)) != NULL) {
        /* Close after the answer: what follows is not read as a request. */
        req->http1_is_persistent = 0;
        http__send_error(req, 400, err_code_name(ERR_INVALID), NULL,
                         "ambiguous request framing: %s", why);
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

static void conn_closed_cb(uv_handle_t *handle)
{
    struct conn *c = (struct conn *)handle;
    h2o_linklist_unlink(&c->link);
    free(c);
}

static void on_accept(uv_stream_t *listener, int status)
{
    struct http_server *s = listener->data;
    struct conn *c;
    h2o_socket_t *sock;

    if (status != 0) {
        return;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        return;
    }
    uv_tcp_init(listener->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->s = s;
    h2o_linklist_insert(&s->conns, &c->link);
    sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, conn_closed_cb);
    h2o_accept(&s->accept_ctx, sock);
}

/* ---- Stalled writes ----------------------------------------------------- */

static int stop_keep_alive(h2o_req_t *req, void *data)
{
    if (req->conn->callbacks->get_socket(req->conn) != data) {
        return 0;
    }
    req->http1_is_persistent = 0;
    return 1;
}

/* Shut the socket down: the pending write fails (EPIPE), h2o closes the
 * connection and frees it with its request, and the close resets the TCP
 * connection (linger 0), dropping what the kernel still buffers for it. */
static void stall_close(struct http_server *s, struct conn *c, uint64_t now)
{
    uv_os_fd_t fd;
    struct linger lg = {1, 0};

    c->stalled = true;
    s->stalled_closed++;
    LOG(LOG_WARN, "connection closed: its answer made no write progress",
        "after_ms=%llu unwritten=%zu",
        (unsigned long long)(now - c->progress_at), c->queued);
    /* HTTP/1: close once the failed write returns instead of reading the
     * next pipelined request. */
    s->config.http1.callbacks.foreach_request(&s->ctx, stop_keep_alive,
                                              c->tcp.data);
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        shutdown(fd, SHUT_RDWR);
    }
}

/* HTTP/2 flow control: a client that reads the socket but grants no
 * window leaves the answer in h2o, the socket idle. Its DATA frames are
 * counted in req->bytes_sent: no change for the timeout closes the whole
 * connection (h2o 2.2.5 cannot reset one stream from outside). */
static void sweep_http2(struct http_server *s, uint64_t now)
{
    h2o_linklist_t *node, *next;

    for (node = s->held.next; node != &s->held; node = next) {
        struct held *h = H2O_STRUCT_FROM_MEMBER(struct held, link, node);
        h2o_socket_t *sock;
        int fd;
        next = node->next;
        if (h->req->version < 0x200) {
            continue; /* HTTP/1 writes it all at once: the socket shows. */
        }
        if (h->req->bytes_sent != h->sent) {
            h->sent = h->req->bytes_sent;
            h->progress_at = now;
        } else if (now - h->progress_at >= s->cfg.write_timeout_ms &&
                   (sock = h->req->conn->callbacks->get_socket(h->req->conn)) !=
                       NULL &&
                   (fd = h2o_socket_get_fd(sock)) >= 0) {
            struct linger lg = {1, 0};
            h->progress_at = now; /* Once per timeout at most. */
            s->stalled_closed++;
            LOG(LOG_WARN,
                "connection closed: its answer made no write progress",
                "after_ms=%u unwritten=%zu http=2", s->cfg.write_timeout_ms,
                h->len - h->sent);
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            shutdown(fd, SHUT_RDWR);
        }
    }
}

static void sweep_cb(uv_timer_t *timer)
{
    struct http_server *s = timer->data;
    uint64_t now = uv_now(s->loop);
    h2o_linklist_t *node, *next;

    for (node = s->conns.next; node != &s->conns; node = next) {
        struct conn *c = H2O_STRUCT_FROM_MEMBER(struct conn, link, node);
        size_t queued = c->tcp.write_queue_size;
        next = node->next;
        if (queued == 0 || queued != c->queued) {
            c->queued = queued;
            c->progress_at = now;
        } else if (!c->stalled &&
                   now - c->progress_at >= s->cfg.write_timeout_ms) {
            stall_close(s, c, now);
        }
    }
    sweep_http2(s, now);
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
    /* With client certificates asked for, OpenSSL refuses to resume a
     * session (a client's cached one: libcurl, undici) unless the context
     * has a session id context: the connection would be dropped. */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"rota-http", 9);
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
    cluster_fwd_set_handler(c, http__fwd_handle, s);
    s->sched = sc;
    s->cfg = *cfg;
    if (s->cfg.write_timeout_ms == 0) {
        s->cfg.write_timeout_ms = HTTP_WRITE_TIMEOUT_MS;
    }
    if (s->cfg.page_max_bytes == 0) {
        s->cfg.page_max_bytes = HTTP_PAGE_MAX_BYTES;
    }
    if (s->cfg.max_buffered == 0) {
        s->cfg.max_buffered = HTTP_MAX_BUFFERED;
    }
    h2o_linklist_init_anchor(&s->conns);
    h2o_linklist_init_anchor(&s->deferred);
    h2o_linklist_init_anchor(&s->held);
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
    /* Errors h2o sends before a path is chosen use the fallback path. */
    h2o_create_filter(path, sizeof(h2o_filter_t))->on_setup_ostream =
        json_errors_setup;
    h2o_create_filter(&host->fallback_path, sizeof(h2o_filter_t))
        ->on_setup_ostream = json_errors_setup;
    h2o_context_init(&s->ctx, loop, &s->config);
    if (http__hold_init(s) != 0 || http__events_init(s) != 0 ||
        http__webhooks_init(s) != 0) {
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
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    {
        uint64_t every = s->cfg.write_timeout_ms / 4 + 1;
        every = every < HTTP_SWEEP_MS ? every : HTTP_SWEEP_MS;
        uv_timer_start(&s->sweep, sweep_cb, every, every);
    }
    uv_unref((uv_handle_t *)&s->sweep);
    uv_idle_init(loop, &s->deferred_idle);
    s->deferred_idle.data = s;
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
    http__events_close(s);
    http__webhooks_close(s);
    s->config.http1.callbacks.foreach_request(&s->ctx, shut_read, NULL);
    uv_close((uv_handle_t *)&s->sweep, NULL);
    /* Shutdown is requested: the deferred calls answer 503 now. */
    while (!h2o_linklist_is_empty(&s->deferred)) {
        deferred_run_one(s);
    }
    uv_close((uv_handle_t *)&s->deferred_idle, NULL);
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
    http__events_free(s);
    http__webhooks_free(s);
    SSL_CTX_free(s->ssl_ctx);
    free(s->addr);
    free(s);
}
