/* Group commit.
 *
 * Happy path: cluster_submit() appends an encoded command to c->pending and
 * remembers its callback; the uv_prepare hook (once per loop iteration,
 * before the loop polls) seals the batch with the leader's clock and
 * proposes it as ONE raft entry; batch_applied_cb() gets one fsm result per
 * command and calls each submitter in order.
 *
 * Failure modes: raft_apply refuses (not leader any more) → every command of
 * the batch gets ERR_NOTLEADER at once; the entry is proposed but leadership
 * is lost → ERR_UNKNOWN (the entry may still commit: clients retry with an
 * idempotency key); close → ERR_SHUTDOWN for what is still queued. */

#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "cluster"
#include "cluster/internal.h"
#include "cluster/raft_fsm.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

/* Bounds of one entry: flush early above these. */
#define BATCH_MAX_COMMANDS 8192
#define BATCH_MAX_BYTES (8u << 20)
/* New jobs are refused from this share of the LMDB map on (‰). */
#define STATE_FULL_PERMILLE 900

const double cluster_commit_bounds_s[CLUSTER_COMMIT_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,  0.5,    1,     2.5,  5,     10};

/* The commit latency histogram (cluster_stats). */
static void observe_commit(struct cluster *c, uint64_t proposed_ns)
{
    double s = (double)(uv_hrtime() - proposed_ns) / 1e9;
    int k = 0;
    while (k < CLUSTER_COMMIT_BUCKETS && s > cluster_commit_bounds_s[k]) {
        k++;
    }
    c->stats.commit_buckets[k]++;
    c->stats.commit_sum += s;
    c->stats.commit_count++;
}

int cluster__err_from_raft(int rv)
{
    switch (rv) {
        case 0:
            return 0;
        case RAFT_NOTLEADER:
            return ERR_NOTLEADER;
        case RAFT_LEADERSHIPLOST:
            return ERR_UNKNOWN;
        case RAFT_NOMEM:
            return ERR_NOMEM;
        case RAFT_SHUTDOWN:
            return ERR_SHUTDOWN;
        case RAFT_BADID:
            return ERR_NOTFOUND;
        case RAFT_DUPLICATEID:
        case RAFT_DUPLICATEADDRESS:
        case RAFT_CANTCHANGE:
            return ERR_CONFLICT;
        default:
            return ERR_UNKNOWN;
    }
}

/* ---- Linger ------------------------------------------------------------
 * Each entry costs every replica a log append, a disk write, messages and
 * an LMDB transaction, whatever it carries: ~840 µs of CPU for the three
 * nodes here against ~75 µs per command (bench/README.md). With one entry
 * in flight, 32 clients that each wait for their answer split into two
 * alternating halves (~14 commands per entry). So when an entry is applied
 * the next one waits, at most --batch-linger µs, until as many commands are
 * pending as the clients just answered plus those already waiting: closed-
 * loop clients come back within that time and ride the same entry. A lone
 * request on an idle node is proposed at once (its deadline is long past).
 * Clients that do not come back (open-loop traffic) are learned: a linger
 * that ran out caps what the next one waits for at what did arrive in
 * time, so such a node stops waiting after one linger, and waits again
 * once an entry fills up before its deadline. The commands a job's start
 * waits on (the dispatcher's ASSIGN, PROMOTE of due jobs, FIRE of
 * schedules) never linger: their entry goes at once. */

/* Whether a pending command makes its entry go without lingering. */
static bool linger_exempt(const void *cmd, size_t len)
{
    switch (fsm_cmd_type(cmd, len)) {
        case FSM_CMD_ASSIGN:
        case FSM_CMD_PROMOTE:
        case FSM_CMD_FIRE:
            return true;
        default:
            return false;
    }
}

static void linger_timer_cb(uv_timer_t *t)
{
    (void)t; /* It only wakes the loop: flush_cb decides. */
}

/* Entry of @answered commands applied: set the next entry's wait. */
static void linger_arm(struct cluster *c, unsigned answered)
{
    if (c->cfg.batch_linger_us == 0) {
        return;
    }
    c->linger_expect = c->pending.n + answered;
    if (c->linger_learned != 0 && c->linger_expect > c->linger_learned) {
        c->linger_expect = c->linger_learned;
    }
    c->linger_until_ns = uv_hrtime() + (uint64_t)c->cfg.batch_linger_us * 1000u;
}

/* Whether the pending batch should wait for more commands now. */
static bool linger_wait(struct cluster *c)
{
    uint64_t now;
    if (c->linger_until_ns == 0 || c->linger_skip) {
        return false;
    }
    if (c->pending.n >= c->linger_expect) {
        c->linger_learned = 0; /* They came back in time. */
        return false;
    }
    now = uv_hrtime();
    if (now >= c->linger_until_ns) {
        c->linger_until_ns = 0;
        c->linger_learned = c->pending.n > 0 ? c->pending.n : 1;
        c->stats.linger_expired++;
        return false;
    }
    if (!uv_is_active((uv_handle_t *)&c->linger)) {
        uv_timer_start(&c->linger, linger_timer_cb,
                       (c->linger_until_ns - now + 999999) / 1000000, 0);
    }
    return true;
}

static void batch_applied_cb(struct raft_apply *apply, int status, void *result)
{
    struct batch *b = CONTAINER_OF(apply, struct batch, apply);
    const struct cluster_apply_result *res = result;
    int rv = cluster__err_from_raft(status);
    struct fsm_result corrupt;

    memset(&corrupt, 0, sizeof corrupt);
    corrupt.code = ERR_CORRUPT;
    snprintf(corrupt.msg, sizeof corrupt.msg, "command was not applied");

    list_remove(&b->link);
    b->c->inflight_cost -= b->cost;
    if (rv == 0) {
        observe_commit(b->c, b->proposed_ns);
        linger_arm(b->c, b->n);
    }
    for (unsigned i = 0; i < b->n; i++) {
        const struct fsm_result *r = NULL;
        if (rv == 0) {
            r = (res != NULL && i < res->n) ? &res->results[i] : &corrupt;
        }
        b->subs[i].cb(b->subs[i].data, rv, r);
    }
    free(b);
}

/* Fire every callback of a batch that raft never took. */
static void batch_fail(struct batch *b, int status)
{
    b->c->inflight_cost -= b->cost;
    for (unsigned i = 0; i < b->n; i++) {
        b->subs[i].cb(b->subs[i].data, status, NULL);
    }
    free(b);
}

static void flush(struct cluster *c)
{
    struct batch *b;
    struct raft_buffer buf;
    unsigned n = c->pending.n;
    int rv;

    if (n == 0) {
        return;
    }
    b = malloc(sizeof *b + n * sizeof b->subs[0]);
    if (b == NULL) {
        cluster__fail_pending(c, ERR_NOMEM);
        return;
    }
    b->c = c;
    b->n = n;
    b->cost = c->pending_cost;
    c->pending_cost = 0;
    memcpy(b->subs, c->pending_subs, n * sizeof b->subs[0]);
    list_init(&b->link);

    c->linger_skip = false;
    fsm_batch_seal(&c->pending, clock_now_ms());
    /* Entries must be multiples of 8 bytes (raft 0.15 TCP catch-up bug);
     * fsm_batch guarantees it. */
    buf.len = c->pending.len;
    buf.base = raft_malloc(buf.len);
    if (buf.base == NULL) {
        fsm_batch_reset(&c->pending);
        batch_fail(b, ERR_NOMEM);
        return;
    }
    memcpy(buf.base, c->pending.buf, buf.len);
    fsm_batch_reset(&c->pending);

    b->apply.data = b;
    b->proposed_ns = uv_hrtime();
    rv = raft_apply(&c->raft, &b->apply, &buf, 1, batch_applied_cb);
    if (rv != 0) {
        raft_free(buf.base); /* raft owns it only when the call returns 0. */
        batch_fail(b, cluster__err_from_raft(rv));
        return;
    }
    list_push(&c->inflight, &b->link);
    c->stats.batches++;
    c->stats.commands += n;
}

/* Once per loop iteration, unless an entry is still on its way: then the
 * batch keeps growing until that entry is applied (its callback wakes the
 * loop) or reaches the bounds above. Under load this makes fewer, bigger
 * entries, so every replica pays fewer appends and LMDB transactions per
 * command: at 32 single submits in flight over three nodes, 4.6 commands
 * per entry became 14 and the servers' CPU per job fell by ~15%
 * (bench/README.md). An idle cluster still proposes at once. */
static void flush_cb(uv_prepare_t *handle)
{
    struct cluster *c = handle->data;
    if (list_empty(&c->inflight) && c->pending.n > 0 && !linger_wait(c)) {
        c->linger_until_ns = 0;
        uv_timer_stop(&c->linger);
        flush(c);
    }
}

int cluster_submit(struct cluster *c,
                   const void *cmd,
                   size_t len,
                   cluster_submit_cb cb,
                   void *data)
{
    int rv;

    if (c->closing) {
        return ERR_SHUTDOWN;
    }
    if (raft_state(&c->raft) != RAFT_LEADER) {
        return ERR_NOTLEADER;
    }
    if (c->pending.n >= BATCH_MAX_COMMANDS ||
        c->pending.len + len > BATCH_MAX_BYTES) {
        flush(c);
    }
    if (c->pending.n == c->pending_cap) {
        unsigned cap = c->pending_cap == 0 ? 64 : c->pending_cap * 2;
        struct submit *subs = realloc(c->pending_subs, cap * sizeof *subs);
        if (subs == NULL) {
            return ERR_NOMEM;
        }
        c->pending_subs = subs;
        c->pending_cap = cap;
    }
    rv = fsm_batch_append(&c->pending, cmd, len);
    if (rv != 0) {
        return rv;
    }
    c->linger_skip = c->linger_skip || linger_exempt(cmd, len);
    c->pending_subs[c->pending.n - 1].cb = cb;
    c->pending_subs[c->pending.n - 1].data = data;
    c->inflight_cost += len + CLUSTER_CMD_COST;
    c->pending_cost += len + CLUSTER_CMD_COST;
    return 0;
}

int cluster_admit(struct cluster *c, size_t len, const char **why)
{
    size_t max = c->cfg.max_inflight != 0 ? c->cfg.max_inflight
                                          : CLUSTER_MAX_INFLIGHT_DEFAULT;
    if (c->inflight_cost + len + CLUSTER_CMD_COST > max) {
        c->stats.refused_busy++;
        *why =
            "this node has too many writes waiting for their commit: "
            "retry later";
        return ERR_BUSY;
    }
    /* A full LMDB map fail-stops every replica at the same entry (apply
     * cannot write it), so new jobs stop well before: the file's high
     * water mark against --state-map-size (pages on LMDB's free list are
     * counted as used: this errs on the side of refusing). */
    if (fsm_space_used(c->fsm) >= STATE_FULL_PERMILLE) {
        c->stats.refused_full++;
        *why =
            "the state is over 90% of --state-map-size: no new jobs "
            "until retention removes some or the nodes are restarted "
            "with a larger --state-map-size";
        return ERR_BUSY;
    }
    return 0;
}

void cluster__fail_pending(struct cluster *c, int status)
{
    unsigned n = c->pending.n;
    struct submit *subs = c->pending_subs;

    fsm_batch_reset(&c->pending);
    c->pending_subs = NULL;
    c->pending_cap = 0;
    c->inflight_cost -= c->pending_cost;
    c->pending_cost = 0;
    for (unsigned i = 0; i < n; i++) {
        subs[i].cb(subs[i].data, status, NULL);
    }
    free(subs);
}

int cluster__submit_init(struct cluster *c)
{
    fsm_batch_init(&c->pending);
    list_init(&c->inflight);
    uv_prepare_init(c->loop, &c->flush);
    c->flush.data = c;
    c->open_handles++;
    uv_timer_init(c->loop, &c->linger);
    c->linger.data = c;
    c->open_handles++;
    return uv_prepare_start(&c->flush, flush_cb) == 0 ? 0 : ERR_IO;
}

static void flush_closed_cb(uv_handle_t *handle)
{
    cluster__handle_closed(handle->data);
}

void cluster__submit_close(struct cluster *c)
{
    cluster__fail_pending(c, ERR_SHUTDOWN);
    fsm_batch_close(&c->pending);
    uv_prepare_stop(&c->flush);
    uv_close((uv_handle_t *)&c->flush, flush_closed_cb);
    uv_timer_stop(&c->linger);
    uv_close((uv_handle_t *)&c->linger, flush_closed_cb);
}

/* ---- Barrier ---------------------------------------------------------- */

struct barrier
{
    struct raft_barrier req;
    cluster_done_cb cb;
    void *data;
};

static void barrier_cb(struct raft_barrier *req, int status)
{
    struct barrier *b = CONTAINER_OF(req, struct barrier, req);
    cluster_done_cb cb = b->cb;
    void *data = b->data;
    free(b);
    cb(data, cluster__err_from_raft(status),
       status == 0 ? NULL : raft_strerror(status));
}

int cluster_barrier(struct cluster *c, cluster_done_cb cb, void *data)
{
    struct barrier *b;
    int rv;

    if (raft_state(&c->raft) != RAFT_LEADER) {
        return ERR_NOTLEADER;
    }
    b = malloc(sizeof *b);
    if (b == NULL) {
        return ERR_NOMEM;
    }
    b->cb = cb;
    b->data = data;
    rv = raft_barrier(&c->raft, &b->req, barrier_cb);
    if (rv != 0) {
        free(b);
        return cluster__err_from_raft(rv);
    }
    return 0;
}

int cluster_submit_cmd(struct cluster *c,
                       const struct fsm_cmd *cmd,
                       cluster_submit_cb cb,
                       void *data)
{
    void *buf;
    size_t len;
    int rv = fsm_cmd_encode(cmd, &buf, &len);
    if (rv != 0) {
        return rv;
    }
    rv = cluster_submit(c, buf, len, cb, data);
    free(buf);
    return rv;
}
