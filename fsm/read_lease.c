/* Reads for the leader's services: workers, running jobs, due timers and
 * the ready (dispatch) index. */

#include <string.h>

#include "fsm/internal.h"

int fsm_get_worker(struct fsm_reader *rd, uint64_t id, struct fsm_worker *w)
{
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    int rv;
    fsm__put_be64(kb, id);
    rv = mdb_get(rd->txn, rd->f->dbi[DB_WORKERS], &k, &v);
    if (rv == MDB_NOTFOUND) {
        return ERR_NOTFOUND;
    }
    if (rv != 0) {
        return fsm__lmdb_error(rd->f, rv, "get worker");
    }
    return fsm_worker_decode(v.mv_data, v.mv_size, w) == 0 ? 0 : ERR_CORRUPT;
}

int fsm_workers(struct fsm_reader *rd, fsm_worker_cb cb, void *data)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rv = mdb_cursor_open(rd->txn, rd->f->dbi[DB_WORKERS], &cur);
    if (rv != 0) {
        return fsm__lmdb_error(rd->f, rv, "workers cursor");
    }
    for (rv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rv == 0;
         rv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct fsm_worker w;
        if (fsm_worker_decode(v.mv_data, v.mv_size, &w) == 0) {
            cb(data, &w);
        }
    }
    mdb_cursor_close(cur);
    return 0;
}

/* Walk @db from @prefix (of @plen bytes) while keys start with it; the job
 * id is the last 8 bytes of each key. */
static int walk_prefix(struct fsm_reader *rd,
                       int db,
                       const void *prefix,
                       size_t plen,
                       fsm_list_cb cb,
                       void *data)
{
    MDB_cursor *cur;
    MDB_val k = {plen, (void *)prefix}, v;
    int rv = mdb_cursor_open(rd->txn, rd->f->dbi[db], &cur);
    if (rv != 0) {
        return fsm__lmdb_error(rd->f, rv, "cursor");
    }
    rv = plen > 0 ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                  : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (; rv == 0; rv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct fsm_job job;
        if (k.mv_size < plen + 8 ||
            (plen > 0 && memcmp(k.mv_data, prefix, plen) != 0)) {
            break;
        }
        uint64_t id =
            fsm__get_be64((const unsigned char *)k.mv_data + k.mv_size - 8);
        if (fsm__get_job(rd->f, rd->txn, id, &job) == 0 &&
            cb(data, &job) != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    return 0;
}

int fsm_running(struct fsm_reader *rd, fsm_list_cb cb, void *data)
{
    unsigned char prefix[1] = {FSM_RUNNING};
    return walk_prefix(rd, DB_BY_STATUS, prefix, 1, cb, data);
}

int fsm_ready(struct fsm_reader *rd,
              struct fsm_str queue,
              fsm_list_cb cb,
              void *data)
{
    unsigned char prefix[FSM_MAX_STR + 1];
    if (queue.len == 0 || queue.len > FSM_MAX_STR) {
        return ERR_INVALID;
    }
    memcpy(prefix, queue.p, queue.len);
    prefix[queue.len] = 0;
    return walk_prefix(rd, DB_READY, prefix, queue.len + 1, cb, data);
}

struct due
{
    int64_t now;
    unsigned left;
    fsm_list_cb cb;
    void *data;
};

static int due_cb(void *data, const struct fsm_job *job)
{
    struct due *d = data;
    if (job->run_at > d->now || d->left == 0) {
        return 1;
    }
    d->left--;
    return d->cb(d->data, job);
}

int fsm_due(struct fsm_reader *rd,
            int64_t now,
            unsigned max,
            fsm_list_cb cb,
            void *data)
{
    struct due d = {now, max, cb, data};
    return walk_prefix(rd, DB_TIMERS, NULL, 0, due_cb, &d);
}

int fsm_ready_heads(struct fsm_reader *rd,
                    struct fsm_str queue,
                    unsigned max_levels,
                    fsm_list_cb cb,
                    void *data)
{
    unsigned char kb[FSM_MAX_STR + 21];
    size_t plen = queue.len + 1;
    MDB_cursor *cur;
    MDB_val k, v;
    int rv;

    if (queue.len == 0 || queue.len > FSM_MAX_STR) {
        return ERR_INVALID;
    }
    memcpy(kb, queue.p, queue.len);
    kb[queue.len] = 0;
    memset(kb + plen, 0, 20);
    rv = mdb_cursor_open(rd->txn, rd->f->dbi[DB_READY], &cur);
    if (rv != 0) {
        return fsm__lmdb_error(rd->f, rv, "cursor");
    }
    for (unsigned level = 0; level < max_levels; level++) {
        struct fsm_job job;
        k.mv_size = plen + 20;
        k.mv_data = kb;
        rv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rv != 0 || k.mv_size != plen + 20 ||
            memcmp(k.mv_data, kb, plen) != 0) {
            break;
        }
        /* The first key of a level is its oldest job (created, id). */
        const unsigned char *key = k.mv_data;
        uint64_t id = fsm__get_be64(key + plen + 12);
        uint32_t prio = ((uint32_t)key[plen] << 24) |
                        ((uint32_t)key[plen + 1] << 16) |
                        ((uint32_t)key[plen + 2] << 8) | key[plen + 3];
        if (fsm__get_job(rd->f, rd->txn, id, &job) == 0 &&
            cb(data, &job) != 0) {
            break;
        }
        if (prio == UINT32_MAX) {
            break;
        }
        /* Jump to the next level. */
        prio++;
        for (int i = 0; i < 4; i++) {
            kb[plen + i] = (unsigned char)(prio >> (24 - 8 * i));
        }
        memset(kb + plen + 4, 0, 16);
    }
    mdb_cursor_close(cur);
    return 0;
}
