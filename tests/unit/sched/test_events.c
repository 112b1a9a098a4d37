/* fsm_watch_events: the events of each committed entry, numbered by
 * (index, position), for a job's life (created, started, failed and
 * retrying, then dead; created, started, completed; cancelled), workers
 * going up and down; nothing from a rejected command beside a committed
 * one in the same entry. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/sched/helpers.h"

#define setup tfsm_setup
#define teardown tfsm_teardown

#define MAX_HEARD 64

struct heard
{
    unsigned n;
    struct
    {
        uint64_t index;
        uint32_t pos;
        int kind;
        uint64_t id;
        int status;
        char type[32], queue[32], name[32], error[64];
    } ev[MAX_HEARD];
};

static void copy(char *dst, size_t cap, struct fsm_str s)
{
    snprintf(dst, cap, "%.*s", (int)s.len, s.len > 0 ? s.p : "");
}

static void heard_cb(void *data, const struct fsm_event *e)
{
    struct heard *h = data;
    assert_true(h->n < MAX_HEARD);
    h->ev[h->n].index = e->index;
    h->ev[h->n].pos = e->pos;
    h->ev[h->n].kind = e->kind;
    h->ev[h->n].id = e->id;
    h->ev[h->n].status = e->status;
    copy(h->ev[h->n].type, 32, e->type);
    copy(h->ev[h->n].queue, 32, e->queue);
    copy(h->ev[h->n].name, 32, e->name);
    copy(h->ev[h->n].error, 64, e->error);
    h->n++;
}

/* A failed attempt of running @job: retryable or not. */
static void tfail(struct tfsm *t, int64_t now, uint64_t job, bool retryable)
{
    struct fsm_reader *rd;
    struct fsm_job j;
    struct fsm_item it;
    struct fsm_cmd c;
    tget(t, job, &j, &rd);
    memset(&it, 0, sizeof it);
    it.job_id = job;
    it.token = j.lease_token;
    it.ok = 0;
    it.retryable = retryable;
    it.retry_at = now;
    it.error = tstr("boom");
    fsm_read_end(rd);
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_COMPLETE;
    c.items = &it;
    c.n_items = 1;
    assert_int_equal(tcmd(t, now, &c)->code, 0);
}

static void expect(const struct heard *h, unsigned i, int kind, uint64_t id)
{
    assert_true(i < h->n);
    if (h->ev[i].kind != kind || h->ev[i].id != id) {
        fail_msg("event %u: %s of %llx, expected %s of %llx", i,
                 fsm_event_name(h->ev[i].kind), (unsigned long long)h->ev[i].id,
                 fsm_event_name(kind), (unsigned long long)id);
    }
}

static void test_events_job_life(void **state)
{
    struct tfsm *t = *state;
    struct heard h;
    memset(&h, 0, sizeof h);
    fsm_watch_events(t->f, heard_cb, &h);

    uint64_t w = treg(t, T0, "default", 10);
    expect(&h, 0, FSM_EV_WORKER_UP, w);
    assert_string_equal(h.ev[0].name, "w");
    uint64_t a = tsubmit(t, T0, "default", 0, NULL, 0);
    expect(&h, 1, FSM_EV_JOB_CREATED, a);
    assert_string_equal(h.ev[1].queue, "default");
    assert_int_equal(h.ev[1].status, FSM_PENDING);
    assert_int_equal(h.ev[1].pos, 0);
    assert_true(h.ev[1].index > h.ev[0].index);

    assert_int_equal(tassign(t, T0 + 1, a, w), FSM_ITEM_OK);
    expect(&h, 2, FSM_EV_JOB_STARTED, a);
    tfail(t, T0 + 2, a, true); /* Two events of one change, in order. */
    expect(&h, 3, FSM_EV_JOB_FAILED, a);
    expect(&h, 4, FSM_EV_JOB_RETRYING, a);
    assert_string_equal(h.ev[3].error, "boom");
    assert_int_equal(h.ev[3].index, h.ev[4].index);
    assert_int_equal(h.ev[3].pos, 0);
    assert_int_equal(h.ev[4].pos, 1);
    assert_int_equal(tassign(t, T0 + 3, a, w), FSM_ITEM_OK);
    tfail(t, T0 + 4, a, false);
    expect(&h, 6, FSM_EV_JOB_FAILED, a);
    expect(&h, 7, FSM_EV_JOB_DEAD, a);
    assert_int_equal(h.ev[7].status, FSM_FAILED);

    uint64_t b = tsubmit(t, T0 + 5, "default", 0, NULL, 0);
    assert_int_equal(tassign(t, T0 + 6, b, w), FSM_ITEM_OK);
    assert_int_equal(tcomplete(t, T0 + 7, b), FSM_ITEM_OK);
    expect(&h, 8, FSM_EV_JOB_CREATED, b);
    expect(&h, 9, FSM_EV_JOB_STARTED, b);
    expect(&h, 10, FSM_EV_JOB_COMPLETED, b);
    assert_int_equal(h.n, 11);

    /* One entry: a committed CANCEL of c, then a rejected CANCEL of an
     * unknown job: only c's event. Then the worker goes down. */
    uint64_t c = tsubmit(t, T0 + 8, "default", 0, NULL, 0);
    struct fsm_cmd cmds[2];
    memset(cmds, 0, sizeof cmds);
    cmds[0].type = FSM_CMD_CANCEL;
    cmds[0].id = c;
    cmds[1].type = FSM_CMD_CANCEL;
    cmds[1].id = 12345;
    unsigned n;
    const struct fsm_result *r = tfsm_apply(t, T0 + 9, cmds, 2, &n);
    assert_int_equal(r[0].code, 0);
    assert_int_not_equal(r[1].code, 0);
    expect(&h, 12, FSM_EV_JOB_CANCELLED, c);
    assert_int_equal(h.n, 13);

    struct fsm_cmd dc;
    memset(&dc, 0, sizeof dc);
    dc.type = FSM_CMD_WORKER_DOWN;
    dc.id = w;
    assert_int_equal(tcmd(t, T0 + 10, &dc)->code, 0);
    expect(&h, 13, FSM_EV_WORKER_DOWN, w);
    dc.type = FSM_CMD_WORKER_DEL; /* Down already: no second event. */
    assert_int_equal(tcmd(t, T0 + 11, &dc)->code, 0);
    assert_int_equal(h.n, 14);
    for (unsigned i = 1; i < h.n; i++) { /* Ids only grow. */
        assert_true(h.ev[i].index > h.ev[i - 1].index ||
                    (h.ev[i].index == h.ev[i - 1].index &&
                     h.ev[i].pos == h.ev[i - 1].pos + 1));
    }
    assert_string_equal(fsm_event_name(FSM_EV_SCHEDULE_SKIPPED),
                        "schedule.skipped");
    assert_null(fsm_event_name(FSM_EV_MAX + 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_events_job_life, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
