/* See raft_guard.h: clamp what a follower's AppendEntries result claims. */

#include "cluster/raft_guard.h"

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

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

static void guard_recv(struct raft_io *io, struct raft_message *message)
{
    struct guard *g = find(io);
    if (message->type == RAFT_IO_APPEND_ENTRIES) {
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
        io->start = g->start;
        io->send = g->send;
        *g = (struct guard){0};
    }
}

unsigned long long raft_guard_clamped(const struct raft_io *io)
{
    const struct guard *g = find(io);
    return g != NULL ? g->clamped + g->raised : 0;
}
