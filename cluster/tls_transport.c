/* Mutual-TLS raft transport (see tls_transport.h), and its plain mode for
 * --insecure (section "Plain mode" below).
 *
 * Bytes of one connection:
 *
 *   raft <-> raft_pipe ==socketpair== pump <-> SSL (memory BIOs) <-> tcp
 *
 * net -> raft: tcp read -> BIO_write(rbio) -> SSL_read -> uv_write(pump).
 *   TCP reading stops while the pump's write queue is above
 *   TLS_TRANSPORT_QUEUE_MAX and restarts from the pump's write callback.
 * raft -> net: pump read -> SSL_write -> BIO_read(wbio) -> uv_write(tcp).
 *   Pump reading stops while the TCP write queue is above the bound and
 *   restarts from the TCP write callback.
 *
 * A connection's states: CONNECTING (outgoing TCP connect) -> HANDSHAKE
 * (TLS) -> PREAMBLE (incoming only: raft's transport handshake, which the
 * transport, not raft_uv, reads: protocol, server id, address) -> OPEN
 * (raft has the pipe) -> DRAINING (one side ended; the other is flushed
 * and shut down) -> CLOSING (handles closing; freed in the last close
 * callback, so never synchronously). Outgoing connections write raft's
 * handshake into TLS right after the TLS handshake, as raft's own TCP
 * transport does in clear.
 *
 * Everything runs on the loop thread; reads share one buffer per
 * transport (a read callback consumes it before returning). */

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define LOG_MODULE "cluster"
#include "cluster/tls_transport.h"
#include "common/list.h"
#include "common/log.h"

#define READ_BUF_SIZE (64 * 1024)
#define RAFT_HANDSHAKE_PROTOCOL 1 /* raft 0.15 uv_tcp.h */
/* The first word of the handshake of a side connection: "ROTASIDE". */
#define SIDE_HANDSHAKE_PROTOCOL 0x4544495341544f52ULL
#define ADDRESS_MAX 256
#define REFUSE_LOG_WINDOW_MS 10000
#define REFUSE_LOG_BURST 10

enum conn_state {
    CONN_CONNECTING,
    CONN_HANDSHAKE,
    CONN_PREAMBLE,
    CONN_OPEN,
    CONN_DRAINING,
    CONN_CLOSING,
};

struct tt;

/* What a connection of either mode has (struct conn, struct pconn): its
 * place in tt->links, the deadline timer, the count of open handles,
 * raft's connect request and raft's transport handshake. */
struct link_base
{
    struct tt *tt;
    struct list item; /* In tt->links. */
    bool outgoing;
    bool pending;      /* Incoming, counted in tt->pending_in. */
    uint64_t protocol; /* Outgoing: the handshake's first word. */
    char peer[64];     /* For logs: "a.b.c.d:port". */
    unsigned handles;  /* Handles not yet closed. */
    uv_timer_t timer;  /* Handshake deadline (TLS: then drain deadline). */
    uv_connect_t connect;
    /* Outgoing: raft's request, fired once. */
    struct raft_uv_connect *req;
    raft_uv_connect_cb cb;
    /* Incoming: raft's transport handshake. */
    uint64_t preamble[3];
    size_t preamble_n;
    char *address;
    size_t address_len;
    size_t address_n;
};

struct conn
{
    struct link_base base;
    enum conn_state state;
    char host[INET_ADDRSTRLEN]; /* Outgoing: the IP dialled. */
    uv_tcp_t tcp;
    uv_pipe_t pump; /* Our end of the socketpair. */
    bool pump_inited;
    uv_pipe_t *raft_pipe; /* Raft's end, until handed over. */
    uv_shutdown_t shutdown;
    bool tcp_reading;
    bool pump_reading;
    SSL *ssl;
    BIO *rbio; /* Network -> SSL. */
    BIO *wbio; /* SSL -> network. */
};

struct wreq
{
    uv_write_t req;
    struct conn *c;
    char data[];
};

struct tt
{
    struct raft_uv_transport *transport;
    uv_loop_t *loop;
    bool plain; /* No TLS (--insecure): struct pconn, below. */
    SSL_CTX *server_ctx;
    SSL_CTX *client_ctx;
    raft_id id;
    char address[ADDRESS_MAX];
    uv_tcp_t listener;
    bool listener_open;
    raft_uv_accept_cb accept_cb;
    cluster_side_accept_cb side_cb; /* NULL: side connections refused. */
    void *side_data;
    struct list links; /* Of struct conn, or of struct pconn if plain. */
    unsigned pending_in;
    bool closing;
    raft_uv_transport_close_cb close_cb;
    struct cluster_tls_transport_stats stats;
    uint64_t log_window_end;
    unsigned log_count;
    unsigned log_suppressed;
    char buf[READ_BUF_SIZE];
};

static void conn_close(struct conn *c);
static void conn_advance(struct conn *c);
static void net_to_raft(struct conn *c);

/* ---- Helpers ------------------------------------------------------------ */

static uint64_t le64(uint64_t v)
{
    const unsigned char *p = (const unsigned char *)&v;
    uint64_t r = 0;
    for (int i = 7; i >= 0; i--) {
        r = (r << 8) | p[i];
    }
    return r;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

/* "a.b.c.d:port" -> host, port. */
static int split_address(const char *address,
                         char *host,
                         size_t size,
                         int *port)
{
    const char *colon = strrchr(address, ':');
    size_t n = colon != NULL ? (size_t)(colon - address) : strlen(address);
    char *end;
    long p = 8080; /* raft's default when no port is given. */

    if (n == 0 || n >= size) {
        return -1;
    }
    memcpy(host, address, n);
    host[n] = '\0';
    if (colon != NULL) {
        p = strtol(colon + 1, &end, 10);
        if (*end != '\0' || p <= 0 || p > 65535) {
            return -1;
        }
    }
    *port = (int)p;
    return 0;
}

/* OpenSSL's reason for the last failure on @c, then clear the queue. */
static void ssl_reason(struct conn *c, char *buf, size_t size)
{
    unsigned long e = ERR_peek_last_error();
    long v = c->ssl != NULL ? SSL_get_verify_result(c->ssl) : X509_V_OK;

    if (v != X509_V_OK) {
        snprintf(buf, size, "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
    } else if (e != 0) {
        const char *r = ERR_reason_error_string(e);
        if (r != NULL) {
            snprintf(buf, size, "%s", r);
        } else {
            ERR_error_string_n(e, buf, size);
        }
    } else {
        snprintf(buf, size, "connection closed");
    }
    ERR_clear_error();
}

/* A TLS or raft handshake failure of @b: count it and log it, at most
 * REFUSE_LOG_BURST lines a window (the caller closes @b). */
static void link_refused(struct link_base *b, const char *reason)
{
    struct tt *tt = b->tt;
    uint64_t now = uv_now(tt->loop);

    if (!b->outgoing) {
        tt->stats.refused++;
    }
    if (now >= tt->log_window_end) {
        tt->log_window_end = now + REFUSE_LOG_WINDOW_MS;
        tt->log_count = 0;
    }
    if (tt->log_count >= REFUSE_LOG_BURST) {
        tt->log_suppressed++;
        return;
    }
    tt->log_count++;
    LOG(LOG_WARN, "raft peer refused",
        "peer=%s dir=%s reason=\"%s\" suppressed=%u", b->peer,
        b->outgoing ? "out" : "in", reason, tt->log_suppressed);
    tt->log_suppressed = 0;
}

/* A TLS or raft handshake failure: log it and close. */
static void refuse(struct conn *c, const char *reason)
{
    if (c->state == CONN_CLOSING) {
        return;
    }
    link_refused(&c->base, reason);
    conn_close(c);
}

static void refuse_ssl(struct conn *c)
{
    char reason[256];
    ssl_reason(c, reason, sizeof reason);
    refuse(c, reason);
}

/* ---- Connection lifecycle ----------------------------------------------- */

static void maybe_closed(struct tt *tt)
{
    if (tt->closing && list_empty(&tt->links) && !tt->listener_open &&
        tt->close_cb != NULL) {
        raft_uv_transport_close_cb cb = tt->close_cb;
        tt->close_cb = NULL;
        cb(tt->transport);
    }
}

/* Start @b, the base of @owner: init @tcp and the timer (their data is
 * @owner), start the handshake deadline, count it as pending if incoming,
 * put it first in tt->links. */
static void link_init(struct link_base *b,
                      struct tt *tt,
                      void *owner,
                      uv_tcp_t *tcp,
                      bool outgoing,
                      uv_timer_cb deadline_cb)
{
    b->tt = tt;
    b->outgoing = outgoing;
    snprintf(b->peer, sizeof b->peer, "unknown");
    uv_tcp_init(tt->loop, tcp);
    tcp->data = owner;
    uv_timer_init(tt->loop, &b->timer);
    b->timer.data = owner;
    b->handles = 2;
    uv_timer_start(&b->timer, deadline_cb, TLS_TRANSPORT_HANDSHAKE_MS, 0);
    if (!outgoing) {
        b->pending = true;
        tt->pending_in++;
    }
    list_push(tt->links.next, &b->item); /* Before the first: newest first. */
    tt->stats.open++;
}

/* @b no longer counts among the incoming connections in handshake. */
static void link_unpend(struct link_base *b)
{
    if (b->pending) {
        b->pending = false;
        b->tt->pending_in--;
    }
}

/* The last handle of @b closed: take it out of tt->links, fail raft's
 * connect request if it was not answered, free @owner (whose base @b is). */
static void link_free(struct link_base *b, void *owner)
{
    struct tt *tt = b->tt;
    struct raft_uv_connect *req = b->req;

    list_remove(&b->item);
    tt->stats.open--;
    if (req != NULL) {
        tt->stats.connect_failed++;
        b->req = NULL;
        b->cb(req, NULL, tt->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
    }
    free(b->address);
    free(owner);
    maybe_closed(tt);
}

/* Where the next bytes of raft's transport handshake go: the fixed part
 * (protocol, server id, address length), then the address. */
static uv_buf_t link_preamble_space(struct link_base *b)
{
    if (b->preamble_n < sizeof b->preamble) {
        return uv_buf_init((char *)b->preamble + b->preamble_n,
                           (unsigned)(sizeof b->preamble - b->preamble_n));
    }
    return uv_buf_init(b->address + b->address_n,
                       (unsigned)(b->address_len - b->address_n));
}

enum preamble_step {
    PREAMBLE_MORE,
    PREAMBLE_DONE,
    PREAMBLE_BAD, /* Refuse: "bad raft handshake". */
    PREAMBLE_NOMEM,
};

/* Count @n bytes read into link_preamble_space(). */
static enum preamble_step link_preamble_read(struct link_base *b, size_t n)
{
    if (b->preamble_n < sizeof b->preamble) {
        b->preamble_n += n;
        if (b->preamble_n < sizeof b->preamble) {
            return PREAMBLE_MORE;
        }
        b->address_len = le64(b->preamble[2]);
        if ((le64(b->preamble[0]) != RAFT_HANDSHAKE_PROTOCOL &&
             (le64(b->preamble[0]) != SIDE_HANDSHAKE_PROTOCOL ||
              b->tt->side_cb == NULL)) ||
            b->address_len == 0 || b->address_len > ADDRESS_MAX) {
            return PREAMBLE_BAD;
        }
        b->address = malloc(b->address_len);
        return b->address != NULL ? PREAMBLE_MORE : PREAMBLE_NOMEM;
    }
    b->address_n += n;
    return b->address_n == b->address_len ? PREAMBLE_DONE : PREAMBLE_MORE;
}

/* Whether the address raft's handshake claims is "a.b.c.d:port"; its host
 * into @host. */
static bool link_preamble_address(const struct link_base *b,
                                  char *host,
                                  size_t size)
{
    int port;
    return memchr(b->address, '\0', b->address_len) != NULL &&
           split_address(b->address, host, size, &port) == 0;
}

static void timer_cb(uv_timer_t *timer);

static struct conn *conn_new(struct tt *tt, bool outgoing)
{
    struct conn *c = calloc(1, sizeof *c);

    if (c == NULL) {
        return NULL;
    }
    c->ssl = SSL_new(outgoing ? tt->client_ctx : tt->server_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
        SSL_free(c->ssl);
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        free(c);
        return NULL;
    }
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    if (outgoing) {
        SSL_set_connect_state(c->ssl);
    } else {
        SSL_set_accept_state(c->ssl);
    }
    c->state = outgoing ? CONN_CONNECTING : CONN_HANDSHAKE;
    link_init(&c->base, tt, c, &c->tcp, outgoing, timer_cb);
    return c;
}

static void conn_free(struct conn *c)
{
    SSL_free(c->ssl); /* Frees both BIOs. */
    link_free(&c->base, c);
}

static void conn_handle_closed(uv_handle_t *handle)
{
    struct conn *c = handle->data;

    if (c->raft_pipe != NULL && handle == (uv_handle_t *)c->raft_pipe) {
        raft_free(c->raft_pipe);
        c->raft_pipe = NULL;
    }
    if (--c->base.handles == 0) {
        conn_free(c);
    }
}

static void conn_close(struct conn *c)
{
    if (c->state == CONN_CLOSING) {
        return;
    }
    c->state = CONN_CLOSING;
    link_unpend(&c->base);
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->base.timer, conn_handle_closed);
    if (c->pump_inited) {
        uv_close((uv_handle_t *)&c->pump, conn_handle_closed);
    }
    if (c->raft_pipe != NULL) {
        uv_close((uv_handle_t *)c->raft_pipe, conn_handle_closed);
    }
}

static void timer_cb(uv_timer_t *timer)
{
    struct conn *c = timer->data;

    switch (c->state) {
        case CONN_CONNECTING:
            conn_close(c); /* TCP connect timed out: not a refusal. */
            break;
        case CONN_HANDSHAKE:
        case CONN_PREAMBLE:
            refuse(c, "handshake timeout");
            break;
        case CONN_DRAINING:
            conn_close(c);
            break;
        default:
            break;
    }
}

/* ---- Writes ------------------------------------------------------------- */

static void tcp_read_start(struct conn *c);
static void pump_read_start(struct conn *c);

static int write_to(struct conn *c,
                    uv_stream_t *stream,
                    const void *data,
                    size_t len,
                    uv_write_cb cb)
{
    struct wreq *w = malloc(sizeof *w + len);
    uv_buf_t b;

    if (w == NULL) {
        return -1;
    }
    w->c = c;
    memcpy(w->data, data, len);
    b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, stream, &b, 1, cb) != 0) {
        free(w);
        return -1;
    }
    if (stream->write_queue_size > c->base.tt->stats.pipe_queue_max) {
        c->base.tt->stats.pipe_queue_max = stream->write_queue_size;
    }
    return 0;
}

static void tcp_write_cb(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->c;

    free(w);
    if (c->state == CONN_CLOSING) {
        return;
    }
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->state == CONN_OPEN && !c->pump_reading &&
        c->tcp.write_queue_size < TLS_TRANSPORT_QUEUE_MAX) {
        pump_read_start(c);
    }
}

/* Move what SSL produced to the TCP write queue. */
static int flush_wbio(struct conn *c)
{
    size_t n = BIO_ctrl_pending(c->wbio);
    struct wreq *w;
    uv_buf_t b;

    if (n == 0) {
        return 0;
    }
    w = malloc(sizeof *w + n);
    if (w == NULL) {
        return -1;
    }
    w->c = c;
    if (BIO_read(c->wbio, w->data, (int)n) != (int)n) {
        free(w);
        return -1;
    }
    b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, tcp_write_cb) != 0) {
        free(w);
        return -1;
    }
    if (c->tcp.write_queue_size > c->base.tt->stats.tcp_queue_max) {
        c->base.tt->stats.tcp_queue_max = c->tcp.write_queue_size;
    }
    return 0;
}

static void pump_write_cb(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->c;

    free(w);
    if (c->state == CONN_CLOSING) {
        return;
    }
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->state == CONN_OPEN && !c->tcp_reading &&
        c->pump.write_queue_size < TLS_TRANSPORT_QUEUE_MAX) {
        net_to_raft(c); /* Drains what SSL holds, restarts TCP reads. */
    }
}

/* ---- Ending ------------------------------------------------------------- */

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    (void)status;
    conn_close(c);
}

static void stop_reads(struct conn *c)
{
    if (c->tcp_reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->tcp_reading = false;
    }
    if (c->pump_reading) {
        uv_read_stop((uv_stream_t *)&c->pump);
        c->pump_reading = false;
    }
}

/* Flush @stream's write queue, shut its write side, then close (or close
 * at the drain deadline). */
static void drain(struct conn *c, uv_stream_t *stream)
{
    c->state = CONN_DRAINING;
    stop_reads(c);
    uv_timer_start(&c->base.timer, timer_cb, TLS_TRANSPORT_HANDSHAKE_MS, 0);
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, stream, shutdown_cb) != 0) {
        conn_close(c);
    }
}

/* The peer ended (TCP EOF or close_notify): give raft what came before. */
static void net_ended(struct conn *c)
{
    if (c->state != CONN_OPEN) {
        refuse(c, "connection closed during handshake");
        return;
    }
    drain(c, (uv_stream_t *)&c->pump);
}

/* Raft closed its end: close_notify, flush, FIN. */
static void raft_ended(struct conn *c)
{
    ERR_clear_error();
    SSL_shutdown(c->ssl);
    ERR_clear_error();
    if (flush_wbio(c) != 0) {
        conn_close(c);
        return;
    }
    drain(c, (uv_stream_t *)&c->tcp);
}

/* ---- Pumping ------------------------------------------------------------ */

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = handle->data;
    (void)suggested;
    buf->base = c->base.tt->buf;
    buf->len = sizeof c->base.tt->buf;
}

static void tcp_read_cb(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = stream->data;

    if (n == 0 || c->state == CONN_CLOSING) {
        return;
    }
    if (n == UV_EOF) {
        net_ended(c);
        return;
    }
    if (n < 0) {
        if (c->state == CONN_OPEN) {
            conn_close(c);
        } else {
            refuse(c, uv_strerror((int)n));
        }
        return;
    }
    if (BIO_write(c->rbio, buf->base, (int)n) != (int)n) {
        conn_close(c);
        return;
    }
    conn_advance(c);
}

static void tcp_read_start(struct conn *c)
{
    if (!c->tcp_reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, tcp_read_cb) != 0) {
            conn_close(c);
            return;
        }
        c->tcp_reading = true;
    }
}

static void tcp_read_stop(struct conn *c)
{
    if (c->tcp_reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->tcp_reading = false;
    }
}

/* SSL_read into the pump while its queue is under the bound. */
static void net_to_raft(struct conn *c)
{
    struct tt *tt = c->base.tt;
    size_t n = 0;
    int err = SSL_ERROR_WANT_READ;

    for (;;) {
        int r;
        if (c->pump.write_queue_size + n >= TLS_TRANSPORT_QUEUE_MAX) {
            break;
        }
        if (n == sizeof tt->buf) {
            if (write_to(c, (uv_stream_t *)&c->pump, tt->buf, n,
                         pump_write_cb) != 0) {
                conn_close(c);
                return;
            }
            n = 0;
            continue;
        }
        ERR_clear_error();
        r = SSL_read(c->ssl, tt->buf + n, (int)(sizeof tt->buf - n));
        if (r > 0) {
            n += (size_t)r;
            continue;
        }
        err = SSL_get_error(c->ssl, r);
        break;
    }
    if (n > 0 &&
        write_to(c, (uv_stream_t *)&c->pump, tt->buf, n, pump_write_cb) != 0) {
        conn_close(c);
        return;
    }
    if (flush_wbio(c) != 0) {
        conn_close(c);
        return;
    }
    if (err == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        net_ended(c);
        return;
    }
    if (err != SSL_ERROR_WANT_READ) {
        char reason[256];
        ssl_reason(c, reason, sizeof reason);
        LOG(LOG_DEBUG, "raft peer tls error", "peer=%s reason=\"%s\"",
            c->base.peer, reason);
        conn_close(c);
        return;
    }
    if (c->pump.write_queue_size >= TLS_TRANSPORT_QUEUE_MAX) {
        tcp_read_stop(c);
    } else {
        tcp_read_start(c);
    }
}

static void pump_read_cb(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    int r;

    if (n == 0 || c->state != CONN_OPEN) {
        return;
    }
    if (n == UV_EOF) {
        raft_ended(c);
        return;
    }
    if (n < 0) {
        conn_close(c);
        return;
    }
    ERR_clear_error();
    r = SSL_write(c->ssl, buf->base, (int)n);
    if (r != (int)n || flush_wbio(c) != 0) {
        ERR_clear_error();
        conn_close(c);
        return;
    }
    if (c->tcp.write_queue_size >= TLS_TRANSPORT_QUEUE_MAX) {
        uv_read_stop(stream);
        c->pump_reading = false;
    }
}

static void pump_read_start(struct conn *c)
{
    if (!c->pump_reading) {
        if (uv_read_start((uv_stream_t *)&c->pump, alloc_cb, pump_read_cb) !=
            0) {
            conn_close(c);
            return;
        }
        c->pump_reading = true;
    }
}

/* ---- Handover ----------------------------------------------------------- */

/* Create the socketpair: raft_pipe for raft, pump for us. */
static int open_pipe(struct conn *c)
{
    uv_loop_t *loop = c->base.tt->loop;
    int fds[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
                   fds) != 0) {
        return -1;
    }
    c->raft_pipe = raft_malloc(sizeof *c->raft_pipe);
    if (c->raft_pipe == NULL) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    uv_pipe_init(loop, c->raft_pipe, 0);
    c->raft_pipe->data = c;
    c->base.handles++;
    uv_pipe_init(loop, &c->pump, 0);
    c->pump.data = c;
    c->pump_inited = true;
    c->base.handles++;
    if (uv_pipe_open(c->raft_pipe, fds[0]) != 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (uv_pipe_open(&c->pump, fds[1]) != 0) {
        close(fds[1]);
        return -1;
    }
    return 0;
}

/* From here on raft owns the stream (it uv_close()s and frees it). */
static uv_stream_t *handover(struct conn *c)
{
    uv_stream_t *s = (uv_stream_t *)c->raft_pipe;
    c->raft_pipe = NULL;
    c->base.handles--;
    s->data = NULL;
    uv_timer_stop(&c->base.timer);
    c->state = CONN_OPEN;
    return s;
}

/* Outgoing TLS is up: check the name, send raft's handshake, hand over. */
static void outgoing_ready(struct conn *c)
{
    struct tt *tt = c->base.tt;
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    size_t alen = (strlen(tt->address) + 1 + 7) / 8 * 8;
    unsigned char hs[24 + ADDRESS_MAX + 8];
    struct raft_uv_connect *req;
    uv_stream_t *stream;

    if (peer == NULL || X509_check_ip_asc(peer, c->host, 0) != 1) {
        refuse(c, "server certificate has no IP SAN for the address dialled");
        return;
    }
    memset(hs, 0, sizeof hs);
    put_le64(hs, c->base.protocol);
    put_le64(hs + 8, tt->id);
    put_le64(hs + 16, alen);
    memcpy(hs + 24, tt->address, strlen(tt->address));
    ERR_clear_error();
    if (SSL_write(c->ssl, hs, (int)(24 + alen)) != (int)(24 + alen) ||
        flush_wbio(c) != 0 || open_pipe(c) != 0) {
        ERR_clear_error();
        conn_close(c);
        return;
    }
    tt->stats.connected++;
    req = c->base.req;
    c->base.req = NULL;
    stream = handover(c);
    pump_read_start(c);
    c->base.cb(req, stream, 0);
}

/* Incoming raft handshake read: check the claimed address, hand over. */
static void incoming_ready(struct conn *c)
{
    struct tt *tt = c->base.tt;
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    raft_id id = le64(c->base.preamble[1]);
    char host[ADDRESS_MAX];

    if (!link_preamble_address(&c->base, host, sizeof host)) {
        refuse(c, "bad raft handshake address");
        return;
    }
    if (peer == NULL || X509_check_ip_asc(peer, host, 0) != 1) {
        char reason[ADDRESS_MAX + 64];
        snprintf(reason, sizeof reason,
                 "client certificate has no IP SAN for claimed address %s",
                 c->base.address);
        refuse(c, reason);
        return;
    }
    if (open_pipe(c) != 0) {
        conn_close(c);
        return;
    }
    link_unpend(&c->base);
    tt->stats.accepted++;
    pump_read_start(c);
    if (le64(c->base.preamble[0]) == SIDE_HANDSHAKE_PROTOCOL) {
        tt->side_cb(tt->side_data, id, c->base.address, handover(c));
    } else {
        tt->accept_cb(tt->transport, id, c->base.address, handover(c));
    }
    free(c->base.address);
    c->base.address = NULL;
}

static void read_preamble(struct conn *c)
{
    while (c->state == CONN_PREAMBLE) {
        uv_buf_t space = link_preamble_space(&c->base);
        int r;
        ERR_clear_error();
        r = SSL_read(c->ssl, space.base, (int)space.len);
        if (r <= 0) {
            int err = SSL_get_error(c->ssl, r);
            if (flush_wbio(c) != 0) {
                conn_close(c);
            } else if (err == SSL_ERROR_ZERO_RETURN) {
                refuse(c, "connection closed during raft handshake");
            } else if (err != SSL_ERROR_WANT_READ) {
                refuse_ssl(c);
            }
            return;
        }
        switch (link_preamble_read(&c->base, (size_t)r)) {
            case PREAMBLE_MORE:
                break;
            case PREAMBLE_DONE:
                incoming_ready(c);
                break;
            case PREAMBLE_BAD:
                refuse(c, "bad raft handshake");
                return;
            case PREAMBLE_NOMEM:
                conn_close(c);
                return;
        }
    }
}

/* New bytes from the network: step the state machine. */
static void conn_advance(struct conn *c)
{
    if (c->state == CONN_HANDSHAKE) {
        int r;
        ERR_clear_error();
        r = SSL_do_handshake(c->ssl);
        if (flush_wbio(c) != 0) {
            conn_close(c);
            return;
        }
        if (r != 1) {
            if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ) {
                refuse_ssl(c);
            }
            return;
        }
        if (c->base.outgoing) {
            outgoing_ready(c);
        } else {
            c->state = CONN_PREAMBLE;
        }
    }
    if (c->state == CONN_PREAMBLE) {
        read_preamble(c);
    }
    if (c->state == CONN_OPEN) {
        net_to_raft(c);
    }
}

/* ---- Plain mode ----------------------------------------------------------
 * --insecure: no TLS, but the same edges: a deadline for the connect and
 * for raft's transport handshake, the cap on incoming connections in the
 * handshake, the refusal log. Raft gets the TCP socket itself (a uv_tcp_t
 * from raft_malloc, which raft frees after closing it), so there is no
 * pump. On accept the handshake is read with reads no longer than the
 * bytes still missing (libuv reads at most the buffer alloc_cb gives), so
 * no byte of what follows it is consumed before raft reads the stream. */

struct pconn
{
    struct link_base base;
    bool closing;
    uv_tcp_t *tcp; /* Raft's once handed over (then NULL here). */
};

static void pconn_timer_cb(uv_timer_t *timer);

static struct pconn *pconn_new(struct tt *tt, bool outgoing)
{
    struct pconn *p = calloc(1, sizeof *p);

    if (p == NULL) {
        return NULL;
    }
    p->tcp = raft_malloc(sizeof *p->tcp);
    if (p->tcp == NULL) {
        free(p);
        return NULL;
    }
    link_init(&p->base, tt, p, p->tcp, outgoing, pconn_timer_cb);
    return p;
}

static void pconn_handle_closed(uv_handle_t *handle)
{
    struct pconn *p = handle->data;

    if (handle != (uv_handle_t *)&p->base.timer) {
        raft_free(handle); /* Our TCP handle, never handed over. */
    }
    if (--p->base.handles == 0) {
        link_free(&p->base, p);
    }
}

/* Close what is still ours; freed in the last close callback. */
static void pconn_close(struct pconn *p)
{
    if (p->closing) {
        return;
    }
    p->closing = true;
    link_unpend(&p->base);
    if (p->tcp != NULL) {
        uv_close((uv_handle_t *)p->tcp, pconn_handle_closed);
        p->tcp = NULL;
    }
    uv_close((uv_handle_t *)&p->base.timer, pconn_handle_closed);
}

static void pconn_refuse(struct pconn *p, const char *reason)
{
    if (p->closing) {
        return;
    }
    link_refused(&p->base, reason);
    pconn_close(p);
}

static void pconn_timer_cb(uv_timer_t *timer)
{
    struct pconn *p = timer->data;

    if (p->base.outgoing) {
        pconn_close(p); /* TCP connect timed out: not a refusal. */
    } else {
        pconn_refuse(p, "handshake timeout");
    }
}

/* The stream is raft's from here on; the rest of @p closes. */
static uv_stream_t *pconn_handover(struct pconn *p)
{
    uv_stream_t *s = (uv_stream_t *)p->tcp;

    p->tcp = NULL;
    p->base.handles--;
    s->data = NULL;
    link_unpend(&p->base);
    pconn_close(p);
    return s;
}

static void palloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct pconn *p = handle->data;
    (void)suggested;
    *buf = link_preamble_space(&p->base);
}

static void pincoming_ready(struct pconn *p)
{
    struct tt *tt = p->base.tt;
    raft_id id = le64(p->base.preamble[1]);
    char host[ADDRESS_MAX];
    uv_stream_t *stream;

    if (!link_preamble_address(&p->base, host, sizeof host)) {
        pconn_refuse(p, "bad raft handshake address");
        return;
    }
    uv_read_stop((uv_stream_t *)p->tcp);
    tt->stats.accepted++;
    stream = pconn_handover(p);
    /* @p is freed in a close callback, so its address outlives this. */
    if (le64(p->base.preamble[0]) == SIDE_HANDSHAKE_PROTOCOL) {
        tt->side_cb(tt->side_data, id, p->base.address, stream);
    } else {
        tt->accept_cb(tt->transport, id, p->base.address, stream);
    }
}

static void pread_cb(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    struct pconn *p = stream->data;
    (void)buf;

    if (n == 0 || p->closing) {
        return;
    }
    if (n == UV_EOF) {
        pconn_refuse(p, "connection closed during raft handshake");
        return;
    }
    if (n < 0) {
        pconn_refuse(p, uv_strerror((int)n));
        return;
    }
    switch (link_preamble_read(&p->base, (size_t)n)) {
        case PREAMBLE_MORE:
            break;
        case PREAMBLE_DONE:
            pincoming_ready(p);
            break;
        case PREAMBLE_BAD:
            pconn_refuse(p, "bad raft handshake");
            break;
        case PREAMBLE_NOMEM:
            pconn_close(p);
            break;
    }
}

static void peer_name(uv_tcp_t *tcp, char *buf, size_t size)
{
    struct sockaddr_storage sa;
    int len = sizeof sa;

    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&sa, &len) == 0 &&
        sa.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;
        char ip[INET_ADDRSTRLEN] = "";
        uv_ip4_name(in, ip, sizeof ip);
        snprintf(buf, size, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
    }
}

static void plain_accept(struct tt *tt, uv_stream_t *server)
{
    struct pconn *p = pconn_new(tt, false);

    if (p == NULL) {
        return;
    }
    if (uv_accept(server, (uv_stream_t *)p->tcp) != 0) {
        pconn_close(p);
        return;
    }
    peer_name(p->tcp, p->base.peer, sizeof p->base.peer);
    if (tt->pending_in > TLS_TRANSPORT_MAX_PENDING) {
        pconn_refuse(p, "too many connections in handshake");
        return;
    }
    uv_tcp_nodelay(p->tcp, 1);
    if (uv_read_start((uv_stream_t *)p->tcp, palloc_cb, pread_cb) != 0) {
        pconn_close(p);
    }
}

static void pwrite_cb(uv_write_t *req, int status)
{
    (void)status; /* A failure shows on raft's next write or read. */
    free(req);
}

static void pconnect_cb(uv_connect_t *req, int status)
{
    struct pconn *p = req->data;
    struct tt *tt = p->base.tt;
    size_t alen = (strlen(tt->address) + 1 + 7) / 8 * 8;
    struct wreq *w;
    uv_buf_t b;
    struct raft_uv_connect *rreq;
    uv_stream_t *stream;

    if (p->closing) {
        return;
    }
    if (status < 0) {
        snprintf(tt->transport->errmsg, sizeof tt->transport->errmsg,
                 "connect %s: %s", p->base.peer, uv_strerror(status));
        pconn_close(p);
        return;
    }
    uv_tcp_nodelay(p->tcp, 1);
    /* Raft's transport handshake, as raft's own TCP transport writes it;
     * raft's messages queue behind it on the same stream. */
    w = calloc(1, sizeof *w + 24 + alen);
    if (w == NULL) {
        pconn_close(p);
        return;
    }
    put_le64((unsigned char *)w->data, p->base.protocol);
    put_le64((unsigned char *)w->data + 8, tt->id);
    put_le64((unsigned char *)w->data + 16, alen);
    memcpy(w->data + 24, tt->address, strlen(tt->address));
    b = uv_buf_init(w->data, (unsigned)(24 + alen));
    if (uv_write(&w->req, (uv_stream_t *)p->tcp, &b, 1, pwrite_cb) != 0) {
        free(w);
        pconn_close(p);
        return;
    }
    tt->stats.connected++;
    rreq = p->base.req;
    p->base.req = NULL;
    stream = pconn_handover(p);
    p->base.cb(rreq, stream, 0);
}

static int plain_connect(struct tt *tt,
                         struct raft_uv_connect *req,
                         const char *address,
                         raft_uv_connect_cb cb,
                         uint64_t protocol)
{
    struct raft_uv_transport *t = tt->transport;
    struct sockaddr_in sa;
    char host[INET_ADDRSTRLEN];
    struct pconn *p;
    int port;

    p = pconn_new(tt, true);
    if (p == NULL) {
        return RAFT_NOMEM;
    }
    p->base.protocol = protocol;
    snprintf(p->base.peer, sizeof p->base.peer, "%s", address);
    if (split_address(address, host, sizeof host, &port) != 0 ||
        uv_ip4_addr(host, port, &sa) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "bad address %s", address);
        pconn_close(p);
        return RAFT_NOCONNECTION;
    }
    p->base.connect.data = p;
    if (uv_tcp_connect(&p->base.connect, p->tcp, (const struct sockaddr *)&sa,
                       pconnect_cb) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "connect %s failed", address);
        pconn_close(p);
        return RAFT_NOCONNECTION;
    }
    req->cb = cb;
    p->base.req = req;
    p->base.cb = cb;
    return 0;
}

/* ---- Transport interface ------------------------------------------------ */

static int tt_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    struct tt *tt = t->impl;
    X509 *own = tt->plain ? NULL : SSL_CTX_get0_certificate(tt->server_ctx);
    char host[ADDRESS_MAX];
    int port;

    if (strlen(address) >= sizeof tt->address ||
        split_address(address, host, sizeof host, &port) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "bad address %s", address);
        return RAFT_INVALID;
    }
    if (!tt->plain && (own == NULL || X509_check_ip_asc(own, host, 0) != 1)) {
        snprintf(t->errmsg, sizeof t->errmsg,
                 "certificate has no IP SAN for %.64s: peers would refuse it",
                 host);
        return RAFT_INVALID;
    }
    tt->id = id;
    snprintf(tt->address, sizeof tt->address, "%s", address);
    uv_tcp_init(tt->loop, &tt->listener);
    tt->listener.data = tt;
    tt->listener_open = true;
    return 0;
}

static void listen_cb(uv_stream_t *server, int status)
{
    struct tt *tt = server->data;
    struct conn *c;

    if (status < 0 || tt->closing) {
        return;
    }
    if (tt->plain) {
        plain_accept(tt, server);
        return;
    }
    c = conn_new(tt, false);
    if (c == NULL) {
        return;
    }
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    peer_name(&c->tcp, c->base.peer, sizeof c->base.peer);
    if (tt->pending_in > TLS_TRANSPORT_MAX_PENDING) {
        refuse(c, "too many connections in handshake");
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    tcp_read_start(c);
}

static int tt_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct tt *tt = t->impl;
    struct sockaddr_in sa;
    char host[ADDRESS_MAX];
    int port;
    int rv;

    tt->accept_cb = cb;
    if (split_address(tt->address, host, sizeof host, &port) != 0 ||
        uv_ip4_addr(host, port, &sa) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "bad address %.200s",
                 tt->address);
        return RAFT_INVALID;
    }
    rv = uv_tcp_bind(&tt->listener, (const struct sockaddr *)&sa, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&tt->listener, 128, listen_cb);
    }
    if (rv != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "listen %.160s: %s", tt->address,
                 uv_strerror(rv));
        return RAFT_IOERR;
    }
    return 0;
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct conn *c = req->data;

    if (c->state == CONN_CLOSING) {
        return;
    }
    if (status < 0) {
        snprintf(c->base.tt->transport->errmsg,
                 sizeof c->base.tt->transport->errmsg, "connect %s: %s",
                 c->base.peer, uv_strerror(status));
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->state = CONN_HANDSHAKE;
    tcp_read_start(c);
    if (c->state == CONN_HANDSHAKE) {
        conn_advance(c); /* Sends the ClientHello. */
    }
}

/* Connect to @address and write a handshake starting with @protocol. */
static int dial(struct raft_uv_transport *t,
                struct raft_uv_connect *req,
                const char *address,
                raft_uv_connect_cb cb,
                uint64_t protocol)
{
    struct tt *tt = t->impl;
    struct sockaddr_in sa;
    struct conn *c;
    int port;

    if (tt->closing) {
        return RAFT_CANCELED;
    }
    if (tt->plain) {
        return plain_connect(tt, req, address, cb, protocol);
    }
    c = conn_new(tt, true);
    if (c == NULL) {
        return RAFT_NOMEM;
    }
    c->base.protocol = protocol;
    snprintf(c->base.peer, sizeof c->base.peer, "%s", address);
    if (split_address(address, c->host, sizeof c->host, &port) != 0 ||
        uv_ip4_addr(c->host, port, &sa) != 0 ||
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host) != 1) {
        snprintf(t->errmsg, sizeof t->errmsg, "bad address %s", address);
        conn_close(c);
        return RAFT_NOCONNECTION;
    }
    c->base.connect.data = c;
    if (uv_tcp_connect(&c->base.connect, &c->tcp, (const struct sockaddr *)&sa,
                       connect_cb) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "connect %s failed", address);
        conn_close(c);
        return RAFT_NOCONNECTION;
    }
    req->cb = cb;
    c->base.req = req;
    c->base.cb = cb;
    return 0;
}

static int tt_connect(struct raft_uv_transport *t,
                      struct raft_uv_connect *req,
                      raft_id id,
                      const char *address,
                      raft_uv_connect_cb cb)
{
    (void)id;
    return dial(t, req, address, cb, RAFT_HANDSHAKE_PROTOCOL);
}

int cluster_transport_dial_side(struct raft_uv_transport *t,
                                struct raft_uv_connect *req,
                                const char *address,
                                raft_uv_connect_cb cb)
{
    return dial(t, req, address, cb, SIDE_HANDSHAKE_PROTOCOL);
}

void cluster_transport_set_side(struct raft_uv_transport *t,
                                cluster_side_accept_cb cb,
                                void *data)
{
    struct tt *tt = t->impl;
    tt->side_cb = cb;
    tt->side_data = data;
}

static void listener_closed(uv_handle_t *handle)
{
    struct tt *tt = handle->data;
    tt->listener_open = false;
    maybe_closed(tt);
}

static void tt_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct tt *tt = t->impl;
    struct list *item;

    tt->closing = true;
    tt->close_cb = cb;
    if (tt->listener_open) {
        uv_close((uv_handle_t *)&tt->listener, listener_closed);
    }
    LIST_FOREACH (item, &tt->links) {
        if (tt->plain) {
            pconn_close(CONTAINER_OF(item, struct pconn, base.item));
        } else {
            conn_close(CONTAINER_OF(item, struct conn, base.item));
        }
    }
    maybe_closed(tt);
}

/* ---- Public ------------------------------------------------------------- */

static SSL_CTX *make_ctx(const SSL_METHOD *method,
                         bool server,
                         const char *ca_file,
                         const char *cert_file,
                         const char *key_file,
                         char *errmsg,
                         size_t size)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    const char *what = "SSL_CTX_new";

    if (ctx == NULL) {
        goto err;
    }
    what = "TLS 1.3";
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
        goto err;
    }
    what = ca_file;
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        goto err;
    }
    what = cert_file;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        goto err;
    }
    what = key_file;
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        goto err;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (server) {
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    return ctx;

err : {
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    snprintf(errmsg, size, "tls: %s: %s", what, r != NULL ? r : "failed");
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}
}

/* @t cleared but for its data, and a transport for it on @loop (NULL when
 * out of memory), given to @t by tt_attach(). */
static struct tt *tt_new(struct raft_uv_transport *t,
                         uv_loop_t *loop,
                         char *errmsg,
                         size_t size)
{
    void *data = t->data;
    struct tt *tt;

    memset(t, 0, sizeof *t);
    t->data = data;
    tt = calloc(1, sizeof *tt);
    if (tt == NULL) {
        snprintf(errmsg, size, "out of memory");
        return NULL;
    }
    tt->transport = t;
    tt->loop = loop;
    list_init(&tt->links);
    return tt;
}

static void tt_attach(struct raft_uv_transport *t, struct tt *tt)
{
    t->impl = tt;
    t->init = tt_init;
    t->listen = tt_listen;
    t->connect = tt_connect;
    t->close = tt_close;
}

int cluster_tls_transport_init(struct raft_uv_transport *t,
                               uv_loop_t *loop,
                               const char *ca_file,
                               const char *cert_file,
                               const char *key_file,
                               char *errmsg,
                               size_t size)
{
    struct tt *tt = tt_new(t, loop, errmsg, size);

    if (tt == NULL) {
        return RAFT_NOMEM;
    }
    tt->server_ctx = make_ctx(TLS_server_method(), true, ca_file, cert_file,
                              key_file, errmsg, size);
    if (tt->server_ctx != NULL) {
        tt->client_ctx = make_ctx(TLS_client_method(), false, ca_file,
                                  cert_file, key_file, errmsg, size);
    }
    if (tt->client_ctx == NULL) {
        SSL_CTX_free(tt->server_ctx);
        free(tt);
        return RAFT_INVALID;
    }
    tt_attach(t, tt);
    return 0;
}

int cluster_plain_transport_init(struct raft_uv_transport *t,
                                 uv_loop_t *loop,
                                 char *errmsg,
                                 size_t size)
{
    struct tt *tt = tt_new(t, loop, errmsg, size);

    if (tt == NULL) {
        return RAFT_NOMEM;
    }
    tt->plain = true;
    tt_attach(t, tt);
    return 0;
}

void cluster_tls_transport_close(struct raft_uv_transport *t)
{
    struct tt *tt = t->impl;

    if (tt == NULL) {
        return;
    }
    SSL_CTX_free(tt->server_ctx);
    SSL_CTX_free(tt->client_ctx);
    free(tt);
    t->impl = NULL;
}

void cluster_tls_transport_stats(const struct raft_uv_transport *t,
                                 struct cluster_tls_transport_stats *out)
{
    const struct tt *tt = t->impl;
    *out = tt->stats;
}
