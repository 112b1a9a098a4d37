/* Snapshots, restore and the state digest.
 *
 * Format v2 (written by this version). A 20-byte header, the same as v1's
 * so that fsm_snapshot_index() reads both: magic "RSNP", version u32 (2),
 * applied index u64, number of dbs u32. Then blocks up to the end of the
 * buffer, each:
 *
 *   raw length u32         1 .. FSM_SNAPSHOT_MAX_BLOCK (4 MiB)
 *   compressed length u32  1 .. LZ4_compressBound(raw length)
 *   checksum u32           Adler-32 of the compressed bytes
 *   compressed bytes       LZ4 block format (LZ4_compress_default)
 *
 * The blocks' raw bytes, concatenated, are the record stream: per db, name
 * length u32, name, entry count u64, entries (key length u32, key, value
 * length u32, value) in key order. The writer cuts it every 1 MiB wherever
 * that falls, so a record (or one of its integers) may span blocks.
 * Integers are in the machine's byte order, little-endian on every platform
 * Rota builds for.
 *
 * Format v1 (read only, for backups made by older versions): the same
 * header with version 1, then the record stream uncompressed.
 *
 * Write: records are copied into a scratch block (1 MiB; it starts at 64 KiB
 * and doubles, for small states), which is compressed straight into the
 * current output chunk; a chunk is allocated when the block may not fit in
 * the last one (64 KiB, then twice as big each time and room for two blocks,
 * up to 64 MiB), never realloc'ed bigger (its untouched tail costs address
 * space, not memory, and is trimmed when the chunk is closed). Peak memory:
 * the compressed snapshot plus one block.
 *
 * Restore: one pass in one write transaction: drop every db, decode block
 * by block, put with MDB_APPEND (keys must come in order). Anything wrong
 * (a bad block header or checksum, a block that does not decompress, keys
 * out of order, a truncated stream, trailing bytes) aborts the transaction
 * and returns ERR_CORRUPT with errmsg saying what and where: the old state
 * stays intact. Memory: one raw block (at most 4 MiB, bounded before it is
 * allocated) and, for a record spanning blocks, a buffer grown as its bytes
 * arrive (never from a length read in the stream). */

#include <errno.h>
#include <lz4.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/internal.h"

#define SNAP_MAGIC 0x504e5352u /* "RSNP" */
#define SNAP_V1 1
#define SNAP_V2 2
#define SNAP_HEADER 20
#define BLOCK_HEADER 12
#define BLOCK_DEFAULT (1u << 20)
#define CHUNK_DEFAULT (64u << 20)
#define CHUNK_FIRST (64u << 10)
#define MAX_KEY 511 /* LMDB's default maximum key size. */

struct fsm_snapshot
{
    struct fsm *f;
    MDB_txn *txn;
    size_t block, chunk;
};

int fsm_snapshot_begin(struct fsm *f, struct fsm_snapshot **out)
{
    struct fsm_snapshot *s = malloc(sizeof *s);
    int rv;
    if (s == NULL) {
        return ERR_NOMEM;
    }
    s->f = f;
    s->block = BLOCK_DEFAULT;
    s->chunk = CHUNK_DEFAULT;
    rv = mdb_txn_begin(f->env, NULL, MDB_RDONLY, &s->txn);
    if (rv != 0) {
        free(s);
        return fsm__lmdb_error(f, rv, "snapshot: begin");
    }
    *out = s;
    return 0;
}

void fsm_snapshot_set_sizes(struct fsm_snapshot *s, size_t block, size_t chunk)
{
    s->block = block == 0                       ? 1
               : block > FSM_SNAPSHOT_MAX_BLOCK ? FSM_SNAPSHOT_MAX_BLOCK
                                                : block;
    s->chunk = chunk;
}

void fsm_snapshot_end(struct fsm_snapshot *s)
{
    mdb_txn_abort(s->txn);
    free(s);
}

void fsm_snapshot_chunks_free(struct fsm_snapshot_chunks *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        free(c->v[i].base);
    }
    free(c->v);
    c->v = NULL;
    c->n = 0;
}

/* Adler-32 (RFC 1950): 5552 bytes is the most that cannot overflow. */
static uint32_t adler32(const unsigned char *p, size_t n)
{
    uint32_t a = 1, b = 0;
    while (n > 0) {
        size_t k = n < 5552 ? n : 5552;
        n -= k;
        while (k-- > 0) {
            a += *p++;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    return (b << 16) | a;
}

/* ---- Write -------------------------------------------------------------- */

struct wr
{
    size_t block, chunk;
    unsigned char *raw; /* The scratch block. */
    size_t raw_len, raw_cap;
    struct fsm_snapshot_chunks *out;
    unsigned out_cap; /* Entries of out->v. */
    size_t last_cap;  /* Bytes of the last chunk. */
    int err;
};

/* Give back the untouched tail of the last chunk (a shrink: no copy). */
static void trim_last(struct wr *w)
{
    struct fsm_snapshot_chunk *c = &w->out->v[w->out->n - 1];
    void *p = realloc(c->base, c->len);
    if (p != NULL) {
        c->base = p;
        w->last_cap = c->len;
    }
}

/* Start a chunk of at least @need bytes: 64 KiB, then twice as big each
 * time (and room for two blocks of @need) up to w->chunk. A small state
 * takes a small buffer (malloc with MALLOC_PERTURB_, as under meson test,
 * writes every byte it returns). */
static void new_chunk(struct wr *w, size_t need)
{
    struct fsm_snapshot_chunks *o = w->out;
    unsigned shift = o->n < 16 ? o->n : 16;
    size_t cap = (size_t)CHUNK_FIRST << shift;
    void *p;

    cap = cap > 2 * need ? cap : 2 * need;
    cap = cap < w->chunk ? cap : w->chunk;
    cap = cap > need ? cap : need;

    if (o->n == w->out_cap) {
        unsigned n = w->out_cap == 0 ? 8 : w->out_cap * 2;
        struct fsm_snapshot_chunk *v = realloc(o->v, n * sizeof *v);
        if (v == NULL) {
            w->err = ERR_NOMEM;
            return;
        }
        o->v = v;
        w->out_cap = n;
    }
    if (o->n > 0) {
        trim_last(w);
    }
    p = malloc(cap);
    if (p == NULL) {
        w->err = ERR_NOMEM;
        return;
    }
    o->v[o->n].base = p;
    o->v[o->n].len = 0;
    o->n++;
    w->last_cap = cap;
}

/* Compress the scratch block into the last chunk (a new one if the block
 * may not fit). */
static void flush(struct wr *w)
{
    struct fsm_snapshot_chunk *c;
    unsigned char *dst;
    uint32_t h[3];
    int bound, n;

    if (w->err != 0 || w->raw_len == 0) {
        return;
    }
    bound = LZ4_compressBound((int)w->raw_len);
    c = &w->out->v[w->out->n - 1];
    if (w->last_cap - c->len < BLOCK_HEADER + (size_t)bound) {
        new_chunk(w, BLOCK_HEADER + (size_t)bound);
        if (w->err != 0) {
            return;
        }
        c = &w->out->v[w->out->n - 1];
    }
    dst = (unsigned char *)c->base + c->len;
    n = LZ4_compress_default((const char *)w->raw, (char *)dst + BLOCK_HEADER,
                             (int)w->raw_len, bound);
    if (n <= 0) {
        w->err = ERR_STORAGE; /* Cannot happen with bound bytes. */
        return;
    }
    h[0] = (uint32_t)w->raw_len;
    h[1] = (uint32_t)n;
    h[2] = adler32(dst + BLOCK_HEADER, (size_t)n);
    memcpy(dst, h, sizeof h);
    c->len += BLOCK_HEADER + (size_t)n;
    w->raw_len = 0;
}

/* The scratch block grows from 64 KiB to w->block (a small state takes a
 * small one; blocks are cut at w->block all the same). */
static void grow_raw(struct wr *w)
{
    size_t cap = w->raw_cap == 0 ? CHUNK_FIRST : w->raw_cap * 2;
    unsigned char *p;
    cap = cap < w->block ? cap : w->block;
    p = realloc(w->raw, cap);
    if (p == NULL) {
        w->err = ERR_NOMEM;
        return;
    }
    w->raw = p;
    w->raw_cap = cap;
}

static void put(struct wr *w, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n > 0 && w->err == 0) {
        size_t k = w->raw_cap - w->raw_len;
        if (k == 0) {
            if (w->raw_cap < w->block) {
                grow_raw(w);
            } else {
                flush(w);
            }
            continue;
        }
        if (k > n) {
            k = n;
        }
        memcpy(w->raw + w->raw_len, p, k);
        w->raw_len += k;
        p += k;
        n -= k;
    }
}

static void put_u32(struct wr *w, uint32_t v)
{
    put(w, &v, 4);
}

static void put_u64(struct wr *w, uint64_t v)
{
    put(w, &v, 8);
}

/* The records of db @d. 0 or an LMDB code. */
static int write_db(struct fsm_snapshot *s, struct wr *w, int d)
{
    const char *name = fsm__db_names[d];
    MDB_cursor *cur;
    MDB_val k, v;
    MDB_stat st;
    uint64_t n = 0;
    int rv = mdb_stat(s->txn, s->f->dbi[d], &st);

    if (rv != 0) {
        return rv;
    }
    put_u32(w, (uint32_t)strlen(name));
    put(w, name, strlen(name));
    put_u64(w, st.ms_entries);
    rv = mdb_cursor_open(s->txn, s->f->dbi[d], &cur);
    if (rv != 0) {
        return rv;
    }
    for (rv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rv == 0 && w->err == 0;
         rv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        put_u32(w, (uint32_t)k.mv_size);
        put(w, k.mv_data, k.mv_size);
        put_u32(w, (uint32_t)v.mv_size);
        put(w, v.mv_data, v.mv_size);
        n++;
    }
    mdb_cursor_close(cur);
    if (w->err != 0) {
        return 0; /* Reported by the caller. */
    }
    return rv == MDB_NOTFOUND && n == st.ms_entries ? 0 : EIO;
}

int fsm_snapshot_write(struct fsm_snapshot *s, struct fsm_snapshot_chunks *out)
{
    struct wr w;
    uint32_t h32[2] = {SNAP_MAGIC, SNAP_V2};
    uint64_t applied = fsm__get_meta_u64(s->f, s->txn, FSM_META_APPLIED);
    uint32_t ndb = DB__COUNT;
    unsigned char *p;
    int rv = 0;

    memset(&w, 0, sizeof w);
    out->v = NULL;
    out->n = 0;
    w.out = out;
    w.block = s->block;
    w.chunk = s->chunk;
    new_chunk(&w, SNAP_HEADER);
    if (w.err == 0) {
        p = out->v[0].base;
        memcpy(p, h32, 8);
        memcpy(p + 8, &applied, 8);
        memcpy(p + 16, &ndb, 4);
        out->v[0].len = SNAP_HEADER;
    }
    for (int d = 0; d < DB__COUNT && rv == 0 && w.err == 0; d++) {
        rv = write_db(s, &w, d);
    }
    flush(&w);
    free(w.raw);
    if (rv != 0 || w.err != 0) {
        fsm_snapshot_chunks_free(out);
        /* Runs in the thread pool: no errmsg write (the loop owns it). */
        return w.err != 0 ? w.err : ERR_STORAGE;
    }
    trim_last(&w);
    return 0;
}

/* ---- Restore ------------------------------------------------------------ */

struct rd
{
    struct fsm *f;
    const unsigned char *buf;      /* The whole snapshot (for offsets). */
    const unsigned char *in, *end; /* v2: blocks not read yet. */
    int version;
    unsigned char *raw; /* v2: the current block, decompressed. */
    size_t raw_cap;
    const unsigned char *p, *pend; /* Raw bytes not decoded yet. */
    unsigned char *span;           /* A field that spans blocks. */
    size_t span_cap;
    uint64_t blocks;  /* Blocks read. */
    size_t block_off; /* Offset of the current block in buf. */
    char why[200];    /* What is wrong, for errmsg. */
};

static int corrupt(struct rd *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int corrupt(struct rd *r, const char *fmt, ...)
{
    char what[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (r->version == SNAP_V2) {
        snprintf(r->why, sizeof r->why,
                 "%s (format v2, block %llu at byte %zu)", what,
                 (unsigned long long)r->blocks, r->block_off);
    } else {
        snprintf(r->why, sizeof r->why, "%s (format v1, at byte %zu)", what,
                 (size_t)(r->p - r->buf));
    }
    return ERR_CORRUPT;
}

/* Check and decompress the next block into r->raw. */
static int next_block(struct rd *r)
{
    uint32_t h[3];
    size_t left = (size_t)(r->end - r->in);
    int n;

    r->block_off = (size_t)(r->in - r->buf);
    r->blocks++;
    if (left == 0) {
        r->blocks--;
        return corrupt(r, "truncated: the records end early");
    }
    if (left < BLOCK_HEADER) {
        return corrupt(r, "truncated block header");
    }
    memcpy(h, r->in, sizeof h);
    if (h[0] == 0 || h[0] > FSM_SNAPSHOT_MAX_BLOCK) {
        return corrupt(r, "block raw length %u out of range", h[0]);
    }
    if (h[1] == 0 || h[1] > (uint32_t)LZ4_compressBound((int)h[0])) {
        return corrupt(r, "block compressed length %u out of range", h[1]);
    }
    if (h[1] > left - BLOCK_HEADER) {
        return corrupt(r, "truncated block: %u bytes, %zu left", h[1],
                       left - BLOCK_HEADER);
    }
    if (adler32(r->in + BLOCK_HEADER, h[1]) != h[2]) {
        return corrupt(r, "block checksum mismatch");
    }
    if (h[0] > r->raw_cap) {
        unsigned char *p = realloc(r->raw, h[0]);
        if (p == NULL) {
            snprintf(r->why, sizeof r->why, "out of memory");
            return ERR_NOMEM;
        }
        r->raw = p;
        r->raw_cap = h[0];
    }
    n = LZ4_decompress_safe((const char *)r->in + BLOCK_HEADER, (char *)r->raw,
                            (int)h[1], (int)h[0]);
    if (n != (int)h[0]) {
        return corrupt(r, "block does not decompress to its %u bytes", h[0]);
    }
    r->in += BLOCK_HEADER + h[1];
    r->p = r->raw;
    r->pend = r->raw + n;
    return 0;
}

/* The next @n raw bytes, contiguous: in the block, or copied into r->span
 * if they span blocks. Valid until the next take(). */
static int take(struct rd *r, size_t n, const unsigned char **out)
{
    size_t have = 0;
    int rv;

    if (n > 0 && r->p == r->pend && r->version == SNAP_V2) {
        rv = next_block(r);
        if (rv != 0) {
            return rv;
        }
    }
    if ((size_t)(r->pend - r->p) >= n) {
        *out = r->p;
        r->p += n;
        return 0;
    }
    if (r->version != SNAP_V2) {
        return corrupt(r, "truncated: %zu bytes wanted, %zu left", n,
                       (size_t)(r->pend - r->p));
    }
    while (have < n) {
        size_t k = (size_t)(r->pend - r->p);
        if (k == 0 && (rv = next_block(r)) != 0) {
            return rv;
        }
        k = (size_t)(r->pend - r->p);
        if (k > n - have) {
            k = n - have;
        }
        if (have + k > r->span_cap) {
            size_t cap =
                r->span_cap * 2 > have + k ? r->span_cap * 2 : have + k;
            unsigned char *p = realloc(r->span, cap < n ? cap : n);
            if (p == NULL) {
                snprintf(r->why, sizeof r->why, "out of memory");
                return ERR_NOMEM;
            }
            r->span = p;
            r->span_cap = cap < n ? cap : n;
        }
        memcpy(r->span + have, r->p, k);
        r->p += k;
        have += k;
    }
    *out = r->span;
    return 0;
}

static int take_u32(struct rd *r, uint32_t *v)
{
    const unsigned char *q;
    int rv = take(r, 4, &q);
    if (rv == 0) {
        memcpy(v, q, 4);
    }
    return rv;
}

static int take_u64(struct rd *r, uint64_t *v)
{
    const unsigned char *q;
    int rv = take(r, 8, &q);
    if (rv == 0) {
        memcpy(v, q, 8);
    }
    return rv;
}

/* One db: name, count, records put in @txn. */
static int restore_db(struct rd *r, MDB_txn *txn)
{
    const unsigned char *q;
    unsigned char key[MAX_KEY];
    uint32_t nlen, kl, vl;
    uint64_t count;
    int db = -1, rv;

    if ((rv = take_u32(r, &nlen)) != 0) {
        return rv;
    }
    if (nlen == 0 || nlen > 64) {
        return corrupt(r, "db name length %u out of range", nlen);
    }
    if ((rv = take(r, nlen, &q)) != 0) {
        return rv;
    }
    for (int i = 0; i < DB__COUNT; i++) {
        if (strlen(fsm__db_names[i]) == nlen &&
            memcmp(fsm__db_names[i], q, nlen) == 0) {
            db = i;
        }
    }
    if (db < 0) {
        return corrupt(r, "unknown db \"%.*s\"", (int)nlen, (const char *)q);
    }
    if ((rv = take_u64(r, &count)) != 0) {
        return rv;
    }
    for (uint64_t i = 0; i < count; i++) {
        MDB_val k, v;
        if ((rv = take_u32(r, &kl)) != 0) {
            return rv;
        }
        if (kl == 0 || kl > MAX_KEY) {
            return corrupt(r, "key length %u out of range in db %s", kl,
                           fsm__db_names[db]);
        }
        if ((rv = take(r, kl, &q)) != 0) {
            return rv;
        }
        memcpy(key, q, kl); /* The value's take() may reuse q. */
        if ((rv = take_u32(r, &vl)) != 0 || (rv = take(r, vl, &q)) != 0) {
            return rv;
        }
        k.mv_size = kl;
        k.mv_data = key;
        v.mv_size = vl;
        v.mv_data = (void *)q;
        rv = mdb_put(txn, r->f->dbi[db], &k, &v, MDB_APPEND);
        if (rv == MDB_KEYEXIST) {
            return corrupt(r, "keys out of order in db %s", fsm__db_names[db]);
        }
        if (rv != 0) {
            return fsm__lmdb_error(r->f, rv, "restore: put");
        }
    }
    return 0;
}

/* Every db, then nothing. */
static int restore_all(struct rd *r, MDB_txn *txn, uint32_t ndb)
{
    int rv;
    for (uint32_t d = 0; d < ndb; d++) {
        rv = restore_db(r, txn);
        if (rv != 0) {
            return rv;
        }
    }
    if (r->p != r->pend || r->in != r->end) {
        return corrupt(r, "trailing bytes after the last record");
    }
    return 0;
}

/* Check the header; set up @r. 0 or ERR_CORRUPT. */
static int read_header(struct rd *r,
                       size_t len,
                       uint64_t *applied,
                       uint32_t *ndb)
{
    uint32_t magic, version;
    r->p = r->pend = r->in = r->end = r->buf;
    r->version = SNAP_V1;
    if (len < SNAP_HEADER) {
        return corrupt(r, "shorter than the header (%zu bytes)", len);
    }
    memcpy(&magic, r->buf, 4);
    memcpy(&version, r->buf + 4, 4);
    memcpy(applied, r->buf + 8, 8);
    memcpy(ndb, r->buf + 16, 4);
    if (magic != SNAP_MAGIC) {
        return corrupt(r, "not a snapshot (bad magic)");
    }
    if (version != SNAP_V1 && version != SNAP_V2) {
        return corrupt(r, "format version %u not supported", version);
    }
    if (*ndb > 64) {
        return corrupt(r, "%u dbs", *ndb);
    }
    r->version = (int)version;
    if (version == SNAP_V1) {
        r->p = r->buf + SNAP_HEADER;
        r->pend = r->buf + len;
        r->in = r->end = r->pend;
    } else {
        r->in = r->buf + SNAP_HEADER;
        r->end = r->buf + len;
        r->p = r->pend = r->in;
    }
    return 0;
}

int fsm_restore(struct fsm *f, const void *buf, size_t len)
{
    struct rd r;
    MDB_txn *txn;
    uint64_t applied = 0;
    uint32_t ndb = 0;
    int rv;

    memset(&r, 0, sizeof r);
    r.f = f;
    r.buf = buf;
    rv = read_header(&r, len, &applied, &ndb);
    if (rv != 0) {
        snprintf(f->errmsg, sizeof f->errmsg, "restore: corrupt snapshot: %s",
                 r.why);
        return rv;
    }
    rv = mdb_txn_begin(f->env, NULL, 0, &txn);
    if (rv != 0) {
        return fsm__lmdb_error(f, rv, "restore: begin");
    }
    for (int d = 0; d < DB__COUNT && rv == 0; d++) {
        rv = mdb_drop(txn, f->dbi[d], 0);
        if (rv != 0) {
            rv = fsm__lmdb_error(f, rv, "restore: drop");
        }
    }
    if (rv == 0) {
        rv = restore_all(&r, txn, ndb);
    }
    if (rv == 0) {
        rv = fsm__put_meta_u64(f, txn, FSM_META_APPLIED, applied);
    }
    free(r.raw);
    free(r.span);
    if (rv != 0) {
        mdb_txn_abort(txn);
        if (r.why[0] != '\0') {
            snprintf(f->errmsg, sizeof f->errmsg, "restore: %s%s",
                     rv == ERR_CORRUPT ? "corrupt snapshot: " : "", r.why);
        }
        return rv;
    }
    rv = mdb_txn_commit(txn);
    if (rv != 0) {
        return fsm__lmdb_error(f, rv, "restore: commit");
    }
    f->restores++;
    return 0;
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
