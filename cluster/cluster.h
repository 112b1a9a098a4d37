#ifndef CLUSTER_CLUSTER_H_
#define CLUSTER_CLUSTER_H_

/* One Raft node: raft_uv + TCP transport, bootstrap or join, group commit of
 * fsm commands, membership, and an HTTP client (libcurl multi on the same
 * loop) used to forward requests to the leader.
 *
 * Thread: everything runs on the loop thread given to cluster_create().
 * Callbacks: an async call returns 0 and fires its callback exactly once
 * later, or returns an ERR_* code and never fires it. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "fsm/fsm.h"

struct cluster; /* Opaque; defined in cluster/internal.h. */

struct cluster_config
{
    uint64_t id;
    const char *data_dir;
    const char *raft_addr;
    const char *http_addr;
    const char *cluster;         /* "1@a:p,2@b:p": initial voters, or NULL. */
    const char *join;            /* http://host:port of any member, or NULL. */
    unsigned snapshot_threshold; /* Entries; 0: adaptive (node.c). */
    unsigned snapshot_trailing;
    unsigned election_timeout;
    unsigned heartbeat_timeout;
    unsigned forward_timeout; /* ms */
    /* Client writes are refused (cluster_admit) while commands of more
     * than this many bytes wait for their commit. 0: the default. */
    size_t max_inflight;
    /* µs the next entry may wait, after one was applied, for the clients
     * that entry answered to send their next command (submit.c); 0 off. */
    unsigned batch_linger_us;
    /* Bytes of address space for the LMDB state (the file grows only as
     * the state does); 0: fsm's default. */
    size_t state_map_size;
    /* ms a leader waits for a follower's answer to InstallSnapshot before
     * it sends the snapshot again, plus 1 s per 8 MiB of the latest
     * snapshot file; 0: 5000. raft 0.15's default is 30 s, and a follower
     * busy with a snapshot of its own drops an InstallSnapshot without an
     * answer (recv.c), so the leader waited all of it. */
    unsigned install_snapshot_timeout;
    /* Secure mode (all three, or none): raft connections are mutual TLS
     * against @tls_ca (cluster/tls_transport.h) and node-to-node HTTP
     * (forwarding, joining) is HTTPS with this certificate as the client's.
     * NULL: plain TCP and HTTP (--insecure). */
    const char *tls_ca;
    const char *tls_cert;
    const char *tls_key;
    /* Non-NULL: start from an empty state machine whatever its marker
     * says (cluster_create), for this reason ("restore",
     * "force-new-cluster"), logged. */
    const char *discard_state;
};

/* "https" in secure mode, else "http": the scheme of node-to-node URLs. */
const char *cluster_scheme(struct cluster *c);

/* Open the fsm and raft on @loop. On failure writes @errmsg and returns an
 * ERR_* code. */
int cluster_create(uv_loop_t *loop,
                   const struct cluster_config *cfg,
                   struct cluster **out,
                   char *errmsg,
                   size_t errmsg_size);

/* Bootstrap (first start with --cluster), start raft, start the leader
 * watch and the join/registration loop. */
int cluster_start(struct cluster *c, char *errmsg, size_t errmsg_size);

/* Stop raft and every handle; @cb fires once everything is closed. Pending
 * submits and forwards get ERR_SHUTDOWN. */
typedef void (*cluster_close_cb)(void *data);
void cluster_close(struct cluster *c, cluster_close_cb cb, void *data);
void cluster_destroy(struct cluster *c); /* After the close callback. */

/* ---- Writes ---------------------------------------------------------- */

/* The result of a submitted command. @res is borrowed: copy what you need
 * before returning. @status is 0 (then @res is the fsm result, which may
 * itself be a rejection) or ERR_NOTLEADER, ERR_UNKNOWN (leadership lost:
 * the command may still commit), ERR_SHUTDOWN. */
typedef void (*cluster_submit_cb)(void *data,
                                  int status,
                                  const struct fsm_result *res);

/* Queue the encoded command @cmd (@len bytes, copied) for the next group
 * commit: all commands submitted in one loop iteration go out as ONE raft
 * entry. Returns 0, ERR_NOTLEADER or ERR_NOMEM. */
int cluster_submit(struct cluster *c,
                   const void *cmd,
                   size_t len,
                   cluster_submit_cb cb,
                   void *data);

/* Per-command cost added to its length in the in-flight bound (the HTTP
 * request and callback that wait on it). */
#define CLUSTER_CMD_COST 512
#define CLUSTER_MAX_INFLIGHT_DEFAULT ((size_t)64 << 20)

/* May a client write of about @len bytes be proposed now? 0, or ERR_BUSY
 * while the commands waiting for their commit are over max_inflight (the
 * node is taking writes faster than raft commits them: retry later). The
 * leader's own commands (dispatch, liveness, results) are never refused. */
/* Also ERR_BUSY when the LMDB state file reached 90% of its map
 * (--state-map-size). On refusal @why is the reason, for the answer. */
int cluster_admit(struct cluster *c, size_t len, const char **why);

/* Encode @cmd and cluster_submit() it: the one "encode + submit" path of
 * the HTTP layer and the node itself. */
int cluster_submit_cmd(struct cluster *c,
                       const struct fsm_cmd *cmd,
                       cluster_submit_cb cb,
                       void *data);

/* Raft barrier: @cb(data, 0) once every entry before it is applied (the
 * leader's linearizable-read fence). */
typedef void (*cluster_done_cb)(void *data, int status, const char *msg);
int cluster_barrier(struct cluster *c, cluster_done_cb cb, void *data);

/* Membership (leader only). add: raft_add, record the HTTP address, then
 * raft_assign as voter (the leader catches the node up first). An existing
 * voter just gets its addresses recorded. */
int cluster_add_node(struct cluster *c,
                     uint64_t id,
                     const char *raft_addr,
                     const char *http_addr,
                     cluster_done_cb cb,
                     void *data);
int cluster_remove_node(struct cluster *c,
                        uint64_t id,
                        cluster_done_cb cb,
                        void *data);
/* @id 0 = let raft choose. */
int cluster_transfer(struct cluster *c,
                     uint64_t id,
                     cluster_done_cb cb,
                     void *data);

/* ---- State ----------------------------------------------------------- */

struct fsm *cluster_fsm(struct cluster *c);
uint64_t cluster_id(struct cluster *c);
bool cluster_is_leader(struct cluster *c);
/* Leader id (0 = unknown) and its HTTP address from the replicated node
 * table (copied into @http, empty if unknown). */
uint64_t cluster_leader(struct cluster *c, char *http, size_t size);
uint64_t cluster_term(struct cluster *c);
uint64_t cluster_commit_index(struct cluster *c);
uint64_t cluster_applied_index(struct cluster *c);
/* Ready: a leader is known and this node applied what it knows committed. */
bool cluster_ready(struct cluster *c, const char **reason);

struct cluster_member
{
    uint64_t id;
    const char *raft_addr;
    const char *role; /* "voter", "standby", "spare". */
    bool voter;
    bool is_leader;
    int64_t match_index; /* Leader's view; -1 when unknown. */
};
typedef void (*cluster_member_cb)(void *data, const struct cluster_member *m);
void cluster_members(struct cluster *c, cluster_member_cb cb, void *data);

/* Commit latency buckets (seconds): not cumulative, the last is +Inf. */
#define CLUSTER_COMMIT_BUCKETS 14
extern const double cluster_commit_bounds_s[CLUSTER_COMMIT_BUCKETS];

struct cluster_stats
{
    unsigned long long batches;        /* Raft entries proposed. */
    unsigned long long commands;       /* Commands in them. */
    unsigned long long leader_changes; /* Seen by this node. */
    unsigned long long forwards;
    unsigned long long forward_errors;
    unsigned long long snapshots_taken;
    unsigned long long snapshots_restored;
    unsigned long long snapshots_skipped; /* Restores not needed. */
    unsigned long long entries_applied;
    /* Follower: entries applied after raft answered the leader (raft_fsm.h). */
    unsigned long long applies_held;
    unsigned long long raft_guard_fixes; /* cluster/raft_guard.h */
    unsigned long long refused_busy;     /* cluster_admit() said no. */
    unsigned long long refused_full;     /* ... the state map is full. */
    unsigned long long linger_expired;   /* Lingers that ran out. */
    unsigned long long inflight_bytes;   /* Now: cluster_admit()'s cost. */
    unsigned long long fwd_sent;         /* Forward channel: requests sent, */
    unsigned long long fwd_received;     /* ... received (leader), */
    unsigned long long fwd_errors;       /* ... failed without an answer. */
    /* Leader: an entry's proposal (raft_apply) to its apply callback here
     * (committed by a majority, then applied), per entry proposed. */
    unsigned long long commit_buckets[CLUSTER_COMMIT_BUCKETS + 1];
    double commit_sum;
    unsigned long long commit_count;
    /* Time this node spent applying entries to its state machine (in
     * raft's apply callback, on the loop). */
    double apply_seconds;
};
void cluster_stats(struct cluster *c, struct cluster_stats *out);

/* ---- HTTP client (forwarding to the leader, joining) ------------------ */

struct cluster_http_response
{
    int status;        /* HTTP status; 0 when the request failed. */
    int err;           /* 0 or ERR_UNAVAILABLE, ERR_TIMEOUT, ... */
    bool not_sent;     /* Failed to connect: the request never left. */
    const char *ctype; /* Content-Type, may be NULL. */
    const char *body;  /* Borrowed. */
    size_t body_len;
    const char *retry_after; /* Retry-After header or NULL. */
    const char *index;       /* X-Rota-Index header or NULL. */
};
typedef void (*cluster_http_cb)(void *data,
                                const struct cluster_http_response *res);

/* A request: @method to @url (for cluster_forward, the path and query on
 * the leader) with @body (copied) and @headers ("Name: value" lines,
 * NULL-terminated array, copied), with a total deadline of @timeout_ms (0:
 * the forwarding timeout). */
struct cluster_http_req
{
    const char *method;
    const char *url;
    const char *const *headers;
    const void *body;
    size_t body_len;
    unsigned timeout_ms;
    /* Not a node (webhooks): the system's CAs, no client certificate,
     * http and https only. */
    bool external;
};

int cluster_http_request(struct cluster *c,
                         const struct cluster_http_req *r,
                         cluster_http_cb cb,
                         void *data);

/* Forward a request to the leader's HTTP address (cluster/forward.c):
 * ERR_NOLEADER when no leader (or its address) is known, ERR_NOTLEADER when
 * this node is it. */
int cluster_forward(struct cluster *c,
                    const struct cluster_http_req *r,
                    cluster_http_cb cb,
                    void *data);

/* ---- Forward channel (cluster/fwd.c) --------------------------------------
 * A follower sends a write to the leader as bytes the HTTP layer encoded
 * (a command), over one persistent node-to-node connection on the raft port
 * (mutual TLS in secure mode), many per syscall; the leader's HTTP layer
 * handles them and answers each. Used where it is open; HTTP forwarding
 * (cluster_forward) otherwise. */

/* An answer: the leader's, or the channel's own failure (then @status is
 * 0 and @err says why; @not_sent: the request never left this node). */
struct cluster_fwd_answer
{
    int err;        /* 0 or ERR_*: the write's outcome, as on the leader. */
    bool not_sent;  /* Channel failure before the bytes left. */
    int status;     /* HTTP status when err == 0. */
    uint64_t index; /* Applied index the answer reflects (X-Rota-Index). */
    const char *field, *msg; /* Of an error: "" when none (borrowed). */
    const char *body;        /* Borrowed for the callback's duration. */
    size_t body_len;
};
typedef void (*cluster_fwd_cb)(void *data, const struct cluster_fwd_answer *a);

/* Follower: whether the channel to the node it believes leads is open. */
bool cluster_fwd_ready(struct cluster *c);
/* Follower: send @payload with @kind (non-zero, the HTTP layer's) to the
 * leader; @cb gets the answer exactly once (ERR_TIMEOUT after
 * --forward-timeout). Non-zero: nothing was sent (no channel, too big). */
int cluster_fwd_send(struct cluster *c,
                     uint32_t kind,
                     const void *payload,
                     size_t len,
                     cluster_fwd_cb cb,
                     void *data);

/* cluster_fwd_send() of @cmd encoded (as cluster_submit_cmd() does). */
int cluster_fwd_send_cmd(struct cluster *c,
                         uint32_t kind,
                         const struct fsm_cmd *cmd,
                         cluster_fwd_cb cb,
                         void *data);

/* Leader: one received request, answered exactly once. */
struct cluster_fwd_call;
typedef void (*cluster_fwd_handler)(void *data,
                                    struct cluster_fwd_call *call,
                                    uint32_t kind,
                                    const void *payload,
                                    size_t len);
void cluster_fwd_set_handler(struct cluster *c,
                             cluster_fwd_handler h,
                             void *data);
void cluster_fwd_reply(struct cluster_fwd_call *call,
                       const struct cluster_fwd_answer *a);

#endif /* CLUSTER_CLUSTER_H_ */
