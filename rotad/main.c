/* rotad: one scheduler node, and the composition root: it builds the
 * cluster (raft + fsm), the leader's services on it (sched/, given the
 * cluster, the wall clock and a random source through sched_io), then the
 * HTTP API on both. Everything shares one libuv loop (docs/architecture.md).
 * SIGTERM/SIGINT stop it in the reverse order: the services answer their
 * waiting requests, the HTTP server closes, the cluster closes; then, with
 * the loop stopped, each part frees what it owns and the loop closes (every
 * allocation freed: the ASan tests run with leak detection). */

#include <curl/curl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <uv.h>

#define LOG_MODULE "main"
#include "cluster/cluster.h"
#include "cluster/recover.h"
#include "common/clock.h"
#include "common/log.h"
#include "http/http.h"
#include "rotad/config.h"
#include "sched/sched.h"

struct node
{
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    uv_timer_t tick;
    uv_timer_t insecure; /* --insecure: the warning every minute. */
    char ca[1100], cert[1100], key[1100]; /* Secure mode: in --certs-dir. */
    struct cluster *cluster;
    struct sched *sched;
    struct http_server *http;
    uint64_t rng; /* xorshift64* state, seeded from getrandom(). */
    bool stopping;
};

/* ---- sched_io: what the leader's services get from outside ------------- */

static int io_submit(void *data,
                     const void *cmd,
                     size_t len,
                     sched_submit_cb cb,
                     void *cb_data)
{
    struct node *n = data;
    return cluster_submit(n->cluster, cmd, len, cb, cb_data);
}

static bool io_is_leader(void *data)
{
    struct node *n = data;
    return cluster_is_leader(n->cluster);
}

static struct fsm *io_fsm(void *data)
{
    struct node *n = data;
    return cluster_fsm(n->cluster);
}

static int64_t io_now(void *data)
{
    (void)data;
    return clock_now_ms();
}

static uint64_t io_random(void *data)
{
    struct node *n = data;
    n->rng ^= n->rng >> 12;
    n->rng ^= n->rng << 25;
    n->rng ^= n->rng >> 27;
    return n->rng * 0x2545F4914F6CDD1DULL;
}

/* --insecure is said out loud, at start and every minute. */
static void insecure_warning(uv_timer_t *timer)
{
    (void)timer;
    LOG(LOG_WARN, "insecure mode",
        "tls=off acl=off reason=\"started with --insecure: anyone who reaches "
        "the raft or HTTP port can write to the cluster and run jobs\"");
}

/* The node certificate must be valid now: peers would refuse it anyway,
 * with a less clear message in their logs. */
static int cert_in_date(const char *path, char *err, size_t size)
{
    FILE *f = fopen(path, "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    int rv = 0;

    if (f != NULL) {
        fclose(f);
    }
    if (x == NULL) {
        snprintf(err, size, "certs-dir: %.300s is not a PEM certificate", path);
        return -1;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
        snprintf(err, size,
                 "certs-dir: %.300s has expired: make a new one (rotactl cert "
                 "create-node --overwrite)",
                 path);
        rv = -1;
    } else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
        snprintf(err, size,
                 "certs-dir: %.300s is not valid yet (check the clock)", path);
        rv = -1;
    }
    X509_free(x);
    return rv;
}

/* Secure mode: the files of --certs-dir, which must all be readable. */
static int secure_paths(struct node *n,
                        const struct rotad_config *cfg,
                        char *err,
                        size_t size)
{
    struct
    {
        char *buf;
        const char *name;
    } files[3] = {
        {n->ca, "ca.crt"}, {n->cert, "node.crt"}, {n->key, "node.key"}};
    if (cfg->insecure) {
        return 0;
    }
    for (int i = 0; i < 3; i++) {
        snprintf(files[i].buf, sizeof n->ca, "%s/%s", cfg->certs_dir,
                 files[i].name);
        if (access(files[i].buf, R_OK) != 0) {
            snprintf(err, size,
                     "certs-dir: %s cannot be read (rotactl cert create-ca / "
                     "create-node --certs-dir %s)",
                     files[i].buf, cfg->certs_dir);
            return -1;
        }
    }
    return cert_in_date(n->cert, err, size);
}

static void tick_cb(uv_timer_t *timer)
{
    struct node *n = timer->data;
    sched_tick(n->sched);
}

static int start_sched(struct node *n, const struct rotad_config *cfg)
{
    struct sched_io io = {n,      io_submit, io_is_leader,
                          io_fsm, io_now,    io_random};
    struct sched_config sc;
    int rv;

    if (getrandom(&n->rng, sizeof n->rng, 0) != sizeof n->rng) {
        n->rng = (uint64_t)clock_now_ms();
    }
    n->rng |= 1; /* xorshift needs a non-zero state. */
    memset(&sc, 0, sizeof sc);
    sc.worker_ttl_ms = cfg->worker_ttl;
    sc.aging_s = cfg->priority_aging;
    sc.retention_s[0] = cfg->retention_completed;
    sc.retention_s[1] = cfg->retention_failed;
    sc.retention_s[2] = cfg->retention_cancelled;
    rv = sched_create(&io, &sc, &n->sched);
    if (rv != 0) {
        return rv;
    }
    uv_timer_init(&n->loop, &n->tick);
    n->tick.data = n;
    return uv_timer_start(&n->tick, tick_cb, SCHED_TICK_MS, SCHED_TICK_MS);
}

static void cluster_closed_cb(void *data)
{
    struct node *n = data;
    uv_stop(&n->loop);
}

static void http_closed_cb(void *data)
{
    struct node *n = data;
    cluster_close(n->cluster, cluster_closed_cb, n);
}

static void signal_cb(uv_signal_t *handle, int signum)
{
    struct node *n = handle->data;
    if (n->stopping) {
        return;
    }
    n->stopping = true;
    LOG(LOG_INFO, "stopping", "signal=%d", signum);
    uv_signal_stop(&n->sigterm);
    uv_signal_stop(&n->sigint);
    uv_close((uv_handle_t *)&n->sigterm, NULL);
    uv_close((uv_handle_t *)&n->sigint, NULL);
    uv_timer_stop(&n->tick);
    uv_close((uv_handle_t *)&n->tick, NULL);
    if (uv_is_active((uv_handle_t *)&n->insecure)) {
        uv_timer_stop(&n->insecure);
        uv_close((uv_handle_t *)&n->insecure, NULL);
    }
    sched_stop(n->sched); /* Answers waiting polls while HTTP still runs. */
    if (n->http != NULL) {
        http_server_close(n->http, http_closed_cb, n);
    } else {
        http_closed_cb(n);
    }
}

/* Last resort: a handle its owner did not close. */
static void close_leftover(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (!uv_is_closing(handle)) {
        LOG(LOG_WARN, "handle left open", "type=%s",
            uv_handle_type_name(uv_handle_get_type(handle)));
        uv_close(handle, NULL);
    }
}

static void close_loop(uv_loop_t *loop)
{
    int rv;
    uv_walk(loop, close_leftover, NULL);
    uv_run(loop, UV_RUN_DEFAULT); /* Only close callbacks are left. */
    rv = uv_loop_close(loop);
    if (rv != 0) {
        LOG(LOG_ERROR, "loop close failed", "err=\"%s\"", uv_strerror(rv));
    }
}

int main(int argc, char **argv)
{
    struct rotad_config cfg;
    struct cluster_config cc;
    struct http_config hc;
    /* Static: after a failed start (a refused --restore file, a port in
     * use) the process exits at once; what the parts built so far hold
     * stays reachable from here until then (no leak reports under ASan). */
    static struct node n;
    char err[512];
    int rv;

    log_init();
    log_fatal_signals();
    rv = rotad_config_load(&cfg, argc, argv, err, sizeof err);
    if (rv == 1) {
        rotad_config_usage(stdout);
        rotad_config_close(&cfg);
        return 0;
    }
    if (rv != 0) {
        fprintf(stderr, "rotad: %s\n", err);
        rotad_config_close(&cfg); /* What was set before the bad value. */
        return 2;
    }
    log_level = cfg.log_level;
    log_node_id = cfg.id;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    memset(&n, 0, sizeof n);
    uv_loop_init(&n.loop);
    memset(&cc, 0, sizeof cc);
    cc.id = cfg.id;
    cc.data_dir = cfg.data_dir;
    cc.raft_addr = cfg.raft_addr;
    cc.http_addr = cfg.http_advertise; /* What peers forward to. */
    cc.cluster = cfg.cluster;
    cc.join = cfg.join;
    cc.snapshot_threshold = cfg.snapshot_threshold;
    cc.snapshot_trailing = cfg.snapshot_trailing;
    cc.install_snapshot_timeout = cfg.install_snapshot_timeout;
    cc.election_timeout = cfg.election_timeout;
    cc.heartbeat_timeout = cfg.heartbeat_timeout;
    cc.forward_timeout = cfg.forward_timeout;
    cc.max_inflight = cfg.max_inflight;
    cc.batch_linger_us = cfg.batch_linger;
    cc.state_map_size = cfg.state_map_size;
    /* Both rebuild the state from the snapshot they start from. */
    cc.discard_state = cfg.restore != NULL     ? "restore"
                       : cfg.force_new_cluster ? "force-new-cluster"
                                               : NULL;
    if (secure_paths(&n, &cfg, err, sizeof err) != 0) {
        LOG(LOG_ERROR, "start failed", "err=\"%s\"", err);
        rotad_config_close(&cfg);
        return 1;
    }
    if (!cfg.insecure) {
        cc.tls_ca = n.ca;
        cc.tls_cert = n.cert;
        cc.tls_key = n.key;
    }
    rv = cluster_create(&n.loop, &cc, &n.cluster, err, sizeof err);
    if (rv == 0 && cfg.restore != NULL) {
        rv = cluster_restore_file(n.cluster, cfg.restore, err, sizeof err);
    } else if (rv == 0 && cfg.force_new_cluster) {
        rv = cluster_force_new(n.cluster, err, sizeof err);
    }
    if (rv == 0) {
        rv = cluster_start(n.cluster, err, sizeof err);
    }
    if (rv != 0) {
        LOG(LOG_ERROR, "start failed", "err=\"%s\"", err);
        rotad_config_close(&cfg);
        return 1;
    }
    rv = start_sched(&n, &cfg);
    if (rv != 0) {
        LOG(LOG_ERROR, "start failed", "err=\"leader services: %d\"", rv);
        rotad_config_close(&cfg);
        return 1;
    }
    memset(&hc, 0, sizeof hc);
    hc.addr = cfg.http_addr;
    hc.max_body = cfg.max_body;
    hc.max_payload = cfg.max_payload;
    hc.leader_hold = cfg.leader_hold;
    hc.write_timeout_ms = cfg.write_timeout;
    if (!cfg.insecure) {
        hc.tls_ca = n.ca;
        hc.tls_cert = n.cert;
        hc.tls_key = n.key;
    }
    /* Access control: on in secure mode, off with --insecure unless --acl. */
    hc.acl = !cfg.insecure || cfg.acl != 0;
    hc.metrics_public = cfg.metrics_public != 0;
    hc.cors_origins = cfg.cors_origins;
    rv = http_server_start(&n.loop, n.cluster, n.sched, &hc, &n.http, err,
                           sizeof err);
    if (rv != 0) {
        LOG(LOG_ERROR, "start failed", "err=\"%s\"", err);
        rotad_config_close(&cfg);
        return 1;
    }
    uv_signal_init(&n.loop, &n.sigterm);
    uv_signal_init(&n.loop, &n.sigint);
    n.sigterm.data = &n;
    n.sigint.data = &n;
    uv_signal_start(&n.sigterm, signal_cb, SIGTERM);
    uv_signal_start(&n.sigint, signal_cb, SIGINT);
    LOG(LOG_INFO, "started", "http=%s raft=%s data_dir=%s %s=%s mode=%s",
        cfg.http_addr, cfg.raft_addr, cfg.data_dir,
        cfg.join != NULL ? "join" : "cluster",
        cfg.join != NULL ? cfg.join : cfg.cluster,
        cfg.insecure ? "insecure" : "secure");
    if (cfg.insecure) {
        insecure_warning(&n.insecure);
        uv_timer_init(&n.loop, &n.insecure);
        uv_timer_start(&n.insecure, insecure_warning, 60000, 60000);
    }
    uv_run(&n.loop, UV_RUN_DEFAULT);
    http_server_destroy(n.http);
    while (http_snapshot_running()) {
        uv_run(&n.loop, UV_RUN_ONCE); /* It reads the fsm: let it end. */
    }
    sched_destroy(n.sched);
    /* Every close callback still queued (raft_uv's included) runs while
     * the cluster they point into is still there. */
    close_loop(&n.loop);
    cluster_destroy(n.cluster);
    rotad_config_close(&cfg);
    curl_global_cleanup();
    return 0;
}
