#ifndef SCHED_SCHED_H_
#define SCHED_SCHED_H_

/* The leader's services: what runs where and when (docs/architecture.md).
 *
 *   dispatch.c   lease requests (long-poll) matched with the ready index:
 *                a pure choice, then ONE ASSIGN entry per round
 *   liveness.c   heartbeat deadlines in leader memory, WORKER_DOWN, the
 *                reclaim of leases a live worker never received
 *   clock.c      due jobs promoted, due schedules fired (FIRE)
 *   plan.c       the cron firing plan: catch-up and overlap (pure)
 *   actions.c    pause/resume/trigger of a schedule, one at a time per
 *                schedule
 *   retention.c  finished jobs removed after their retention
 *   policy.c     backoff, aging, workflow order (pure)
 *   spec.c       the one reader of a job spec's scheduling keys
 *   counts.c     running jobs per worker and per concurrency key, kept
 *                as entries apply
 *
 * Everything from outside comes through struct sched_io, as raft gets time
 * and randomness through raft_io: rotad passes the cluster, the wall clock
 * and random(); tests and the simulation pass virtual ones. No h2o, no
 * JSON rendering, no clock_gettime/random here.
 *
 * Thread: the owner's loop. Callbacks: a call that returns 0 fires its
 * callback exactly once, never from inside the call; one that returns an
 * ERR_* code never fires it. The services decide only while
 * io->is_leader() is true; sched_tick() notices leadership changes. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fsm/fsm.h"

struct sched; /* Opaque. */

/* The result of a submitted command (as cluster_submit_cb): @status 0 and
 * the fsm result (which may itself be a rejection), or an ERR_* code. */
typedef void (*sched_submit_cb)(void *data,
                                int status,
                                const struct fsm_result *res);

struct sched_io
{
    void *data;
    /* Queue the encoded command @cmd (copied) for commit; 0 or ERR_*. */
    int (*submit)(void *data,
                  const void *cmd,
                  size_t len,
                  sched_submit_cb cb,
                  void *cb_data);
    bool (*is_leader)(void *data);
    struct fsm *(*fsm)(void *data);
    int64_t (*now)(void *data);     /* ms since the epoch. */
    uint64_t (*random)(void *data); /* Uniform 64 bits. */
};

struct sched_config
{
    unsigned worker_ttl_ms;  /* No heartbeat for this long: down (>= 500). */
    unsigned aging_s;        /* One priority level per aging_s waited. */
    unsigned retention_s[3]; /* Completed, failed, cancelled (0: keep). */
};

#define SCHED_TICK_MS 5        /* How often the owner calls sched_tick(). */
#define SCHED_MAX_LEASES 1024  /* Per lease request. */
#define SCHED_MAX_WAIT_MS 4000 /* Longest long-poll (below forwarding's). */
#define SCHED_MAX_RESULTS 1000 /* Results per completion request. */
#define SCHED_REASON_SIZE 200

int sched_create(const struct sched_io *io,
                 const struct sched_config *cfg,
                 struct sched **out);
/* Answer every waiting lease request (no jobs) and stop deciding. */
void sched_stop(struct sched *sc);
/* After sched_stop(), once no submit callback is pending (the cluster is
 * closed). */
void sched_destroy(struct sched *sc);
/* Run the services once (leadership change, dispatch, liveness, clock,
 * retention, reclaim) at io->now(). */
void sched_tick(struct sched *sc);

/* The services' clock (io->now): what "now" means for the API too. */
int64_t sched_now(struct sched *sc);

/* ---- Workers ------------------------------------------------------------ */

unsigned sched_worker_ttl_ms(const struct sched *sc);
unsigned sched_heartbeat_ms(const struct sched *sc); /* TTL/5 */

/* Register a worker (name, queues "a,b", concurrency in @w); @cb's result
 * holds its id in ids[0]. It gets a fresh deadline. */
int sched_register(struct sched *sc,
                   const struct fsm_worker *w,
                   sched_submit_cb cb,
                   void *data);

/* Deregister: WORKER_DEL with the worker's leases (retry policy). */
int sched_deregister(struct sched *sc,
                     uint64_t worker,
                     sched_submit_cb cb,
                     void *data);

/* Does a worker registered with @types ("a,b"; "" = every type but
 * "shell") run jobs of @type? The dispatcher leases it nothing else. */
bool sched_worker_runs(struct fsm_str types, struct fsm_str type);
/* Is @name one of the comma-separated @list? */
bool sched_list_has(struct fsm_str list, struct fsm_str name);
/* Is there a live registered worker for @job's queue that runs its type?
 * (A job none can run waits; the API says so.) */
bool sched_job_runnable(struct fsm_reader *rd, const struct fsm_job *job);

/* 0 if @worker is registered and not declared down, else ERR_NOTFOUND. */
int sched_worker_known(struct sched *sc, uint64_t worker);

/* A long-poll for up to @max jobs (capped at SCHED_MAX_LEASES), waiting
 * up to @wait_ms (capped at SCHED_MAX_WAIT_MS). @cb gets the ids of the
 * jobs leased (their records hold the token and attempt), or none at the
 * deadline, on leadership loss or at sched_stop(). ERR_NOTFOUND: unknown
 * or down worker. */
typedef void (*sched_lease_cb)(void *data, const uint64_t *jobs, unsigned n);
int sched_lease(struct sched *sc,
                uint64_t worker,
                unsigned max,
                int64_t wait_ms,
                sched_lease_cb cb,
                void *data);

/* A heartbeat listing every lease the worker holds. Writes one verdict per
 * lease: keep it, stop it (cancelled) or drop it (lost: not its lease any
 * more). ERR_NOTFOUND: unknown or down worker. */
enum { SCHED_HELD_KEEP, SCHED_HELD_CANCEL, SCHED_HELD_LOST };
struct sched_held
{
    uint64_t job;
    uint64_t token;
    bool has_token;
};
int sched_heartbeat(struct sched *sc,
                    uint64_t worker,
                    const struct sched_held *held,
                    unsigned n,
                    uint8_t *verdicts);

/* Results of a worker: @items hold job_id, token, ok, retryable,
 * exit_code, error, output, result (borrowed until the call returns); the
 * retry policy (backoff with jitter, no_retry_exit_codes) is applied here
 * and ONE COMPLETE is submitted. */
int sched_complete(struct sched *sc,
                   uint64_t worker,
                   struct fsm_item *items,
                   unsigned n,
                   sched_submit_cb cb,
                   void *data);

/* A worker as the leader sees it: last sign of life (0 = none since this
 * node led) and running jobs. */
struct sched_worker_view
{
    int64_t last_seen;
    bool late; /* Past its deadline, not yet declared down. */
    unsigned running;
};
void sched_worker_view(struct sched *sc,
                       uint64_t worker,
                       struct sched_worker_view *v);

/* ---- Schedules ------------------------------------------------------------
 */

/* Pause, resume (next occurrence from now) or trigger (a run now, as the
 * overlap policy allows) the schedule @id. Actions on one schedule are
 * decided one at a time, each on the state the previous one left, so
 * back-to-back triggers all run. Errors found before submitting are
 * reported through @cb as a rejection in the result (code, field, msg);
 * possibly before the call returns. A trigger's result is the FIRE's: the
 * run is the schedule's last_run once it applied. */
enum { SCHED_PAUSE, SCHED_RESUME, SCHED_TRIGGER };
int sched_schedule_action(struct sched *sc,
                          uint64_t id,
                          int action,
                          sched_submit_cb cb,
                          void *data);

/* ---- Job specs ------------------------------------------------------------
 */

/* A duration "250ms", "30s", "5m", "1h30m", "2d" (sums of them) of at most
 * @max_ms: 0 and *ms, or -1. */
int sched_parse_duration(const char *s, int64_t max_ms, int64_t *ms);

/* ---- Stats (this node, while leader) ----------------------------------- */

#define SCHED_DURATION_BUCKETS 12
extern const double sched_duration_bounds_s[SCHED_DURATION_BUCKETS];

/* A Prometheus histogram over sched_duration_bounds_s (seconds): buckets
 * are not cumulative here (the renderer sums them). */
struct sched_hist
{
    unsigned long long buckets[SCHED_DURATION_BUCKETS + 1]; /* Last: +Inf. */
    double sum;
    unsigned long long count;
};
void sched_hist_observe(struct sched_hist *h, double seconds);

/* Per-queue counters are kept for at most SCHED_STATS_QUEUES queue names
 * (the first ones seen since this process started); events of any other
 * queue count under SCHED_STATS_OTHER, so a flood of queue names cannot
 * grow the leader's memory or the /metrics page without bound. */
#define SCHED_STATS_QUEUES 256
#define SCHED_STATS_OTHER "_other"
#define SCHED_STATS_NAME_MAX 128 /* Longest queue name (the API's limit). */
struct sched_queue_stats
{
    char name[SCHED_STATS_NAME_MAX + 1];
    unsigned long long submitted;  /* Jobs created through the API. */
    unsigned long long started;    /* Attempts leased to a worker. */
    unsigned long long completed;  /* Attempts that succeeded. */
    unsigned long long failed;     /* Attempts that failed (lease loss too). */
    unsigned long long dead;       /* Jobs moved to the dead-letter queue. */
    struct sched_hist duration;    /* Run time of accepted results. */
    struct sched_hist start_delay; /* Ready (run_at or created) to start. */
};

struct sched_stats
{
    /* completed, failed: whole jobs (success; dead letter). */
    unsigned long long started, completed, failed, lost;
    /* fired: FIRE items applied (runs and skips); fire_runs: occurrences
     * and triggers that created a run; skips: occurrences skipped. */
    unsigned long long fired, fire_runs, skips, unreceived, expired;
    unsigned long long duration_buckets[SCHED_DURATION_BUCKETS];
    double duration_sum;
    unsigned long long duration_count;
};
void sched_stats(const struct sched *sc, struct sched_stats *out);

/* The per-queue counters (borrowed until the next call into sched): *n
 * entries, the SCHED_STATS_OTHER one last if any event overflowed. */
const struct sched_queue_stats *sched_queue_stats(const struct sched *sc,
                                                  unsigned *n);

/* @n jobs of @queue ("" = "default") created through the API. */
void sched_count_submitted(struct sched *sc, struct fsm_str queue, unsigned n);

#endif /* SCHED_SCHED_H_ */
