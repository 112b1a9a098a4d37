/* Webhooks in the replicated state (fsm.h "Webhooks"): the records, the
 * deliveries each committed entry's events make, and the outcomes the
 * leader reports. Everything here is deterministic: every replica holds
 * the same deliveries, so a new leader continues where the old one
 * stopped. */

#include <stdlib.h>
#include <string.h>

#include "fsm/internal.h"

#define KEY_LEN 16
#define MAX_SECRET 256
#define MAX_QUEUES 1024
#define MAX_LAST_ERROR 512
#define POS_BITS 20

static void delivery_key(unsigned char kb[KEY_LEN], uint64_t hook, uint64_t k)
{
    fsm__put_be64(kb, hook);
    fsm__put_be64(kb + 8, k);
}

static int get_hook(struct fsm *f,
                    MDB_txn *txn,
                    uint64_t id,
                    struct fsm_webhook *w)
{
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    fsm__put_be64(kb, id);
    int rv = mdb_get(txn, f->dbi[DB_WEBHOOKS], &k, &v);
    if (rv != 0) {
        return rv == MDB_NOTFOUND ? ERR_NOTFOUND
                                  : fsm__lmdb_error(f, rv, "get webhook");
    }
    return fsm_webhook_decode(v.mv_data, v.mv_size, w) == 0 ? 0 : ERR_CORRUPT;
}

static int put_hook(struct fsm *f, MDB_txn *txn, const struct fsm_webhook *w)
{
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    void *buf;
    size_t len;
    int rv = fsm_webhook_encode(w, &buf, &len);
    if (rv != 0) {
        return rv;
    }
    fsm__put_be64(kb, w->id);
    v.mv_size = len;
    v.mv_data = buf;
    rv = mdb_put(txn, f->dbi[DB_WEBHOOKS], &k, &v, 0);
    free(buf);
    return rv == 0 ? 0 : fsm__lmdb_error(f, rv, "put webhook");
}

static int put_delivery(struct fsm *f,
                        MDB_txn *txn,
                        const struct fsm_delivery *d)
{
    unsigned char kb[KEY_LEN];
    MDB_val k = {KEY_LEN, kb}, v;
    void *buf;
    size_t len;
    int rv = fsm__delivery_encode(d, &buf, &len);
    if (rv != 0) {
        return rv;
    }
    delivery_key(kb, d->webhook, d->key);
    v.mv_size = len;
    v.mv_data = buf;
    rv = mdb_put(txn, f->dbi[DB_DELIVERIES], &k, &v, 0);
    free(buf);
    return rv == 0 ? 0 : fsm__lmdb_error(f, rv, "put delivery");
}

/* Is @name in the comma-separated @list? */
static bool in_list(struct fsm_str list, struct fsm_str name)
{
    const char *p = list.p, *end = list.p + list.len;
    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        size_t n = (size_t)((c != NULL ? c : end) - p);
        if (n == name.len && memcmp(p, name.p, n) == 0) {
            return true;
        }
        p += n + 1;
    }
    return false;
}

static bool hook_matches(const struct fsm_webhook *w, const struct fsm_event *e)
{
    bool jobish =
        e->kind <= FSM_EV_JOB_CANCELLED || e->kind >= FSM_EV_SCHEDULE_FIRED;
    if (!(w->events & (1u << e->kind))) {
        return false;
    }
    if (w->queues.len == 0) {
        return true;
    }
    struct fsm_str q = e->queue;
    if (q.len == 0) {
        q.p = "default";
        q.len = 7;
    }
    return jobish && in_list(w->queues, q);
}

/* ---- Deliveries of an entry's events --------------------------------- */

struct hooks
{
    struct fsm_webhook w[FSM_MAX_WEBHOOKS];
    char *mem[FSM_MAX_WEBHOOKS]; /* Copies of the records. */
    unsigned n;
    bool dirty[FSM_MAX_WEBHOOKS];
};

static int load_hooks(struct fsm *f, MDB_txn *txn, struct hooks *h)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rv = mdb_cursor_open(txn, f->dbi[DB_WEBHOOKS], &cur);
    if (rv != 0) {
        return fsm__lmdb_error(f, rv, "cursor");
    }
    for (rv = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rv == 0 && h->n < FSM_MAX_WEBHOOKS;
         rv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        /* A copy: the puts below move LMDB's pages. */
        h->mem[h->n] = malloc(v.mv_size);
        if (h->mem[h->n] == NULL) {
            mdb_cursor_close(cur);
            return ERR_NOMEM;
        }
        memcpy(h->mem[h->n], v.mv_data, v.mv_size);
        if (fsm_webhook_decode(h->mem[h->n], v.mv_size, &h->w[h->n]) != 0) {
            free(h->mem[h->n]);
            continue; /* Not ours to judge here: skipped everywhere. */
        }
        h->n++;
    }
    mdb_cursor_close(cur);
    return rv == MDB_NOTFOUND || rv == 0 ? 0 : fsm__lmdb_error(f, rv, "cursor");
}

static struct fsm_event event_at(const struct fsm *f, size_t i)
{
    struct fsm_event e = f->ev[i];
    e.type.p = f->ev_strs + (uintptr_t)e.type.p;
    e.queue.p = f->ev_strs + (uintptr_t)e.queue.p;
    e.name.p = f->ev_strs + (uintptr_t)e.name.p;
    e.error.p = f->ev_strs + (uintptr_t)e.error.p;
    return e;
}

int fsm__webhooks_deliver(struct fsm *f, MDB_txn *txn, uint64_t index)
{
    struct hooks *h;
    MDB_stat st;
    int rv;

    if (f->n_ev == 0 || mdb_stat(txn, f->dbi[DB_WEBHOOKS], &st) != 0 ||
        st.ms_entries == 0) {
        return 0;
    }
    h = calloc(1, sizeof *h);
    if (h == NULL) {
        return ERR_NOMEM;
    }
    rv = load_hooks(f, txn, h);
    for (size_t i = 0; rv == 0 && i < f->n_ev && i < (1u << POS_BITS); i++) {
        struct fsm_event e = event_at(f, i);
        for (unsigned j = 0; rv == 0 && j < h->n; j++) {
            struct fsm_webhook *w = &h->w[j];
            if (!hook_matches(w, &e)) {
                continue;
            }
            h->dirty[j] = true;
            if (w->pending >= FSM_MAX_DELIVERIES) {
                w->dropped++;
                continue;
            }
            struct fsm_delivery d;
            memset(&d, 0, sizeof d);
            d.webhook = w->id;
            d.key = (index << POS_BITS) | i;
            d.ev = e;
            d.ev.at = f->ev_now;
            rv = put_delivery(f, txn, &d);
            w->pending++;
        }
    }
    for (unsigned j = 0; j < h->n; j++) {
        if (rv == 0 && h->dirty[j]) {
            rv = put_hook(f, txn, &h->w[j]);
        }
        free(h->mem[j]);
    }
    free(h);
    return rv;
}

/* ---- Commands ---------------------------------------------------------- */

static bool url_ok(struct fsm_str u)
{
    return u.len > 8 && u.len <= FSM_WEBHOOK_URL_MAX &&
           ((u.len > 7 && memcmp(u.p, "http://", 7) == 0) ||
            memcmp(u.p, "https://", 8) == 0) &&
           memchr(u.p, '\0', u.len) == NULL;
}

static int apply_set(struct apply_ctx *a, const struct fsm_cmd *cmd)
{
    struct fsm_webhook w = cmd->webhook;
    MDB_stat st;

    if (!url_ok(w.url)) {
        return fsm__reject(a, ERR_INVALID, "url",
                           "an http:// or https:// URL of at most %d bytes",
                           FSM_WEBHOOK_URL_MAX);
    }
    if (w.events == 0 || (w.events & ~((2u << FSM_EV_MAX) - 2)) != 0) {
        return fsm__reject(a, ERR_INVALID, "events",
                           "at least one known event");
    }
    if (w.secret.len > MAX_SECRET || w.queues.len > MAX_QUEUES) {
        return fsm__reject(a, ERR_INVALID,
                           w.secret.len > MAX_SECRET ? "secret" : "queues",
                           "too long (secret %d, queues %d bytes at most)",
                           MAX_SECRET, MAX_QUEUES);
    }
    int rv = mdb_stat(a->txn, a->f->dbi[DB_WEBHOOKS], &st);
    if (rv != 0) {
        return fsm__storage(a, fsm__lmdb_error(a->f, rv, "stat"));
    }
    if (st.ms_entries >= FSM_MAX_WEBHOOKS) {
        return fsm__reject(a, ERR_TOOLARGE, NULL,
                           "a cluster has at most %d webhooks",
                           FSM_MAX_WEBHOOKS);
    }
    if (a->seq >= (1u << FSM_ID_SHIFT)) {
        return fsm__reject(a, ERR_TOOLARGE, NULL, "too many ids in one entry");
    }
    w.id = (a->index << FSM_ID_SHIFT) | a->seq++;
    w.created_at = a->now;
    w.pending = 0;
    w.delivered = w.expired = w.dropped = 0;
    rv = put_hook(a->f, a->txn, &w);
    return rv != 0 ? fsm__storage(a, rv) : fsm__add_id(a, w.id, 0);
}

static int apply_del(struct apply_ctx *a, const struct fsm_cmd *cmd)
{
    struct fsm_webhook w;
    unsigned char kb[KEY_LEN];
    MDB_val k = {8, kb}, v;
    MDB_cursor *cur;
    int rv = get_hook(a->f, a->txn, cmd->id, &w);

    if (rv == ERR_NOTFOUND) {
        return fsm__reject(a, ERR_NOTFOUND, "id", "no webhook %016llx",
                           (unsigned long long)cmd->id);
    }
    if (rv != 0) {
        return fsm__storage(a, rv);
    }
    fsm__put_be64(kb, cmd->id);
    rv = mdb_del(a->txn, a->f->dbi[DB_WEBHOOKS], &k, NULL);
    if (rv == 0) {
        rv = mdb_cursor_open(a->txn, a->f->dbi[DB_DELIVERIES], &cur);
    }
    if (rv != 0) {
        return fsm__storage(a, fsm__lmdb_error(a->f, rv, "del webhook"));
    }
    for (;;) { /* Each time from the first delivery left. */
        delivery_key(kb, cmd->id, 0);
        k.mv_size = KEY_LEN;
        k.mv_data = kb;
        rv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rv != 0 || k.mv_size != KEY_LEN ||
            fsm__get_be64(k.mv_data) != cmd->id) {
            break;
        }
        rv = mdb_cursor_del(cur, 0);
        if (rv != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    if (rv != 0 && rv != MDB_NOTFOUND) {
        return fsm__storage(a, fsm__lmdb_error(a->f, rv, "del deliveries"));
    }
    return fsm__add_id(a, cmd->id, 0);
}

/* One outcome: delivered (gone), expired (gone), or a failed try. */
static int delivery_item(struct apply_ctx *a, const struct fsm_item *it)
{
    struct fsm_webhook w;
    struct fsm_delivery d;
    unsigned char kb[KEY_LEN];
    MDB_val k = {KEY_LEN, kb}, v;
    char *copy;
    int rv = get_hook(a->f, a->txn, it->job_id, &w);

    if (rv == ERR_NOTFOUND) {
        return FSM_ITEM_NOTFOUND;
    }
    if (rv != 0) {
        fsm__storage(a, rv);
        return -1;
    }
    delivery_key(kb, it->job_id, it->token);
    rv = mdb_get(a->txn, a->f->dbi[DB_DELIVERIES], &k, &v);
    if (rv == MDB_NOTFOUND) {
        return FSM_ITEM_STALE; /* Reported already (a second leader). */
    }
    if (rv != 0) {
        fsm__storage(a, fsm__lmdb_error(a->f, rv, "get delivery"));
        return -1;
    }
    if (it->ok || it->action == FSM_DELIVERY_EXPIRE) {
        rv = mdb_del(a->txn, a->f->dbi[DB_DELIVERIES], &k, NULL);
        w.pending -= w.pending > 0 ? 1 : 0;
        if (it->ok) {
            w.delivered++;
        } else {
            w.expired++;
        }
        if (rv == 0) {
            rv = put_hook(a->f, a->txn, &w);
        }
        return rv == 0 ? FSM_ITEM_OK : (fsm__storage(a, rv), -1);
    }
    copy = malloc(v.mv_size);
    if (copy == NULL) {
        fsm__storage(a, ERR_NOMEM);
        return -1;
    }
    memcpy(copy, v.mv_data, v.mv_size);
    if (fsm__delivery_decode(copy, v.mv_size, &d) != 0) {
        free(copy);
        return FSM_ITEM_SKIPPED;
    }
    d.webhook = it->job_id;
    d.key = it->token;
    d.tries++;
    d.next_at = it->retry_at;
    d.last_status = it->exit_code;
    d.last_at = a->now;
    d.last_error = it->error;
    if (d.last_error.len > MAX_LAST_ERROR) {
        d.last_error.len = MAX_LAST_ERROR;
    }
    rv = put_delivery(a->f, a->txn, &d);
    free(copy);
    return rv == 0 ? FSM_ITEM_OK : (fsm__storage(a, rv), -1);
}

int fsm__apply_webhook(struct apply_ctx *a, const struct fsm_cmd *cmd)
{
    if (cmd->type == FSM_CMD_WEBHOOK_SET) {
        return apply_set(a, cmd);
    }
    if (cmd->type == FSM_CMD_WEBHOOK_DEL) {
        return apply_del(a, cmd);
    }
    for (uint32_t i = 0; i < cmd->n_items; i++) {
        int outcome = delivery_item(a, &cmd->items[i]);
        if (outcome < 0) {
            return a->storage;
        }
        int rv = fsm__add_id(a, cmd->items[i].job_id, (uint8_t)outcome);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* ---- Reads ------------------------------------------------------------- */

int fsm_webhooks(struct fsm_reader *rd, fsm_webhook_cb cb, void *data)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rv = mdb_cursor_open(rd->txn, rd->f->dbi[DB_WEBHOOKS], &cur);
    if (rv != 0) {
        return fsm__lmdb_error(rd->f, rv, "cursor");
    }
    for (rv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rv == 0;
         rv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct fsm_webhook w;
        if (fsm_webhook_decode(v.mv_data, v.mv_size, &w) == 0 &&
            cb(data, &w) != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    return 0;
}

int fsm_webhook_get(struct fsm_reader *rd, uint64_t id, struct fsm_webhook *w)
{
    return get_hook(rd->f, rd->txn, id, w);
}

int fsm_deliveries(struct fsm_reader *rd,
                   uint64_t webhook,
                   uint64_t after,
                   fsm_delivery_cb cb,
                   void *data)
{
    unsigned char kb[KEY_LEN];
    MDB_val k = {KEY_LEN, kb}, v;
    MDB_cursor *cur;
    int rv = mdb_cursor_open(rd->txn, rd->f->dbi[DB_DELIVERIES], &cur);
    if (rv != 0) {
        return fsm__lmdb_error(rd->f, rv, "cursor");
    }
    delivery_key(kb, webhook, after + 1);
    for (rv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rv == 0 && k.mv_size == KEY_LEN && fsm__get_be64(k.mv_data) == webhook;
         rv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct fsm_delivery d;
        if (fsm__delivery_decode(v.mv_data, v.mv_size, &d) != 0) {
            continue;
        }
        d.webhook = webhook;
        d.key = fsm__get_be64((const unsigned char *)k.mv_data + 8);
        d.ev.index = d.key >> POS_BITS;
        d.ev.pos = (uint32_t)(d.key & ((1u << POS_BITS) - 1));
        if (cb(data, &d) != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    return 0;
}
