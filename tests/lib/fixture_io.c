/* See fixture_io.h. */

#include "tests/lib/fixture_io.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "common/err.h"

#define MAX_IOS 8

/* A request held back until the appends before it completed. */
struct op
{
    struct op *next;
    bool truncate;
    raft_index index; /* truncate */
    struct raft_io_append *req;
    const struct raft_entry *entries;
    unsigned n;
    raft_io_append_cb cb;
};

/* One append passed to the fixture: completes the caller's request. */
struct wrap
{
    struct raft_io_append inner;
    struct raft_io_append *outer;
    struct shim *shim;
};

struct shim
{
    struct raft_io *io; /* NULL: a free slot. */
    int (*append)(struct raft_io *io,
                  struct raft_io_append *req,
                  const struct raft_entry entries[],
                  unsigned n,
                  raft_io_append_cb cb);
    int (*truncate)(struct raft_io *io, raft_index index);
    int (*snapshot_put)(struct raft_io *io,
                        unsigned trailing,
                        struct raft_io_snapshot_put *req,
                        const struct raft_snapshot *snapshot,
                        raft_io_snapshot_put_cb cb);
    unsigned in_flight;     /* Appends handed to the fixture, not done. */
    struct op *head, *tail; /* Held back, in order. */
    raft_index base;        /* Index of the fixture array's first entry. */
    raft_index installing;  /* Index of a snapshot being installed, or 0. */
    void (*after_append)(void *data);
    void *after_data;
};

static struct shim shims[MAX_IOS];

static struct shim *find(const struct raft_io *io)
{
    for (unsigned i = 0; i < MAX_IOS; i++) {
        if (shims[i].io == io) {
            return &shims[i];
        }
    }
    return NULL;
}

static void append_cb(struct raft_io_append *inner, int status);

static int pass_append(struct shim *sh,
                       struct raft_io_append *req,
                       const struct raft_entry entries[],
                       unsigned n,
                       raft_io_append_cb cb)
{
    struct wrap *w = calloc(1, sizeof *w);
    int rv;
    if (w == NULL) {
        return RAFT_NOMEM;
    }
    w->outer = req;
    w->outer->cb = cb;
    w->shim = sh;
    w->inner.data = w;
    rv = sh->append(sh->io, &w->inner, entries, n, append_cb);
    if (rv != 0) {
        free(w);
        return rv;
    }
    sh->in_flight++;
    return 0;
}

static int pass_truncate(struct shim *sh, raft_index index)
{
    /* The fixture keeps index - 1 entries of an array starting at 1. */
    return sh->truncate(sh->io, index - sh->base + 1);
}

/* Hand held-back requests to the fixture while they may go. */
static void drain(struct shim *sh)
{
    while (sh->head != NULL && !(sh->head->truncate && sh->in_flight > 0)) {
        struct op *op = sh->head;
        sh->head = op->next;
        if (sh->head == NULL) {
            sh->tail = NULL;
        }
        if (op->truncate) {
            pass_truncate(sh, op->index);
        } else if (pass_append(sh, op->req, op->entries, op->n, op->cb) != 0) {
            op->req->cb(op->req, RAFT_IOERR);
        }
        free(op);
    }
}

static void append_cb(struct raft_io_append *inner, int status)
{
    struct wrap *w = inner->data;
    struct shim *sh = w->shim;
    struct raft_io_append *outer = w->outer;
    free(w);
    sh->in_flight--;
    outer->cb(outer, status);
    if (sh->after_append != NULL) {
        sh->after_append(sh->after_data);
    }
    drain(sh);
}

static int hold(struct shim *sh, struct op *op)
{
    struct op *copy = malloc(sizeof *copy);
    if (copy == NULL) {
        return RAFT_NOMEM;
    }
    *copy = *op;
    copy->next = NULL;
    if (sh->tail != NULL) {
        sh->tail->next = copy;
    } else {
        sh->head = copy;
    }
    sh->tail = copy;
    return 0;
}

static int shim_append(struct raft_io *io,
                       struct raft_io_append *req,
                       const struct raft_entry entries[],
                       unsigned n,
                       raft_io_append_cb cb)
{
    struct shim *sh = find(io);
    if (sh->head != NULL) {
        struct op op = {.req = req, .entries = entries, .n = n, .cb = cb};
        return hold(sh, &op);
    }
    return pass_append(sh, req, entries, n, cb);
}

static int shim_truncate(struct raft_io *io, raft_index index)
{
    struct shim *sh = find(io);
    if (index == 1 && sh->installing != 0) {
        /* The fixture empties its array when it stores an installed
         * snapshot; entries then start after it. */
        int rv = sh->truncate(io, 1);
        sh->base = sh->installing + 1;
        sh->installing = 0;
        return rv;
    }
    if (sh->in_flight > 0 || sh->head != NULL) {
        struct op op = {.truncate = true, .index = index};
        return hold(sh, &op);
    }
    return pass_truncate(sh, index);
}

static int shim_snapshot_put(struct raft_io *io,
                             unsigned trailing,
                             struct raft_io_snapshot_put *req,
                             const struct raft_snapshot *snapshot,
                             raft_io_snapshot_put_cb cb)
{
    struct shim *sh = find(io);
    if (trailing == 0) {
        sh->installing = snapshot->index;
    }
    return sh->snapshot_put(io, trailing, req, snapshot, cb);
}

int fixture_io_install(struct raft_io *io)
{
    struct shim *sh = find(io);
    if (sh != NULL) {
        return 0;
    }
    sh = find(NULL);
    if (sh == NULL) {
        return ERR_NOMEM;
    }
    *sh = (struct shim){0};
    sh->io = io;
    sh->base = 1;
    sh->append = io->append;
    sh->truncate = io->truncate;
    sh->snapshot_put = io->snapshot_put;
    io->append = shim_append;
    io->truncate = shim_truncate;
    io->snapshot_put = shim_snapshot_put;
    return 0;
}

void fixture_io_set_after_append(struct raft_io *io,
                                 void (*fn)(void *data),
                                 void *data)
{
    struct shim *sh = find(io);
    if (sh != NULL) {
        sh->after_append = fn;
        sh->after_data = data;
    }
}

void fixture_io_remove(struct raft_io *io)
{
    struct shim *sh = find(io);
    if (sh == NULL) {
        return;
    }
    while (sh->head != NULL) {
        struct op *next = sh->head->next;
        if (!sh->head->truncate) {
            /* Raft frees its request in the callback (closed: ignored). */
            sh->head->req->cb(sh->head->req, RAFT_CANCELED);
        }
        free(sh->head);
        sh->head = next;
    }
    io->append = sh->append;
    io->truncate = sh->truncate;
    io->snapshot_put = sh->snapshot_put;
    *sh = (struct shim){0};
}
