/* GET /v1/snapshot: a consistent copy of the whole replicated state while
 * the node serves (docs/operations.md, "Backup, restore and disaster
 * recovery"), in the backup file format of cluster/snapfile.h.
 *
 * On the loop thread only fsm_snapshot_begin() runs (an LMDB read
 * transaction: a consistent view at the applied index while applies go
 * on). Serialising the state, ending the transaction (MDB_NOTLS) and the
 * SHA-256 run in the libuv thread pool, like raft's own snapshots, and so
 * does the free() of the buffers (munmap of 100 MB took 66 ms here). The
 * answer goes out in slices of SNAP_CHUNK bytes, the next one when h2o
 * wrote the last (the generator's proceed): h2o writes each at once, a
 * few ms on the loop for 256 KiB (a 1 MiB write took 5-18 ms here).
 *
 * Memory: the serialised state, LZ4-compressed block by block (format v2
 * of fsm/snapshot.c: a few chunks of up to 64 MiB, never one buffer the
 * size of the raw state), is held once, from the thread pool until the
 * last slice is written; one snapshot at a time per node (a second request
 * gets 503 + Retry-After until the first one's last slice is handed to
 * h2o). */

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "http"
#include "cluster/snapfile.h"
#include "common/err.h"
#include "common/log.h"
#include "http/internal.h"

#define SNAP_CHUNK (256u << 10)

struct snap_job
{
    h2o_generator_t gen; /* h2o hands it back to proceed/stop. */
    uv_work_t work;
    int refs;    /* The work until its after-callback, the request's pool. */
    bool active; /* Counted in snap_active. */
    uv_loop_t *loop;
    h2o_req_t *req; /* NULL once the request went away. */
    struct fsm_snapshot *snap;
    struct fsm_snapshot_chunks body; /* Concatenated: the file's body. */
    size_t len;                      /* Of the whole body. */
    unsigned cur;                    /* The chunk being sent, */
    size_t off;                      /* from this offset in it. */
    int err;
    uint64_t term, node_id, work_ms, begin_us;
    struct snapfile_header h;
    unsigned char head[SNAPFILE_HEADER_LEN];
};

/* Snapshots being produced or sent (at most one) and thread-pool works not
 * finished (they read the fsm or free a buffer: rotad runs the loop until
 * they are done before it closes the fsm and the loop). */
static unsigned snap_active;
static unsigned snap_running;

bool http_snapshot_running(void)
{
    return snap_running > 0;
}

static void job_inactive(struct snap_job *j)
{
    if (j->active) {
        j->active = false;
        snap_active--;
    }
}

static void free_work_cb(uv_work_t *w)
{
    struct snap_job *j = w->data;
    fsm_snapshot_chunks_free(&j->body);
}

static void free_after_cb(uv_work_t *w, int status)
{
    (void)status;
    snap_running--;
    free(w->data);
}

static void job_unref(struct snap_job *j)
{
    if (--j->refs > 0) {
        return;
    }
    job_inactive(j);
    if (j->body.n > 0 &&
        uv_queue_work(j->loop, &j->work, free_work_cb, free_after_cb) == 0) {
        snap_running++;
        return;
    }
    fsm_snapshot_chunks_free(&j->body);
    free(j);
}

static void pool_dispose(void *p)
{
    struct snap_job *j = *(struct snap_job **)p;
    j->req = NULL;
    job_unref(j);
}

/* Thread pool: serialise, end the read transaction, hash. */
static void work_cb(uv_work_t *w)
{
    struct snap_job *j = w->data;
    unsigned int n = 0;
    uint64_t t0 = uv_hrtime();
    EVP_MD_CTX *md;
    int ok;

    j->err = fsm_snapshot_write(j->snap, &j->body);
    fsm_snapshot_end(j->snap);
    j->snap = NULL;
    if (j->err == 0) {
        md = EVP_MD_CTX_new();
        ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
        j->len = 0;
        for (unsigned i = 0; ok && i < j->body.n; i++) {
            ok = EVP_DigestUpdate(md, j->body.v[i].base, j->body.v[i].len) == 1;
            j->len += j->body.v[i].len;
        }
        ok = ok && EVP_DigestFinal_ex(md, j->h.sha256, &n) == 1 && n == 32;
        EVP_MD_CTX_free(md);
        if (!ok || j->body.v[0].len < 16) {
            j->err = ERR_STORAGE;
        }
    }
    if (j->err == 0) {
        j->h.index = fsm_snapshot_index(j->body.v[0].base, j->body.v[0].len);
        j->h.term = j->term;
        j->h.body_len = j->len;
        j->h.node_id = j->node_id;
        snapfile_encode(&j->h, j->head);
    }
    j->work_ms = (uv_hrtime() - t0) / 1000000;
}

/* Send the next slice (of one chunk): the header with the first one. */
static void send_next(struct snap_job *j)
{
    h2o_iovec_t bufs[2];
    struct fsm_snapshot_chunk *c = &j->body.v[j->cur];
    size_t nb = 0, n = c->len - j->off;

    if (j->cur == 0 && j->off == 0) {
        bufs[nb++] = h2o_iovec_init(j->head, sizeof j->head);
    }
    if (n > SNAP_CHUNK) {
        n = SNAP_CHUNK;
    }
    bufs[nb++] = h2o_iovec_init((char *)c->base + j->off, n);
    j->off += n;
    if (j->off == c->len) {
        j->cur++;
        j->off = 0;
    }
    if (j->cur == j->body.n) {
        job_inactive(j); /* The next snapshot may start. */
        h2o_send(j->req, bufs, nb, H2O_SEND_STATE_FINAL);
    } else {
        h2o_send(j->req, bufs, nb, H2O_SEND_STATE_IN_PROGRESS);
    }
}

static void gen_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    struct snap_job *j = (struct snap_job *)gen;
    (void)req;
    send_next(j);
}

static void gen_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    struct snap_job *j = (struct snap_job *)gen;
    (void)req;
    job_inactive(j); /* The client went away: the pool frees the rest. */
}

static void start_answer(struct snap_job *j)
{
    h2o_req_t *req = j->req;
    char sha[65], *idx = h2o_mem_alloc_pool(&req->pool, 24);
    int n = snprintf(idx, 24, "%llu", (unsigned long long)j->h.index);

    snapfile_hex(j->h.sha256, sha);
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = SNAPFILE_HEADER_LEN + j->len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/octet-stream"));
    h2o_add_header_by_str(&req->pool, &req->res.headers,
                          H2O_STRLIT("x-rota-index"), 0, NULL, idx, (size_t)n);
    h2o_add_header_by_str(&req->pool, &req->res.headers,
                          H2O_STRLIT("x-rota-snapshot-sha256"), 0, NULL,
                          h2o_strdup(&req->pool, sha, 64).base, 64);
    j->gen.proceed = gen_proceed;
    j->gen.stop = gen_stop;
    h2o_start_response(req, &j->gen);
    send_next(j);
}

static void after_cb(uv_work_t *w, int status)
{
    struct snap_job *j = w->data;

    snap_running--;
    if (status != 0 && j->err == 0) {
        j->err = ERR_CANCELED;
    }
    if (j->err == 0) {
        LOG(LOG_INFO, "backup snapshot made",
            "index=%llu bytes=%llu serialise_ms=%llu loop_us=%llu "
            "client=%s",
            (unsigned long long)j->h.index, (unsigned long long)j->len,
            (unsigned long long)j->work_ms, (unsigned long long)j->begin_us,
            j->req != NULL ? "waiting" : "gone");
    }
    if (j->req == NULL) {
        job_inactive(j);
    } else if (j->err != 0) {
        job_inactive(j);
        http__send_err(j->req, j->err, NULL, "the snapshot could not be made");
    } else {
        start_answer(j);
    }
    job_unref(j);
}

void http__snapshot(struct http_server *s,
                    h2o_req_t *req,
                    const struct http_args *a)
{
    struct snap_job *j, **holder;
    uint64_t t0 = uv_hrtime();
    int rv;
    (void)a;

    if (snap_active > 0) {
        http__send_err(req, ERR_UNAVAILABLE, NULL,
                       "a snapshot is already being made on this node: retry "
                       "later");
        return;
    }
    j = calloc(1, sizeof *j);
    if (j == NULL) {
        http__send_err(req, ERR_NOMEM, NULL, NULL);
        return;
    }
    rv = fsm_snapshot_begin(cluster_fsm(s->cluster), &j->snap);
    if (rv != 0) {
        free(j);
        http__send_err(req, rv, NULL, "the snapshot could not be started");
        return;
    }
    j->loop = s->loop;
    j->req = req;
    j->term = cluster_term(s->cluster);
    j->node_id = cluster_id(s->cluster);
    j->work.data = j;
    j->refs = 2;
    j->active = true;
    snap_active++;
    holder = h2o_mem_alloc_shared(&req->pool, sizeof *holder, pool_dispose);
    *holder = j;
    rv = uv_queue_work(s->loop, &j->work, work_cb, after_cb);
    if (rv != 0) {
        fsm_snapshot_end(j->snap);
        j->snap = NULL;
        job_inactive(j);
        j->refs--; /* No work: the pool's reference is left. */
        http__send_err(req, ERR_NOMEM, NULL, "the thread pool refused");
        return;
    }
    snap_running++;
    j->begin_us = (uv_hrtime() - t0) / 1000;
    LOG(LOG_INFO, "backup snapshot started", "applied=%llu term=%llu",
        (unsigned long long)cluster_applied_index(s->cluster),
        (unsigned long long)j->term);
}
