/* fsm webhooks: a committed entry's matching events become deliveries
 * (event mask and queue filter), in the same transaction; DELIVERY items
 * record a failed try, remove a delivered one, expire one, and are stale
 * when repeated; deleting a webhook removes its deliveries; bad records
 * are rejected naming the field. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tests/unit/sched/helpers.h"

#define setup tfsm_setup
#define teardown tfsm_teardown

static uint64_t hook(struct tfsm *t,
                     const char *url,
                     uint32_t events,
                     const char *queues,
                     int *code)
{
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_WEBHOOK_SET;
    c.webhook.url = tstr(url);
    c.webhook.events = events;
    c.webhook.queues = tstr(queues);
    c.webhook.secret = tstr("0123456789abcdef");
    const struct fsm_result *r = tcmd(t, T0, &c);
    *code = r->code;
    return r->code == 0 ? r->ids[0] : 0;
}

struct seen
{
    unsigned n;
    uint64_t keys[16];
    uint64_t jobs[16];
    uint32_t tries[16];
    int kinds[16];
};

static int seen_cb(void *data, const struct fsm_delivery *d)
{
    struct seen *s = data;
    assert_true(s->n < 16);
    s->keys[s->n] = d->key;
    s->jobs[s->n] = d->ev.id;
    s->tries[s->n] = d->tries;
    s->kinds[s->n] = d->ev.kind;
    s->n++;
    return 0;
}

static struct seen deliveries(struct tfsm *t, uint64_t h)
{
    struct fsm_reader *rd;
    struct seen s;
    memset(&s, 0, sizeof s);
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    assert_int_equal(fsm_deliveries(rd, h, 0, seen_cb, &s), 0);
    fsm_read_end(rd);
    return s;
}

static struct fsm_webhook get_hook(struct tfsm *t, uint64_t h)
{
    struct fsm_reader *rd;
    struct fsm_webhook w;
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    assert_int_equal(fsm_webhook_get(rd, h, &w), 0);
    fsm_read_end(rd);
    return w; /* Only its numbers are used after the read. */
}

static int outcome(struct tfsm *t,
                   uint64_t h,
                   uint64_t key,
                   bool ok,
                   uint8_t action)
{
    struct fsm_item it;
    struct fsm_cmd c;
    memset(&it, 0, sizeof it);
    it.job_id = h;
    it.token = key;
    it.ok = ok;
    it.action = action;
    it.exit_code = ok ? 200 : 500;
    it.retry_at = T0 + 5000;
    it.error = tstr("HTTP 500");
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_DELIVERY;
    c.items = &it;
    c.n_items = 1;
    const struct fsm_result *r = tcmd(t, T0 + 1, &c);
    assert_int_equal(r->code, 0);
    return r->existed[0];
}

static void test_webhook_deliveries(void **state)
{
    struct tfsm *t = *state;
    int code;

    uint64_t all =
        hook(t, "http://127.0.0.1:1/a",
             1u << FSM_EV_JOB_CREATED | 1u << FSM_EV_WORKER_UP, "", &code);
    assert_int_equal(code, 0);
    uint64_t other = hook(t, "https://example.org/b", 1u << FSM_EV_JOB_CREATED,
                          "other", &code);
    assert_int_equal(code, 0);
    hook(t, "ftp://x/y", 1u << FSM_EV_JOB_CREATED, "", &code);
    assert_int_equal(code, ERR_INVALID);
    hook(t, "http://x/y", 0, "", &code);
    assert_int_equal(code, ERR_INVALID);

    treg(t, T0, "default", 1); /* worker.up: @all only. */
    uint64_t j1 = tsubmit(t, T0, "default", 0, NULL, 0);
    uint64_t j2 = tsubmit(t, T0, "other", 0, NULL, 0);
    struct seen a = deliveries(t, all);
    assert_int_equal(a.n, 3);
    assert_int_equal(a.kinds[0], FSM_EV_WORKER_UP);
    assert_int_equal(a.jobs[1], j1);
    assert_int_equal(a.jobs[2], j2);
    assert_true(a.keys[0] < a.keys[1] && a.keys[1] < a.keys[2]);
    struct seen o = deliveries(t, other); /* Its queue only. */
    assert_int_equal(o.n, 1);
    assert_int_equal(o.jobs[0], j2);
    assert_int_equal(get_hook(t, all).pending, 3);

    /* A failed try is recorded; delivered is removed; again is stale. */
    assert_int_equal(outcome(t, all, a.keys[1], false, 0), FSM_ITEM_OK);
    assert_int_equal(deliveries(t, all).tries[1], 1);
    assert_int_equal(outcome(t, all, a.keys[1], true, 0), FSM_ITEM_OK);
    assert_int_equal(outcome(t, all, a.keys[1], true, 0), FSM_ITEM_STALE);
    assert_int_equal(outcome(t, all, a.keys[0], false, FSM_DELIVERY_EXPIRE),
                     FSM_ITEM_OK);
    struct fsm_webhook w = get_hook(t, all);
    assert_int_equal(w.pending, 1);
    assert_int_equal(w.delivered, 1);
    assert_int_equal(w.expired, 1);
    assert_int_equal(deliveries(t, all).n, 1);

    /* Deleting @other removes its delivery; @all keeps its own. */
    struct fsm_cmd d;
    memset(&d, 0, sizeof d);
    d.type = FSM_CMD_WEBHOOK_DEL;
    d.id = other;
    assert_int_equal(tcmd(t, T0 + 2, &d)->code, 0);
    assert_int_equal(deliveries(t, other).n, 0);
    assert_int_equal(deliveries(t, all).n, 1);
    assert_int_equal(tcmd(t, T0 + 3, &d)->code, ERR_NOTFOUND);
    assert_int_equal(outcome(t, other, o.keys[0], true, 0), FSM_ITEM_NOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_webhook_deliveries, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
