#ifndef HTTP_INTERNAL_H_
#define HTTP_INTERNAL_H_

#include <h2o.h>
#include <jansson.h>
#include <stdbool.h>

#include "http/http.h"
#include "sched/sched.h"

struct events;
struct sender;
struct http_args;
struct sb;

struct http_server
{
    uv_loop_t *loop;
    struct cluster *cluster;
    struct http_config cfg;
    char *addr;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    SSL_CTX *ssl_ctx; /* Secure mode (HTTPS only), else NULL. */
    uv_tcp_t listener;
    void (*close_cb)(void *data);
    void *close_data;
    /* Metrics. */
    unsigned long long requests[6]; /* By status class 1xx..5xx. */
    unsigned long long submitted;   /* Jobs created through this node. */
    unsigned long long forwarded;
    struct sched *sched; /* The leader's services (sched/sched.h). */
    /* Output limits (server.c). Every accepted connection is on @conns;
     * @sweep closes the ones whose answer stalled. @buffered: bytes of
     * answers sent and not yet written out (their request still alive). */
    h2o_linklist_t conns;
    uv_timer_t sweep;
    h2o_linklist_t deferred; /* struct call, run one per loop iteration. */
    h2o_linklist_t held;     /* Answers counted in @buffered (server.c). */
    uv_idle_t deferred_idle;
    size_t buffered;
    unsigned long long stalled_closed; /* Connections closed by @sweep. */
    unsigned long long busy_refused;   /* Answers refused over @buffered. */
    /* Requests held for a leader (hold.c). */
    struct hold_state *hold;
    unsigned long long leader_held;         /* Requests held. */
    unsigned long long leader_held_expired; /* ... answered 503 after it. */
    struct events *events;                  /* events.c */
    struct sender *webhooks;                /* webhook_send.c */
};

/* A request waiting for an async answer (submit, forward, barrier...).
 * Refcounted: the callback holds one reference, the request pool the other
 * (its dispose clears @req if the client went away first). */
struct call
{
    int refs;
    h2o_req_t *req;
    struct http_server *s;
    int kind;      /* What to render on completion (jobs.c). */
    unsigned n;    /* Jobs in a submit. */
    bool batch;    /* Answer with {"jobs": [...]}. */
    char what[16]; /* Route name for messages. */
    uint64_t id;   /* The object the answer is about. */
    /* http__defer(): on s->deferred until @deferred_cb runs. */
    h2o_linklist_t deferred;
    void (*deferred_cb)(struct call *call);
};

/* server.c */
struct call *http__call_new(struct http_server *s, h2o_req_t *req);
/* With @extra bytes of caller data right after the struct. */
struct call *http__call_new_extra(struct http_server *s,
                                  h2o_req_t *req,
                                  size_t extra);
/* Drops a reference; returns the request, or NULL if it went away. */
h2o_req_t *http__call_finish(struct call *call);
void http__call_unref(struct call *call);
/* Forward @req to the leader and relay the answer. */
void http__forward(struct http_server *s, h2o_req_t *req);
/* The server a request came to. */
struct http_server *http__server_of(h2o_req_t *req);
/* Answers over this many bytes are refused (503) while the server holds
 * s->cfg.max_buffered bytes of answers not yet written. */
#define HTTP_BIG_ANSWER (64 << 10)
/* True (after answering 503 + Retry-After) if @s already holds its limit
 * of unwritten answers: for handlers about to render a big one. */
bool http__output_full(struct http_server *s, h2o_req_t *req);
/* Count @len bytes of answer against s->buffered until @req's pool goes;
 * false (nothing counted) if a big answer does not fit. */
bool http__output_reserve(struct http_server *s, h2o_req_t *req, size_t len);
/* Run @cb(call) later, one deferred call per loop iteration in order: for
 * answers that take long to render (a big list page), so that a burst of
 * them does not hold the loop for all of them at once. @cb owns the
 * callback's reference (http__call_finish); it also runs, at once, when the
 * server closes (s->ctx.shutdown_requested is then set). */
void http__defer(struct http_server *s,
                 struct call *call,
                 void (*cb)(struct call *call));

/* hold.c: requests held through elections (--leader-hold). */
int http__hold_init(struct http_server *s);
/* Park @req, which would get @err (ERR_NOLEADER, ERR_NOTLEADER, or an
 * unknown outcome of a request safe to run again) and @msg, until a leader
 * is known; true if parked (do not answer it), false once its hold ran
 * out or when holding is off, full or closing (answer it). */
bool http__hold(struct http_server *s,
                h2o_req_t *req,
                int err,
                const char *msg);
/* May @req run a second time if its first outcome is unknown? */
bool http__hold_safe_again(h2o_req_t *req);
void http__hold_close(struct http_server *s);
void http__hold_free(struct http_server *s);

/* events.c: GET /v1/events (SSE) and ?wait= on a job. */
#define HTTP_EVENTS_KEEPALIVE_MS 15000
int http__events_init(struct http_server *s);
void http__events_close(struct http_server *s);
void http__events_free(struct http_server *s);
/* Streams open, streams dropped (too slow), waiting requests. */
void http__events_stats(struct http_server *s, unsigned long long out[3]);
void http__events_stream(struct http_server *s,
                         h2o_req_t *req,
                         const struct http_args *a);
/* GET /v1/jobs/{id}?wait=: 0 to answer now (no wait, a bad id, the job is
 * final), 1 when parked until the job ends or the wait does, -1 when
 * answered (400/503). */
int http__job_wait(struct http_server *s, h2o_req_t *req, uint64_t id);
/* One event name ("job.dead") or prefix ("job.*") as a mask of bits
 * 1 << FSM_EV_* (leader.changed: FSM_EV_MAX + 1); -1 if unknown. */
int http__event_mask(const char *name, uint32_t *mask);

/* webhooks.c, webhook_send.c */
int http__webhooks_init(struct http_server *s);
void http__webhooks_close(struct http_server *s);
void http__webhooks_free(struct http_server *s);
/* Sent, answered 2xx, failed, expired: this node, while leader. */
void http__webhooks_stats(struct http_server *s, unsigned long long out[4]);
void http__webhooks_create(struct http_server *s,
                           h2o_req_t *req,
                           const struct http_args *a);
void http__webhooks_list(struct http_server *s,
                         h2o_req_t *req,
                         const struct http_args *a);
void http__webhook_get(struct http_server *s,
                       h2o_req_t *req,
                       const struct http_args *a);
void http__webhook_delete(struct http_server *s,
                          h2o_req_t *req,
                          const struct http_args *a);
void http__webhook_deliveries(struct http_server *s,
                              h2o_req_t *req,
                              const struct http_args *a);

/* An event's JSON object (SSE data lines, webhook bodies). */
void http__event_data(struct sb *b, const struct fsm_event *e);
/* The plain GET /v1/jobs/{id} answer from the local state (jobs.c). */
void http__job_answer(struct http_server *s, h2o_req_t *req, uint64_t id);

/* reply.c */
void http__send_json(h2o_req_t *req, int status, json_t *body, uint64_t index);
void http__send_text(h2o_req_t *req,
                     int status,
                     const char *ctype,
                     const char *body,
                     size_t len);
void http__send_error(h2o_req_t *req,
                      int status,
                      const char *code,
                      const char *field,
                      const char *fmt,
                      ...) __attribute__((format(printf, 5, 6)));
/* An ERR_* code with an optional field and message. */
void http__send_err(h2o_req_t *req,
                    int err,
                    const char *field,
                    const char *msg);
/* Value of query parameter @name (URL-decoded into @buf); NULL if absent. */
const char *http__query(h2o_req_t *req,
                        const char *name,
                        char *buf,
                        size_t size);

/* Query parameter @name as a non-empty string in @buf (*out points to it);
 * false if absent or empty. (jobs.c) */
bool http__query_str(h2o_req_t *req,
                     const char *name,
                     char *buf,
                     size_t size,
                     struct fsm_str *out);

/* job_json.c: JSON ↔ job. */
struct job_input
{
    struct fsm_job job;
    char *spec; /* malloc'ed JSON text (job.spec points into it). */
    char *strs; /* malloc'ed copies of type/queue/user/key. */
    uint64_t *deps;
    uint64_t hash;
};
/* What a job is parsed against. */
struct job_parse_ctx
{
    int64_t now_ms;     /* For "delay" and the first run of a schedule. */
    size_t max_payload; /* Encoded payload limit (ERR_TOOLARGE above). */
    long index;         /* Job @index of a batch: field names are "jobs[2].x"
                           (formatted only for an error); -1: "x". */
};
/* Where a parse error goes: the field it names and the message. */
struct job_parse_err
{
    char *field;
    size_t field_size;
    char *msg;
    size_t msg_size;
};
/* Parse and validate one job object. On error writes @err's field (prefixed
 * with @ctx's prefix) and message and returns ERR_INVALID or ERR_TOOLARGE. */
int http__job_parse(const struct job_parse_ctx *ctx,
                    json_t *obj,
                    struct job_input *in,
                    struct job_parse_err *err);
void http__job_input_free(struct job_input *in);
/* Parse a PATCH body into @in and @mask (FSM_PATCH_* of the fields given). */
int http__job_patch_parse(const struct job_parse_ctx *ctx,
                          json_t *obj,
                          struct job_input *in,
                          uint32_t *mask,
                          struct job_parse_err *err);
int http__parse_id(const char *s, size_t len, uint64_t *id);
void http__format_time(int64_t ms, char *buf, size_t size);
int http__parse_time(const char *s, int64_t *ms);
int http__parse_duration(json_t *v, int64_t *ms);

/* render.c: JSON text built in the request pool. */
struct sb
{
    h2o_mem_pool_t *pool;
    char *p;
    size_t len, cap;
};
/* The reason phrase of the status line for @status ("Created"). */
const char *http__reason(int status);

void http__sb_init(struct sb *b, h2o_mem_pool_t *pool);
/* Once an answer's first record is written: room for @more records of
 * about its size (at most 4 MiB), so an answer of many grows once instead
 * of doubling (each growth is a new allocation and a copy). */
void http__sb_reserve_records(struct sb *b, size_t more);
void http__sb_put(struct sb *b, const char *s, size_t n);
void http__sb_puts(struct sb *b, const char *s);
/* A number; an id as the API spells it, quoted ("%016llx"): no printf. */
void http__sb_u64(struct sb *b, unsigned long long v);
void http__sb_id(struct sb *b, uint64_t v);
void http__sb_printf(struct sb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append @s as a JSON string literal (escaped). */
void http__sb_json_str(struct sb *b, struct fsm_str s);
/* Append the job record as a JSON object. */
void http__job_write(struct sb *b, const struct fsm_job *job);
/* Only what a worker needs to run @job (a compact lease): id, type, queue,
 * priority, attempts, max_attempts, user_id, the spec's members (payload,
 * name, tags, ...) and timeout. */
void http__job_write_run(struct sb *b, const struct fsm_job *job);
void http__send_sb(h2o_req_t *req, int status, struct sb *b, uint64_t index);

/* reply.c: requests and submits shared by the handlers. */
/* The one body parser: JSON with duplicate keys refused (an empty body is
 * refused). Answers 400 itself and returns NULL. */
json_t *http__body_json(h2o_req_t *req);
/* The same, for a JSON object; an empty body is {} unless @required. */
json_t *http__body_object(h2o_req_t *req, bool required);
/* What both use, on bytes from anywhere (a relayed call's body): NULL with
 * the reason in @why (the 400's message). */
json_t *http__parse_body(const char *p,
                         size_t len,
                         bool object,
                         bool required,
                         char *why,
                         size_t size);
/* Parse a job id from @s; answers 404 itself and returns false. */
bool http__id_or_404(h2o_req_t *req, const char *s, size_t len, uint64_t *id);
/* The one "encode + submit + free" path. */
int http__submit_cmd(struct http_server *s,
                     const struct fsm_cmd *cmd,
                     cluster_submit_cb cb,
                     void *data);
/* Submit @cmd for @req (call->kind = @kind); the answer comes from @cb. */
void http__submit_for(struct http_server *s,
                      h2o_req_t *req,
                      const struct fsm_cmd *cmd,
                      cluster_submit_cb cb,
                      int kind);
/* The common failure answers of a submit callback; true if answered. */
bool http__failed(h2o_req_t *req, int status, const struct fsm_result *res);
/* Body field @field: an array of names without commas (non-empty unless
 * @optional; absent or null then gives ""), joined with commas into @out.
 * Answers 400 itself and returns false. */
bool http__parse_names(h2o_req_t *req,
                       json_t *o,
                       const char *field,
                       bool optional,
                       char *out,
                       size_t size);
/* Answer with job @id as the local fsm has it. */
void http__send_job(struct http_server *s,
                    h2o_req_t *req,
                    uint64_t id,
                    int status);

/* ---- The route table (routes.c) ----------------------------------------- */

/* The ACL token that authenticated a request (acl.c), copied into the
 * request's pool by the router. */
struct acl_token
{
    uint64_t id;
    char role[8];          /* "admin", "submit", "worker", "read". */
    struct fsm_str name;   /* Pool memory. */
    struct fsm_str queues; /* Comma-separated; "" = all. */
    struct fsm_str types;  /* Comma-separated; "" = all. */
    int64_t expires_at;
};

/* What a route's pattern captured: {id} (or {name}), the one variable
 * segment of every pattern; and who is calling. */
struct http_args
{
    h2o_iovec_t id;
    /* The caller's token when ACLs are on and the route needs a role;
     * NULL otherwise (no limits apply). */
    const struct acl_token *token;
};

typedef void (*http_handler)(struct http_server *s,
                             h2o_req_t *req,
                             const struct http_args *a);

enum {
    ROUTE_LEADER = 1 << 0,       /* Followers forward it to the leader. */
    ROUTE_LINEARIZABLE = 1 << 1, /* Leader too with ?consistency=... */
    ROUTE_METRICS = 1 << 2,      /* No role with --metrics-public. */
    /* A follower with an open forward channel runs the handler itself and
     * sends the encoded command to the leader (cluster_fwd_send). */
    ROUTE_CHANNEL = 1 << 3,
};

/* A call a follower relayed to the leader over the forward channel
 * (http__relay_handle): the route's {id}, the worker's secret header and
 * the body; answered once with cluster_fwd_reply(@fc). Borrowed for the
 * handler's synchronous part. */
struct http_relayed
{
    struct cluster_fwd_call *fc;
    h2o_iovec_t secret, body;
};
typedef void (*http_relay_handler)(struct http_server *s,
                                   const struct http_relayed *r,
                                   const struct http_args *a);

struct http_route
{
    const char *method;
    const char *pattern; /* "/v1/jobs/{id}/runs": {x} is one segment. */
    http_handler handler;
    unsigned flags;
    const char *role; /* Needed to call it (NULL: anyone). */
    /* A leader route's handler for calls a follower relays over an open
     * forward channel instead of forwarding them over HTTP (NULL: none). */
    http_relay_handler relay;
};

extern const struct http_route http__routes[];
extern const size_t http__n_routes;

/* The route for @method on @path (the normalized path, no query), with its
 * {variable} segment in *a; NULL if none, with *path_known telling 405 (a
 * pattern matched the path, not the method) from 404. Pure: no request, no
 * server (tests/fuzz/fuzz_routes.c). */
const struct http_route *http__route_find(const char *method,
                                          size_t method_len,
                                          const char *path,
                                          size_t path_len,
                                          struct http_args *a,
                                          bool *path_known);
/* Route @req: the handler, a forward to the leader, 404 or 405. */
void http__route(struct http_server *s, h2o_req_t *req);

/* ---- Access control (acl.c) --------------------------------------------- */

/* The router's check of @r before forwarding or handling: with ACLs on,
 * authenticate the Bearer token (401), check its role against the route's
 * (403) and keep it in a->token. False once answered. */
bool http__acl_authorize(struct http_server *s,
                         h2o_req_t *req,
                         const struct http_route *r,
                         struct http_args *a);
/* May the caller act on a job of @queue and @type? True without a token
 * and for tokens without limits (an empty @queue or @type is not judged). */
bool http__acl_allows(const struct http_args *a,
                      struct fsm_str queue,
                      struct fsm_str type);
/* http__acl_allows, or answer 403 (naming @field) and log it: false. */
bool http__acl_check(struct http_server *s,
                     h2o_req_t *req,
                     const struct http_args *a,
                     struct fsm_str queue,
                     struct fsm_str type,
                     const char *field);
/* The same for the existing job @id as the local fsm has it (an unknown
 * job passes: the handler answers 404). */
bool http__acl_check_job(struct http_server *s,
                         h2o_req_t *req,
                         const struct http_args *a,
                         uint64_t id);
/* SHA-256 of @s as 64 lowercase hex digits (+ NUL). */
int http__sha256_hex(const char *s, size_t len, char out[65]);
void http__acl_bootstrap(struct http_server *s,
                         h2o_req_t *req,
                         const struct http_args *a);
void http__acl_tokens_create(struct http_server *s,
                             h2o_req_t *req,
                             const struct http_args *a);
void http__acl_tokens_list(struct http_server *s,
                           h2o_req_t *req,
                           const struct http_args *a);
void http__acl_tokens_delete(struct http_server *s,
                             h2o_req_t *req,
                             const struct http_args *a);

/* jobs.c */
/* batch.c: POST /v1/jobs/batch, each job on its own. */
void http__jobs_submit_batch(struct http_server *s,
                             h2o_req_t *req,
                             const struct http_args *a);
/* The forward channel's kinds (cluster_fwd_send): a SUBMIT command whose
 * answer is one job, or {"jobs": [...]}. */
enum { HTTP_FWD_SUBMIT = 1, HTTP_FWD_SUBMIT_BATCH = 2, HTTP_FWD_RELAY = 3 };
/* The leader's refusal of a kind it does not know (ERR_INVALID), as every
 * version words it: a follower newer than its leader then forwards over
 * HTTP instead. */
#define HTTP_FWD_UNKNOWN_KIND "unknown forward kind"
/* The header a worker proves its registration with (workers.c). */
#define HTTP_WORKER_SECRET "x-rota-worker-secret"
/* Follower: send @payload of @kind for @req over the channel; its answer
 * goes to the client as the leader gave it, or the request is forwarded
 * over HTTP if nothing was done with it (server.c). False if it could not
 * be sent (the caller forwards over HTTP then). */
bool http__fwd_send(struct http_server *s,
                    h2o_req_t *req,
                    uint32_t kind,
                    const void *payload,
                    size_t len);
/* Leader: a relayed call (HTTP_FWD_RELAY) to its route's relay handler. */
void http__relay_handle(struct http_server *s,
                        struct cluster_fwd_call *fc,
                        const void *payload,
                        size_t len);
/* The leader's handler of the forward channel (cluster_fwd_set_handler). */
void http__fwd_handle(void *data,
                      struct cluster_fwd_call *fc,
                      uint32_t kind,
                      const void *payload,
                      size_t len);
void http__jobs_submit(struct http_server *s,
                       h2o_req_t *req,
                       const struct http_args *a);
void http__jobs_get(struct http_server *s,
                    h2o_req_t *req,
                    const struct http_args *a);
void http__jobs_list(struct http_server *s,
                     h2o_req_t *req,
                     const struct http_args *a);
void http__jobs_patch(struct http_server *s,
                      h2o_req_t *req,
                      const struct http_args *a);
void http__jobs_cancel(struct http_server *s,
                       h2o_req_t *req,
                       const struct http_args *a);
/* The job listing with the status fixed (0 = from ?status). */
void http__jobs_list_status(struct http_server *s,
                            h2o_req_t *req,
                            uint8_t status);

/* schedules.c */
void http__schedule_runs(struct http_server *s,
                         h2o_req_t *req,
                         const struct http_args *a);
void http__schedule_pause(struct http_server *s,
                          h2o_req_t *req,
                          const struct http_args *a);
void http__schedule_resume(struct http_server *s,
                           h2o_req_t *req,
                           const struct http_args *a);
void http__schedule_trigger(struct http_server *s,
                            h2o_req_t *req,
                            const struct http_args *a);
void http__schedule_preview(struct http_server *s,
                            h2o_req_t *req,
                            const struct http_args *a);

/* dlq.c */
void http__dlq_list(struct http_server *s,
                    h2o_req_t *req,
                    const struct http_args *a);
void http__dlq_retry(struct http_server *s,
                     h2o_req_t *req,
                     const struct http_args *a);
void http__dlq_delete(struct http_server *s,
                      h2o_req_t *req,
                      const struct http_args *a);
void http__job_retry(struct http_server *s,
                     h2o_req_t *req,
                     const struct http_args *a);

/* workflows.c */
void http__workflow_submit(struct http_server *s,
                           h2o_req_t *req,
                           const struct http_args *a);
void http__workflow_get(struct http_server *s,
                        h2o_req_t *req,
                        const struct http_args *a);
void http__workflow_cancel(struct http_server *s,
                           h2o_req_t *req,
                           const struct http_args *a);
void http__workflow_send(struct http_server *s,
                         h2o_req_t *req,
                         uint64_t id,
                         int status);

/* queues.c */
void http__queues_list(struct http_server *s,
                       h2o_req_t *req,
                       const struct http_args *a);
void http__queue_get(struct http_server *s,
                     h2o_req_t *req,
                     const struct http_args *a);
void http__queue_put(struct http_server *s,
                     h2o_req_t *req,
                     const struct http_args *a);

/* workers.c */
void http__workers_register(struct http_server *s,
                            h2o_req_t *req,
                            const struct http_args *a);
void http__workers_list(struct http_server *s,
                        h2o_req_t *req,
                        const struct http_args *a);
void http__workers_delete(struct http_server *s,
                          h2o_req_t *req,
                          const struct http_args *a);
void http__workers_lease(struct http_server *s,
                         h2o_req_t *req,
                         const struct http_args *a);
void http__workers_heartbeat(struct http_server *s,
                             h2o_req_t *req,
                             const struct http_args *a);
void http__workers_complete(struct http_server *s,
                            h2o_req_t *req,
                            const struct http_args *a);
/* The same three, relayed by a follower (struct http_route's relay). */
void http__workers_lease_relayed(struct http_server *s,
                                 const struct http_relayed *r,
                                 const struct http_args *a);
void http__workers_heartbeat_relayed(struct http_server *s,
                                     const struct http_relayed *r,
                                     const struct http_args *a);
void http__workers_complete_relayed(struct http_server *s,
                                    const struct http_relayed *r,
                                    const struct http_args *a);

/* cluster_api.c */
void http__cluster_get(struct http_server *s,
                       h2o_req_t *req,
                       const struct http_args *a);
void http__cluster_add(struct http_server *s,
                       h2o_req_t *req,
                       const struct http_args *a);
void http__cluster_remove(struct http_server *s,
                          h2o_req_t *req,
                          const struct http_args *a);
void http__cluster_transfer(struct http_server *s,
                            h2o_req_t *req,
                            const struct http_args *a);
void http__healthz(struct http_server *s,
                   h2o_req_t *req,
                   const struct http_args *a);
void http__readyz(struct http_server *s,
                  h2o_req_t *req,
                  const struct http_args *a);
void http__digest(struct http_server *s,
                  h2o_req_t *req,
                  const struct http_args *a);

/* metrics.c */
void http__metrics(struct http_server *s,
                   h2o_req_t *req,
                   const struct http_args *a);
/* Count the jobs of a SUBMIT's result @res from @from on that were
 * created (no idempotency key matched): s->submitted and per queue. */
void http__count_created(struct http_server *s,
                         const struct fsm_result *res,
                         uint32_t from);
/* http/dashboard.c: GET / and /dashboard (index.html), GET /ui/{file}. */
void http__dashboard(struct http_server *s,
                     h2o_req_t *req,
                     const struct http_args *a);
void http__dashboard_file(struct http_server *s,
                          h2o_req_t *req,
                          const struct http_args *a);

/* snapshot.c: GET /v1/snapshot, the backup file (cluster/snapfile.h). */
void http__snapshot(struct http_server *s,
                    h2o_req_t *req,
                    const struct http_args *a);

/* dashboard.c: GET /v1/openapi.json (http/openapi.json). */
void http__openapi(struct http_server *s,
                   h2o_req_t *req,
                   const struct http_args *a);

#endif /* HTTP_INTERNAL_H_ */
