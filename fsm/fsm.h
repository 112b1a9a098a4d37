#ifndef FSM_FSM_H_
#define FSM_FSM_H_

/* The replicated job state machine: an LMDB environment that only raft
 * entries change.
 *
 * Determinism: fsm_apply() is a pure function of (state, entry). It reads no
 * clock, no random source, no environment. Time arrives in the batch header,
 * stamped by the leader. Job ids are derived from the raft index: the n-th
 * job created by the entry at index I gets id (I << 20) | n, so ids are
 * unique and sort by submission.
 *
 * Thread: every function runs on the node's loop thread, except
 * fsm_snapshot_write(), which runs in the libuv thread pool on a read
 * transaction opened by fsm_snapshot_begin().
 *
 * Errors: functions return 0 or an ERR_* code (common/err.h); f->errmsg
 * (fsm_errmsg()) says why. A rejected command is NOT an error of
 * fsm_apply(): it is a result with a non-zero code. fsm_apply() returns
 * non-zero only for storage failure, and the caller then fail-stops. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits enforced by apply (and earlier by the HTTP layer, which reports
 * them with the field name). */
#define FSM_MAX_STR 256           /* type, queue, user_id, idem key. */
#define FSM_MAX_SPEC (256 * 1024) /* The spec JSON text. */
#define FSM_MAX_BATCH_JOBS 1000   /* Jobs in one SUBMIT command. */
#define FSM_MAX_DEPS 100          /* depends_on entries. */
#define FSM_MAX_ERROR 4096        /* last_error text. */
#define FSM_ID_SHIFT 20           /* id = raft index << 20 | sequence. */

enum fsm_status {
    FSM_SCHEDULED = 1, /* Waiting for run_at. */
    FSM_WAITING,       /* Waiting for its dependencies. */
    FSM_PENDING,       /* Runnable. */
    FSM_RUNNING,
    FSM_COMPLETED,
    FSM_FAILED, /* Terminal: the dead-letter queue. */
    FSM_CANCELLED,
    FSM_STATUS_MAX = FSM_CANCELLED
};

/* "pending", ... ; NULL for an unknown value. */
const char *fsm_status_name(int status);
/* Also accepts the seeds' words "queued" (pending) and "in-progress"
 * (running). Returns 0 for an unknown name. */
int fsm_status_parse(const char *name);
/* Terminal: completed, failed, cancelled. */
bool fsm_status_is_final(int status);

/* A byte string, not NUL-terminated. A NULL/0 string is "unset". */
struct fsm_str
{
    const char *p;
    uint32_t len;
};

/* A job record. Decoded records borrow their strings from LMDB (valid until
 * the read transaction ends) or from the decoded buffer. */
struct fsm_job
{
    uint64_t id;
    uint8_t status;
    int32_t priority; /* Higher first. */
    uint32_t attempts;
    uint32_t max_attempts;
    int64_t created_at; /* Milliseconds since the Unix epoch; 0 = unset. */
    int64_t updated_at;
    int64_t run_at; /* When a scheduled job becomes pending. */
    int64_t started_at;
    int64_t finished_at;
    int64_t timeout_ms; /* 0 = none. */
    struct fsm_str type;
    struct fsm_str
        queue; /* Empty = "default" is filled in by the HTTP layer. */
    struct fsm_str user_id;
    struct fsm_str idem_key;
    /* JSON object text with the user fields that apply does not interpret:
     * payload, tags, backoff, schedule, timezone, ... (HTTP layer owns its
     * shape). */
    struct fsm_str spec;
    struct fsm_str last_error;
    struct fsm_str result; /* JSON text, empty if none. */
    uint32_t n_deps;
    const uint64_t *deps;  /* depends_on ids (may be unaligned: use memcpy). */
    uint64_t worker_id;    /* RUNNING: the worker holding the lease. */
    uint64_t lease_token;  /* Raft index of the last assign: grows per job. */
    int32_t exit_code;     /* Of the last attempt (shell), or HTTP status. */
    struct fsm_str output; /* Tail of the last attempt's output. */
    /* Ended attempts, oldest first (at most FSM_MAX_HISTORY): an encoded
     * list, read with fsm_attempt_next(). */
    struct fsm_str history;
    /* Scheduling (see FSM_JOB_*). A recurring job (a cron schedule) stays
     * SCHEDULED with run_at = its next occurrence; each occurrence is a run:
     * a new job whose @parent is the schedule and @nominal_at the
     * occurrence's nominal time. Workflow members have @parent = the
     * workflow id. */
    uint32_t flags;
    uint64_t parent;
    int64_t nominal_at;
    uint64_t last_run;   /* Schedule: the job of its latest run. */
    struct fsm_str ckey; /* Concurrency key ("" = none). */
    uint32_t ckey_limit; /* Running jobs per key (>= 1 if ckey set). */
    /* RUNNING: the name and host of the worker holding the lease, copied
     * from its record at ASSIGN (the record may be gone when the attempt
     * ends), written into the attempt's history entry, cleared then. */
    struct fsm_str worker_name;
    struct fsm_str worker_host;
    /* Encoded fields this version does not know: kept verbatim and written
     * back on every update (rolling upgrades). */
    struct fsm_str extra;
};

enum {
    FSM_JOB_RECURRING = 1 << 0, /* A cron schedule, not a unit of work. */
    FSM_JOB_PAUSED = 1 << 1,    /* Schedule paused: run_at = FSM_NEVER. */
    FSM_JOB_ALL_DONE = 1 << 2,  /* Runs once every parent ended, whatever
                                 * their outcome (trigger "all_done"). */
    FSM_JOB_WORKFLOW = 1 << 3,  /* Member of the workflow @parent. */
    FSM_JOB_RUN = 1 << 4,       /* A run of the schedule @parent. */
};
#define FSM_NEVER INT64_MAX

/* depends_on entries of a SUBMIT may name the k-th job of the same command
 * (workflows): FSM_DEP_LOCAL | k. */
#define FSM_DEP_LOCAL (1ULL << 63)

/* Commands. Each raft entry is a batch of commands (see fsm_batch_*). */
enum fsm_cmd_type {
    FSM_CMD_SUBMIT = 1,  /* Create n jobs atomically. */
    FSM_CMD_PATCH,       /* Change fields of a job that is not running/final. */
    FSM_CMD_CANCEL,      /* Cancel a job that is not running/final. */
    FSM_CMD_NODE_SET,    /* Record a node's raft and HTTP addresses. */
    FSM_CMD_NODE_DEL,    /* Forget a node. */
    FSM_CMD_NOOP,        /* Does nothing (tests, barriers with results). */
    FSM_CMD_WORKER_REG,  /* Register a worker: id derived like job ids. */
    FSM_CMD_WORKER_DEL,  /* Forget a worker (its running jobs: @items). */
    FSM_CMD_ASSIGN,      /* Lease pending jobs to workers (@items). */
    FSM_CMD_COMPLETE,    /* Results of leased jobs (@items). */
    FSM_CMD_WORKER_DOWN, /* Worker missed its deadline (@items: its jobs). */
    FSM_CMD_PROMOTE,     /* Scheduled jobs whose run_at passed → pending. */
    FSM_CMD_FIRE,        /* Occurrences of schedules (@items). */
    FSM_CMD_RETRY,       /* Requeue failed/cancelled jobs (@items). */
    FSM_CMD_DELETE,      /* Remove finished jobs (@items): DLQ, retention. */
    FSM_CMD_PAUSE,       /* Pause the schedule @id. */
    FSM_CMD_RESUME,      /* Resume the schedule @id at patch.run_at. */
    FSM_CMD_QUEUE_SET,   /* Settings of the queue @queue. */
    FSM_CMD_CANCEL_WF,   /* Cancel the unfinished jobs of workflow @id. */
    FSM_CMD_RELEASE,     /* End leases a live worker never received (@items:
                          * job, worker_id, token): retry policy. */
    FSM_CMD_TOKEN_SET,   /* Create the ACL token @token (id derived). */
    FSM_CMD_TOKEN_DEL,   /* Delete the ACL token whose id is @id. */
    FSM_CMD_ACL_BOOTSTRAP, /* The first admin token (@token), once per
                            * cluster: ERR_CONFLICT afterwards. */
    FSM_CMD_WEBHOOK_SET,   /* Create the webhook @webhook (id derived). */
    FSM_CMD_WEBHOOK_DEL,   /* Delete webhook @id and its deliveries. */
    FSM_CMD_DELIVERY,      /* Outcomes of webhook deliveries (@items). */
};
/* Commands whose body is a list of items. */
#define FSM_CMD_HAS_ITEMS(t)                                                 \
    (((t) >= FSM_CMD_WORKER_DEL && (t) <= FSM_CMD_PROMOTE) ||                \
     (t) == FSM_CMD_FIRE || (t) == FSM_CMD_RETRY || (t) == FSM_CMD_DELETE || \
     (t) == FSM_CMD_RELEASE || (t) == FSM_CMD_DELIVERY)

/* FIRE actions. */
enum {
    FSM_FIRE_RUN = 1, /* Create a run for @nominal and move on to @next_at. */
    FSM_FIRE_SKIP,    /* Record @nominal as skipped (@error: why); move on. */
    FSM_FIRE_NOW,     /* Manual trigger: a run at @nominal, run_at kept. */
    FSM_FIRE_REPLACE, /* As RUN, and cancel the previous run if unfinished. */
    FSM_FIRE_NOW_REPLACE, /* As NOW, and cancel the previous run. */
};

/* One element of the item commands (FSM_CMD_HAS_ITEMS: WORKER_DEL, ASSIGN,
 * COMPLETE, WORKER_DOWN, PROMOTE, FIRE, RETRY, DELETE, RELEASE). Each item
 * is applied on its own: a stale one does not spoil the others. */
struct fsm_item
{
    uint64_t job_id;
    uint64_t worker_id; /* ASSIGN: to whom. */
    uint64_t token;     /* COMPLETE, WORKER_DOWN: the lease it ends. */
    uint8_t ok;         /* COMPLETE: success. */
    uint8_t retryable;  /* COMPLETE: failure that may be retried. */
    int32_t exit_code;
    int64_t retry_at; /* Failure: when the next attempt may start (the
                       * leader computed the backoff). */
    struct fsm_str error;
    struct fsm_str output;
    struct fsm_str result; /* JSON text. */
    /* FIRE: the occurrence, the schedule's next run_at, the action. An item
     * whose @nominal is not the schedule's current run_at is STALE (a
     * second leader firing the same occurrence changes nothing). */
    int64_t nominal;
    int64_t next_at;
    uint8_t action;
    uint32_t skipped; /* SKIP: how many occurrences this record covers. */
};

/* Item outcomes (fsm_result.existed[i] for item commands). */
enum {
    FSM_ITEM_OK = 0,
    FSM_ITEM_STALE,    /* Token or worker not current: ignored. */
    FSM_ITEM_NOTFOUND, /* No such job. */
    FSM_ITEM_SKIPPED,  /* Not in a state the command applies to. */
};

/* One ended attempt of a job. */
#define FSM_MAX_HISTORY 20
#define FSM_MAX_HISTORY_OUTPUT 4096
enum {
    FSM_ATTEMPT_OK = 1,
    FSM_ATTEMPT_FAILED,
    FSM_ATTEMPT_LOST, /* The worker was declared down or left. */
    FSM_ATTEMPT_CANCELLED,
};
struct fsm_attempt
{
    uint32_t number;
    uint8_t outcome;
    uint64_t worker_id;
    uint64_t token;
    int64_t started_at;
    int64_t finished_at;
    int32_t exit_code;
    struct fsm_str error;
    struct fsm_str output; /* At most FSM_MAX_HISTORY_OUTPUT bytes. */
    /* Who ran it, as the worker registered (empty in attempts recorded
     * before these fields existed, and host when the worker sent none). */
    struct fsm_str worker_name;
    struct fsm_str worker_host;
};
/* Read the next attempt of @history (advanced). 1 when one was read, 0 at
 * the end, -1 if the list does not decode. */
int fsm_attempt_next(struct fsm_str *history, struct fsm_attempt *out);
/* Append @a to @history, dropping the oldest beyond FSM_MAX_HISTORY: a
 * malloc'ed buffer in *mem (free it), pointed to by the returned str. */
int fsm_attempt_append(struct fsm_str history,
                       const struct fsm_attempt *a,
                       struct fsm_str *out,
                       char **mem);

/* A webhook (see fsm_delivery below). */
#define FSM_MAX_WEBHOOKS 64
#define FSM_MAX_DELIVERIES 100000 /* Pending per webhook; more: dropped. */
#define FSM_WEBHOOK_URL_MAX 2048
enum { FSM_DELIVERY_EXPIRE = 1 };
struct fsm_webhook
{
    uint64_t id;
    struct fsm_str url;
    struct fsm_str queues; /* Comma-separated; "" = all. */
    struct fsm_str secret; /* HMAC key for X-Rota-Signature. */
    uint32_t events;       /* Bits 1 << FSM_EV_*. */
    int64_t created_at;
    uint32_t pending;   /* Deliveries not yet delivered nor expired. */
    uint64_t delivered; /* Counters since creation. */
    uint64_t expired;
    uint64_t dropped; /* Not recorded: FSM_MAX_DELIVERIES were pending. */
};
/* A registered worker. */
struct fsm_worker
{
    uint64_t id;
    struct fsm_str name;
    struct fsm_str queues; /* Comma-separated. */
    uint32_t concurrency;
    int64_t registered_at;
    uint8_t down; /* Declared down (kept for the listing). */
    /* Job types it runs, comma-separated; "" = every type but shell. */
    struct fsm_str types;
    /* SHA-256 of its registration secret, 64 hex digits (never the
     * secret itself); "" = none. */
    struct fsm_str secret_hash;
    /* The machine it runs on as it reported it ("" = not given): at most
     * FSM_MAX_STR bytes, no NUL. */
    struct fsm_str host;
};

/* An ACL token (docs/api.md, Access control). The database is keyed by
 * the SHA-256 of the token's secret (64 hex digits): the secret itself is
 * never in a command, the log or the state. */
#define FSM_TOKEN_HASH_LEN 64
#define FSM_TOKEN_MAX_RATE 1000000 /* Requests a second. */
#define FSM_TOKEN_MAX_BURST 1000000
struct fsm_token
{
    uint64_t id; /* Derived like job ids. */
    struct fsm_str name;
    struct fsm_str role;   /* "admin", "submit", "worker" or "read". */
    struct fsm_str queues; /* Comma-separated; "" = all. */
    struct fsm_str types;  /* Comma-separated; "" = all. */
    int64_t expires_at;    /* Milliseconds; 0 = never. */
    int64_t created_at;
    /* Request rate per node (http/ratelimit.c), in requests per 1000 s
     * (rate 2.5/s = 2500); 0 = unlimited. Burst: the bucket's size,
     * 1..FSM_TOKEN_MAX_BURST with a rate, 0 without. */
    uint64_t rate_milli;
    uint32_t burst;
    /* Commands only (TOKEN_SET, ACL_BOOTSTRAP): the key, 64 hex digits of
     * SHA-256(secret). Not written into the record. */
    struct fsm_str hash;
};

/* Per-queue settings (replicated). */
struct fsm_queue
{
    struct fsm_str name;
    uint8_t paused;       /* Nothing of the queue is dispatched. */
    uint32_t concurrency; /* Running jobs across the cluster; 0 = no cap. */
    /* Jobs waiting (scheduled, waiting, pending) in the queue; a SUBMIT
     * that would go past it is refused whole (ERR_BUSY). 0 = no cap. */
    uint32_t max_pending;
};

/* PATCH field mask. */
enum {
    FSM_PATCH_PRIORITY = 1 << 0,
    FSM_PATCH_SPEC = 1 << 1, /* Replaces spec (payload lives there). */
    FSM_PATCH_RUN_AT = 1 << 2,
    FSM_PATCH_QUEUE = 1 << 3,
    FSM_PATCH_MAX_ATTEMPTS = 1 << 4,
    FSM_PATCH_TIMEOUT = 1 << 5,
};

struct fsm_cmd
{
    uint8_t type;
    /* SUBMIT: @n_jobs jobs. id, status, attempts, created_at, updated_at,
     * started_at, finished_at, last_error, result of each are ignored and
     * computed by apply. @hashes[i] is a hash of the request that produced
     * job i, compared for idempotency keys (same key + other hash = 409). */
    uint32_t n_jobs;
    const struct fsm_job *jobs;
    const uint64_t *hashes;
    /* PATCH, CANCEL: the job @id. PATCH takes the fields in @mask from
     * @patch. */
    uint64_t id;
    uint32_t mask;
    struct fsm_job patch;
    /* Item commands: @n_items of @items. WORKER_DEL and WORKER_DOWN also
     * name the worker in @id. */
    uint32_t n_items;
    const struct fsm_item *items;
    /* WORKER_REG */
    struct fsm_worker worker;
    /* QUEUE_SET */
    struct fsm_queue queue;
    /* TOKEN_SET, ACL_BOOTSTRAP (TOKEN_DEL names the token in @id). */
    struct fsm_token token;
    /* WEBHOOK_SET (WEBHOOK_DEL names it in @id). */
    struct fsm_webhook webhook;
    /* SUBMIT of a workflow: its name (non-empty makes the command a
     * workflow: a record with an id of its own, every job a member). */
    struct fsm_str workflow;
    /* NODE_SET, NODE_DEL: node @node_id. */
    uint64_t node_id;
    struct fsm_str raft_addr;
    struct fsm_str http_addr;
};

/* Encode @cmd into a malloc'ed buffer (*buf, *len). Returns 0 or ERR_NOMEM,
 * ERR_INVALID (a field over its limit). */
int fsm_cmd_encode(const struct fsm_cmd *cmd, void **buf, size_t *len);

/* Decode; the strings and jobs in @cmd point into @buf or into @jobs_store,
 * an array malloc'ed by this function (free it with free()). Returns 0 or
 * ERR_CORRUPT. */
int fsm_cmd_decode(const void *buf,
                   size_t len,
                   struct fsm_cmd *cmd,
                   struct fsm_job **jobs_store);
/* The type of an encoded command (enum fsm_cmd_type) without decoding it,
 * or -1 if @buf is not one of this version. */
int fsm_cmd_type(const void *buf, size_t len);

/* Items decoded by fsm_cmd_decode() are in cmd->items, an array allocated
 * with the jobs: free it with fsm_cmd_free(). */
void fsm_cmd_free(struct fsm_cmd *cmd, struct fsm_job *jobs_store);

/* Record codec (TLV, versioned; unknown tags kept in job->extra). */
int fsm_job_encode(const struct fsm_job *job, void **buf, size_t *len);
int fsm_job_decode(const void *buf, size_t len, struct fsm_job *job);

/* A batch: the payload of one raft entry.
 *   header: magic u32 "ROTA", version u16, flags u16, time_ms i64, n u32,
 *           pad u32 (24 bytes)
 *   n times: len u32, the command bytes, zero padding to 8 bytes
 * The whole buffer is a multiple of 8 bytes (raft 0.15 corrupts unpadded
 * entries during catch-up: docs/architecture.md, raft 1). */
struct fsm_batch
{
    char *buf; /* malloc'ed. */
    size_t len;
    size_t cap;
    uint32_t n;
};

#define FSM_BATCH_HEADER 24

void fsm_batch_init(struct fsm_batch *b);
/* Append an encoded command. Returns 0 or ERR_NOMEM. */
int fsm_batch_append(struct fsm_batch *b, const void *cmd, size_t len);
/* Write the header with the leader's @time_ms. The buffer is then ready to
 * be copied into a raft buffer. */
void fsm_batch_seal(struct fsm_batch *b, int64_t time_ms);
/* Forget the commands, keep the memory. */
void fsm_batch_reset(struct fsm_batch *b);
void fsm_batch_close(struct fsm_batch *b);

/* The result of one command. Borrowed from the fsm: valid until the next
 * fsm_apply(). */
struct fsm_result
{
    int code;       /* 0 or ERR_INVALID, ERR_NOTFOUND, ERR_CONFLICT... */
    char field[64]; /* Offending field of a rejection ("" if none), e.g.
                     * "jobs[3].idempotency_key" or "depends_on". */
    char msg[160];  /* Reason for a rejection. */
    uint32_t n_ids; /* SUBMIT: one per job; PATCH/CANCEL: 1. */
    uint64_t *ids;
    uint8_t *existed; /* SUBMIT: 1 where an idempotency key matched. */
};

struct fsm;

struct fsm_options
{
    const char *dir; /* Directory of the LMDB environment (created). */
    size_t map_size; /* 0 = 4 GiB. */
    bool fresh;      /* Remove an existing environment first. */
    /* Keep an existing environment when the marker <dir>/FSM_STATE_MARK
     * shows it whole: "clean" (fsm_close synced it) or "boot ID" with the
     * running kernel's boot id (the process crashed, but the page cache
     * holds every commit of MDB_NOSYNC), written by a build with the same
     * FSM_STORE_LAYOUT (fsm/internal.h). Otherwise, or with @fresh, it is
     * removed. Either way the marker is then rewritten "boot ID" before
     * the first write, and "clean" by fsm_close after mdb_env_sync. */
    bool keep;
};

#define FSM_STATE_MARK "state.mark"

/* Open the environment (MDB_NOTLS | MDB_NOSYNC, named databases). */
int fsm_open(const struct fsm_options *opts, struct fsm **out);
void fsm_close(struct fsm *f);
const char *fsm_errmsg(const struct fsm *f);
/* After fsm_open with @keep: whether the existing environment was kept;
 * @why: "clean", "same-boot", or why not ("fresh", "no-marker",
 * "other-boot", "marker-unknown", ...). */
bool fsm_state_kept(const struct fsm *f, const char **why);

/* Jobs entering and leaving RUNNING, for the leader's in-memory counts
 * (sched/counts.c). @cb is called once per change, after the entry that
 * made it commits (a rejected command's changes are never reported), with
 * @delta +1 (the job now runs on @worker under @ckey) or -1 (it no longer
 * does). @ckey is borrowed for the call. A restore (snapshot install)
 * reports nothing: fsm_restores() counts them, so a watcher rebuilds. */
typedef void (*fsm_running_cb)(void *data,
                               uint64_t worker,
                               struct fsm_str ckey,
                               int delta);
void fsm_watch_running(struct fsm *f, fsm_running_cb cb, void *data);
uint64_t fsm_restores(struct fsm *f);

/* State changes as events (http/events.c: GET /v1/events, ?wait=). Each
 * committed entry reports its events in order after it commits, numbered
 * @pos = 0, 1, ... within entry @index; apply is deterministic, so every
 * node numbers the same change alike. A rejected command reports nothing,
 * nor does a restore (fsm_restores() counts those). Job changes reported:
 * creation, start, completion, cancellation, an attempt that failed (then
 * retrying or dead); a job that goes to the dead-letter queue without
 * running is dead only. Strings are borrowed for the call. Events are
 * noted whether or not anyone watches: webhooks record deliveries of them
 * (fsm_webhook), the same on every replica. */
enum fsm_event_kind {
    FSM_EV_JOB_CREATED = 1,
    FSM_EV_JOB_STARTED,
    FSM_EV_JOB_COMPLETED,
    FSM_EV_JOB_FAILED,
    FSM_EV_JOB_RETRYING,
    FSM_EV_JOB_DEAD,
    FSM_EV_JOB_CANCELLED,
    FSM_EV_WORKER_UP,
    FSM_EV_WORKER_DOWN,
    FSM_EV_SCHEDULE_FIRED,
    FSM_EV_SCHEDULE_SKIPPED,
    FSM_EV_MAX = FSM_EV_SCHEDULE_SKIPPED
};

struct fsm_event
{
    uint64_t index;
    uint32_t pos;
    uint8_t kind;
    uint8_t status;    /* Jobs: the status after the change. */
    uint32_t attempts; /* Jobs. */
    uint64_t id;       /* The job, worker or schedule. */
    uint64_t run;      /* schedule.fired: the run created (0 if none). */
    int64_t at;        /* The entry's time (ms since the epoch). */
    struct fsm_str type, queue; /* Jobs and schedules. */
    struct fsm_str name;        /* Workers. */
    struct fsm_str error;       /* Failed attempts, dead, skipped fires. */
};
typedef void (*fsm_event_cb)(void *data, const struct fsm_event *ev);
void fsm_watch_events(struct fsm *f, fsm_event_cb cb, void *data);
/* "job.created", ...; NULL for an unknown kind. */
const char *fsm_event_name(int kind);

/* Webhooks (docs/api.md "Webhooks"). Each event of a committed entry that
 * a webhook's @events (bits 1 << FSM_EV_*) and @queues ("" = all; job and
 * schedule events) match becomes a delivery record, in the entry's own
 * transaction, keyed by (webhook, event key = index << 20 | position);
 * the leader sends it and reports the outcome with a DELIVERY item
 * (job_id = webhook, token = event key, ok, exit_code = HTTP status,
 * retry_at = next attempt, error; action FSM_DELIVERY_EXPIRE drops it). */
struct fsm_delivery
{
    uint64_t webhook;
    uint64_t key;        /* index << 20 | position. */
    struct fsm_event ev; /* index, pos set from @key; strings borrowed. */
    uint32_t tries;
    int64_t next_at; /* 0: due now. */
    int32_t last_status;
    int64_t last_at;
    struct fsm_str last_error;
};
int fsm_webhook_encode(const struct fsm_webhook *w, void **buf, size_t *len);
int fsm_webhook_decode(const void *buf, size_t len, struct fsm_webhook *w);
struct fsm_reader;
typedef int (*fsm_webhook_cb)(void *data, const struct fsm_webhook *w);
typedef int (*fsm_delivery_cb)(void *data, const struct fsm_delivery *d);
/* Every webhook, by id (a non-zero return of @cb stops). */
int fsm_webhooks(struct fsm_reader *rd, fsm_webhook_cb cb, void *data);
/* 0 or ERR_NOTFOUND. */
int fsm_webhook_get(struct fsm_reader *rd, uint64_t id, struct fsm_webhook *w);
/* The deliveries of @webhook with key > @after, oldest first, until @cb
 * returns non-zero. */
int fsm_deliveries(struct fsm_reader *rd,
                   uint64_t webhook,
                   uint64_t after,
                   fsm_delivery_cb cb,
                   void *data);

/* Index of the last applied entry (stored in the same txn as its effect). */
uint64_t fsm_applied_index(struct fsm *f);

/* The LMDB file's high-water mark in ‰ of its map size (pages on LMDB's
 * free list count as used). Cheap: reads the environment's meta. */
unsigned fsm_space_used(struct fsm *f);

/* Apply the batch @entry (@len bytes) of raft entry @index in one LMDB write
 * transaction. On return *results holds one result per command (*n of them),
 * valid until the next call. An entry at or below the applied index is
 * skipped (*n = 0). A batch that does not decode is rejected as a whole:
 * every command gets ERR_CORRUPT (nothing written but the applied index).
 * Returns non-zero only when LMDB fails. */
int fsm_apply(struct fsm *f,
              uint64_t index,
              const void *entry,
              size_t len,
              const struct fsm_result **results,
              unsigned *n);

/* Reads. A reader is a read transaction; records it returns are valid until
 * fsm_read_end(). */
struct fsm_reader;
int fsm_read_begin(struct fsm *f, struct fsm_reader **out);
void fsm_read_end(struct fsm_reader *rd);
/* 0, ERR_NOTFOUND or ERR_STORAGE/ERR_CORRUPT. */
int fsm_get_job(struct fsm_reader *rd, uint64_t id, struct fsm_job *job);

/* Listing through secondary indexes. Unset filters match anything. Order:
 * stable within the chosen index (id ascending within one status). */
struct fsm_query
{
    uint8_t status; /* 0 = any. */
    struct fsm_str user_id;
    struct fsm_str queue;
    struct fsm_str type;
    const char *cursor; /* Opaque text from a previous page, or NULL. */
    unsigned limit;     /* 1..1000. */
    bool desc;          /* Walk the index backwards (newest first). */
};
/* Called once per matching job, in order. Return non-zero to stop after
 * this job (the cursor continues after it; none if no match follows). */
typedef int (*fsm_list_cb)(void *data, const struct fsm_job *job);
/* Lists up to q->limit jobs. When more may follow, writes a NUL-terminated
 * cursor into @next (at least FSM_CURSOR_SIZE bytes), else next[0] = 0.
 * ERR_INVALID for a cursor that does not decode. */
#define FSM_CURSOR_SIZE 1200
int fsm_list(struct fsm_reader *rd,
             const struct fsm_query *q,
             fsm_list_cb cb,
             void *data,
             char *next);

/* Count of jobs per status (index 1..FSM_STATUS_MAX), for metrics. */
int fsm_count_by_status(struct fsm_reader *rd, uint64_t counts[8]);

/* Workers. */
typedef void (*fsm_worker_cb)(void *data, const struct fsm_worker *w);
int fsm_workers(struct fsm_reader *rd, fsm_worker_cb cb, void *data);
int fsm_get_worker(struct fsm_reader *rd, uint64_t id, struct fsm_worker *w);
/* RUNNING jobs, in id order (for leases, liveness and heartbeats). */
int fsm_running(struct fsm_reader *rd, fsm_list_cb cb, void *data);
/* SCHEDULED jobs with run_at <= @now, at most @max, in run_at order. */
int fsm_due(struct fsm_reader *rd,
            int64_t now,
            unsigned max,
            fsm_list_cb cb,
            void *data);
/* PENDING jobs of @queue, best first (priority, then age), from the ready
 * index; the callback returns non-zero to stop. */
int fsm_ready(struct fsm_reader *rd,
              struct fsm_str queue,
              fsm_list_cb cb,
              void *data);

/* Queues: every queue with settings or jobs, in name order, with its
 * settings (defaults if none) and job counts per status. */
typedef void (*fsm_queue_cb)(void *data,
                             const struct fsm_queue *q,
                             const uint64_t counts[8]);
int fsm_queues(struct fsm_reader *rd, fsm_queue_cb cb, void *data);
/* Settings and counts of one queue (defaults and zeros if unknown). */
int fsm_get_queue(struct fsm_reader *rd,
                  struct fsm_str name,
                  struct fsm_queue *q,
                  uint64_t counts[8]);

/* Runs of a schedule, newest first, starting below @before (0 = from the
 * newest). job_id is 0 for a skipped occurrence; @reason says why. */
struct fsm_run
{
    uint64_t schedule;
    int64_t nominal;
    uint64_t job_id;
    int64_t recorded_at;
    uint32_t skipped; /* Occurrences this record stands for (>= 1). */
    struct fsm_str reason;
};
typedef int (*fsm_run_cb)(void *data, const struct fsm_run *run);
int fsm_runs(struct fsm_reader *rd,
             uint64_t schedule,
             int64_t before,
             fsm_run_cb cb,
             void *data);

/* Workflows. */
struct fsm_workflow
{
    uint64_t id;
    struct fsm_str name;
    uint64_t first; /* Member ids are first .. first + n - 1. */
    uint32_t n;
    int64_t created_at;
};
int fsm_get_workflow(struct fsm_reader *rd,
                     uint64_t id,
                     struct fsm_workflow *wf);

/* Finished jobs of @status with finished_at < @before, oldest ids first,
 * at most @max, examining at most 8 * @max records (retention). */
int fsm_expired(struct fsm_reader *rd,
                uint8_t status,
                int64_t before,
                unsigned max,
                fsm_list_cb cb,
                void *data);

/* The oldest PENDING job of each priority level of @queue, best level
 * first, at most @max_levels (aging: an old low-priority job can outrank
 * the head of the index). */
int fsm_ready_heads(struct fsm_reader *rd,
                    struct fsm_str queue,
                    unsigned max_levels,
                    fsm_list_cb cb,
                    void *data);

/* ACL tokens. fsm_get_token: the token whose secret hashes to @hash (64
 * hex digits): 0, ERR_NOTFOUND, ERR_CORRUPT. Strings are valid until
 * fsm_read_end(); @hash of the record is left empty. */
int fsm_get_token(struct fsm_reader *rd,
                  struct fsm_str hash,
                  struct fsm_token *t);
typedef void (*fsm_token_cb)(void *data, const struct fsm_token *t);
/* Every token, in key (hash) order. */
int fsm_tokens(struct fsm_reader *rd, fsm_token_cb cb, void *data);
/* Has ACL_BOOTSTRAP succeeded in this cluster (ever)? */
bool fsm_acl_bootstrapped(struct fsm_reader *rd);

/* Node table (replicated addresses). */
typedef void (*fsm_node_cb)(void *data,
                            uint64_t id,
                            struct fsm_str raft_addr,
                            struct fsm_str http_addr);
int fsm_nodes(struct fsm_reader *rd, fsm_node_cb cb, void *data);

/* A 64-bit digest of the whole replicated state except the applied index:
 * equal on every replica that applied the same entries. */
int fsm_digest(struct fsm *f, uint64_t *out);

/* Snapshots. begin (loop thread) opens a read txn; write (any thread)
 * serialises it (format v2 in fsm/snapshot.c: blocks of about 1 MiB, each
 * LZ4-compressed) into a list of malloc'ed chunks that, concatenated, are
 * the snapshot; end (loop thread) closes the txn. No buffer the size of the
 * raw state is ever held: chunks are allocated as needed, never copied.
 * restore (loop thread) replaces the whole state with @buf (format v1 or
 * v2) in one write transaction, including the applied index saved in the
 * snapshot; a corrupt @buf returns ERR_CORRUPT and leaves the state as it
 * was. */
struct fsm_snapshot;
struct fsm_snapshot_chunk
{
    void *base; /* malloc'ed. */
    size_t len;
};
struct fsm_snapshot_chunks
{
    struct fsm_snapshot_chunk *v; /* malloc'ed; v[0] holds the header. */
    unsigned n;
};
int fsm_snapshot_begin(struct fsm *f, struct fsm_snapshot **out);
int fsm_snapshot_write(struct fsm_snapshot *s, struct fsm_snapshot_chunks *out);
/* Frees every chunk and the array; leaves @c empty. */
void fsm_snapshot_chunks_free(struct fsm_snapshot_chunks *c);
void fsm_snapshot_end(struct fsm_snapshot *s);
/* Block (raw bytes, 1 MiB by default, at most FSM_SNAPSHOT_MAX_BLOCK) and
 * largest output chunk (64 MiB by default) sizes of @s's write: tests make them
 * small to cross many boundaries with little data. A chunk is grown to hold
 * at least one compressed block. */
#define FSM_SNAPSHOT_MAX_BLOCK (4u << 20)
void fsm_snapshot_set_sizes(struct fsm_snapshot *s, size_t block, size_t chunk);
int fsm_restore(struct fsm *f, const void *buf, size_t len);
/* The applied index a snapshot @buf holds; 0 if @buf is not one. */
uint64_t fsm_snapshot_index(const void *buf, size_t len);

#endif /* FSM_FSM_H_ */
