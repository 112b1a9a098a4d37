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
#include "common/log.h"

#define READ_BUF_SIZE (64 * 1024)
#define RAFT_HANDSHAKE_PROTOCOL 1 /* raft 0.15 uv_tcp.h */
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

struct conn
{
    struct tt *tt;
    struct conn *prev;
    struct conn *next;
    enum conn_state state;
    bool outgoing;
    bool pending;               /* Incoming, counted in tt->pending_in. */
    char peer[64];              /* For logs: "a.b.c.d:port". */
    char host[INET_ADDRSTRLEN]; /* Outgoing: the IP dialled. */
    unsigned handles;           /* Handles not yet closed. */
    uv_tcp_t tcp;
    uv_timer_t timer; /* Handshake deadline, then drain deadline. */
    uv_pipe_t pump;   /* Our end of the socketpair. */
    bool pump_inited;
    uv_pipe_t *raft_pipe; /* Raft's end, until handed over. */
    uv_connect_t connect;
    uv_shutdown_t shutdown;
    bool tcp_reading;
    bool pump_reading;
    SSL *ssl;
    BIO *rbio; /* Network -> SSL. */
    BIO *wbio; /* SSL -> network. */
    /* Outgoing: raft's request, fired once. */
    struct raft_uv_connect *req;
    raft_uv_connect_cb cb;
    int status;
    /* Incoming: raft's transport handshake. */
    uint64_t preamble[3];
    size_t preamble_n;
    char *address;
    size_t address_len;
    size_t address_n;
};

struct wreq
{
    uv_write_t req;
    struct conn *c;
    char data[];
};

struct pconn;

struct tt
{
    struct raft_uv_transport *transport;
    uv_loop_t *loop;
    bool plain;           /* No TLS (--insecure): struct pconn, below. */
    struct pconn *pconns; /* Plain mode's connections. */
    SSL_CTX *server_ctx;
    SSL_CTX *client_ctx;
    raft_id id;
    char address[ADDRESS_MAX];
    uv_tcp_t listener;
    bool listener_open;
    raft_uv_accept_cb accept_cb;
    struct conn *conns;
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

static void log_refused(struct tt *tt,
                        const char *peer,
                        bool outgoing,
                        const char *reason)
{
    uint64_t now = uv_now(tt->loop);

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
        "peer=%s dir=%s reason=\"%s\" suppressed=%u", peer,
        outgoing ? "out" : "in", reason, tt->log_suppressed);
    tt->log_suppressed = 0;
}

/* A TLS or raft handshake failure: log it and close. */
static void refuse(struct conn *c, const char *reason)
{
    if (c->state == CONN_CLOSING) {
        return;
    }
    if (!c->outgoing) {
        c->tt->stats.refused++;
    }
    log_refused(c->tt, c->peer, c->outgoing, reason);
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
    if (tt->closing && tt->conns == NULL && tt->pconns == NULL &&
        !tt->listener_open && tt->close_cb != NULL) {
        raft_uv_transport_close_cb cb = tt->close_cb;
        tt->close_cb = NULL;
        cb(tt->transport);
    }
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
    c->tt = tt;
    c->outgoing = outgoing;
    c->state = outgoing ? CONN_CONNECTING : CONN_HANDSHAKE;
    c->status = RAFT_NOCONNECTION;
    snprintf(c->peer, sizeof c->peer, "unknown");
    uv_tcp_init(tt->loop, &c->tcp);
    c->tcp.data = c;
    uv_timer_init(tt->loop, &c->timer);
    c->timer.data = c;
    c->handles = 2;
    uv_timer_start(&c->timer, timer_cb, TLS_TRANSPORT_HANDSHAKE_MS, 0);
    c->next = tt->conns;
    if (tt->conns != NULL) {
        tt->conns->prev = c;
    }
    tt->conns = c;
    tt->stats.open++;
    return c;
}

static void conn_free(struct conn *c)
{
    struct tt *tt = c->tt;
    struct raft_uv_connect *req = c->req;

    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        tt->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    tt->stats.open--;
    if (req != NULL) {
        tt->stats.connect_failed++;
        c->req = NULL;
        c->cb(req, NULL, tt->closing ? RAFT_CANCELED : c->status);
    }
    SSL_free(c->ssl); /* Frees both BIOs. */
    free(c->address);
    free(c);
    maybe_closed(tt);
}

static void conn_handle_closed(uv_handle_t *handle)
{
    struct conn *c = handle->data;

    if (c->raft_pipe != NULL && handle == (uv_handle_t *)c->raft_pipe) {
        raft_free(c->raft_pipe);
        c->raft_pipe = NULL;
    }
    if (--c->handles == 0) {
        conn_free(c);
    }
}

static void conn_close(struct conn *c)
{
    if (c->state == CONN_CLOSING) {
        return;
    }
    c->state = CONN_CLOSING;
    if (c->pending) {
        c->pending = false;
        c->tt->pending_in--;
    }
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
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
    if (stream->write_queue_size > c->tt->stats.pipe_queue_max) {
        c->tt->stats.pipe_queue_max = stream->write_queue_size;
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
    if (c->tcp.write_queue_size > c->tt->stats.tcp_queue_max) {
        c->tt->stats.tcp_queue_max = c->tcp.write_queue_size;
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
    uv_timer_start(&c->timer, timer_cb, TLS_TRANSPORT_HANDSHAKE_MS, 0);
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
    buf->base = c->tt->buf;
    buf->len = sizeof c->tt->buf;
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
    struct tt *tt = c->tt;
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
        LOG(LOG_DEBUG, "raft peer tls error", "peer=%s reason=\"%s\"", c->peer,
            reason);
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
    uv_loop_t *loop = c->tt->loop;
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
    c->handles++;
    uv_pipe_init(loop, &c->pump, 0);
    c->pump.data = c;
    c->pump_inited = true;
    c->handles++;
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
    c->handles--;
    s->data = NULL;
    uv_timer_stop(&c->timer);
    c->state = CONN_OPEN;
    return s;
}

/* Outgoing TLS is up: check the name, send raft's handshake, hand over. */
static void outgoing_ready(struct conn *c)
{
    struct tt *tt = c->tt;
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
    put_le64(hs, RAFT_HANDSHAKE_PROTOCOL);
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
    req = c->req;
    c->req = NULL;
    stream = handover(c);
    pump_read_start(c);
    c->cb(req, stream, 0);
}

/* Incoming raft handshake read: check the claimed address, hand over. */
static void incoming_ready(struct conn *c)
{
    struct tt *tt = c->tt;
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    raft_id id = le64(c->preamble[1]);
    char host[ADDRESS_MAX];
    int port;

    if (memchr(c->address, '\0', c->address_len) == NULL ||
        split_address(c->address, host, sizeof host, &port) != 0) {
        refuse(c, "bad raft handshake address");
        return;
    }
    if (peer == NULL || X509_check_ip_asc(peer, host, 0) != 1) {
        char reason[ADDRESS_MAX + 64];
        snprintf(reason, sizeof reason,
                 "client certificate has no IP SAN for claimed address %s",
                 c->address);
        refuse(c, reason);
        return;
    }
    if (open_pipe(c) != 0) {
        conn_close(c);
        return;
    }
    c->pending = false;
    tt->pending_in--;
    tt->stats.accepted++;
    pump_read_start(c);
    tt->accept_cb(tt->transport, id, c->address, handover(c));
    free(c->address);
    c->address = NULL;
}

static void read_preamble(struct conn *c)
{
    while (c->state == CONN_PREAMBLE) {
        int r;
        ERR_clear_error();
        if (c->preamble_n < sizeof c->preamble) {
            r = SSL_read(c->ssl, (char *)c->preamble + c->preamble_n,
                         (int)(sizeof c->preamble - c->preamble_n));
        } else {
            r = SSL_read(c->ssl, c->address + c->address_n,
                         (int)(c->address_len - c->address_n));
        }
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
        if (c->preamble_n < sizeof c->preamble) {
            c->preamble_n += (size_t)r;
            if (c->preamble_n < sizeof c->preamble) {
                continue;
            }
            c->address_len = le64(c->preamble[2]);
            if (le64(c->preamble[0]) != RAFT_HANDSHAKE_PROTOCOL ||
                c->address_len == 0 || c->address_len > ADDRESS_MAX) {
                refuse(c, "bad raft handshake");
                return;
            }
            c->address = malloc(c->address_len);
            if (c->address == NULL) {
                conn_close(c);
                return;
            }
            continue;
        }
        c->address_n += (size_t)r;
        if (c->address_n == c->address_len) {
            incoming_ready(c);
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
        if (c->outgoing) {
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
    struct tt *tt;
    struct pconn *prev;
    struct pconn *next;
    bool outgoing;
    bool pending; /* Incoming, counted in tt->pending_in. */
    bool closing;
    char peer[64];
    uv_tcp_t *tcp; /* Raft's once handed over (then NULL here). */
    uv_timer_t timer;
    unsigned handles;
    uv_connect_t connect;
    struct raft_uv_connect *req; /* Outgoing: raft's request, fired once. */
    raft_uv_connect_cb cb;
    uint64_t preamble[3]; /* Incoming: raft's transport handshake. */
    size_t preamble_n;
    char *address;
    size_t address_len;
    size_t address_n;
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
    p->tt = tt;
    p->outgoing = outgoing;
    snprintf(p->peer, sizeof p->peer, "unknown");
    uv_tcp_init(tt->loop, p->tcp);
    p->tcp->data = p;
    uv_timer_init(tt->loop, &p->timer);
    p->timer.data = p;
    p->handles = 2;
    uv_timer_start(&p->timer, pconn_timer_cb, TLS_TRANSPORT_HANDSHAKE_MS, 0);
    p->next = tt->pconns;
    if (tt->pconns != NULL) {
        tt->pconns->prev = p;
    }
    tt->pconns = p;
    tt->stats.open++;
    return p;
}

static void pconn_free(struct pconn *p)
{
    struct tt *tt = p->tt;
    struct raft_uv_connect *req = p->req;

    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        tt->pconns = p->next;
    }
    if (p->next != NULL) {
        p->next->prev = p->prev;
    }
    tt->stats.open--;
    if (req != NULL) {
        tt->stats.connect_failed++;
        p->req = NULL;
        p->cb(req, NULL, tt->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
    }
    free(p->address);
    free(p);
    maybe_closed(tt);
}

static void pconn_handle_closed(uv_handle_t *handle)
{
    struct pconn *p = handle->data;

    if (handle != (uv_handle_t *)&p->timer) {
        raft_free(handle); /* Our TCP handle, never handed over. */
    }
    if (--p->handles == 0) {
        pconn_free(p);
    }
}

/* Close what is still ours; freed in the last close callback. */
static void pconn_close(struct pconn *p)
{
    if (p->closing) {
        return;
    }
    p->closing = true;
    if (p->pending) {
        p->pending = false;
        p->tt->pending_in--;
    }
    if (p->tcp != NULL) {
        uv_close((uv_handle_t *)p->tcp, pconn_handle_closed);
        p->tcp = NULL;
    }
    uv_close((uv_handle_t *)&p->timer, pconn_handle_closed);
}

static void pconn_refuse(struct pconn *p, const char *reason)
{
    if (p->closing) {
        return;
    }
    if (!p->outgoing) {
        p->tt->stats.refused++;
    }
    log_refused(p->tt, p->peer, p->outgoing, reason);
    pconn_close(p);
}

static void pconn_timer_cb(uv_timer_t *timer)
{
    struct pconn *p = timer->data;

    if (p->outgoing) {
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
    p->handles--;
    s->data = NULL;
    if (p->pending) {
        p->pending = false;
        p->tt->pending_in--;
    }
    pconn_close(p);
    return s;
}

static void palloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct pconn *p = handle->data;
    (void)suggested;

    if (p->preamble_n < sizeof p->preamble) {
        buf->base = (char *)p->preamble + p->preamble_n;
        buf->len = sizeof p->preamble - p->preamble_n;
    } else {
        buf->base = p->address + p->address_n;
        buf->len = p->address_len - p->address_n;
    }
}

static void pincoming_ready(struct pconn *p)
{
    struct tt *tt = p->tt;
    raft_id id = le64(p->preamble[1]);
    char host[ADDRESS_MAX];
    int port;
    uv_stream_t *stream;

    if (memchr(p->address, '\0', p->address_len) == NULL ||
        split_address(p->address, host, sizeof host, &port) != 0) {
        pconn_refuse(p, "bad raft handshake address");
        return;
    }
    uv_read_stop((uv_stream_t *)p->tcp);
    tt->stats.accepted++;
    stream = pconn_handover(p);
    /* @p is freed in a close callback, so its address outlives this. */
    tt->accept_cb(tt->transport, id, p->address, stream);
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
    if (p->preamble_n < sizeof p->preamble) {
        p->preamble_n += (size_t)n;
        if (p->preamble_n < sizeof p->preamble) {
            return;
        }
        p->address_len = le64(p->preamble[2]);
        if (le64(p->preamble[0]) != RAFT_HANDSHAKE_PROTOCOL ||
            p->address_len == 0 || p->address_len > ADDRESS_MAX) {
            pconn_refuse(p, "bad raft handshake");
            return;
        }
        p->address = malloc(p->address_len);
        if (p->address == NULL) {
            pconn_close(p);
        }
        return;
    }
    p->address_n += (size_t)n;
    if (p->address_n == p->address_len) {
        pincoming_ready(p);
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
    p->pending = true;
    tt->pending_in++;
    if (uv_accept(server, (uv_stream_t *)p->tcp) != 0) {
        pconn_close(p);
        return;
    }
    peer_name(p->tcp, p->peer, sizeof p->peer);
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
    struct tt *tt = p->tt;
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
                 "connect %s: %s", p->peer, uv_strerror(status));
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
    put_le64((unsigned char *)w->data, RAFT_HANDSHAKE_PROTOCOL);
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
    rreq = p->req;
    p->req = NULL;
    stream = pconn_handover(p);
    p->cb(rreq, stream, 0);
}

static int plain_connect(struct tt *tt,
                         struct raft_uv_connect *req,
                         const char *address,
                         raft_uv_connect_cb cb)
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
    snprintf(p->peer, sizeof p->peer, "%s", address);
    if (split_address(address, host, sizeof host, &port) != 0 ||
        uv_ip4_addr(host, port, &sa) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "bad address %s", address);
        pconn_close(p);
        return RAFT_NOCONNECTION;
    }
    p->connect.data = p;
    if (uv_tcp_connect(&p->connect, p->tcp, (const struct sockaddr *)&sa,
                       pconnect_cb) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "connect %s failed", address);
        pconn_close(p);
        return RAFT_NOCONNECTION;
    }
    req->cb = cb;
    p->req = req;
    p->cb = cb;
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
    c->pending = true;
    tt->pending_in++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    peer_name(&c->tcp, c->peer, sizeof c->peer);
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
        snprintf(c->tt->transport->errmsg, sizeof c->tt->transport->errmsg,
                 "connect %s: %s", c->peer, uv_strerror(status));
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

static int tt_connect(struct raft_uv_transport *t,
                      struct raft_uv_connect *req,
                      raft_id id,
                      const char *address,
                      raft_uv_connect_cb cb)
{
    struct tt *tt = t->impl;
    struct sockaddr_in sa;
    struct conn *c;
    int port;
    (void)id;

    if (tt->closing) {
        return RAFT_CANCELED;
    }
    if (tt->plain) {
        return plain_connect(tt, req, address, cb);
    }
    c = conn_new(tt, true);
    if (c == NULL) {
        return RAFT_NOMEM;
    }
    snprintf(c->peer, sizeof c->peer, "%s", address);
    if (split_address(address, c->host, sizeof c->host, &port) != 0 ||
        uv_ip4_addr(c->host, port, &sa) != 0 ||
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host) != 1) {
        snprintf(t->errmsg, sizeof t->errmsg, "bad address %s", address);
        conn_close(c);
        return RAFT_NOCONNECTION;
    }
    c->connect.data = c;
    if (uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&sa,
                       connect_cb) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "connect %s failed", address);
        conn_close(c);
        return RAFT_NOCONNECTION;
    }
    req->cb = cb;
    c->req = req;
    c->cb = cb;
    return 0;
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

    tt->closing = true;
    tt->close_cb = cb;
    if (tt->listener_open) {
        uv_close((uv_handle_t *)&tt->listener, listener_closed);
    }
    for (struct conn *c = tt->conns; c != NULL; c = c->next) {
        conn_close(c);
    }
    for (struct pconn *p = tt->pconns; p != NULL; p = p->next) {
        pconn_close(p);
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

int cluster_tls_transport_init(struct raft_uv_transport *t,
                               uv_loop_t *loop,
                               const char *ca_file,
                               const char *cert_file,
                               const char *key_file,
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
        return RAFT_NOMEM;
    }
    tt->transport = t;
    tt->loop = loop;
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
    t->impl = tt;
    t->init = tt_init;
    t->listen = tt_listen;
    t->connect = tt_connect;
    t->close = tt_close;
    return 0;
}

int cluster_plain_transport_init(struct raft_uv_transport *t,
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
        return RAFT_NOMEM;
    }
    tt->transport = t;
    tt->loop = loop;
    tt->plain = true;
    t->impl = tt;
    t->init = tt_init;
    t->listen = tt_listen;
    t->connect = tt_connect;
    t->close = tt_close;
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
