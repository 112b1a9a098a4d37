/* Membership: add (raft_add → record addresses → raft_assign voter), remove
 * (raft_remove → forget addresses), transfer, and the registration loop that
 * makes every node's HTTP address part of the replicated node table.
 *
 * Registration: each node checks the node table from the leader watch. When
 * its own entry is missing or stale it asks the leader: directly when it is
 * the leader (a NODE_SET command), else with POST /v1/cluster/nodes to the
 * leader's HTTP address, or to the --join URL while it knows no leader yet
 * (a joining node is not in the configuration, so no leader contacts it).
 * The request is idempotent, so retrying after a timeout is harmless. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "cluster"
#include "cluster/internal.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

#define REGISTER_RETRY_MS 500
#define ADDR_MAX 64

struct change
{
    struct raft_change req;
    struct raft_transfer transfer;
    struct cluster *c;
    uint64_t id;
    char raft_addr[ADDR_MAX];
    char http_addr[ADDR_MAX];
    bool assign; /* Still to be made a voter. */
    cluster_done_cb cb;
    void *data;
};

static void change_done(struct change *ch, int status, const char *msg)
{
    cluster_done_cb cb = ch->cb;
    void *data = ch->data;
    free(ch);
    cb(data, status, msg);
}

static const struct raft_server *find_server(struct cluster *c, uint64_t id)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            return &conf->servers[i];
        }
    }
    return NULL;
}

static void log_members(struct cluster *c, const char *what, uint64_t id)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    unsigned voters = 0;
    for (unsigned i = 0; i < conf->n; i++) {
        voters += conf->servers[i].role == RAFT_VOTER;
    }
    LOG(LOG_INFO, "membership changed",
        "change=%s id=%llu members=%u "
        "voters=%u",
        what, (unsigned long long)id, conf->n, voters);
}

/* Submit a NODE_SET or NODE_DEL command. */
static int submit_node(struct cluster *c,
                       uint8_t type,
                       uint64_t id,
                       const char *raft_addr,
                       const char *http_addr,
                       cluster_submit_cb cb,
                       void *data)
{
    struct fsm_cmd cmd;

    memset(&cmd, 0, sizeof cmd);
    cmd.type = type;
    cmd.node_id = id;
    if (raft_addr != NULL) {
        cmd.raft_addr.p = raft_addr;
        cmd.raft_addr.len = (uint32_t)strlen(raft_addr);
    }
    if (http_addr != NULL) {
        cmd.http_addr.p = http_addr;
        cmd.http_addr.len = (uint32_t)strlen(http_addr);
    }
    return cluster_submit_cmd(c, &cmd, cb, data);
}

/* ---- Add ---------------------------------------------------------------- */

static void assign_cb(struct raft_change *req, int status)
{
    struct change *ch = req->data;
    if (status != 0) {
        change_done(ch, cluster__err_from_raft(status), raft_strerror(status));
        return;
    }
    log_members(ch->c, "promoted", ch->id);
    change_done(ch, 0, NULL);
}

static void node_set_cb(void *data, int status, const struct fsm_result *res)
{
    struct change *ch = data;
    int rv;

    if (status == 0 && res->code != 0) {
        change_done(ch, res->code, res->msg);
        return;
    }
    if (status != 0) {
        change_done(ch, status, err_strerror(status));
        return;
    }
    if (!ch->assign) {
        change_done(ch, 0, NULL);
        return;
    }
    ch->req.data = ch;
    rv = raft_assign(&ch->c->raft, &ch->req, ch->id, RAFT_VOTER, assign_cb);
    if (rv != 0) {
        change_done(ch, cluster__err_from_raft(rv), raft_errmsg(&ch->c->raft));
    }
}

static void record_addresses(struct change *ch)
{
    int rv = submit_node(ch->c, FSM_CMD_NODE_SET, ch->id, ch->raft_addr,
                         ch->http_addr, node_set_cb, ch);
    if (rv != 0) {
        change_done(ch, rv, err_strerror(rv));
    }
}

static void add_cb(struct raft_change *req, int status)
{
    struct change *ch = req->data;
    if (status != 0) {
        change_done(ch, cluster__err_from_raft(status), raft_strerror(status));
        return;
    }
    log_members(ch->c, "added", ch->id);
    record_addresses(ch);
}

static struct change *change_new(struct cluster *c,
                                 uint64_t id,
                                 cluster_done_cb cb,
                                 void *data)
{
    struct change *ch = calloc(1, sizeof *ch);
    if (ch != NULL) {
        ch->c = c;
        ch->id = id;
        ch->cb = cb;
        ch->data = data;
        ch->req.data = ch;
        ch->transfer.data = ch;
    }
    return ch;
}

int cluster_add_node(struct cluster *c,
                     uint64_t id,
                     const char *raft_addr,
                     const char *http_addr,
                     cluster_done_cb cb,
                     void *data)
{
    const struct raft_server *s;
    struct change *ch;
    int rv;

    if (raft_state(&c->raft) != RAFT_LEADER) {
        return ERR_NOTLEADER;
    }
    if (id == 0 || strlen(raft_addr) >= ADDR_MAX ||
        strlen(http_addr) >= ADDR_MAX || raft_addr[0] == '\0' ||
        http_addr[0] == '\0') {
        return ERR_INVALID;
    }
    ch = change_new(c, id, cb, data);
    if (ch == NULL) {
        return ERR_NOMEM;
    }
    snprintf(ch->raft_addr, sizeof ch->raft_addr, "%s", raft_addr);
    snprintf(ch->http_addr, sizeof ch->http_addr, "%s", http_addr);
    s = find_server(c, id);
    if (s != NULL) {
        if (strcmp(s->address, raft_addr) != 0) {
            free(ch);
            return ERR_CONFLICT;
        }
        ch->assign = s->role != RAFT_VOTER;
        record_addresses(ch);
        return 0;
    }
    ch->assign = true;
    rv = raft_add(&c->raft, &ch->req, id, ch->raft_addr, add_cb);
    if (rv != 0) {
        free(ch);
        return cluster__err_from_raft(rv);
    }
    return 0;
}

/* ---- Remove ------------------------------------------------------------- */

static void node_del_cb(void *data, int status, const struct fsm_result *res)
{
    struct change *ch = data;
    /* The node is out of the configuration already: a failure to forget
     * its address is not the caller's problem. */
    (void)status;
    (void)res;
    change_done(ch, 0, NULL);
}

static void remove_cb(struct raft_change *req, int status)
{
    struct change *ch = req->data;
    int rv;
    if (status != 0) {
        change_done(ch, cluster__err_from_raft(status), raft_strerror(status));
        return;
    }
    log_members(ch->c, "removed", ch->id);
    rv = submit_node(ch->c, FSM_CMD_NODE_DEL, ch->id, NULL, NULL, node_del_cb,
                     ch);
    if (rv != 0) {
        change_done(ch, 0, NULL);
    }
}

int cluster_remove_node(struct cluster *c,
                        uint64_t id,
                        cluster_done_cb cb,
                        void *data)
{
    struct change *ch;
    int rv;

    if (raft_state(&c->raft) != RAFT_LEADER) {
        return ERR_NOTLEADER;
    }
    if (find_server(c, id) == NULL) {
        return ERR_NOTFOUND;
    }
    ch = change_new(c, id, cb, data);
    if (ch == NULL) {
        return ERR_NOMEM;
    }
    rv = raft_remove(&c->raft, &ch->req, id, remove_cb);
    if (rv != 0) {
        free(ch);
        return cluster__err_from_raft(rv);
    }
    return 0;
}

/* ---- Transfer ----------------------------------------------------------- */

static void transfer_cb(struct raft_transfer *req)
{
    struct change *ch = req->data;
    raft_id id;
    const char *addr;
    raft_leader(&ch->c->raft, &id, &addr);
    LOG(LOG_INFO, "leadership transferred", "to=%llu leader=%llu",
        (unsigned long long)ch->id, (unsigned long long)id);
    change_done(ch, 0, NULL);
}

int cluster_transfer(struct cluster *c,
                     uint64_t id,
                     cluster_done_cb cb,
                     void *data)
{
    struct change *ch;
    int rv;

    if (raft_state(&c->raft) != RAFT_LEADER) {
        return ERR_NOTLEADER;
    }
    if (id != 0) {
        const struct raft_server *s = find_server(c, id);
        if (s == NULL) {
            return ERR_NOTFOUND;
        }
        if (s->role != RAFT_VOTER) {
            return ERR_CONFLICT;
        }
    }
    ch = change_new(c, id, cb, data);
    if (ch == NULL) {
        return ERR_NOMEM;
    }
    rv = raft_transfer(&c->raft, &ch->transfer, id, transfer_cb);
    if (rv != 0) {
        free(ch);
        return cluster__err_from_raft(rv);
    }
    return 0;
}

/* ---- Registration ------------------------------------------------------- */

struct self_check
{
    struct cluster *c;
    bool found;
    bool match;
};

static void self_check_cb(void *data,
                          uint64_t id,
                          struct fsm_str raft_addr,
                          struct fsm_str http_addr)
{
    struct self_check *sc = data;
    struct cluster *c = sc->c;
    if (id != c->cfg.id) {
        return;
    }
    sc->found = true;
    sc->match = raft_addr.len == strlen(c->raft_addr) &&
                memcmp(raft_addr.p, c->raft_addr, raft_addr.len) == 0 &&
                http_addr.len == strlen(c->http_addr) &&
                memcmp(http_addr.p, c->http_addr, http_addr.len) == 0;
}

static void register_submit_cb(void *data,
                               int status,
                               const struct fsm_result *res)
{
    struct cluster *c = data;
    (void)res;
    c->registering = false;
    if (status != 0) {
        TRACE("self registration: %s", err_strerror(status));
    }
}

static void register_http_cb(void *data, const struct cluster_http_response *r)
{
    struct cluster *c = data;
    c->registering = false;
    if (r->err == ERR_SHUTDOWN) {
        return;
    }
    if (r->status == 200) {
        if (c->join_url != NULL) {
            LOG(LOG_INFO, "joined", "via=%s", c->join_url);
        }
    } else {
        LOG(LOG_WARN, "registration failed", "status=%d err=%s body=%.200s",
            r->status, err_code_name(r->err), r->body);
    }
}

void cluster__register_tick(struct cluster *c)
{
    struct self_check sc = {c, false, false};
    struct fsm_reader *rd;
    char leader_http[ADDR_MAX];
    char url[256];
    char body[256];
    uint64_t leader;
    int64_t now = clock_now_ms();
    static const char *const headers[] = {"Content-Type: application/json",
                                          NULL};

    if (c->registering || c->closing ||
        now - (int64_t)c->last_register_ms < REGISTER_RETRY_MS) {
        return;
    }
    if (fsm_read_begin(c->fsm, &rd) != 0) {
        return;
    }
    fsm_nodes(rd, self_check_cb, &sc);
    fsm_read_end(rd);
    /* Registered = our addresses recorded AND we are a voter (a joiner
     * whose promotion failed stays a spare: ask again). */
    const struct raft_server *self = find_server(c, c->cfg.id);
    c->registered =
        sc.found && sc.match && self != NULL && self->role == RAFT_VOTER;
    if (c->registered) {
        return;
    }
    leader = cluster_leader(c, leader_http, sizeof leader_http);
    if (leader == c->cfg.id || (leader != 0 && leader_http[0] != '\0') ||
        c->join_url != NULL) {
        c->last_register_ms = (uint64_t)now; /* About to ask: pace it. */
    }
    if (leader == c->cfg.id) {
        if (submit_node(c, FSM_CMD_NODE_SET, c->cfg.id, c->raft_addr,
                        c->http_addr, register_submit_cb, c) == 0) {
            c->registering = true;
        }
        return;
    }
    if (leader != 0 && leader_http[0] != '\0') {
        snprintf(url, sizeof url, "%s://%s/v1/cluster/nodes", cluster_scheme(c),
                 leader_http);
    } else if (c->join_url != NULL) {
        snprintf(url, sizeof url, "%s/v1/cluster/nodes", c->join_url);
    } else {
        return; /* Wait until the leader has registered itself. */
    }
    snprintf(body, sizeof body,
             "{\"id\":%llu,\"raft_addr\":\"%s\",\"http_addr\":\"%s\"}",
             (unsigned long long)c->cfg.id, c->raft_addr, c->http_addr);
    struct cluster_http_req r = {"POST",       url,   headers, body,
                                 strlen(body), 30000, false};
    if (cluster_http_request(c, &r, register_http_cb, c) == 0) {
        c->registering = true;
    }
}
