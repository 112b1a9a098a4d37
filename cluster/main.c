/* rotad: one scheduler node. Raft, the fsm and the HTTP API share one libuv
 * loop (DESIGN.md). SIGTERM/SIGINT stop it cleanly. */

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define LOG_MODULE "main"
#include "cluster/cluster.h"
#include "cluster/config.h"
#include "common/log.h"
#include "http/http.h"

struct node
{
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    struct cluster *cluster;
    struct http_server *http;
    bool stopping;
};

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
    if (n->http != NULL) {
        http_server_close(n->http, http_closed_cb, n);
    } else {
        http_closed_cb(n);
    }
}

int main(int argc, char **argv)
{
    struct rotad_config cfg;
    struct cluster_config cc;
    struct http_config hc;
    struct node n;
    char err[512];
    int rv;

    log_init();
    rv = rotad_config_load(&cfg, argc, argv, err, sizeof err);
    if (rv == 1) {
        rotad_config_usage(stdout);
        return 0;
    }
    if (rv != 0) {
        fprintf(stderr, "rotad: %s\n", err);
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
    cc.election_timeout = cfg.election_timeout;
    cc.heartbeat_timeout = cfg.heartbeat_timeout;
    cc.forward_timeout = cfg.forward_timeout;
    rv = cluster_create(&n.loop, &cc, &n.cluster, err, sizeof err);
    if (rv == 0) {
        rv = cluster_start(n.cluster, err, sizeof err);
    }
    if (rv != 0) {
        LOG(LOG_ERROR, "start failed", "err=\"%s\"", err);
        return 1;
    }
    hc.addr = cfg.http_addr;
    hc.max_body = cfg.max_body;
    hc.max_payload = cfg.max_payload;
    hc.worker_ttl = cfg.worker_ttl;
    hc.retention_s[0] = cfg.retention_completed;
    hc.retention_s[1] = cfg.retention_failed;
    hc.retention_s[2] = cfg.retention_cancelled;
    hc.aging_s = cfg.priority_aging;
    rv = http_server_start(&n.loop, n.cluster, &hc, &n.http, err, sizeof err);
    if (rv != 0) {
        LOG(LOG_ERROR, "start failed", "err=\"%s\"", err);
        return 1;
    }
    uv_signal_init(&n.loop, &n.sigterm);
    uv_signal_init(&n.loop, &n.sigint);
    n.sigterm.data = &n;
    n.sigint.data = &n;
    uv_signal_start(&n.sigterm, signal_cb, SIGTERM);
    uv_signal_start(&n.sigint, signal_cb, SIGINT);
    LOG(LOG_INFO, "started", "http=%s raft=%s data_dir=%s %s=%s", cfg.http_addr,
        cfg.raft_addr, cfg.data_dir, cfg.join != NULL ? "join" : "cluster",
        cfg.join != NULL ? cfg.join : cfg.cluster);
    uv_run(&n.loop, UV_RUN_DEFAULT);
    cluster_destroy(n.cluster);
    rotad_config_close(&cfg);
    curl_global_cleanup();
    return 0;
}
