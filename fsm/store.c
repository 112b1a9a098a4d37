/* The LMDB environment: open/close, the job table and its indexes, reads.
 *
 * Index keys (all big endian so byte order is numeric order):
 *   by_status  status | id
 *   by_user    user_id 0x00 status | id      (likewise by_queue, by_type)
 *   ready      queue 0x00 | ~priority | created_at | id   (pending jobs)
 *   deps       parent | child                 (children still waiting)
 * Strings that go into keys never contain NUL (apply rejects them). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/vec.h"
#include "fsm/internal.h"

const char *const fsm__db_names[] = {
    "jobs",    "by_status", "by_user",  "by_queue",   "by_type",
    "ready",   "deps",      "idem",     "nodes",      "meta",
    "workers", "timers",    "runs",     "workflows",  "queues",
    "qcounts", "tokens",    "webhooks", "deliveries",
};

int fsm__lmdb_error(struct fsm *f, int rv, const char *what)
{
    snprintf(f->errmsg, sizeof f->errmsg, "%s: %s", what, mdb_strerror(rv));
    return rv == MDB_NOTFOUND ? ERR_NOTFOUND : ERR_STORAGE;
}

void fsm__put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

uint64_t fsm__get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

int fsm_open(const struct fsm_options *opts, struct fsm **out)
{
    struct fsm *f = calloc(1, sizeof *f);
    char path[1100];
    MDB_txn *txn;
    int rv;

    *out = NULL;
    if (f == NULL) {
        return ERR_NOMEM;
    }
    *out = f; /* So the caller can read errmsg on failure. */
    if (fs_mkdir_p(opts->dir) != 0) {
        snprintf(f->errmsg, sizeof f->errmsg, "mkdir %s: %s", opts->dir,
                 strerror(errno));
        return ERR_IO;
    }
    f->keep_why = "fresh";
    if (opts->keep && !opts->fresh) {
        f->keep_why = fsm__mark_check(opts->dir, &f->kept);
    }
    if (!f->kept && (opts->fresh || opts->keep)) {
        snprintf(path, sizeof path, "%s/data.mdb", opts->dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/lock.mdb", opts->dir);
        unlink(path);
    }
    if (opts->keep) {
        /* Before any write transaction (the one below is one). */
        rv = fsm__mark_boot(f, opts->dir);
        if (rv != 0) {
            return rv;
        }
    }
    rv = mdb_env_create(&f->env);
    if (rv != 0) {
        return fsm__lmdb_error(f, rv, "env create");
    }
    mdb_env_set_maxdbs(f->env, 32);
    mdb_env_set_mapsize(f->env,
                        opts->map_size != 0 ? opts->map_size : 4ULL << 30);
    /* No MDB_WRITEMAP: it cannot nest transactions, and apply needs a
     * child transaction per command once a command of an entry is refused
     * (fsm/apply.c, apply_commands); it would also grow the file to the
     * whole map size. NOSYNC: the raft log is durable, and
     * fsm/state_mark.c says when this file may be kept at the next start. */
    rv = mdb_env_open(f->env, opts->dir, MDB_NOTLS | MDB_NOSYNC, 0644);
    if (rv != 0) {
        return fsm__lmdb_error(f, rv, "env open");
    }
    rv = mdb_txn_begin(f->env, NULL, 0, &txn);
    if (rv != 0) {
        return fsm__lmdb_error(f, rv, "begin");
    }
    for (int i = 0; i < DB__COUNT; i++) {
        rv = mdb_dbi_open(txn, fsm__db_names[i], MDB_CREATE, &f->dbi[i]);
        if (rv != 0) {
            mdb_txn_abort(txn);
            return fsm__lmdb_error(f, rv, "open db");
        }
    }
    rv = mdb_txn_commit(txn);
    if (rv != 0) {
        return fsm__lmdb_error(f, rv, "commit");
    }
    /* fsm_close marks it clean: only an environment that opened. */
    if (opts->keep && (f->mark_dir = strdup(opts->dir)) == NULL) {
        return ERR_NOMEM;
    }
    return 0;
}

void fsm_close(struct fsm *f)
{
    if (f == NULL) {
        return;
    }
    if (f->env != NULL) {
        if (f->mark_dir != NULL) {
            fsm__mark_clean(f);
        }
        mdb_env_close(f->env);
    }
    free(f->mark_dir);
    free(f->results);
    free(f->ids);
    free(f->rchg);
    free(f->rchg_keys);
    free(f->ev);
    free(f->ev_strs);
    free(f->existed);
    free(f);
}

const char *fsm_errmsg(const struct fsm *f)
{
    return f->errmsg;
}

bool fsm_state_kept(const struct fsm *f, const char **why)
{
    *why = f->keep_why;
    return f->kept;
}

/* ---- meta --------------------------------------------------------------- */

uint64_t fsm__get_meta_u64(struct fsm *f, MDB_txn *txn, const char *key)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    uint64_t out = 0;
    if (mdb_get(txn, f->dbi[DB_META], &k, &v) == 0 && v.mv_size == 8) {
        memcpy(&out, v.mv_data, 8);
    }
    return out;
}

int fsm__put_meta_u64(struct fsm *f,
                      MDB_txn *txn,
                      const char *key,
                      uint64_t value)
{
    MDB_val k = {strlen(key), (void *)key}, v = {8, &value};
    int rv = mdb_put(txn, f->dbi[DB_META], &k, &v, 0);
    return rv == 0 ? 0 : fsm__lmdb_error(f, rv, "put meta");
}

unsigned fsm_space_used(struct fsm *f)
{
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(f->env, &info) != 0 || mdb_env_stat(f->env, &st) != 0 ||
        info.me_mapsize == 0) {
        return 0;
    }
    return (unsigned)(((uint64_t)info.me_last_pgno + 1) * st.ms_psize * 1000 /
                      info.me_mapsize);
}

uint64_t fsm_applied_index(struct fsm *f)
{
    MDB_txn *txn;
    uint64_t v = 0;
    if (mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn) == 0) {
        v = fsm__get_meta_u64(f, txn, FSM_META_APPLIED);
        mdb_txn_abort(txn);
    }
    return v;
}

/* ---- jobs and indexes --------------------------------------------------- */

int fsm__get_job(struct fsm *f, MDB_txn *txn, uint64_t id, struct fsm_job *job)
{
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    int rv;

    fsm__put_be64(kb, id);
    rv = mdb_get(txn, f->dbi[DB_JOBS], &k, &v);
    if (rv == MDB_NOTFOUND) {
        return ERR_NOTFOUND;
    }
    if (rv != 0) {
        return fsm__lmdb_error(f, rv, "get job");
    }
    if (fsm_job_decode(v.mv_data, v.mv_size, job) != 0) {
        snprintf(f->errmsg, sizeof f->errmsg, "job %016llx does not decode",
                 (unsigned long long)id);
        return ERR_CORRUPT;
    }
    return 0;
}

/* str 0x00 status id */
static size_t str_key(unsigned char *buf,
                      struct fsm_str s,
                      uint8_t status,
                      uint64_t id)
{
    memcpy(buf, s.p, s.len);
    buf[s.len] = 0;
    buf[s.len + 1] = status;
    fsm__put_be64(buf + s.len + 2, id);
    return s.len + 10;
}

static size_t ready_key(unsigned char *buf, const struct fsm_job *j)
{
    uint32_t prio = ~((uint32_t)j->priority ^ 0x80000000u);
    memcpy(buf, j->queue.p, j->queue.len);
    buf[j->queue.len] = 0;
    for (int i = 0; i < 4; i++) {
        buf[j->queue.len + 1 + i] = (unsigned char)(prio >> (24 - 8 * i));
    }
    fsm__put_be64(buf + j->queue.len + 5, (uint64_t)j->created_at);
    fsm__put_be64(buf + j->queue.len + 13, j->id);
    return j->queue.len + 21;
}

/* Every index key of one job version, computed into our own memory: LMDB
 * values (and so a decoded job's strings) are only valid until the next
 * write in the transaction, so no key may be built after a write. */
struct index_keys
{
    unsigned n;
    int db[6];
    size_t len[6];
    unsigned char key[6][FSM_MAX_STR + 32];
};

static void keys_of(const struct fsm_job *j, struct index_keys *k)
{
    const struct fsm_str *strs[3] = {&j->user_id, &j->queue, &j->type};
    static const int dbs[3] = {DB_BY_USER, DB_BY_QUEUE, DB_BY_TYPE};

    k->n = 0;
    k->key[0][0] = j->status;
    fsm__put_be64(k->key[0] + 1, j->id);
    k->db[0] = DB_BY_STATUS;
    k->len[0] = 9;
    k->n = 1;
    for (int i = 0; i < 3; i++) {
        if (strs[i]->len == 0 || strs[i]->len > FSM_MAX_STR) {
            continue;
        }
        k->db[k->n] = dbs[i];
        k->len[k->n] = str_key(k->key[k->n], *strs[i], j->status, j->id);
        k->n++;
    }
    if (j->status == FSM_SCHEDULED) {
        fsm__put_be64(k->key[k->n], (uint64_t)j->run_at);
        fsm__put_be64(k->key[k->n] + 8, j->id);
        k->db[k->n] = DB_TIMERS;
        k->len[k->n] = 16;
        k->n++;
    }
    if (j->status == FSM_PENDING && j->queue.len <= FSM_MAX_STR) {
        k->db[k->n] = DB_READY;
        k->len[k->n] = ready_key(k->key[k->n], j);
        k->n++;
    }
}

static int index_apply(struct fsm *f,
                       MDB_txn *txn,
                       const struct index_keys *k,
                       bool put)
{
    MDB_val empty = {0, NULL};
    for (unsigned i = 0; i < k->n; i++) {
        MDB_val key = {k->len[i], (void *)k->key[i]};
        int rv = put ? mdb_put(txn, f->dbi[k->db[i]], &key, &empty, 0)
                     : mdb_del(txn, f->dbi[k->db[i]], &key, NULL);
        if (rv != 0 && rv != MDB_NOTFOUND) {
            return fsm__lmdb_error(f, rv, "index");
        }
    }
    return 0;
}

static const char *const count_keys[8] = {"count/0", "count/1", "count/2",
                                          "count/3", "count/4", "count/5",
                                          "count/6", "count/7"};

static uint64_t moved_by(uint64_t v, int delta)
{
    return delta < 0 ? (v > 0 ? v - 1 : 0) : v + 1;
}

static int count_add(struct fsm *f, MDB_txn *txn, uint8_t status, int delta)
{
    struct fsm__counts *c = &f->counts;
    char key[16];

    if (status < 8 && c->on) {
        uint8_t bit = (uint8_t)(1u << status);
        if (!(c->held & bit)) {
            c->status[status] = fsm__get_meta_u64(f, txn, count_keys[status]);
            c->held |= bit;
        }
        c->status[status] = moved_by(c->status[status], delta);
        return 0;
    }
    snprintf(key, sizeof key, "count/%u", status);
    return fsm__put_meta_u64(f, txn, key,
                             moved_by(fsm__get_meta_u64(f, txn, key), delta));
}

static int qcount_get(struct fsm *f, MDB_txn *txn, MDB_val *k, uint64_t *n)
{
    MDB_val v;
    int rv = mdb_get(txn, f->dbi[DB_QCOUNTS], k, &v);

    *n = 0;
    if (rv == 0 && v.mv_size == 8) {
        memcpy(n, v.mv_data, 8);
    }
    return rv == 0 || rv == MDB_NOTFOUND
               ? 0
               : fsm__lmdb_error(f, rv, "queue count");
}

static int qcount_put(struct fsm *f, MDB_txn *txn, MDB_val *k, uint64_t n)
{
    MDB_val v = {8, &n};
    int rv;

    if (n == 0) {
        rv = mdb_del(txn, f->dbi[DB_QCOUNTS], k, NULL);
        rv = rv == MDB_NOTFOUND ? 0 : rv;
    } else {
        rv = mdb_put(txn, f->dbi[DB_QCOUNTS], k, &v, 0);
    }
    return rv == 0 ? 0 : fsm__lmdb_error(f, rv, "queue count");
}

/* The held counter of key @kb (@len bytes), or -1. */
static int qcount_held(const struct fsm__counts *c,
                       const unsigned char *kb,
                       size_t len)
{
    for (unsigned i = 0; i < c->n_q; i++) {
        if (c->q[i].len == len && memcmp(c->q[i].key, kb, len) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Per-queue counters: key queue 0x00 status. */
static int qcount_add(struct fsm *f,
                      MDB_txn *txn,
                      const unsigned char *queue,
                      size_t qlen,
                      uint8_t status,
                      int delta)
{
    struct fsm__counts *c = &f->counts;
    unsigned char kb[FSM_MAX_STR + 2];
    MDB_val k = {qlen + 2, kb};
    uint64_t n;
    int rv;

    if (qlen == 0 || qlen > FSM_MAX_STR) {
        return 0;
    }
    memcpy(kb, queue, qlen);
    kb[qlen] = 0;
    kb[qlen + 1] = status;
    if (!c->on) {
        rv = qcount_get(f, txn, &k, &n);
        return rv != 0 ? rv : qcount_put(f, txn, &k, moved_by(n, delta));
    }
    int i = qcount_held(c, kb, qlen + 2);
    if (i < 0) {
        if (c->n_q == FSM_COUNTS_QUEUES) {
            /* Many queues in one entry: write what is held, hold anew. */
            rv = fsm__counts_flush(f, txn);
            if (rv != 0) {
                return rv;
            }
        }
        i = (int)c->n_q++;
        rv = qcount_get(f, txn, &k, &c->q[i].n);
        if (rv != 0) {
            c->n_q--;
            return rv;
        }
        memcpy(c->q[i].key, kb, qlen + 2);
        c->q[i].len = (uint16_t)(qlen + 2);
    }
    c->q[i].n = moved_by(c->q[i].n, delta);
    return 0;
}

bool fsm__counts_queue(const struct fsm *f,
                       const unsigned char *key,
                       size_t len,
                       uint64_t *n)
{
    int i = f->counts.on ? qcount_held(&f->counts, key, len) : -1;
    if (i >= 0) {
        *n = f->counts.q[i].n;
    }
    return i >= 0;
}

void fsm__counts_begin(struct fsm *f)
{
    fsm__counts_drop(f);
    f->counts.on = true;
}

void fsm__counts_drop(struct fsm *f)
{
    f->counts.held = 0;
    f->counts.n_q = 0;
}

void fsm__counts_end(struct fsm *f)
{
    fsm__counts_drop(f);
    f->counts.on = false;
}

int fsm__counts_flush(struct fsm *f, MDB_txn *txn)
{
    struct fsm__counts *c = &f->counts;
    int rv = 0;

    for (unsigned s = 0; s < 8 && rv == 0; s++) {
        if (c->held & (1u << s)) {
            rv = fsm__put_meta_u64(f, txn, count_keys[s], c->status[s]);
        }
    }
    for (unsigned i = 0; i < c->n_q && rv == 0; i++) {
        MDB_val k = {c->q[i].len, c->q[i].key};
        rv = qcount_put(f, txn, &k, c->q[i].n);
    }
    fsm__counts_drop(f);
    return rv;
}

int fsm__del_job(struct fsm *f, MDB_txn *txn, const struct fsm_job *old)
{
    struct index_keys keys;
    unsigned char kb[8], qname[FSM_MAX_STR], idem[FSM_MAX_STR];
    size_t qlen = old->queue.len <= FSM_MAX_STR ? old->queue.len : 0;
    size_t ilen = old->idem_key.len <= FSM_MAX_STR ? old->idem_key.len : 0;
    uint8_t status = old->status;
    uint64_t id = old->id;
    MDB_val k = {8, kb}, v;
    int rv;

    keys_of(old, &keys);
    if (status == FSM_RUNNING) {
        fsm__rchg_note(f, old, -1);
    }
    if (qlen > 0) {
        memcpy(qname, old->queue.p, qlen);
    }
    if (ilen > 0) {
        memcpy(idem, old->idem_key.p, ilen);
    }
    rv = index_apply(f, txn, &keys, false);
    if (rv == 0) {
        rv = count_add(f, txn, status, -1);
    }
    if (rv == 0) {
        rv = qcount_add(f, txn, qname, qlen, status, -1);
    }
    if (rv == 0) {
        fsm__put_be64(kb, id);
        rv = mdb_del(txn, f->dbi[DB_JOBS], &k, NULL);
        rv = rv == 0 ? 0 : fsm__lmdb_error(f, rv, "del job");
    }
    if (rv == 0 && ilen > 0) {
        /* The key names this job only if it still maps to it. */
        k.mv_size = ilen;
        k.mv_data = idem;
        if (mdb_get(txn, f->dbi[DB_IDEM], &k, &v) == 0 && v.mv_size >= 8) {
            uint64_t owner;
            memcpy(&owner, v.mv_data, 8);
            if (owner == id) {
                rv = mdb_del(txn, f->dbi[DB_IDEM], &k, NULL);
                rv = rv == 0 ? 0 : fsm__lmdb_error(f, rv, "del idem");
            }
        }
    }
    return rv;
}

int fsm__put_job(struct fsm *f,
                 MDB_txn *txn,
                 const struct fsm_job *old,
                 const struct fsm_job *job)
{
    unsigned char oq[FSM_MAX_STR], nq[FSM_MAX_STR];
    size_t oql = 0, nql = 0;
    struct index_keys old_keys, new_keys;
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    uint8_t old_status = old != NULL ? old->status : 0;
    void *buf;
    size_t len;

    int rv;

    fsm__ev_job(f, old, job);

    /* Everything that reads @old or @job first: both may borrow from
     * LMDB pages that the writes below change. */
    rv = fsm_job_encode(job, &buf, &len);
    if (rv != 0) {
        snprintf(f->errmsg, sizeof f->errmsg, "encode job");
        return rv;
    }
    if (old != NULL) {
        keys_of(old, &old_keys);
        oql = old->queue.len <= FSM_MAX_STR ? old->queue.len : 0;
        if (oql > 0) {
            memcpy(oq, old->queue.p, oql);
        }
    }
    keys_of(job, &new_keys);
    nql = job->queue.len <= FSM_MAX_STR ? job->queue.len : 0;
    if (nql > 0) {
        memcpy(nq, job->queue.p, nql);
    }
    bool moved = old == NULL || old_status != job->status || oql != nql ||
                 memcmp(oq, nq, nql) != 0;
    bool was = old != NULL && old_status == FSM_RUNNING;
    bool is = job->status == FSM_RUNNING;
    bool same = was && is && old->worker_id == job->worker_id &&
                old->ckey.len == job->ckey.len &&
                (job->ckey.len == 0 ||
                 memcmp(old->ckey.p, job->ckey.p, job->ckey.len) == 0);
    if (was && !same) {
        fsm__rchg_note(f, old, -1);
    }
    if (is && !same) {
        fsm__rchg_note(f, job, +1);
    }

    if (old != NULL) {
        rv = index_apply(f, txn, &old_keys, false);
        if (rv == 0 && old_status != job->status) {
            rv = count_add(f, txn, old_status, -1);
        }
    }
    if (rv == 0) {
        fsm__put_be64(kb, job->id);
        v.mv_size = len;
        v.mv_data = buf;
        /* A new job's id is above every stored one ((raft index << 20) |
         * n): appended, LMDB neither searches the tree nor splits pages
         * in half. Were one not above (ids are not made any other way),
         * LMDB says MDB_KEYEXIST and it goes in the usual way. */
        rv = old == NULL ? mdb_put(txn, f->dbi[DB_JOBS], &k, &v, MDB_APPEND)
                         : MDB_KEYEXIST;
        if (rv == MDB_KEYEXIST) {
            rv = mdb_put(txn, f->dbi[DB_JOBS], &k, &v, 0);
        }
        if (rv != 0) {
            rv = fsm__lmdb_error(f, rv, "put job");
        }
    }
    free(buf);
    if (rv == 0) {
        rv = index_apply(f, txn, &new_keys, true);
    }
    if (rv == 0 && (old == NULL || old_status != new_keys.key[0][0])) {
        rv = count_add(f, txn, new_keys.key[0][0], +1);
    }
    if (rv == 0 && moved && old != NULL) {
        rv = qcount_add(f, txn, oq, oql, old_status, -1);
    }
    if (rv == 0 && moved) {
        rv = qcount_add(f, txn, nq, nql, new_keys.key[0][0], +1);
    }
    return rv;
}

/* ---- running-set changes (fsm_watch_running) ------------------------- */

void fsm_watch_running(struct fsm *f, fsm_running_cb cb, void *data)
{
    f->rchg_cb = cb;
    f->rchg_data = data;
}

uint64_t fsm_restores(struct fsm *f)
{
    return f->restores;
}

/* Out of memory here loses a change: the watcher's counts drift until it
 * rebuilds (a new leader rebuilds them), never the state. */
void fsm__rchg_note(struct fsm *f, const struct fsm_job *job, int delta)
{
    if (f->rchg_cb == NULL) {
        return;
    }
    if (VEC_RESERVE(f->rchg, f->cap_rchg, f->n_rchg + 1) != 0 ||
        VEC_RESERVE(f->rchg_keys, f->keys_cap, f->keys_used + job->ckey.len) !=
            0) {
        return;
    }
    struct fsm__rchg *c = &f->rchg[f->n_rchg++];
    c->worker = job->worker_id;
    c->key_off = f->keys_used;
    c->key_len = job->ckey.len;
    c->delta = delta;
    if (job->ckey.len > 0) {
        memcpy(f->rchg_keys + f->keys_used, job->ckey.p, job->ckey.len);
        f->keys_used += job->ckey.len;
    }
}

void fsm__rchg_flush(struct fsm *f)
{
    for (size_t i = 0; i < f->n_rchg && f->rchg_cb != NULL; i++) {
        const struct fsm__rchg *c = &f->rchg[i];
        struct fsm_str key = {f->rchg_keys + c->key_off, c->key_len};
        f->rchg_cb(f->rchg_data, c->worker, key, c->delta);
    }
    f->n_rchg = 0;
    f->keys_used = 0;
}

/* ---- readers ------------------------------------------------------------ */

int fsm_read_begin(struct fsm *f, struct fsm_reader **out)
{
    struct fsm_reader *rd = malloc(sizeof *rd);
    int rv;
    if (rd == NULL) {
        return ERR_NOMEM;
    }
    rd->f = f;
    rv = mdb_txn_begin(f->env, NULL, MDB_RDONLY, &rd->txn);
    if (rv != 0) {
        free(rd);
        return fsm__lmdb_error(f, rv, "read txn");
    }
    *out = rd;
    return 0;
}

void fsm_read_end(struct fsm_reader *rd)
{
    mdb_txn_abort(rd->txn);
    free(rd);
}

int fsm_get_job(struct fsm_reader *rd, uint64_t id, struct fsm_job *job)
{
    return fsm__get_job(rd->f, rd->txn, id, job);
}

int fsm_count_by_status(struct fsm_reader *rd, uint64_t counts[8])
{
    char key[16];
    counts[0] = 0;
    for (unsigned s = 1; s < 8; s++) {
        snprintf(key, sizeof key, "count/%u", s);
        counts[s] = fsm__get_meta_u64(rd->f, rd->txn, key);
    }
    return 0;
}

int fsm_nodes(struct fsm_reader *rd, fsm_node_cb cb, void *data)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rv = mdb_cursor_open(rd->txn, rd->f->dbi[DB_NODES], &cur);
    if (rv != 0) {
        return fsm__lmdb_error(rd->f, rv, "cursor");
    }
    for (rv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rv == 0;
         rv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *p = v.mv_data;
        uint32_t rl, hl;
        if (k.mv_size != 8 || v.mv_size < 8) {
            continue;
        }
        memcpy(&rl, p, 4);
        if (rl > v.mv_size - 8) {
            continue;
        }
        memcpy(&hl, p + 4 + rl, 4);
        if (hl > v.mv_size - 8 - rl) {
            continue;
        }
        struct fsm_str raft = {(const char *)p + 4, rl};
        struct fsm_str http = {(const char *)p + 8 + rl, hl};
        cb(data, fsm__get_be64(k.mv_data), raft, http);
    }
    mdb_cursor_close(cur);
    return 0;
}
