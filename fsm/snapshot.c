/* Snapshots, restore and the state digest.
 *
 * Format: magic "RSNP", version u32, applied index u64, number of dbs u32,
 * then per db: name length u32, name, entry count u64, entries (key length
 * u32, key, value length u32, value) in key order. Restore checks the whole
 * buffer before it touches the environment, then replaces every db in one
 * write transaction: a bad snapshot leaves the old state intact. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/internal.h"

#define SNAP_MAGIC 0x504e5352u /* "RSNP" */
#define SNAP_VERSION 1

struct fsm_snapshot
{
    struct fsm *f;
    MDB_txn *txn;
};

int fsm_snapshot_begin(struct fsm *f, struct fsm_snapshot **out)
{
    struct fsm_snapshot *s = malloc(sizeof *s);
    int rv;
    if (s == NULL) {
        return ERR_NOMEM;
    }
    s->f = f;
    rv = mdb_txn_begin(f->env, NULL, MDB_RDONLY, &s->txn);
    if (rv != 0) {
        free(s);
        return fsm__lmdb_error(f, rv, "snapshot: begin");
    }
    *out = s;
    return 0;
}

void fsm_snapshot_end(struct fsm_snapshot *s)
{
    mdb_txn_abort(s->txn);
    free(s);
}

struct buf
{
    unsigned char *p;
    size_t len, cap;
    int err;
};

static void put(struct buf *b, const void *data, size_t n)
{
    if (b->err != 0) {
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap == 0 ? 1 << 16 : b->cap;
        while (cap < b->len + n) {
            cap *= 2;
        }
        unsigned char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->err = ERR_NOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_u32(struct buf *b, uint32_t v)
{
    put(b, &v, 4);
}

static void put_u64(struct buf *b, uint64_t v)
{
    put(b, &v, 8);
}

int fsm_snapshot_write(struct fsm_snapshot *s, void **out, size_t *len)
{
    struct fsm *f = s->f;
    struct buf b = {NULL, 0, 0, 0};
    int rv = 0;

    put_u32(&b, SNAP_MAGIC);
    put_u32(&b, SNAP_VERSION);
    put_u64(&b, fsm__get_meta_u64(f, s->txn, FSM_META_APPLIED));
    put_u32(&b, DB__COUNT);
    for (int d = 0; d < DB__COUNT && rv == 0; d++) {
        MDB_cursor *cur;
        MDB_val k, v;
        MDB_stat st;
        const char *name = fsm__db_names[d];
        rv = mdb_stat(s->txn, f->dbi[d], &st);
        if (rv != 0) {
            break;
        }
        put_u32(&b, (uint32_t)strlen(name));
        put(&b, name, strlen(name));
        put_u64(&b, st.ms_entries);
        rv = mdb_cursor_open(s->txn, f->dbi[d], &cur);
        if (rv != 0) {
            break;
        }
        uint64_t n = 0;
        for (rv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rv == 0;
             rv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            put_u32(&b, (uint32_t)k.mv_size);
            put(&b, k.mv_data, k.mv_size);
            put_u32(&b, (uint32_t)v.mv_size);
            put(&b, v.mv_data, v.mv_size);
            n++;
        }
        mdb_cursor_close(cur);
        rv = (rv == MDB_NOTFOUND && n == st.ms_entries) ? 0 : EIO;
    }
    if (rv != 0 || b.err != 0) {
        free(b.p);
        /* Runs in the thread pool: no errmsg write (the loop owns it). */
        return b.err != 0 ? b.err : ERR_STORAGE;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

/* Walk a snapshot; with @txn NULL only validate it. */
static int walk(struct fsm *f,
                const unsigned char *p,
                size_t len,
                MDB_txn *txn,
                uint64_t *applied)
{
    const unsigned char *end = p + len;
    uint32_t magic, version, ndb;

#define NEED(n)                              \
    do {                                     \
        if ((size_t)(end - p) < (size_t)(n)) \
            return ERR_CORRUPT;              \
    } while (0)
    NEED(20);
    memcpy(&magic, p, 4);
    memcpy(&version, p + 4, 4);
    memcpy(applied, p + 8, 8);
    memcpy(&ndb, p + 16, 4);
    p += 20;
    if (magic != SNAP_MAGIC || version != SNAP_VERSION || ndb > 64) {
        return ERR_CORRUPT;
    }
    for (uint32_t d = 0; d < ndb; d++) {
        uint32_t nlen;
        uint64_t count;
        int db = -1;
        NEED(4);
        memcpy(&nlen, p, 4);
        p += 4;
        NEED((size_t)nlen + 8);
        for (int i = 0; i < DB__COUNT; i++) {
            if (strlen(fsm__db_names[i]) == nlen &&
                memcmp(fsm__db_names[i], p, nlen) == 0) {
                db = i;
            }
        }
        if (db < 0) {
            return ERR_CORRUPT;
        }
        p += nlen;
        memcpy(&count, p, 8);
        p += 8;
        for (uint64_t i = 0; i < count; i++) {
            uint32_t kl, vl;
            MDB_val k, v;
            NEED(4);
            memcpy(&kl, p, 4);
            NEED((size_t)kl + 8);
            k.mv_size = kl;
            k.mv_data = (void *)(p + 4);
            p += 4 + kl;
            memcpy(&vl, p, 4);
            NEED((size_t)vl + 4);
            v.mv_size = vl;
            v.mv_data = (void *)(p + 4);
            p += 4 + vl;
            if (kl == 0 || kl > 511) {
                return ERR_CORRUPT;
            }
            if (txn != NULL) {
                int rv = mdb_put(txn, f->dbi[db], &k, &v, MDB_APPEND);
                if (rv == MDB_KEYEXIST) {
                    return ERR_CORRUPT;
                }
                if (rv != 0) {
                    return fsm__lmdb_error(f, rv, "restore: put");
                }
            }
        }
    }
#undef NEED
    return p == end ? 0 : ERR_CORRUPT;
}

int fsm_restore(struct fsm *f, const void *buf, size_t len)
{
    MDB_txn *txn;
    uint64_t applied;
    int rv = walk(f, buf, len, NULL, &applied);

    if (rv != 0) {
        snprintf(f->errmsg, sizeof f->errmsg, "restore: corrupt snapshot");
        return rv;
    }
    rv = mdb_txn_begin(f->env, NULL, 0, &txn);
    if (rv != 0) {
        return fsm__lmdb_error(f, rv, "restore: begin");
    }
    for (int d = 0; d < DB__COUNT; d++) {
        rv = mdb_drop(txn, f->dbi[d], 0);
        if (rv != 0) {
            mdb_txn_abort(txn);
            return fsm__lmdb_error(f, rv, "restore: drop");
        }
    }
    rv = walk(f, buf, len, txn, &applied);
    if (rv == 0) {
        rv = fsm__put_meta_u64(f, txn, FSM_META_APPLIED, applied);
    }
    if (rv != 0) {
        mdb_txn_abort(txn);
        if (rv == ERR_CORRUPT) {
            snprintf(f->errmsg, sizeof f->errmsg, "restore: keys out of order");
        }
        return rv;
    }
    rv = mdb_txn_commit(txn);
    f->restores++;
    return rv == 0 ? 0 : fsm__lmdb_error(f, rv, "restore: commit");
}

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

int fsm_digest(struct fsm *f, uint64_t *out)
{
    MDB_txn *txn;
    uint64_t h = 14695981039346656037ULL;
    int rv = mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn);

    if (rv != 0) {
        return fsm__lmdb_error(f, rv, "digest: begin");
    }
    for (int d = 0; d < DB__COUNT; d++) {
        MDB_cursor *cur;
        MDB_val k, v;
        rv = mdb_cursor_open(txn, f->dbi[d], &cur);
        if (rv != 0) {
            mdb_txn_abort(txn);
            return fsm__lmdb_error(f, rv, "digest: cursor");
        }
        h = fnv(h, fsm__db_names[d], strlen(fsm__db_names[d]) + 1);
        for (rv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rv == 0;
             rv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (d == DB_META && k.mv_size == strlen(FSM_META_APPLIED) &&
                memcmp(k.mv_data, FSM_META_APPLIED, k.mv_size) == 0) {
                continue;
            }
            uint32_t kl = (uint32_t)k.mv_size, vl = (uint32_t)v.mv_size;
            h = fnv(h, &kl, 4);
            h = fnv(h, k.mv_data, k.mv_size);
            h = fnv(h, &vl, 4);
            h = fnv(h, v.mv_data, v.mv_size);
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    *out = h;
    return 0;
}

uint64_t fsm_snapshot_index(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t magic;
    uint64_t applied;
    if (len < 16) {
        return 0;
    }
    memcpy(&magic, p, 4);
    memcpy(&applied, p + 8, 8);
    return magic == SNAP_MAGIC ? applied : 0;
}
