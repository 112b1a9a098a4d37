#ifndef TESTS_LIB_CLUSTER_FIXTURE_H_
#define TESTS_LIB_CLUSTER_FIXTURE_H_

/* Deterministic cluster tests: N rafts on raft_fixture (in-memory network
 * and disk, virtual time), each driving the real FSM (LMDB in its own tmp
 * directory) through the cluster/raft_fsm glue (sync snapshots).
 *
 * Shape (STYLE.md section 9, after raft:test/lib/cluster.h): a cmocka group
 * or test setup calls cluster_fixture_create(n), which opens the n FSMs,
 * grows the raft fixture, bootstraps every server as a voter and starts them;
 * the test drives it with the CLUSTER_* macros below, which fail the cmocka
 * test when a step does not reach its goal within the virtual time given;
 * teardown calls cluster_fixture_destroy().
 *
 * Time: all waits are in virtual milliseconds of the raft fixture; nothing
 * sleeps. Batches are stamped with CLUSTER_EPOCH_MS + the fixture time.
 *
 * Ownership: submit requests (struct cluster_req) belong to the fixture and
 * live until cluster_fixture_destroy(), after raft is closed, because raft
 * may still fire their callbacks while closing. Test code reads them. */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "fsm/fsm.h"

struct cluster_fixture;

#define CLUSTER_MAX_N 6
/* Virtual time 0 is this instant (2026-11-22T00:00:00Z). */
#define CLUSTER_EPOCH_MS 1795305600000LL

/* One job to submit. NULL fields take defaults: type "noop", queue
 * "default", spec "{}", no idempotency key. @hash is the request hash
 * compared for idempotency keys (0 is a valid hash). */
struct cluster_job_in
{
    const char *spec;
    const char *idem_key;
    uint64_t hash;
    const char *type;
};

/* The copied result of one command of an applied entry. */
struct cluster_cmd_result
{
    int code;
    uint32_t n_ids;
    uint64_t *ids;
    uint8_t *existed;
};

/* One raft_apply() issued by the fixture, with what its callback reported. */
struct cluster_req
{
    struct raft_apply apply; /* Embedded: raft hands it back to us. */
    struct cluster_fixture *f;
    struct cluster_req *next; /* In f->reqs, newest first. */
    unsigned server;          /* Index of the server it was submitted on. */
    int rv;                   /* raft_apply()'s return value. */
    raft_index index;         /* Entry index (valid when rv == 0). */
    size_t buf_len;           /* Length of the buffer given to raft_apply. */
    bool done;                /* The callback fired. */
    unsigned n_callbacks;     /* Must never exceed 1. */
    int status;               /* Callback status: 0, RAFT_LEADERSHIPLOST... */
    unsigned n_cmds;          /* Commands in the entry. */
    unsigned n_results;       /* Results received (when status == 0). */
    struct cluster_cmd_result *results; /* n_cmds slots. */
    /* The jobs submitted, in order: command c holds jobs
     * [first_job[c], first_job[c] + jobs_in_cmd[c]). */
    unsigned n_jobs;
    unsigned *first_job;
    unsigned *jobs_in_cmd;
    char **specs;
    char **idem_keys;
    /* Optional: called once from the apply callback, after the copy, with
     * raft's status and the glue's result (struct cluster_apply_result,
     * borrowed; NULL unless status is 0). Not called for planted early
     * acknowledgements. */
    void (*on_done)(struct cluster_req *req, int status, const void *result);
    void *on_done_data;
};

/* A server of the fixture: its FSM and the raft_fsm handed to raft. */
struct cluster_node
{
    struct raft_fsm rf; /* First: the apply wrapper recovers the node. */
    int (*glue_apply)(struct raft_fsm *rf,
                      const struct raft_buffer *buf,
                      void **result);
    int (*glue_restore)(struct raft_fsm *rf, struct raft_buffer *buf);
    struct fsm *fsm;
    struct raft *raft;
    char dir[256];
    /* Counted by the apply wrapper, on every server. */
    unsigned long long entries_applied;
    unsigned long long unaligned_entries; /* buf->len % 8 != 0. */
    unsigned long long bytes_applied;
    /* The FSM's applied index after an apply differs from the entry's raft
     * index (the index is stored with the effect). */
    unsigned long long index_mismatches;
    /* After a restore: the FSM's applied index, checked against raft's
     * last_applied (the snapshot index) once raft has set it. */
    unsigned long long restores;
    unsigned long long restore_mismatches;
    bool just_restored;
    uint64_t restored_applied;
};

struct cluster_fixture
{
    unsigned n;
    struct raft_fixture raft;
    struct cluster_node nodes[CLUSTER_MAX_N];
    char root[128]; /* mkdtemp directory holding every node's dir. */
    struct cluster_req *reqs;
    unsigned n_reqs;
    unsigned long long unaligned_submits; /* Buffers with len % 8 != 0. */
    unsigned long long n_commands;        /* Commands encoded by submits. */
    unsigned cmd_len_residues; /* Bit r: some command had length % 8 == r. */
    bool closed;               /* raft_fixture_close() ran. */
};

/* Install cluster/raft_guard.h on every server, as rotad does (default
 * true). Set before cluster_fixture_create. */
extern bool cluster_fixture_raft_guard;

/* A planted bug for tests/sim (default false): job submissions are
 * answered when the leader appended them, before they commit. */
extern bool cluster_fixture_plant_ack;

/* Create @n servers (1..CLUSTER_MAX_N), bootstrapped (all voters) and
 * started, with the glue's synchronous snapshots (FSM version 2). Returns
 * NULL on failure (after printing why). */
struct cluster_fixture *cluster_fixture_create(unsigned n);
/* Same, choosing the glue's snapshot mode: with @async, FSM version 3 (the
 * fixture runs the "thread pool" work inline, on a later step, and its io
 * is given version 2 as raft 0.15 requires). */
struct cluster_fixture *cluster_fixture_create_mode(unsigned n, bool async);
/* @voters servers bootstrapped as the configuration, then @spares more with
 * an empty log and not in it (to be added with raft_add), all started. */
struct cluster_fixture *cluster_fixture_create_spares(unsigned voters,
                                                      unsigned spares);
/* Close raft, then the glue and the FSMs, remove the tmp directories and
 * free every request. */
void cluster_fixture_destroy(struct cluster_fixture *f);

/* Close raft (pending applies fail, their callbacks fire) but keep the
 * FSMs and the requests: for owners of callbacks into their own objects
 * (tests/lib/fixture_sched.h), which they free after this and before
 * cluster_fixture_destroy(). Idempotent. */
void cluster_fixture_close(struct cluster_fixture *f);

/* cmocka setup/teardown for a 3-server fixture. */
int cluster_fixture_setup3(void **state);
int cluster_fixture_setup3_async(void **state);
int cluster_fixture_teardown(void **state);

/* Snapshot threshold and trailing on every server. */
void cluster_fixture_set_snapshot(struct cluster_fixture *f,
                                  unsigned threshold,
                                  unsigned trailing);

/* Submit on server @i ONE raft entry holding @n_cmds SUBMIT commands;
 * command c holds @per_cmd[c] consecutive jobs of @jobs (per_cmd NULL: one
 * job per command). The batch is built with fsm_cmd_encode +
 * fsm_batch_append, sealed with the virtual time and copied into a
 * raft_malloc buffer. Always returns a request (or NULL on ENOMEM): check
 * req->rv for what raft_apply() said. */
struct cluster_req *cluster_fixture_submit(struct cluster_fixture *f,
                                           unsigned i,
                                           const struct cluster_job_in *jobs,
                                           const unsigned *per_cmd,
                                           unsigned n_cmds);
/* Like cluster_fixture_apply() for a batch of @n_cmds commands of any
 * type: their results are copied into req->results. */
struct cluster_req *cluster_fixture_apply_cmds(struct cluster_fixture *f,
                                               unsigned i,
                                               const void *batch,
                                               size_t len,
                                               unsigned n_cmds);
/* Submit on server @i a recurring job "every minute" (* * * * *) whose
 * first occurrence is @first, with @idem_key (or none). */
struct cluster_req *cluster_fixture_submit_schedule(struct cluster_fixture *f,
                                                    unsigned i,
                                                    int64_t first,
                                                    const char *idem_key);
/* The same with the spec @spec (NULL: {"schedule":"* * * * *"}). */
struct cluster_req *cluster_fixture_submit_schedule_spec(
    struct cluster_fixture *f,
    unsigned i,
    int64_t first,
    const char *idem_key,
    const char *spec);
/* Submit on server @i ONE raft entry holding the @n_cmds commands @cmds, of
 * any type (each encoded with fsm_cmd_encode, batched like
 * cluster_fixture_submit and sealed with the virtual time). Their results
 * are copied into req->results. Always returns a request (check req->rv). */
struct cluster_req *cluster_fixture_submit_cmds(struct cluster_fixture *f,
                                                unsigned i,
                                                const struct fsm_cmd *cmds,
                                                unsigned n_cmds);
/* Submit on server @i ONE raft entry holding the @n already encoded
 * commands @cmds (@lens bytes each, as fsm_cmd_encode gives them), batched
 * and sealed like cluster_fixture_submit_cmds; @on_done (may be NULL) is
 * set before raft_apply. Always returns a request (check req->rv: on
 * failure @on_done never fires). */
struct cluster_req *cluster_fixture_submit_encoded(
    struct cluster_fixture *f,
    unsigned i,
    const void *const *cmds,
    const size_t *lens,
    unsigned n,
    void (*on_done)(struct cluster_req *req, int status, const void *result),
    void *on_done_data);
/* Submit raw, already sealed batch bytes (copied) on server @i. */
struct cluster_req *cluster_fixture_apply(struct cluster_fixture *f,
                                          unsigned i,
                                          const void *batch,
                                          size_t len);

/* Step until every ALIVE server applied @index. */
bool cluster_fixture_step_until_applied(struct cluster_fixture *f,
                                        raft_index index,
                                        unsigned max_ms);
/* Step until server @i applied @index. */
bool cluster_fixture_step_until_applied_on(struct cluster_fixture *f,
                                           unsigned i,
                                           raft_index index,
                                           unsigned max_ms);
/* Step until server @i is in raft state @state. */
bool cluster_fixture_step_until_state(struct cluster_fixture *f,
                                      unsigned i,
                                      int state,
                                      unsigned max_ms);
/* Step until server @i is no longer leader. */
bool cluster_fixture_step_until_stepped_down(struct cluster_fixture *f,
                                             unsigned i,
                                             unsigned max_ms);
/* Step until some server other than @not is a stable leader (the fixture's
 * view). */
bool cluster_fixture_step_until_new_leader(struct cluster_fixture *f,
                                           unsigned not,
                                           unsigned max_ms);
/* Step until server @i holds @index in its log (stored, maybe uncommitted). */
bool cluster_fixture_step_until_stored(struct cluster_fixture *f,
                                       unsigned i,
                                       raft_index index,
                                       unsigned max_ms);

/* Cut server @i off from every other server both ways (send fails and
 * in-flight messages are dropped) / undo it. Saturation is what the raft
 * fixture's leader detection understands, so both are set. */
void cluster_fixture_isolate(struct cluster_fixture *f, unsigned i);
void cluster_fixture_rejoin(struct cluster_fixture *f, unsigned i);

uint64_t cluster_fixture_digest(struct cluster_fixture *f, unsigned i);
/* Job @id on server @i: 0 (scalar fields of *out are valid; its strings
 * are not, the read is over) or ERR_NOTFOUND. */
int cluster_fixture_get_job(struct cluster_fixture *f,
                            unsigned i,
                            uint64_t id,
                            struct fsm_job *out);

/* The occurrences of schedule @sched recorded on server @i (fsm_runs) and
 * the run jobs it created (every job walked): each occurrence must be
 * recorded once and each run record with a job stand for exactly one. */
#define CLUSTER_MAX_RUNS 256
struct cluster_runs
{
    unsigned n;        /* Run records. */
    unsigned with_job; /* Records of an occurrence that ran. */
    unsigned children; /* Jobs with FSM_JOB_RUN whose parent is @sched. */
    bool dup;          /* Two records with one nominal instant. */
    int64_t nominal[CLUSTER_MAX_RUNS]; /* Newest first (the first n). */
};
int cluster_fixture_runs(struct cluster_fixture *f,
                         unsigned i,
                         uint64_t sched,
                         struct cluster_runs *out);

/* Assert that @req was taken by raft, applied on every alive server within
 * @max_ms, answered with status 0 and its first command's code 0. */
struct cluster_req *cluster_fixture_wait(struct cluster_fixture *f,
                                         struct cluster_req *req,
                                         unsigned max_ms);
bool cluster_fixture_job_exists(struct cluster_fixture *f,
                                unsigned i,
                                uint64_t id);
/* Jobs on server @i: by fsm_count_by_status (sum) and by walking fsm_list
 * page by page; -1 on error. */
long cluster_fixture_count_jobs(struct cluster_fixture *f, unsigned i);
long cluster_fixture_list_count(struct cluster_fixture *f,
                                unsigned i,
                                const char *spec_substr,
                                const char *idem_key);

/* Every job acknowledged by an apply callback with status 0 exists on every
 * server in @mask (bit i = server i; 0 = all) with the spec and idempotency
 * key it was submitted with. Returns the number of acknowledged jobs, or -1
 * after printing the first mismatch. */
long cluster_fixture_check_acked(struct cluster_fixture *f, unsigned mask);
/* Every request's callback fired at most once; with @all_done, exactly
 * once. Returns false after printing the culprit. */
bool cluster_fixture_check_callbacks(struct cluster_fixture *f, bool all_done);
/* Every server's FSM stored the right applied index: no mismatch seen by
 * the wrappers, a restored FSM reports the snapshot's index, and
 * fsm_applied_index() <= raft_last_applied() (barrier and configuration
 * entries do not reach the FSM). Returns false after printing why. */
bool cluster_fixture_check_applied_index(struct cluster_fixture *f);
/* The digests of every server in @mask (0 = all) are equal and their raft
 * last_applied are equal; and cluster_fixture_check_applied_index(). */
bool cluster_fixture_check_converged(struct cluster_fixture *f, unsigned mask);

struct cluster_raft_fsm_stats;
void cluster_fixture_stats(struct cluster_fixture *f,
                           unsigned i,
                           struct cluster_raft_fsm_stats *out);

/* Followers hold their last entry's apply until after raft answered the
 * leader, as rotad does (cluster/raft_fsm.h). The fixture applies a held
 * entry after each completed append (rotad: the loop's check phase), before
 * every step_until_applied condition and whenever a test reads a node's fsm
 * (CLUSTER_FSM). */

/* Server @i's fsm, its held entry applied. */
struct fsm *cluster_fixture_fsm(struct cluster_fixture *f, unsigned i);
/* Apply every server's held entry. */
void cluster_fixture_flush(struct cluster_fixture *f);

/* ---- Macros: F is the fixture pointer. ---------------------------------- */

#define CLUSTER_N(F) ((F)->n)
#define CLUSTER_RAFT(F, I) raft_fixture_get(&(F)->raft, (I))
#define CLUSTER_STATE(F, I) raft_state(CLUSTER_RAFT(F, I))
#define CLUSTER_LAST_APPLIED(F, I) raft_last_applied(CLUSTER_RAFT(F, I))
#define CLUSTER_LAST_INDEX(F, I) raft_last_index(CLUSTER_RAFT(F, I))
#define CLUSTER_TIME(F) raft_fixture_time(&(F)->raft)
/* Applies the node's held entry first (cluster_fixture_hold_applies). */
#define CLUSTER_FSM(F, I) cluster_fixture_fsm((F), (I))
/* Index of the stable leader, or CLUSTER_N if none. */
#define CLUSTER_LEADER(F) raft_fixture_leader_index(&(F)->raft)
#define CLUSTER_HAS_LEADER(F) (CLUSTER_LEADER(F) < CLUSTER_N(F))

#define CLUSTER_ELECT(F, I) raft_fixture_elect(&(F)->raft, (I))
#define CLUSTER_KILL(F, I) raft_fixture_kill(&(F)->raft, (I))
#define CLUSTER_REVIVE(F, I) raft_fixture_revive(&(F)->raft, (I))
#define CLUSTER_ALIVE(F, I) raft_fixture_alive(&(F)->raft, (I))
/* Sends from I to J (and J to I) fail with RAFT_NOCONNECTION. */
#define CLUSTER_DISCONNECT(F, I, J)                \
    do {                                           \
        raft_fixture_disconnect(&(F)->raft, I, J); \
        raft_fixture_disconnect(&(F)->raft, J, I); \
    } while (0)
#define CLUSTER_RECONNECT(F, I, J)                \
    do {                                          \
        raft_fixture_reconnect(&(F)->raft, I, J); \
        raft_fixture_reconnect(&(F)->raft, J, I); \
    } while (0)
/* Messages from I to J are silently dropped (one way). */
#define CLUSTER_SATURATE(F, I, J) raft_fixture_saturate(&(F)->raft, I, J)
#define CLUSTER_DESATURATE(F, I, J) raft_fixture_desaturate(&(F)->raft, I, J)
#define CLUSTER_ISOLATE(F, I) cluster_fixture_isolate(F, I)
#define CLUSTER_REJOIN(F, I) cluster_fixture_rejoin(F, I)

#define CLUSTER_STEP(F) raft_fixture_step(&(F)->raft)
#define CLUSTER_STEP_UNTIL_ELAPSED(F, MS) \
    raft_fixture_step_until_elapsed(&(F)->raft, MS)
#define CLUSTER_STEP_UNTIL_HAS_LEADER(F, MS) \
    assert_true(raft_fixture_step_until_has_leader(&(F)->raft, MS))
/* After killing the leader, step until there is NO leader before waiting
 * for a new one (LIBRARIES.md, raft 13). */
#define CLUSTER_STEP_UNTIL_HAS_NO_LEADER(F, MS) \
    assert_true(raft_fixture_step_until_has_no_leader(&(F)->raft, MS))
#define CLUSTER_STEP_UNTIL_NEW_LEADER(F, NOT, MS) \
    assert_true(cluster_fixture_step_until_new_leader(F, NOT, MS))
#define CLUSTER_STEP_UNTIL_APPLIED(F, INDEX, MS) \
    assert_true(cluster_fixture_step_until_applied(F, INDEX, MS))
#define CLUSTER_STEP_UNTIL_APPLIED_ON(F, I, INDEX, MS) \
    assert_true(cluster_fixture_step_until_applied_on(F, I, INDEX, MS))
#define CLUSTER_STEP_UNTIL_STATE(F, I, STATE, MS) \
    assert_true(cluster_fixture_step_until_state(F, I, STATE, MS))
#define CLUSTER_STEP_UNTIL_STEPPED_DOWN(F, I, MS) \
    assert_true(cluster_fixture_step_until_stepped_down(F, I, MS))
#define CLUSTER_STEP_UNTIL_STORED(F, I, INDEX, MS) \
    assert_true(cluster_fixture_step_until_stored(F, I, INDEX, MS))

#define CLUSTER_SET_SNAPSHOT(F, THRESHOLD, TRAILING) \
    cluster_fixture_set_snapshot(F, THRESHOLD, TRAILING)

/* Submit one entry of @N_CMDS commands (jobs per command in PER_CMD, or
 * NULL for one each) and assert raft_apply() took it. Evaluates to the
 * struct cluster_req *. */
#define CLUSTER_SUBMIT_JOBS(F, I, JOBS, PER_CMD, N_CMDS)         \
    ({                                                           \
        struct cluster_req *req_ =                               \
            cluster_fixture_submit(F, I, JOBS, PER_CMD, N_CMDS); \
        assert_non_null(req_);                                   \
        assert_int_equal(req_->rv, 0);                           \
        req_;                                                    \
    })
/* One entry, one command, one job with @SPEC. */
#define CLUSTER_SUBMIT(F, I, SPEC)                     \
    ({                                                 \
        struct cluster_job_in job_ = {.spec = (SPEC)}; \
        CLUSTER_SUBMIT_JOBS(F, I, &job_, NULL, 1);     \
    })
/* Raw sealed batch bytes. */
#define CLUSTER_APPLY(F, I, BUF, LEN)                                     \
    ({                                                                    \
        struct cluster_req *req_ = cluster_fixture_apply(F, I, BUF, LEN); \
        assert_non_null(req_);                                            \
        assert_int_equal(req_->rv, 0);                                    \
        req_;                                                             \
    })

#define CLUSTER_DIGEST(F, I) cluster_fixture_digest(F, I)
#define CLUSTER_JOB_EXISTS(F, I, ID) cluster_fixture_job_exists(F, I, ID)

#endif /* TESTS_LIB_CLUSTER_FIXTURE_H_ */
