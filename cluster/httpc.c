/* HTTP client on the node's loop: libcurl multi driven by uv_poll and one
 * uv_timer (the socket-action interface), used to forward requests to the
 * leader and to join a cluster.
 *
 * Happy path: cluster_http_request() adds an easy handle (recycled from a
 * free list, curl_easy_reset before reuse); curl tells us which sockets to
 * watch (socket_cb) and when to time out (timer_cb); when a transfer ends,
 * check_done() hands status, headers and body to the caller.
 *
 * Failure modes: connection refused / reset → err ERR_UNAVAILABLE; the total
 * deadline (CURLOPT_TIMEOUT_MS) → ERR_TIMEOUT. Fixes from LIBRARIES.md: a
 * 0 ms timeout starts the timer with 0; UV_EBADF on a poll is reported to
 * curl as readable+writable so it notices the reset. */

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "http-client"
#include "cluster/internal.h"
#include "common/err.h"
#include "common/log.h"

struct httpc
{
    struct cluster *c;
    CURLM *multi;
    uv_timer_t timer;
    struct list free_reqs; /* struct hreq with an easy handle to reuse. */
    struct list active;
    struct list socks; /* struct sock being polled. */
    void (*close_cb)(struct cluster *c);
    unsigned open;
};

struct hreq
{
    struct list link;
    struct httpc *h;
    CURL *easy;
    struct curl_slist *headers;
    char *body_out; /* Copy of the request body. */
    char *buf;      /* Response body. */
    size_t len, cap;
    char ctype[128];
    char retry_after[32];
    char index[32];
    cluster_http_cb cb;
    void *data;
};

struct sock
{
    uv_poll_t poll;
    struct list link; /* In h->socks. */
    curl_socket_t fd;
    struct httpc *h;
    int events; /* What poll watches now: a same-events call is no syscall. */
};

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct hreq *r = userdata;
    size_t n = size * nmemb;
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap == 0 ? 4096 : r->cap;
        while (cap < r->len + n + 1) {
            cap *= 2;
        }
        char *buf = realloc(r->buf, cap);
        if (buf == NULL) {
            return 0; /* curl aborts the transfer. */
        }
        r->buf = buf;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, ptr, n);
    r->len += n;
    r->buf[r->len] = '\0';
    return n;
}

static void copy_header_value(char *dst, size_t size, const char *v, size_t n)
{
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ')) {
        n--;
    }
    if (n >= size) {
        n = size - 1;
    }
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t header_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct hreq *r = userdata;
    size_t n = size * nmemb;
    if (n > 13 && strncasecmp(ptr, "content-type:", 13) == 0) {
        copy_header_value(r->ctype, sizeof r->ctype, ptr + 13, n - 13);
    } else if (n > 13 && strncasecmp(ptr, "x-rota-index:", 13) == 0) {
        copy_header_value(r->index, sizeof r->index, ptr + 13, n - 13);
    } else if (n > 12 && strncasecmp(ptr, "retry-after:", 12) == 0) {
        copy_header_value(r->retry_after, sizeof r->retry_after, ptr + 12,
                          n - 12);
    }
    return n;
}

static void hreq_release(struct hreq *r)
{
    struct httpc *h = r->h;
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    free(r->body_out);
    r->body_out = NULL;
    r->len = 0;
    r->ctype[0] = '\0';
    r->retry_after[0] = '\0';
    r->index[0] = '\0';
    list_remove(&r->link);
    if (h->close_cb != NULL) {
        curl_easy_cleanup(r->easy);
        free(r->buf);
        free(r);
        return;
    }
    list_push(&h->free_reqs, &r->link);
}

static void check_done(struct httpc *h)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        struct hreq *r;
        struct cluster_http_response res;
        long status = 0;

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        curl_multi_remove_handle(h->multi, r->easy);
        memset(&res, 0, sizeof res);
        if (msg->data.result == CURLE_OK) {
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
            res.status = (int)status;
        } else if (msg->data.result == CURLE_OPERATION_TIMEDOUT) {
            res.err = ERR_TIMEOUT;
        } else {
            res.err = ERR_UNAVAILABLE;
            /* Not sent only if no request went out at all: libcurl retries
             * a request whose reused connection died on a fresh one, so
             * "could not connect" may follow a request the dead leader
             * got (and logged). */
            long sent = 1;
            curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &sent);
            res.not_sent =
                sent == 0 && (msg->data.result == CURLE_COULDNT_CONNECT ||
                              msg->data.result == CURLE_COULDNT_RESOLVE_HOST);
        }
        res.ctype = r->ctype[0] != '\0' ? r->ctype : NULL;
        res.retry_after = r->retry_after[0] != '\0' ? r->retry_after : NULL;
        res.index = r->index[0] != '\0' ? r->index : NULL;
        res.body = r->buf != NULL ? r->buf : "";
        res.body_len = r->len;
        if (res.err != 0) {
            h->c->stats.forward_errors++;
            TRACE("http request failed: %s",
                  curl_easy_strerror(msg->data.result));
        }
        cluster_http_cb cb = r->cb;
        void *data = r->data;
        cb(data, &res);
        hreq_release(r);
    }
}

static void poll_cb(uv_poll_t *poll, int status, int events)
{
    struct sock *s = poll->data;
    struct httpc *h = s->h;
    int flags = 0;
    int running;

    if (status < 0) {
        flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
    } else {
        if (events & UV_READABLE) {
            flags |= CURL_CSELECT_IN;
        }
        if (events & UV_WRITABLE) {
            flags |= CURL_CSELECT_OUT;
        }
    }
    curl_multi_socket_action(h->multi, s->fd, flags, &running);
    check_done(h);
}

static void sock_closed_cb(uv_handle_t *handle);

/* Every uv handle holds a reference; the last one closed ends the close. */
static void httpc_unref(struct httpc *h)
{
    h->open--;
    if (h->close_cb != NULL && h->open == 0) {
        void (*cb)(struct cluster *) = h->close_cb;
        struct cluster *c = h->c;
        free(h);
        cb(c);
    }
}

static void sock_close(struct sock *s)
{
    uv_poll_stop(&s->poll);
    list_remove(&s->link);
    uv_close((uv_handle_t *)&s->poll, sock_closed_cb);
}

static void sock_closed_cb(uv_handle_t *handle)
{
    struct sock *s = handle->data;
    struct httpc *h = s->h;
    free(s);
    httpc_unref(h);
}

static int socket_cb(CURL *easy,
                     curl_socket_t fd,
                     int what,
                     void *userp,
                     void *socketp)
{
    struct httpc *h = userp;
    struct sock *s = socketp;
    int events = 0;

    if (h->multi == NULL) {
        return 0; /* Closing: handled by cluster__httpc_close. */
    }
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            curl_multi_assign(h->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL) {
            return -1;
        }
        s->fd = fd;
        s->h = h;
        if (uv_poll_init_socket(h->c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        list_push(&h->socks, &s->link);
        h->open++;
        curl_multi_assign(h->multi, fd, s);
    }
    if (what & CURL_POLL_IN) {
        events |= UV_READABLE;
    }
    if (what & CURL_POLL_OUT) {
        events |= UV_WRITABLE;
    }
    if (events != s->events) {
        s->events = events;
        uv_poll_start(&s->poll, events, poll_cb);
    }
    return 0;
}

static void timeout_cb(uv_timer_t *timer)
{
    struct httpc *h = timer->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct httpc *h = userp;
    if (timeout_ms < 0) {
        uv_timer_stop(&h->timer);
    } else {
        /* 0 means now: do not round it up to 1 ms (LIBRARIES.md). */
        uv_timer_start(&h->timer, timeout_cb, (uint64_t)timeout_ms, 0);
    }
    return 0;
}

int cluster__httpc_create(struct cluster *c, struct httpc **out)
{
    struct httpc *h = calloc(1, sizeof *h);
    if (h == NULL) {
        return ERR_NOMEM;
    }
    h->c = c;
    h->multi = curl_multi_init();
    if (h->multi == NULL) {
        free(h);
        return ERR_NOMEM;
    }
    list_init(&h->free_reqs);
    list_init(&h->active);
    list_init(&h->socks);
    uv_timer_init(c->loop, &h->timer);
    h->timer.data = h;
    h->open = 1;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 256L);
    *out = h;
    return 0;
}

static struct hreq *hreq_get(struct httpc *h)
{
    struct hreq *r;
    if (!list_empty(&h->free_reqs)) {
        r = CONTAINER_OF(h->free_reqs.next, struct hreq, link);
        list_remove(&r->link);
        curl_easy_reset(r->easy); /* Else its retry counter runs out. */
        return r;
    }
    r = calloc(1, sizeof *r);
    if (r == NULL) {
        return NULL;
    }
    r->easy = curl_easy_init();
    if (r->easy == NULL) {
        free(r);
        return NULL;
    }
    r->h = h;
    list_init(&r->link);
    return r;
}

int cluster_http_request(struct cluster *c,
                         const struct cluster_http_req *req,
                         cluster_http_cb cb,
                         void *data)
{
    const char *method = req->method, *url = req->url;
    const char *const *headers = req->headers;
    const void *body = req->body;
    size_t body_len = req->body_len;
    unsigned timeout_ms =
        req->timeout_ms > 0 ? req->timeout_ms : c->cfg.forward_timeout;
    struct httpc *h = c->http;
    struct hreq *r;

    if (h == NULL || h->close_cb != NULL) {
        return ERR_SHUTDOWN;
    }
    r = hreq_get(h);
    if (r == NULL) {
        return ERR_NOMEM;
    }
    r->cb = cb;
    r->data = data;
    r->headers = curl_slist_append(NULL, "Expect:");
    for (unsigned i = 0; headers != NULL && headers[i] != NULL; i++) {
        r->headers = curl_slist_append(r->headers, headers[i]);
    }
    curl_easy_setopt(r->easy, CURLOPT_URL, url);
    curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->easy, CURLOPT_TCP_NODELAY, 1L);
    if (req->external) {
        curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    } else if (c->cfg.tls_ca != NULL) {
        /* Node to node: the cluster CA, our node certificate as client's. */
        curl_easy_setopt(r->easy, CURLOPT_CAINFO, c->cfg.tls_ca);
        curl_easy_setopt(r->easy, CURLOPT_SSLCERT, c->cfg.tls_cert);
        curl_easy_setopt(r->easy, CURLOPT_SSLKEY, c->cfg.tls_key);
    }
    if (body_len > 0 || strcmp(method, "POST") == 0 ||
        strcmp(method, "PATCH") == 0 || strcmp(method, "PUT") == 0) {
        r->body_out = malloc(body_len + 1);
        if (r->body_out == NULL) {
            curl_slist_free_all(r->headers);
            r->headers = NULL;
            list_push(&h->free_reqs, &r->link);
            return ERR_NOMEM;
        }
        if (body_len > 0) {
            memcpy(r->body_out, body, body_len);
        }
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body_out);
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)body_len);
        curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L);
    }
    list_push(&h->active, &r->link);
    if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) {
        hreq_release(r);
        return ERR_NOMEM;
    }
    c->stats.forwards++;
    return 0;
}

static void timer_closed_cb(uv_handle_t *handle)
{
    httpc_unref(handle->data);
}

void cluster__httpc_close(struct httpc *h, void (*cb)(struct cluster *c))
{
    struct cluster_http_response res;

    h->close_cb = cb;
    memset(&res, 0, sizeof res);
    res.err = ERR_SHUTDOWN;
    res.body = "";
    while (!list_empty(&h->active)) {
        struct hreq *r = CONTAINER_OF(h->active.next, struct hreq, link);
        curl_multi_remove_handle(h->multi, r->easy);
        r->cb(r->data, &res);
        hreq_release(r);
    }
    while (!list_empty(&h->free_reqs)) {
        struct hreq *r = CONTAINER_OF(h->free_reqs.next, struct hreq, link);
        list_remove(&r->link);
        curl_easy_cleanup(r->easy);
        free(r->buf);
        free(r);
    }
    /* Cleanup closes cached connections (socket_cb may see REMOVE); close
     * whatever poll handles remain ourselves. */
    CURLM *multi = h->multi;
    h->multi = NULL;
    curl_multi_cleanup(multi);
    while (!list_empty(&h->socks)) {
        sock_close(CONTAINER_OF(h->socks.next, struct sock, link));
    }
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, timer_closed_cb);
}
