/* The mutual-TLS raft transport (cluster/tls_transport.c) with real raft:
 * two raft_uv instances on loopback, one loop, one process, certificates
 * made with the openssl command in a temp dir.
 *
 * The attack that worked on the plain TCP transport is replayed: raft's
 * transport handshake followed by a RequestVote with a higher term and
 * the disrupt-leader flag. In clear, or over TLS with a certificate from
 * another CA or with none, it must be dropped and no term may change;
 * over TLS with a certificate from the cluster CA it reaches raft (the
 * leader steps down), which shows the refusals are the transport's.
 *
 * Every wait is bounded: the loop runs under a timer with a deadline, the
 * raw clients run in a thread with socket timeouts. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "cluster/tls_transport.h"

#define N_NODES 2

struct node
{
    raft_id id;
    char addr[32];
    char dir[512];
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft raft;
    unsigned applied;
    uint64_t last;
    bool closed;
};

static char tmpdir[256];
static bool plain_mode; /* The second group: cluster_plain_transport_init. */
static uv_loop_t loop;
static struct node nodes[N_NODES];

/* ---- Files -------------------------------------------------------------- */

static const char *path(const char *name)
{
    static char buf[8][512];
    static unsigned i;
    char *p = buf[i++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

#define EC "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

static int make_ca(const char *name)
{
    return sh("cd %s && openssl req -x509 " EC
              " -keyout %s.key -out %s.crt"
              " -subj /CN=%s -days 2 >/dev/null 2>&1",
              tmpdir, name, name, name);
}

/* A leaf for both TLS roles with one IP SAN. */
static int make_leaf(const char *name, const char *ca, const char *ip)
{
    static unsigned serial = 100;
    return sh(
        "cd %s && printf 'subjectAltName=IP:%s\\n"
        "extendedKeyUsage=serverAuth,clientAuth\\n' > %s.ext &&"
        " openssl req -new " EC
        " -keyout %s.key -out %s.csr"
        " -subj /CN=%s >/dev/null 2>&1 &&"
        " openssl x509 -req -in %s.csr -CA %s.crt -CAkey %s.key"
        " -set_serial %u -days 2 -extfile %s.ext -out %s.crt"
        " >/dev/null 2>&1",
        tmpdir, ip, name, name, name, name, name, ca, ca, serial++, name, name);
}

/* A free loopback port (bound then released). */
static int free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* ---- Loop --------------------------------------------------------------- */

typedef bool (*pred_fn)(void *arg);

struct waiter
{
    pred_fn pred;
    void *arg;
    uint64_t deadline;
    bool ok;
};

static void wait_cb(uv_timer_t *t)
{
    struct waiter *w = t->data;
    if (w->pred != NULL && w->pred(w->arg)) {
        w->ok = true;
        uv_stop(&loop);
    } else if (uv_now(&loop) >= w->deadline) {
        uv_stop(&loop);
    }
}

static void timer_closed(uv_handle_t *h)
{
    (void)h;
}

/* Run the loop until @pred holds (true) or @ms pass (false). With a NULL
 * @pred: run for @ms. */
static bool run_until(pred_fn pred, void *arg, unsigned ms)
{
    struct waiter w = {pred, arg, 0, false};
    uv_timer_t t;

    uv_update_time(&loop);
    w.deadline = uv_now(&loop) + ms;
    uv_timer_init(&loop, &t);
    t.data = &w;
    uv_timer_start(&t, wait_cb, 0, 5);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, timer_closed);
    uv_run(&loop, UV_RUN_NOWAIT);
    return w.ok;
}

/* ---- Raft nodes --------------------------------------------------------- */

static int fsm_apply(struct raft_fsm *fsm,
                     const struct raft_buffer *buf,
                     void **result)
{
    struct node *n = fsm->data;
    n->applied++;
    if (buf->len >= 8) {
        memcpy(&n->last, buf->base, 8);
    }
    *result = NULL;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm,
                        struct raft_buffer *bufs[],
                        unsigned *n_bufs)
{
    (void)fsm;
    (void)bufs;
    (void)n_bufs;
    return RAFT_NOTFOUND;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    (void)fsm;
    raft_free(buf->base);
    return 0;
}

static void node_start(struct node *n, const struct raft_configuration *conf)
{
    char errmsg[256];

    n->fsm.version = 1;
    n->fsm.data = n;
    n->fsm.apply = fsm_apply;
    n->fsm.snapshot = fsm_snapshot;
    n->fsm.restore = fsm_restore;
    assert_int_equal(mkdir(n->dir, 0700), 0);
    if (plain_mode) {
        assert_int_equal(cluster_plain_transport_init(&n->transport, &loop,
                                                      errmsg, sizeof errmsg),
                         0);
    } else {
        assert_int_equal(
            cluster_tls_transport_init(&n->transport, &loop, path("ca1.crt"),
                                       path("node.crt"), path("node.key"),
                                       errmsg, sizeof errmsg),
            0);
    }
    assert_int_equal(raft_uv_init(&n->io, &loop, n->dir, &n->transport), 0);
    raft_uv_set_connect_retry_delay(&n->io, 100);
    assert_int_equal(raft_init(&n->raft, &n->io, &n->fsm, n->id, n->addr), 0);
    raft_set_election_timeout(&n->raft, 300);
    raft_set_heartbeat_timeout(&n->raft, 50);
    assert_int_equal(raft_bootstrap(&n->raft, conf), 0);
    assert_int_equal(raft_start(&n->raft), 0);
}

static void node_closed_cb(struct raft *r)
{
    struct node *n = r->data;
    raft_uv_close(&n->io);
    cluster_tls_transport_close(&n->transport);
    n->closed = true;
}

static bool all_closed(void *arg)
{
    (void)arg;
    for (int i = 0; i < N_NODES; i++) {
        if (!nodes[i].closed) {
            return false;
        }
    }
    return true;
}

static struct node *leader(void)
{
    for (int i = 0; i < N_NODES; i++) {
        if (raft_state(&nodes[i].raft) == RAFT_LEADER) {
            return &nodes[i];
        }
    }
    return NULL;
}

/* A leader that every node knows. */
static bool have_leader(void *arg)
{
    struct node *l = leader();
    (void)arg;
    if (l == NULL) {
        return false;
    }
    for (int i = 0; i < N_NODES; i++) {
        raft_id id;
        const char *addr;
        raft_leader(&nodes[i].raft, &id, &addr);
        if (id != l->id) {
            return false;
        }
    }
    return true;
}

static int group_setup(void **state)
{
    struct raft_configuration conf;
    (void)state;

    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rota-tls-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    if (!plain_mode) {
        assert_int_equal(make_ca("ca1"), 0);
        assert_int_equal(make_ca("ca2"), 0);
        assert_int_equal(make_leaf("node", "ca1", "127.0.0.1"), 0);
        assert_int_equal(make_leaf("other", "ca2", "127.0.0.1"), 0);
        assert_int_equal(make_leaf("wrongip", "ca1", "127.0.0.2"), 0);
    }

    assert_int_equal(uv_loop_init(&loop), 0);
    raft_configuration_init(&conf);
    for (int i = 0; i < N_NODES; i++) {
        struct node *n = &nodes[i];
        memset(n, 0, sizeof *n);
        n->id = (raft_id)(i + 1);
        snprintf(n->addr, sizeof n->addr, "127.0.0.1:%d", free_port());
        snprintf(n->dir, sizeof n->dir, "%s/raft%d", tmpdir, i + 1);
        assert_int_equal(
            raft_configuration_add(&conf, n->id, n->addr, RAFT_VOTER), 0);
    }
    for (int i = 0; i < N_NODES; i++) {
        node_start(&nodes[i], &conf);
        nodes[i].raft.data = &nodes[i];
    }
    raft_configuration_close(&conf);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < N_NODES; i++) {
        raft_close(&nodes[i].raft, node_closed_cb);
    }
    assert_true(run_until(all_closed, NULL, 5000));
    for (int i = 0; i < 200 && uv_loop_alive(&loop); i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
    assert_int_equal(uv_loop_close(&loop), 0);
    sh("rm -rf %s", tmpdir);
    return 0;
}

static struct cluster_tls_transport_stats stats_of(struct node *n)
{
    struct cluster_tls_transport_stats s;
    cluster_tls_transport_stats(&n->transport, &s);
    return s;
}

/* ---- Raw clients (in a thread: blocking sockets, bounded) --------------- */

struct client
{
    int port;
    bool tls;
    const char *cert; /* NULL: no client certificate. */
    const char *key;
    unsigned char payload[256];
    size_t len;
    unsigned hold_ms; /* How long to wait for the server to close. */
    /* Results. */
    bool connected;
    bool handshake_ok;
    bool closed_by_peer;
    int done;
};

static int tcp_dial(int port, unsigned timeout_ms)
{
    struct sockaddr_in sa;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    int fd = tcp_dial(c->port, c->hold_ms);
    char buf[256];

    if (fd < 0) {
        goto out;
    }
    c->connected = true;
    if (!c->tls) {
        ssize_t r;
        if (send(fd, c->payload, c->len, MSG_NOSIGNAL) != (ssize_t)c->len) {
            c->closed_by_peer = true;
        } else {
            while ((r = recv(fd, buf, sizeof buf, 0)) > 0) {
            }
            /* 0: EOF; ECONNRESET: reset; EAGAIN: still open at timeout. */
            c->closed_by_peer = r == 0 || (r < 0 && errno != EAGAIN);
        }
    } else {
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        SSL *ssl;
        int r;
        SSL_CTX_load_verify_locations(ctx, path("ca1.crt"), NULL);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (c->cert != NULL) {
            SSL_CTX_use_certificate_file(ctx, c->cert, SSL_FILETYPE_PEM);
            SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM);
        }
        ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        /* TLS 1.3: the client's handshake ends before the server has
         * judged its certificate; a refusal shows on the next read. */
        c->handshake_ok = SSL_connect(ssl) == 1;
        if (c->handshake_ok && SSL_write(ssl, c->payload, (int)c->len) > 0) {
            while ((r = SSL_read(ssl, buf, sizeof buf)) > 0) {
            }
            /* A read timeout shows as WANT_READ (or SYSCALL, EAGAIN). */
            int e = SSL_get_error(ssl, r);
            c->closed_by_peer = !(e == SSL_ERROR_WANT_READ ||
                                  (e == SSL_ERROR_SYSCALL &&
                                   (errno == EAGAIN || errno == EWOULDBLOCK)));
        } else {
            c->closed_by_peer = true;
        }
        SSL_free(ssl);
        SSL_CTX_free(ctx);
        ERR_clear_error();
    }
    close(fd);
out:
    __atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static bool client_done(void *arg)
{
    struct client *c = arg;
    return __atomic_load_n(&c->done, __ATOMIC_SEQ_CST) != 0;
}

/* Run @c against the loop (raft keeps running meanwhile). */
static void run_client(struct client *c)
{
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, client_main, c), 0);
    assert_true(run_until(client_done, c, c->hold_ms + 3000));
    pthread_join(th, NULL);
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

/* raft's transport handshake as id 99 at 127.0.0.1:1, then a RequestVote
 * for @term with the disrupt-leader flag. */
static void forge_vote(struct client *c, uint64_t term)
{
    unsigned char *p = c->payload;
    memset(c->payload, 0, sizeof c->payload);
    put64(p, 1);       /* Protocol. */
    put64(p + 8, 99);  /* Server id. */
    put64(p + 16, 16); /* Address length, padded. */
    memcpy(p + 24, "127.0.0.1:1", 11);
    p += 40;
    put64(p, RAFT_IO_REQUEST_VOTE);
    put64(p + 8, 40);
    put64(p + 16, term);
    put64(p + 24, 99);      /* Candidate. */
    put64(p + 32, 1000000); /* Last log index. */
    put64(p + 40, term);    /* Last log term. */
    put64(p + 48, 1);       /* Flags: disrupt leader. */
    c->len = 40 + 56;
}

/* ---- Tests -------------------------------------------------------------- */

static bool both_applied(void *arg)
{
    (void)arg;
    for (int i = 0; i < N_NODES; i++) {
        if (nodes[i].applied < 1 || nodes[i].last != 42) {
            return false;
        }
    }
    return true;
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    (void)result;
    *(int *)req->data = status == 0 ? 1 : -1;
}

static void test_leader_elected_and_entry_applied(void **state)
{
    struct raft_apply req;
    struct raft_buffer buf;
    uint64_t v = 42;
    int applied = 0;
    struct node *l;
    (void)state;

    assert_true(run_until(have_leader, NULL, 5000));
    l = leader();
    buf.len = 8;
    buf.base = raft_malloc(8);
    memcpy(buf.base, &v, 8);
    req.data = &applied;
    assert_int_equal(raft_apply(&l->raft, &req, &buf, 1, apply_cb), 0);
    assert_true(run_until(both_applied, NULL, 5000));
    run_until(NULL, NULL, 50);
    assert_int_equal(applied, 1);
    for (int i = 0; i < N_NODES; i++) {
        struct cluster_tls_transport_stats s = stats_of(&nodes[i]);
        assert_true(s.accepted >= 1);
        assert_true(s.connected >= 1);
        assert_int_equal(s.refused, 0);
    }
}

static int port_of(struct node *n)
{
    return atoi(strrchr(n->addr, ':') + 1);
}

/* Send @c to the leader; it must be refused and no term may change. */
static void expect_refused(struct client *c)
{
    struct node *l;
    uint64_t terms[N_NODES];
    uint64_t refused;

    assert_true(run_until(have_leader, NULL, 5000));
    l = leader();
    for (int i = 0; i < N_NODES; i++) {
        terms[i] = nodes[i].raft.current_term;
    }
    refused = stats_of(l).refused;
    c->port = port_of(l);
    c->hold_ms = 2000;
    forge_vote(c, terms[0] + 100);
    run_client(c);
    run_until(NULL, NULL, 300);
    assert_true(c->connected);
    assert_true(c->closed_by_peer);
    assert_int_equal(stats_of(l).refused, refused + 1);
    assert_ptr_equal(leader(), l);
    for (int i = 0; i < N_NODES; i++) {
        assert_int_equal(nodes[i].raft.current_term, terms[i]);
    }
}

static void test_plain_tcp_dropped(void **state)
{
    struct client c;
    (void)state;
    memset(&c, 0, sizeof c);
    c.tls = false;
    expect_refused(&c);
}

static void test_other_ca_refused(void **state)
{
    struct client c;
    (void)state;
    memset(&c, 0, sizeof c);
    c.tls = true;
    c.cert = path("other.crt");
    c.key = path("other.key");
    expect_refused(&c);
}

static void test_no_client_cert_refused(void **state)
{
    struct client c;
    (void)state;
    memset(&c, 0, sizeof c);
    c.tls = true;
    expect_refused(&c);
}

/* A silent peer is closed at the handshake deadline. */
static void test_silent_peer_times_out(void **state)
{
    struct node *l;
    uint64_t refused;
    int fd;
    char b;
    struct timeval tv = {0, 0};
    ssize_t r;
    (void)state;

    assert_true(run_until(have_leader, NULL, 5000));
    l = leader();
    refused = stats_of(l).refused;
    fd = tcp_dial(port_of(l), 100);
    assert_true(fd >= 0);
    run_until(NULL, NULL, TLS_TRANSPORT_HANDSHAKE_MS + 500);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    r = recv(fd, &b, 1, MSG_DONTWAIT);
    assert_true(r == 0 || (r < 0 && errno != EAGAIN));
    close(fd);
    assert_int_equal(stats_of(l).refused, refused + 1);
}

/* ---- The transport alone ------------------------------------------------ */

struct tside
{
    struct raft_uv_transport t;
    struct raft_uv_connect req;
    uv_stream_t *in;  /* Accepted stream. */
    uv_stream_t *out; /* Connected stream. */
    raft_id in_id;
    char in_addr[64];
    char addr[32];
    int connect_status;
    bool connect_fired;
    bool closed;
};

static void side_accept_cb(struct raft_uv_transport *t,
                           raft_id id,
                           const char *address,
                           struct uv_stream_s *stream)
{
    struct tside *s = t->data;
    s->in = stream;
    s->in_id = id;
    snprintf(s->in_addr, sizeof s->in_addr, "%s", address);
}

static void side_connect_cb(struct raft_uv_connect *req,
                            struct uv_stream_s *stream,
                            int status)
{
    struct tside *s = req->data;
    s->connect_fired = true;
    s->connect_status = status;
    s->out = stream;
}

static void side_closed_cb(struct raft_uv_transport *t)
{
    struct tside *s = t->data;
    s->closed = true;
}

static void stream_closed_cb(uv_handle_t *h)
{
    raft_free(h);
}

/* A transport with @name's certificate trusting @ca, listening or not. */
static void side_start(struct tside *s,
                       raft_id id,
                       const char *ca,
                       const char *name,
                       bool listen)
{
    char errmsg[256];
    char crt[64];
    char key[64];

    memset(s, 0, sizeof *s);
    snprintf(crt, sizeof crt, "%s.crt", name);
    snprintf(key, sizeof key, "%s.key", name);
    snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", free_port());
    assert_int_equal(
        cluster_tls_transport_init(&s->t, &loop, path(ca), path(crt), path(key),
                                   errmsg, sizeof errmsg),
        0);
    s->t.data = s;
    s->req.data = s;
    assert_int_equal(s->t.init(&s->t, id, s->addr), 0);
    if (listen) {
        assert_int_equal(s->t.listen(&s->t, side_accept_cb), 0);
    }
}

static bool side_both_closed(void *arg)
{
    struct tside *s = arg;
    return s[0].closed && s[1].closed;
}

static void sides_stop(struct tside *s)
{
    for (int i = 0; i < 2; i++) {
        if (s[i].in != NULL) {
            uv_close((uv_handle_t *)s[i].in, stream_closed_cb);
        }
        if (s[i].out != NULL) {
            uv_close((uv_handle_t *)s[i].out, stream_closed_cb);
        }
        s[i].t.close(&s[i].t, side_closed_cb);
    }
    assert_true(run_until(side_both_closed, s, 5000));
    for (int i = 0; i < 2; i++) {
        struct cluster_tls_transport_stats st;
        cluster_tls_transport_stats(&s[i].t, &st);
        assert_int_equal(st.open, 0);
        cluster_tls_transport_close(&s[i].t);
    }
}

static bool connect_fired(void *arg)
{
    return ((struct tside *)arg)->connect_fired;
}

/* Dial s[0] from s[1]; the connect status. */
static int dial(struct tside *s)
{
    assert_int_equal(
        s[1].t.connect(&s[1].t, &s[1].req, 1, s[0].addr, side_connect_cb), 0);
    assert_true(run_until(connect_fired, &s[1], 5000));
    return s[1].connect_status;
}

/* The connecting side refuses a server whose certificate is from another
 * CA: raft gets RAFT_NOCONNECTION, the server's raft nothing. */
static void test_connect_to_other_ca_refused(void **state)
{
    struct tside s[2];
    struct cluster_tls_transport_stats st;
    (void)state;

    side_start(&s[0], 1, "ca2.crt", "other", true);
    side_start(&s[1], 2, "ca1.crt", "node", false);
    assert_int_equal(dial(s), RAFT_NOCONNECTION);
    assert_null(s[1].out);
    run_until(NULL, NULL, 200);
    assert_null(s[0].in);
    cluster_tls_transport_stats(&s[1].t, &st);
    assert_int_equal(st.connect_failed, 1);
    assert_int_equal(st.connected, 0);
    sides_stop(s);
}

/* A TLS server in a thread with a certificate of the cluster CA whose IP
 * SAN (127.0.0.2) is not the address dialled (127.0.0.1). */
struct raw_server
{
    int fd;
    int done;
};

static void *raw_server_main(void *arg)
{
    struct raw_server *rs = arg;
    struct pollfd pfd = {rs->fd, POLLIN, 0};
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    char buf[64];

    SSL_CTX_load_verify_locations(ctx, path("ca1.crt"), NULL);
    SSL_CTX_use_certificate_file(ctx, path("wrongip.crt"), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(ctx, path("wrongip.key"), SSL_FILETYPE_PEM);
    if (poll(&pfd, 1, 3000) == 1) {
        int fd = accept(rs->fd, NULL, NULL);
        struct timeval tv = {3, 0};
        SSL *ssl = SSL_new(ctx);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1) {
            while (SSL_read(ssl, buf, sizeof buf) > 0) {
            }
        }
        SSL_free(ssl);
        close(fd);
    }
    SSL_CTX_free(ctx);
    ERR_clear_error();
    __atomic_store_n(&rs->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static bool raw_server_done(void *arg)
{
    return __atomic_load_n(&((struct raw_server *)arg)->done,
                           __ATOMIC_SEQ_CST) != 0;
}

static void test_connect_ip_san_mismatch_refused(void **state)
{
    struct tside s[2];
    struct raw_server rs = {-1, 0};
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    pthread_t th;
    (void)state;

    rs.fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(rs.fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(rs.fd, 1), 0);
    assert_int_equal(getsockname(rs.fd, (struct sockaddr *)&sa, &len), 0);
    assert_int_equal(pthread_create(&th, NULL, raw_server_main, &rs), 0);

    /* s[0] only lends its address slot: dial the raw server. */
    side_start(&s[0], 1, "ca1.crt", "node", false);
    side_start(&s[1], 2, "ca1.crt", "node", false);
    snprintf(s[0].addr, sizeof s[0].addr, "127.0.0.1:%d",
             (int)ntohs(sa.sin_port));
    assert_int_equal(dial(s), RAFT_NOCONNECTION);
    assert_null(s[1].out);
    assert_true(run_until(raw_server_done, &rs, 5000));
    pthread_join(th, NULL);
    close(rs.fd);
    sides_stop(s);
}

#define BULK (16u << 20)

struct bulk
{
    unsigned char *data;
    size_t got;
    bool bad;
    bool write_done;
    int write_status;
};

static void bulk_alloc(uv_handle_t *h, size_t n, uv_buf_t *buf)
{
    static char b[65536];
    (void)h;
    (void)n;
    buf->base = b;
    buf->len = sizeof b;
}

static void bulk_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct bulk *b = st->data;
    if (n <= 0) {
        return;
    }
    if (b->got + (size_t)n > BULK ||
        memcmp(b->data + b->got, buf->base, (size_t)n) != 0) {
        b->bad = true;
    }
    b->got += (size_t)n;
}

static void bulk_written(uv_write_t *w, int status)
{
    struct bulk *b = w->data;
    b->write_done = true;
    b->write_status = status;
}

static bool bulk_received(void *arg)
{
    struct bulk *b = arg;
    return b->write_done && b->got == BULK;
}

static bool accepted(void *arg)
{
    return ((struct tside *)arg)->in != NULL;
}

/* 16 MiB through the tunnel while the receiver does not read: every queue
 * stays under its bound (the writer is held back), then it all arrives,
 * in order, once the receiver reads. Also: raft's transport handshake is
 * delivered (id and address of the dialler). */
static void test_bulk_backpressure(void **state)
{
    struct tside s[2];
    struct cluster_tls_transport_stats st[2];
    struct bulk b;
    uv_write_t w;
    uv_buf_t buf;
    (void)state;

    side_start(&s[0], 1, "ca1.crt", "node", true);
    side_start(&s[1], 2, "ca1.crt", "node", false);
    assert_int_equal(dial(s), 0);
    assert_non_null(s[1].out);
    assert_true(run_until(accepted, &s[0], 5000));
    assert_int_equal(s[0].in_id, 2);
    assert_string_equal(s[0].in_addr, s[1].addr);

    memset(&b, 0, sizeof b);
    b.data = malloc(BULK);
    assert_non_null(b.data);
    for (size_t i = 0; i < BULK; i++) {
        b.data[i] = (unsigned char)(i * 7 % 251);
    }
    buf = uv_buf_init((char *)b.data, BULK);
    w.data = &b;
    assert_int_equal(uv_write(&w, s[1].out, &buf, 1, bulk_written), 0);
    run_until(NULL, NULL, 1500);
    assert_false(b.write_done);
    for (int i = 0; i < 2; i++) {
        cluster_tls_transport_stats(&s[i].t, &st[i]);
        assert_true(st[i].tcp_queue_max <=
                    TLS_TRANSPORT_QUEUE_MAX + 128 * 1024);
        assert_true(st[i].pipe_queue_max <=
                    TLS_TRANSPORT_QUEUE_MAX + 128 * 1024);
    }
    assert_true(st[0].pipe_queue_max >= TLS_TRANSPORT_QUEUE_MAX);
    fprintf(stderr,
            "bulk held: receiver pipe queue max %llu, sender tcp queue max "
            "%llu\n",
            (unsigned long long)st[0].pipe_queue_max,
            (unsigned long long)st[1].tcp_queue_max);

    s[0].in->data = &b;
    assert_int_equal(uv_read_start(s[0].in, bulk_alloc, bulk_read), 0);
    assert_true(run_until(bulk_received, &b, 10000));
    assert_int_equal(b.write_status, 0);
    assert_false(b.bad);
    uv_read_stop(s[0].in);
    free(b.data);
    sides_stop(s);
}

/* The same forged vote with a certificate of the cluster CA reaches raft:
 * the leader steps down (last: it disrupts the cluster). */
static void test_right_ca_accepted(void **state)
{
    struct client c;
    struct node *l;
    uint64_t term;
    uint64_t accepted;
    (void)state;

    assert_true(run_until(have_leader, NULL, 5000));
    l = leader();
    term = l->raft.current_term;
    accepted = stats_of(l).accepted;
    memset(&c, 0, sizeof c);
    c.tls = true;
    c.cert = path("node.crt");
    c.key = path("node.key");
    c.port = port_of(l);
    c.hold_ms = 1000;
    forge_vote(&c, term + 100);
    run_client(&c);
    assert_true(c.handshake_ok);
    assert_false(c.closed_by_peer);
    assert_int_equal(stats_of(l).accepted, accepted + 1);
    assert_true(l->raft.current_term >= term + 100);
    /* The cluster recovers. */
    assert_true(run_until(have_leader, NULL, 5000));
}

/* ---- Plain mode (--insecure) --------------------------------------------
 * The same two raft nodes over cluster_plain_transport_init: no TLS, but
 * the handshake deadline, the pending cap and refusals. */

static int plain_group_setup(void **state)
{
    plain_mode = true;
    return group_setup(state);
}

/* Bytes that are not raft's handshake (protocol 7) are refused and reach
 * no raft: no term changes. */
static void test_plain_garbage_refused(void **state)
{
    struct client c;
    struct node *l;
    uint64_t terms[N_NODES];
    uint64_t refused;
    (void)state;

    assert_true(run_until(have_leader, NULL, 5000));
    l = leader();
    for (int i = 0; i < N_NODES; i++) {
        terms[i] = nodes[i].raft.current_term;
    }
    refused = stats_of(l).refused;
    memset(&c, 0, sizeof c);
    forge_vote(&c, terms[0] + 100);
    put64(c.payload, 7); /* Not raft's protocol 1. */
    c.port = port_of(l);
    c.hold_ms = 2000;
    run_client(&c);
    run_until(NULL, NULL, 300);
    assert_true(c.connected);
    assert_true(c.closed_by_peer);
    assert_int_equal(stats_of(l).refused, refused + 1);
    assert_ptr_equal(leader(), l);
    for (int i = 0; i < N_NODES; i++) {
        assert_int_equal(nodes[i].raft.current_term, terms[i]);
    }
}

/* More than TLS_TRANSPORT_MAX_PENDING silent connections: the excess is
 * refused at once, the rest at the deadline; raft keeps its leader. */
static void test_plain_pending_cap(void **state)
{
    enum { N = TLS_TRANSPORT_MAX_PENDING + 8 };
    int fds[N];
    struct node *l;
    uint64_t refused;
    uint64_t term;
    (void)state;

    assert_true(run_until(have_leader, NULL, 5000));
    l = leader();
    term = l->raft.current_term;
    refused = stats_of(l).refused;
    for (int i = 0; i < N; i++) {
        fds[i] = tcp_dial(port_of(l), 1000);
        assert_true(fds[i] >= 0);
    }
    run_until(NULL, NULL, 500);
    assert_int_equal(stats_of(l).refused, refused + 8);
    run_until(NULL, NULL, TLS_TRANSPORT_HANDSHAKE_MS);
    assert_int_equal(stats_of(l).refused, refused + N);
    for (int i = 0; i < N; i++) {
        char b;
        ssize_t r = recv(fds[i], &b, 1, MSG_DONTWAIT);
        assert_true(r == 0 || (r < 0 && errno != EAGAIN));
        close(fds[i]);
    }
    assert_ptr_equal(leader(), l);
    assert_int_equal(l->raft.current_term, term);
}

/* Raft's handshake and a message in one segment: the transport reads the
 * handshake only, raft gets the message (the leader steps down; last). */
static void test_plain_handshake_then_message(void **state)
{
    struct client c;
    struct node *l;
    uint64_t term;
    uint64_t accepted;
    (void)state;

    assert_true(run_until(have_leader, NULL, 5000));
    l = leader();
    term = l->raft.current_term;
    accepted = stats_of(l).accepted;
    memset(&c, 0, sizeof c);
    c.port = port_of(l);
    c.hold_ms = 1000;
    forge_vote(&c, term + 100);
    run_client(&c);
    assert_false(c.closed_by_peer);
    assert_int_equal(stats_of(l).accepted, accepted + 1);
    assert_true(l->raft.current_term >= term + 100);
    assert_true(run_until(have_leader, NULL, 5000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leader_elected_and_entry_applied),
        cmocka_unit_test(test_plain_tcp_dropped),
        cmocka_unit_test(test_other_ca_refused),
        cmocka_unit_test(test_no_client_cert_refused),
        cmocka_unit_test(test_silent_peer_times_out),
        cmocka_unit_test(test_connect_to_other_ca_refused),
        cmocka_unit_test(test_connect_ip_san_mismatch_refused),
        cmocka_unit_test(test_bulk_backpressure),
        cmocka_unit_test(test_right_ca_accepted),
    };
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_leader_elected_and_entry_applied),
        cmocka_unit_test(test_silent_peer_times_out),
        cmocka_unit_test(test_plain_garbage_refused),
        cmocka_unit_test(test_plain_pending_cap),
        cmocka_unit_test(test_plain_handshake_then_message),
    };
    int failed =
        cmocka_run_group_tests_name("tls", tests, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("plain", plain, plain_group_setup,
                                          group_teardown);
    return failed;
}
