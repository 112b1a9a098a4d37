#ifndef HTTP_HTTP_H_
#define HTTP_HTTP_H_

/* The HTTP API (docs/api.md) served by h2o's libuv flavour on the node's
 * loop: JSON in → fsm command → cluster_submit() → JSON out. Writes on a
 * follower are forwarded to the leader. No raft_*, no mdb_* here. */

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "cluster/cluster.h"
#include "sched/sched.h"

struct http_config
{
    const char *addr;   /* "127.0.0.1:8001" */
    size_t max_body;    /* Request body limit (413 above). */
    size_t max_payload; /* Encoded job payload limit. */
    /* Milliseconds a request that needs the leader waits for one (http/
     * hold.c); 0: 503 at once. */
    unsigned leader_hold;
    /* Secure mode: HTTPS only, with this certificate and key; a client
     * certificate is asked for (not required) and checked against @tls_ca
     * (a node's own certificate identifies node-to-node calls). NULL: plain
     * HTTP (--insecure). */
    const char *tls_cert;
    const char *tls_key;
    const char *tls_ca;
    /* Access control (docs/api.md): every route with a role needs a
     * Bearer token of that role. On in secure mode; off with --insecure
     * (unless --acl). */
    bool acl;
    bool metrics_public; /* GET /metrics without a token even with acl. */
    /* Origins ("https://app.example:443,...") whose browser requests are
     * allowed besides the node's own; NULL: none. */
    const char *cors_origins;
    /* Output limits (docs/api.md "Limits: connections and responses"); 0
     * takes the default. A connection whose pending answer made no write
     * progress for @write_timeout_ms is closed (10000). A job list page
     * stops after the item that takes it past @page_max_bytes (4 MiB).
     * Answers over 64 KiB get 503 while answers of @max_buffered bytes in
     * all are waiting to be written (64 MiB). */
    unsigned write_timeout_ms;
    size_t page_max_bytes;
    size_t max_buffered;
};

struct http_server; /* Opaque. */

/* Listen on cfg->addr and serve, with the leader's services @sc (owned by
 * the caller: sched_stop() it before http_server_close()). Returns 0 or an
 * ERR_* code with @errmsg. */
int http_server_start(uv_loop_t *loop,
                      struct cluster *c,
                      struct sched *sc,
                      const struct http_config *cfg,
                      struct http_server **out,
                      char *errmsg,
                      size_t size);

/* Stop listening and close connections; @cb fires once the listener is
 * closed. From then on new requests get 503; the connections close once
 * their request in progress is answered. */
void http_server_close(struct http_server *s,
                       void (*cb)(void *data),
                       void *data);

/* After the loop stopped: run it until the last connection closed (2 s at
 * most), then free the h2o context and configuration and @s. */
void http_server_destroy(struct http_server *s);

/* True while a GET /v1/snapshot is being serialised in the thread pool
 * (http/snapshot.c): it reads the fsm, so run the loop until false before
 * the cluster closes it. */
bool http_snapshot_running(void);

#endif /* HTTP_HTTP_H_ */
