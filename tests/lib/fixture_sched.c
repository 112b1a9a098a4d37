/* sched_io on the cluster fixture: see fixture_sched.h. */

#include "tests/lib/fixture_sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/raft_fsm.h"
#include "common/err.h"

/* As cluster/submit.c maps raft's codes for its callers. */
static int err_from_raft(int rv)
{
    switch (rv) {
        case 0:
            return 0;
        case RAFT_NOTLEADER:
            return ERR_NOTLEADER;
        case RAFT_NOMEM:
            return ERR_NOMEM;
        case RAFT_SHUTDOWN:
            return ERR_SHUTDOWN;
        default: /* RAFT_LEADERSHIPLOST and the rest: outcome unknown. */
            return ERR_UNKNOWN;
    }
}

struct fixture_sched_sub
{
    void *cmd;
    size_t len;
    sched_submit_cb cb;
    void *data;
};

/* The commands of one proposed entry, in order. */
struct entry
{
    struct fixture_sched_node *node;
    unsigned n;
    struct fixture_sched_sub subs[];
};

/* Tell the observer, fire the submitter's callback, free the command. */
static void answer(struct fixture_sched_node *n,
                   struct fixture_sched_sub *sub,
                   int status,
                   const struct fsm_result *res)
{
    struct fixture_sched *fs = n->fs;
    if (fs->on_result != NULL) {
        struct fsm_cmd cmd;
        struct fsm_job *store = NULL;
        if (fsm_cmd_decode(sub->cmd, sub->len, &cmd, &store) == 0) {
            fs->on_result(fs->on_result_data, n->i, &cmd, status, res);
            fsm_cmd_free(&cmd, store);
        }
    }
    free(sub->cmd);
    sub->cmd = NULL;
    sub->cb(sub->data, status, res);
}

static void entry_applied_cb(struct cluster_req *req, int status, const void *r)
{
    struct entry *e = req->on_done_data;
    const struct cluster_apply_result *res = r;
    struct fsm_result corrupt;
    int rv = err_from_raft(status);

    memset(&corrupt, 0, sizeof corrupt);
    corrupt.code = ERR_CORRUPT;
    snprintf(corrupt.msg, sizeof corrupt.msg, "command was not applied");
    for (unsigned c = 0; c < e->n; c++) {
        const struct fsm_result *fr = NULL;
        if (rv == 0) {
            fr = res != NULL && c < res->n ? &res->results[c] : &corrupt;
        }
        answer(e->node, &e->subs[c], rv, fr);
    }
    free(e);
}

static int io_submit(void *data,
                     const void *cmd,
                     size_t len,
                     sched_submit_cb cb,
                     void *cb_data)
{
    struct fixture_sched_node *n = data;
    struct fixture_sched_sub *sub;

    if (n->fs->closing) {
        return ERR_SHUTDOWN;
    }
    if (raft_state(CLUSTER_RAFT(n->fs->f, n->i)) != RAFT_LEADER) {
        return ERR_NOTLEADER;
    }
    if (n->n_queue == n->cap_queue) {
        unsigned cap = n->cap_queue == 0 ? 16 : n->cap_queue * 2;
        sub = realloc(n->queue, cap * sizeof *sub);
        if (sub == NULL) {
            return ERR_NOMEM;
        }
        n->queue = sub;
        n->cap_queue = cap;
    }
    sub = &n->queue[n->n_queue];
    if ((sub->cmd = malloc(len)) == NULL) {
        return ERR_NOMEM;
    }
    memcpy(sub->cmd, cmd, len);
    sub->len = len;
    sub->cb = cb;
    sub->data = cb_data;
    n->n_queue++;
    n->submits++;
    return 0;
}

/* Propose node @n's queue as one entry; on refusal (or @fail_status), fail
 * every command. Callbacks may queue more: the queue is taken first. */
static void flush_node(struct fixture_sched_node *n, int fail_status)
{
    unsigned count = n->n_queue;
    struct entry *e;
    const void **cmds;
    size_t *lens;
    struct cluster_req *req;
    int rv = fail_status;

    if (count == 0) {
        return;
    }
    e = malloc(sizeof *e + count * sizeof e->subs[0]);
    cmds = calloc(count, sizeof *cmds);
    lens = calloc(count, sizeof *lens);
    assert_non_null(e);
    assert_non_null(cmds);
    assert_non_null(lens);
    e->node = n;
    e->n = count;
    memcpy(e->subs, n->queue, count * sizeof e->subs[0]);
    n->n_queue = 0;
    for (unsigned c = 0; c < count; c++) {
        cmds[c] = e->subs[c].cmd;
        lens[c] = e->subs[c].len;
    }
    if (rv == 0) {
        req = cluster_fixture_submit_encoded(n->fs->f, n->i, cmds, lens, count,
                                             entry_applied_cb, e);
        rv = err_from_raft(req->rv);
    }
    free(cmds);
    free(lens);
    if (rv == 0) {
        n->entries++;
        return; /* entry_applied_cb frees @e. */
    }
    for (unsigned c = 0; c < count; c++) {
        answer(n, &e->subs[c], rv, NULL);
    }
    free(e);
}

void fixture_sched_flush(struct fixture_sched *fs)
{
    for (unsigned i = 0; i < CLUSTER_N(fs->f); i++) {
        /* A dead node's loop does not run: its queue waits. */
        if (CLUSTER_ALIVE(fs->f, i)) {
            flush_node(&fs->nodes[i], 0);
        }
    }
}

static bool io_is_leader(void *data)
{
    struct fixture_sched_node *n = data;
    return raft_state(CLUSTER_RAFT(n->fs->f, n->i)) == RAFT_LEADER;
}

static struct fsm *io_fsm(void *data)
{
    struct fixture_sched_node *n = data;
    return CLUSTER_FSM(n->fs->f, n->i);
}

static int64_t io_now(void *data)
{
    struct fixture_sched_node *n = data;
    return CLUSTER_EPOCH_MS + (int64_t)CLUSTER_TIME(n->fs->f);
}

static uint64_t io_random(void *data)
{
    struct fixture_sched_node *n = data;
    n->rng ^= n->rng >> 12;
    n->rng ^= n->rng << 25;
    n->rng ^= n->rng >> 27;
    return n->rng * 0x2545F4914F6CDD1DULL;
}

struct fixture_sched *fixture_sched_create(struct cluster_fixture *f,
                                           const struct sched_config *cfg,
                                           uint64_t seed)
{
    struct fixture_sched *fs = calloc(1, sizeof *fs);
    struct sched_config def;

    if (fs == NULL) {
        return NULL;
    }
    memset(&def, 0, sizeof def);
    def.worker_ttl_ms = 2000;
    def.aging_s = 60;
    fs->f = f;
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        struct fixture_sched_node *n = &fs->nodes[i];
        struct sched_io io = {n,      io_submit, io_is_leader,
                              io_fsm, io_now,    io_random};
        n->fs = fs;
        n->i = i;
        n->rng = (seed + 1) * 0x9E3779B97F4A7C15ULL ^
                 (uint64_t)(i + 1) * 0xBF58476D1CE4E5B9ULL;
        n->rng |= 1;
        if (sched_create(&io, cfg != NULL ? cfg : &def, &n->sc) != 0) {
            fixture_sched_destroy(fs);
            return NULL;
        }
    }
    fs->next_tick = CLUSTER_TIME(f);
    return fs;
}

void fixture_sched_destroy(struct fixture_sched *fs)
{
    if (fs == NULL) {
        return;
    }
    fs->closing = true;
    for (unsigned i = 0; i < CLUSTER_MAX_N; i++) {
        if (fs->nodes[i].sc != NULL) {
            sched_stop(fs->nodes[i].sc);
        }
    }
    for (unsigned i = 0; i < CLUSTER_MAX_N; i++) {
        flush_node(&fs->nodes[i], ERR_SHUTDOWN);
    }
    cluster_fixture_close(fs->f); /* Pending submits fail into sched. */
    for (unsigned i = 0; i < CLUSTER_MAX_N; i++) {
        sched_destroy(fs->nodes[i].sc);
        free(fs->nodes[i].queue);
    }
    free(fs);
}

void fixture_sched_tick(struct fixture_sched *fs)
{
    struct cluster_fixture *f = fs->f;
    for (unsigned i = 0; i < CLUSTER_N(f); i++) {
        if (CLUSTER_ALIVE(f, i)) {
            sched_tick(fs->nodes[i].sc);
        }
    }
    fs->ticks++;
}

void fixture_sched_step(struct fixture_sched *fs)
{
    raft_time now;
    fixture_sched_flush(fs);
    raft_fixture_step(&fs->f->raft);
    now = CLUSTER_TIME(fs->f);
    if (now >= fs->next_tick) {
        fixture_sched_tick(fs);
        fs->next_tick = (now / SCHED_TICK_MS + 1) * SCHED_TICK_MS;
    }
    fixture_sched_flush(fs);
}

bool fixture_sched_step_until(struct fixture_sched *fs,
                              bool (*stop)(struct fixture_sched *fs, void *arg),
                              void *arg,
                              unsigned max_ms)
{
    raft_time start = CLUSTER_TIME(fs->f);
    while (!stop(fs, arg)) {
        if (CLUSTER_TIME(fs->f) - start >= max_ms) {
            return false;
        }
        fixture_sched_step(fs);
    }
    return true;
}

static bool elapsed(struct fixture_sched *fs, void *arg)
{
    return CLUSTER_TIME(fs->f) >= *(raft_time *)arg;
}

void fixture_sched_step_until_elapsed(struct fixture_sched *fs, unsigned ms)
{
    raft_time until = CLUSTER_TIME(fs->f) + ms;
    fixture_sched_step_until(fs, elapsed, &until, ms + 1);
}

static bool has_leader(struct fixture_sched *fs, void *arg)
{
    (void)arg;
    return CLUSTER_HAS_LEADER(fs->f);
}

bool fixture_sched_step_until_has_leader(struct fixture_sched *fs,
                                         unsigned max_ms)
{
    return fixture_sched_step_until(fs, has_leader, NULL, max_ms);
}

static bool applied(struct fixture_sched *fs, void *arg)
{
    raft_index index = *(raft_index *)arg;
    for (unsigned i = 0; i < CLUSTER_N(fs->f); i++) {
        if (CLUSTER_ALIVE(fs->f, i) && CLUSTER_LAST_APPLIED(fs->f, i) < index) {
            return false;
        }
    }
    return true;
}

bool fixture_sched_step_until_applied(struct fixture_sched *fs,
                                      raft_index index,
                                      unsigned max_ms)
{
    return fixture_sched_step_until(fs, applied, &index, max_ms);
}
