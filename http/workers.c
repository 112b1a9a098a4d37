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
#define SECRET_HEADER "x-rota-worker-secret"

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

/* The worker's secret from the request matches its record: 0, or the
 * error answered (404 unknown or down worker, 403 wrong or no secret). */
static int worker_auth(struct http_server *s, h2o_req_t *req, uint64_t id)
{
    ssize_t i =
        h2o_find_header_by_str(&req->headers, H2O_STRLIT(SECRET_HEADER), -1);
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
        const h2o_iovec_t *v = i >= 0 ? &req->headers.entries[i].value : NULL;
        bool ok = v != NULL && w.secret_hash.len == 64 &&
                  secret_hash(v->base, v->len, given) == 0 &&
                  CRYPTO_memcmp(given, w.secret_hash.p, 64) == 0;
        rv = ok ? 0 : ERR_FORBIDDEN;
    }
    fsm_read_end(rd);
    return rv;
}

/* Answer the error of a failed submit or a rejected command; true if so. */
static bool submit_failed(h2o_req_t *req,
                          int status,
                          const struct fsm_result *res)
{
    if (status == 0 && res->code == 0) {
        return false;
    }
    http__send_err(req, status != 0 ? status : res->code,
                   status != 0 ? NULL : res->field,
                   status != 0 ? NULL : res->msg);
    return true;
}

static void send_unknown_worker(h2o_req_t *req, uint64_t id, int rv)
{
    if (rv == ERR_NOTFOUND) {
        http__send_error(req, 404, "not_found", "id",
                         "no live worker %016llx: register again",
                         (unsigned long long)id);
    } else if (rv == ERR_FORBIDDEN) {
        http__send_error(req, 403, "forbidden", SECRET_HEADER,
                         "worker %016llx: the " SECRET_HEADER
                         " header is missing or not this registration's",
                         (unsigned long long)id);
    } else {
        http__send_err(req, rv, NULL, NULL);
    }
}

/* The worker of the path, authenticated by its registration secret;
 * false once answered. */
static bool worker_id(struct http_server *s,
                      h2o_req_t *req,
                      const struct http_args *a,
                      uint64_t *id)
{
    int rv;
    if (http__parse_id(a->id.base, a->id.len, id) != 0) {
        http__send_error(req, 404, "not_found", "id", "no such worker");
        return false;
    }
    if ((rv = worker_auth(s, req, *id)) != 0) {
        send_unknown_worker(req, *id, rv);
        return false;
    }
    return true;
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
    if (req == NULL || submit_failed(req, status, res)) {
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
    struct call *call = data;
    struct http_server *s = call->s;
    bool compact = call->kind != 0; /* Read before the call may go. */
    h2o_req_t *req = http__call_finish(call);
    struct fsm_reader *rd;
    struct sb b;
    unsigned out = 0;

    if (req == NULL) {
        return; /* The worker went away: its leases come back by reclaim. */
    }
    http__sb_init(&b, &req->pool);
    http__sb_puts(&b, "{\"leases\":[");
    if (n > 0 && fsm_read_begin(cluster_fsm(s->cluster), &rd) == 0) {
        for (unsigned i = 0; i < n; i++) {
            struct fsm_job job;
            if (fsm_get_job(rd, jobs[i], &job) != 0) {
                continue;
            }
            http__sb_puts(&b, out++ > 0 ? ",{\"job\":" : "{\"job\":");
            if (compact) {
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
    http__send_sb(req, 200, &b, 0);
}

void http__workers_lease(struct http_server *s,
                         h2o_req_t *req,
                         const struct http_args *a)
{
    json_t *o, *mx, *wt, *cp;
    uint64_t id;
    struct call *call;
    int rv;

    if (!worker_id(s, req, a, &id) ||
        (o = http__body_object(req, false)) == NULL) {
        return;
    }
    mx = json_object_get(o, "max");
    wt = json_object_get(o, "wait_ms");
    cp = json_object_get(o, "compact");
    if (cp != NULL && !json_is_boolean(cp)) {
        json_decref(o);
        http__send_error(req, 400, "invalid_argument", "compact",
                         "compact must be true or false");
        return;
    }
    unsigned max = json_is_integer(mx) && json_integer_value(mx) > 0
                       ? (unsigned)(json_integer_value(mx) > SCHED_MAX_LEASES
                                        ? SCHED_MAX_LEASES
                                        : json_integer_value(mx))
                       : 1;
    int64_t wait = json_is_integer(wt) ? json_integer_value(wt) : 0;
    bool compact = json_is_true(cp);
    json_decref(o);
    call = http__call_new(s, req);
    call->kind = compact; /* leased_cb: which job members to write. */
    rv = sched_lease(s->sched, id, max, wait, leased_cb, call);
    if (rv != 0) {
        http__call_unref(call);
        send_unknown_worker(req, id, rv);
    }
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

void http__workers_heartbeat(struct http_server *s,
                             h2o_req_t *req,
                             const struct http_args *a)
{
    json_t *o, *running;
    uint64_t id;
    struct sb b;

    if (!worker_id(s, req, a, &id) ||
        (o = http__body_object(req, false)) == NULL) {
        return;
    }
    running = json_object_get(o, "running");
    size_t cap = json_is_array(running) ? json_array_size(running) : 0;
    struct sched_held *held =
        h2o_mem_alloc_pool(&req->pool, (cap + 1) * sizeof *held);
    uint8_t *verdicts = h2o_mem_alloc_pool(&req->pool, cap + 1);
    unsigned n = parse_held(running, held), k = 0;
    json_decref(o);
    int rv = sched_heartbeat(s->sched, id, held, n, verdicts);
    if (rv != 0) {
        send_unknown_worker(req, id, rv);
        return;
    }
    http__sb_init(&b, &req->pool);
    http__sb_puts(&b, "{\"cancel\":[");
    for (unsigned i = 0; i < n; i++) {
        if (verdicts[i] == SCHED_HELD_CANCEL) {
            http__sb_printf(&b, "%s\"%016llx\"", k++ ? "," : "",
                            (unsigned long long)held[i].job);
        }
    }
    http__sb_puts(&b, "],\"lost\":[");
    k = 0;
    for (unsigned i = 0; i < n; i++) {
        if (verdicts[i] == SCHED_HELD_LOST) {
            http__sb_printf(&b, "%s\"%016llx\"", k++ ? "," : "",
                            (unsigned long long)held[i].job);
        }
    }
    http__sb_puts(&b, "]}");
    http__send_sb(req, 200, &b, 0);
}

/* ---- Complete ---------------------------------------------------------------
 */

static void completed_cb(void *data, int status, const struct fsm_result *res)
{
    static const char *const names[] = {"ok", "stale", "not_found", "rejected"};
    h2o_req_t *req = http__call_finish(data);
    bool any_stale = false;
    struct sb b;

    if (req == NULL || submit_failed(req, status, res)) {
        return;
    }
    http__sb_init(&b, &req->pool);
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
    http__send_sb(req, res->n_ids == 1 && any_stale ? 409 : 200, &b, 0);
}

/* One result object into @it (strings borrowed from @v or the pool). */
static bool parse_result(h2o_req_t *req, json_t *v, struct fsm_item *it)
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
        char *copy = h2o_mem_alloc_pool(&req->pool, rl + 1);
        memcpy(copy, rs != NULL ? rs : "", rl + 1);
        free(rs);
        it->result.p = copy;
        it->result.len = (uint32_t)rl;
    }
    return true;
}

void http__workers_complete(struct http_server *s,
                            h2o_req_t *req,
                            const struct http_args *a)
{
    json_t *o, *results, *v;
    struct fsm_item *items;
    uint64_t id;
    size_t i, n;

    if (!worker_id(s, req, a, &id) ||
        (o = http__body_object(req, false)) == NULL) {
        return;
    }
    results = json_object_get(o, "results");
    n = json_array_size(results);
    if (!json_is_array(results) || n == 0 || n > SCHED_MAX_RESULTS) {
        http__send_error(req, 400, "invalid_argument", "results",
                         "results: an array of 1..%d results",
                         SCHED_MAX_RESULTS);
        json_decref(o);
        return;
    }
    items = h2o_mem_alloc_pool(&req->pool, n * sizeof *items);
    memset(items, 0, n * sizeof *items);
    json_array_foreach(results, i, v)
    {
        if (!parse_result(req, v, &items[i])) {
            http__send_error(req, 400, "invalid_argument", "results",
                             "results[%zu]: id and token are required", i);
            json_decref(o);
            return;
        }
    }
    struct call *call = http__call_new(s, req);
    int rv =
        sched_complete(s->sched, id, items, (unsigned)n, completed_cb, call);
    if (rv != 0) {
        http__call_unref(call);
        http__send_err(req, rv, NULL, NULL);
    }
    json_decref(o); /* The items' strings went into the command. */
}

/* ---- Deregister, list
 * --------------------------------------------------------- */

static void deregistered_cb(void *data,
                            int status,
                            const struct fsm_result *res)
{
    h2o_req_t *req = http__call_finish(data);
    if (req == NULL || submit_failed(req, status, res)) {
        return;
    }
    http__send_json(req, 200, json_pack("{s:b}", "deregistered", 1), 0);
}

void http__workers_delete(struct http_server *s,
                          h2o_req_t *req,
                          const struct http_args *a)
{
    uint64_t id;
    if (!worker_id(s, req, a, &id)) {
        return;
    }
    struct call *call = http__call_new(s, req);
    int rv = sched_deregister(s->sched, id, deregistered_cb, call);
    if (rv != 0) {
        http__call_unref(call);
        http__send_err(req, rv, NULL, NULL);
    }
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
