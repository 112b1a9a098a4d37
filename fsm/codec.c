/* TLV codec for job records and commands.
 *
 * A record: version u8, then fields as (tag u16, len u32, bytes), all little
 * endian. Zero and empty fields are not written. Tags this version does not
 * know are kept (job->extra) and written back after the known ones, so a
 * newer node's fields survive an older node's update (rolling upgrades).
 * Decoding is bounds-checked everywhere: bad input is ERR_CORRUPT. */

#include <stdlib.h>
#include <string.h>

#include "fsm/internal.h"

#define CODEC_VERSION 1

enum {
    T_ID = 1,
    T_STATUS,
    T_PRIORITY,
    T_ATTEMPTS,
    T_MAX_ATTEMPTS,
    T_CREATED,
    T_UPDATED,
    T_RUN_AT,
    T_STARTED,
    T_FINISHED,
    T_TIMEOUT,
    T_TYPE,
    T_QUEUE,
    T_USER,
    T_IDEM,
    T_SPEC,
    T_LAST_ERROR,
    T_RESULT,
    T_DEPS,
    T_WORKER_ID,
    T_LEASE_TOKEN,
    T_EXIT_CODE,
    T_OUTPUT,
    T_HISTORY,
    T_FLAGS,
    T_PARENT,
    T_NOMINAL,
    T_LAST_RUN,
    T_CKEY,
    T_CKEY_LIMIT,
};

enum {
    A_NUMBER = 1,
    A_OUTCOME,
    A_WORKER,
    A_TOKEN,
    A_STARTED,
    A_FINISHED,
    A_EXIT_CODE,
    A_ERROR,
    A_OUTPUT,
};

enum {
    C_N_JOBS = 1,
    C_JOB,
    C_HASHES,
    C_ID,
    C_MASK,
    C_PATCH,
    C_NODE_ID,
    C_RAFT_ADDR,
    C_HTTP_ADDR,
    C_ITEM,
    C_WORKER,
    C_QUEUE_NAME,
    C_QUEUE_PAUSED,
    C_QUEUE_CONC,
    C_WORKFLOW,
};

enum {
    I_JOB = 1,
    I_WORKER,
    I_TOKEN,
    I_OK,
    I_RETRYABLE,
    I_EXIT_CODE,
    I_RETRY_AT,
    I_ERROR,
    I_OUTPUT,
    I_RESULT,
    I_NOMINAL,
    I_NEXT_AT,
    I_ACTION,
    I_SKIPPED,
};

enum {
    W_ID = 1,
    W_NAME,
    W_QUEUES,
    W_CONCURRENCY,
    W_REGISTERED,
    W_DOWN,
};

struct wbuf
{
    unsigned char *p;
    size_t len, cap;
    int err;
};

static void wreserve(struct wbuf *w, size_t n)
{
    if (w->err != 0 || w->len + n <= w->cap) {
        return;
    }
    size_t cap = w->cap == 0 ? 256 : w->cap;
    while (cap < w->len + n) {
        cap *= 2;
    }
    unsigned char *p = realloc(w->p, cap);
    if (p == NULL) {
        w->err = ERR_NOMEM;
        return;
    }
    w->p = p;
    w->cap = cap;
}

static void wbytes(struct wbuf *w, const void *data, size_t n)
{
    wreserve(w, n);
    if (w->err == 0 && n > 0) {
        memcpy(w->p + w->len, data, n);
        w->len += n;
    }
}

static void wle(struct wbuf *w, uint64_t v, unsigned n)
{
    unsigned char b[8];
    for (unsigned i = 0; i < n; i++) {
        b[i] = (unsigned char)(v >> (8 * i));
    }
    wbytes(w, b, n);
}

static void wtlv(struct wbuf *w, unsigned tag, const void *data, size_t n)
{
    if (n > UINT32_MAX) {
        w->err = ERR_INVALID;
        return;
    }
    wle(w, tag, 2);
    wle(w, n, 4);
    wbytes(w, data, n);
}

static void wnum(struct wbuf *w, unsigned tag, uint64_t v, unsigned n)
{
    if (v == 0) {
        return;
    }
    wle(w, tag, 2);
    wle(w, n, 4);
    wle(w, v, n);
}

static void wstr(struct wbuf *w, unsigned tag, struct fsm_str s)
{
    if (s.len > 0) {
        wtlv(w, tag, s.p, s.len);
    }
}

static uint64_t rle(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static void write_job(struct wbuf *w, const struct fsm_job *j)
{
    wle(w, CODEC_VERSION, 1);
    wnum(w, T_ID, j->id, 8);
    wnum(w, T_STATUS, j->status, 1);
    wnum(w, T_PRIORITY, (uint32_t)j->priority, 4);
    wnum(w, T_ATTEMPTS, j->attempts, 4);
    wnum(w, T_MAX_ATTEMPTS, j->max_attempts, 4);
    wnum(w, T_CREATED, (uint64_t)j->created_at, 8);
    wnum(w, T_UPDATED, (uint64_t)j->updated_at, 8);
    wnum(w, T_RUN_AT, (uint64_t)j->run_at, 8);
    wnum(w, T_STARTED, (uint64_t)j->started_at, 8);
    wnum(w, T_FINISHED, (uint64_t)j->finished_at, 8);
    wnum(w, T_TIMEOUT, (uint64_t)j->timeout_ms, 8);
    wstr(w, T_TYPE, j->type);
    wstr(w, T_QUEUE, j->queue);
    wstr(w, T_USER, j->user_id);
    wstr(w, T_IDEM, j->idem_key);
    wstr(w, T_SPEC, j->spec);
    wstr(w, T_LAST_ERROR, j->last_error);
    wstr(w, T_RESULT, j->result);
    if (j->n_deps > 0) {
        wle(w, T_DEPS, 2);
        wle(w, (uint64_t)j->n_deps * 8, 4);
        for (uint32_t i = 0; i < j->n_deps; i++) {
            uint64_t d;
            memcpy(&d, &j->deps[i], sizeof d);
            wle(w, d, 8);
        }
    }
    wnum(w, T_WORKER_ID, j->worker_id, 8);
    wnum(w, T_LEASE_TOKEN, j->lease_token, 8);
    wnum(w, T_EXIT_CODE, (uint32_t)j->exit_code, 4);
    wstr(w, T_OUTPUT, j->output);
    wstr(w, T_HISTORY, j->history);
    wnum(w, T_FLAGS, j->flags, 4);
    wnum(w, T_PARENT, j->parent, 8);
    wnum(w, T_NOMINAL, (uint64_t)j->nominal_at, 8);
    wnum(w, T_LAST_RUN, j->last_run, 8);
    wstr(w, T_CKEY, j->ckey);
    wnum(w, T_CKEY_LIMIT, j->ckey_limit, 4);
    if (j->extra.len > 0) {
        wbytes(w, j->extra.p, j->extra.len);
    }
}

static void write_item(struct wbuf *w, const struct fsm_item *it)
{
    wle(w, CODEC_VERSION, 1);
    wnum(w, I_JOB, it->job_id, 8);
    wnum(w, I_WORKER, it->worker_id, 8);
    wnum(w, I_TOKEN, it->token, 8);
    wnum(w, I_OK, it->ok, 1);
    wnum(w, I_RETRYABLE, it->retryable, 1);
    wnum(w, I_EXIT_CODE, (uint32_t)it->exit_code, 4);
    wnum(w, I_RETRY_AT, (uint64_t)it->retry_at, 8);
    wstr(w, I_ERROR, it->error);
    wstr(w, I_OUTPUT, it->output);
    wstr(w, I_RESULT, it->result);
    wnum(w, I_NOMINAL, (uint64_t)it->nominal, 8);
    wnum(w, I_NEXT_AT, (uint64_t)it->next_at, 8);
    wnum(w, I_ACTION, it->action, 1);
    wnum(w, I_SKIPPED, it->skipped, 4);
}

static void write_worker(struct wbuf *w, const struct fsm_worker *wk)
{
    wle(w, CODEC_VERSION, 1);
    wnum(w, W_ID, wk->id, 8);
    wstr(w, W_NAME, wk->name);
    wstr(w, W_QUEUES, wk->queues);
    wnum(w, W_CONCURRENCY, wk->concurrency, 4);
    wnum(w, W_REGISTERED, (uint64_t)wk->registered_at, 8);
    wnum(w, W_DOWN, wk->down, 1);
}

/* Write @fn(@obj) as one nested TLV. */
#define WNESTED(w, tag, fn, obj)           \
    do {                                   \
        struct wbuf nw_ = {NULL, 0, 0, 0}; \
        fn(&nw_, obj);                     \
        if (nw_.err != 0) {                \
            (w)->err = nw_.err;            \
        }                                  \
        wtlv(w, tag, nw_.p, nw_.len);      \
        free(nw_.p);                       \
    } while (0)

int fsm_worker_encode(const struct fsm_worker *wk, void **buf, size_t *len)
{
    struct wbuf w = {NULL, 0, 0, 0};
    write_worker(&w, wk);
    if (w.err != 0) {
        free(w.p);
        return w.err;
    }
    *buf = w.p;
    *len = w.len;
    return 0;
}

int fsm_job_encode(const struct fsm_job *job, void **buf, size_t *len)
{
    struct wbuf w = {NULL, 0, 0, 0};
    write_job(&w, job);
    if (w.err != 0) {
        free(w.p);
        return w.err;
    }
    *buf = w.p;
    *len = w.len;
    return 0;
}

/* Iterate TLVs: returns 1 with tag/data/n set, 0 at the end, -1 if bad. */
static int next_tlv(const unsigned char **p,
                    const unsigned char *end,
                    unsigned *tag,
                    const unsigned char **data,
                    size_t *n)
{
    if (*p == end) {
        return 0;
    }
    if (end - *p < 6) {
        return -1;
    }
    *tag = (unsigned)rle(*p, 2);
    *n = (size_t)rle(*p + 2, 4);
    if ((size_t)(end - *p - 6) < *n) {
        return -1;
    }
    *data = *p + 6;
    *p += 6 + *n;
    return 1;
}

static int num(const unsigned char *data,
               size_t n,
               unsigned want,
               uint64_t *out)
{
    if (n != want) {
        return -1;
    }
    *out = rle(data, want);
    return 0;
}

int fsm_job_decode(const void *buf, size_t len, struct fsm_job *j)
{
    const unsigned char *p = buf, *end = p + len, *data;
    const unsigned char *extra_start = NULL, *extra_end = NULL;
    unsigned tag;
    size_t n;
    uint64_t v = 0;
    int rv;

    memset(j, 0, sizeof *j);
    if (len < 1 || p[0] != CODEC_VERSION) {
        return ERR_CORRUPT;
    }
    p++;
    while ((rv = next_tlv(&p, end, &tag, &data, &n)) == 1) {
        struct fsm_str s = {(const char *)data, (uint32_t)n};
        int bad = 0;
        switch (tag) {
            case T_ID:
                bad = num(data, n, 8, &v);
                j->id = v;
                break;
            case T_STATUS:
                bad = num(data, n, 1, &v);
                j->status = (uint8_t)v;
                break;
            case T_PRIORITY:
                bad = num(data, n, 4, &v);
                j->priority = (int32_t)(uint32_t)v;
                break;
            case T_ATTEMPTS:
                bad = num(data, n, 4, &v);
                j->attempts = (uint32_t)v;
                break;
            case T_MAX_ATTEMPTS:
                bad = num(data, n, 4, &v);
                j->max_attempts = (uint32_t)v;
                break;
            case T_CREATED:
                bad = num(data, n, 8, &v);
                j->created_at = (int64_t)v;
                break;
            case T_UPDATED:
                bad = num(data, n, 8, &v);
                j->updated_at = (int64_t)v;
                break;
            case T_RUN_AT:
                bad = num(data, n, 8, &v);
                j->run_at = (int64_t)v;
                break;
            case T_STARTED:
                bad = num(data, n, 8, &v);
                j->started_at = (int64_t)v;
                break;
            case T_FINISHED:
                bad = num(data, n, 8, &v);
                j->finished_at = (int64_t)v;
                break;
            case T_TIMEOUT:
                bad = num(data, n, 8, &v);
                j->timeout_ms = (int64_t)v;
                break;
            case T_TYPE:
                j->type = s;
                break;
            case T_QUEUE:
                j->queue = s;
                break;
            case T_USER:
                j->user_id = s;
                break;
            case T_IDEM:
                j->idem_key = s;
                break;
            case T_SPEC:
                j->spec = s;
                break;
            case T_LAST_ERROR:
                j->last_error = s;
                break;
            case T_RESULT:
                j->result = s;
                break;
            case T_WORKER_ID:
                bad = num(data, n, 8, &v);
                j->worker_id = v;
                break;
            case T_LEASE_TOKEN:
                bad = num(data, n, 8, &v);
                j->lease_token = v;
                break;
            case T_EXIT_CODE:
                bad = num(data, n, 4, &v);
                j->exit_code = (int32_t)(uint32_t)v;
                break;
            case T_OUTPUT:
                j->output = s;
                break;
            case T_HISTORY:
                j->history = s;
                break;
            case T_FLAGS:
                bad = num(data, n, 4, &v);
                j->flags = (uint32_t)v;
                break;
            case T_PARENT:
                bad = num(data, n, 8, &j->parent);
                break;
            case T_NOMINAL:
                bad = num(data, n, 8, &v);
                j->nominal_at = (int64_t)v;
                break;
            case T_LAST_RUN:
                bad = num(data, n, 8, &j->last_run);
                break;
            case T_CKEY:
                j->ckey = s;
                break;
            case T_CKEY_LIMIT:
                bad = num(data, n, 4, &v);
                j->ckey_limit = (uint32_t)v;
                break;
            case T_DEPS:
                if (n % 8 != 0) {
                    bad = 1;
                }
                j->n_deps = (uint32_t)(n / 8);
                j->deps = (const uint64_t *)(const void *)data;
                break;
            default:
                if (extra_start == NULL) {
                    extra_start = data - 6;
                }
                extra_end = data + n;
                break;
        }
        if (bad) {
            return ERR_CORRUPT;
        }
    }
    if (rv < 0) {
        return ERR_CORRUPT;
    }
    if (extra_start != NULL) {
        j->extra.p = (const char *)extra_start;
        j->extra.len = (uint32_t)(extra_end - extra_start);
    }
    return 0;
}

static int decode_item(const unsigned char *p, size_t len, struct fsm_item *it)
{
    const unsigned char *end = p + len, *data;
    unsigned tag;
    size_t n;
    uint64_t v = 0;
    int rv;

    memset(it, 0, sizeof *it);
    if (len < 1 || p[0] != CODEC_VERSION) {
        return ERR_CORRUPT;
    }
    p++;
    while ((rv = next_tlv(&p, end, &tag, &data, &n)) == 1) {
        struct fsm_str s = {(const char *)data, (uint32_t)n};
        int bad = 0;
        switch (tag) {
            case I_JOB:
                bad = num(data, n, 8, &it->job_id);
                break;
            case I_WORKER:
                bad = num(data, n, 8, &it->worker_id);
                break;
            case I_TOKEN:
                bad = num(data, n, 8, &it->token);
                break;
            case I_OK:
                bad = num(data, n, 1, &v);
                it->ok = (uint8_t)v;
                break;
            case I_RETRYABLE:
                bad = num(data, n, 1, &v);
                it->retryable = (uint8_t)v;
                break;
            case I_EXIT_CODE:
                bad = num(data, n, 4, &v);
                it->exit_code = (int32_t)(uint32_t)v;
                break;
            case I_RETRY_AT:
                bad = num(data, n, 8, &v);
                it->retry_at = (int64_t)v;
                break;
            case I_ERROR:
                it->error = s;
                break;
            case I_OUTPUT:
                it->output = s;
                break;
            case I_RESULT:
                it->result = s;
                break;
            case I_NOMINAL:
                bad = num(data, n, 8, &v);
                it->nominal = (int64_t)v;
                break;
            case I_NEXT_AT:
                bad = num(data, n, 8, &v);
                it->next_at = (int64_t)v;
                break;
            case I_ACTION:
                bad = num(data, n, 1, &v);
                it->action = (uint8_t)v;
                break;
            case I_SKIPPED:
                bad = num(data, n, 4, &v);
                it->skipped = (uint32_t)v;
                break;
            default:
                break;
        }
        if (bad) {
            return ERR_CORRUPT;
        }
    }
    return rv < 0 ? ERR_CORRUPT : 0;
}

int fsm_worker_decode(const void *buf, size_t len, struct fsm_worker *wk)
{
    const unsigned char *p = buf, *end = p + len, *data;
    unsigned tag;
    size_t n;
    uint64_t v = 0;
    int rv;

    memset(wk, 0, sizeof *wk);
    if (len < 1 || p[0] != CODEC_VERSION) {
        return ERR_CORRUPT;
    }
    p++;
    while ((rv = next_tlv(&p, end, &tag, &data, &n)) == 1) {
        struct fsm_str s = {(const char *)data, (uint32_t)n};
        int bad = 0;
        switch (tag) {
            case W_ID:
                bad = num(data, n, 8, &wk->id);
                break;
            case W_NAME:
                wk->name = s;
                break;
            case W_QUEUES:
                wk->queues = s;
                break;
            case W_CONCURRENCY:
                bad = num(data, n, 4, &v);
                wk->concurrency = (uint32_t)v;
                break;
            case W_REGISTERED:
                bad = num(data, n, 8, &v);
                wk->registered_at = (int64_t)v;
                break;
            case W_DOWN:
                bad = num(data, n, 1, &v);
                wk->down = (uint8_t)v;
                break;
            default:
                break;
        }
        if (bad) {
            return ERR_CORRUPT;
        }
    }
    return rv < 0 ? ERR_CORRUPT : 0;
}

/* Deps are stored little endian in records; on this (little-endian) host a
 * decoded deps pointer can be read with memcpy as a uint64_t. */

int fsm_cmd_encode(const struct fsm_cmd *cmd, void **buf, size_t *len)
{
    struct wbuf w = {NULL, 0, 0, 0};

    wle(&w, CODEC_VERSION, 1);
    wle(&w, cmd->type, 1);
    switch (cmd->type) {
        case FSM_CMD_SUBMIT:
            wle(&w, C_N_JOBS, 2);
            wle(&w, 4, 4);
            wle(&w, cmd->n_jobs, 4);
            for (uint32_t i = 0; i < cmd->n_jobs; i++) {
                struct wbuf jw = {NULL, 0, 0, 0};
                write_job(&jw, &cmd->jobs[i]);
                if (jw.err != 0) {
                    w.err = jw.err;
                }
                wtlv(&w, C_JOB, jw.p, jw.len);
                free(jw.p);
            }
            wstr(&w, C_WORKFLOW, cmd->workflow);
            if (cmd->hashes != NULL) {
                wle(&w, C_HASHES, 2);
                wle(&w, (uint64_t)cmd->n_jobs * 8, 4);
                for (uint32_t i = 0; i < cmd->n_jobs; i++) {
                    wle(&w, cmd->hashes[i], 8);
                }
            }
            break;
        case FSM_CMD_PATCH: {
            struct wbuf jw = {NULL, 0, 0, 0};
            wnum(&w, C_ID, cmd->id, 8);
            wnum(&w, C_MASK, cmd->mask, 4);
            write_job(&jw, &cmd->patch);
            if (jw.err != 0) {
                w.err = jw.err;
            }
            wtlv(&w, C_PATCH, jw.p, jw.len);
            free(jw.p);
            break;
        }
        case FSM_CMD_CANCEL:
        case FSM_CMD_PAUSE:
        case FSM_CMD_CANCEL_WF:
            wnum(&w, C_ID, cmd->id, 8);
            break;
        case FSM_CMD_RESUME: {
            struct fsm_job pj;
            memset(&pj, 0, sizeof pj);
            pj.run_at = cmd->patch.run_at;
            wnum(&w, C_ID, cmd->id, 8);
            WNESTED(&w, C_PATCH, write_job, &pj);
            break;
        }
        case FSM_CMD_QUEUE_SET:
            wstr(&w, C_QUEUE_NAME, cmd->queue.name);
            wnum(&w, C_QUEUE_PAUSED, cmd->queue.paused, 1);
            wnum(&w, C_QUEUE_CONC, cmd->queue.concurrency, 4);
            break;
        case FSM_CMD_WORKER_REG:
            WNESTED(&w, C_WORKER, write_worker, &cmd->worker);
            break;
        case FSM_CMD_WORKER_DEL:
        case FSM_CMD_WORKER_DOWN:
        case FSM_CMD_ASSIGN:
        case FSM_CMD_COMPLETE:
        case FSM_CMD_PROMOTE:
        case FSM_CMD_FIRE:
        case FSM_CMD_RETRY:
        case FSM_CMD_DELETE:
        case FSM_CMD_RELEASE:
            wnum(&w, C_ID, cmd->id, 8);
            wle(&w, C_N_JOBS, 2); /* The item count. */
            wle(&w, 4, 4);
            wle(&w, cmd->n_items, 4);
            for (uint32_t i = 0; i < cmd->n_items; i++) {
                WNESTED(&w, C_ITEM, write_item, &cmd->items[i]);
            }
            break;
        case FSM_CMD_NODE_SET:
        case FSM_CMD_NODE_DEL:
            wnum(&w, C_NODE_ID, cmd->node_id, 8);
            wstr(&w, C_RAFT_ADDR, cmd->raft_addr);
            wstr(&w, C_HTTP_ADDR, cmd->http_addr);
            break;
        default:
            break;
    }
    if (w.err != 0) {
        free(w.p);
        return w.err;
    }
    *buf = w.p;
    *len = w.len;
    return 0;
}

int fsm_cmd_decode(const void *buf,
                   size_t len,
                   struct fsm_cmd *cmd,
                   struct fsm_job **jobs_store)
{
    const unsigned char *p = buf, *end = p + len, *data;
    struct fsm_job *jobs = NULL;
    const uint64_t *hashes = NULL;
    struct fsm_item *items = NULL;
    uint32_t n_jobs = 0, got = 0;
    bool have_n = false, is_items;
    unsigned tag;
    size_t n;
    uint64_t v;
    int rv;

    memset(cmd, 0, sizeof *cmd);
    *jobs_store = NULL;
    if (len < 2 || p[0] != CODEC_VERSION) {
        return ERR_CORRUPT;
    }
    cmd->type = p[1];
    p += 2;
    is_items = FSM_CMD_HAS_ITEMS(cmd->type);
    while ((rv = next_tlv(&p, end, &tag, &data, &n)) == 1) {
        switch (tag) {
            case C_N_JOBS:
                if (have_n || num(data, n, 4, &v) != 0 ||
                    v > FSM_MAX_BATCH_JOBS * 16ULL) {
                    goto corrupt;
                }
                have_n = true;
                n_jobs = (uint32_t)v;
                if (n_jobs > 0 && is_items) {
                    items = calloc(n_jobs, sizeof *items);
                    if (items == NULL) {
                        return ERR_NOMEM;
                    }
                } else if (n_jobs > 0) {
                    jobs = calloc(n_jobs, sizeof *jobs);
                    if (jobs == NULL) {
                        return ERR_NOMEM;
                    }
                }
                break;
            case C_ITEM:
                if (!have_n || !is_items || got >= n_jobs ||
                    decode_item(data, n, &items[got]) != 0) {
                    goto corrupt;
                }
                got++;
                break;
            case C_WORKER:
                if (fsm_worker_decode(data, n, &cmd->worker) != 0) {
                    goto corrupt;
                }
                break;
            case C_JOB:
                if (!have_n || is_items || got >= n_jobs ||
                    fsm_job_decode(data, n, &jobs[got]) != 0) {
                    goto corrupt;
                }
                got++;
                break;
            case C_HASHES:
                if (!have_n || n != (size_t)n_jobs * 8) {
                    goto corrupt;
                }
                hashes = (const uint64_t *)(const void *)data;
                break;
            case C_ID:
                if (num(data, n, 8, &cmd->id) != 0) {
                    goto corrupt;
                }
                break;
            case C_MASK:
                if (num(data, n, 4, &v) != 0) {
                    goto corrupt;
                }
                cmd->mask = (uint32_t)v;
                break;
            case C_PATCH:
                if (fsm_job_decode(data, n, &cmd->patch) != 0) {
                    goto corrupt;
                }
                break;
            case C_NODE_ID:
                if (num(data, n, 8, &cmd->node_id) != 0) {
                    goto corrupt;
                }
                break;
            case C_RAFT_ADDR:
                cmd->raft_addr.p = (const char *)data;
                cmd->raft_addr.len = (uint32_t)n;
                break;
            case C_HTTP_ADDR:
                cmd->http_addr.p = (const char *)data;
                cmd->http_addr.len = (uint32_t)n;
                break;
            case C_QUEUE_NAME:
                cmd->queue.name.p = (const char *)data;
                cmd->queue.name.len = (uint32_t)n;
                break;
            case C_QUEUE_PAUSED:
                if (num(data, n, 1, &v) != 0) {
                    goto corrupt;
                }
                cmd->queue.paused = (uint8_t)v;
                break;
            case C_QUEUE_CONC:
                if (num(data, n, 4, &v) != 0) {
                    goto corrupt;
                }
                cmd->queue.concurrency = (uint32_t)v;
                break;
            case C_WORKFLOW:
                cmd->workflow.p = (const char *)data;
                cmd->workflow.len = (uint32_t)n;
                break;
            default:
                break; /* A newer command field: ignored. */
        }
    }
    if (rv < 0 || got != n_jobs ||
        ((cmd->type == FSM_CMD_SUBMIT || is_items) && !have_n)) {
        goto corrupt;
    }
    if (is_items) {
        cmd->n_items = n_jobs;
        cmd->items = items;
    } else {
        cmd->n_jobs = n_jobs;
        cmd->jobs = jobs;
    }
    cmd->hashes = hashes; /* May be unaligned: read with memcpy. */
    *jobs_store = jobs;
    return 0;

corrupt:
    free(jobs);
    free(items);
    return ERR_CORRUPT;
}

void fsm_cmd_free(struct fsm_cmd *cmd, struct fsm_job *jobs_store)
{
    free(jobs_store);
    free((void *)cmd->items);
    cmd->items = NULL;
}

/* ---- Attempt history: a list of (len u32, TLV record) ----------------------
 */

int fsm_attempt_next(struct fsm_str *h, struct fsm_attempt *a)
{
    const unsigned char *p = (const unsigned char *)h->p, *end, *data;
    uint32_t len;
    unsigned tag;
    size_t n;
    uint64_t v = 0;
    int rv;

    if (h->len == 0) {
        return 0;
    }
    if (h->len < 4) {
        return -1;
    }
    memcpy(&len, p, 4);
    if (len > h->len - 4 || len < 1 || p[4] != CODEC_VERSION) {
        return -1;
    }
    end = p + 4 + len;
    p += 5;
    memset(a, 0, sizeof *a);
    while ((rv = next_tlv(&p, end, &tag, &data, &n)) == 1) {
        struct fsm_str s = {(const char *)data, (uint32_t)n};
        int bad = 0;
        switch (tag) {
            case A_NUMBER:
                bad = num(data, n, 4, &v);
                a->number = (uint32_t)v;
                break;
            case A_OUTCOME:
                bad = num(data, n, 1, &v);
                a->outcome = (uint8_t)v;
                break;
            case A_WORKER:
                bad = num(data, n, 8, &a->worker_id);
                break;
            case A_TOKEN:
                bad = num(data, n, 8, &a->token);
                break;
            case A_STARTED:
                bad = num(data, n, 8, &v);
                a->started_at = (int64_t)v;
                break;
            case A_FINISHED:
                bad = num(data, n, 8, &v);
                a->finished_at = (int64_t)v;
                break;
            case A_EXIT_CODE:
                bad = num(data, n, 4, &v);
                a->exit_code = (int32_t)(uint32_t)v;
                break;
            case A_ERROR:
                a->error = s;
                break;
            case A_OUTPUT:
                a->output = s;
                break;
            default:
                break;
        }
        if (bad) {
            return -1;
        }
    }
    if (rv < 0) {
        return -1;
    }
    h->p += 4 + len;
    h->len -= 4 + len;
    return 1;
}

int fsm_attempt_append(struct fsm_str history,
                       const struct fsm_attempt *a,
                       struct fsm_str *out,
                       char **mem)
{
    struct wbuf w = {NULL, 0, 0, 0};
    struct fsm_str it = history, skip = history;
    struct fsm_attempt tmp;
    unsigned count = 0;
    struct fsm_str output = a->output;

    while (fsm_attempt_next(&it, &tmp) == 1) {
        count++;
    }
    /* Drop the oldest so that at most FSM_MAX_HISTORY remain. */
    while (count >= FSM_MAX_HISTORY && fsm_attempt_next(&skip, &tmp) == 1) {
        count--;
    }
    if (output.len > FSM_MAX_HISTORY_OUTPUT) { /* Keep the tail. */
        output.p += output.len - FSM_MAX_HISTORY_OUTPUT;
        output.len = FSM_MAX_HISTORY_OUTPUT;
    }
    wbytes(&w, skip.p, skip.len);
    size_t at = w.len;
    wle(&w, 0, 4); /* Length, patched below. */
    wle(&w, CODEC_VERSION, 1);
    wnum(&w, A_NUMBER, a->number, 4);
    wnum(&w, A_OUTCOME, a->outcome, 1);
    wnum(&w, A_WORKER, a->worker_id, 8);
    wnum(&w, A_TOKEN, a->token, 8);
    wnum(&w, A_STARTED, (uint64_t)a->started_at, 8);
    wnum(&w, A_FINISHED, (uint64_t)a->finished_at, 8);
    wnum(&w, A_EXIT_CODE, (uint32_t)a->exit_code, 4);
    wstr(&w, A_ERROR, a->error);
    wstr(&w, A_OUTPUT, output);
    if (w.err != 0) {
        free(w.p);
        return w.err;
    }
    uint32_t len = (uint32_t)(w.len - at - 4);
    memcpy(w.p + at, &len, 4);
    *mem = (char *)w.p;
    out->p = (const char *)w.p;
    out->len = (uint32_t)w.len;
    return 0;
}
