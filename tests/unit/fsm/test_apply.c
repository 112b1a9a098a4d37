/* fsm/apply.c: every command, rejections as results, atomic batches,
 * idempotency, replay after restart, malformed entries, determinism. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tests/unit/fsm/helpers.h"

#define T0 1700000000000LL

#define setup tfsm_setup
#define teardown tfsm_teardown

static void test_apply_submit_statuses(void **state)
{
    struct tfsm *t = *state;
    struct fsm_job jobs[3] = {tjob("a"), tjob("b"), tjob("c")};
    const struct fsm_result *r;
    struct fsm_reader *rd;
    struct fsm_job got;

    jobs[1].run_at = T0 + 60000; /* Future: scheduled. */
    jobs[2].run_at = T0 - 1;     /* Past: pending. */
    r = tfsm_submit(t, T0, jobs, 3);
    assert_int_equal(r->code, 0);
    assert_int_equal(r->n_ids, 3);
    assert_int_equal(r->ids[0], (t->index << FSM_ID_SHIFT) | 0);
    assert_int_equal(r->ids[2], (t->index << FSM_ID_SHIFT) | 2);
    uint64_t ids[3] = {r->ids[0], r->ids[1], r->ids[2]};
    assert_int_equal(tfsm_status(t, ids[0]), FSM_PENDING);
    assert_int_equal(tfsm_status(t, ids[1]), FSM_SCHEDULED);
    assert_int_equal(tfsm_status(t, ids[2]), FSM_PENDING);
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    assert_int_equal(fsm_get_job(rd, ids[0], &got), 0);
    assert_int_equal(got.created_at, T0);
    assert_int_equal(got.updated_at, T0);
    assert_int_equal(got.attempts, 0);
    fsm_read_end(rd);
    assert_int_equal(fsm_applied_index(t->f), t->index);
}

static void test_apply_dependencies(void **state)
{
    struct tfsm *t = *state;
    struct fsm_job parent = tjob("p"), child = tjob("c");
    const struct fsm_result *r = tfsm_submit(t, T0, &parent, 1);
    uint64_t pid = r->ids[0], bad = 0xdead;

    child.deps = &pid;
    child.n_deps = 1;
    r = tfsm_submit(t, T0, &child, 1);
    assert_int_equal(r->code, 0);
    assert_int_equal(tfsm_status(t, r->ids[0]), FSM_WAITING);
    child.deps = &bad;
    r = tfsm_submit(t, T0, &child, 1);
    assert_int_equal(r->code, ERR_INVALID);
    assert_string_equal(r->field, "depends_on");
    assert_int_equal(r->n_ids, 0);
}

static void test_apply_batch_is_atomic(void **state)
{
    struct tfsm *t = *state;
    struct fsm_job jobs[3] = {tjob("a"), tjob("b"), tjob("c")};
    uint64_t before = tfsm_digest(t);
    uint64_t bad = 0xbeef;
    const struct fsm_result *r;

    jobs[2].deps = &bad; /* Only found invalid inside apply. */
    jobs[2].n_deps = 1;
    r = tfsm_submit(t, T0, jobs, 3);
    assert_int_equal(r->code, ERR_INVALID);
    assert_string_equal(r->field, "jobs[2].depends_on");
    assert_int_equal(r->n_ids, 0);
    assert_int_equal(tfsm_digest(t), before); /* Nothing but the index. */
    assert_int_equal(tfsm_status(t, (t->index << FSM_ID_SHIFT) | 0), 0);
    assert_int_equal(tfsm_status(t, (t->index << FSM_ID_SHIFT) | 1), 0);
    jobs[1].type = tstr(""); /* Refused by validation. */
    jobs[2].n_deps = 0;
    r = tfsm_submit(t, T0, jobs, 3);
    assert_int_equal(r->code, ERR_INVALID);
    assert_string_equal(r->field, "jobs[1].type");
    assert_int_equal(tfsm_digest(t), before);
}

struct seen_events
{
    unsigned n;
    uint64_t ids[8];
};

static void note_event(void *data, const struct fsm_event *ev)
{
    struct seen_events *s = data;
    if (s->n < 8) {
        s->ids[s->n] = ev->id;
    }
    s->n++;
}

/* Pending jobs of queue @q, from its counter and from the status
 * counters (all jobs of these tests are in queues whose counts we know). */
static uint64_t queue_pending(struct tfsm *t, const char *q)
{
    struct fsm_reader *rd;
    struct fsm_queue qs;
    uint64_t counts[8];

    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    assert_int_equal(fsm_get_queue(rd, tstr(q), &qs, counts), 0);
    fsm_read_end(rd);
    return counts[FSM_PENDING];
}

static uint64_t all_pending(struct tfsm *t)
{
    struct fsm_reader *rd;
    uint64_t counts[8];

    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    assert_int_equal(fsm_count_by_status(rd, counts), 0);
    fsm_read_end(rd);
    return counts[FSM_PENDING];
}

/* Several commands in one entry, the middle one refused after it wrote a
 * job: apply runs an entry's commands in one transaction and starts again
 * command by command when one is refused. Either way the refused command
 * leaves nothing (no job, no event) and the others are applied. */
static void test_apply_refusal_inside_an_entry(void **state)
{
    struct tfsm *t = *state;
    struct fsm_job a = tjob("a"), bc[2] = {tjob("b"), tjob("c")}, d = tjob("d");
    struct fsm_cmd cmds[3];
    struct seen_events seen = {0, {0}};
    const struct fsm_result *r;
    uint64_t bad = 0xbeef, idx, id_a, id_d;
    unsigned n;

    bc[1].deps = &bad; /* Refused inside apply, after b was written. */
    bc[1].n_deps = 1;
    memset(cmds, 0, sizeof cmds);
    for (int i = 0; i < 3; i++) {
        cmds[i].type = FSM_CMD_SUBMIT;
    }
    cmds[0].jobs = &a;
    cmds[0].n_jobs = 1;
    cmds[1].jobs = bc;
    cmds[1].n_jobs = 2;
    cmds[2].jobs = &d;
    cmds[2].n_jobs = 1;
    fsm_watch_events(t->f, note_event, &seen);
    r = tfsm_apply(t, T0, cmds, 3, &n);
    idx = t->index;
    assert_int_equal(n, 3);
    assert_int_equal(r[0].code, 0);
    assert_int_equal(r[1].code, ERR_INVALID);
    assert_string_equal(r[1].field, "jobs[1].depends_on");
    assert_int_equal(r[1].n_ids, 0);
    assert_int_equal(r[2].code, 0);
    assert_int_equal(r[0].n_ids, 1);
    assert_int_equal(r[2].n_ids, 1);
    id_a = r[0].ids[0];
    id_d = r[2].ids[0];
    /* Ids as before: the number b took stays used. */
    assert_int_equal(id_a, (idx << FSM_ID_SHIFT) | 0);
    assert_int_equal(id_d, (idx << FSM_ID_SHIFT) | 2);
    assert_int_equal(tfsm_status(t, id_a), FSM_PENDING);
    assert_int_equal(tfsm_status(t, id_d), FSM_PENDING);
    assert_int_equal(tfsm_status(t, (idx << FSM_ID_SHIFT) | 1), 0);
    assert_int_equal(seen.n, 2); /* a and d created, nothing of b. */
    assert_int_equal(seen.ids[0], id_a);
    assert_int_equal(seen.ids[1], id_d);
    fsm_watch_events(t->f, NULL, NULL);
    assert_int_equal(fsm_applied_index(t->f), idx);
    assert_int_equal(queue_pending(t, "default"), 2); /* a and d. */
    assert_int_equal(all_pending(t), 2);
}

/* The counters an entry moves are held while it is applied and written at
 * its end. A command still sees what the ones before it in the same entry
 * did: the fourth submit to a queue of max_pending 3 is refused even though
 * none of the three before it is in LMDB yet. Then the counts are right,
 * also across more queues in one entry than are held at once. */
static void test_apply_counts_within_an_entry(void **state)
{
    struct tfsm *t = *state;
    struct fsm_job jobs[40];
    struct fsm_cmd set, cmds[4];
    char names[40][8];
    const struct fsm_result *r;
    unsigned n;

    memset(&set, 0, sizeof set);
    set.type = FSM_CMD_QUEUE_SET;
    set.queue.name = tstr("capped");
    set.queue.max_pending = 3;
    assert_int_equal(tfsm_apply(t, T0, &set, 1, &n)[0].code, 0);
    memset(cmds, 0, sizeof cmds);
    for (int i = 0; i < 4; i++) {
        jobs[i] = tjob("a");
        jobs[i].queue = tstr("capped");
        cmds[i].type = FSM_CMD_SUBMIT;
        cmds[i].jobs = &jobs[i];
        cmds[i].n_jobs = 1;
    }
    r = tfsm_apply(t, T0, cmds, 4, &n);
    assert_int_equal(n, 4);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].code, 0);
    }
    assert_int_equal(r[3].code, ERR_BUSY);
    assert_string_equal(r[3].field, "queue");
    assert_int_equal(queue_pending(t, "capped"), 3);
    assert_int_equal(all_pending(t), 3);

    /* 40 queues in one command: more than are held at once. */
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "q%d", i);
        jobs[i] = tjob("a");
        jobs[i].queue = tstr(names[i]);
    }
    jobs[39].queue = tstr("q0"); /* And one queue twice. */
    assert_int_equal(tfsm_submit(t, T0, jobs, 40)->code, 0);
    assert_int_equal(queue_pending(t, "q0"), 2);
    assert_int_equal(queue_pending(t, "q1"), 1);
    assert_int_equal(queue_pending(t, "q38"), 1);
    assert_int_equal(all_pending(t), 43);
}

static void test_apply_idempotency(void **state)
{
    struct tfsm *t = *state;
    struct fsm_job j = tjob("a");
    struct fsm_cmd c;
    uint64_t h1 = 111, h2 = 222;
    unsigned n;
    const struct fsm_result *r;

    j.idem_key = tstr("order-1");
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_SUBMIT;
    c.n_jobs = 1;
    c.jobs = &j;
    c.hashes = &h1;
    r = tfsm_apply(t, T0, &c, 1, &n);
    assert_int_equal(r->code, 0);
    assert_int_equal(r->existed[0], 0);
    uint64_t id = r->ids[0];
    r = tfsm_apply(t, T0 + 5, &c, 1, &n);
    assert_int_equal(r->code, 0);
    assert_int_equal(r->ids[0], id);
    assert_int_equal(r->existed[0], 1);
    c.hashes = &h2;
    r = tfsm_apply(t, T0 + 6, &c, 1, &n);
    assert_int_equal(r->code, ERR_CONFLICT);
    assert_string_equal(r->field, "idempotency_key");
    /* Two with one key in one command: the second is the first. */
    struct fsm_job two[2] = {tjob("x"), tjob("x")};
    uint64_t hs[2] = {7, 7};
    two[0].idem_key = two[1].idem_key = tstr("dup");
    c.jobs = two;
    c.n_jobs = 2;
    c.hashes = hs;
    r = tfsm_apply(t, T0, &c, 1, &n);
    assert_int_equal(r->code, 0);
    assert_int_equal(r->ids[0], r->ids[1]);
    assert_int_equal(r->existed[1], 1);
}

static void test_apply_patch_and_cancel(void **state)
{
    struct tfsm *t = *state;
    struct fsm_job j = tjob("a");
    const struct fsm_result *r = tfsm_submit(t, T0, &j, 1);
    uint64_t id = r->ids[0];
    struct fsm_cmd c;
    struct fsm_reader *rd;
    struct fsm_job got;
    unsigned n;

    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_PATCH;
    c.id = id;
    c.mask = FSM_PATCH_PRIORITY | FSM_PATCH_QUEUE | FSM_PATCH_RUN_AT |
             FSM_PATCH_MAX_ATTEMPTS;
    c.patch = tjob("ignored");
    c.patch.priority = 77;
    c.patch.queue = tstr("email");
    c.patch.run_at = T0 + 1000;
    c.patch.max_attempts = 9;
    r = tfsm_apply(t, T0 + 10, &c, 1, &n);
    assert_int_equal(r->code, 0);
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    assert_int_equal(fsm_get_job(rd, id, &got), 0);
    assert_int_equal(got.priority, 77);
    assert_memory_equal(got.queue.p, "email", 5);
    assert_memory_equal(got.type.p, "a", 1); /* Not in the mask. */
    assert_int_equal(got.status, FSM_SCHEDULED);
    assert_int_equal(got.max_attempts, 9);
    assert_int_equal(got.updated_at, T0 + 10);
    fsm_read_end(rd);

    c.type = FSM_CMD_CANCEL;
    r = tfsm_apply(t, T0 + 20, &c, 1, &n);
    assert_int_equal(r->code, 0);
    assert_int_equal(tfsm_status(t, id), FSM_CANCELLED);
    r = tfsm_apply(t, T0 + 30, &c, 1, &n);
    assert_int_equal(r->code, ERR_CONFLICT);
    c.type = FSM_CMD_PATCH;
    r = tfsm_apply(t, T0 + 30, &c, 1, &n);
    assert_int_equal(r->code, ERR_CONFLICT);
    c.id = 0x12345;
    r = tfsm_apply(t, T0 + 30, &c, 1, &n);
    assert_int_equal(r->code, ERR_NOTFOUND);
    c.type = FSM_CMD_CANCEL;
    r = tfsm_apply(t, T0 + 30, &c, 1, &n);
    assert_int_equal(r->code, ERR_NOTFOUND);
}

struct seen
{
    int n;
    uint64_t id;
    char http[64];
};

static void node_cb(void *data,
                    uint64_t id,
                    struct fsm_str raft,
                    struct fsm_str http)
{
    struct seen *s = data;
    (void)raft;
    s->n++;
    s->id = id;
    snprintf(s->http, sizeof s->http, "%.*s", (int)http.len, http.p);
}

static void test_apply_nodes(void **state)
{
    struct tfsm *t = *state;
    struct fsm_cmd c;
    struct fsm_reader *rd;
    struct seen s = {0, 0, ""};
    const struct fsm_result *r;
    unsigned n;

    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_NODE_SET;
    c.node_id = 4;
    c.raft_addr = tstr("127.0.0.1:7004");
    c.http_addr = tstr("127.0.0.1:8004");
    r = tfsm_apply(t, T0, &c, 1, &n);
    assert_int_equal(r->code, 0);
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    fsm_nodes(rd, node_cb, &s);
    fsm_read_end(rd);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.http, "127.0.0.1:8004");
    c.type = FSM_CMD_NODE_DEL;
    assert_int_equal(tfsm_apply(t, T0, &c, 1, &n)->code, 0);
    assert_int_equal(tfsm_apply(t, T0, &c, 1, &n)->code, ERR_NOTFOUND);
    c.type = FSM_CMD_NODE_SET;
    c.node_id = 0;
    assert_int_equal(tfsm_apply(t, T0, &c, 1, &n)->code, ERR_INVALID);
}

static void test_apply_replay_is_skipped(void **state)
{
    struct tfsm *t = *state;
    struct fsm_job j = tjob("a");
    struct fsm_cmd c;
    struct fsm_batch b;
    const struct fsm_result *r;
    void *buf;
    size_t len;
    unsigned n;

    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_SUBMIT;
    c.n_jobs = 1;
    c.jobs = &j;
    assert_int_equal(fsm_cmd_encode(&c, &buf, &len), 0);
    fsm_batch_init(&b);
    assert_int_equal(fsm_batch_append(&b, buf, len), 0);
    fsm_batch_seal(&b, T0);
    assert_int_equal(fsm_apply(t->f, 10, b.buf, b.len, &r, &n), 0);
    assert_int_equal(n, 1);
    uint64_t d = tfsm_digest(t);
    assert_int_equal(fsm_apply(t->f, 10, b.buf, b.len, &r, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(fsm_apply(t->f, 9, b.buf, b.len, &r, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(tfsm_digest(t), d);
    assert_int_equal(fsm_applied_index(t->f), 10);
    fsm_batch_close(&b);
    free(buf);
}

static void test_apply_malformed_entries(void **state)
{
    struct tfsm *t = *state;
    const struct fsm_result *r;
    unsigned n;
    unsigned char junk[256];
    uint64_t idx = 100;

    for (size_t i = 0; i < sizeof junk; i++) {
        junk[i] = (unsigned char)(i * 37 + 11);
    }
    for (size_t len = 0; len <= sizeof junk; len += 8) {
        assert_int_equal(fsm_apply(t->f, idx++, junk, len, &r, &n), 0);
        assert_int_equal(n, 0);
    }
    /* A valid header announcing commands that are garbage or missing. */
    struct fsm_batch b;
    fsm_batch_init(&b);
    assert_int_equal(fsm_batch_append(&b, "\x01\x63zzz", 5), 0); /* type 99 */
    assert_int_equal(fsm_batch_append(&b, "\x07", 1), 0);        /* version 7 */
    fsm_batch_seal(&b, T0);
    assert_int_equal(fsm_apply(t->f, idx++, b.buf, b.len, &r, &n), 0);
    assert_int_equal(n, 2);
    assert_int_not_equal(r[0].code, 0);
    assert_int_equal(r[1].code, ERR_CORRUPT);
    /* Truncated after the header: commands run past the entry. */
    assert_int_equal(fsm_apply(t->f, idx++, b.buf, 32, &r, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(r[1].code, ERR_CORRUPT);
    fsm_batch_close(&b);
    assert_int_equal(fsm_applied_index(t->f), idx - 1);
}

static void test_apply_deterministic(void **state)
{
    struct tfsm a, b;
    struct fsm_job jobs[4] = {tjob("a"), tjob("b"), tjob("c"), tjob("d")};
    (void)state;
    jobs[1].user_id = tstr("u");
    jobs[2].run_at = T0 + 5;
    tfsm_open(&a);
    tfsm_open(&b);
    for (int round = 0; round < 5; round++) {
        tfsm_submit(&a, T0 + round, jobs, 4);
        tfsm_submit(&b, T0 + round, jobs, 4);
    }
    assert_int_equal(tfsm_digest(&a), tfsm_digest(&b));
    tfsm_submit(&a, T0 + 99, jobs, 1);
    tfsm_submit(&b, T0 + 98, jobs, 1); /* Another leader time. */
    assert_int_not_equal(tfsm_digest(&a), tfsm_digest(&b));
    tfsm_close(&a);
    tfsm_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_apply_submit_statuses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_apply_dependencies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_apply_batch_is_atomic, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_apply_refusal_inside_an_entry,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_counts_within_an_entry,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_idempotency, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_apply_patch_and_cancel, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_apply_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_replay_is_skipped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_apply_malformed_entries, setup,
                                        teardown),
        cmocka_unit_test(test_apply_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
