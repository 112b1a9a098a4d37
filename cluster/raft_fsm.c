/* raft_fsm glue: raft calls apply/snapshot/restore; we forward to fsm/.
 *
 * Snapshot, version 3 (async): snapshot() runs on the loop thread and opens
 * an LMDB read transaction (a consistent view at last_applied while applies
 * continue), snapshot_async() serialises it in the thread pool,
 * snapshot_finalize() runs on the loop thread once raft stored it, and frees
 * the buffers and the transaction. raft never runs two snapshots at once, so
 * one pending snapshot per glue suffices.
 *
 * Held apply (cluster_raft_fsm_set_hold): raft 0.15 has a follower apply
 * the entries the leader's commit index covers after its own disk write of
 * the next entries and *before* it answers the leader
 * (appendFollowerCb), so every follower apply sat inside the commit of the
 * next entry. A follower therefore keeps the last entry raft hands it (a
 * copy) and applies it before the next one, before a snapshot or a restore,
 * when the loop's check phase runs (cluster/node.c: after the I/O
 * callbacks, so after raft sent its answer) and at close. At most one entry
 * waits; the state a read sees and the applied index it reports
 * (cluster_raft_fsm_held) stay consistent. */

#include "cluster/raft_fsm.h"

#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "fsm"
#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

struct cluster_raft_fsm
{
    struct fsm *fsm;
    struct raft *raft;
    struct fsm_snapshot *snap; /* Open between snapshot() and finalize(). */
    uint64_t snap_started_ns;  /* clock_mono_ns() at snapshot(). */
    struct cluster_apply_result result;
    struct cluster_raft_fsm_stats stats;
    bool hold; /* cluster_raft_fsm_set_hold(). */
    /* The held entry (at most one): its index (0: none) and a copy. */
    uint64_t held_index;
    struct buf held;
};

/* Apply one entry to the fsm now; a failure stops the process. */
static void apply_now(struct cluster_raft_fsm *g,
                      uint64_t index,
                      const void *base,
                      size_t len)
{
    uint64_t t0 = clock_mono_ns();
    int rv;

    g->result.results = NULL;
    g->result.n = 0;
    rv = fsm_apply(g->fsm, index, base, len, &g->result.results, &g->result.n);
    if (rv != 0) {
        /* Fail-stop: a replica that cannot store what the majority
         * committed must not go on serving (docs/architecture.md, "The state
         * machine"). */
        LOG(LOG_ERROR, "fail-stop", "index=%llu err=\"%s\"",
            (unsigned long long)index, fsm_errmsg(g->fsm));
        exit(70);
    }
    g->stats.entries_applied++;
    g->stats.commands_applied += g->result.n;
    g->stats.bytes_applied += len;
    g->stats.apply_ns += clock_mono_ns() - t0;
    g->stats.last_index = index;
}

/* Keep a copy of @buf to apply later; false when there is no memory for
 * it (then it is applied now). */
static bool hold_entry(struct cluster_raft_fsm *g,
                       uint64_t index,
                       const struct raft_buffer *buf)
{
    buf_reset(&g->held);
    if (buf_append(&g->held, buf->base, buf->len) != 0) {
        return false;
    }
    g->held_index = index;
    g->stats.applies_held++;
    return true;
}

void cluster_raft_fsm_flush(struct raft_fsm *rf)
{
    struct cluster_raft_fsm *g = rf->data;
    if (g == NULL || g->held_index == 0) {
        return;
    }
    uint64_t index = g->held_index;
    g->held_index = 0;
    apply_now(g, index, g->held.p, g->held.len);
}

static int apply_cb(struct raft_fsm *rf,
                    const struct raft_buffer *buf,
                    void **result)
{
    struct cluster_raft_fsm *g = rf->data;
    raft_index index = raft_last_applied(g->raft) + 1;

    cluster_raft_fsm_flush(rf); /* In order: the held one first. */
    /* A follower's result goes to nobody (raft answers only the node that
     * proposed the entry). */
    if (g->hold && raft_state(g->raft) == RAFT_FOLLOWER &&
        hold_entry(g, index, buf)) {
        g->result.results = NULL;
        g->result.n = 0;
    } else {
        apply_now(g, index, buf->base, buf->len);
    }
    *result = &g->result;
    return 0;
}

/* Shared by the sync and async paths: the fsm's chunks (several buffers
 * of up to 64 MiB, format v2 of fsm/snapshot.c) handed to raft as they
 * are, no copy. They are malloc'ed by the fsm, not raft_malloc'ed: raft
 * never frees a snapshot's buffers when the FSM has snapshot_finalize
 * (architecture.md, raft 6), which frees them with free(). */
static int serialise(struct cluster_raft_fsm *g,
                     struct raft_buffer *bufs[],
                     unsigned *n_bufs)
{
    struct fsm_snapshot_chunks ch;
    int rv;

    rv = fsm_snapshot_write(g->snap, &ch);
    if (rv != 0) {
        return rv == ERR_NOMEM ? RAFT_NOMEM : RAFT_IOERR;
    }
    *bufs = malloc(ch.n * sizeof **bufs);
    if (*bufs == NULL) {
        fsm_snapshot_chunks_free(&ch);
        return RAFT_NOMEM;
    }
    for (unsigned i = 0; i < ch.n; i++) {
        (*bufs)[i].base = ch.v[i].base;
        (*bufs)[i].len = ch.v[i].len;
    }
    *n_bufs = ch.n;
    free(ch.v); /* The chunks themselves now belong to *bufs. */
    return 0;
}

static int snapshot_cb(struct raft_fsm *rf,
                       struct raft_buffer *bufs[],
                       unsigned *n_bufs)
{
    struct cluster_raft_fsm *g = rf->data;
    int rv;

    if (g->snap != NULL) {
        return RAFT_BUSY;
    }
    cluster_raft_fsm_flush(rf); /* The snapshot is of last_applied. */
    g->snap_started_ns = clock_mono_ns();
    rv = fsm_snapshot_begin(g->fsm, &g->snap);
    if (rv != 0) {
        LOG(LOG_WARN, "snapshot failed", "err=\"%s\"", fsm_errmsg(g->fsm));
        return RAFT_IOERR;
    }
    *bufs = NULL;
    *n_bufs = 0;
    if (rf->version < 3) {
        rv = serialise(g, bufs, n_bufs);
        if (rv != 0) {
            fsm_snapshot_end(g->snap);
            g->snap = NULL;
        }
        return rv;
    }
    return 0;
}

static int snapshot_async_cb(struct raft_fsm *rf,
                             struct raft_buffer *bufs[],
                             unsigned *n_bufs)
{
    return serialise(rf->data, bufs, n_bufs);
}

static int snapshot_finalize_cb(struct raft_fsm *rf,
                                struct raft_buffer *bufs[],
                                unsigned *n_bufs)
{
    struct cluster_raft_fsm *g = rf->data;
    unsigned long long bytes = 0;

    if (*bufs != NULL) { /* From serialise(): malloc'ed. */
        for (unsigned i = 0; i < *n_bufs; i++) {
            bytes += (*bufs)[i].len;
            free((*bufs)[i].base);
        }
        free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    if (g->snap != NULL) {
        fsm_snapshot_end(g->snap);
        g->snap = NULL;
    }
    g->stats.snapshots_taken++;
    /* ms: from opening the read transaction to the file written. */
    LOG(LOG_INFO, "snapshot taken", "applied=%llu bytes=%llu ms=%llu",
        (unsigned long long)fsm_applied_index(g->fsm), bytes,
        (unsigned long long)((clock_mono_ns() - g->snap_started_ns) / 1000000));
    return 0;
}

/* A snapshot no newer than our state is not restored: the state at an
 * applied index is the same on every replica (apply is deterministic), and
 * the entries after the snapshot up to our applied index are skipped by
 * fsm_apply as replays. It happens at every start with a kept LMDB
 * (cluster/node.c), and when a leader sends a snapshot we already passed.
 * In-memory state derived from the fsm needs no rebuild: it did not
 * change (fsm_restores() stays, as it should). */
static int restore_cb(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct cluster_raft_fsm *g = rf->data;
    cluster_raft_fsm_flush(rf);
    uint64_t have = fsm_applied_index(g->fsm);
    uint64_t snap = fsm_snapshot_index(buf->base, buf->len);
    int rv;

    if (snap != 0 && have >= snap) {
        raft_free(buf->base);
        g->stats.snapshots_skipped++;
        LOG(LOG_INFO, "snapshot restore skipped",
            "applied=%llu snapshot=%llu reason=\"state already at or past "
            "it\"",
            (unsigned long long)have, (unsigned long long)snap);
        return 0;
    }
    uint64_t t0 = clock_mono_ns();
    rv = fsm_restore(g->fsm, buf->base, buf->len);
    if (rv != 0) {
        LOG(LOG_ERROR, "snapshot restore failed", "err=\"%s\"",
            fsm_errmsg(g->fsm));
        return RAFT_CORRUPT;
    }
    raft_free(buf->base);
    g->stats.snapshots_restored++;
    LOG(LOG_INFO, "snapshot installed", "applied=%llu bytes=%zu ms=%llu",
        (unsigned long long)fsm_applied_index(g->fsm), buf->len,
        (unsigned long long)((clock_mono_ns() - t0) / 1000000));
    return 0;
}

int cluster_raft_fsm_init(struct raft_fsm *rf, struct fsm *f, bool async)
{
    struct cluster_raft_fsm *g = calloc(1, sizeof *g);
    if (g == NULL) {
        return ERR_NOMEM;
    }
    g->fsm = f;
    buf_init(&g->held, 0);
    memset(rf, 0, sizeof *rf);
    rf->version = async ? 3 : 2;
    rf->data = g;
    rf->apply = apply_cb;
    rf->snapshot = snapshot_cb;
    rf->restore = restore_cb;
    rf->snapshot_finalize = snapshot_finalize_cb;
    rf->snapshot_async = async ? snapshot_async_cb : NULL;
    return 0;
}

void cluster_raft_fsm_set_raft(struct raft_fsm *rf, struct raft *r)
{
    struct cluster_raft_fsm *g = rf->data;
    g->raft = r;
}

void cluster_raft_fsm_close(struct raft_fsm *rf)
{
    struct cluster_raft_fsm *g = rf->data;
    if (g == NULL) {
        return;
    }
    if (g->snap != NULL) {
        fsm_snapshot_end(g->snap);
    }
    /* A held entry left here (cluster_close flushes) is committed and in
     * raft's log: the next start applies it again. */
    buf_free(&g->held);
    free(g);
    rf->data = NULL;
}

void cluster_raft_fsm_set_hold(struct raft_fsm *rf, bool hold)
{
    struct cluster_raft_fsm *g = rf->data;
    g->hold = hold;
}

uint64_t cluster_raft_fsm_held(struct raft_fsm *rf)
{
    struct cluster_raft_fsm *g = rf->data;
    return g != NULL ? g->held_index : 0;
}

uint64_t cluster_raft_fsm_applied(struct raft_fsm *rf)
{
    struct cluster_raft_fsm *g = rf->data;
    uint64_t raft = raft_last_applied(g->raft);
    if (g->held_index != 0) {
        return g->held_index - 1; /* raft counts it; the state lacks it. */
    }
    /* Inside an entry's callbacks (a write's answer) raft still says the
     * entry before: the answer's X-Rota-Index must include its own. */
    return g->stats.last_index > raft ? g->stats.last_index : raft;
}

void cluster_raft_fsm_stats(struct raft_fsm *rf,
                            struct cluster_raft_fsm_stats *out)
{
    struct cluster_raft_fsm *g = rf->data;
    *out = g->stats;
}
