/* Reads for scheduling: queues (settings and counts), runs of schedules,
 * workflows, and finished jobs past their retention. */

#include <stdlib.h>
#include <string.h>

#include "fsm/internal.h"

#define MAX_QUEUES 10000

void fsm__queue_counts(struct fsm *f,
                       MDB_txn *txn,
                       struct fsm_str name,
                       uint64_t counts[8])
{
    unsigned char kb[FSM_MAX_STR + 2];
    memset(counts, 0, 8 * sizeof counts[0]);
    memcpy(kb, name.p, name.len);
    kb[name.len] = 0;
    for (unsigned s = 1; s < 8; s++) {
        MDB_val k = {name.len + 2, kb}, v;
        kb[name.len + 1] = (unsigned char)s;
        /* Within apply, what the entry changed so far is held. */
        if (fsm__counts_queue(f, kb, k.mv_size, &counts[s])) {
            continue;
        }
        if (mdb_get(txn, f->dbi[DB_QCOUNTS], &k, &v) == 0 && v.mv_size == 8) {
            memcpy(&counts[s], v.mv_data, 8);
        }
    }
}

int fsm_get_queue(struct fsm_reader *rd,
                  struct fsm_str name,
                  struct fsm_queue *q,
                  uint64_t counts[8])
{
    MDB_val k = {name.len, (void *)name.p}, v;

    if (name.len == 0 || name.len > FSM_MAX_STR) {
        return ERR_INVALID;
    }
    memset(q, 0, sizeof *q);
    q->name = name;
    if (mdb_get(rd->txn, rd->f->dbi[DB_QUEUES], &k, &v) == 0) {
        fsm__queue_decode(&v, q);
    }
    if (counts != NULL) {
        fsm__queue_counts(rd->f, rd->txn, name, counts);
    }
    return 0;
}

/* Names of queues with settings or counters, merged in order. */
int fsm_queues(struct fsm_reader *rd, fsm_queue_cb cb, void *data)
{
    MDB_cursor *cs, *cc;
    MDB_val ks, vs, kc, vc;
    int rs, rc, n = 0;

    if (mdb_cursor_open(rd->txn, rd->f->dbi[DB_QUEUES], &cs) != 0) {
        return ERR_STORAGE;
    }
    if (mdb_cursor_open(rd->txn, rd->f->dbi[DB_QCOUNTS], &cc) != 0) {
        mdb_cursor_close(cs);
        return ERR_STORAGE;
    }
    rs = mdb_cursor_get(cs, &ks, &vs, MDB_FIRST);
    rc = mdb_cursor_get(cc, &kc, &vc, MDB_FIRST);
    while ((rs == 0 || rc == 0) && n++ < MAX_QUEUES) {
        struct fsm_str sname = {NULL, 0}, cname = {NULL, 0}, name;
        if (rs == 0) {
            sname.p = ks.mv_data;
            sname.len = (uint32_t)ks.mv_size;
        }
        if (rc == 0) {
            const char *z = memchr(kc.mv_data, 0, kc.mv_size);
            cname.p = kc.mv_data;
            cname.len = z != NULL ? (uint32_t)(z - cname.p) : 0;
        }
        int cmp;
        if (rs != 0) {
            cmp = 1;
        } else if (rc != 0) {
            cmp = -1;
        } else {
            size_t m = sname.len < cname.len ? sname.len : cname.len;
            cmp = memcmp(sname.p, cname.p, m);
            cmp = cmp != 0 ? cmp : (int)sname.len - (int)cname.len;
        }
        name = cmp <= 0 ? sname : cname;
        char copy[FSM_MAX_STR];
        struct fsm_str nm = {copy, name.len <= FSM_MAX_STR ? name.len : 0};
        if (nm.len > 0) {
            memcpy(copy, name.p, nm.len);
        }
        if (nm.len > 0) {
            struct fsm_queue q;
            uint64_t counts[8];
            fsm_get_queue(rd, nm, &q, counts);
            cb(data, &q, counts);
        }
        /* Step past every entry of this name in both cursors. */
        if (rs == 0 && cmp <= 0) {
            rs = mdb_cursor_get(cs, &ks, &vs, MDB_NEXT);
        }
        while (rc == 0 && kc.mv_size > nm.len &&
               memcmp(kc.mv_data, copy, nm.len) == 0 &&
               ((const char *)kc.mv_data)[nm.len] == 0) {
            rc = mdb_cursor_get(cc, &kc, &vc, MDB_NEXT);
        }
        if (nm.len == 0 && rc == 0 && cmp > 0) {
            rc = mdb_cursor_get(cc, &kc, &vc, MDB_NEXT);
        }
    }
    mdb_cursor_close(cs);
    mdb_cursor_close(cc);
    return 0;
}

int fsm_runs(struct fsm_reader *rd,
             uint64_t schedule,
             int64_t before,
             fsm_run_cb cb,
             void *data)
{
    unsigned char kb[16];
    MDB_val k = {16, kb}, v;
    MDB_cursor *cur;
    int rv;

    fsm__run_key(kb, schedule, before != 0 ? before : INT64_MAX);
    if (mdb_cursor_open(rd->txn, rd->f->dbi[DB_RUNS], &cur) != 0) {
        return ERR_STORAGE;
    }
    /* Newest first: the first key at or after the bound, then back. */
    rv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    rv = rv == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV)
                 : mdb_cursor_get(cur, &k, &v, MDB_LAST);
    for (; rv == 0; rv = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        const unsigned char *p = k.mv_data, *val = v.mv_data;
        struct fsm_run run;
        if (k.mv_size != 16 || fsm__get_be64(p) != schedule) {
            break;
        }
        if (v.mv_size < 20) {
            continue;
        }
        run.schedule = schedule;
        run.nominal = (int64_t)(fsm__get_be64(p + 8) ^ (1ULL << 63));
        memcpy(&run.job_id, val, 8);
        memcpy(&run.recorded_at, val + 8, 8);
        memcpy(&run.skipped, val + 16, 4);
        run.reason.p = (const char *)val + 20;
        run.reason.len = (uint32_t)(v.mv_size - 20);
        if (cb(data, &run) != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    return 0;
}

int fsm_get_workflow(struct fsm_reader *rd,
                     uint64_t id,
                     struct fsm_workflow *wf)
{
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    int rv;

    fsm__put_be64(kb, id);
    rv = mdb_get(rd->txn, rd->f->dbi[DB_WORKFLOWS], &k, &v);
    if (rv == MDB_NOTFOUND) {
        return ERR_NOTFOUND;
    }
    if (rv != 0 || v.mv_size < 20) {
        return rv != 0 ? ERR_STORAGE : ERR_CORRUPT;
    }
    wf->id = id;
    memcpy(&wf->first, v.mv_data, 8);
    memcpy(&wf->n, (const unsigned char *)v.mv_data + 8, 4);
    memcpy(&wf->created_at, (const unsigned char *)v.mv_data + 12, 8);
    wf->name.p = (const char *)v.mv_data + 20;
    wf->name.len = (uint32_t)(v.mv_size - 20);
    return 0;
}

int fsm_expired(struct fsm_reader *rd,
                uint8_t status,
                int64_t before,
                unsigned max,
                fsm_list_cb cb,
                void *data)
{
    unsigned char kb[9];
    MDB_val k = {1, kb}, v;
    MDB_cursor *cur;
    unsigned seen = 0, found = 0;
    int rv;

    kb[0] = status;
    if (mdb_cursor_open(rd->txn, rd->f->dbi[DB_BY_STATUS], &cur) != 0) {
        return ERR_STORAGE;
    }
    for (rv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rv == 0 && k.mv_size == 9 &&
         ((unsigned char *)k.mv_data)[0] == status && found < max &&
         seen < 8 * max;
         rv = mdb_cursor_get(cur, &k, &v, MDB_NEXT), seen++) {
        struct fsm_job job;
        uint64_t id = fsm__get_be64((const unsigned char *)k.mv_data + 1);
        if (fsm__get_job(rd->f, rd->txn, id, &job) != 0 ||
            job.finished_at >= before) {
            continue;
        }
        found++;
        if (cb(data, &job) != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    return 0;
}
