/* Access control (docs/api.md, Access control): ACL tokens in the
 * replicated state (Nomad's model), checked by the router.
 *
 * A token's secret is 32 random bytes as 64 hex digits, generated here and
 * answered once; the fsm keeps SHA-256(secret) as the key of the token
 * record, so neither the log nor the state (nor a snapshot) holds a secret.
 * With rotad --acl, every route with a role needs "Authorization: Bearer
 * SECRET": missing, unknown or expired (judged with sched_now) → 401;
 * known but of another role → 403. A follower checks, then forwards (the
 * forwarder copies the Authorization header), and the leader checks again
 * against its own state. Limits on queues and types are checked by the
 * handlers that know the job (http__acl_check*).
 *
 * Request rates: a token with a rate (rate, burst) gets a token bucket on
 * each node (ratelimit.c, on the API's clock sched_now) that every request
 * it authenticates here takes from; an empty bucket is 429 with
 * Retry-After, before anything is forwarded or proposed. A request
 * forwarded by a member (X-Rota-Forwarded from a member's host) was
 * counted on the node the client reached and is not counted again. Buckets
 * of deleted tokens are dropped (at once on the node that ran the delete,
 * by the next sweep elsewhere), and so are full ones.
 *
 * Audit: one log line per admin action (on the node that runs it) and per
 * refused request (rate-limited: AUDIT_PER_S lines a second, then a count
 * of the suppressed ones). No line holds a secret or a hash. */

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "audit"
#include "common/err.h"
#include "common/log.h"
#include "http/internal.h"
#include "http/ratelimit.h"

#define SECRET_BYTES 32
#define SECRET_HEX (2 * SECRET_BYTES)
#define AUDIT_PER_S 10
#define MAX_LIST 1024 /* queues, types: comma-separated bytes. */

/* ---- Hashing ------------------------------------------------------------ */

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

int http__sha256_hex(const char *s, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    if (EVP_Digest(s, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32) {
        return ERR_NOMEM;
    }
    to_hex(md, 32, out);
    return 0;
}

/* ---- Audit log ---------------------------------------------------------- */

static struct
{
    int64_t window; /* Second of the current window. */
    unsigned lines; /* Refusals logged in it. */
    unsigned long long suppressed;
} audit_rate;

/* May a refusal be logged now? *suppressed: how many were not since the
 * last one that was. */
static bool audit_allowed(int64_t now_ms, unsigned long long *suppressed)
{
    int64_t sec = now_ms / 1000;
    if (sec != audit_rate.window) {
        audit_rate.window = sec;
        audit_rate.lines = 0;
    }
    if (audit_rate.lines >= AUDIT_PER_S) {
        audit_rate.suppressed++;
        return false;
    }
    audit_rate.lines++;
    *suppressed = audit_rate.suppressed;
    audit_rate.suppressed = 0;
    return true;
}

/* The request line without its query (it may hold anything). */
static int path_len(h2o_req_t *req)
{
    const char *q = memchr(req->path.base, '?', req->path.len);
    size_t n = q != NULL ? (size_t)(q - req->path.base) : req->path.len;
    return (int)(n > 200 ? 200 : n);
}

static void audit_refused(struct http_server *s,
                          h2o_req_t *req,
                          const struct acl_token *t,
                          int status,
                          const char *why)
{
    unsigned long long suppressed = 0;
    if (!audit_allowed(sched_now(s->sched), &suppressed)) {
        return;
    }
    LOG(LOG_WARN, "refused",
        "method=%.*s path=\"%.*s\" status=%d token=%016llx role=%s "
        "reason=\"%s\" suppressed=%llu",
        (int)req->method.len, req->method.base, path_len(req), req->path.base,
        status, t != NULL ? (unsigned long long)t->id : 0ULL,
        t != NULL ? t->role : "-", why, suppressed);
}

static void audit_admin(h2o_req_t *req, const struct acl_token *t)
{
    LOG(LOG_INFO, "admin action",
        "method=%.*s path=\"%.*s\" token=%016llx name=\"%.*s\"",
        (int)req->method.len, req->method.base, path_len(req), req->path.base,
        (unsigned long long)t->id, (int)(t->name.len > 64 ? 64 : t->name.len),
        t->name.p);
}

/* ---- The router's check ------------------------------------------------- */

static bool str_in_list(struct fsm_str list, struct fsm_str name)
{
    const char *p = list.p, *end = list.p + list.len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma != NULL ? comma : end;
        if ((size_t)(e - p) == name.len && memcmp(p, name.p, name.len) == 0) {
            return true;
        }
        p = e + 1;
    }
    return false;
}

/* Does a token of role @have satisfy the route role @need? */
static bool role_satisfies(const char *have, const char *need)
{
    return strcmp(have, "admin") == 0 || strcmp(have, need) == 0 ||
           (strcmp(need, "read") == 0 && strcmp(have, "submit") == 0);
}

static struct fsm_str pool_copy(h2o_req_t *req, struct fsm_str v)
{
    char *p = h2o_mem_alloc_pool(&req->pool, v.len + 1);
    if (v.len > 0) {
        memcpy(p, v.p, v.len);
    }
    p[v.len] = '\0';
    return (struct fsm_str){p, v.len};
}

/* The token of "Authorization: Bearer SECRET" as the local fsm has it,
 * copied into the pool, and its rate (@lim): 0, or ERR_UNAUTHENTICATED
 * with @why. */
static int lookup(struct http_server *s,
                  h2o_req_t *req,
                  struct acl_token *out,
                  struct rl_limit *lim,
                  const char **why)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    const h2o_iovec_t *v;
    struct fsm_reader *rd;
    struct fsm_token t;
    char hash[65];
    int rv;

    if (i < 0) {
        *why = "no Authorization: Bearer token";
        return ERR_UNAUTHENTICATED;
    }
    v = &req->headers.entries[i].value;
    if (v->len <= 7 || !h2o_lcstris(v->base, 7, H2O_STRLIT("bearer "))) {
        *why = "the Authorization header is not \"Bearer SECRET\"";
        return ERR_UNAUTHENTICATED;
    }
    if (http__sha256_hex(v->base + 7, v->len - 7, hash) != 0) {
        *why = "cannot hash the token";
        return ERR_UNAUTHENTICATED;
    }
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        *why = "cannot read the token table";
        return ERR_UNAUTHENTICATED;
    }
    /* The lookup is by SHA-256(secret): timing can tell at most how much
     * of a hash matched, which says nothing of any secret. */
    rv = fsm_get_token(rd, (struct fsm_str){hash, FSM_TOKEN_HASH_LEN}, &t);
    if (rv == 0) {
        memset(out, 0, sizeof *out);
        out->id = t.id;
        snprintf(out->role, sizeof out->role, "%.*s", (int)t.role.len,
                 t.role.p);
        out->name = pool_copy(req, t.name);
        out->queues = pool_copy(req, t.queues);
        out->types = pool_copy(req, t.types);
        out->expires_at = t.expires_at;
        lim->rate_milli = t.rate_milli;
        lim->burst = t.burst;
    }
    fsm_read_end(rd);
    OPENSSL_cleanse(hash, sizeof hash);
    if (rv != 0) {
        *why = "unknown token";
        return ERR_UNAUTHENTICATED;
    }
    if (out->expires_at != 0 && out->expires_at <= sched_now(s->sched)) {
        *why = "the token expired";
        return ERR_UNAUTHENTICATED;
    }
    return 0;
}

/* A member of the raft configuration recording its own addresses (the
 * registration every node makes, cluster/membership.c) carries no token:
 * nodes have no credentials until the secure mode's mutual TLS. It passes
 * if it names a voter with exactly that raft address, comes straight from
 * that address's host, and adds no member. */
struct self_reg
{
    uint64_t id;
    const char *raft;
    bool found;
};

static void self_reg_cb(void *data, const struct cluster_member *m)
{
    struct self_reg *sr = data;
    if (m->id == sr->id && m->voter && strcmp(m->raft_addr, sr->raft) == 0) {
        sr->found = true;
    }
}

static bool peer_is_host(h2o_req_t *req, const char *addr)
{
    struct sockaddr_storage ss;
    struct in_addr want;
    char host[64];
    const char *colon = strrchr(addr, ':');
    size_t n = colon != NULL ? (size_t)(colon - addr) : 0;

    if (n == 0 || n >= sizeof host ||
        req->conn->callbacks->get_peername == NULL) {
        return false;
    }
    memcpy(host, addr, n);
    host[n] = '\0';
    if (inet_pton(AF_INET, host, &want) != 1 ||
        req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss) ==
            0 ||
        ss.ss_family != AF_INET) {
        return false;
    }
    return ((struct sockaddr_in *)&ss)->sin_addr.s_addr == want.s_addr;
}

static bool node_self_registration(struct http_server *s,
                                   h2o_req_t *req,
                                   const struct http_route *r)
{
    json_t *o, *id;
    const char *raft;
    bool ok = false;

    if (r->handler != http__cluster_add || !cluster_is_leader(s->cluster) ||
        h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1) >= 0 ||
        h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-rota-forwarded"),
                               -1) >= 0 ||
        req->entity.base == NULL) {
        return false;
    }
    o = json_loadb(req->entity.base, req->entity.len, 0, NULL);
    id = json_object_get(o, "id");
    raft = json_string_value(json_object_get(o, "raft_addr"));
    if (json_is_integer(id) && json_integer_value(id) > 0 && raft != NULL) {
        struct self_reg sr = {(uint64_t)json_integer_value(id), raft, false};
        cluster_members(s->cluster, self_reg_cb, &sr);
        ok = sr.found && peer_is_host(req, raft);
    }
    json_decref(o);
    return ok;
}

struct member_host
{
    h2o_req_t *req;
    bool found;
};

static void member_host_cb(void *data, const struct cluster_member *m)
{
    struct member_host *mh = data;
    mh->found = mh->found || peer_is_host(mh->req, m->raft_addr);
}

/* The header alone would let any client skip its rate: the sender must
 * also be on a member's host. */
static bool forwarded_by_member(struct http_server *s, h2o_req_t *req)
{
    struct member_host mh = {req, false};
    if (h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-rota-forwarded"),
                               -1) < 0) {
        return false;
    }
    cluster_members(s->cluster, member_host_cb, &mh);
    return mh.found;
}

/* ---- Request rates ------------------------------------------------------ */

/* Every server's buckets (one per process in rotad; keyed by server). */
static struct rl_table rates;

struct live_ids
{
    uint64_t *ids;
    size_t n, cap;
    bool failed;
};

static void live_cb(void *data, const struct fsm_token *t)
{
    struct live_ids *l = data;
    if (t->rate_milli == 0 || l->failed) {
        return; /* A token without a rate has no bucket to keep. */
    }
    if (l->n == l->cap) {
        size_t cap = l->cap > 0 ? 2 * l->cap : 64;
        uint64_t *v = realloc(l->ids, cap * sizeof *v);
        if (v == NULL) {
            l->failed = true;
            return;
        }
        l->ids = v;
        l->cap = cap;
    }
    l->ids[l->n++] = t->id;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool is_live(void *data, uint64_t id)
{
    struct live_ids *l = data;
    return l->failed || bsearch(&id, l->ids, l->n, sizeof id, cmp_u64) != NULL;
}

/* Drop the buckets of tokens this node no longer has, and full ones. */
static void sweep(struct http_server *s, int64_t now)
{
    struct live_ids l = {NULL, 0, 0, false};
    struct fsm_reader *rd;

    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        l.failed = true; /* Keep them: drop only full ones. */
    } else {
        fsm_tokens(rd, live_cb, &l);
        fsm_read_end(rd);
    }
    if (!l.failed) {
        qsort(l.ids, l.n, sizeof *l.ids, cmp_u64);
    }
    rl_sweep(&rates, s, now, is_live, &l);
    free(l.ids);
}

/* Take one request of @t's bucket; false once answered 429. */
static bool rate_allows(struct http_server *s,
                        h2o_req_t *req,
                        const struct acl_token *t,
                        struct rl_limit lim)
{
    int64_t now = sched_now(s->sched), wait;
    char after[24];

    if (lim.rate_milli == 0 || forwarded_by_member(s, req)) {
        return true;
    }
    if (rl_sweep_due(&rates, now)) {
        sweep(s, now);
    }
    wait = rl_take(&rates, s, t->id, lim, now);
    if (wait <= 0) {
        return true; /* Allowed (or no memory for a bucket: not refused). */
    }
    snprintf(after, sizeof after, "%lld", (long long)rl_retry_after_s(wait));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
                   after, strlen(after));
    audit_refused(s, req, t, 429, "rate");
    http__send_error(req, 429, "rate_limited", NULL,
                     "this token may make %llu.%03llu requests a second (burst "
                     "%u) on this node: retry in %s s",
                     (unsigned long long)(lim.rate_milli / 1000),
                     (unsigned long long)(lim.rate_milli % 1000), lim.burst,
                     after);
    return false;
}

bool http__acl_authorize(struct http_server *s,
                         h2o_req_t *req,
                         const struct http_route *r,
                         struct http_args *a)
{
    const char *need = r->role, *why = NULL;
    struct rl_limit lim = {0, 0};
    struct acl_token *t;

    if ((r->flags & ROUTE_METRICS) && s->cfg.metrics_public) {
        need = NULL;
    }
    if (need == NULL) {
        return true;
    }
    if (node_self_registration(s, req, r)) {
        return true;
    }
    t = h2o_mem_alloc_pool(&req->pool, sizeof *t);
    if (lookup(s, req, t, &lim, &why) != 0) {
        audit_refused(s, req, NULL, 401, why);
        http__send_error(req, 401, "unauthenticated", NULL, "%s", why);
        return false;
    }
    if (!rate_allows(s, req, t, lim)) {
        return false;
    }
    if (!role_satisfies(t->role, need)) {
        audit_refused(s, req, t, 403, "role");
        http__send_error(req, 403, "forbidden", NULL,
                         "this route needs a token with the %s role%s; this "
                         "token's role is %s",
                         need, strcmp(need, "admin") != 0 ? " (or admin)" : "",
                         t->role);
        return false;
    }
    a->token = t;
    if (strcmp(need, "admin") == 0 &&
        ((r->flags & ROUTE_LEADER) == 0 || cluster_is_leader(s->cluster))) {
        audit_admin(req, t); /* Where it runs: a follower forwards it. */
    }
    return true;
}

bool http__acl_allows(const struct http_args *a,
                      struct fsm_str queue,
                      struct fsm_str type)
{
    const struct acl_token *t = a != NULL ? a->token : NULL;
    if (t == NULL || strcmp(t->role, "admin") == 0) {
        return true;
    }
    if (t->queues.len > 0 && queue.len > 0 && !str_in_list(t->queues, queue)) {
        return false;
    }
    return t->types.len == 0 || type.len == 0 || str_in_list(t->types, type);
}

bool http__acl_check(struct http_server *s,
                     h2o_req_t *req,
                     const struct http_args *a,
                     struct fsm_str queue,
                     struct fsm_str type,
                     const char *field)
{
    if (http__acl_allows(a, queue, type)) {
        return true;
    }
    audit_refused(s, req, a->token, 403, "queue or type not allowed");
    http__send_error(req, 403, "forbidden", field,
                     "this token may not act on queue \"%.*s\" type \"%.*s\" "
                     "(allowed queues: %s, types: %s)",
                     (int)(queue.len > 64 ? 64 : queue.len), queue.p,
                     (int)(type.len > 64 ? 64 : type.len), type.p,
                     a->token->queues.len > 0 ? a->token->queues.p : "all",
                     a->token->types.len > 0 ? a->token->types.p : "all");
    return false;
}

bool http__acl_check_job(struct http_server *s,
                         h2o_req_t *req,
                         const struct http_args *a,
                         uint64_t id)
{
    struct fsm_reader *rd;
    struct fsm_job job;
    char q[FSM_MAX_STR + 1], t[FSM_MAX_STR + 1];
    struct fsm_str queue = {q, 0}, type = {t, 0};

    if (a == NULL || a->token == NULL ||
        (a->token->queues.len == 0 && a->token->types.len == 0)) {
        return true;
    }
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        return false;
    }
    int rv = fsm_get_job(rd, id, &job);
    if (rv == 0) {
        queue.len = job.queue.len <= FSM_MAX_STR ? job.queue.len : 0;
        type.len = job.type.len <= FSM_MAX_STR ? job.type.len : 0;
        memcpy(q, job.queue.p, queue.len);
        memcpy(t, job.type.p, type.len);
    }
    fsm_read_end(rd);
    return rv != 0 || http__acl_check(s, req, a, queue, type, "id");
}

/* ---- Handlers ----------------------------------------------------------- */

static bool acl_enabled(struct http_server *s, h2o_req_t *req)
{
    if (!s->cfg.acl) {
        http__send_error(req, 400, "invalid_argument", NULL,
                         "access control is off: start rotad with --acl");
        return false;
    }
    return true;
}

/* What a created token's answer needs besides the id (after the call). */
struct created
{
    char secret[SECRET_HEX + 1];
    char role[8];
    int64_t expires_at;
    bool bootstrap;
};

static json_t *names_array(struct fsm_str list)
{
    json_t *arr = json_array();
    const char *p = list.p, *end = list.p + list.len;
    while (p != NULL && p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma != NULL ? comma : end;
        json_array_append_new(arr, json_stringn(p, (size_t)(e - p)));
        p = e + 1;
    }
    return arr;
}

static json_t *time_or_null(int64_t ms)
{
    char t[40];
    if (ms == 0) {
        return json_null();
    }
    http__format_time(ms, t, sizeof t);
    return json_string(t);
}

/* The token @id as this node has it, as JSON (never the hash). */
struct find_token
{
    uint64_t id;
    json_t *out;
};

/* A rate in requests a second: an integer when it is one. */
static json_t *rate_json(uint64_t rate_milli)
{
    if (rate_milli == 0) {
        return json_null();
    }
    if (rate_milli % 1000 == 0) {
        return json_integer((json_int_t)(rate_milli / 1000));
    }
    return json_real((double)rate_milli / 1000.0);
}

static json_t *token_json(const struct fsm_token *t)
{
    char id[20], created[40];
    snprintf(id, sizeof id, "%016llx", (unsigned long long)t->id);
    http__format_time(t->created_at, created, sizeof created);
    return json_pack("{s:s,s:s%,s:s%,s:o,s:o,s:o,s:s,s:o,s:o}", "id", id,
                     "name", t->name.p, (size_t)t->name.len, "role", t->role.p,
                     (size_t)t->role.len, "queues", names_array(t->queues),
                     "types", names_array(t->types), "expires_at",
                     time_or_null(t->expires_at), "created_at", created, "rate",
                     rate_json(t->rate_milli), "burst",
                     t->burst > 0 ? json_integer(t->burst) : json_null());
}

static void find_token_cb(void *data, const struct fsm_token *t)
{
    struct find_token *ft = data;
    if (t->id == ft->id && ft->out == NULL) {
        ft->out = token_json(t);
    }
}

static void created_cb(void *data, int status, const struct fsm_result *res)
{
    struct call *call = data;
    struct http_server *s = call->s;
    struct created c;
    struct fsm_reader *rd;
    h2o_req_t *req;

    memcpy(&c, call + 1, sizeof c); /* Wiped with the call. */
    OPENSSL_cleanse(call + 1, sizeof c);
    req = http__call_finish(call);
    if (req == NULL) {
        OPENSSL_cleanse(&c, sizeof c);
        return;
    }
    if (status == 0 && res->code == ERR_CONFLICT && c.bootstrap) {
        http__send_error(req, 403, "forbidden", NULL,
                         "the ACL system was bootstrapped already: ask an "
                         "admin for a token");
    } else if (!http__failed(req, status, res)) {
        struct find_token ft = {res->ids[0], NULL};
        if (fsm_read_begin(cluster_fsm(s->cluster), &rd) == 0) {
            fsm_tokens(rd, find_token_cb, &ft);
            fsm_read_end(rd);
        }
        if (ft.out == NULL) {
            http__send_err(req, ERR_NOTFOUND, NULL, "token vanished");
        } else {
            json_object_set_new(ft.out, "secret", json_string(c.secret));
            LOG(LOG_INFO, "token created", "token=%016llx role=%s bootstrap=%d",
                (unsigned long long)res->ids[0], c.role, c.bootstrap);
            http__send_json(req, 201, ft.out,
                            cluster_applied_index(s->cluster));
        }
    }
    OPENSSL_cleanse(&c, sizeof c);
}

/* Make a secret, submit @cmd with its hash; created_cb answers. */
static void create_token(struct http_server *s,
                         h2o_req_t *req,
                         struct fsm_cmd *cmd)
{
    unsigned char raw[SECRET_BYTES];
    char hash[65];
    struct created *c;
    struct call *call;
    int rv;

    if (RAND_bytes(raw, sizeof raw) != 1) {
        http__send_err(req, ERR_UNAVAILABLE, NULL, "no random bytes");
        return;
    }
    call = http__call_new_extra(s, req, sizeof *c);
    if (call == NULL) {
        OPENSSL_cleanse(raw, sizeof raw);
        http__send_err(req, ERR_NOMEM, NULL, NULL);
        return;
    }
    c = (struct created *)(call + 1);
    to_hex(raw, sizeof raw, c->secret);
    OPENSSL_cleanse(raw, sizeof raw);
    snprintf(c->role, sizeof c->role, "%.*s", (int)cmd->token.role.len,
             cmd->token.role.p);
    c->bootstrap = cmd->type == FSM_CMD_ACL_BOOTSTRAP;
    rv = http__sha256_hex(c->secret, SECRET_HEX, hash);
    cmd->token.hash = (struct fsm_str){hash, FSM_TOKEN_HASH_LEN};
    if (rv == 0) {
        rv = http__submit_cmd(s, cmd, created_cb, call);
    }
    OPENSSL_cleanse(hash, sizeof hash);
    if (rv != 0) {
        OPENSSL_cleanse(c, sizeof *c);
        http__call_unref(call);
        http__send_err(req, rv, NULL, NULL);
    }
}

/* POST /v1/acl/bootstrap: the first admin token, once per cluster. */
void http__acl_bootstrap(struct http_server *s,
                         h2o_req_t *req,
                         const struct http_args *a)
{
    struct fsm_cmd cmd;
    struct fsm_reader *rd;
    bool done = false;

    if (!acl_enabled(s, req)) {
        return;
    }
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) == 0) {
        done = fsm_acl_bootstrapped(rd);
        fsm_read_end(rd);
    }
    if (done) {
        audit_refused(s, req, NULL, 403, "bootstrapped already");
        http__send_error(req, 403, "forbidden", NULL,
                         "the ACL system was bootstrapped already: ask an "
                         "admin for a token");
        return;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_CMD_ACL_BOOTSTRAP;
    cmd.token.name = (struct fsm_str){"bootstrap", 9};
    cmd.token.role = (struct fsm_str){"admin", 5};
    create_token(s, req, &cmd);
}

static bool given(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return v != NULL && !json_is_null(v);
}

/* "rate" (requests a second, > 0) and "burst" (1.., default
 * max(1, ceil(rate))) into @t; false once answered 400. */
static bool parse_rate(h2o_req_t *req, json_t *o, struct fsm_token *t)
{
    json_t *r = json_object_get(o, "rate"), *b = json_object_get(o, "burst");
    double rate = json_is_number(r) ? json_number_value(r) : 0;

    t->rate_milli = 0;
    t->burst = 0;
    if (given(o, "rate")) {
        if (!json_is_number(r) || !isfinite(rate) || !(rate > 0) ||
            rate > FSM_TOKEN_MAX_RATE || rate * 1000 + 0.5 < 1) {
            http__send_error(req, 400, "invalid_argument", "rate",
                             "rate: requests a second, a number from 0.001 "
                             "to %d",
                             FSM_TOKEN_MAX_RATE);
            return false;
        }
        t->rate_milli = (uint64_t)(rate * 1000 + 0.5);
        t->burst = (uint32_t)((t->rate_milli + 999) / 1000);
    }
    if (given(o, "burst")) {
        if (!json_is_integer(b) || json_integer_value(b) < 1 ||
            json_integer_value(b) > FSM_TOKEN_MAX_BURST) {
            http__send_error(req, 400, "invalid_argument", "burst",
                             "burst: an integer from 1 to %d",
                             FSM_TOKEN_MAX_BURST);
            return false;
        }
        if (t->rate_milli == 0) {
            http__send_error(req, 400, "invalid_argument", "burst",
                             "burst needs a rate");
            return false;
        }
        t->burst = (uint32_t)json_integer_value(b);
    }
    return true;
}

/* POST /v1/acl/tokens {"name", "role", "queues", "types", "expires_at",
 * "rate", "burst"} */
void http__acl_tokens_create(struct http_server *s,
                             h2o_req_t *req,
                             const struct http_args *a)
{
    static const char *const roles[] = {"admin", "submit", "worker", "read"};
    char queues[MAX_LIST + 1], types[MAX_LIST + 1];
    const char *name, *role, *exp, *k;
    struct fsm_token rated;
    struct fsm_cmd cmd;
    json_t *o, *v;
    int64_t expires = 0;
    bool role_ok = false;

    if (!acl_enabled(s, req) || (o = http__body_object(req, true)) == NULL) {
        return;
    }
    json_object_foreach(o, k, v)
    {
        if (strcmp(k, "name") != 0 && strcmp(k, "role") != 0 &&
            strcmp(k, "queues") != 0 && strcmp(k, "types") != 0 &&
            strcmp(k, "expires_at") != 0 && strcmp(k, "rate") != 0 &&
            strcmp(k, "burst") != 0) {
            http__send_error(req, 400, "invalid_argument", k, "unknown field");
            json_decref(o);
            return;
        }
    }
    name = json_string_value(json_object_get(o, "name"));
    role = json_string_value(json_object_get(o, "role"));
    exp = json_string_value(json_object_get(o, "expires_at"));
    for (size_t i = 0; role != NULL && i < 4; i++) {
        role_ok |= strcmp(role, roles[i]) == 0;
    }
    if (name == NULL || name[0] == '\0' || strlen(name) > FSM_MAX_STR) {
        http__send_error(req, 400, "invalid_argument", "name",
                         "name: 1..%d bytes", FSM_MAX_STR);
    } else if (!role_ok) {
        http__send_error(req, 400, "invalid_argument", "role",
                         "role: admin, submit, worker or read");
    } else if (json_object_get(o, "expires_at") != NULL &&
               !json_is_null(json_object_get(o, "expires_at")) &&
               (exp == NULL || http__parse_time(exp, &expires) != 0)) {
        http__send_error(req, 400, "invalid_argument", "expires_at",
                         "expires_at: an RFC 3339 time");
    } else if (exp != NULL && expires <= sched_now(s->sched)) {
        http__send_error(req, 400, "invalid_argument", "expires_at",
                         "expires_at is in the past");
    } else if (parse_rate(req, o, &rated) &&
               http__parse_names(req, o, "queues", true, queues,
                                 sizeof queues) &&
               http__parse_names(req, o, "types", true, types, sizeof types)) {
        memset(&cmd, 0, sizeof cmd);
        cmd.type = FSM_CMD_TOKEN_SET;
        cmd.token.rate_milli = rated.rate_milli;
        cmd.token.burst = rated.burst;
        cmd.token.name = (struct fsm_str){name, (uint32_t)strlen(name)};
        cmd.token.role = (struct fsm_str){role, (uint32_t)strlen(role)};
        cmd.token.queues = (struct fsm_str){queues, (uint32_t)strlen(queues)};
        cmd.token.types = (struct fsm_str){types, (uint32_t)strlen(types)};
        cmd.token.expires_at = expires;
        create_token(s, req, &cmd);
    }
    json_decref(o);
}

static void list_cb(void *data, const struct fsm_token *t)
{
    json_array_append_new(data, token_json(t));
}

/* GET /v1/acl/tokens: never a secret or a hash. */
void http__acl_tokens_list(struct http_server *s,
                           h2o_req_t *req,
                           const struct http_args *a)
{
    struct fsm_reader *rd;
    json_t *arr;

    if (!acl_enabled(s, req)) {
        return;
    }
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        return;
    }
    arr = json_array();
    fsm_tokens(rd, list_cb, arr);
    fsm_read_end(rd);
    http__send_json(req, 200, json_pack("{s:o}", "tokens", arr),
                    cluster_applied_index(s->cluster));
}

static void deleted_cb(void *data, int status, const struct fsm_result *res)
{
    struct call *call = data;
    struct http_server *s = call->s;
    h2o_req_t *req = http__call_finish(call);
    char id[20];
    if (status == 0 && res->code == 0 && res->n_ids > 0) {
        rl_forget(&rates, s, res->ids[0]); /* Other nodes: their sweep. */
    }
    if (req == NULL || http__failed(req, status, res)) {
        return;
    }
    snprintf(id, sizeof id, "%016llx", (unsigned long long)res->ids[0]);
    LOG(LOG_INFO, "token deleted", "token=%s", id);
    http__send_json(req, 200, json_pack("{s:s,s:b}", "id", id, "deleted", 1),
                    0);
}

/* DELETE /v1/acl/tokens/{id} */
void http__acl_tokens_delete(struct http_server *s,
                             h2o_req_t *req,
                             const struct http_args *a)
{
    struct fsm_cmd cmd;
    uint64_t id;

    if (!acl_enabled(s, req)) {
        return;
    }
    if (http__parse_id(a->id.base, a->id.len, &id) != 0) {
        http__send_error(req, 404, "not_found", "id", "no token %.*s",
                         (int)(a->id.len > 32 ? 32 : a->id.len), a->id.base);
        return;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_CMD_TOKEN_DEL;
    cmd.id = id;
    http__submit_for(s, req, &cmd, deleted_cb, 0);
}
