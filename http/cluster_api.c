/* Cluster handlers: view, join (add node), remove, transfer, health,
 * readiness, digest, metrics and the dashboard page. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "http/internal.h"

/* ---- View --------------------------------------------------------------- */

struct node_addr
{
    uint64_t id;
    char raft[64];
    char http[64];
};

struct view
{
    struct node_addr addrs[64];
    unsigned n_addrs;
    json_t *nodes;
    uint64_t self;
};

static void addr_cb(void *data,
                    uint64_t id,
                    struct fsm_str raft_addr,
                    struct fsm_str http_addr)
{
    struct view *v = data;
    struct node_addr *a;
    if (v->n_addrs == sizeof v->addrs / sizeof v->addrs[0]) {
        return;
    }
    a = &v->addrs[v->n_addrs++];
    a->id = id;
    snprintf(a->raft, sizeof a->raft, "%.*s", (int)raft_addr.len, raft_addr.p);
    snprintf(a->http, sizeof a->http, "%.*s", (int)http_addr.len, http_addr.p);
}

static const char *http_of(struct view *v, uint64_t id)
{
    for (unsigned i = 0; i < v->n_addrs; i++) {
        if (v->addrs[i].id == id) {
            return v->addrs[i].http;
        }
    }
    return NULL;
}

static void member_cb(void *data, const struct cluster_member *m)
{
    struct view *v = data;
    const char *http = http_of(v, m->id);
    json_t *n = json_pack("{s:I,s:s,s:s?,s:s,s:b}", "id", (json_int_t)m->id,
                          "raft_addr", m->raft_addr, "http_addr", http, "role",
                          m->is_leader ? "leader"
                          : m->voter   ? "follower"
                                       : m->role,
                          "voter", m->voter);
    json_object_set_new(
        n, "applied_index",
        m->match_index >= 0 ? json_integer(m->match_index) : json_null());
    json_array_append_new(v->nodes, n);
}

void http__cluster_get(struct http_server *s,
                       h2o_req_t *req,
                       const struct http_args *a)
{
    struct view v;
    struct fsm_reader *rd;
    char leader_http[64];
    uint64_t leader;
    json_t *out, *lead = json_null();

    memset(&v, 0, sizeof v);
    v.self = cluster_id(s->cluster);
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) == 0) {
        fsm_nodes(rd, addr_cb, &v);
        fsm_read_end(rd);
    }
    v.nodes = json_array();
    cluster_members(s->cluster, member_cb, &v);
    leader = cluster_leader(s->cluster, leader_http, sizeof leader_http);
    if (leader != 0) {
        const char *raft = NULL;
        for (size_t i = 0; i < json_array_size(v.nodes); i++) {
            json_t *n = json_array_get(v.nodes, i);
            if ((uint64_t)json_integer_value(json_object_get(n, "id")) ==
                leader) {
                raft = json_string_value(json_object_get(n, "raft_addr"));
            }
        }
        lead = json_pack("{s:I,s:s?,s:s?}", "id", (json_int_t)leader,
                         "raft_addr", raft, "http_addr",
                         leader_http[0] != '\0' ? leader_http : NULL);
    }
    out = json_pack(
        "{s:I,s:I,s:o,s:o,s:I,s:I,s:b}", "self", (json_int_t)v.self, "term",
        (json_int_t)cluster_term(s->cluster), "leader", lead, "nodes", v.nodes,
        "applied_index", (json_int_t)cluster_applied_index(s->cluster),
        "commit_index", (json_int_t)cluster_commit_index(s->cluster), "secure",
        s->ssl_ctx != NULL);
    http__send_json(req, 200, out, cluster_applied_index(s->cluster));
}

/* ---- Membership changes ------------------------------------------------- */

static void change_done_cb(void *data, int status, const char *msg)
{
    struct call *call = data;
    struct http_server *s = call->s;
    h2o_req_t *req = http__call_finish(call);
    if (req == NULL) {
        return;
    }
    if (status != 0) {
        http__send_err(req, status, NULL, msg);
        return;
    }
    http__cluster_get(s, req, NULL);
}

static void start_change(struct http_server *s,
                         h2o_req_t *req,
                         int rv,
                         struct call *call)
{
    if (rv != 0) {
        http__call_unref(call);
        http__send_err(req, rv, NULL,
                       rv == ERR_CONFLICT
                           ? "another membership change is in progress, or "
                             "the node conflicts with a member"
                           : NULL);
    }
}

void http__cluster_add(struct http_server *s,
                       h2o_req_t *req,
                       const struct http_args *a)
{
    json_t *body = http__body_object(req, true);
    json_t *id, *raft, *http;
    struct call *call;
    const char *k;
    json_t *v;

    if (body == NULL) {
        return;
    }
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "id") != 0 && strcmp(k, "raft_addr") != 0 &&
            strcmp(k, "http_addr") != 0) {
            http__send_error(req, 400, "invalid_argument", k, "unknown field");
            json_decref(body);
            return;
        }
    }
    id = json_object_get(body, "id");
    raft = json_object_get(body, "raft_addr");
    http = json_object_get(body, "http_addr");
    if (!json_is_integer(id) || json_integer_value(id) < 1) {
        http__send_error(req, 400, "invalid_argument", "id",
                         "must be a positive integer");
    } else if (!json_is_string(raft) || json_string_length(raft) == 0 ||
               json_string_length(raft) > 63) {
        http__send_error(req, 400, "invalid_argument", "raft_addr",
                         "must be \"a.b.c.d:port\"");
    } else if (!json_is_string(http) || json_string_length(http) == 0 ||
               json_string_length(http) > 63) {
        http__send_error(req, 400, "invalid_argument", "http_addr",
                         "must be \"host:port\"");
    } else {
        call = http__call_new(s, req);
        start_change(
            s, req,
            cluster_add_node(s->cluster, (uint64_t)json_integer_value(id),
                             json_string_value(raft), json_string_value(http),
                             change_done_cb, call),
            call);
    }
    json_decref(body);
}

void http__cluster_remove(struct http_server *s,
                          h2o_req_t *req,
                          const struct http_args *a)
{
    const char *ids = a->id.base;
    size_t len = a->id.len;
    char buf[24];
    char *end;
    unsigned long long id;
    struct call *call;

    snprintf(buf, sizeof buf, "%.*s", (int)(len < 23 ? len : 23), ids);
    id = strtoull(buf, &end, 10);
    if (*end != '\0' || id == 0) {
        http__send_error(req, 404, "not_found", "id", "no node \"%.*s\"",
                         (int)len, ids);
        return;
    }
    call = http__call_new(s, req);
    start_change(s, req,
                 cluster_remove_node(s->cluster, id, change_done_cb, call),
                 call);
}

void http__cluster_transfer(struct http_server *s,
                            h2o_req_t *req,
                            const struct http_args *a)
{
    uint64_t id = 0;
    struct call *call;

    if (req->entity.len > 0) {
        json_t *body = http__body_object(req, false);
        json_t *v = json_object_get(body, "id");
        if (body == NULL) {
            return;
        }
        if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 0)) {
            json_decref(body);
            http__send_error(req, 400, "invalid_argument", "id",
                             "must be a node id");
            return;
        }
        id = v != NULL ? (uint64_t)json_integer_value(v) : 0;
        json_decref(body);
    }
    call = http__call_new(s, req);
    start_change(s, req, cluster_transfer(s->cluster, id, change_done_cb, call),
                 call);
}

/* ---- Health ------------------------------------------------------------- */

void http__healthz(struct http_server *s,
                   h2o_req_t *req,
                   const struct http_args *a)
{
    (void)s;
    http__send_json(req, 200, json_pack("{s:s}", "status", "ok"), 0);
}

void http__readyz(struct http_server *s,
                  h2o_req_t *req,
                  const struct http_args *a)
{
    const char *reason;
    if (cluster_ready(s->cluster, &reason)) {
        http__send_json(req, 200, json_pack("{s:b}", "ready", 1),
                        cluster_applied_index(s->cluster));
    } else {
        http__send_json(req, 503,
                        json_pack("{s:b,s:s}", "ready", 0, "reason", reason),
                        cluster_applied_index(s->cluster));
    }
}

void http__digest(struct http_server *s,
                  h2o_req_t *req,
                  const struct http_args *a)
{
    uint64_t digest;
    char hex[20];
    int rv = fsm_digest(cluster_fsm(s->cluster), &digest);
    if (rv != 0) {
        http__send_err(req, rv, NULL, NULL);
        return;
    }
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)digest);
    http__send_json(req, 200,
                    json_pack("{s:s,s:I}", "digest", hex, "applied_index",
                              (json_int_t)cluster_applied_index(s->cluster)),
                    cluster_applied_index(s->cluster));
}
