/* Token buckets for per-token request rates (ratelimit.h). Integer
 * arithmetic: a request is RL_UNIT units, a rate of r/s refills r * 1000
 * units a millisecond, so rates down to 0.001/s are exact and nothing
 * drifts. The table is a sorted array (binary search): it holds only the
 * buckets in use, and one is added at most once per token per burst/rate
 * seconds. Allocation failure is reported (-1), never fatal. */

#include "http/ratelimit.h"

#include <stdlib.h>
#include <string.h>

static int64_t capacity(const struct rl_bucket *b)
{
    return (int64_t)b->lim.burst * RL_UNIT;
}

/* The level @b would have at @now_ms. */
static int64_t level_at(const struct rl_bucket *b, int64_t now_ms)
{
    int64_t cap = capacity(b), need = cap - b->level;
    uint64_t dt;

    if (need <= 0 || now_ms <= b->last_ms || b->lim.rate_milli == 0) {
        return b->level < cap ? b->level : cap;
    }
    dt = (uint64_t)(now_ms - b->last_ms);
    /* dt * rate >= need, without overflow. */
    if (dt > (uint64_t)need / b->lim.rate_milli) {
        return cap;
    }
    return b->level + (int64_t)(dt * b->lim.rate_milli);
}

int64_t rl_bucket_take(struct rl_bucket *b, int64_t now_ms)
{
    int64_t missing;

    b->level = level_at(b, now_ms);
    b->last_ms = now_ms; /* Also when the clock went back. */
    if (b->level >= RL_UNIT) {
        b->level -= RL_UNIT;
        return 0;
    }
    if (b->lim.rate_milli == 0) {
        return INT64_MAX;
    }
    missing = RL_UNIT - b->level;
    return (int64_t)(((uint64_t)missing + b->lim.rate_milli - 1) /
                     b->lim.rate_milli);
}

bool rl_bucket_full(const struct rl_bucket *b, int64_t now_ms)
{
    return level_at(b, now_ms) >= capacity(b);
}

int64_t rl_retry_after_s(int64_t wait_ms)
{
    int64_t s = wait_ms / 1000 + (wait_ms % 1000 != 0);
    return s < 1 ? 1 : s;
}

static int cmp(const struct rl_bucket *b, const void *owner, uint64_t id)
{
    if ((uintptr_t)b->owner != (uintptr_t)owner) {
        return (uintptr_t)b->owner < (uintptr_t)owner ? -1 : 1;
    }
    return b->id < id ? -1 : b->id > id;
}

/* The index of (@owner, @id), or where it would go (*found false). */
static size_t find(const struct rl_table *t,
                   const void *owner,
                   uint64_t id,
                   bool *found)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp(&t->v[mid], owner, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = false;
    return lo;
}

int64_t rl_take(struct rl_table *t,
                const void *owner,
                uint64_t id,
                struct rl_limit lim,
                int64_t now_ms)
{
    bool found;
    size_t i = find(t, owner, id, &found);
    struct rl_bucket *b;

    if (!found) {
        if (t->n == t->cap) {
            size_t cap = t->cap > 0 ? 2 * t->cap : 16;
            void *v = realloc(t->v, cap * sizeof *t->v);
            if (v == NULL) {
                return -1;
            }
            t->v = v;
            t->cap = cap;
        }
        memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof *t->v);
        t->n++;
        b = &t->v[i];
        memset(b, 0, sizeof *b);
        b->owner = owner;
        b->id = id;
        b->lim = lim;
        b->level = capacity(b); /* No bucket: a full one. */
        b->last_ms = now_ms;
    }
    b = &t->v[i];
    b->lim = lim; /* Tokens do not change; if they did, the new limit. */
    if (b->level > capacity(b)) {
        b->level = capacity(b);
    }
    return rl_bucket_take(b, now_ms);
}

void rl_forget(struct rl_table *t, const void *owner, uint64_t id)
{
    bool found;
    size_t i = find(t, owner, id, &found);
    if (found) {
        memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof *t->v);
        t->n--;
    }
}

bool rl_sweep_due(const struct rl_table *t, int64_t now_ms)
{
    return now_ms - t->swept_at >= RL_SWEEP_MS || now_ms < t->swept_at;
}

void rl_sweep(struct rl_table *t,
              const void *owner,
              int64_t now_ms,
              rl_live_fn live,
              void *data)
{
    size_t w = 0;
    for (size_t r = 0; r < t->n; r++) {
        const struct rl_bucket *b = &t->v[r];
        if (b->owner != owner || (!rl_bucket_full(b, now_ms) &&
                                  (live == NULL || live(data, b->id)))) {
            t->v[w++] = *b;
        }
    }
    t->n = w;
    t->swept_at = now_ms;
    if (t->n == 0) {
        rl_clear(t);
        t->swept_at = now_ms;
    }
}

void rl_clear(struct rl_table *t)
{
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}
