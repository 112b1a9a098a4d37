/* Running jobs per worker and per concurrency key, in leader memory: the
 * dispatcher's capacity and key limits without a pass over running jobs
 * per round. Kept as entries apply (fsm_watch_running, after each entry
 * commits), rebuilt from one pass when a node becomes leader or after a
 * snapshot restore.
 *
 * One open-addressing table (linear probing, backward-shift deletion)
 * keyed by a tagged byte string: 'w' + the worker id, or 'k' + the key.
 * A count that drops to zero leaves the table, so it holds only what
 * runs now. */

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sched/internal.h"

struct count_slot
{
    char *key; /* NULL: empty. */
    uint32_t len;
    uint64_t hash;
    unsigned n;
};

static uint64_t hash_of(const char *k, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)k[i]) * 1099511628211ULL;
    }
    return h;
}

void sched__counts_init(struct counts *c)
{
    memset(c, 0, sizeof *c);
}

static void clear(struct counts *c)
{
    for (size_t i = 0; i < c->cap; i++) {
        free(c->slots[i].key);
    }
    if (c->slots != NULL) {
        memset(c->slots, 0, c->cap * sizeof *c->slots);
    }
    c->used = 0;
}

void sched__counts_free(struct counts *c)
{
    clear(c);
    free(c->slots);
    memset(c, 0, sizeof *c);
}

static struct count_slot *find(const struct counts *c,
                               const char *k,
                               uint32_t len,
                               uint64_t h)
{
    if (c->cap == 0) {
        return NULL;
    }
    for (size_t i = h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        struct count_slot *s = &c->slots[i];
        if (s->key == NULL) {
            return s;
        }
        if (s->hash == h && s->len == len && memcmp(s->key, k, len) == 0) {
            return s;
        }
    }
}

static int grow(struct counts *c)
{
    size_t cap = c->cap > 0 ? c->cap * 2 : 64;
    struct count_slot *old = c->slots, *slots = calloc(cap, sizeof *slots);
    size_t old_cap = c->cap;
    if (slots == NULL) {
        return ERR_NOMEM;
    }
    c->slots = slots;
    c->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].key != NULL) {
            *find(c, old[i].key, old[i].len, old[i].hash) = old[i];
        }
    }
    free(old);
    return 0;
}

/* Backward-shift deletion keeps every probe chain unbroken. */
static void remove_slot(struct counts *c, struct count_slot *s)
{
    size_t i = (size_t)(s - c->slots), j = i;
    free(s->key);
    c->slots[i].key = NULL;
    c->used--;
    for (;;) {
        j = (j + 1) & (c->cap - 1);
        struct count_slot *t = &c->slots[j];
        if (t->key == NULL) {
            return;
        }
        size_t home = t->hash & (c->cap - 1);
        /* Move t into the hole at i if its home is not in (i, j]. */
        if ((j > i && (home <= i || home > j)) ||
            (j < i && (home <= i && home > j))) {
            c->slots[i] = *t;
            t->key = NULL;
            i = j;
        }
    }
}

static void add(struct counts *c, const char *k, uint32_t len, int delta)
{
    uint64_t h = hash_of(k, len);
    struct count_slot *s = find(c, k, len, h);

    if (s != NULL && s->key != NULL) {
        if (delta < 0 && s->n <= (unsigned)-delta) {
            remove_slot(c, s);
        } else {
            s->n += (unsigned)delta;
        }
        return;
    }
    if (delta <= 0) {
        return; /* Never counted here (e.g. rebuilt since). */
    }
    if ((c->used + 1) * 4 > c->cap * 3) {
        if (grow(c) != 0) {
            return;
        }
        s = find(c, k, len, h);
    }
    s->key = malloc(len > 0 ? len : 1);
    if (s->key == NULL) {
        return;
    }
    memcpy(s->key, k, len);
    s->len = len;
    s->hash = h;
    s->n = (unsigned)delta;
    c->used++;
}

static unsigned get(const struct counts *c, const char *k, uint32_t len)
{
    struct count_slot *s = find(c, k, len, hash_of(k, len));
    return s != NULL && s->key != NULL ? s->n : 0;
}

static uint32_t worker_key(char *buf, uint64_t worker)
{
    buf[0] = 'w';
    memcpy(buf + 1, &worker, 8);
    return 9;
}

static uint32_t ckey_key(char *buf, struct fsm_str key)
{
    buf[0] = 'k';
    memcpy(buf + 1, key.p, key.len);
    return key.len + 1;
}

void sched__counts_add(struct counts *c,
                       uint64_t worker,
                       struct fsm_str key,
                       int delta)
{
    char buf[FSM_MAX_STR + 9];
    add(c, buf, worker_key(buf, worker), delta);
    if (key.len > 0 && key.len <= FSM_MAX_STR) {
        add(c, buf, ckey_key(buf, key), delta);
    }
}

unsigned sched__counts_worker(const struct counts *c, uint64_t worker)
{
    char buf[9];
    return get(c, buf, worker_key(buf, worker));
}

unsigned sched__counts_key(const struct counts *c, struct fsm_str key)
{
    char buf[FSM_MAX_STR + 1];
    if (key.len == 0 || key.len > FSM_MAX_STR) {
        return 0;
    }
    return get(c, buf, ckey_key(buf, key));
}

void sched__counts_watch(void *data,
                         uint64_t worker,
                         struct fsm_str key,
                         int delta)
{
    sched__counts_add(data, worker, key, delta);
}

static int rebuild_cb(void *data, const struct fsm_job *job)
{
    sched__counts_add(data, job->worker_id, job->ckey, +1);
    return 0;
}

int sched__counts_rebuild(struct counts *c, struct fsm *f)
{
    struct fsm_reader *rd;
    int rv = fsm_read_begin(f, &rd);
    if (rv != 0) {
        return rv;
    }
    clear(c);
    c->restores = fsm_restores(f);
    rv = fsm_running(rd, rebuild_cb, c);
    fsm_read_end(rd);
    return rv;
}
