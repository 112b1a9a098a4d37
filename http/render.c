/* Rendering job records as JSON text directly (no jansson tree): the spec
 * is stored as canonical JSON and spliced in as is. This is the hot path of
 * every answer that carries jobs. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"

void http__sb_init(struct sb *b, h2o_mem_pool_t *pool)
{
    b->pool = pool;
    b->cap = 4096;
    b->p = h2o_mem_alloc_pool(pool, b->cap);
    b->len = 0;
}

/* Move what is written into a new allocation of @cap bytes. */
static void move_to(struct sb *b, size_t cap)
{
    char *p = h2o_mem_alloc_pool(b->pool, cap);
    memcpy(p, b->p, b->len);
    b->p = p;
    b->cap = cap;
}

static void grow(struct sb *b, size_t n)
{
    if (b->len + n <= b->cap) {
        return;
    }
    size_t cap = b->cap * 2;
    while (cap < b->len + n) {
        cap *= 2;
    }
    move_to(b, cap);
}

/* The most http__sb_reserve_records() takes at once: a guess from a big
 * first record must not reserve for a thousand more like it. */
#define RESERVE_MAX ((size_t)4 << 20)

void http__sb_reserve_records(struct sb *b, size_t more)
{
    size_t per = b->len + 8; /* The first record, a comma, some slack. */
    size_t n = more > RESERVE_MAX / per ? RESERVE_MAX : more * per + 64;
    n = n < RESERVE_MAX ? n : RESERVE_MAX;
    if (more > 0 && b->len + n > b->cap) {
        move_to(b, b->len + n);
    }
}

void http__sb_put(struct sb *b, const char *s, size_t n)
{
    grow(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void http__sb_puts(struct sb *b, const char *s)
{
    http__sb_put(b, s, strlen(s));
}

void http__sb_printf(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    grow(b, 64);
    va_start(ap, fmt);
    n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if ((size_t)n >= b->cap - b->len) {
        grow(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* A JSON string literal of @n bytes of UTF-8 text. */
static void put_string(struct sb *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    grow(b, n + 2);
    b->p[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            http__sb_put(b, esc, 2);
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            http__sb_put(b, esc, 6);
        } else {
            grow(b, 1);
            b->p[b->len++] = (char)c;
        }
    }
    grow(b, 1);
    b->p[b->len++] = '"';
}

void http__sb_json_str(struct sb *b, struct fsm_str s)
{
    put_string(b, s.p != NULL ? s.p : "", s.len);
}

/* The members below are appended without printf: a job's answer has a
 * dozen of them, and vfprintf was the leader's largest libc cost. */

/* ,"key": */
static void put_key(struct sb *b, const char *key)
{
    size_t n = strlen(key);
    grow(b, n + 4);
    b->p[b->len++] = ',';
    b->p[b->len++] = '"';
    memcpy(b->p + b->len, key, n);
    b->len += n;
    b->p[b->len++] = '"';
    b->p[b->len++] = ':';
}

void http__sb_u64(struct sb *b, unsigned long long v)
{
    char t[24];
    size_t i = sizeof t;
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    http__sb_put(b, t + i, sizeof t - i);
}

static void put_i64(struct sb *b, long long v)
{
    if (v < 0) {
        http__sb_put(b, "-", 1);
        http__sb_u64(b, 0ULL - (unsigned long long)v);
    } else {
        http__sb_u64(b, (unsigned long long)v);
    }
}

/* "0123456789abcdef": an id as the API spells it (%016llx, quoted). */
void http__sb_id(struct sb *b, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    grow(b, 18);
    b->p[b->len] = '"';
    for (int i = 15; i >= 0; i--) {
        b->p[b->len + 1 + (size_t)i] = hex[v & 15];
        v >>= 4;
    }
    b->p[b->len + 17] = '"';
    b->len += 18;
}

static void put_field_str(struct sb *b, const char *key, struct fsm_str s)
{
    put_key(b, key);
    put_string(b, s.p != NULL ? s.p : "", s.len);
}

/* ,"key":"text", or ,"key":null for an empty string. */
static void put_str_or_null(struct sb *b, const char *key, struct fsm_str s)
{
    if (s.len == 0) {
        put_key(b, key);
        http__sb_puts(b, "null");
    } else {
        put_field_str(b, key, s);
    }
}

static void put_time(struct sb *b, const char *key, int64_t ms, bool or_null)
{
    char buf[40];
    if (ms == 0) {
        if (or_null) {
            put_key(b, key);
            http__sb_puts(b, "null");
        }
        return;
    }
    http__format_time(ms, buf, sizeof buf);
    put_key(b, key);
    http__sb_put(b, "\"", 1);
    http__sb_puts(b, buf);
    http__sb_put(b, "\"", 1);
}

/* The members that say what to run: the first ones of a job record, and
 * all of a compact lease's job (docs/api.md, Workers). Leaves the object
 * open. @status: with the job's status after "type". */
static void write_what(struct sb *b, const struct fsm_job *job, bool status)
{
    http__sb_puts(b, "{\"id\":");
    http__sb_id(b, job->id);
    put_field_str(b, "type", job->type);
    if (status) {
        const char *name = fsm_status_name(job->status);
        http__sb_puts(b, ",\"status\":\"");
        http__sb_puts(b, name ? name : "unknown");
        http__sb_put(b, "\"", 1);
    }
    put_field_str(b, "queue", job->queue);
    http__sb_puts(b, ",\"priority\":");
    put_i64(b, job->priority);
    http__sb_puts(b, ",\"attempts\":");
    http__sb_u64(b, job->attempts);
    http__sb_puts(b, ",\"max_attempts\":");
    http__sb_u64(b, job->max_attempts);
    if (job->user_id.len > 0) {
        put_field_str(b, "user_id", job->user_id);
    }
    /* The spec is a JSON object written by jansson (payload, name, tags,
     * backoff, schedule, timezone): splice its members in. */
    if (job->spec.len > 2 && job->spec.p[0] == '{' &&
        job->spec.p[job->spec.len - 1] == '}') {
        http__sb_put(b, ",", 1);
        http__sb_put(b, job->spec.p + 1, job->spec.len - 2);
    } else {
        http__sb_puts(b, ",\"payload\":{}");
    }
    if (job->timeout_ms > 0) {
        if (job->timeout_ms % 1000 != 0) {
            http__sb_printf(b, ",\"timeout\":\"%lldms\"",
                            (long long)job->timeout_ms);
        } else {
            http__sb_printf(b, ",\"timeout\":\"%llds\"",
                            (long long)(job->timeout_ms / 1000));
        }
    }
}

void http__job_write_run(struct sb *b, const struct fsm_job *job)
{
    write_what(b, job, false);
    http__sb_put(b, "}", 1);
}

void http__job_write(struct sb *b, const struct fsm_job *job)
{
    write_what(b, job, true);
    if (job->flags & FSM_JOB_RECURRING) {
        /* A schedule: run_at is its next occurrence (none while paused). */
        http__sb_printf(b, ",\"recurring\":true,\"paused\":%s",
                        job->flags & FSM_JOB_PAUSED ? "true" : "false");
        if (job->status == FSM_SCHEDULED && job->run_at != FSM_NEVER) {
            put_time(b, "next_run_at", job->run_at, false);
        } else {
            http__sb_puts(b, ",\"next_run_at\":null");
        }
        if (job->last_run != 0) {
            http__sb_printf(b, ",\"last_run_id\":\"%016llx\"",
                            (unsigned long long)job->last_run);
        }
    } else {
        put_time(b, "run_at", job->run_at, false);
    }
    if (job->flags & FSM_JOB_RUN) {
        http__sb_printf(b, ",\"schedule_id\":\"%016llx\"",
                        (unsigned long long)job->parent);
        put_time(b, "nominal_at", job->nominal_at, true);
    }
    if (job->flags & FSM_JOB_WORKFLOW) {
        http__sb_printf(b, ",\"workflow_id\":\"%016llx\"",
                        (unsigned long long)job->parent);
    }
    if (job->flags & FSM_JOB_ALL_DONE) {
        http__sb_puts(b, ",\"trigger\":\"all_done\"");
    }
    if (job->ckey.len > 0) {
        put_field_str(b, "concurrency_key", job->ckey);
        http__sb_printf(b, ",\"concurrency_limit\":%u", job->ckey_limit);
    }
    if (job->n_deps > 0) {
        http__sb_puts(b, ",\"depends_on\":[");
        for (uint32_t i = 0; i < job->n_deps; i++) {
            uint64_t d;
            memcpy(&d, &job->deps[i], sizeof d);
            http__sb_printf(b, "%s\"%016llx\"", i > 0 ? "," : "",
                            (unsigned long long)d);
        }
        http__sb_puts(b, "]");
    }
    if (job->idem_key.len > 0) {
        put_field_str(b, "idempotency_key", job->idem_key);
    }
    if (job->worker_id != 0) {
        http__sb_puts(b, ",\"worker_id\":");
        http__sb_id(b, job->worker_id);
    }
    if (job->lease_token != 0) {
        http__sb_puts(b, ",\"lease_token\":");
        http__sb_u64(b, job->lease_token);
    }
    if (job->started_at != 0 || job->exit_code != 0) {
        http__sb_puts(b, ",\"exit_code\":");
        put_i64(b, job->exit_code);
    }
    if (job->output.len > 0) {
        put_field_str(b, "output", job->output);
    }
    if (job->history.len > 0) {
        static const char *const outcomes[] = {"unknown", "completed", "failed",
                                               "lost", "cancelled"};
        struct fsm_str h = job->history;
        struct fsm_attempt at;
        unsigned n = 0;
        http__sb_puts(b, ",\"history\":[");
        while (fsm_attempt_next(&h, &at) == 1) {
            http__sb_printf(b,
                            "%s{\"attempt\":%u,\"outcome\":\"%s\","
                            "\"worker_id\":\"%016llx\",\"lease_token\":%llu,"
                            "\"exit_code\":%d",
                            n++ ? "," : "", at.number,
                            outcomes[at.outcome <= 4 ? at.outcome : 0],
                            (unsigned long long)at.worker_id,
                            (unsigned long long)at.token, at.exit_code);
            put_str_or_null(b, "worker_name", at.worker_name);
            put_str_or_null(b, "worker_host", at.worker_host);
            put_time(b, "started_at", at.started_at, true);
            put_time(b, "finished_at", at.finished_at, true);
            if (at.error.len > 0) {
                put_field_str(b, "error", at.error);
            }
            if (at.output.len > 0) {
                put_field_str(b, "output", at.output);
            }
            http__sb_puts(b, "}");
        }
        http__sb_puts(b, "]");
    }
    put_time(b, "created_at", job->created_at, true);
    put_time(b, "updated_at", job->updated_at, true);
    put_time(b, "started_at", job->started_at, true);
    put_time(b, "finished_at", job->finished_at, true);
    if (job->last_error.len > 0) {
        put_field_str(b, "last_error", job->last_error);
    } else {
        http__sb_puts(b, ",\"last_error\":null");
    }
    http__sb_puts(b, ",\"result\":");
    if (job->result.len > 0) {
        http__sb_put(b, job->result.p, job->result.len); /* Stored JSON. */
    } else {
        http__sb_puts(b, "null");
    }
    http__sb_puts(b, "}");
}

void http__send_sb(h2o_req_t *req, int status, struct sb *b, uint64_t index)
{
    if (index != 0) {
        char *v = h2o_mem_alloc_pool(&req->pool, 24);
        int n = snprintf(v, 24, "%llu", (unsigned long long)index);
        h2o_add_header_by_str(&req->pool, &req->res.headers,
                              H2O_STRLIT("x-rota-index"), 0, NULL, v,
                              (size_t)n);
    }
    http__sb_put(b, "\n", 1);
    http__send_text(req, status, "application/json", b->p, b->len);
}
