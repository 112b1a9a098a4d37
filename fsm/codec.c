/* TLV codec for job records and commands.
 *
 * A record: version u8, then fields as (tag u16, len u32, bytes), all little
 * endian. Zero and empty fields are not written. A command: version u8, type
 * u8, then its fields the same way, nested records (jobs, items, a worker) as
 * the bytes of a field.
 *
 * Each record type is declared once, as a table indexed by tag that gives a
 * field's kind (fixed-width number, string, or a pair of small functions for
 * arrays and nested records) and its place in the C struct. One loop encodes
 * any table (in tag order: that is the wire order) and one loop decodes it.
 * A command's fields are a table too; which of them a command type writes,
 * and in which order, is its layout (cmd_layout).
 *
 * Tags this version does not know are kept in a job (job->extra: from the
 * first unknown field to the end of the last one) and written back after the
 * known ones, so a newer node's fields survive an older node's update
 * (rolling upgrades). In items, workers, attempts and commands they are
 * skipped. New fields therefore get new tags after the last one (never a
 * reused or renumbered tag): a record written before they existed decodes
 * with them empty, e.g. attempts without worker_name/worker_host (tests:
 * tests/unit/fsm/test_codec.c, old-format records). Decoding is bounds-checked
 * everywhere: bad input is ERR_CORRUPT
 * (-1 from fsm_attempt_next). */

#include <stdbool.h>
#include <stddef.h>
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
    T_WORKER_NAME,
    T_WORKER_HOST,
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
    A_WORKER_NAME,
    A_WORKER_HOST,
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
    C_TOKEN,
    C_QUEUE_MAX_PENDING,
    C_WEBHOOK,
};

enum {
    WH_ID = 1,
    WH_URL,
    WH_QUEUES,
    WH_SECRET,
    WH_EVENTS,
    WH_CREATED,
    WH_PENDING,
    WH_DELIVERED,
    WH_EXPIRED,
    WH_DROPPED,
};

enum {
    DL_KIND = 1,
    DL_STATUS,
    DL_ATTEMPTS,
    DL_ID,
    DL_RUN,
    DL_AT,
    DL_A,
    DL_QUEUE,
    DL_NAME,
    DL_ERROR,
    DL_TRIES,
    DL_NEXT_AT,
    DL_LAST_STATUS,
    DL_LAST_AT,
    DL_LAST_ERROR,
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
    W_TYPES,
    W_SECRET_HASH,
    W_HOST,
};

enum {
    TK_ID = 1,
    TK_NAME,
    TK_ROLE,
    TK_QUEUES,
    TK_TYPES,
    TK_EXPIRES,
    TK_CREATED,
    TK_HASH,
    TK_RATE,
    TK_BURST,
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

/* ---- Field tables ------------------------------------------------------- */

enum kind {
    K_NONE, /* Not a tag of this version. */
    K_U8,   /* uint8_t, 1 byte. */
    K_U32,  /* uint32_t, 4 bytes. */
    K_I32,  /* int32_t, 4 bytes (two's complement). */
    K_U64,  /* uint64_t, 8 bytes. */
    K_I64,  /* int64_t, 8 bytes (two's complement). */
    K_STR,  /* struct fsm_str, any length; borrows the decoded buffer. */
    K_FUNC, /* Arrays, nested records: the field's dec and enc. */
};

/* Decode one field's bytes into @rec (@ctx: the decoder's own state). */
typedef int (*dec_fn)(void *rec, void *ctx, const unsigned char *d, size_t n);
/* Write the field @tag of @rec (or nothing). */
typedef void (*enc_fn)(struct wbuf *w, unsigned tag, const void *rec);

struct field
{
    enum kind kind;
    size_t off; /* Of the member in the record's struct (not K_FUNC). */
    dec_fn dec; /* K_FUNC only. */
    enc_fn enc;
};

/* offsetof(T, m), which must be of type @ctype (else: a compile error). */
#define OFF(T, m, ctype) _Generic(((T *)0)->m, ctype : offsetof(T, m))
#define U8(T, m)                             \
    {                                        \
        K_U8, OFF(T, m, uint8_t), NULL, NULL \
    }
#define U32(T, m)                              \
    {                                          \
        K_U32, OFF(T, m, uint32_t), NULL, NULL \
    }
#define I32(T, m)                             \
    {                                         \
        K_I32, OFF(T, m, int32_t), NULL, NULL \
    }
#define U64(T, m)                              \
    {                                          \
        K_U64, OFF(T, m, uint64_t), NULL, NULL \
    }
#define I64(T, m)                             \
    {                                         \
        K_I64, OFF(T, m, int64_t), NULL, NULL \
    }
#define STR(T, m)                                    \
    {                                                \
        K_STR, OFF(T, m, struct fsm_str), NULL, NULL \
    }
#define FUNC(dec, enc)      \
    {                       \
        K_FUNC, 0, dec, enc \
    }

struct record
{
    const struct field *fields; /* Indexed by tag. */
    unsigned n_fields;          /* Highest tag + 1. */
    size_t size;                /* Of the struct: zeroed before decoding. */
    bool keep_unknown;          /* Unknown tags kept in the fsm_str at... */
    size_t unknown;             /* ...this offset, and written back. */
};

#define RECORD(T, table)                                           \
    {                                                              \
        table, sizeof table / sizeof table[0], sizeof(T), false, 0 \
    }

static unsigned kind_width(enum kind k)
{
    switch (k) {
        case K_U8:
            return 1;
        case K_U32:
        case K_I32:
            return 4;
        case K_U64:
        case K_I64:
            return 8;
        default:
            return 0;
    }
}

static uint64_t load_num(enum kind k, const void *m)
{
    switch (k) {
        case K_U8:
            return *(const uint8_t *)m;
        case K_U32:
            return *(const uint32_t *)m;
        case K_I32:
            return (uint32_t) * (const int32_t *)m;
        case K_U64:
            return *(const uint64_t *)m;
        case K_I64:
            return (uint64_t) * (const int64_t *)m;
        default:
            return 0;
    }
}

static int store_num(enum kind k, void *m, const unsigned char *d, size_t n)
{
    unsigned width = kind_width(k);
    if (n != width) {
        return ERR_CORRUPT;
    }
    uint64_t v = rle(d, width);
    switch (k) {
        case K_U8:
            *(uint8_t *)m = (uint8_t)v;
            break;
        case K_U32:
            *(uint32_t *)m = (uint32_t)v;
            break;
        case K_I32:
            *(int32_t *)m = (int32_t)(uint32_t)v;
            break;
        case K_U64:
            *(uint64_t *)m = v;
            break;
        case K_I64:
            *(int64_t *)m = (int64_t)v;
            break;
        default:
            break;
    }
    return 0;
}

static void encode_field(struct wbuf *w,
                         unsigned tag,
                         const struct field *f,
                         const void *rec)
{
    const char *m = (const char *)rec + f->off;
    switch (f->kind) {
        case K_NONE:
            break;
        case K_STR:
            wstr(w, tag, *(const struct fsm_str *)(const void *)m);
            break;
        case K_FUNC:
            f->enc(w, tag, rec);
            break;
        default:
            wnum(w, tag, load_num(f->kind, m), kind_width(f->kind));
            break;
    }
}

/* Every field of @rec in tag order, then the unknown ones kept. */
static void encode_fields(struct wbuf *w,
                          const struct record *r,
                          const void *rec)
{
    for (unsigned tag = 1; tag < r->n_fields; tag++) {
        encode_field(w, tag, &r->fields[tag], rec);
    }
    if (r->keep_unknown) {
        const struct fsm_str *x =
            (const void *)((const char *)rec + r->unknown);
        if (x->len > 0) {
            wbytes(w, x->p, x->len);
        }
    }
}

static void encode_record(struct wbuf *w,
                          const struct record *r,
                          const void *rec)
{
    wle(w, CODEC_VERSION, 1);
    encode_fields(w, r, rec);
}

/* @rec encoded as @r, as the bytes of the field @tag. */
static void encode_nested(struct wbuf *w,
                          unsigned tag,
                          const struct record *r,
                          const void *rec)
{
    struct wbuf nw = {NULL, 0, 0, 0};
    encode_record(&nw, r, rec);
    if (nw.err != 0) {
        w->err = nw.err;
    }
    wtlv(w, tag, nw.p, nw.len);
    free(nw.p);
}

static int decode_field(const struct field *f,
                        void *rec,
                        void *ctx,
                        const unsigned char *d,
                        size_t n)
{
    char *m = (char *)rec + f->off;
    switch (f->kind) {
        case K_STR: {
            struct fsm_str *s = (void *)m;
            s->p = (const char *)d;
            s->len = (uint32_t)n;
            return 0;
        }
        case K_FUNC:
            return f->dec(rec, ctx, d, n);
        default:
            return store_num(f->kind, m, d, n);
    }
}

/* Decode the TLVs in [p, end) into @rec. 0, ERR_CORRUPT, or what a K_FUNC
 * decoder returns. */
static int decode_fields(const struct record *r,
                         void *rec,
                         void *ctx,
                         const unsigned char *p,
                         const unsigned char *end)
{
    const unsigned char *d, *unknown_start = NULL, *unknown_end = NULL;
    unsigned tag;
    size_t n;
    int rv;

    while ((rv = next_tlv(&p, end, &tag, &d, &n)) == 1) {
        if (tag >= r->n_fields || r->fields[tag].kind == K_NONE) {
            if (unknown_start == NULL) {
                unknown_start = d - 6;
            } else if (r->keep_unknown && unknown_end != d - 6) {
                /* Unknown fields are kept as one span: one with known
                 * fields inside would write stale copies of them back. */
                return ERR_CORRUPT;
            }
            unknown_end = d + n;
            continue;
        }
        int err = decode_field(&r->fields[tag], rec, ctx, d, n);
        if (err != 0) {
            return err;
        }
    }
    if (rv < 0) {
        return ERR_CORRUPT;
    }
    if (r->keep_unknown && unknown_start != NULL) {
        struct fsm_str *x = (void *)((char *)rec + r->unknown);
        x->p = (const char *)unknown_start;
        x->len = (uint32_t)(unknown_end - unknown_start);
    }
    return 0;
}

/* A record: zeroed, then the version byte and the fields. */
static int decode_record(const struct record *r,
                         const void *buf,
                         size_t len,
                         void *rec,
                         void *ctx)
{
    const unsigned char *p = buf;

    memset(rec, 0, r->size);
    if (len < 1 || p[0] != CODEC_VERSION) {
        return ERR_CORRUPT;
    }
    return decode_fields(r, rec, ctx, p + 1, p + len);
}

static int encode_to(const struct record *r,
                     const void *rec,
                     void **buf,
                     size_t *len)
{
    struct wbuf w = {NULL, 0, 0, 0};
    encode_record(&w, r, rec);
    if (w.err != 0) {
        free(w.p);
        return w.err;
    }
    *buf = w.p;
    *len = w.len;
    return 0;
}

/* ---- Records ------------------------------------------------------------ */

/* Deps are stored little endian in records; on this (little-endian) host a
 * decoded deps pointer can be read with memcpy as a uint64_t. */
static int dec_deps(void *rec, void *ctx, const unsigned char *d, size_t n)
{
    struct fsm_job *j = rec;
    j->n_deps = (uint32_t)(n / 8);
    j->deps = (const uint64_t *)(const void *)d;
    return n % 8 != 0 ? ERR_CORRUPT : 0;
}

static void enc_deps(struct wbuf *w, unsigned tag, const void *rec)
{
    const struct fsm_job *j = rec;
    if (j->n_deps == 0) {
        return;
    }
    wle(w, tag, 2);
    wle(w, (uint64_t)j->n_deps * 8, 4);
    for (uint32_t i = 0; i < j->n_deps; i++) {
        uint64_t dep;
        memcpy(&dep, &j->deps[i], sizeof dep);
        wle(w, dep, 8);
    }
}

static const struct field job_fields[] = {
    [T_ID] = U64(struct fsm_job, id),
    [T_STATUS] = U8(struct fsm_job, status),
    [T_PRIORITY] = I32(struct fsm_job, priority),
    [T_ATTEMPTS] = U32(struct fsm_job, attempts),
    [T_MAX_ATTEMPTS] = U32(struct fsm_job, max_attempts),
    [T_CREATED] = I64(struct fsm_job, created_at),
    [T_UPDATED] = I64(struct fsm_job, updated_at),
    [T_RUN_AT] = I64(struct fsm_job, run_at),
    [T_STARTED] = I64(struct fsm_job, started_at),
    [T_FINISHED] = I64(struct fsm_job, finished_at),
    [T_TIMEOUT] = I64(struct fsm_job, timeout_ms),
    [T_TYPE] = STR(struct fsm_job, type),
    [T_QUEUE] = STR(struct fsm_job, queue),
    [T_USER] = STR(struct fsm_job, user_id),
    [T_IDEM] = STR(struct fsm_job, idem_key),
    [T_SPEC] = STR(struct fsm_job, spec),
    [T_LAST_ERROR] = STR(struct fsm_job, last_error),
    [T_RESULT] = STR(struct fsm_job, result),
    [T_DEPS] = FUNC(dec_deps, enc_deps),
    [T_WORKER_ID] = U64(struct fsm_job, worker_id),
    [T_LEASE_TOKEN] = U64(struct fsm_job, lease_token),
    [T_EXIT_CODE] = I32(struct fsm_job, exit_code),
    [T_OUTPUT] = STR(struct fsm_job, output),
    [T_HISTORY] = STR(struct fsm_job, history),
    [T_FLAGS] = U32(struct fsm_job, flags),
    [T_PARENT] = U64(struct fsm_job, parent),
    [T_NOMINAL] = I64(struct fsm_job, nominal_at),
    [T_LAST_RUN] = U64(struct fsm_job, last_run),
    [T_CKEY] = STR(struct fsm_job, ckey),
    [T_CKEY_LIMIT] = U32(struct fsm_job, ckey_limit),
    [T_WORKER_NAME] = STR(struct fsm_job, worker_name),
    [T_WORKER_HOST] = STR(struct fsm_job, worker_host),
};

static const struct record job_record = {
    job_fields, sizeof job_fields / sizeof job_fields[0],
    sizeof(struct fsm_job), true, OFF(struct fsm_job, extra, struct fsm_str)};

static const struct field item_fields[] = {
    [I_JOB] = U64(struct fsm_item, job_id),
    [I_WORKER] = U64(struct fsm_item, worker_id),
    [I_TOKEN] = U64(struct fsm_item, token),
    [I_OK] = U8(struct fsm_item, ok),
    [I_RETRYABLE] = U8(struct fsm_item, retryable),
    [I_EXIT_CODE] = I32(struct fsm_item, exit_code),
    [I_RETRY_AT] = I64(struct fsm_item, retry_at),
    [I_ERROR] = STR(struct fsm_item, error),
    [I_OUTPUT] = STR(struct fsm_item, output),
    [I_RESULT] = STR(struct fsm_item, result),
    [I_NOMINAL] = I64(struct fsm_item, nominal),
    [I_NEXT_AT] = I64(struct fsm_item, next_at),
    [I_ACTION] = U8(struct fsm_item, action),
    [I_SKIPPED] = U32(struct fsm_item, skipped),
};

static const struct record item_record = RECORD(struct fsm_item, item_fields);

static const struct field worker_fields[] = {
    [W_ID] = U64(struct fsm_worker, id),
    [W_NAME] = STR(struct fsm_worker, name),
    [W_QUEUES] = STR(struct fsm_worker, queues),
    [W_CONCURRENCY] = U32(struct fsm_worker, concurrency),
    [W_REGISTERED] = I64(struct fsm_worker, registered_at),
    [W_DOWN] = U8(struct fsm_worker, down),
    [W_TYPES] = STR(struct fsm_worker, types),
    [W_SECRET_HASH] = STR(struct fsm_worker, secret_hash),
    [W_HOST] = STR(struct fsm_worker, host),
};

static const struct record worker_record =
    RECORD(struct fsm_worker, worker_fields);

static const struct field attempt_fields[] = {
    [A_NUMBER] = U32(struct fsm_attempt, number),
    [A_OUTCOME] = U8(struct fsm_attempt, outcome),
    [A_WORKER] = U64(struct fsm_attempt, worker_id),
    [A_TOKEN] = U64(struct fsm_attempt, token),
    [A_STARTED] = I64(struct fsm_attempt, started_at),
    [A_FINISHED] = I64(struct fsm_attempt, finished_at),
    [A_EXIT_CODE] = I32(struct fsm_attempt, exit_code),
    [A_ERROR] = STR(struct fsm_attempt, error),
    [A_OUTPUT] = STR(struct fsm_attempt, output),
    [A_WORKER_NAME] = STR(struct fsm_attempt, worker_name),
    [A_WORKER_HOST] = STR(struct fsm_attempt, worker_host),
};

static const struct record attempt_record =
    RECORD(struct fsm_attempt, attempt_fields);

static const struct field token_fields[] = {
    [TK_ID] = U64(struct fsm_token, id),
    [TK_NAME] = STR(struct fsm_token, name),
    [TK_ROLE] = STR(struct fsm_token, role),
    [TK_QUEUES] = STR(struct fsm_token, queues),
    [TK_TYPES] = STR(struct fsm_token, types),
    [TK_EXPIRES] = I64(struct fsm_token, expires_at),
    [TK_CREATED] = I64(struct fsm_token, created_at),
    [TK_HASH] = STR(struct fsm_token, hash),
    [TK_RATE] = U64(struct fsm_token, rate_milli),
    [TK_BURST] = U32(struct fsm_token, burst),
};

static const struct record token_record =
    RECORD(struct fsm_token, token_fields);

static const struct field webhook_fields[] = {
    [WH_ID] = U64(struct fsm_webhook, id),
    [WH_URL] = STR(struct fsm_webhook, url),
    [WH_QUEUES] = STR(struct fsm_webhook, queues),
    [WH_SECRET] = STR(struct fsm_webhook, secret),
    [WH_EVENTS] = U32(struct fsm_webhook, events),
    [WH_CREATED] = I64(struct fsm_webhook, created_at),
    [WH_PENDING] = U32(struct fsm_webhook, pending),
    [WH_DELIVERED] = U64(struct fsm_webhook, delivered),
    [WH_EXPIRED] = U64(struct fsm_webhook, expired),
    [WH_DROPPED] = U64(struct fsm_webhook, dropped),
};

static const struct record webhook_record =
    RECORD(struct fsm_webhook, webhook_fields);

int fsm_webhook_encode(const struct fsm_webhook *w, void **buf, size_t *len)
{
    return encode_to(&webhook_record, w, buf, len);
}

int fsm_webhook_decode(const void *buf, size_t len, struct fsm_webhook *w)
{
    return decode_record(&webhook_record, buf, len, w, NULL);
}

/* A delivery record: the event's fields and the delivery's state (the
 * webhook and the event key are the record's LMDB key). */
static const struct field delivery_fields[] = {
    [DL_KIND] = U8(struct fsm_delivery, ev.kind),
    [DL_STATUS] = U8(struct fsm_delivery, ev.status),
    [DL_ATTEMPTS] = U32(struct fsm_delivery, ev.attempts),
    [DL_ID] = U64(struct fsm_delivery, ev.id),
    [DL_RUN] = U64(struct fsm_delivery, ev.run),
    [DL_AT] = I64(struct fsm_delivery, ev.at),
    [DL_A] = STR(struct fsm_delivery, ev.type),
    [DL_QUEUE] = STR(struct fsm_delivery, ev.queue),
    [DL_NAME] = STR(struct fsm_delivery, ev.name),
    [DL_ERROR] = STR(struct fsm_delivery, ev.error),
    [DL_TRIES] = U32(struct fsm_delivery, tries),
    [DL_NEXT_AT] = I64(struct fsm_delivery, next_at),
    [DL_LAST_STATUS] = I32(struct fsm_delivery, last_status),
    [DL_LAST_AT] = I64(struct fsm_delivery, last_at),
    [DL_LAST_ERROR] = STR(struct fsm_delivery, last_error),
};

static const struct record delivery_record =
    RECORD(struct fsm_delivery, delivery_fields);

int fsm__delivery_encode(const struct fsm_delivery *d, void **buf, size_t *len)
{
    return encode_to(&delivery_record, d, buf, len);
}

int fsm__delivery_decode(const void *buf, size_t len, struct fsm_delivery *d)
{
    return decode_record(&delivery_record, buf, len, d, NULL);
}

int fsm_token_encode(const struct fsm_token *t, void **buf, size_t *len)
{
    return encode_to(&token_record, t, buf, len);
}

int fsm_token_decode(const void *buf, size_t len, struct fsm_token *t)
{
    return decode_record(&token_record, buf, len, t, NULL);
}

int fsm_worker_encode(const struct fsm_worker *wk, void **buf, size_t *len)
{
    return encode_to(&worker_record, wk, buf, len);
}

int fsm_job_encode(const struct fsm_job *job, void **buf, size_t *len)
{
    return encode_to(&job_record, job, buf, len);
}

int fsm_job_decode(const void *buf, size_t len, struct fsm_job *j)
{
    return decode_record(&job_record, buf, len, j, NULL);
}

int fsm_worker_decode(const void *buf, size_t len, struct fsm_worker *wk)
{
    return decode_record(&worker_record, buf, len, wk, NULL);
}

/* ---- Commands ----------------------------------------------------------- */

/* fsm_cmd_decode's state: the count (C_N_JOBS, also of items) comes first,
 * then as many jobs or items. */
struct cmd_dec
{
    struct fsm_job *jobs;
    struct fsm_item *items;
    const uint64_t *hashes;
    uint32_t n, got;
    bool have_n, is_items;
};

static int dec_count(void *rec, void *ctx, const unsigned char *d, size_t n)
{
    struct cmd_dec *s = ctx;

    if (s->have_n || n != 4 || rle(d, 4) > FSM_MAX_BATCH_JOBS * 16ULL) {
        return ERR_CORRUPT;
    }
    s->have_n = true;
    s->n = (uint32_t)rle(d, 4);
    if (s->n > 0 && s->is_items) {
        s->items = calloc(s->n, sizeof *s->items);
        return s->items == NULL ? ERR_NOMEM : 0;
    }
    if (s->n > 0) {
        s->jobs = calloc(s->n, sizeof *s->jobs);
        return s->jobs == NULL ? ERR_NOMEM : 0;
    }
    return 0;
}

/* Always written: the count of jobs, or of items. */
static void enc_count(struct wbuf *w, unsigned tag, const void *rec)
{
    const struct fsm_cmd *c = rec;
    wle(w, tag, 2);
    wle(w, 4, 4);
    wle(w, FSM_CMD_HAS_ITEMS(c->type) ? c->n_items : c->n_jobs, 4);
}

static int dec_job(void *rec, void *ctx, const unsigned char *d, size_t n)
{
    struct cmd_dec *s = ctx;

    if (!s->have_n || s->is_items || s->got >= s->n ||
        fsm_job_decode(d, n, &s->jobs[s->got]) != 0) {
        return ERR_CORRUPT;
    }
    s->got++;
    return 0;
}

static void enc_jobs(struct wbuf *w, unsigned tag, const void *rec)
{
    const struct fsm_cmd *c = rec;
    for (uint32_t i = 0; i < c->n_jobs; i++) {
        encode_nested(w, tag, &job_record, &c->jobs[i]);
    }
}

static int dec_item(void *rec, void *ctx, const unsigned char *d, size_t n)
{
    struct cmd_dec *s = ctx;

    if (!s->have_n || !s->is_items || s->got >= s->n ||
        decode_record(&item_record, d, n, &s->items[s->got], NULL) != 0) {
        return ERR_CORRUPT;
    }
    s->got++;
    return 0;
}

static void enc_items(struct wbuf *w, unsigned tag, const void *rec)
{
    const struct fsm_cmd *c = rec;
    for (uint32_t i = 0; i < c->n_items; i++) {
        encode_nested(w, tag, &item_record, &c->items[i]);
    }
}

/* One u64 per job, in the jobs' order. */
static int dec_hashes(void *rec, void *ctx, const unsigned char *d, size_t n)
{
    struct cmd_dec *s = ctx;

    if (!s->have_n || n != (size_t)s->n * 8) {
        return ERR_CORRUPT;
    }
    s->hashes = (const uint64_t *)(const void *)d;
    return 0;
}

static void enc_hashes(struct wbuf *w, unsigned tag, const void *rec)
{
    const struct fsm_cmd *c = rec;
    if (c->hashes == NULL) {
        return;
    }
    wle(w, tag, 2);
    wle(w, (uint64_t)c->n_jobs * 8, 4);
    for (uint32_t i = 0; i < c->n_jobs; i++) {
        uint64_t h;
        memcpy(&h, &c->hashes[i], sizeof h); /* May be unaligned. */
        wle(w, h, 8);
    }
}

static int dec_patch(void *rec, void *ctx, const unsigned char *d, size_t n)
{
    struct fsm_cmd *c = rec;
    return fsm_job_decode(d, n, &c->patch) != 0 ? ERR_CORRUPT : 0;
}

/* Always written; RESUME carries patch.run_at alone. */
static void enc_patch(struct wbuf *w, unsigned tag, const void *rec)
{
    const struct fsm_cmd *c = rec;
    struct fsm_job pj;

    if (c->type != FSM_CMD_RESUME) {
        encode_nested(w, tag, &job_record, &c->patch);
        return;
    }
    memset(&pj, 0, sizeof pj);
    pj.run_at = c->patch.run_at;
    encode_nested(w, tag, &job_record, &pj);
}

static int dec_worker(void *rec, void *ctx, const unsigned char *d, size_t n)
{
    struct fsm_cmd *c = rec;
    return fsm_worker_decode(d, n, &c->worker) != 0 ? ERR_CORRUPT : 0;
}

static void enc_worker(struct wbuf *w, unsigned tag, const void *rec)
{
    const struct fsm_cmd *c = rec;
    encode_nested(w, tag, &worker_record, &c->worker);
}

static int dec_token(void *rec, void *ctx, const unsigned char *d, size_t n)
{
    struct fsm_cmd *c = rec;
    (void)ctx;
    return fsm_token_decode(d, n, &c->token) != 0 ? ERR_CORRUPT : 0;
}

static void enc_token(struct wbuf *w, unsigned tag, const void *rec)
{
    const struct fsm_cmd *c = rec;
    encode_nested(w, tag, &token_record, &c->token);
}

static int dec_webhook(void *rec, void *ctx, const unsigned char *d, size_t n)
{
    struct fsm_cmd *c = rec;
    (void)ctx;
    return fsm_webhook_decode(d, n, &c->webhook) != 0 ? ERR_CORRUPT : 0;
}

static void enc_webhook(struct wbuf *w, unsigned tag, const void *rec)
{
    const struct fsm_cmd *c = rec;
    encode_nested(w, tag, &webhook_record, &c->webhook);
}

/* Any command type decodes any of these (a newer tag is skipped); which of
 * them a type writes is its layout. */
static const struct field cmd_fields[] = {
    [C_N_JOBS] = FUNC(dec_count, enc_count),
    [C_JOB] = FUNC(dec_job, enc_jobs),
    [C_HASHES] = FUNC(dec_hashes, enc_hashes),
    [C_ID] = U64(struct fsm_cmd, id),
    [C_MASK] = U32(struct fsm_cmd, mask),
    [C_PATCH] = FUNC(dec_patch, enc_patch),
    [C_NODE_ID] = U64(struct fsm_cmd, node_id),
    [C_RAFT_ADDR] = STR(struct fsm_cmd, raft_addr),
    [C_HTTP_ADDR] = STR(struct fsm_cmd, http_addr),
    [C_ITEM] = FUNC(dec_item, enc_items),
    [C_WORKER] = FUNC(dec_worker, enc_worker),
    [C_QUEUE_NAME] = STR(struct fsm_cmd, queue.name),
    [C_QUEUE_PAUSED] = U8(struct fsm_cmd, queue.paused),
    [C_QUEUE_CONC] = U32(struct fsm_cmd, queue.concurrency),
    [C_WORKFLOW] = STR(struct fsm_cmd, workflow),
    [C_TOKEN] = FUNC(dec_token, enc_token),
    [C_QUEUE_MAX_PENDING] = U32(struct fsm_cmd, queue.max_pending),
    [C_WEBHOOK] = FUNC(dec_webhook, enc_webhook),
};

static const struct record cmd_record = RECORD(struct fsm_cmd, cmd_fields);

/* The fields a command of @type writes, in wire order (0-terminated). */
static const uint8_t *cmd_layout(uint8_t type)
{
    static const uint8_t items[] = {C_ID, C_N_JOBS, C_ITEM, 0};
    static const uint8_t layouts[][5] = {
        [FSM_CMD_SUBMIT] = {C_N_JOBS, C_JOB, C_WORKFLOW, C_HASHES},
        [FSM_CMD_PATCH] = {C_ID, C_MASK, C_PATCH},
        [FSM_CMD_CANCEL] = {C_ID},
        [FSM_CMD_PAUSE] = {C_ID},
        [FSM_CMD_CANCEL_WF] = {C_ID},
        [FSM_CMD_RESUME] = {C_ID, C_PATCH},
        [FSM_CMD_QUEUE_SET] = {C_QUEUE_NAME, C_QUEUE_PAUSED, C_QUEUE_CONC,
                               C_QUEUE_MAX_PENDING},
        [FSM_CMD_WORKER_REG] = {C_WORKER},
        [FSM_CMD_NODE_SET] = {C_NODE_ID, C_RAFT_ADDR, C_HTTP_ADDR},
        [FSM_CMD_NODE_DEL] = {C_NODE_ID, C_RAFT_ADDR, C_HTTP_ADDR},
        [FSM_CMD_TOKEN_SET] = {C_TOKEN},
        [FSM_CMD_TOKEN_DEL] = {C_ID},
        [FSM_CMD_ACL_BOOTSTRAP] = {C_TOKEN},
        [FSM_CMD_WEBHOOK_SET] = {C_WEBHOOK},
        [FSM_CMD_WEBHOOK_DEL] = {C_ID},
    };

    if (FSM_CMD_HAS_ITEMS(type)) {
        return items;
    }
    if (type >= sizeof layouts / sizeof layouts[0]) {
        return layouts[0]; /* Empty (NOOP, unknown types). */
    }
    return layouts[type];
}

int fsm_cmd_encode(const struct fsm_cmd *cmd, void **buf, size_t *len)
{
    struct wbuf w = {NULL, 0, 0, 0};

    wle(&w, CODEC_VERSION, 1);
    wle(&w, cmd->type, 1);
    for (const uint8_t *t = cmd_layout(cmd->type); *t != 0; t++) {
        encode_field(&w, *t, &cmd_record.fields[*t], cmd);
    }
    if (w.err != 0) {
        free(w.p);
        return w.err;
    }
    *buf = w.p;
    *len = w.len;
    return 0;
}

int fsm_cmd_type(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    return len >= 2 && p[0] == CODEC_VERSION ? p[1] : -1;
}

int fsm_cmd_decode(const void *buf,
                   size_t len,
                   struct fsm_cmd *cmd,
                   struct fsm_job **jobs_store)
{
    const unsigned char *p = buf;
    struct cmd_dec s = {NULL, NULL, NULL, 0, 0, false, false};
    int rv;

    memset(cmd, 0, sizeof *cmd);
    *jobs_store = NULL;
    if (fsm_cmd_type(buf, len) < 0) {
        return ERR_CORRUPT;
    }
    cmd->type = p[1];
    s.is_items = FSM_CMD_HAS_ITEMS(cmd->type);
    rv = decode_fields(&cmd_record, cmd, &s, p + 2, p + len);
    if (rv == 0 &&
        (s.got != s.n ||
         ((cmd->type == FSM_CMD_SUBMIT || s.is_items) && !s.have_n))) {
        rv = ERR_CORRUPT;
    }
    if (rv != 0) {
        free(s.jobs);
        free(s.items);
        return rv;
    }
    if (s.is_items) {
        cmd->n_items = s.n;
        cmd->items = s.items;
    } else {
        cmd->n_jobs = s.n;
        cmd->jobs = s.jobs;
    }
    cmd->hashes = s.hashes; /* May be unaligned: read with memcpy. */
    *jobs_store = s.jobs;
    return 0;
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
    const unsigned char *p = (const unsigned char *)h->p;
    uint32_t len;

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
    memset(a, 0, sizeof *a);
    if (decode_fields(&attempt_record, a, NULL, p + 5, p + 4 + len) != 0) {
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
    struct fsm_attempt tmp, rec = *a;
    unsigned count = 0;

    while (fsm_attempt_next(&it, &tmp) == 1) {
        count++;
    }
    /* Drop the oldest so that at most FSM_MAX_HISTORY remain. */
    while (count >= FSM_MAX_HISTORY && fsm_attempt_next(&skip, &tmp) == 1) {
        count--;
    }
    if (rec.output.len > FSM_MAX_HISTORY_OUTPUT) { /* Keep the tail. */
        rec.output.p += rec.output.len - FSM_MAX_HISTORY_OUTPUT;
        rec.output.len = FSM_MAX_HISTORY_OUTPUT;
    }
    wbytes(&w, skip.p, skip.len);
    size_t at = w.len;
    wle(&w, 0, 4); /* Length, patched below. */
    encode_record(&w, &attempt_record, &rec);
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
