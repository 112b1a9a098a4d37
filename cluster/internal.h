#ifndef CLUSTER_INTERNAL_H_
#define CLUSTER_INTERNAL_H_

#include <raft.h>
#include <raft/uv.h>

#include "cluster/cluster.h"
#include "common/list.h"

/* One queued command waiting for the group commit. */
struct submit
{
    cluster_submit_cb cb;
    void *data;
};

/* One raft entry in flight: the commands it carries, in order. */
struct batch
{
    struct raft_apply apply; /* Embedded: raft hands it back to us. */
    struct cluster *c;
    struct list link;     /* In c->inflight. */
    size_t cost;          /* Its share of c->inflight_cost. */
    uint64_t proposed_ns; /* uv_hrtime() at raft_apply: commit latency. */
    unsigned n;
    struct submit subs[]; /* n of them. */
};

struct httpc; /* cluster/httpc.c */
struct fwd;   /* cluster/fwd.c */

struct cluster
{
    uv_loop_t *loop;
    struct cluster_config cfg;
    char *data_dir;
    char *raft_addr;
    char *http_addr;
    char *cluster_spec;
    char *join_url;

    struct fsm *fsm;
    struct raft_fsm rfsm;
    struct raft_io io;
    struct raft_uv_transport transport;
    struct raft raft;
    int (*uv_append)(struct raft_io *io,
                     struct raft_io_append *req,
                     const struct raft_entry entries[],
                     unsigned n,
                     raft_io_append_cb cb);
    /* raft_uv's close, and raft's callback for it, called once only
     * (node.c, close_wrap). */
    void (*uv_close)(struct raft_io *io, raft_io_close_cb cb);
    raft_io_close_cb io_close_cb;
    bool io_closed;

    /* Group commit: commands of this loop iteration. */
    struct fsm_batch pending;
    struct submit *pending_subs;
    unsigned pending_cap;
    uv_prepare_t flush;
    struct list inflight; /* struct batch */
    /* Bytes of commands queued or proposed and not applied yet (plus a
     * fixed cost per command for what waits on it): cluster_admit(). */
    size_t inflight_cost;
    size_t pending_cost; /* The share of the commands in @pending. */
    /* Linger (submit.c): after an entry is applied, the next one waits
     * until @linger_expect commands are pending or @linger_until_ns. */
    uv_timer_t linger;
    unsigned linger_expect;
    unsigned linger_learned; /* Arrived by the last expired linger; 0. */
    bool linger_skip;        /* @pending holds a linger_exempt() command. */
    uint64_t linger_until_ns;

    /* Install-snapshot timeout, rescaled when the snapshot changes. */
    raft_index snapshot_seen;
    /* Adaptive snapshot threshold: the fsm counters at the last snapshot. */
    unsigned long long snap_entries_seen, snap_bytes_seen;
    unsigned snapshot_threshold_now;

    /* Applies the entry a follower held (raft_fsm.h) once raft's I/O
     * callbacks of the loop iteration, its answer to the leader among them,
     * have run. */
    uv_check_t apply_check;

    /* Leader watch. */
    uv_timer_t watch;
    uint64_t leader_id;
    uint64_t term;
    int state;
    bool registered;  /* Our own addresses are in the node table. */
    bool registering; /* A registration is in flight. */
    uint64_t last_register_ms;

    struct httpc *http;
    struct fwd *fwd;
    cluster_fwd_handler fwd_handler; /* The leader's, set by HTTP. */
    void *fwd_handler_data;
    struct cluster_stats stats;

    bool closing;
    cluster_close_cb close_cb;
    void *close_data;
    unsigned open_handles;
};

/* submit.c */
/* RAFT_* → ERR_* (LEADERSHIPLOST → ERR_UNKNOWN: the outcome is unknown). */
int cluster__err_from_raft(int rv);
/* Does <data>/raft hold raft state (metadata, segments, snapshots)?
 * 0, or -1 if it cannot be read (cluster/recover.c). */
int cluster__raft_dir_used(struct cluster *c, bool *used);
int cluster__submit_init(struct cluster *c);
void cluster__submit_close(struct cluster *c);
void cluster__fail_pending(struct cluster *c, int status);

/* membership.c */
void cluster__register_tick(struct cluster *c);

/* httpc.c */
int cluster__httpc_create(struct cluster *c, struct httpc **out);
void cluster__httpc_close(struct httpc *h, void (*cb)(struct cluster *c));

/* node.c */
void cluster__handle_closed(struct cluster *c);

/* fwd.c */
int cluster__fwd_init(struct cluster *c);
void cluster__fwd_tick(struct cluster *c); /* Leader watch: (re)dial. */
void cluster__fwd_close(struct cluster *c);

#endif /* CLUSTER_INTERNAL_H_ */
