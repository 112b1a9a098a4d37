#ifndef HTTP_RATELIMIT_H_
#define HTTP_RATELIMIT_H_

/* Per-token request rates (docs/security.md, Request rates): one token
 * bucket per (server, token id), in memory, per node. Pure arithmetic on
 * the time it is given (the API's clock, sched_now): no clock is read
 * here, so tests drive it on virtual time (tests/unit/http/
 * test_ratelimit.c). No h2o, no fsm: the glue is in acl.c. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One request, in bucket units: a rate of r requests a second adds
 * r * 1000 units (rate_milli) a millisecond. */
#define RL_UNIT 1000000
/* How often (API clock) rl_sweep_due says a sweep is due. */
#define RL_SWEEP_MS 10000

struct rl_limit
{
    uint64_t rate_milli; /* Requests per 1000 s; > 0. */
    uint32_t burst;      /* Bucket size in requests; >= 1. */
};

struct rl_bucket
{
    const void *owner; /* The server: several can share a process. */
    uint64_t id;       /* The token. */
    int64_t level;     /* Units available, 0..burst * RL_UNIT. */
    int64_t last_ms;   /* When level was last brought up to date. */
    struct rl_limit lim;
};

/* Buckets sorted by (owner, id). A full bucket is the same as none, so a
 * sweep drops full ones and those of deleted tokens: the table holds at
 * most the tokens with a rate used within their last burst/rate seconds,
 * plus those deleted since the last sweep. */
struct rl_table
{
    struct rl_bucket *v;
    size_t n, cap;
    int64_t swept_at;
};

/* Bring @b up to @now_ms (a clock that went back adds nothing) and take
 * one request: 0, or the milliseconds until one is available (>= 1). */
int64_t rl_bucket_take(struct rl_bucket *b, int64_t now_ms);
/* Would @b be full at @now_ms? */
bool rl_bucket_full(const struct rl_bucket *b, int64_t now_ms);

/* Take one request of token @id under @lim at @now_ms: 0 (allowed), the
 * milliseconds to wait (refused), or -1 if a new bucket cannot be
 * allocated (the caller decides; acl.c allows the request). */
int64_t rl_take(struct rl_table *t,
                const void *owner,
                uint64_t id,
                struct rl_limit lim,
                int64_t now_ms);
/* Retry-After for a wait of @wait_ms: whole seconds, at least 1. */
int64_t rl_retry_after_s(int64_t wait_ms);
/* Drop the bucket of @id (the token was deleted). */
void rl_forget(struct rl_table *t, const void *owner, uint64_t id);

/* Is a sweep due at @now_ms (RL_SWEEP_MS since the last, or a clock that
 * went back)? */
bool rl_sweep_due(const struct rl_table *t, int64_t now_ms);
/* Drop @owner's buckets that are full at @now_ms or whose token @live
 * says is gone. */
typedef bool (*rl_live_fn)(void *data, uint64_t id);
void rl_sweep(struct rl_table *t,
              const void *owner,
              int64_t now_ms,
              rl_live_fn live,
              void *data);
/* Free every bucket. */
void rl_clear(struct rl_table *t);

#endif /* HTTP_RATELIMIT_H_ */
