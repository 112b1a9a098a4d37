#ifndef SCHED_INTERNAL_H_
#define SCHED_INTERNAL_H_

/* What the files of sched/ share: the state of the leader's services. */

#include "common/list.h"
#include "sched/cron.h"
#include "sched/sched.h"

/* Up to MAX_ITEMS items per PROMOTE/ASSIGN/FIRE entry, so that a burst of
 * due jobs goes out in few entries. */
#define MAX_ITEMS 4096
#define MAX_RELEASE 1000 /* Leases released per WORKER_DOWN/RELEASE entry. */
#define RETENTION_BATCH 500
#define RETENTION_EVERY_MS 1000

/* ---- spec.c: the scheduling keys of a job spec -------------------------- */

enum { OVERLAP_FORBID, OVERLAP_ALLOW, OVERLAP_REPLACE };
enum { CATCHUP_SKIP, CATCHUP_LATEST, CATCHUP_ALL };
#define CATCHUP_DEFAULT 10
#define MAX_NO_RETRY 64

struct sched_spec
{
    /* Backoff of retries (ms). */
    double initial_ms, multiplier, max_ms, jitter;
    int32_t no_retry[MAX_NO_RETRY]; /* no_retry_exit_codes */
    unsigned n_no_retry;
    /* The schedule of a recurring job (has_cron). */
    bool has_cron;
    struct cron cron;
    char tz[64];
    int overlap;
    int catchup;
    unsigned catchup_max;
};

/* Read @job's spec (defaults for what it does not say). Never fails: a
 * schedule that does not parse leaves has_cron false. */
void sched__spec_read(const struct fsm_job *job, struct sched_spec *sp);
bool sched__spec_no_retry(const struct sched_spec *sp, int32_t code);
/* When the attempt after @job's failed one may start (jitter u in [0,1)). */
int64_t sched__retry_at(const struct fsm_job *job, int64_t now, double u);

/* ---- plan.c: the cron firing plan (pure) -------------------------------- */

/* FIRE items for the due schedule @s at @now (at most @cap, with their
 * reasons in @reasons): the catch-up and overlap decisions. @rd is read for
 * the previous run only. Returns the count. */
unsigned sched__plan(struct fsm_reader *rd,
                     const struct fsm_job *s,
                     int64_t now,
                     struct fsm_item *items,
                     char (*reasons)[SCHED_REASON_SIZE],
                     unsigned cap);
/* The previous run of @s if it has not ended (0 otherwise), its status in
 * *status. */
uint64_t sched__busy_run(struct fsm_reader *rd,
                         const struct fsm_job *s,
                         int *status);

/* ---- counts.c: running jobs per worker and per concurrency key ---------- */

struct counts
{
    struct count_slot *slots;
    size_t cap, used;
    uint64_t restores; /* fsm_restores() when last rebuilt. */
};
void sched__counts_init(struct counts *c);
void sched__counts_free(struct counts *c);
/* Rebuild from one pass over the running jobs. */
int sched__counts_rebuild(struct counts *c, struct fsm *f);
unsigned sched__counts_worker(const struct counts *c, uint64_t worker);
unsigned sched__counts_key(const struct counts *c, struct fsm_str key);
void sched__counts_add(struct counts *c,
                       uint64_t worker,
                       struct fsm_str key,
                       int delta);
/* fsm_watch_running callback (@data: struct counts). */
void sched__counts_watch(void *data,
                         uint64_t worker,
                         struct fsm_str key,
                         int delta);

/* ---- dispatch.c ---------------------------------------------------------- */

/* A waiting lease request. */
struct waiter
{
    struct list link;
    uint64_t worker;
    unsigned max;
    int64_t deadline;
    unsigned got; /* Jobs proposed for it in the in-flight ASSIGN. */
    sched_lease_cb cb;
    void *data;
};

/* One worker asking in a dispatch round. */
struct ask
{
    uint64_t worker;
    unsigned cap;          /* Jobs it may still take. */
    struct fsm_str queues; /* "a,b" */
    struct fsm_str types;  /* Job types it runs (sched_worker_runs). */
    unsigned got, first;   /* Chosen: out[first .. first+got). */
};

/* The pure choice of a dispatch round: for each ask in order, up to its
 * cap of the best ready jobs of its queues (effective priority with aging,
 * then age, then id), within queue (paused, concurrency) and concurrency-
 * key limits (@running_key: jobs running per key now). Writes job ids to
 * @out (room for @max_out) and returns how many. */
unsigned sched__dispatch_choose(struct fsm_reader *rd,
                                int64_t now,
                                int64_t aging_ms,
                                const struct counts *running,
                                struct ask *asks,
                                unsigned n_asks,
                                uint64_t *out,
                                unsigned max_out);

void sched__dispatch(struct sched *sc);
/* Free every waiter and action without calling back (sched_destroy). */
void sched__forget(struct sched *sc);
void sched__forget_actions(struct sched *sc);
/* Answer waiters past their deadline (all of them with @all). */
void sched__expire_waiters(struct sched *sc, int64_t now, bool all);

/* ---- liveness.c -----------------------------------------------------------
 */

struct live
{
    uint64_t id;
    int64_t deadline;
    int64_t seen;
    bool down_proposed;
    /* The leases the worker reported in its last heartbeat (sorted) and
     * when: see sched__reclaim(). */
    uint64_t *reported;
    size_t n_reported;
    int64_t reported_at;
};

/* A lease given back without a result (WORKER_DOWN/DEL, RELEASE): its
 * queue's counters, and whether its job has no attempt left (dead). */
struct lease_end
{
    unsigned slot;
    bool dead;
};
void sched__count_lease_ends(struct sched *sc,
                             const struct fsm_result *res,
                             const struct lease_end *ends);

struct live *sched__live_find(struct sched *sc, uint64_t id);
/* A sign of life of @id at @now: deadline now + TTL. */
struct live *sched__live_touch(struct sched *sc, uint64_t id, int64_t now);
/* New leader: every known worker gets a fresh deadline plus grace. */
void sched__live_reset(struct sched *sc, int64_t now);
void sched__liveness(struct sched *sc, int64_t now);
void sched__reclaim(struct sched *sc, int64_t now);
/* Release every lease of @worker through the retry policy: WORKER_DOWN
 * (missed deadline) or WORKER_DEL (deregistered). */
int sched__release_worker(struct sched *sc,
                          uint8_t type,
                          uint64_t worker,
                          sched_submit_cb cb,
                          void *data);

/* ---- clock.c, retention.c, actions.c ----------------------------------- */

void sched__clock(struct sched *sc, int64_t now);
/* @id is in the in-flight FIRE (actions on it wait). */
bool sched__fire_pending(const struct sched *sc, uint64_t id);
void sched__retention(struct sched *sc, int64_t now);
/* Schedules with an action in flight (the clock leaves them alone). */
bool sched__action_busy(const struct sched *sc, uint64_t id);
/* Answer every action not yet submitted with @status. */
void sched__actions_fail_all(struct sched *sc, int status);
/* Start the actions that may go now (after a FIRE applied). */
void sched__actions_pump(struct sched *sc);

/* ---- stats.c ------------------------------------------------------------ */

int sched__qstats_init(struct sched *sc);
/* The index of @queue's counters (stable: entries are never removed). */
unsigned sched__qstats_slot(struct sched *sc, struct fsm_str queue);
struct sched_queue_stats *sched__qstats(struct sched *sc, struct fsm_str queue);

/* ---- sched.c --------------------------------------------------------------
 */

struct action;

struct sched
{
    struct sched_io io;
    struct sched_config cfg;
    int64_t ttl_ms;
    bool leader;
    bool stopped;
    struct list waiters;
    bool assign_busy, promote_busy, fire_busy, retain_busy, reclaim_busy;
    int64_t retained_at, reclaimed_at;
    /* Item buffers of the clock (one command of each in flight). */
    struct fsm_item promote_items[MAX_ITEMS];
    struct fsm_item fire_items[MAX_ITEMS];
    struct fsm_item retain_items[RETENTION_BATCH];
    struct fsm_item reclaim_items[MAX_RELEASE];
    struct lease_end reclaim_ends[MAX_RELEASE];
    char reasons[MAX_ITEMS][SCHED_REASON_SIZE];
    uint64_t fire_ids[MAX_ITEMS]; /* Schedules in the in-flight FIRE. */
    unsigned n_fire_ids;
    struct live *live;
    size_t n_live, cap_live;
    struct counts running;
    struct list actions; /* Schedule actions waiting or in flight. */
    struct sched_stats stats;
    /* stats.c: per-queue counters, SCHED_STATS_QUEUES named + the
     * overflow entry at index SCHED_STATS_QUEUES. */
    struct sched_queue_stats *qstats;
    unsigned n_qstats;
    bool qstats_other;
};

int64_t sched__now(struct sched *sc);
double sched__uniform(struct sched *sc); /* [0, 1) from io->random. */
/* Encode and submit an item command. */
int sched__submit_items(struct sched *sc,
                        uint8_t type,
                        uint64_t id,
                        const struct fsm_item *items,
                        uint32_t n,
                        sched_submit_cb cb,
                        void *data);
int sched__submit_cmd(struct sched *sc,
                      const struct fsm_cmd *cmd,
                      sched_submit_cb cb,
                      void *data);

#endif /* SCHED_INTERNAL_H_ */
