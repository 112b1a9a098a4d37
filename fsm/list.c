/* Listing through the secondary indexes. The most selective index the
 * filters allow is walked from the cursor, forwards or (q->desc) backwards;
 * remaining filters are checked on the record. The cursor is the last
 * returned index key, in hex, behind a letter naming the index (upper case
 * when walking backwards, so a cursor only continues its own order): it is
 * stable under inserts and deletes. */

#include <stdio.h>
#include <string.h>

#include "fsm/internal.h"

struct plan
{
    int db;
    char letter;
    unsigned char prefix[FSM_MAX_STR + 2];
    size_t prefix_len;
};

static void plan_str(struct plan *p,
                     int db,
                     char letter,
                     struct fsm_str s,
                     uint8_t status)
{
    p->db = db;
    p->letter = letter;
    memcpy(p->prefix, s.p, s.len);
    p->prefix[s.len] = 0;
    p->prefix_len = s.len + 1;
    if (status != 0) {
        p->prefix[p->prefix_len++] = status;
    }
}

static int make_plan(const struct fsm_query *q, struct plan *p)
{
    memset(p, 0, sizeof *p);
    if (q->user_id.len > FSM_MAX_STR || q->queue.len > FSM_MAX_STR ||
        q->type.len > FSM_MAX_STR) {
        return ERR_INVALID;
    }
    if (q->user_id.len > 0) {
        plan_str(p, DB_BY_USER, 'u', q->user_id, q->status);
    } else if (q->queue.len > 0) {
        plan_str(p, DB_BY_QUEUE, 'q', q->queue, q->status);
    } else if (q->type.len > 0) {
        plan_str(p, DB_BY_TYPE, 't', q->type, q->status);
    } else if (q->status != 0) {
        p->db = DB_BY_STATUS;
        p->letter = 's';
        p->prefix[0] = q->status;
        p->prefix_len = 1;
    } else {
        p->db = DB_JOBS;
        p->letter = 'j';
    }
    if (q->desc) {
        p->letter = (char)(p->letter - 'a' + 'A');
    }
    return 0;
}

static bool str_eq(struct fsm_str a, struct fsm_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static bool matches(const struct fsm_query *q, const struct fsm_job *j)
{
    return (q->status == 0 || j->status == q->status) &&
           (q->user_id.len == 0 || str_eq(q->user_id, j->user_id)) &&
           (q->queue.len == 0 || str_eq(q->queue, j->queue)) &&
           (q->type.len == 0 || str_eq(q->type, j->type));
}

static void write_cursor(char *out, char letter, const MDB_val *k)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = k->mv_data;
    size_t o = 0;
    out[o++] = letter;
    for (size_t i = 0; i < k->mv_size && o + 3 < FSM_CURSOR_SIZE; i++) {
        out[o++] = hex[p[i] >> 4];
        out[o++] = hex[p[i] & 15];
    }
    out[o] = '\0';
}

static int read_cursor(const char *c,
                       const struct plan *p,
                       unsigned char *key,
                       size_t *len)
{
    size_t n = strlen(c);
    if (n < 3 || c[0] != p->letter || (n - 1) % 2 != 0 ||
        (n - 1) / 2 > FSM_MAX_STR + 16) {
        return ERR_INVALID;
    }
    *len = (n - 1) / 2;
    for (size_t i = 0; i < *len; i++) {
        unsigned v = 0;
        for (int h = 0; h < 2; h++) {
            char ch = c[1 + 2 * i + (size_t)h];
            v <<= 4;
            if (ch >= '0' && ch <= '9') {
                v |= (unsigned)(ch - '0');
            } else if (ch >= 'a' && ch <= 'f') {
                v |= (unsigned)(ch - 'a' + 10);
            } else {
                return ERR_INVALID;
            }
        }
        key[i] = (unsigned char)v;
    }
    if (*len < p->prefix_len + 8 ||
        memcmp(key, p->prefix, p->prefix_len) != 0) {
        return ERR_INVALID;
    }
    return 0;
}

/* Positions @cur on the first key of the plan's range (after the cursor
 * key @ckey when @clen > 0). */
static int seek_first(MDB_cursor *cur,
                      struct plan *p,
                      unsigned char *ckey,
                      size_t clen,
                      MDB_val *k,
                      MDB_val *v)
{
    int rv;
    if (clen > 0) {
        k->mv_size = clen;
        k->mv_data = ckey;
    } else {
        k->mv_size = p->prefix_len;
        k->mv_data = p->prefix;
    }
    rv = k->mv_size > 0 ? mdb_cursor_get(cur, k, v, MDB_SET_RANGE)
                        : mdb_cursor_get(cur, k, v, MDB_FIRST);
    if (rv == 0 && clen > 0 && k->mv_size == clen &&
        memcmp(k->mv_data, ckey, clen) == 0) {
        rv = mdb_cursor_get(cur, k, v, MDB_NEXT);
    }
    return rv;
}

/* Positions @cur on the last key of the plan's range (before the cursor key
 * @ckey when @clen > 0): the first key at or past the bound, then one back;
 * the last key of the table when nothing is past the bound. */
static int seek_last(MDB_cursor *cur,
                     struct plan *p,
                     unsigned char *ckey,
                     size_t clen,
                     MDB_val *k,
                     MDB_val *v)
{
    unsigned char bound[FSM_MAX_STR + 32];
    size_t len;
    int rv;
    if (clen > 0) {
        memcpy(bound, ckey, clen);
        len = clen;
    } else {
        /* Just past every key with the prefix: the prefix plus one. */
        memcpy(bound, p->prefix, p->prefix_len);
        len = p->prefix_len;
        while (len > 0 && bound[len - 1] == 0xff) {
            len--;
        }
        if (len > 0) {
            bound[len - 1]++;
        }
    }
    rv = MDB_NOTFOUND;
    if (len > 0) {
        k->mv_size = len;
        k->mv_data = bound;
        rv = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    }
    if (rv == 0) {
        return mdb_cursor_get(cur, k, v, MDB_PREV);
    }
    return rv == MDB_NOTFOUND ? mdb_cursor_get(cur, k, v, MDB_LAST) : rv;
}

int fsm_list(struct fsm_reader *rd,
             const struct fsm_query *q,
             fsm_list_cb cb,
             void *data,
             char *next)
{
    struct fsm *f = rd->f;
    struct plan p;
    unsigned char ckey[FSM_MAX_STR + 32];
    size_t clen = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    unsigned limit = q->limit == 0 ? 100 : q->limit, found = 0;
    bool more = false, full = false;
    MDB_cursor_op step;
    int rv;

    next[0] = '\0';
    if (make_plan(q, &p) != 0) {
        return ERR_INVALID;
    }
    if (q->cursor != NULL && read_cursor(q->cursor, &p, ckey, &clen) != 0) {
        return ERR_INVALID;
    }
    rv = mdb_cursor_open(rd->txn, f->dbi[p.db], &cur);
    if (rv != 0) {
        return fsm__lmdb_error(f, rv, "list: cursor");
    }
    rv = q->desc ? seek_last(cur, &p, ckey, clen, &k, &v)
                 : seek_first(cur, &p, ckey, clen, &k, &v);
    step = q->desc ? MDB_PREV : MDB_NEXT;
    for (; rv == 0; rv = mdb_cursor_get(cur, &k, &v, step)) {
        struct fsm_job job;
        if (k.mv_size < p.prefix_len + 8 ||
            memcmp(k.mv_data, p.prefix, p.prefix_len) != 0) {
            break;
        }
        uint64_t id =
            fsm__get_be64((const unsigned char *)k.mv_data + k.mv_size - 8);
        if (fsm__get_job(f, rd->txn, id, &job) != 0 || !matches(q, &job)) {
            continue;
        }
        if (found == limit || full) {
            more = true; /* One more match exists: keep the cursor. */
            break;
        }
        found++;
        write_cursor(next, p.letter, &k);
        /* Stopped by the callback: a cursor only if another match follows. */
        full = cb(data, &job) != 0;
    }
    if (!more) {
        next[0] = '\0'; /* Ran off the end: the last page. */
    }
    if (rv != 0 && rv != MDB_NOTFOUND) {
        mdb_cursor_close(cur);
        return fsm__lmdb_error(f, rv, "list");
    }
    mdb_cursor_close(cur);
    return 0;
}
