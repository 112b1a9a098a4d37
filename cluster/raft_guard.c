/* See raft_guard.h: workarounds for three raft 0.15 bugs. */

#define LOG_MODULE "raft"
#include "cluster/raft_guard.h"

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/log.h"

struct guard
{
    struct raft_io *io; /* NULL: a free slot. */
    int (*start)(struct raft_io *io,
                 unsigned msecs,
                 raft_io_tick_cb tick,
                 raft_io_recv_cb recv);
    int (*send)(struct raft_io *io,
                struct raft_io_send *req,
                const struct raft_message *message,
                raft_io_send_cb cb);
    raft_io_recv_cb recv;
    bool in_append;        /* An AppendEntries is being received. */
    raft_index append_end; /* Its prev_log_index + n_entries. */
    bool in_install;       /* An InstallSnapshot is being received. */
    /* The last two configurations seen, with the index of their entry
     * (bug 3 in raft_guard.h). */
    struct
    {
        raft_index index;
        struct raft_configuration conf;
    } seen[2];
    unsigned long long rollbacks;
    unsigned long long clamped, raised;
};

/* Few ios per process (one in rotad, up to 5 in a raft_fixture), all on
 * one thread: a linear scan is enough. */
static struct guard guards[RAFT_GUARD_MAX];

static struct guard *find(const struct raft_io *io)
{
    for (unsigned i = 0; i < RAFT_GUARD_MAX; i++) {
        if (guards[i].io == io) {
            return &guards[i];
        }
    }
    return NULL;
}

/* ---- Bug 3: a rollback to a compacted configuration --------------------
 * Raft 0.15's struct raft_log is public: a circular buffer of the entries
 * after offset, and the last snapshot's index and term. */

static size_t log_count(const struct raft_log *l)
{
    return l->front <= l->back ? l->back - l->front
                               : l->size - l->front + l->back;
}

static bool log_has(const struct raft_log *l, raft_index index)
{
    return index > l->offset && index <= l->offset + log_count(l);
}

/* Term of the entry at @index, 0 when neither the log nor the snapshot has
 * it (as raft's logTermOf). */
static raft_term log_term(const struct raft_log *l, raft_index index)
{
    if (log_has(l, index)) {
        return l->entries[(l->front + (index - 1 - l->offset)) % l->size].term;
    }
    return index == l->snapshot.last_index ? l->snapshot.last_term : 0;
}

static int conf_copy(const struct raft_configuration *src,
                     struct raft_configuration *dst)
{
    raft_configuration_init(dst);
    for (unsigned i = 0; i < src->n; i++) {
        const struct raft_server *s = &src->servers[i];
        int rv = raft_configuration_add(dst, s->id, s->address, s->role);
        if (rv != 0) {
            raft_configuration_close(dst);
            return rv;
        }
    }
    return 0;
}

/* Remember the current configuration with its entry's index, keeping the
 * one before it. */
static void remember_conf(struct guard *g, const struct raft *r)
{
    raft_index index = r->configuration_uncommitted_index != 0
                           ? r->configuration_uncommitted_index
                           : r->configuration_index;
    struct raft_configuration copy;
    if (index == 0 || index == g->seen[0].index ||
        conf_copy(&r->configuration, &copy) != 0) {
        return;
    }
    if (g->seen[1].index != 0) {
        raft_configuration_close(&g->seen[1].conf);
    }
    g->seen[1] = g->seen[0];
    g->seen[0].index = index;
    g->seen[0].conf = copy;
}

/* Raft 0.15 truncates a follower's conflicting entries after rolling back
 * an uncommitted configuration to the committed one, which it reads from
 * the log by index (membershipRollback): once compacted into a snapshot,
 * that entry is gone and raft dereferences NULL. When @args would take
 * that path, do the rollback here from a remembered copy, so that raft
 * finds nothing to roll back. (Upstream fixed it in 0.16: "membership:
 * Ensure configuration rollback is possible".) */
static void pre_rollback(struct guard *g,
                         struct raft *r,
                         const struct raft_append_entries *args)
{
    raft_index conflict = 0;
    if (r->configuration_uncommitted_index == 0 ||
        r->configuration_index == 0 ||
        (r->state != RAFT_FOLLOWER && r->state != RAFT_CANDIDATE) ||
        args->term < r->current_term ||
        log_has(&r->log, r->configuration_index)) {
        return;
    }
    if (args->prev_log_index > 0 &&
        log_term(&r->log, args->prev_log_index) != args->prev_log_term) {
        return; /* Rejected without truncating. */
    }
    for (unsigned j = 0; j < args->n_entries && conflict == 0; j++) {
        raft_index index = args->prev_log_index + 1 + j;
        raft_term term = log_term(&r->log, index);
        if (term > 0 && term != args->entries[j].term) {
            conflict = index;
        }
    }
    if (conflict == 0 || conflict > r->configuration_uncommitted_index ||
        conflict <= r->commit_index) {
        return;
    }
    for (unsigned k = 0; k < 2; k++) {
        struct raft_configuration copy;
        if (g->seen[k].index == r->configuration_index &&
            conf_copy(&g->seen[k].conf, &copy) == 0) {
            LOG(LOG_WARN, "configuration rolled back by the raft guard",
                "uncommitted=%llu committed=%llu conflict=%llu",
                (unsigned long long)r->configuration_uncommitted_index,
                (unsigned long long)r->configuration_index,
                (unsigned long long)conflict);
            raft_configuration_close(&r->configuration);
            r->configuration = copy;
            r->configuration_uncommitted_index = 0;
            g->rollbacks++;
            return;
        }
    }
}

static void guard_recv(struct raft_io *io, struct raft_message *message)
{
    struct guard *g = find(io);
    struct raft *r = io->data;
    remember_conf(g, r);
    if (message->type == RAFT_IO_APPEND_ENTRIES) {
        pre_rollback(g, r, &message->append_entries);
        g->in_append = true;
        g->append_end = message->append_entries.prev_log_index +
                        message->append_entries.n_entries;
    }
    g->in_install = message->type == RAFT_IO_INSTALL_SNAPSHOT;
    /* Raft consumes the message (and may answer it) in here. */
    g->recv(io, message);
    g->in_append = false;
    g->in_install = false;
}

static int guard_start(struct raft_io *io,
                       unsigned msecs,
                       raft_io_tick_cb tick,
                       raft_io_recv_cb recv)
{
    struct guard *g = find(io);
    g->recv = recv;
    return g->start(io, msecs, tick, guard_recv);
}

static int guard_send(struct raft_io *io,
                      struct raft_io_send *req,
                      const struct raft_message *message,
                      raft_io_send_cb cb)
{
    struct guard *g = find(io);
    const struct raft_append_entries_result *res =
        &message->append_entries_result;
    if (g->in_append && message->type == RAFT_IO_APPEND_ENTRIES_RESULT &&
        res->rejected == 0 && res->last_log_index > g->append_end) {
        /* Both raft_uv and the fixture copy or encode the message before
         * send returns, so a copy on the stack is enough. */
        struct raft_message copy = *message;
        copy.append_entries_result.last_log_index = g->append_end;
        g->clamped++;
        return g->send(io, req, &copy, cb);
    }
    if (g->in_install && message->type == RAFT_IO_APPEND_ENTRIES_RESULT &&
        res->rejected == 0) {
        /* An InstallSnapshot this follower needs not (it has a newer
         * snapshot, or the entries): raft echoes the snapshot's index,
         * which the leader already recorded, so the leader never leaves
         * its snapshot state and sends the same snapshot every 30 s.
         * Claim the commit index instead: committed entries are the same
         * on every leader. */
        const struct raft *r = io->data;
        if (r->commit_index > res->last_log_index) {
            struct raft_message copy = *message;
            copy.append_entries_result.last_log_index = r->commit_index;
            LOG(LOG_INFO, "snapshot not needed, answered with commit index",
                "snapshot=%llu commit=%llu",
                (unsigned long long)res->last_log_index,
                (unsigned long long)r->commit_index);
            g->raised++;
            return g->send(io, req, &copy, cb);
        }
    }
    return g->send(io, req, message, cb);
}

int raft_guard_install(struct raft_io *io)
{
    struct guard *g = find(io);
    if (g != NULL) {
        return 0; /* Already guarded. */
    }
    g = find(NULL);
    if (g == NULL) {
        return ERR_NOMEM;
    }
    *g = (struct guard){0};
    g->io = io;
    g->start = io->start;
    g->send = io->send;
    io->start = guard_start;
    io->send = guard_send;
    return 0;
}

void raft_guard_remove(struct raft_io *io)
{
    struct guard *g = find(io);
    if (g != NULL) {
        for (unsigned k = 0; k < 2; k++) {
            if (g->seen[k].index != 0) {
                raft_configuration_close(&g->seen[k].conf);
            }
        }
        io->start = g->start;
        io->send = g->send;
        *g = (struct guard){0};
    }
}

void raft_guard_stats(const struct raft_io *io, struct raft_guard_stats *out)
{
    const struct guard *g = find(io);
    *out = (struct raft_guard_stats){0};
    if (g != NULL) {
        out->clamped = g->clamped;
        out->raised = g->raised;
        out->rollbacks = g->rollbacks;
    }
}
