#ifndef CLUSTER_RAFT_FSM_H_
#define CLUSTER_RAFT_FSM_H_

/* Glue between raft's struct raft_fsm and our struct fsm (fsm/fsm.h).
 *
 * apply: the raft index of the entry is raft_last_applied(r) + 1 (raft 0.15
 * does not pass it), so the glue needs the struct raft it serves, given with
 * cluster_raft_fsm_set_raft() before raft_start (or after
 * raft_fixture_grow() in tests).
 *
 * The result an apply callback receives (void *result of raft_apply_cb) is a
 * struct cluster_apply_result borrowed from the glue: valid only during the
 * callback.
 *
 * Snapshots: FSM version 3 when @async is true (snapshot opens an LMDB read
 * txn on the loop thread, snapshot_async serialises it in the thread pool,
 * snapshot_finalize frees). The raft_uv io must then have io->version = 2
 * (docs/architecture.md, raft 2). With @async false (raft_fixture), version 2:
 * the snapshot is serialised synchronously. Restore replaces the fsm state and
 * frees buf->base on success; it skips (and frees) a snapshot whose applied
 * index the fsm has already reached.
 *
 * Held apply (off unless set): a follower keeps the last entry raft asks it
 * to apply and applies it with cluster_raft_fsm_flush(), which the owner
 * calls from its loop's check phase, so that raft answers the leader's
 * AppendEntries without waiting for the apply (raft_fsm.c says why). */

#include <raft.h>
#include <stdbool.h>

#include "fsm/fsm.h"

struct cluster_apply_result
{
    const struct fsm_result *results; /* One per command of the entry. */
    unsigned n;
};

struct cluster_raft_fsm; /* Opaque. */

/* Initialise @rf to drive @f. Returns 0 or ERR_NOMEM. */
int cluster_raft_fsm_init(struct raft_fsm *rf, struct fsm *f, bool async);
void cluster_raft_fsm_set_raft(struct raft_fsm *rf, struct raft *r);
void cluster_raft_fsm_close(struct raft_fsm *rf);

/* Let a follower hold its last entry (above). */
void cluster_raft_fsm_set_hold(struct raft_fsm *rf, bool hold);
/* Apply the held entry, if any. */
void cluster_raft_fsm_flush(struct raft_fsm *rf);
/* The held entry's index, 0 when none: the fsm's state is that of the
 * entry before it. */
uint64_t cluster_raft_fsm_held(struct raft_fsm *rf);
/* The raft index the fsm's state shows (X-Rota-Index): raft's
 * last_applied, the entry being applied inside its callbacks, the one
 * before a held entry. */
uint64_t cluster_raft_fsm_applied(struct raft_fsm *rf);

/* Counters for logs and metrics. */
struct cluster_raft_fsm_stats
{
    unsigned long long snapshots_taken;
    unsigned long long snapshots_restored;
    /* Restores not done: the fsm's applied index was at or past the
     * snapshot's (restore_cb). */
    unsigned long long snapshots_skipped;
    unsigned long long entries_applied;
    unsigned long long commands_applied;
    unsigned long long bytes_applied; /* Of the entries applied. */
    unsigned long long apply_ns;      /* Spent in fsm_apply(). */
    unsigned long long applies_held;  /* Entries applied after raft's answer. */
    /* The last entry the fsm applied: raft's own last_applied moves only
     * after the entry's callbacks ran (the answers of its writes). */
    unsigned long long last_index;
};
void cluster_raft_fsm_stats(struct raft_fsm *rf,
                            struct cluster_raft_fsm_stats *out);

#endif /* CLUSTER_RAFT_FSM_H_ */
