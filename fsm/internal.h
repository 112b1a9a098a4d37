#ifndef FSM_INTERNAL_H_
#define FSM_INTERNAL_H_

#include <lmdb.h>

#include "common/err.h"
#include "fsm/fsm.h"

enum {
    DB_JOBS,
    DB_BY_STATUS,
    DB_BY_USER,
    DB_BY_QUEUE,
    DB_BY_TYPE,
    DB_READY,
    DB_DEPS,
    DB_IDEM,
    DB_NODES,
    DB_META,
    DB_WORKERS,
    DB_TIMERS,
    DB_RUNS,       /* schedule | nominal → run record */
    DB_WORKFLOWS,  /* id → workflow record */
    DB_QUEUES,     /* name → settings */
    DB_QCOUNTS,    /* queue 0x00 status → count */
    DB_TOKENS,     /* SHA-256 hex of an ACL secret → token record */
    DB_WEBHOOKS,   /* id → webhook record */
    DB_DELIVERIES, /* webhook | event key → delivery record */
    DB__COUNT
};

extern const char *const fsm__db_names[DB__COUNT];

/* The status counters (meta "count/<status>") and per-queue counters
 * (DB_QCOUNTS) that the commands of one entry change, held here while it
 * is applied and written once at its end (fsm__counts_flush): every job
 * write moves two of each, and an entry of 32 submits would otherwise read
 * and write the same few keys 64 times. Values are loaded on first use and
 * changed exactly as in LMDB (never below 0), so what is written is what
 * writing each change would have left. Everything held was changed. */
#define FSM_COUNTS_QUEUES 32
struct fsm__counts
{
    bool on;
    uint8_t held; /* Bit s: status[s]. */
    uint64_t status[8];
    unsigned n_q;
    struct
    {
        uint16_t len;
        uint64_t n;
        unsigned char key[FSM_MAX_STR + 2]; /* queue 0x00 status */
    } q[FSM_COUNTS_QUEUES];
};

struct fsm
{
    MDB_env *env;
    MDB_dbi dbi[DB__COUNT];
    char errmsg[ERRMSG_SIZE];
    /* Results of the last apply, reused. */
    struct fsm_result *results;
    unsigned results_cap;
    uint64_t *ids;
    uint8_t *existed;
    size_t ids_cap;
    size_t ids_used;
    /* Running-set changes of the entry being applied (fsm_watch_running):
     * reported once it commits. Keys are copied into @rchg_keys. */
    fsm_running_cb rchg_cb;
    void *rchg_data;
    struct fsm__rchg *rchg;
    size_t n_rchg, cap_rchg;
    char *rchg_keys;
    size_t keys_used, keys_cap;
    uint64_t restores;
    /* Events of the entry being applied (fsm_watch_events), reported once
     * it commits; strings copied into @ev_strs (offsets until the flush). */
    fsm_event_cb ev_cb;
    void *ev_data;
    struct fsm_event *ev;
    size_t n_ev, cap_ev;
    char *ev_strs;
    size_t ev_strs_used, ev_strs_cap;
    int64_t ev_now;
    struct fsm__counts counts;
    /* fsm_options.keep: the directory of the marker (fsm/state_mark.c),
     * NULL without; whether the environment was kept, and why. */
    char *mark_dir;
    bool kept;
    const char *keep_why;
};

struct fsm__rchg
{
    uint64_t worker;
    size_t key_off;
    uint32_t key_len;
    int delta;
};

/* store.c: the counters of the entry being applied (struct fsm__counts).
 * begin: hold changes from now on; flush: write the held ones into @txn
 * (and go on holding); drop: forget the held ones (their transaction was
 * aborted); end: forget them and stop holding. */
void fsm__counts_begin(struct fsm *f);
int fsm__counts_flush(struct fsm *f, MDB_txn *txn);
void fsm__counts_drop(struct fsm *f);
void fsm__counts_end(struct fsm *f);
/* The held value of per-queue counter @key (@len bytes), if held. */
bool fsm__counts_queue(const struct fsm *f,
                       const unsigned char *key,
                       size_t len,
                       uint64_t *n);

/* store.c: the running-set change log of the entry being applied. */
void fsm__rchg_note(struct fsm *f, const struct fsm_job *job, int delta);
void fsm__rchg_flush(struct fsm *f);

/* events.c: the event log of the entry being applied. fsm__ev_job notes
 * what a job write changes (old NULL: created); the others note the event
 * @kind of a worker or a schedule. A mark/rewind pair drops a rejected
 * command's events. */
void fsm__ev_job(struct fsm *f,
                 const struct fsm_job *old,
                 const struct fsm_job *job);
void fsm__ev_worker(struct fsm *f, int kind, const struct fsm_worker *w);
void fsm__ev_schedule(struct fsm *f,
                      int kind,
                      const struct fsm_job *s,
                      uint64_t run,
                      struct fsm_str error);
void fsm__ev_begin(struct fsm *f, int64_t now);
size_t fsm__ev_mark(const struct fsm *f);
void fsm__ev_rewind(struct fsm *f, size_t mark);
void fsm__ev_flush(struct fsm *f, uint64_t index);

struct fsm_reader
{
    struct fsm *f;
    MDB_txn *txn;
};

/* Write "what: mdb_strerror" into f->errmsg and map the code. */
int fsm__lmdb_error(struct fsm *f, int rv, const char *what);

/* How the environment stores things (databases, keys, values). A kept
 * environment (fsm_options.keep) written under another layout is rebuilt:
 * bump this with any change an older environment would be misread by
 * (SNAP_VERSION in fsm/snapshot.c usually moves with it). */
#define FSM_STORE_LAYOUT 1

/* The state marker (fsm/state_mark.c). check: may the environment in @dir
 * be used again (*keep), and why (a static string). boot: mark it as used
 * by this kernel, before the first write. clean: sync, then mark it clean
 * (fsm_close). */
const char *fsm__mark_check(const char *dir, bool *keep);
int fsm__mark_boot(struct fsm *f, const char *dir);
void fsm__mark_clean(struct fsm *f);

/* Big-endian helpers for keys. */
void fsm__put_be64(unsigned char *p, uint64_t v);
uint64_t fsm__get_be64(const unsigned char *p);

/* Read a job in @txn: 0, ERR_NOTFOUND, ERR_CORRUPT, ERR_STORAGE. */
int fsm__get_job(struct fsm *f, MDB_txn *txn, uint64_t id, struct fsm_job *job);
/* Write @job, replacing @old (NULL for a new job): keeps every index and
 * the per-status counters in step. */
int fsm__put_job(struct fsm *f,
                 MDB_txn *txn,
                 const struct fsm_job *old,
                 const struct fsm_job *job);

/* Remove @old and every index entry of it (and its idempotency key). */
int fsm__del_job(struct fsm *f, MDB_txn *txn, const struct fsm_job *old);

uint64_t fsm__get_meta_u64(struct fsm *f, MDB_txn *txn, const char *key);
int fsm__put_meta_u64(struct fsm *f, MDB_txn *txn, const char *key, uint64_t v);

/* webhooks.c */
int fsm__delivery_encode(const struct fsm_delivery *d, void **buf, size_t *len);
int fsm__delivery_decode(const void *buf, size_t len, struct fsm_delivery *d);
/* The deliveries of the events noted for entry @index (before it commits). */
int fsm__webhooks_deliver(struct fsm *f, MDB_txn *txn, uint64_t index);

/* apply.c: the state of one command being applied. */
struct apply_ctx
{
    struct fsm *f;
    MDB_txn *txn; /* The entry's transaction, or the command's child. */
    uint64_t index;
    int64_t now;
    uint32_t seq; /* Jobs created by this entry so far. */
    struct fsm_result *res;
    size_t ids_off; /* Offset of this result's ids in f->ids. */
    int storage;    /* Non-zero: LMDB failed. */
};

/* A rejection: the command's result, not an error of fsm_apply(). */
int fsm__reject(struct apply_ctx *a,
                int code,
                const char *field,
                const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));
/* LMDB failed: fsm_apply() returns @rv and the node fail-stops. */
int fsm__storage(struct apply_ctx *a, int rv);
/* Append an id (and its per-item outcome) to the command's result. */
int fsm__add_id(struct apply_ctx *a, uint64_t id, uint8_t existed);

/* apply_lease.c: worker and lease commands. */
int fsm__apply_worker_reg(struct apply_ctx *a, const struct fsm_cmd *cmd);
/* webhooks.c: WEBHOOK_SET, WEBHOOK_DEL, DELIVERY. */
int fsm__apply_webhook(struct apply_ctx *a, const struct fsm_cmd *cmd);
int fsm__apply_items(struct apply_ctx *a, const struct fsm_cmd *cmd);
/* A job that lost or ended its attempt unsuccessfully: retry or fail. */
void fsm__attempt_failed(struct apply_ctx *a,
                         struct fsm_job *job,
                         const struct fsm_item *it);
/* Record the end of @old's attempt in @job's history (a new buffer in
 * *mem: free it after the put). */
int fsm__end_attempt(struct apply_ctx *a,
                     const struct fsm_job *old,
                     struct fsm_job *job,
                     uint8_t outcome,
                     const struct fsm_item *it,
                     char **mem);
/* @parent ended (completed, failed or cancelled): release the children
 * whose dependencies are all done, cancel those that can no longer run
 * (and their descendants). */
int fsm__release_children(struct apply_ctx *a, uint64_t parent);
/* @job (already written) just became final: its dependants move on. */
int fsm__job_ended(struct apply_ctx *a, const struct fsm_job *job);
/* Cancel @old (not final), recording @why as its last error. */
int fsm__cancel_job(struct apply_ctx *a,
                    const struct fsm_job *old,
                    const char *why);

/* apply_acl.c: TOKEN_SET, TOKEN_DEL, ACL_BOOTSTRAP. */
int fsm__apply_acl(struct apply_ctx *a, const struct fsm_cmd *cmd);
#define FSM_META_ACL_BOOTSTRAP "acl_bootstrap"

/* apply_sched.c */
int fsm__apply_sched(struct apply_ctx *a, const struct fsm_cmd *cmd);

/* Run and workflow records. */
void fsm__run_key(unsigned char kb[16], uint64_t schedule, int64_t nominal);
int fsm__queue_decode(const MDB_val *v, struct fsm_queue *q);
/* Jobs of queue @name per status (index 1..FSM_STATUS_MAX). */
void fsm__queue_counts(struct fsm *f,
                       MDB_txn *txn,
                       struct fsm_str name,
                       uint64_t counts[8]);

#define FSM_META_APPLIED "applied_index"

/* TEST ONLY (tests/sim): a planted bug that the simulation must catch.
 * Never set outside tests. FSM_BUG_TOKEN: COMPLETE ignores the token.
 * FSM_BUG_FIRE: FIRE ignores both fences (current run_at, recorded run). */
enum { FSM_BUG_TOKEN = 1, FSM_BUG_FIRE };
extern int fsm_test_planted_bug;

int fsm_worker_encode(const struct fsm_worker *wk, void **buf, size_t *len);
int fsm_worker_decode(const void *buf, size_t len, struct fsm_worker *wk);
int fsm_token_encode(const struct fsm_token *t, void **buf, size_t *len);
int fsm_token_decode(const void *buf, size_t len, struct fsm_token *t);

#endif /* FSM_INTERNAL_H_ */
