/* Cluster fixture: raft_fixture + the real FSM + the raft_fsm glue.
 *
 * Setup: one LMDB environment per server under a mkdtemp root; the glue's
 * raft_fsm is wrapped so every apply on every server is counted (and its
 * buffer length checked for 8-byte alignment) before it is forwarded; the
 * raft fixture grows one server per FSM (0.15 API), bootstraps all as voters
 * and starts them.
 *
 * Submits build a real batch (fsm_cmd_encode + fsm_batch_*), sealed with the
 * virtual time, and hand it to raft_apply in a raft_malloc buffer. The apply
 * callback copies the results: they are borrowed from the glue only during
 * the callback. */

#include "tests/lib/cluster_fixture.h"
#include "tests/lib/fixture_io.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/raft_fsm.h"
#include "cluster/raft_guard.h"
#include "common/err.h"
#include "common/log.h"

/* ---- Apply wrapper --------------------------------------------------------
 */

/* Apply @node's held entry (if any) and check the index it stored. */
static void flush_node(struct cluster_node *node)
{
    uint64_t held = cluster_raft_fsm_held(&node->rf);
    if (held == 0) {
        return;
    }
    cluster_raft_fsm_flush(&node->rf);
    if (fsm_applied_index(node->fsm) != held) {
        fprintf(stderr, "held entry %llu applied, fsm says applied %llu\n",
                (unsigned long long)held,
                (unsigned long long)fsm_applied_index(node->fsm));
        node->index_mismatches++;
    }
}

static void flush_node_cb(void *data)
{
    flush_node(data);
}

static int node_apply_cb(struct raft_fsm *rf,
                         const struct raft_buffer *buf,
                         void **result)
{
    struct cluster_node *node = (struct cluster_node *)(void *)rf;

    raft_index index = raft_last_applied(node->raft) + 1;
    int rv;

    /* A snapshot may end with configuration entries, which raft never
     * hands to the FSM: its state then ends a few indexes earlier. A
     * missing command would show in the digests. */
    if (node->just_restored) {
        if (node->restored_applied > index - 1) {
            fprintf(stderr,
                    "restored fsm applied index %llu, raft snapshot %llu\n",
                    (unsigned long long)node->restored_applied,
                    (unsigned long long)(index - 1));
            node->restore_mismatches++;
        }
        node->just_restored = false;
    }
    node->entries_applied++;
    node->bytes_applied += buf->len;
    if (buf->len % 8 != 0) {
        node->unaligned_entries++;
    }
    flush_node(node); /* The glue would; here it is checked. */
    rv = node->glue_apply(rf, buf, result);
    if (rv == 0 && cluster_raft_fsm_held(rf) == index) {
        return 0; /* Held: checked when applied (flush_node). */
    }
    if (rv == 0 && fsm_applied_index(node->fsm) != index) {
        fprintf(stderr, "entry %llu applied, fsm says applied %llu\n",
                (unsigned long long)index,
                (unsigned long long)fsm_applied_index(node->fsm));
        node->index_mismatches++;
    }
    return rv;
}

static int node_restore_cb(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct cluster_node *node = (struct cluster_node *)(void *)rf;
    int rv = node->glue_restore(rf, buf);

    if (rv == 0) {
        node->restores++;
        node->just_restored = true;
        node->restored_applied = fsm_applied_index(node->fsm);
    }
    return rv;
}

/* ---- Lifecycle ------------------------------------------------------------
 */

static int remove_cb(const char *path,
                     const struct stat *sb,
                     int flag,
                     struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0) {
        fprintf(stderr, "cluster_fixture: remove %s: %s\n", path,
                strerror(errno));
    }
    return 0;
}

bool cluster_fixture_raft_guard = true;
bool cluster_fixture_plant_ack = false;

static int create_nodes(struct cluster_fixture *f, unsigned n, bool async)
{
    for (unsigned i = 0; i < n; i++) {
        struct cluster_node *node = &f->nodes[i];
        struct fsm_options opts;
        int rv;

        snprintf(node->dir, sizeof node->dir, "%s/n%u", f->root, i + 1);
        memset(&opts, 0, sizeof opts);
        opts.dir = node->dir;
        opts.map_size = 64u << 20;
        opts.fresh = true;
        rv = fsm_open(&opts, &node->fsm);
        if (rv != 0) {
            fprintf(stderr, "cluster_fixture: fsm_open %s: %d %s\n", node->dir,
                    rv, node->fsm != NULL ? fsm_errmsg(node->fsm) : "");
            node->fsm = NULL;
            return -1;
        }
        rv = cluster_raft_fsm_init(&node->rf, node->fsm, async);
        if (rv != 0) {
            fprintf(stderr, "cluster_fixture: raft_fsm_init: %d\n", rv);
            return -1;
        }
        node->glue_apply = node->rf.apply;
        node->rf.apply = node_apply_cb;
        node->glue_restore = node->rf.restore;
        node->rf.restore = node_restore_cb;
        /* raft_init (inside grow) refuses an async FSM on an io below
         * version 2; the fixture's io never sets it, and has async_work. */
        f->raft.servers[i].io.version = 2;
        rv = raft_fixture_grow(&f->raft, &node->rf);
        if (rv != 0) {
            fprintf(stderr, "cluster_fixture: grow: %s\n", raft_strerror(rv));
            return -1;
        }
        /* As rotad does (cluster/node.c): unless a test wants to see the
         * raft 0.15 bug the guard corrects. */
        if (fixture_io_install(&f->raft.servers[i].io) != 0) {
            fprintf(stderr, "cluster_fixture: fixture_io_install\n");
            return -1;
        }
        if (cluster_fixture_raft_guard &&
            raft_guard_install(&f->raft.servers[i].io) != 0) {
            fprintf(stderr, "cluster_fixture: raft_guard_install\n");
            return -1;
        }
        fixture_io_set_after_append(&f->raft.servers[i].io, flush_node_cb,
                                    node);
        /* The glue computes the applied index from raft_last_applied(). */
        node->raft = raft_fixture_get(&f->raft, i);
        cluster_raft_fsm_set_raft(&node->rf, node->raft);
        cluster_raft_fsm_set_hold(&node->rf, true); /* As rotad does. */
        f->n = i + 1;
    }
    return 0;
}

static struct cluster_fixture *create(unsigned voters,
                                      unsigned spares,
                                      bool async);

struct cluster_fixture *cluster_fixture_create(unsigned n)
{
    return cluster_fixture_create_mode(n, false);
}

struct cluster_fixture *cluster_fixture_create_mode(unsigned n, bool async)
{
    return create(n, 0, async);
}

struct cluster_fixture *cluster_fixture_create_spares(unsigned voters,
                                                      unsigned spares)
{
    return create(voters, spares, false);
}

static struct cluster_fixture *create(unsigned voters,
                                      unsigned spares,
                                      bool async)
{
    struct cluster_fixture *f;
    struct raft_configuration conf;
    const char *tmp = getenv("TMPDIR");
    unsigned n = voters + spares;
    int rv;

    if (voters == 0 || n > CLUSTER_MAX_N) {
        return NULL;
    }
    f = calloc(1, sizeof *f);
    if (f == NULL) {
        return NULL;
    }
    log_level = LOG_WARN; /* The glue logs every snapshot at info. */
    snprintf(f->root, sizeof f->root, "%s/rota-cluster-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(f->root) == NULL) {
        fprintf(stderr, "cluster_fixture: mkdtemp: %s\n", strerror(errno));
        free(f);
        return NULL;
    }
    rv = raft_fixture_initialize(&f->raft);
    if (rv != 0) {
        goto err;
    }
    if (create_nodes(f, n, async) != 0) {
        goto err;
    }
    rv = raft_fixture_configuration(&f->raft, voters, &conf);
    if (rv != 0) {
        goto err;
    }
    /* Spares start with an empty log, like a rotad that joins. */
    for (unsigned i = 0; i < voters && rv == 0; i++) {
        rv = raft_bootstrap(raft_fixture_get(&f->raft, i), &conf);
    }
    raft_configuration_close(&conf);
    if (rv != 0) {
        fprintf(stderr, "cluster_fixture: bootstrap: %s\n", raft_strerror(rv));
        goto err;
    }
    rv = raft_fixture_start(&f->raft);
    if (rv != 0) {
        fprintf(stderr, "cluster_fixture: start: %s\n", raft_strerror(rv));
        goto err;
    }
    return f;

err:
    cluster_fixture_destroy(f);
    return NULL;
}

static void req_free(struct cluster_req *req)
{
    for (unsigned c = 0; c < req->n_cmds && req->results != NULL; c++) {
        free(req->results[c].ids);
        free(req->results[c].existed);
    }
    for (unsigned k = 0; k < req->n_jobs; k++) {
        free(req->specs[k]);
        free(req->idem_keys[k]);
    }
    free(req->results);
    free(req->first_job);
    free(req->jobs_in_cmd);
    free(req->specs);
    free(req->idem_keys);
    free(req);
}

void cluster_fixture_close(struct cluster_fixture *f)
{
    if (f != NULL && !f->closed) {
        f->closed = true;
        raft_fixture_close(&f->raft);
    }
}

void cluster_fixture_destroy(struct cluster_fixture *f)
{
    if (f == NULL) {
        return;
    }
    /* Closing raft may still fire apply callbacks (pending applies fail
     * with RAFT_LEADERSHIPLOST), so requests and FSMs outlive it. */
    cluster_fixture_close(f);
    for (unsigned i = 0; i < CLUSTER_MAX_N; i++) {
        struct cluster_node *node = &f->nodes[i];
        raft_guard_remove(&f->raft.servers[i].io);
        fixture_io_remove(&f->raft.servers[i].io);
        if (node->rf.data != NULL) {
            cluster_raft_fsm_close(&node->rf);
        }
        if (node->fsm != NULL) {
            fsm_close(node->fsm);
        }
    }
    while (f->reqs != NULL) {
        struct cluster_req *next = f->reqs->next;
        req_free(f->reqs);
        f->reqs = next;
    }
    if (getenv("ROTA_KEEP_TMP") == NULL) {
        nftw(f->root, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
    }
    free(f);
}

int cluster_fixture_setup3(void **state)
{
    *state = cluster_fixture_create(3);
    return *state != NULL ? 0 : -1;
}

int cluster_fixture_setup3_async(void **state)
{
    *state = cluster_fixture_create_mode(3, true);
    return *state != NULL ? 0 : -1;
}

int cluster_fixture_teardown(void **state)
{
    cluster_fixture_destroy(*state);
    *state = NULL;
    return 0;
}

void cluster_fixture_set_snapshot(struct cluster_fixture *f,
                                  unsigned threshold,
                                  unsigned trailing)
{
    for (unsigned i = 0; i < f->n; i++) {
        raft_set_snapshot_threshold(CLUSTER_RAFT(f, i), threshold);
        raft_set_snapshot_trailing(CLUSTER_RAFT(f, i), trailing);
    }
}

/* ---- Submitting -----------------------------------------------------------
 */

static void req_copy_results(struct cluster_req *req,
                             const struct cluster_apply_result *res);

static void req_applied_cb(struct raft_apply *apply, int status, void *result)
{
    struct cluster_req *req = apply->data;
    const struct cluster_apply_result *res = result;

    req->n_callbacks++;
    if (cluster_fixture_plant_ack && req->n_jobs > 0) {
        return; /* Answered at append already (the planted bug). */
    }
    req->done = true;
    req->status = status;
    if (req->n_callbacks == 1 && status == 0 && res != NULL) {
        req_copy_results(req, res);
    }
    if (req->on_done != NULL && req->n_callbacks == 1) {
        void (*cb)(struct cluster_req *, int, const void *) = req->on_done;
        req->on_done = NULL;
        cb(req, status, status == 0 ? res : NULL);
    }
}

static void req_copy_results(struct cluster_req *req,
                             const struct cluster_apply_result *res)
{
    req->n_results = res->n;
    for (unsigned c = 0; c < res->n && c < req->n_cmds; c++) {
        const struct fsm_result *r = &res->results[c];
        struct cluster_cmd_result *out = &req->results[c];

        out->code = r->code;
        out->n_ids = r->n_ids;
        if (r->n_ids > 0 && r->ids != NULL) {
            out->ids = malloc(r->n_ids * sizeof *out->ids);
            assert_non_null(out->ids);
            memcpy(out->ids, r->ids, r->n_ids * sizeof *out->ids);
        }
        if (r->n_ids > 0 && r->existed != NULL) {
            out->existed = malloc(r->n_ids);
            assert_non_null(out->existed);
            memcpy(out->existed, r->existed, r->n_ids);
        }
    }
}

static struct cluster_req *req_new(struct cluster_fixture *f,
                                   unsigned i,
                                   unsigned n_cmds,
                                   unsigned n_jobs)
{
    struct cluster_req *req = calloc(1, sizeof *req);

    assert_non_null(req);
    req->f = f;
    req->server = i;
    req->n_cmds = n_cmds;
    req->n_jobs = n_jobs;
    req->results = calloc(n_cmds + 1, sizeof *req->results);
    req->first_job = calloc(n_cmds + 1, sizeof *req->first_job);
    req->jobs_in_cmd = calloc(n_cmds + 1, sizeof *req->jobs_in_cmd);
    req->specs = calloc(n_jobs + 1, sizeof *req->specs);
    req->idem_keys = calloc(n_jobs + 1, sizeof *req->idem_keys);
    assert_non_null(req->results);
    assert_non_null(req->first_job);
    assert_non_null(req->jobs_in_cmd);
    assert_non_null(req->specs);
    assert_non_null(req->idem_keys);
    req->next = f->reqs;
    f->reqs = req;
    f->n_reqs++;
    return req;
}

/* The planted bug: answer a job submission as soon as the leader appended
 * it, with the ids its apply would give (index << FSM_ID_SHIFT | seq). */
static void ack_early(struct cluster_req *req)
{
    req->done = true;
    req->status = 0;
    req->n_results = req->n_cmds;
    for (unsigned c = 0; c < req->n_cmds; c++) {
        struct cluster_cmd_result *out = &req->results[c];
        out->code = 0;
        out->n_ids = req->jobs_in_cmd[c];
        out->ids = calloc(out->n_ids + 1, sizeof *out->ids);
        assert_non_null(out->ids);
        for (unsigned k = 0; k < out->n_ids; k++) {
            out->ids[k] =
                (req->index << FSM_ID_SHIFT) | (req->first_job[c] + k);
        }
    }
}

/* Copy @batch into a raft buffer and propose it on server @i. */
static void req_propose(struct cluster_fixture *f,
                        struct cluster_req *req,
                        const void *batch,
                        size_t len)
{
    struct raft *r = CLUSTER_RAFT(f, req->server);
    struct raft_buffer buf;

    req->buf_len = len;
    if (len % 8 != 0) {
        f->unaligned_submits++;
    }
    buf.len = len;
    buf.base = raft_malloc(len);
    assert_non_null(buf.base);
    memcpy(buf.base, batch, len);
    req->apply.data = req;
    req->rv = raft_apply(r, &req->apply, &buf, 1, req_applied_cb);
    if (req->rv != 0) {
        raft_free(buf.base); /* raft owns it only when the call returns 0. */
        return;
    }
    req->index = req->apply.index;
    if (cluster_fixture_plant_ack && req->n_jobs > 0) {
        ack_early(req);
    }
}

struct cluster_req *cluster_fixture_apply(struct cluster_fixture *f,
                                          unsigned i,
                                          const void *batch,
                                          size_t len)
{
    struct cluster_req *req = req_new(f, i, 0, 0);
    req_propose(f, req, batch, len);
    return req;
}

struct cluster_req *cluster_fixture_apply_cmds(struct cluster_fixture *f,
                                               unsigned i,
                                               const void *batch,
                                               size_t len,
                                               unsigned n_cmds)
{
    struct cluster_req *req = req_new(f, i, n_cmds, 0);
    req_propose(f, req, batch, len);
    return req;
}

struct cluster_req *cluster_fixture_submit_schedule(struct cluster_fixture *f,
                                                    unsigned i,
                                                    int64_t first,
                                                    const char *idem_key)
{
    return cluster_fixture_submit_schedule_spec(f, i, first, idem_key, NULL);
}

struct cluster_req *cluster_fixture_submit_schedule_spec(
    struct cluster_fixture *f,
    unsigned i,
    int64_t first,
    const char *idem_key,
    const char *spec)
{
    struct fsm_job j;
    struct fsm_cmd c;
    memset(&j, 0, sizeof j);
    j.type.p = "report";
    j.type.len = 6;
    j.queue.p = "default";
    j.queue.len = 7;
    j.spec.p = spec != NULL ? spec : "{\"schedule\":\"* * * * *\"}";
    j.spec.len = (uint32_t)strlen(j.spec.p);
    if (idem_key != NULL) {
        j.idem_key.p = idem_key;
        j.idem_key.len = (uint32_t)strlen(idem_key);
    }
    j.max_attempts = 3;
    j.flags = FSM_JOB_RECURRING;
    j.run_at = first;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_SUBMIT;
    c.jobs = &j;
    c.n_jobs = 1;
    return cluster_fixture_submit_cmds(f, i, &c, 1);
}

struct cluster_req *cluster_fixture_submit_cmds(struct cluster_fixture *f,
                                                unsigned i,
                                                const struct fsm_cmd *cmds,
                                                unsigned n_cmds)
{
    struct cluster_req *req = req_new(f, i, n_cmds, 0);
    struct fsm_batch batch;

    fsm_batch_init(&batch);
    for (unsigned c = 0; c < n_cmds; c++) {
        void *enc = NULL;
        size_t enc_len = 0;

        assert_int_equal(fsm_cmd_encode(&cmds[c], &enc, &enc_len), 0);
        f->cmd_len_residues |= 1u << (enc_len % 8);
        f->n_commands++;
        assert_int_equal(fsm_batch_append(&batch, enc, enc_len), 0);
        free(enc);
    }
    fsm_batch_seal(&batch, CLUSTER_EPOCH_MS + (int64_t)CLUSTER_TIME(f));
    req_propose(f, req, batch.buf, batch.len);
    fsm_batch_close(&batch);
    return req;
}

struct cluster_req *cluster_fixture_submit_encoded(
    struct cluster_fixture *f,
    unsigned i,
    const void *const *cmds,
    const size_t *lens,
    unsigned n,
    void (*on_done)(struct cluster_req *req, int status, const void *result),
    void *on_done_data)
{
    struct cluster_req *req = req_new(f, i, n, 0);
    struct fsm_batch batch;

    req->on_done = on_done;
    req->on_done_data = on_done_data;
    fsm_batch_init(&batch);
    for (unsigned c = 0; c < n; c++) {
        f->cmd_len_residues |= 1u << (lens[c] % 8);
        f->n_commands++;
        assert_int_equal(fsm_batch_append(&batch, cmds[c], lens[c]), 0);
    }
    fsm_batch_seal(&batch, CLUSTER_EPOCH_MS + (int64_t)CLUSTER_TIME(f));
    req_propose(f, req, batch.buf, batch.len);
    fsm_batch_close(&batch);
    if (req->rv != 0) {
        req->on_done = NULL;
    }
    return req;
}

static void job_fill(struct fsm_job *job, const struct cluster_job_in *in)
{
    const char *type = in->type != NULL ? in->type : "noop";
    const char *spec = in->spec != NULL ? in->spec : "{}";

    memset(job, 0, sizeof *job);
    job->priority = 0;
    job->max_attempts = 3;
    job->type.p = type;
    job->type.len = (uint32_t)strlen(type);
    job->queue.p = "default";
    job->queue.len = 7;
    job->user_id.p = "tester";
    job->user_id.len = 6;
    job->spec.p = spec;
    job->spec.len = (uint32_t)strlen(spec);
    if (in->idem_key != NULL) {
        job->idem_key.p = in->idem_key;
        job->idem_key.len = (uint32_t)strlen(in->idem_key);
    }
}

/* Encode command @c (jobs [first, first + n) of @jobs) into @batch. */
static void append_submit(struct cluster_fixture *f,
                          struct fsm_batch *batch,
                          const struct cluster_job_in *jobs,
                          unsigned first,
                          unsigned n)
{
    struct fsm_job *fjobs = calloc(n + 1, sizeof *fjobs);
    uint64_t *hashes = calloc(n + 1, sizeof *hashes);
    struct fsm_cmd cmd;
    void *enc = NULL;
    size_t enc_len = 0;
    int rv;

    assert_non_null(fjobs);
    assert_non_null(hashes);
    for (unsigned k = 0; k < n; k++) {
        job_fill(&fjobs[k], &jobs[first + k]);
        hashes[k] = jobs[first + k].hash;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_CMD_SUBMIT;
    cmd.n_jobs = n;
    cmd.jobs = fjobs;
    cmd.hashes = hashes;
    rv = fsm_cmd_encode(&cmd, &enc, &enc_len);
    assert_int_equal(rv, 0);
    f->cmd_len_residues |= 1u << (enc_len % 8);
    f->n_commands++;
    rv = fsm_batch_append(batch, enc, enc_len);
    assert_int_equal(rv, 0);
    free(enc);
    free(hashes);
    free(fjobs);
}

struct cluster_req *cluster_fixture_submit(struct cluster_fixture *f,
                                           unsigned i,
                                           const struct cluster_job_in *jobs,
                                           const unsigned *per_cmd,
                                           unsigned n_cmds)
{
    struct cluster_req *req;
    struct fsm_batch batch;
    unsigned n_jobs = 0;

    for (unsigned c = 0; c < n_cmds; c++) {
        n_jobs += per_cmd != NULL ? per_cmd[c] : 1;
    }
    req = req_new(f, i, n_cmds, n_jobs);
    fsm_batch_init(&batch);
    n_jobs = 0;
    for (unsigned c = 0; c < n_cmds; c++) {
        unsigned n = per_cmd != NULL ? per_cmd[c] : 1;

        req->first_job[c] = n_jobs;
        req->jobs_in_cmd[c] = n;
        for (unsigned k = 0; k < n; k++) {
            const struct cluster_job_in *in = &jobs[n_jobs + k];
            req->specs[n_jobs + k] = strdup(in->spec != NULL ? in->spec : "{}");
            assert_non_null(req->specs[n_jobs + k]);
            if (in->idem_key != NULL) {
                req->idem_keys[n_jobs + k] = strdup(in->idem_key);
                assert_non_null(req->idem_keys[n_jobs + k]);
            }
        }
        append_submit(f, &batch, jobs, n_jobs, n);
        n_jobs += n;
    }
    fsm_batch_seal(&batch, CLUSTER_EPOCH_MS + (int64_t)CLUSTER_TIME(f));
    req_propose(f, req, batch.buf, batch.len);
    fsm_batch_close(&batch);
    return req;
}

/* ---- Stepping -------------------------------------------------------------
 */

static const char *state_name(int state)
{
    switch (state) {
        case RAFT_FOLLOWER:
            return "follower";
        case RAFT_CANDIDATE:
            return "candidate";
        case RAFT_LEADER:
            return "leader";
        default:
            return "unavailable";
    }
}

struct step_arg
{
    struct cluster_fixture *f;
    unsigned i;
    raft_index index;
    int state;
};

static bool all_alive_applied(struct raft_fixture *rf, void *data)
{
    struct step_arg *a = data;
    cluster_fixture_flush(a->f);
    for (unsigned i = 0; i < a->f->n; i++) {
        if (raft_fixture_alive(rf, i) &&
            raft_last_applied(raft_fixture_get(rf, i)) < a->index) {
            return false;
        }
    }
    return true;
}

bool cluster_fixture_step_until_applied(struct cluster_fixture *f,
                                        raft_index index,
                                        unsigned max_ms)
{
    struct step_arg a = {f, 0, index, 0};
    bool ok = raft_fixture_step_until(&f->raft, all_alive_applied, &a, max_ms);
    if (!ok) {
        for (unsigned i = 0; i < f->n; i++) {
            fprintf(stderr, "server %u: alive=%d state=%s applied=%llu\n", i,
                    CLUSTER_ALIVE(f, i), state_name(CLUSTER_STATE(f, i)),
                    (unsigned long long)CLUSTER_LAST_APPLIED(f, i));
        }
    }
    return ok;
}

static bool one_applied(struct raft_fixture *rf, void *data)
{
    struct step_arg *a = data;
    cluster_fixture_flush(a->f);
    return raft_last_applied(raft_fixture_get(rf, a->i)) >= a->index;
}

bool cluster_fixture_step_until_applied_on(struct cluster_fixture *f,
                                           unsigned i,
                                           raft_index index,
                                           unsigned max_ms)
{
    struct step_arg a = {f, i, index, 0};
    return raft_fixture_step_until(&f->raft, one_applied, &a, max_ms);
}

static bool one_stored(struct raft_fixture *rf, void *data)
{
    struct step_arg *a = data;
    return raft_last_index(raft_fixture_get(rf, a->i)) >= a->index;
}

bool cluster_fixture_step_until_stored(struct cluster_fixture *f,
                                       unsigned i,
                                       raft_index index,
                                       unsigned max_ms)
{
    struct step_arg a = {f, i, index, 0};
    return raft_fixture_step_until(&f->raft, one_stored, &a, max_ms);
}

static bool one_state(struct raft_fixture *rf, void *data)
{
    struct step_arg *a = data;
    return raft_state(raft_fixture_get(rf, a->i)) == a->state;
}

bool cluster_fixture_step_until_state(struct cluster_fixture *f,
                                      unsigned i,
                                      int state,
                                      unsigned max_ms)
{
    struct step_arg a = {f, i, 0, state};
    return raft_fixture_step_until(&f->raft, one_state, &a, max_ms);
}

static bool not_leader(struct raft_fixture *rf, void *data)
{
    struct step_arg *a = data;
    return raft_state(raft_fixture_get(rf, a->i)) != RAFT_LEADER;
}

bool cluster_fixture_step_until_stepped_down(struct cluster_fixture *f,
                                             unsigned i,
                                             unsigned max_ms)
{
    struct step_arg a = {f, i, 0, 0};
    return raft_fixture_step_until(&f->raft, not_leader, &a, max_ms);
}

static bool new_leader(struct raft_fixture *rf, void *data)
{
    struct step_arg *a = data;
    unsigned l = raft_fixture_leader_index(rf);
    return l < a->f->n && l != a->i;
}

bool cluster_fixture_step_until_new_leader(struct cluster_fixture *f,
                                           unsigned not,
                                           unsigned max_ms)
{
    struct step_arg a = {f, not, 0, 0};
    return raft_fixture_step_until(&f->raft, new_leader, &a, max_ms);
}

/* ---- Faults ---------------------------------------------------------------
 */

void cluster_fixture_isolate(struct cluster_fixture *f, unsigned i)
{
    for (unsigned j = 0; j < f->n; j++) {
        if (j == i) {
            continue;
        }
        /* Saturate first: the fixture asserts the link is connected. */
        raft_fixture_saturate(&f->raft, i, j);
        raft_fixture_saturate(&f->raft, j, i);
        raft_fixture_disconnect(&f->raft, i, j);
        raft_fixture_disconnect(&f->raft, j, i);
    }
}

void cluster_fixture_rejoin(struct cluster_fixture *f, unsigned i)
{
    for (unsigned j = 0; j < f->n; j++) {
        if (j == i) {
            continue;
        }
        raft_fixture_reconnect(&f->raft, i, j);
        raft_fixture_reconnect(&f->raft, j, i);
        /* A dead peer stays saturated until it is revived. */
        if (CLUSTER_ALIVE(f, i) && CLUSTER_ALIVE(f, j)) {
            raft_fixture_desaturate(&f->raft, i, j);
            raft_fixture_desaturate(&f->raft, j, i);
        }
    }
}

/* ---- Reading replicas -----------------------------------------------------
 */

uint64_t cluster_fixture_digest(struct cluster_fixture *f, unsigned i)
{
    uint64_t d = 0;
    int rv = fsm_digest(CLUSTER_FSM(f, i), &d);
    if (rv != 0) {
        fail_msg("fsm_digest on server %u: %d %s", i, rv,
                 fsm_errmsg(CLUSTER_FSM(f, i)));
    }
    return d;
}

int cluster_fixture_get_job(struct cluster_fixture *f,
                            unsigned i,
                            uint64_t id,
                            struct fsm_job *out)
{
    struct fsm_reader *rd;
    int rv = fsm_read_begin(CLUSTER_FSM(f, i), &rd);
    assert_int_equal(rv, 0);
    rv = fsm_get_job(rd, id, out);
    fsm_read_end(rd);
    if (rv != 0 && rv != ERR_NOTFOUND) {
        fail_msg("fsm_get_job(%llu) on server %u: %d", (unsigned long long)id,
                 i, rv);
    }
    if (rv != 0) {
        memset(out, 0, sizeof *out);
    }
    return rv;
}

struct runs_ctx
{
    struct cluster_runs *r;
    uint64_t sched;
};

static int runs_cb(void *data, const struct fsm_run *run)
{
    struct cluster_runs *r = ((struct runs_ctx *)data)->r;
    for (unsigned k = 0; k < r->n && k < CLUSTER_MAX_RUNS; k++) {
        r->dup |= r->nominal[k] == run->nominal;
    }
    if (r->n < CLUSTER_MAX_RUNS) {
        r->nominal[r->n] = run->nominal;
    }
    r->n++;
    r->with_job += run->job_id != 0;
    return 0;
}

static int children_cb(void *data, const struct fsm_job *job)
{
    struct runs_ctx *c = data;
    c->r->children += (job->flags & FSM_JOB_RUN) && job->parent == c->sched;
    return 0;
}

int cluster_fixture_runs(struct cluster_fixture *f,
                         unsigned i,
                         uint64_t sched,
                         struct cluster_runs *out)
{
    struct runs_ctx c = {out, sched};
    struct fsm_reader *rd;
    struct fsm_query q;
    char cursor[FSM_CURSOR_SIZE], next[FSM_CURSOR_SIZE];
    int rv;

    memset(out, 0, sizeof *out);
    if ((rv = fsm_read_begin(CLUSTER_FSM(f, i), &rd)) != 0) {
        return rv;
    }
    rv = fsm_runs(rd, sched, 0, runs_cb, &c);
    memset(&q, 0, sizeof q);
    q.limit = 1000;
    do { /* Every job: the runs the schedule created. */
        next[0] = '\0';
        if (rv == 0) {
            rv = fsm_list(rd, &q, children_cb, &c, next);
        }
        memcpy(cursor, next, sizeof cursor);
        q.cursor = cursor;
    } while (rv == 0 && cursor[0] != '\0');
    fsm_read_end(rd);
    return rv;
}

struct cluster_req *cluster_fixture_wait(struct cluster_fixture *f,
                                         struct cluster_req *req,
                                         unsigned max_ms)
{
    assert_non_null(req);
    assert_int_equal(req->rv, 0);
    assert_true(cluster_fixture_step_until_applied(f, req->index, max_ms));
    assert_true(req->done);
    assert_int_equal(req->status, 0);
    assert_int_equal(req->results[0].code, 0);
    return req;
}

bool cluster_fixture_job_exists(struct cluster_fixture *f,
                                unsigned i,
                                uint64_t id)
{
    struct fsm_reader *rd;
    struct fsm_job job;
    int rv;

    rv = fsm_read_begin(CLUSTER_FSM(f, i), &rd);
    assert_int_equal(rv, 0);
    rv = fsm_get_job(rd, id, &job);
    fsm_read_end(rd);
    if (rv != 0 && rv != ERR_NOTFOUND) {
        fail_msg("fsm_get_job(%llu) on server %u: %d", (unsigned long long)id,
                 i, rv);
    }
    return rv == 0;
}

long cluster_fixture_count_jobs(struct cluster_fixture *f, unsigned i)
{
    struct fsm_reader *rd;
    uint64_t counts[8] = {0};
    long total = 0;
    int rv;

    rv = fsm_read_begin(CLUSTER_FSM(f, i), &rd);
    if (rv != 0) {
        return -1;
    }
    rv = fsm_count_by_status(rd, counts);
    fsm_read_end(rd);
    if (rv != 0) {
        return -1;
    }
    for (int s = 1; s <= FSM_STATUS_MAX; s++) {
        total += (long)counts[s];
    }
    return total;
}

struct list_filter
{
    const char *spec_substr;
    const char *idem_key;
    long matched;
    long seen;
};

static int list_filter_cb(void *data, const struct fsm_job *job)
{
    struct list_filter *lf = data;

    lf->seen++;
    if (lf->spec_substr != NULL &&
        memmem(job->spec.p, job->spec.len, lf->spec_substr,
               strlen(lf->spec_substr)) == NULL) {
        return 0;
    }
    if (lf->idem_key != NULL &&
        (job->idem_key.len != strlen(lf->idem_key) ||
         memcmp(job->idem_key.p, lf->idem_key, job->idem_key.len) != 0)) {
        return 0;
    }
    lf->matched++;
    return 0;
}

long cluster_fixture_list_count(struct cluster_fixture *f,
                                unsigned i,
                                const char *spec_substr,
                                const char *idem_key)
{
    struct list_filter lf = {spec_substr, idem_key, 0, 0};
    char cursor[FSM_CURSOR_SIZE] = "";
    char next[FSM_CURSOR_SIZE];
    struct fsm_reader *rd;
    int rv;

    rv = fsm_read_begin(CLUSTER_FSM(f, i), &rd);
    if (rv != 0) {
        return -1;
    }
    for (unsigned page = 0; page < 100000; page++) {
        struct fsm_query q;

        memset(&q, 0, sizeof q);
        q.cursor = cursor[0] != '\0' ? cursor : NULL;
        q.limit = 1000;
        next[0] = '\0';
        rv = fsm_list(rd, &q, list_filter_cb, &lf, next);
        if (rv != 0) {
            fprintf(stderr, "fsm_list on server %u: %d\n", i, rv);
            fsm_read_end(rd);
            return -1;
        }
        if (next[0] == '\0') {
            break;
        }
        memcpy(cursor, next, sizeof cursor);
    }
    fsm_read_end(rd);
    return lf.matched;
}

static bool str_eq(struct fsm_str s, const char *c)
{
    size_t n = c != NULL ? strlen(c) : 0;
    return s.len == n && (n == 0 || memcmp(s.p, c, n) == 0);
}

/* Check the jobs of @req on server @i through reader @rd. */
static bool check_req_on(struct cluster_req *req,
                         unsigned i,
                         struct fsm_reader *rd,
                         long *acked)
{
    for (unsigned c = 0; c < req->n_cmds && c < req->n_results; c++) {
        const struct cluster_cmd_result *res = &req->results[c];

        if (res->code != 0) {
            continue; /* Rejected: nothing was acknowledged. */
        }
        if (res->n_ids != req->jobs_in_cmd[c] || res->ids == NULL) {
            fprintf(stderr, "entry %llu cmd %u: %u ids for %u jobs submitted\n",
                    (unsigned long long)req->index, c, res->n_ids,
                    req->jobs_in_cmd[c]);
            return false;
        }
        for (unsigned k = 0; k < res->n_ids; k++) {
            unsigned j = req->first_job[c] + k;
            struct fsm_job job;
            int rv = fsm_get_job(rd, res->ids[k], &job);

            if (rv != 0) {
                fprintf(stderr,
                        "acknowledged job %llu (entry %llu cmd %u) missing on "
                        "server %u: %d\n",
                        (unsigned long long)res->ids[k],
                        (unsigned long long)req->index, c, i, rv);
                return false;
            }
            if (!str_eq(job.spec, req->specs[j]) ||
                !str_eq(job.idem_key, req->idem_keys[j])) {
                fprintf(stderr,
                        "job %llu on server %u: spec \"%.*s\" key \"%.*s\", "
                        "submitted \"%s\" \"%s\"\n",
                        (unsigned long long)res->ids[k], i, (int)job.spec.len,
                        job.spec.p, (int)job.idem_key.len, job.idem_key.p,
                        req->specs[j],
                        req->idem_keys[j] ? req->idem_keys[j] : "");
                return false;
            }
            (*acked)++;
        }
    }
    return true;
}

long cluster_fixture_check_acked(struct cluster_fixture *f, unsigned mask)
{
    long acked = 0;

    for (unsigned i = 0; i < f->n; i++) {
        struct fsm_reader *rd;

        if (mask != 0 && (mask & (1u << i)) == 0) {
            continue;
        }
        if (fsm_read_begin(CLUSTER_FSM(f, i), &rd) != 0) {
            return -1;
        }
        acked = 0;
        for (struct cluster_req *req = f->reqs; req != NULL; req = req->next) {
            if (req->rv != 0 || !req->done || req->status != 0 ||
                req->n_jobs == 0) {
                continue; /* Not acknowledged, or not a job submission. */
            }
            if (req->n_results != req->n_cmds) {
                fprintf(stderr, "entry %llu: %u results for %u commands\n",
                        (unsigned long long)req->index, req->n_results,
                        req->n_cmds);
                fsm_read_end(rd);
                return -1;
            }
            if (!check_req_on(req, i, rd, &acked)) {
                fsm_read_end(rd);
                return -1;
            }
        }
        fsm_read_end(rd);
    }
    return acked;
}

bool cluster_fixture_check_callbacks(struct cluster_fixture *f, bool all_done)
{
    for (struct cluster_req *req = f->reqs; req != NULL; req = req->next) {
        unsigned want_max = req->rv == 0 ? 1 : 0;
        if (req->n_callbacks > want_max ||
            (all_done && req->rv == 0 && req->n_callbacks != 1)) {
            fprintf(stderr,
                    "request on server %u (rv=%d, entry %llu): callback fired "
                    "%u times\n",
                    req->server, req->rv, (unsigned long long)req->index,
                    req->n_callbacks);
            return false;
        }
    }
    return true;
}

bool cluster_fixture_check_applied_index(struct cluster_fixture *f)
{
    for (unsigned i = 0; i < f->n; i++) {
        struct cluster_node *node = &f->nodes[i];
        flush_node(node);
        uint64_t applied = fsm_applied_index(node->fsm);
        raft_index last = raft_last_applied(node->raft);

        if (node->just_restored && node->restored_applied > last) {
            node->restore_mismatches++;
            node->just_restored = false;
        }
        if (node->index_mismatches != 0 || node->restore_mismatches != 0 ||
            applied > last) {
            fprintf(stderr,
                    "server %u: fsm applied %llu, raft applied %llu, %llu "
                    "apply and %llu restore index mismatches\n",
                    i, (unsigned long long)applied, (unsigned long long)last,
                    node->index_mismatches, node->restore_mismatches);
            return false;
        }
    }
    return true;
}

bool cluster_fixture_check_converged(struct cluster_fixture *f, unsigned mask)
{
    bool ok = true;
    bool first = true;
    uint64_t d0 = 0;
    raft_index a0 = 0;

    for (unsigned i = 0; i < f->n; i++) {
        uint64_t d;
        raft_index a;

        if (mask != 0 && (mask & (1u << i)) == 0) {
            continue;
        }
        d = cluster_fixture_digest(f, i);
        a = CLUSTER_LAST_APPLIED(f, i);
        if (first) {
            d0 = d;
            a0 = a;
            first = false;
        } else if (d != d0 || a != a0) {
            ok = false;
        }
    }
    if (!cluster_fixture_check_applied_index(f)) {
        return false;
    }
    if (!ok) {
        for (unsigned i = 0; i < f->n; i++) {
            fprintf(stderr,
                    "server %u: digest=%016llx raft applied=%llu fsm "
                    "applied=%llu jobs=%ld\n",
                    i, (unsigned long long)cluster_fixture_digest(f, i),
                    (unsigned long long)CLUSTER_LAST_APPLIED(f, i),
                    (unsigned long long)fsm_applied_index(CLUSTER_FSM(f, i)),
                    cluster_fixture_count_jobs(f, i));
        }
    }
    return ok;
}

void cluster_fixture_stats(struct cluster_fixture *f,
                           unsigned i,
                           struct cluster_raft_fsm_stats *out)
{
    cluster_raft_fsm_stats(&f->nodes[i].rf, out);
}

void cluster_fixture_flush(struct cluster_fixture *f)
{
    for (unsigned i = 0; i < f->n; i++) {
        flush_node(&f->nodes[i]);
    }
}

struct fsm *cluster_fixture_fsm(struct cluster_fixture *f, unsigned i)
{
    flush_node(&f->nodes[i]); /* Nothing held: nothing done. */
    return f->nodes[i].fsm;
}
