#ifndef CLUSTER_RAFT_GUARD_H_
#define CLUSTER_RAFT_GUARD_H_

/* Guards against two raft 0.15 replication bugs, installed on a raft_io.
 * Both were found by tests/sim; docs/reliability.md has the details.
 *
 * 1. Over-claim (replication.c, v0.15.0): a follower answers an
 *    AppendEntries that needs no write (a heartbeat, or entries it already
 *    has) with last_log_index = its whole stored log. If it still holds an
 *    uncommitted suffix from an older term, that claims entries it does not
 *    share with the leader; the leader caps the claim at its own last index
 *    and records it as the follower's match_index. Then it may count the
 *    follower for an entry the follower does not have, and it ignores the
 *    follower's later rejections as stale: the follower stays behind until
 *    the next leader. Here such a result claims at most prev_log_index +
 *    n_entries of the request it answers, as the Raft paper says. An
 *    under-claim is harmless (the leader only raises match_index). Results
 *    of writes (sent later, after the append) are already right: the stale
 *    suffix was truncated by then.
 *
 * 2. Snapshot loop (recv_install_snapshot.c): a follower that already has
 *    a newer snapshot than the one the leader sends answers with the index
 *    of the leader's snapshot, which the leader has recorded already; the
 *    leader stays in its snapshot state and sends the same snapshot every
 *    30 s, forever. Here that answer claims the follower's commit index
 *    (committed entries are the same on every leader).
 *
 * 3. Rollback crash (membership.c): a follower whose uncommitted
 *    configuration is truncated away rolls back to the committed one,
 *    which raft reads from the log by index; once that entry was compacted
 *    into a snapshot, raft dereferences NULL. Here, before such an
 *    AppendEntries reaches raft, the guard rolls back itself from a copy
 *    of the committed configuration it remembered (upstream fixed it the
 *    same way in 0.16). It reads raft's public struct raft_log.
 *
 * The guard wraps io->start (to see received messages) and io->send.
 * Install after raft_init and before raft_start; remove after raft_close.
 * Single thread: the loop thread that runs raft. */

#include <raft.h>

/* Returns 0, or ERR_NOMEM when RAFT_GUARD_MAX ios are guarded already. */
#define RAFT_GUARD_MAX 16
int raft_guard_install(struct raft_io *io);
void raft_guard_remove(struct raft_io *io);

/* What the guard corrected on @io (zeros when not guarded). */
struct raft_guard_stats
{
    unsigned long long clamped;   /* 1: AppendEntries results lowered. */
    unsigned long long raised;    /* 2: InstallSnapshot results raised. */
    unsigned long long rollbacks; /* 3: configurations rolled back. */
};
void raft_guard_stats(const struct raft_io *io, struct raft_guard_stats *out);

#endif /* CLUSTER_RAFT_GUARD_H_ */
