/* /v1/workers: the worker protocol over HTTP. Each handler parses the
 * request, calls the leader's services (sched/sched.h) and renders the
 * answer; the decisions (dispatch, liveness, the retry policy) are made in
 * sched/. Every route here but GET /v1/workers runs on the leader
 * (followers forward them, see the route table in server.c). */

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "http/internal.h"

#define MAX_QUEUES_LEN 1024
#define SECRET_BYTES 32

/* ---- Registration secrets --------------------------------------------------
 * A registration answers a random secret (like Nomad's node SecretID) that
 * only that worker knows; the replicated record keeps its SHA-256. Every
 * lease, heartbeat, completion and deregistration must carry it, so nobody
 * (another worker with a valid token included) can act for that worker. */

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* SHA-256 of @s as 64 hex digits. */
static int secret_hash(const char *s, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    if (EVP_Digest(s, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32) {
        return ERR_NOMEM;
    }
    to_hex(md, 32, out);
    return 0;
}

/* @secret matches worker @id's record: 0, ERR_NOTFOUND (unknown or down
 * worker) or ERR_FORBIDDEN (wrong or no secret). */
static int worker_auth(struct http_server *s, h2o_iovec_t secret, uint64_t id)
{
    struct fsm_reader *rd;
    struct fsm_worker w;
    char given[65];
    int rv = fsm_read_begin(cluster_fsm(s->cluster), &rd);

    if (rv != 0) {
        return rv;
    }
    rv = fsm_get_worker(rd, id, &w);
    if (rv == 0 && w.down) {
        rv = ERR_NOTFOUND;
    }
    if (rv == 0) {
        bool ok = secret.base != NULL && w.secret_hash.len == 64 &&
                  secret_hash(secret.base, secret.len, given) == 0 &&
                  CRYPTO_memcmp(given, w.secret_hash.p, 64) == 0;
        rv = ok ? 0 : ERR_FORBIDDEN;
    }
    fsm_read_end(rd);
    return rv;
}

/* ---- One call of a registered worker ---------------------------------------
 * Lease, heartbeat, complete and deregister run on the leader, from an HTTP
 * request there or (the first three) relayed by a follower over the forward
 * channel (routes.c). The same code runs for both: the answer goes back the
 * way the call came. answer() and fail() answer once and free the call. */

struct wcall
{
    struct http_server *s;
    uint64_t id;                 /* The worker, authenticated. */
    h2o_iovec_t body;            /* Borrowed for the synchronous part. */
    struct call *call;           /* HTTP: the request while it waits, */
    h2o_req_t *req;              /* ... and once it is answered. */
    struct cluster_fwd_call *fc; /* Relayed. */
    h2o_mem_pool_t pool;         /* Relayed: parsing and the answer. */
    bool compact;                /* A lease: the compact job records. */
};

static void wcall_free(struct wcall *w)
{
    if (w->fc != NULL) {
        h2o_mem_clear_pool(&w->pool);
    }
    free(w);
}

/* HTTP: the request to answer, NULL if its client went away. */
static h2o_req_t *wcall_req(struct wcall *w)
{
    if (w->call != NULL) {
        w->req = http__call_finish(w->call);
        w->call = NULL;
    }
    return w->req;
}

/* Memory for the synchronous part of a handler. */
static h2o_mem_pool_t *scratch(struct wcall *w)
{
    return w->fc != NULL ? &w->pool : &w->call->req->pool;
}

/* In a callback: memory for the answer, or NULL if nobody waits for it any
 * more (the HTTP client went away; @w is freed). */
static h2o_mem_pool_t *answer_pool(struct wcall *w)
{
    h2o_req_t *req;
    if (w->fc != NULL) {
        return &w->pool;
    }
    if ((req = wcall_req(w)) == NULL) {
        wcall_free(w);
        return NULL;
    }
    return &req->pool;
}

static void answer(struct wcall *w, int status, struct sb *b)
{
    h2o_req_t *req;
    if (w->fc != NULL) {
        cluster_fwd_reply(w->fc, &(struct cluster_fwd_answer){
                                     .status = status,
                                     .body = b->p,
                                     .body_len = b->len,
                                 });
    } else if ((req = wcall_req(w)) != NULL) {
        http__send_sb(req, status, b, 0);
    }
    wcall_free(w);
}

/* Answer ERR_* @err naming @field (NULL: none) with a message (@fmt NULL:
 * the error's own). */
static void fail(struct wcall *w,
                 int err,
                 const char *field,
                 const char *fmt,
                 ...) __attribute__((format(printf, 4, 5)));
static void fail(struct wcall *w,
                 int err,
                 const char *field,
                 const char *fmt,
                 ...)
{
    char msg[512] = "";
    h2o_req_t *req;
    va_list ap;

    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    if (w->fc != NULL) {
        cluster_fwd_reply(w->fc, &(struct cluster_fwd_answer){
                                     .err = err,
                                     .field = field,
                                     .msg = msg,
                                 });
    } else if ((req = wcall_req(w)) != NULL) {
        http__send_err(req, err, field, msg);
    }
    wcall_free(w);
}

/* The failure of a submit or a rejected command; true once answered. */
static bool failed(struct wcall *w, int status, const struct fsm_result *res)
{
    if (status == 0 && res->code == 0) {
        return false;
    }
    if (status != 0) {
        fail(w, status, NULL, NULL);
    } else {
        fail(w, res->code, res->field, "%s", res->msg);
    }
    return true;
}

static void unknown_worker(struct wcall *w, int rv)
{
    unsigned long long id = (unsigned long long)w->id;
    if (rv == ERR_NOTFOUND) {
        fail(w, rv, "id", "no live worker %016llx: register again", id);
    } else if (rv == ERR_FORBIDDEN) {
        fail(w, rv, HTTP_WORKER_SECRET,
             "worker %016llx: the " HTTP_WORKER_SECRET
             " header is missing or not this registration's",
             id);
    } else {
        fail(w, rv, NULL, NULL);
    }
}

/* The call of the worker in the path (a->id), authenticated by its
 * registration secret; NULL once answered. Exactly one of @req (HTTP) and
 * @fc (relayed) is set. */
static struct wcall *wcall_new(struct http_server *s,
                               h2o_req_t *req,
                               struct cluster_fwd_call *fc,
                               h2o_iovec_t secret,
                               h2o_iovec_t body,
                               const struct http_args *a)
{
    struct wcall *w = calloc(1, sizeof *w);
    int rv;

    if (w != NULL && req != NULL &&
        (w->call = http__call_new(s, req)) == NULL) {
        free(w);
        w = NULL;
    }
    if (w == NULL) {
        if (req != NULL) {
            http__send_err(req, ERR_NOMEM, NULL, NULL);
        } else {
            cluster_fwd_reply(fc,
                              &(struct cluster_fwd_answer){.err = ERR_NOMEM});
        }
        return NULL;
    }
    w->s = s;
    w->body = body;
    w->fc = fc;
    if (fc != NULL) {
        h2o_mem_init_pool(&w->pool);
    }
    if (http__parse_id(a->id.base, a->id.len, &w->id) != 0) {
        fail(w, ERR_NOTFOUND, "id", "no such worker");
        return NULL;
    }
    if ((rv = worker_auth(s, secret, w->id)) != 0) {
        unknown_worker(w, rv);
        return NULL;
    }
    return w;
}

/* Run @fn for an HTTP request or a relayed call, once its worker is
 * authenticated. */
static void serve_http(struct http_server *s,
                       h2o_req_t *req,
                       const struct http_args *a,
                       void (*fn)(struct wcall *w))
{
    ssize_t i = h2o_find_header_by_str(&req->headers,
                                       H2O_STRLIT(HTTP_WORKER_SECRET), -1);
    struct wcall *w = wcall_new(
        s, req, NULL,
        i >= 0 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0),
        req->entity, a);
    if (w != NULL) {
        fn(w);
    }
}

static void serve_relayed(struct http_server *s,
                          const struct http_relayed *r,
                          const struct http_args *a,
                          void (*fn)(struct wcall *w))
{
    struct wcall *w = wcall_new(s, NULL, r->fc, r->secret, r->body, a);
    if (w != NULL) {
        fn(w);
    }
}

/* The body as a JSON object ({} when empty); NULL once answered 400. */
static json_t *wcall_body(struct wcall *w)
{
    char why[256];
    json_t *o = http__parse_body(w->body.base, w->body.len, true, false, why,
                                 sizeof why);
    if (o == NULL) {
        fail(w, ERR_INVALID, "", "%s", why);
    }
    return o;
}

/* ---- Register ------------------------------------------------------------ */

static void registered_cb(void *data, int status, const struct fsm_result *res)
{
    struct call *call = data;
    struct sched *sc = call->s->sched;
    char secret[2 * SECRET_BYTES + 1];
    h2o_req_t *req;
    char id[20];

    memcpy(secret, call + 1, sizeof secret); /* Wiped with the call. */
    OPENSSL_cleanse(call + 1, sizeof secret);
    req = http__call_finish(call);
    if (req == NULL || http__failed(req, status, res)) {
        OPENSSL_cleanse(secret, sizeof secret);
        return;
    }
    snprintf(id, sizeof id, "%016llx", (unsigned long long)res->ids[0]);
    http__send_json(req, 201,
                    json_pack("{s:s,s:s,s:i,s:i}", "id", id, "secret", secret,
                              "heartbeat_ms", sched_heartbeat_ms(sc), "ttl_ms",
                              sched_worker_ttl_ms(sc)),
                    0);
    OPENSSL_cleanse(secret, sizeof secret);
}

/* Submit the registration with a fresh secret, answered by registered_cb. */
static void register_with_secret(struct http_server *s,
                                 h2o_req_t *req,
                                 struct fsm_worker *w)
{
    unsigned char raw[SECRET_BYTES];
    char hash[65];
    struct call *call;
    int rv;

    if (RAND_bytes(raw, sizeof raw) != 1) {
        http__send_err(req, ERR_UNAVAILABLE, NULL, "no random bytes");
        return;
    }
    call = http__call_new_extra(s, req, 2 * SECRET_BYTES + 1);
    to_hex(raw, sizeof raw, (char *)(call + 1));
    OPENSSL_cleanse(raw, sizeof raw);
    rv = secret_hash((char *)(call + 1), 2 * SECRET_BYTES, hash);
    w->secret_hash.p = hash;
    w->secret_hash.len = 64;
    if (rv == 0) {
        rv = sched_register(s->sched, w, registered_cb, call);
    }
    if (rv != 0) {
        OPENSSL_cleanse(call + 1, 2 * SECRET_BYTES + 1);
        http__call_unref(call);
        http__send_err(req, rv, NULL, NULL);
    }
}

/* A worker token limited to queues registers only those queues. */
static bool queues_allowed(struct http_server *s,
                           h2o_req_t *req,
                           const struct http_args *a,
                           const char *queues)
{
    const char *p = queues;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (!http__acl_check(s, req, a, (struct fsm_str){p, (uint32_t)n},
                             (struct fsm_str){NULL, 0}, "queues")) {
            return false;
        }
        p += comma != NULL ? n + 1 : n;
    }
    return true;
}

/* The optional "host" of a registration: true with *host NULL (absent or
 * null) or the text; false when answered 400. Bounded like "name". */
static bool parse_host(h2o_req_t *req, json_t *o, const char **host)
{
    json_t *h = json_object_get(o, "host");
    *host = NULL;
    if (h == NULL || json_is_null(h)) {
        return true;
    }
    *host = json_string_value(h);
    if (*host == NULL || (*host)[0] == '\0' || strlen(*host) > FSM_MAX_STR) {
        http__send_error(req, 400, "invalid_argument", "host",
                         "host: a string of 1..%d bytes", FSM_MAX_STR);
        return false;
    }
    return true;
}

/* POST /v1/workers {"name", "host", "queues": [...], "concurrency",
 * "types": [...]}: "types" are the job types it runs (absent: every type
 * but shell); "host" (optional) the machine it runs on, kept in the
 * attempts it makes. */
void http__workers_register(struct http_server *s,
                            h2o_req_t *req,
                            const struct http_args *a)
{
    json_t *o = http__body_object(req, false), *conc;
    char queues[MAX_QUEUES_LEN + 1], types[MAX_QUEUES_LEN + 1];
    struct fsm_worker w;
    const char *name, *host;
    long long n = 1;

    if (o == NULL) {
        return;
    }
    name = json_string_value(json_object_get(o, "name"));
    if ((conc = json_object_get(o, "concurrency")) != NULL) {
        n = json_is_integer(conc) ? json_integer_value(conc) : -1;
    }
    if (name == NULL || name[0] == '\0' || strlen(name) > FSM_MAX_STR) {
        /* Bounded here, before anything is proposed. */
        http__send_error(req, 400, "invalid_argument", "name",
                         "name: required, 1..%d bytes", FSM_MAX_STR);
    } else if (parse_host(req, o, &host) &&
               http__parse_names(req, o, "queues", false, queues,
                                 sizeof queues) &&
               http__parse_names(req, o, "types", true, types, sizeof types)) {
        if (n < 1 || n > 10000) {
            http__send_error(req, 400, "invalid_argument", "concurrency",
                             "concurrency: an integer in 1..10000");
        } else {
            if (!queues_allowed(s, req, a, queues)) {
                json_decref(o);
                return;
            }
            memset(&w, 0, sizeof w);
            w.name = (struct fsm_str){name, (uint32_t)strlen(name)};
            if (host != NULL) {
                w.host = (struct fsm_str){host, (uint32_t)strlen(host)};
            }
            w.queues = (struct fsm_str){queues, (uint32_t)strlen(queues)};
            w.types = (struct fsm_str){types, (uint32_t)strlen(types)};
            w.concurrency = (uint32_t)n;
            register_with_secret(s, req, &w);
        }
    }
    json_decref(o);
}

/* ---- Lease (long-poll) ----------------------------------------------------
 */

static void leased_cb(void *data, const uint64_t *jobs, unsigned n)
{
    struct wcall *w = data;
    h2o_mem_pool_t *pool = answer_pool(w);
    struct fsm_reader *rd;
    struct sb b;
    unsigned out = 0;

    if (pool == NULL) {
        return; /* The worker went away: its leases come back by reclaim. */
    }
    http__sb_init(&b, pool);
    http__sb_puts(&b, "{\"leases\":[");
    if (n > 0 && fsm_read_begin(cluster_fsm(w->s->cluster), &rd) == 0) {
        for (unsigned i = 0; i < n; i++) {
            struct fsm_job job;
            if (fsm_get_job(rd, jobs[i], &job) != 0) {
                continue;
            }
            http__sb_puts(&b, out++ > 0 ? ",{\"job\":" : "{\"job\":");
            if (w->compact) {
                http__job_write_run(&b, &job);
            } else {
                http__job_write(&b, &job);
            }
            http__sb_puts(&b, ",\"token\":");
            http__sb_u64(&b, job.lease_token);
            http__sb_puts(&b, ",\"attempt\":");
            http__sb_u64(&b, job.attempts);
            http__sb_puts(&b, "}");
        }
        fsm_read_end(rd);
    }
    http__sb_puts(&b, "]}");
    answer(w, 200, &b);
}

static void lease(struct wcall *w)
{
    json_t *o = wcall_body(w), *mx, *wt, *cp;
    int rv;

    if (o == NULL) {
        return;
    }
    mx = json_object_get(o, "max");
    wt = json_object_get(o, "wait_ms");
    cp = json_object_get(o, "compact");
    if (cp != NULL && !json_is_boolean(cp)) {
        json_decref(o);
        fail(w, ERR_INVALID, "compact", "compact must be true or false");
        return;
    }
    unsigned max = json_is_integer(mx) && json_integer_value(mx) > 0
                       ? (unsigned)(json_integer_value(mx) > SCHED_MAX_LEASES
                                        ? SCHED_MAX_LEASES
                                        : json_integer_value(mx))
                       : 1;
    int64_t wait = json_is_integer(wt) ? json_integer_value(wt) : 0;
    w->compact = json_is_true(cp); /* leased_cb: which members to write. */
    json_decref(o);
    rv = sched_lease(w->s->sched, w->id, max, wait, leased_cb, w);
    if (rv != 0) {
        unknown_worker(w, rv);
    }
}

void http__workers_lease(struct http_server *s,
                         h2o_req_t *req,
                         const struct http_args *a)
{
    serve_http(s, req, a, lease);
}

void http__workers_lease_relayed(struct http_server *s,
                                 const struct http_relayed *r,
                                 const struct http_args *a)
{
    serve_relayed(s, r, a, lease);
}

/* ---- Heartbeat ------------------------------------------------------------
 */

/* The leases listed in "running" (those with a readable id). */
static unsigned parse_held(json_t *running, struct sched_held *held)
{
    size_t i;
    unsigned n = 0;
    json_t *v;
    json_array_foreach(running, i, v)
    {
        const char *js = json_string_value(json_object_get(v, "id"));
        json_t *tk = json_object_get(v, "token");
        if (js == NULL || http__parse_id(js, strlen(js), &held[n].job) != 0) {
            continue;
        }
        held[n].has_token = json_is_integer(tk);
        held[n].token =
            held[n].has_token ? (uint64_t)json_integer_value(tk) : 0;
        n++;
    }
    return n;
}

/* The jobs of @held whose verdict is @v, as a JSON array of ids. */
static void put_verdicts(struct sb *b,
                         const struct sched_held *held,
                         const uint8_t *verdicts,
                         unsigned n,
                         uint8_t v)
{
    unsigned k = 0;
    http__sb_puts(b, "[");
    for (unsigned i = 0; i < n; i++) {
        if (verdicts[i] == v) {
            http__sb_puts(b, k++ ? "," : "");
            http__sb_id(b, held[i].job);
        }
    }
    http__sb_puts(b, "]");
}

static void heartbeat(struct wcall *w)
{
    h2o_mem_pool_t *pool = scratch(w);
    json_t *o = wcall_body(w), *running;
    struct sb b;

    if (o == NULL) {
        return;
    }
    running = json_object_get(o, "running");
    size_t cap = json_is_array(running) ? json_array_size(running) : 0;
    struct sched_held *held =
        h2o_mem_alloc_pool(pool, (cap + 1) * sizeof *held);
    uint8_t *verdicts = h2o_mem_alloc_pool(pool, cap + 1);
    unsigned n = parse_held(running, held);
    json_decref(o);
    int rv = sched_heartbeat(w->s->sched, w->id, held, n, verdicts);
    if (rv != 0) {
        unknown_worker(w, rv);
        return;
    }
    http__sb_init(&b, pool);
    http__sb_puts(&b, "{\"cancel\":");
    put_verdicts(&b, held, verdicts, n, SCHED_HELD_CANCEL);
    http__sb_puts(&b, ",\"lost\":");
    put_verdicts(&b, held, verdicts, n, SCHED_HELD_LOST);
    http__sb_puts(&b, "}");
    answer(w, 200, &b);
}

void http__workers_heartbeat(struct http_server *s,
                             h2o_req_t *req,
                             const struct http_args *a)
{
    serve_http(s, req, a, heartbeat);
}

void http__workers_heartbeat_relayed(struct http_server *s,
                                     const struct http_relayed *r,
                                     const struct http_args *a)
{
    serve_relayed(s, r, a, heartbeat);
}

/* ---- Complete ---------------------------------------------------------------
 */

static void completed_cb(void *data, int status, const struct fsm_result *res)
{
    static const char *const names[] = {"ok", "stale", "not_found", "rejected"};
    struct wcall *w = data;
    h2o_mem_pool_t *pool;
    bool any_stale = false;
    struct sb b;

    if (failed(w, status, res) || (pool = answer_pool(w)) == NULL) {
        return;
    }
    http__sb_init(&b, pool);
    http__sb_puts(&b, "{\"results\":[");
    for (uint32_t i = 0; i < res->n_ids; i++) {
        unsigned o = res->existed[i] < 4 ? res->existed[i] : 3;
        any_stale |= o == FSM_ITEM_STALE;
        http__sb_puts(&b, i ? ",{\"id\":" : "{\"id\":");
        http__sb_id(&b, res->ids[i]);
        http__sb_puts(&b, ",\"status\":\"");
        http__sb_puts(&b, names[o]);
        http__sb_puts(&b, "\"}");
    }
    http__sb_puts(&b, "]}");
    /* A single stale result is a 409 (the lease was lost): the worker must
     * not retry it. Batches answer 200 with a status per result. */
    answer(w, res->n_ids == 1 && any_stale ? 409 : 200, &b);
}

/* One result object into @it (strings borrowed from @v or @pool). */
static bool parse_result(h2o_mem_pool_t *pool, json_t *v, struct fsm_item *it)
{
    const char *js = json_string_value(json_object_get(v, "id"));
    json_t *tk = json_object_get(v, "token"), *r;
    const char *e, *out;

    if (js == NULL || http__parse_id(js, strlen(js), &it->job_id) != 0 ||
        !json_is_integer(tk)) {
        return false;
    }
    it->token = (uint64_t)json_integer_value(tk);
    it->ok = json_is_true(json_object_get(v, "ok"));
    it->retryable = !json_is_false(json_object_get(v, "retryable"));
    it->exit_code =
        (int32_t)json_integer_value(json_object_get(v, "exit_code"));
    if ((e = json_string_value(json_object_get(v, "error"))) != NULL) {
        it->error.p = e;
        it->error.len = (uint32_t)strnlen(e, FSM_MAX_ERROR);
    }
    if ((out = json_string_value(json_object_get(v, "output"))) != NULL) {
        it->output.p = out;
        it->output.len = (uint32_t)strnlen(out, 65536);
    }
    r = json_object_get(v, "result");
    if (r != NULL && !json_is_null(r)) {
        char *rs = json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY);
        size_t rl = rs != NULL ? strlen(rs) : 0;
        char *copy = h2o_mem_alloc_pool(pool, rl + 1);
        memcpy(copy, rs != NULL ? rs : "", rl + 1);
        free(rs);
        it->result.p = copy;
        it->result.len = (uint32_t)rl;
    }
    return true;
}

static void complete(struct wcall *w)
{
    h2o_mem_pool_t *pool = scratch(w);
    json_t *o = wcall_body(w), *results, *v;
    struct fsm_item *items;
    size_t i, n;
    int rv;

    if (o == NULL) {
        return;
    }
    results = json_object_get(o, "results");
    n = json_array_size(results);
    if (!json_is_array(results) || n == 0 || n > SCHED_MAX_RESULTS) {
        json_decref(o);
        fail(w, ERR_INVALID, "results", "results: an array of 1..%d results",
             SCHED_MAX_RESULTS);
        return;
    }
    items = h2o_mem_alloc_pool(pool, n * sizeof *items);
    memset(items, 0, n * sizeof *items);
    json_array_foreach(results, i, v)
    {
        if (!parse_result(pool, v, &items[i])) {
            json_decref(o);
            fail(w, ERR_INVALID, "results",
                 "results[%zu]: id and token are required", i);
            return;
        }
    }
    rv =
        sched_complete(w->s->sched, w->id, items, (unsigned)n, completed_cb, w);
    json_decref(o); /* The items' strings went into the command. */
    if (rv != 0) {
        fail(w, rv, NULL, NULL);
    }
}

void http__workers_complete(struct http_server *s,
                            h2o_req_t *req,
                            const struct http_args *a)
{
    serve_http(s, req, a, complete);
}

void http__workers_complete_relayed(struct http_server *s,
                                    const struct http_relayed *r,
                                    const struct http_args *a)
{
    serve_relayed(s, r, a, complete);
}

/* ---- Deregister, list
 * --------------------------------------------------------- */

static void deregistered_cb(void *data,
                            int status,
                            const struct fsm_result *res)
{
    struct wcall *w = data;
    h2o_mem_pool_t *pool;
    struct sb b;

    if (failed(w, status, res) || (pool = answer_pool(w)) == NULL) {
        return;
    }
    http__sb_init(&b, pool);
    http__sb_puts(&b, "{\"deregistered\":true}");
    answer(w, 200, &b);
}

static void deregister(struct wcall *w)
{
    int rv = sched_deregister(w->s->sched, w->id, deregistered_cb, w);
    if (rv != 0) {
        fail(w, rv, NULL, NULL);
    }
}

void http__workers_delete(struct http_server *s,
                          h2o_req_t *req,
                          const struct http_args *a)
{
    serve_http(s, req, a, deregister);
}

struct list_workers
{
    struct sched *sc;
    struct sb *b;
    unsigned n;
};

static void list_worker_cb(void *data, const struct fsm_worker *w)
{
    struct list_workers *lw = data;
    struct sched_worker_view v;
    char seen[40] = "";

    sched_worker_view(lw->sc, w->id, &v);
    http__sb_printf(lw->b,
                    "%s{\"id\":\"%016llx\",\"name\":", lw->n++ ? "," : "",
                    (unsigned long long)w->id);
    http__sb_json_str(lw->b, w->name);
    http__sb_puts(lw->b, ",\"queues\":");
    http__sb_json_str(lw->b, w->queues);
    http__sb_puts(lw->b, ",\"types\":");
    http__sb_json_str(lw->b, w->types);
    http__sb_puts(lw->b, ",\"host\":");
    if (w->host.len > 0) {
        http__sb_json_str(lw->b, w->host);
    } else {
        http__sb_puts(lw->b, "null");
    }
    if (v.last_seen > 0 && !w->down) {
        http__format_time(v.last_seen, seen, sizeof seen);
    }
    http__sb_printf(lw->b,
                    ",\"concurrency\":%u,\"running\":%u,\"state\":\"%s\","
                    "\"last_heartbeat\":%s%s%s}",
                    w->concurrency, v.running,
                    w->down  ? "down"
                    : v.late ? "late"
                             : "alive",
                    seen[0] ? "\"" : "", seen[0] ? seen : "null",
                    seen[0] ? "\"" : "");
}

void http__workers_list(struct http_server *s,
                        h2o_req_t *req,
                        const struct http_args *a)
{
    struct fsm_reader *rd;
    struct sb b;
    struct list_workers lw = {s->sched, &b, 0};
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        return;
    }
    http__sb_init(&b, &req->pool);
    http__sb_puts(&b, "{\"workers\":[");
    fsm_workers(rd, list_worker_cb, &lw);
    fsm_read_end(rd);
    http__sb_puts(&b, "]}");
    http__send_sb(req, 200, &b, cluster_applied_index(s->cluster));
}
