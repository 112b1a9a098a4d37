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
    /* Access control (docs/api.md): every route with a role needs a
     * Bearer token of that role. Off: no token is asked for (today's
     * behaviour; the coming secure mode turns it on by default). */
    bool acl;
    bool metrics_public; /* GET /metrics without a token even with acl. */
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

/* Stop listening and close connections; @cb fires once closed. */
void http_server_close(struct http_server *s,
                       void (*cb)(void *data),
                       void *data);

#endif /* HTTP_HTTP_H_ */
