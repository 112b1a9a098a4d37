/* Forwarding to the leader: a request a follower cannot serve goes to the
 * leader's HTTP address, learned from the replicated node table (NODE_SET),
 * through the loop's HTTP client (httpc.c). One hop at most: the HTTP
 * layer marks forwarded requests and a node that gets one while not
 * leading answers 503 instead of forwarding again. */

#include <stdio.h>

#include "cluster/internal.h"
#include "common/err.h"

#define ADDR_MAX 64

int cluster_forward(struct cluster *c,
                    const struct cluster_http_req *r,
                    cluster_http_cb cb,
                    void *data)
{
    char http[ADDR_MAX];
    char url[2048];
    uint64_t leader = cluster_leader(c, http, sizeof http);
    struct cluster_http_req fwd = *r;

    if (leader == 0 || http[0] == '\0') {
        return ERR_NOLEADER;
    }
    if (leader == c->cfg.id) {
        return ERR_NOTLEADER;
    }
    if (snprintf(url, sizeof url, "%s://%s%s", cluster_scheme(c), http,
                 r->url) >= (int)sizeof url) {
        return ERR_TOOLARGE;
    }
    fwd.url = url;
    fwd.timeout_ms = c->cfg.forward_timeout;
    return cluster_http_request(c, &fwd, cb, data);
}
