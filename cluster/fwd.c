/* The forward channel: a follower's writes to the leader as encoded
 * commands over one persistent side connection (tls_transport.h: the raft
 * port, the same TLS and handshake deadline), instead of one HTTP request
 * per write relayed with libcurl.
 *
 * Frames, both ways: a 16-byte header (u32 length of what follows, u32
 * kind, u64 id; little endian) and the payload. A request's payload is
 * what the HTTP layer hands over (an encoded command) and its kind is the
 * HTTP layer's too; an answer has kind 0, the request's id and
 * {i32 err, u32 status, u64 index, u16 field_len, u16 msg_len,
 *  u32 body_len, field, msg, body}.
 *
 * Follower: at most one open connection, to the node it believes leads;
 * requests are appended to an output buffer and written once per loop
 * iteration (uv_prepare), so a burst of writes costs one syscall, not one
 * each. Answers come back in any order and find their request by id (a
 * slot number and a generation). A request whose bytes never reached the
 * kernel when the connection died is "not sent" (the caller may send it
 * another way); one that did has an unknown outcome. Past its deadline
 * (--forward-timeout) a request gets ERR_TIMEOUT and a late answer is
 * dropped.
 *
 * Leader: every accepted side connection is read frame by frame; each
 * request goes to the handler the HTTP layer set, with a struct
 * cluster_fwd_call that it answers exactly once (cluster_fwd_reply), also
 * after the connection is gone (the answer is then dropped). */

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "cluster"
#include "cluster/internal.h"
#include "cluster/tls_transport.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

#define HDR 16
#define SLOTS 4096 /* Requests in flight per follower; more use HTTP. */
#define SLOT_BITS 12
/* A frame's payload: a command of at most BATCH_MAX_BYTES (submit.c) and
 * the answer's rendered jobs. */
#define FRAME_MAX ((size_t)32 << 20)
#define OUT_MAX ((size_t)64 << 20) /* Unwritten bytes per connection. */
#define READ_CHUNK ((size_t)64 << 10)
#define SWEEP_MS 100
#define RETRY_MS 1000 /* After a failed dial. */

struct obuf
{
    char *p;
    size_t len, cap;
};

struct fconn
{
    struct fwd *f;     /* Not after its close: it may be gone. */
    struct cluster *c; /* For the close callback. */
    struct list link;  /* In f->conns. */
    uv_stream_t *stream;
    raft_id peer;
    bool outgoing;
    bool open;     /* Stream usable: connected, not closing. */
    bool draining; /* Outgoing to a former leader: no new requests. */
    bool closing;
    unsigned refs; /* 1 while not closed + one per unanswered call. */
    /* Input. */
    char *in;
    size_t in_len, in_cap;
    /* Output: @out[cur] collects, the other is being written. */
    struct obuf out[2];
    int cur;
    bool writing;
    uv_write_t wreq;
    /* Outgoing: frames appended (numbered) and handed to the kernel. */
    uint64_t appended, written;
    unsigned outstanding;
    struct raft_uv_connect connect;
};

/* Follower: one request waiting for its answer. */
struct freq
{
    uint64_t id;
    uint64_t seq; /* Its frame's number on @conn. */
    uint64_t deadline;
    struct fconn *conn;
    cluster_fwd_cb cb;
    void *data;
};

struct cluster_fwd_call
{
    struct fconn *conn;
    uint64_t id;
};

struct fwd
{
    struct cluster *c;
    struct list conns;
    struct fconn *client; /* Open or connecting, to @client_peer. */
    bool dialing;
    uint64_t retry_at;
    struct freq *slots[SLOTS];
    unsigned free_slots[SLOTS];
    unsigned n_free;
    uint64_t gen;
    uv_prepare_t flush;
    uv_timer_t sweep;
    bool closing;
    unsigned handles_closed; /* Of @flush and @sweep, at close. */
};

static uint32_t get32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return le32toh(v);
}

static uint64_t get64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return le64toh(v);
}

static void put32(char *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, 4);
}

static void put64(char *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, 8);
}

/* Room for @n more bytes in @b, or false. */
static bool obuf_reserve(struct obuf *b, size_t n)
{
    size_t cap = b->cap == 0 ? 64 * 1024 : b->cap;
    char *p;
    if (b->len + n <= b->cap) {
        return true;
    }
    while (cap < b->len + n) {
        cap *= 2;
    }
    p = realloc(b->p, cap);
    if (p == NULL) {
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static size_t out_pending(const struct fconn *k)
{
    return k->out[0].len + k->out[1].len;
}

/* ---- Connections --------------------------------------------------- */

static void fail_conn_requests(struct fconn *k);
static void conn_drained(struct fconn *k);

static void conn_unref(struct fconn *k)
{
    if (--k->refs == 0) {
        /* Closed (its stream callback ran) and no call left. */
        free(k->in);
        free(k->out[0].p);
        free(k->out[1].p);
        free(k);
    }
}

static void stream_closed_cb(uv_handle_t *handle)
{
    struct fconn *k = handle->data;
    struct cluster *c = k->c;
    raft_free(handle);
    k->stream = NULL;
    conn_unref(k);
    cluster__handle_closed(c);
}

static void conn_close(struct fconn *k, const char *why)
{
    struct fwd *f = k->f;
    if (k->closing) {
        return;
    }
    k->closing = true;
    k->open = false;
    list_remove(&k->link);
    if (f->client == k) {
        f->client = NULL;
    }
    if (k->outgoing) {
        fail_conn_requests(k);
    }
    if (why != NULL && !f->closing) {
        LOG(LOG_INFO, "forward channel closed", "peer=%llu reason=\"%s\"",
            (unsigned long long)k->peer, why);
    }
    if (k->stream != NULL) {
        f->c->open_handles++;
        k->stream->data = k;
        uv_close((uv_handle_t *)k->stream, stream_closed_cb);
    } else {
        conn_unref(k);
    }
}

static void write_cb(uv_write_t *req, int status)
{
    struct fconn *k = req->data;
    k->writing = false;
    k->out[1 - k->cur].len = 0;
    if (status < 0) {
        conn_close(k, uv_strerror(status));
        return;
    }
    conn_drained(k);
}

/* Hand what @k collected to the kernel (one write). */
static void conn_flush(struct fconn *k)
{
    struct obuf *b = &k->out[k->cur];
    uv_buf_t buf;
    if (!k->open || k->writing || b->len == 0) {
        return;
    }
    buf = uv_buf_init(b->p, (unsigned)b->len);
    k->wreq.data = k;
    if (uv_write(&k->wreq, k->stream, &buf, 1, write_cb) != 0) {
        conn_close(k, "write failed");
        return;
    }
    k->writing = true;
    k->written = k->appended;
    k->cur = 1 - k->cur;
}

/* Append one frame to @k's output. */
static int conn_append(struct fconn *k,
                       uint32_t kind,
                       uint64_t id,
                       const void *a,
                       size_t alen,
                       const void *b,
                       size_t blen)
{
    struct obuf *o = &k->out[k->cur];
    if (out_pending(k) + HDR + alen + blen > OUT_MAX) {
        return ERR_BUSY;
    }
    if (!obuf_reserve(o, HDR + alen + blen)) {
        return ERR_NOMEM;
    }
    put32(o->p + o->len, (uint32_t)(alen + blen));
    put32(o->p + o->len + 4, kind);
    put64(o->p + o->len + 8, id);
    o->len += HDR;
    if (alen > 0) {
        memcpy(o->p + o->len, a, alen);
        o->len += alen;
    }
    if (blen > 0) {
        memcpy(o->p + o->len, b, blen);
        o->len += blen;
    }
    k->appended++;
    return 0;
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct fconn *k = handle->data;
    (void)suggested;
    if (k->in_cap - k->in_len < READ_CHUNK) {
        size_t cap = k->in_cap == 0 ? 2 * READ_CHUNK : k->in_cap * 2;
        char *p = realloc(k->in, cap);
        if (p == NULL) {
            *buf = uv_buf_init(NULL, 0); /* UV_ENOBUFS to read_cb. */
            return;
        }
        k->in = p;
        k->in_cap = cap;
    }
    *buf = uv_buf_init(k->in + k->in_len, (unsigned)(k->in_cap - k->in_len));
}

static void on_answer(struct fconn *k, uint64_t id, const char *p, size_t n);
static void on_request(struct fconn *k,
                       uint32_t kind,
                       uint64_t id,
                       const char *p,
                       size_t n);

static void read_cb(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    struct fconn *k = stream->data;
    size_t off = 0;
    (void)buf;

    if (n == 0 || k->closing) {
        return;
    }
    if (n < 0) {
        conn_close(k, n == UV_EOF ? "closed by peer" : uv_strerror((int)n));
        return;
    }
    k->in_len += (size_t)n;
    k->refs++; /* Handlers may close @k. */
    while (!k->closing && k->in_len - off >= HDR) {
        uint32_t len = get32(k->in + off);
        uint32_t kind = get32(k->in + off + 4);
        uint64_t id = get64(k->in + off + 8);
        if (len > FRAME_MAX) {
            conn_close(k, "frame too large");
            break;
        }
        if (k->in_len - off < HDR + (size_t)len) {
            break;
        }
        if (k->outgoing) {
            on_answer(k, id, k->in + off + HDR, len);
        } else {
            on_request(k, kind, id, k->in + off + HDR, len);
        }
        off += HDR + len;
    }
    if (!k->closing && off > 0) {
        memmove(k->in, k->in + off, k->in_len - off);
        k->in_len -= off;
    }
    conn_unref(k);
}

static struct fconn *conn_new(struct fwd *f, bool outgoing)
{
    struct fconn *k = calloc(1, sizeof *k);
    if (k == NULL) {
        return NULL;
    }
    k->f = f;
    k->c = f->c;
    k->outgoing = outgoing;
    k->refs = 1;
    list_push(&f->conns, &k->link);
    return k;
}

/* ---- Follower ------------------------------------------------------ */

static void answer_local(struct freq *r, int err, bool not_sent)
{
    struct cluster_fwd_answer a;
    memset(&a, 0, sizeof a);
    a.err = err;
    a.not_sent = not_sent;
    a.field = "";
    a.msg = "";
    a.body = "";
    r->cb(r->data, &a);
}

/* @r leaves its slot and its connection's count; the caller answers and
 * frees it. */
static void slot_release(struct fwd *f, struct freq *r)
{
    unsigned slot = (unsigned)(r->id & (SLOTS - 1));
    f->slots[slot] = NULL;
    f->free_slots[f->n_free++] = slot;
    r->conn->outstanding--;
    r->conn = NULL;
}

/* A draining connection (to a former leader) closes once it owes nothing. */
static void conn_drained(struct fconn *k)
{
    if (k->draining && k->outstanding == 0 && !k->writing) {
        conn_close(k, NULL);
    }
}

static void fail_conn_requests(struct fconn *k)
{
    struct fwd *f = k->f;
    for (unsigned i = 0; i < SLOTS; i++) {
        struct freq *r = f->slots[i];
        if (r != NULL && r->conn == k) {
            bool not_sent = r->seq > k->written;
            slot_release(f, r);
            f->c->stats.fwd_errors++;
            answer_local(r, not_sent ? ERR_UNAVAILABLE : ERR_UNKNOWN, not_sent);
            free(r);
        }
    }
}

static void on_answer(struct fconn *k, uint64_t id, const char *p, size_t n)
{
    struct fwd *f = k->f;
    struct freq *r = f->slots[id & (SLOTS - 1)];
    struct cluster_fwd_answer a;
    uint16_t flen, mlen;
    uint32_t blen;
    char field[64], msg[512];

    if (r == NULL || r->id != id || r->conn != k) {
        return; /* Timed out already. */
    }
    if (n < 24) {
        conn_close(k, "short answer");
        return;
    }
    memset(&a, 0, sizeof a);
    a.err = (int)(int32_t)get32(p);
    a.status = (int)get32(p + 4);
    a.index = get64(p + 8);
    memcpy(&flen, p + 16, 2);
    memcpy(&mlen, p + 18, 2);
    flen = le16toh(flen);
    mlen = le16toh(mlen);
    blen = get32(p + 20);
    if (24 + (size_t)flen + mlen + blen != n) {
        conn_close(k, "bad answer");
        return;
    }
    snprintf(field, sizeof field, "%.*s", (int)flen, p + 24);
    snprintf(msg, sizeof msg, "%.*s", (int)mlen, p + 24 + flen);
    a.field = field;
    a.msg = msg;
    a.body = p + 24 + flen + mlen;
    a.body_len = blen;
    slot_release(f, r);
    r->cb(r->data, &a);
    free(r);
    conn_drained(k);
}

static void raw_closed_cb(uv_handle_t *handle)
{
    raft_free(handle);
}

static void fwd_maybe_free(struct fwd *f);

/* The dial holds a reference on @k and one open handle of the cluster (so
 * neither @k nor the struct fwd goes before it answers). */
static void dial_cb(struct raft_uv_connect *req,
                    struct uv_stream_s *stream,
                    int status)
{
    struct fconn *k = req->data;
    struct fwd *f = k->f;
    struct cluster *c = f->c;

    f->dialing = false;
    if (k->closing) {
        if (stream != NULL) {
            stream->data = NULL;
            uv_close((uv_handle_t *)stream, raw_closed_cb);
        }
    } else if (status != 0 || stream == NULL) {
        f->retry_at = (uint64_t)clock_now_ms() + RETRY_MS;
        conn_close(k, NULL);
    } else {
        k->stream = stream;
        stream->data = k;
        if (uv_read_start(stream, alloc_cb, read_cb) != 0) {
            conn_close(k, "read failed");
        } else {
            k->open = true;
            LOG(LOG_INFO, "forward channel open", "leader=%llu",
                (unsigned long long)k->peer);
        }
    }
    conn_unref(k);
    fwd_maybe_free(f);
    cluster__handle_closed(c);
}

void cluster__fwd_tick(struct cluster *c)
{
    struct fwd *f = c->fwd;
    raft_id leader;
    const char *addr;
    struct fconn *k;

    if (f == NULL || f->closing) {
        return;
    }
    raft_leader(&c->raft, &leader, &addr);
    k = f->client;
    if (k != NULL &&
        (k->peer != leader || raft_state(&c->raft) == RAFT_LEADER)) {
        /* Answers of the former leader still come: keep reading them. */
        f->client = NULL;
        k->draining = true;
        conn_drained(k);
        k = NULL;
    }
    if (k != NULL || f->dialing || leader == 0 || addr == NULL ||
        raft_state(&c->raft) == RAFT_LEADER ||
        (uint64_t)clock_now_ms() < f->retry_at) {
        return;
    }
    k = conn_new(f, true);
    if (k == NULL) {
        return;
    }
    k->peer = leader;
    k->connect.data = k;
    if (cluster_transport_dial_side(&c->transport, &k->connect, addr,
                                    dial_cb) != 0) {
        f->retry_at = (uint64_t)clock_now_ms() + RETRY_MS;
        conn_close(k, NULL);
        return;
    }
    f->client = k;
    f->dialing = true;
    k->refs++;
    c->open_handles++;
}

bool cluster_fwd_ready(struct cluster *c)
{
    struct fwd *f = c->fwd;
    return f != NULL && f->client != NULL && f->client->open && f->n_free > 0 &&
           raft_state(&c->raft) != RAFT_LEADER;
}

int cluster_fwd_send(struct cluster *c,
                     uint32_t kind,
                     const void *payload,
                     size_t len,
                     cluster_fwd_cb cb,
                     void *data)
{
    struct fwd *f = c->fwd;
    struct fconn *k;
    struct freq *r;
    unsigned slot;
    int rv;

    if (!cluster_fwd_ready(c)) {
        return ERR_UNAVAILABLE;
    }
    if (len > FRAME_MAX || kind == 0) {
        return ERR_TOOLARGE;
    }
    k = f->client;
    r = malloc(sizeof *r);
    if (r == NULL) {
        return ERR_NOMEM;
    }
    slot = f->free_slots[f->n_free - 1];
    r->id = (++f->gen << SLOT_BITS) | slot;
    rv = conn_append(k, kind, r->id, payload, len, NULL, 0);
    if (rv != 0) {
        free(r);
        return rv;
    }
    f->n_free--;
    f->slots[slot] = r;
    r->seq = k->appended;
    r->conn = k;
    r->cb = cb;
    r->data = data;
    r->deadline = (uint64_t)clock_now_ms() +
                  (c->cfg.forward_timeout > 0 ? c->cfg.forward_timeout : 10000);
    k->outstanding++;
    c->stats.fwd_sent++;
    return 0;
}

int cluster_fwd_send_cmd(struct cluster *c,
                         uint32_t kind,
                         const struct fsm_cmd *cmd,
                         cluster_fwd_cb cb,
                         void *data)
{
    void *buf;
    size_t len;
    int rv = fsm_cmd_encode(cmd, &buf, &len);
    if (rv != 0) {
        return rv;
    }
    rv = cluster_fwd_send(c, kind, buf, len, cb, data);
    free(buf);
    return rv;
}

static void sweep_cb(uv_timer_t *t)
{
    struct fwd *f = t->data;
    uint64_t now = (uint64_t)clock_now_ms();
    for (unsigned i = 0; i < SLOTS && f->n_free < SLOTS; i++) {
        struct freq *r = f->slots[i];
        if (r != NULL && r->deadline <= now) {
            struct fconn *k = r->conn;
            slot_release(f, r);
            f->c->stats.fwd_errors++;
            answer_local(r, ERR_TIMEOUT, false);
            free(r);
            conn_drained(k);
        }
    }
}

/* ---- Leader -------------------------------------------------------- */

static void on_request(struct fconn *k,
                       uint32_t kind,
                       uint64_t id,
                       const char *p,
                       size_t n)
{
    struct fwd *f = k->f;
    struct cluster_fwd_call *call = malloc(sizeof *call);

    if (call == NULL) {
        conn_close(k, "out of memory");
        return;
    }
    call->conn = k;
    call->id = id;
    k->refs++;
    f->c->stats.fwd_received++;
    if (f->c->fwd_handler == NULL) {
        struct cluster_fwd_answer a = {.err = ERR_UNAVAILABLE};
        cluster_fwd_reply(call, &a);
        return;
    }
    f->c->fwd_handler(f->c->fwd_handler_data, call, kind, p, n);
}

void cluster_fwd_reply(struct cluster_fwd_call *call,
                       const struct cluster_fwd_answer *a)
{
    struct fconn *k = call->conn;
    size_t flen = a->field != NULL ? strnlen(a->field, 63) : 0;
    size_t mlen = a->msg != NULL ? strnlen(a->msg, 511) : 0;
    char head[24 + 64 + 512];
    uint16_t v;

    if (k->open && !k->closing) {
        put32(head, (uint32_t)a->err);
        put32(head + 4, (uint32_t)a->status);
        put64(head + 8, a->index);
        v = htole16((uint16_t)flen);
        memcpy(head + 16, &v, 2);
        v = htole16((uint16_t)mlen);
        memcpy(head + 18, &v, 2);
        put32(head + 20, (uint32_t)a->body_len);
        memcpy(head + 24, a->field != NULL ? a->field : "", flen);
        memcpy(head + 24 + flen, a->msg != NULL ? a->msg : "", mlen);
        if (conn_append(k, 0, call->id, head, 24 + flen + mlen, a->body,
                        a->body_len) != 0) {
            conn_close(k, "answers not read");
        }
    }
    free(call);
    conn_unref(k);
}

static void side_accept_cb(void *data,
                           raft_id id,
                           const char *address,
                           uv_stream_t *stream)
{
    struct fwd *f = data;
    struct fconn *k;

    if (f->closing || (k = conn_new(f, false)) == NULL) {
        stream->data = NULL;
        uv_close((uv_handle_t *)stream, raw_closed_cb);
        return;
    }
    k->peer = id;
    k->stream = stream;
    stream->data = k;
    if (uv_read_start(stream, alloc_cb, read_cb) != 0) {
        conn_close(k, "read failed");
        return;
    }
    k->open = true;
    LOG(LOG_DEBUG, "forward channel accepted", "peer=%llu addr=%s",
        (unsigned long long)id, address);
}

void cluster_fwd_set_handler(struct cluster *c,
                             cluster_fwd_handler h,
                             void *data)
{
    c->fwd_handler = h;
    c->fwd_handler_data = data;
}

/* ---- Life ---------------------------------------------------------- */

static void flush_cb(uv_prepare_t *p)
{
    struct fwd *f = p->data;
    struct list *it = f->conns.next;
    while (it != &f->conns) {
        struct list *next = it->next; /* conn_flush may close it. */
        conn_flush(CONTAINER_OF(it, struct fconn, link));
        it = next;
    }
}

int cluster__fwd_init(struct cluster *c)
{
    struct fwd *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return ERR_NOMEM;
    }
    f->c = c;
    list_init(&f->conns);
    for (unsigned i = 0; i < SLOTS; i++) {
        f->free_slots[i] = SLOTS - 1 - i;
    }
    f->n_free = SLOTS;
    uv_prepare_init(c->loop, &f->flush);
    f->flush.data = f;
    uv_prepare_start(&f->flush, flush_cb);
    uv_timer_init(c->loop, &f->sweep);
    f->sweep.data = f;
    uv_timer_start(&f->sweep, sweep_cb, SWEEP_MS, SWEEP_MS);
    c->open_handles += 2;
    c->fwd = f;
    cluster_transport_set_side(&c->transport, side_accept_cb, f);
    return 0;
}

static void fwd_maybe_free(struct fwd *f)
{
    if (f->handles_closed == 2 && !f->dialing) {
        f->c->fwd = NULL;
        free(f);
    }
}

static void fwd_handle_closed(uv_handle_t *h)
{
    struct fwd *f = h->data;
    struct cluster *c = f->c;
    f->handles_closed++;
    fwd_maybe_free(f);
    cluster__handle_closed(c);
}

void cluster__fwd_close(struct cluster *c)
{
    struct fwd *f = c->fwd;
    if (f == NULL) {
        return;
    }
    f->closing = true;
    cluster_transport_set_side(&c->transport, NULL, NULL);
    while (!list_empty(&f->conns)) {
        conn_close(CONTAINER_OF(f->conns.next, struct fconn, link), NULL);
    }
    /* Closing the connections answered every request (each has one). */
    uv_prepare_stop(&f->flush);
    uv_close((uv_handle_t *)&f->flush, fwd_handle_closed);
    uv_timer_stop(&f->sweep);
    uv_close((uv_handle_t *)&f->sweep, fwd_handle_closed);
}
