/* fsm/codec.c and fsm/batch.c: round trips, unknown fields kept, garbage
 * refused without crashing, batches padded to 8 bytes. */

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tests/unit/fsm/helpers.h"

static void test_codec_job_round_trip(void **state)
{
    uint64_t deps[2] = {0x100000, 0x200001};
    struct fsm_job j = tjob("shell"), d;
    void *buf;
    size_t len;
    (void)state;

    j.id = 0x500003;
    j.status = FSM_RUNNING;
    j.priority = -42;
    j.attempts = 2;
    j.created_at = 1700000000123;
    j.run_at = 1700000009999;
    j.timeout_ms = 1500;
    j.user_id = tstr("u1");
    j.idem_key = tstr("k");
    j.last_error = tstr("boom");
    j.result = tstr("{\"ok\":1}");
    j.deps = deps;
    j.n_deps = 2;
    assert_int_equal(fsm_job_encode(&j, &buf, &len), 0);
    assert_int_equal(fsm_job_decode(buf, len, &d), 0);
    assert_int_equal(d.id, j.id);
    assert_int_equal(d.status, FSM_RUNNING);
    assert_int_equal(d.priority, -42);
    assert_int_equal(d.attempts, 2);
    assert_int_equal(d.max_attempts, 3);
    assert_int_equal(d.created_at, j.created_at);
    assert_int_equal(d.run_at, j.run_at);
    assert_int_equal(d.timeout_ms, 1500);
    assert_memory_equal(d.type.p, "shell", 5);
    assert_memory_equal(d.user_id.p, "u1", 2);
    assert_memory_equal(d.last_error.p, "boom", 4);
    assert_int_equal(d.n_deps, 2);
    uint64_t got;
    memcpy(&got, &d.deps[1], 8);
    assert_int_equal(got, 0x200001);
    free(buf);
}

static void test_codec_unknown_fields_kept(void **state)
{
    struct fsm_job j = tjob("t"), d, d2;
    void *buf, *buf2;
    size_t len, len2;
    /* A newer node's field: tag 900, 3 bytes. */
    const unsigned char extra[] = {0x84, 0x03, 3, 0, 0, 0, 'n', 'e', 'w'};
    (void)state;

    assert_int_equal(fsm_job_encode(&j, &buf, &len), 0);
    buf = realloc(buf, len + sizeof extra);
    memcpy((char *)buf + len, extra, sizeof extra);
    len += sizeof extra;
    assert_int_equal(fsm_job_decode(buf, len, &d), 0);
    assert_int_equal(d.extra.len, sizeof extra);
    d.priority = 9; /* An update by this version... */
    assert_int_equal(fsm_job_encode(&d, &buf2, &len2), 0);
    assert_int_equal(fsm_job_decode(buf2, len2, &d2), 0);
    assert_int_equal(d2.priority, 9); /* ...keeps the newer field. */
    assert_int_equal(d2.extra.len, sizeof extra);
    assert_memory_equal(d2.extra.p, extra, sizeof extra);
    free(buf);
    free(buf2);
}

static void test_codec_garbage_is_corrupt(void **state)
{
    struct fsm_job jobs[2] = {tjob("a"), tjob("bb")};
    uint64_t hashes[2] = {1, 2};
    struct fsm_cmd c, d;
    struct fsm_job *store;
    void *buf;
    size_t len;
    (void)state;

    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_SUBMIT;
    c.n_jobs = 2;
    c.jobs = jobs;
    c.hashes = hashes;
    assert_int_equal(fsm_cmd_encode(&c, &buf, &len), 0);
    /* The type without a decode (the leader's check of a forwarded
     * command); too short or another version: -1. */
    assert_int_equal(fsm_cmd_type(buf, len), FSM_CMD_SUBMIT);
    assert_int_equal(fsm_cmd_type(buf, 1), -1);
    ((unsigned char *)buf)[0] ^= 0xff;
    assert_int_equal(fsm_cmd_type(buf, len), -1);
    ((unsigned char *)buf)[0] ^= 0xff;
    assert_int_equal(fsm_cmd_decode(buf, len, &d, &store), 0);
    assert_int_equal(d.n_jobs, 2);
    assert_memory_equal(d.jobs[1].type.p, "bb", 2);
    free(store);
    /* A truncation fails, except exactly after the last job (the hashes
     * are optional): never a command with fewer jobs than announced. */
    int whole = 0;
    for (size_t cut = 0; cut < len; cut++) {
        int rv = fsm_cmd_decode(buf, cut, &d, &store);
        if (rv == 0) {
            assert_int_equal(d.n_jobs, 2);
            assert_null(d.hashes);
            free(store);
            whole++;
            continue;
        }
        assert_int_equal(rv, ERR_CORRUPT);
        assert_null(store);
    }
    assert_int_equal(whole, 1);
    /* Flipped bytes never crash (ASan/UBSan watch). */
    unsigned char *p = buf;
    for (size_t i = 0; i < len; i++) {
        p[i] ^= 0xff;
        if (fsm_cmd_decode(buf, len, &d, &store) == 0) {
            free(store);
        }
        p[i] ^= 0xff;
    }
    /* Job records: the empty buffer and a cut inside a field are refused. */
    struct fsm_job j = tjob("shell"), out;
    void *jb;
    size_t jl;
    assert_int_equal(fsm_job_encode(&j, &jb, &jl), 0);
    assert_int_equal(fsm_job_decode(jb, 0, &out), ERR_CORRUPT);
    assert_int_equal(fsm_job_decode(jb, jl - 1, &out), ERR_CORRUPT);
    assert_int_equal(fsm_job_decode(jb, jl, &out), 0);
    free(jb);
    free(buf);
}

static void test_codec_batch_padded(void **state)
{
    static const size_t sizes[] = {1, 3, 7, 8, 9, 13, 15, 16, 17, 100, 1001};
    struct fsm_batch b;
    char cmd[2048];
    (void)state;

    memset(cmd, 'x', sizeof cmd);
    fsm_batch_init(&b);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t before = b.len == 0 ? FSM_BATCH_HEADER : b.len;
        assert_int_equal(fsm_batch_append(&b, cmd, sizes[i]), 0);
        assert_int_equal(before % 8, 0);
        assert_int_equal(b.len % 8, 0);
    }
    fsm_batch_seal(&b, 123);
    assert_int_equal(b.n, sizeof sizes / sizeof sizes[0]);
    assert_int_equal(b.len % 8, 0);
    assert_memory_equal(b.buf, "ROTA", 4);
    fsm_batch_reset(&b);
    assert_int_equal(b.n, 0);
    fsm_batch_close(&b);
}

static void test_codec_status_names(void **state)
{
    (void)state;
    assert_int_equal(fsm_status_parse("queued"), FSM_PENDING);
    assert_int_equal(fsm_status_parse("in-progress"), FSM_RUNNING);
    assert_int_equal(fsm_status_parse("cancelled"), FSM_CANCELLED);
    assert_int_equal(fsm_status_parse("nope"), 0);
    assert_string_equal(fsm_status_name(FSM_WAITING), "waiting");
    assert_null(fsm_status_name(99));
    assert_true(fsm_status_is_final(FSM_FAILED));
    assert_false(fsm_status_is_final(FSM_RUNNING));
}

/* ---- Every field, unknown tags, the bytes themselves ----------------------
 */

static void assert_str_equal(struct fsm_str a, struct fsm_str b)
{
    assert_int_equal(a.len, b.len);
    if (a.len > 0) {
        assert_memory_equal(a.p, b.p, a.len);
    }
}

/* A job with every field set (none zero or empty). */
static struct fsm_job full_job(const uint64_t *deps, uint32_t n_deps)
{
    /* A newer node's field (tag 900) kept from an earlier decode. */
    static const unsigned char extra[] = {0x84, 0x03, 2, 0, 0, 0, 'x', 'y'};
    struct fsm_job j;

    memset(&j, 0, sizeof j);
    j.id = 0x500003;
    j.status = FSM_RUNNING;
    j.priority = -7;
    j.attempts = 2;
    j.max_attempts = 5;
    j.created_at = 1700000000001;
    j.updated_at = 1700000000002;
    j.run_at = 1700000000003;
    j.started_at = 1700000000004;
    j.finished_at = -5; /* Signed fields keep their sign. */
    j.timeout_ms = 1500;
    j.type = tstr("shell");
    j.queue = tstr("q1");
    j.user_id = tstr("u1");
    j.idem_key = tstr("idem");
    j.spec = tstr("{\"payload\":{}}");
    j.last_error = tstr("boom");
    j.result = tstr("{\"ok\":1}");
    j.deps = deps;
    j.n_deps = n_deps;
    j.worker_id = 0x700001;
    j.lease_token = 99;
    j.exit_code = -2;
    j.output = tstr("out");
    j.history = tstr("hist");
    j.flags = FSM_JOB_RUN | FSM_JOB_WORKFLOW;
    j.parent = 0x600001;
    j.nominal_at = 1700000000005;
    j.last_run = 0x800001;
    j.ckey = tstr("ck");
    j.ckey_limit = 3;
    j.worker_name = tstr("wname");
    j.worker_host = tstr("whost");
    j.extra.p = (const char *)extra;
    j.extra.len = sizeof extra;
    return j;
}

static void assert_job_equal(const struct fsm_job *a, const struct fsm_job *b)
{
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->priority, b->priority);
    assert_int_equal(a->attempts, b->attempts);
    assert_int_equal(a->max_attempts, b->max_attempts);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->updated_at, b->updated_at);
    assert_int_equal(a->run_at, b->run_at);
    assert_int_equal(a->started_at, b->started_at);
    assert_int_equal(a->finished_at, b->finished_at);
    assert_int_equal(a->timeout_ms, b->timeout_ms);
    assert_str_equal(a->type, b->type);
    assert_str_equal(a->queue, b->queue);
    assert_str_equal(a->user_id, b->user_id);
    assert_str_equal(a->idem_key, b->idem_key);
    assert_str_equal(a->spec, b->spec);
    assert_str_equal(a->last_error, b->last_error);
    assert_str_equal(a->result, b->result);
    assert_int_equal(a->n_deps, b->n_deps);
    if (a->n_deps > 0) {
        assert_memory_equal(a->deps, b->deps, a->n_deps * sizeof(uint64_t));
    }
    assert_int_equal(a->worker_id, b->worker_id);
    assert_int_equal(a->lease_token, b->lease_token);
    assert_int_equal(a->exit_code, b->exit_code);
    assert_str_equal(a->output, b->output);
    assert_str_equal(a->history, b->history);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->parent, b->parent);
    assert_int_equal(a->nominal_at, b->nominal_at);
    assert_int_equal(a->last_run, b->last_run);
    assert_str_equal(a->ckey, b->ckey);
    assert_int_equal(a->ckey_limit, b->ckey_limit);
    assert_str_equal(a->worker_name, b->worker_name);
    assert_str_equal(a->worker_host, b->worker_host);
    assert_str_equal(a->extra, b->extra);
}

static void test_codec_job_round_trip_all_fields(void **state)
{
    uint64_t deps[3] = {0x100000, 0x200001, FSM_DEP_LOCAL | 1};
    struct fsm_job j = full_job(deps, 3), d;
    void *buf, *buf2;
    size_t len, len2;
    (void)state;

    assert_int_equal(fsm_job_encode(&j, &buf, &len), 0);
    assert_int_equal(fsm_job_decode(buf, len, &d), 0);
    assert_job_equal(&j, &d);
    /* Encoding the decoded job gives the same bytes. */
    assert_int_equal(fsm_job_encode(&d, &buf2, &len2), 0);
    assert_int_equal(len2, len);
    assert_memory_equal(buf2, buf, len);
    free(buf);
    free(buf2);
}

static struct fsm_item full_item(uint64_t job_id)
{
    struct fsm_item it;

    memset(&it, 0, sizeof it);
    it.job_id = job_id;
    it.worker_id = 0x700002;
    it.token = 77;
    it.ok = 1;
    it.retryable = 1;
    it.exit_code = -9;
    it.retry_at = 1700000000006;
    it.error = tstr("err");
    it.output = tstr("output");
    it.result = tstr("{}");
    it.nominal = 1700000000007;
    it.next_at = 1700000000008;
    it.action = FSM_FIRE_REPLACE;
    it.skipped = 4;
    return it;
}

static void assert_item_equal(const struct fsm_item *a,
                              const struct fsm_item *b)
{
    assert_int_equal(a->job_id, b->job_id);
    assert_int_equal(a->worker_id, b->worker_id);
    assert_int_equal(a->token, b->token);
    assert_int_equal(a->ok, b->ok);
    assert_int_equal(a->retryable, b->retryable);
    assert_int_equal(a->exit_code, b->exit_code);
    assert_int_equal(a->retry_at, b->retry_at);
    assert_str_equal(a->error, b->error);
    assert_str_equal(a->output, b->output);
    assert_str_equal(a->result, b->result);
    assert_int_equal(a->nominal, b->nominal);
    assert_int_equal(a->next_at, b->next_at);
    assert_int_equal(a->action, b->action);
    assert_int_equal(a->skipped, b->skipped);
}

/* What a command of @c's type carries arrived in @d; the rest is zero. */
static void assert_cmd_carried(const struct fsm_cmd *c, const struct fsm_cmd *d)
{
    bool items = FSM_CMD_HAS_ITEMS(c->type), submit = c->type == FSM_CMD_SUBMIT;
    bool with_id = items || c->type == FSM_CMD_PATCH ||
                   c->type == FSM_CMD_CANCEL || c->type == FSM_CMD_PAUSE ||
                   c->type == FSM_CMD_CANCEL_WF || c->type == FSM_CMD_RESUME;
    bool node = c->type == FSM_CMD_NODE_SET || c->type == FSM_CMD_NODE_DEL;
    struct fsm_job zero;

    memset(&zero, 0, sizeof zero);
    assert_int_equal(d->type, c->type);
    assert_int_equal(d->n_jobs, submit ? c->n_jobs : 0);
    for (uint32_t i = 0; i < d->n_jobs; i++) {
        assert_job_equal(&c->jobs[i], &d->jobs[i]);
    }
    if (submit) {
        assert_memory_equal(d->hashes, c->hashes, c->n_jobs * 8);
    } else {
        assert_null(d->hashes);
    }
    assert_str_equal(d->workflow, submit ? c->workflow : zero.type);
    assert_int_equal(d->id, with_id ? c->id : 0);
    assert_int_equal(d->mask, c->type == FSM_CMD_PATCH ? c->mask : 0);
    if (c->type == FSM_CMD_PATCH) {
        assert_job_equal(&c->patch, &d->patch);
    } else {
        zero.run_at = c->type == FSM_CMD_RESUME ? c->patch.run_at : 0;
        assert_job_equal(&zero, &d->patch); /* RESUME: run_at alone. */
    }
    assert_int_equal(d->n_items, items ? c->n_items : 0);
    for (uint32_t i = 0; i < d->n_items; i++) {
        assert_item_equal(&c->items[i], &d->items[i]);
    }
    bool reg = c->type == FSM_CMD_WORKER_REG, qs = c->type == FSM_CMD_QUEUE_SET;
    assert_int_equal(d->worker.id, reg ? c->worker.id : 0);
    assert_str_equal(d->worker.name, reg ? c->worker.name : zero.type);
    assert_str_equal(d->worker.queues, reg ? c->worker.queues : zero.type);
    assert_int_equal(d->worker.concurrency, reg ? c->worker.concurrency : 0);
    assert_int_equal(d->worker.registered_at,
                     reg ? c->worker.registered_at : 0);
    assert_int_equal(d->worker.down, reg ? c->worker.down : 0);
    assert_str_equal(d->worker.host, reg ? c->worker.host : zero.type);
    assert_str_equal(d->queue.name, qs ? c->queue.name : zero.type);
    assert_int_equal(d->queue.paused, qs ? c->queue.paused : 0);
    assert_int_equal(d->queue.concurrency, qs ? c->queue.concurrency : 0);
    assert_int_equal(d->node_id, node ? c->node_id : 0);
    assert_str_equal(d->raft_addr, node ? c->raft_addr : zero.type);
    assert_str_equal(d->http_addr, node ? c->http_addr : zero.type);
}

static void test_codec_cmd_round_trip_all_fields(void **state)
{
    uint64_t deps[2] = {0x100000, 0x200001};
    struct fsm_job jobs[2] = {full_job(deps, 2), full_job(NULL, 0)};
    struct fsm_item items[2] = {full_item(0x500001), full_item(0x500002)};
    uint64_t hashes[2] = {0xdeadbeef, 0xfeedface};
    struct fsm_cmd c, d;
    struct fsm_job *store;
    void *buf;
    size_t len;
    (void)state;

    memset(&c, 0, sizeof c);
    c.n_jobs = 2;
    c.jobs = jobs;
    c.hashes = hashes;
    c.id = 0x500009;
    c.mask = FSM_PATCH_PRIORITY | FSM_PATCH_TIMEOUT;
    c.patch = full_job(deps, 1);
    c.n_items = 2;
    c.items = items;
    c.worker.id = 0x700003;
    c.worker.name = tstr("w1");
    c.worker.queues = tstr("a,b");
    c.worker.concurrency = 8;
    c.worker.registered_at = 1700000000009;
    c.worker.down = 1;
    c.worker.host = tstr("h1");
    c.queue.name = tstr("q2");
    c.queue.paused = 1;
    c.queue.concurrency = 6;
    c.workflow = tstr("wf");
    c.node_id = 3;
    c.raft_addr = tstr("10.0.0.3:9000");
    c.http_addr = tstr("10.0.0.3:8080");
    for (uint8_t type = FSM_CMD_SUBMIT; type <= FSM_CMD_RELEASE; type++) {
        c.type = type;
        assert_int_equal(fsm_cmd_encode(&c, &buf, &len), 0);
        assert_int_equal(fsm_cmd_decode(buf, len, &d, &store), 0);
        assert_cmd_carried(&c, &d);
        fsm_cmd_free(&d, store);
        free(buf);
    }
}

struct tbuf
{
    unsigned char b[256];
    size_t n;
};

static void tb_le(struct tbuf *t, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        t->b[t->n++] = (unsigned char)(v >> (8 * i));
    }
}

static void tb_tlv(struct tbuf *t, unsigned tag, const void *data, size_t n)
{
    tb_le(t, tag, 2);
    tb_le(t, n, 4);
    memcpy(t->b + t->n, data, n);
    t->n += n;
}

static void tb_num(struct tbuf *t, unsigned tag, uint64_t v, unsigned n)
{
    tb_le(t, tag, 2);
    tb_le(t, n, 4);
    tb_le(t, v, n);
}

/* Tags this version does not know: a job keeps them (extra), the other
 * records and the commands skip them; the known fields around still decode.
 * Tag numbers below are the wire format's. */
static void test_codec_unknown_tag_decodes(void **state)
{
    struct tbuf t = {{0}, 0}, nested = {{0}, 0};
    struct fsm_job j;
    struct fsm_cmd d;
    struct fsm_job *store;
    (void)state;

    /* A job whose first field is unknown. */
    tb_le(&t, 1, 1);
    tb_tlv(&t, 900, "new", 3);
    tb_tlv(&t, 12, "shell", 5); /* type */
    tb_num(&t, 3, 7, 4);        /* priority */
    assert_int_equal(fsm_job_decode(t.b, t.n, &j), 0);
    assert_memory_equal(j.type.p, "shell", 5);
    assert_int_equal(j.priority, 7);
    assert_int_equal(j.extra.len, 9);
    assert_ptr_equal(j.extra.p, t.b + 1);
    /* A CANCEL with a field of a newer version. */
    t.n = 0;
    tb_le(&t, 1, 1);
    tb_le(&t, FSM_CMD_CANCEL, 1);
    tb_tlv(&t, 900, "xy", 2);
    tb_num(&t, 4, 42, 8); /* id */
    assert_int_equal(fsm_cmd_decode(t.b, t.n, &d, &store), 0);
    assert_int_equal(d.id, 42);
    fsm_cmd_free(&d, store);
    /* An ASSIGN whose item has an unknown field. */
    tb_le(&nested, 1, 1);
    tb_num(&nested, 1, 5, 8); /* job */
    tb_tlv(&nested, 901, "z", 1);
    tb_num(&nested, 2, 6, 8); /* worker */
    t.n = 0;
    tb_le(&t, 1, 1);
    tb_le(&t, FSM_CMD_ASSIGN, 1);
    tb_num(&t, 1, 1, 4); /* count */
    tb_tlv(&t, 10, nested.b, nested.n);
    assert_int_equal(fsm_cmd_decode(t.b, t.n, &d, &store), 0);
    assert_int_equal(d.n_items, 1);
    assert_int_equal(d.items[0].job_id, 5);
    assert_int_equal(d.items[0].worker_id, 6);
    fsm_cmd_free(&d, store);
    /* A WORKER_REG whose worker has an unknown field. */
    nested.n = 0;
    tb_le(&nested, 1, 1);
    tb_num(&nested, 1, 9, 8); /* id */
    tb_tlv(&nested, 77, "", 0);
    tb_tlv(&nested, 2, "w", 1); /* name */
    t.n = 0;
    tb_le(&t, 1, 1);
    tb_le(&t, FSM_CMD_WORKER_REG, 1);
    tb_tlv(&t, 11, nested.b, nested.n);
    assert_int_equal(fsm_cmd_decode(t.b, t.n, &d, &store), 0);
    assert_int_equal(d.worker.id, 9);
    assert_memory_equal(d.worker.name.p, "w", 1);
    fsm_cmd_free(&d, store);
}

/* The bytes of a small job and command: the wire format is pinned. */
static void test_codec_wire_bytes(void **state)
{
    static const unsigned char job[] = {
        1,                                                     /* version */
        1,  0, 8, 0, 0, 0, 3,    0,    0,    0,    0, 0, 5, 0, /* id */
        2,  0, 1, 0, 0, 0, 2,                                  /* status */
        3,  0, 4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,             /* priority -1 */
        12, 0, 1, 0, 0, 0, 't',                                /* type */
    };
    static const unsigned char cancel[] = {
        1, FSM_CMD_CANCEL, 4, 0, 8, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0,
    };
    struct fsm_job j;
    struct fsm_cmd c;
    void *buf;
    size_t len;
    (void)state;

    memset(&j, 0, sizeof j);
    j.id = 0x5000000000003;
    j.status = 2;
    j.priority = -1;
    j.type = tstr("t");
    assert_int_equal(fsm_job_encode(&j, &buf, &len), 0);
    assert_int_equal(len, sizeof job);
    assert_memory_equal(buf, job, sizeof job);
    free(buf);
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_CANCEL;
    c.id = 42;
    assert_int_equal(fsm_cmd_encode(&c, &buf, &len), 0);
    assert_int_equal(len, sizeof cancel);
    assert_memory_equal(buf, cancel, sizeof cancel);
    free(buf);
}

/* Found by fuzz_codec: a decoded SUBMIT's hashes point into the buffer,
 * where they need not be 8-byte aligned (fsm.h: "read with memcpy"), and
 * encoding that command read them as uint64_t (UBSan: misaligned load).
 * Decoded at every offset, it encodes back to the same bytes. */
static void test_codec_decoded_hashes_unaligned(void **state)
{
    struct fsm_job jobs[2] = {tjob("a"), tjob("bb")};
    uint64_t hashes[2] = {0x1122334455667788, 42};
    struct fsm_cmd c, d;
    struct fsm_job *store;
    void *buf, *again;
    size_t len, len2;
    (void)state;

    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_SUBMIT;
    c.n_jobs = 2;
    c.jobs = jobs;
    c.hashes = hashes;
    assert_int_equal(fsm_cmd_encode(&c, &buf, &len), 0);
    unsigned char *shifted = malloc(len + 8);
    for (size_t off = 0; off < 8; off++) {
        memcpy(shifted + off, buf, len);
        assert_int_equal(fsm_cmd_decode(shifted + off, len, &d, &store), 0);
        assert_non_null(d.hashes);
        assert_int_equal(fsm_cmd_encode(&d, &again, &len2), 0);
        assert_int_equal(len2, len);
        assert_memory_equal(again, buf, len);
        free(again);
        fsm_cmd_free(&d, store);
    }
    free(shifted);
    free(buf);
}

/* Found by fuzz_codec: a job record with known fields between two unknown
 * ones. The unknown ones are kept as one span, which then held a stale
 * copy of the known fields between: written back after an update, the
 * copy overrode the update at the next decode. Such a record is corrupt
 * (no version writes one); unknown fields together still decode. */
static void test_codec_unknown_fields_split(void **state)
{
    struct tbuf t = {{0}, 0};
    struct fsm_job j;
    (void)state;

    tb_le(&t, 1, 1);
    tb_tlv(&t, 900, "new", 3);
    tb_num(&t, 3, 7, 4); /* priority */
    tb_tlv(&t, 901, "newer", 5);
    assert_int_equal(fsm_job_decode(t.b, t.n, &j), ERR_CORRUPT);

    t.n = 0;
    tb_le(&t, 1, 1);
    tb_num(&t, 3, 7, 4); /* priority */
    tb_tlv(&t, 900, "new", 3);
    tb_tlv(&t, 901, "newer", 5);
    assert_int_equal(fsm_job_decode(t.b, t.n, &j), 0);
    assert_int_equal(j.priority, 7);
    assert_int_equal(j.extra.len, 6 + 3 + 6 + 5);
}

/* ---- Old records (written before attempts said who ran them) ------------
 * The raft log and the LMDB state of a cluster hold records of every older
 * version: they decode, the new fields empty. Bytes built by hand, as the
 * version before worker_name/worker_host wrote them. */

/* One attempt entry of a history list: len u32, then the record. */
static void tb_attempt(struct tbuf *list, const struct tbuf *rec)
{
    tb_le(list, rec->n, 4);
    memcpy(list->b + list->n, rec->b, rec->n);
    list->n += rec->n;
}

static void test_codec_old_attempt_decodes(void **state)
{
    struct tbuf rec = {{0}, 0}, list = {{0}, 0};
    struct fsm_attempt at, first, second;
    struct fsm_str h, out;
    char *mem = NULL;
    (void)state;

    tb_le(&rec, 1, 1);
    tb_num(&rec, 1, 1, 4);                  /* number */
    tb_num(&rec, 2, FSM_ATTEMPT_FAILED, 1); /* outcome */
    tb_num(&rec, 3, 0x700001, 8);           /* worker id */
    tb_num(&rec, 4, 99, 8);                 /* token */
    tb_num(&rec, 5, 1700000000001LL, 8);    /* started */
    tb_num(&rec, 6, 1700000000002LL, 8);    /* finished */
    tb_num(&rec, 7, 3, 4);                  /* exit code */
    tb_tlv(&rec, 8, "exit 3", 6);           /* error */
    tb_attempt(&list, &rec);
    h = (struct fsm_str){(const char *)list.b, (uint32_t)list.n};
    assert_int_equal(fsm_attempt_next(&h, &at), 1);
    assert_int_equal(at.number, 1);
    assert_int_equal(at.outcome, FSM_ATTEMPT_FAILED);
    assert_int_equal(at.worker_id, 0x700001);
    assert_int_equal(at.token, 99);
    assert_int_equal(at.exit_code, 3);
    assert_memory_equal(at.error.p, "exit 3", 6);
    assert_int_equal(at.worker_name.len, 0);
    assert_int_equal(at.worker_host.len, 0);
    assert_int_equal(fsm_attempt_next(&h, &at), 0);

    /* A new attempt appended to the old list: both read back. */
    memset(&at, 0, sizeof at);
    at.number = 2;
    at.outcome = FSM_ATTEMPT_OK;
    at.worker_id = 0x800001;
    at.worker_name = tstr("w2");
    at.worker_host = tstr("host-b");
    h = (struct fsm_str){(const char *)list.b, (uint32_t)list.n};
    assert_int_equal(fsm_attempt_append(h, &at, &out, &mem), 0);
    assert_int_equal(fsm_attempt_next(&out, &first), 1);
    assert_int_equal(first.worker_id, 0x700001);
    assert_int_equal(first.worker_name.len, 0);
    assert_int_equal(fsm_attempt_next(&out, &second), 1);
    assert_int_equal(second.worker_id, 0x800001);
    assert_int_equal(second.worker_name.len, 2);
    assert_memory_equal(second.worker_name.p, "w2", 2);
    assert_int_equal(second.worker_host.len, 6);
    assert_memory_equal(second.worker_host.p, "host-b", 6);
    assert_int_equal(fsm_attempt_next(&out, &second), 0);
    free(mem);
}

/* The new fields' tags are pinned: an attempt's name 10 and host 11, a
 * job's worker name 31 and host 32, a worker's host 9. */
static void test_codec_who_ran_it_wire_bytes(void **state)
{
    struct tbuf want = {{0}, 0};
    struct fsm_attempt at;
    struct fsm_job j;
    struct fsm_str out;
    char *mem = NULL;
    void *buf;
    size_t len;
    (void)state;

    memset(&at, 0, sizeof at);
    at.number = 1;
    at.worker_name = tstr("n");
    at.worker_host = tstr("h");
    assert_int_equal(
        fsm_attempt_append((struct fsm_str){NULL, 0}, &at, &out, &mem), 0);
    tb_le(&want, 1, 1);
    tb_num(&want, 1, 1, 4);
    tb_tlv(&want, 10, "n", 1);
    tb_tlv(&want, 11, "h", 1);
    assert_int_equal(out.len, 4 + want.n);
    assert_memory_equal(out.p + 4, want.b, want.n);
    free(mem);

    memset(&j, 0, sizeof j);
    j.id = 5;
    j.worker_name = tstr("n");
    j.worker_host = tstr("h");
    assert_int_equal(fsm_job_encode(&j, &buf, &len), 0);
    want.n = 0;
    tb_le(&want, 1, 1);
    tb_num(&want, 1, 5, 8);
    tb_tlv(&want, 31, "n", 1);
    tb_tlv(&want, 32, "h", 1);
    assert_int_equal(len, want.n);
    assert_memory_equal(buf, want.b, want.n);
    free(buf);
}

/* A job record of the older version (a running job: no worker_name) and a
 * WORKER_REG command of the older version (no host) decode. */
static void test_codec_old_job_and_worker_decode(void **state)
{
    struct tbuf t = {{0}, 0}, nested = {{0}, 0};
    struct fsm_job j;
    struct fsm_cmd d;
    struct fsm_job *store;
    void *buf;
    size_t len;
    (void)state;

    tb_le(&t, 1, 1);
    tb_num(&t, 1, 0x500001, 8);    /* id */
    tb_num(&t, 2, FSM_RUNNING, 1); /* status */
    tb_tlv(&t, 12, "shell", 5);    /* type */
    tb_num(&t, 20, 0x700001, 8);   /* worker id */
    tb_num(&t, 21, 42, 8);         /* lease token */
    tb_num(&t, 30, 2, 4);          /* ckey limit: the last old tag */
    assert_int_equal(fsm_job_decode(t.b, t.n, &j), 0);
    assert_int_equal(j.status, FSM_RUNNING);
    assert_int_equal(j.worker_id, 0x700001);
    assert_int_equal(j.lease_token, 42);
    assert_int_equal(j.ckey_limit, 2);
    assert_int_equal(j.worker_name.len, 0);
    assert_int_equal(j.worker_host.len, 0);
    assert_int_equal(j.extra.len, 0);
    /* Written back unchanged: nothing added for the empty new fields. */
    assert_int_equal(fsm_job_encode(&j, &buf, &len), 0);
    assert_int_equal(len, t.n);
    assert_memory_equal(buf, t.b, t.n);
    free(buf);

    tb_le(&nested, 1, 1);
    tb_tlv(&nested, 2, "w", 1);       /* name */
    tb_tlv(&nested, 3, "default", 7); /* queues */
    tb_num(&nested, 4, 2, 4);         /* concurrency */
    tb_tlv(&nested, 8,
           "0123456789abcdef0123456789abcdef"
           "0123456789abcdef0123456789abcdef",
           64);
    t.n = 0;
    tb_le(&t, 1, 1);
    tb_le(&t, FSM_CMD_WORKER_REG, 1);
    tb_tlv(&t, 11, nested.b, nested.n);
    assert_int_equal(fsm_cmd_decode(t.b, t.n, &d, &store), 0);
    assert_memory_equal(d.worker.name.p, "w", 1);
    assert_int_equal(d.worker.concurrency, 2);
    assert_int_equal(d.worker.secret_hash.len, 64);
    assert_int_equal(d.worker.host.len, 0);
    fsm_cmd_free(&d, store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_job_round_trip),
        cmocka_unit_test(test_codec_unknown_fields_kept),
        cmocka_unit_test(test_codec_garbage_is_corrupt),
        cmocka_unit_test(test_codec_batch_padded),
        cmocka_unit_test(test_codec_status_names),
        cmocka_unit_test(test_codec_job_round_trip_all_fields),
        cmocka_unit_test(test_codec_cmd_round_trip_all_fields),
        cmocka_unit_test(test_codec_unknown_tag_decodes),
        cmocka_unit_test(test_codec_wire_bytes),
        cmocka_unit_test(test_codec_decoded_hashes_unaligned),
        cmocka_unit_test(test_codec_unknown_fields_split),
        cmocka_unit_test(test_codec_old_attempt_decodes),
        cmocka_unit_test(test_codec_who_ran_it_wire_bytes),
        cmocka_unit_test(test_codec_old_job_and_worker_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
