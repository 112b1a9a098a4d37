/* sched/plan.c, sched__plan(): the FIRE items of a due schedule on virtual
 * time. Catch-up skip / latest / all (catchup_max), overlap forbid / allow
 * / replace against the previous run, a DST gap in Europe/Berlin, and a
 * schedule that does not parse. Where it matters the plan is applied as a
 * FIRE to check that the fsm takes it whole. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/sched/helpers.h"

#define MIN 60000LL
#define CAP 64

#define setup tfsm_setup
#define teardown tfsm_teardown

struct plan
{
    unsigned n;
    struct fsm_item items[CAP];
    char reasons[CAP][SCHED_REASON_SIZE];
};

static unsigned plan(struct tfsm *t, uint64_t id, int64_t now, struct plan *p)
{
    struct fsm_reader *rd;
    struct fsm_job s;
    memset(p, 0, sizeof *p);
    tget(t, id, &s, &rd);
    p->n = sched__plan(rd, &s, now, p->items, p->reasons, CAP);
    fsm_read_end(rd);
    return p->n;
}

static const char *reason(const struct plan *p, unsigned i)
{
    static char buf[SCHED_REASON_SIZE + 1];
    snprintf(buf, sizeof buf, "%.*s", (int)p->items[i].error.len,
             p->items[i].error.p);
    return buf;
}

static void assert_item(const struct plan *p,
                        unsigned i,
                        uint8_t action,
                        int64_t nominal,
                        int64_t next_at,
                        uint32_t skipped)
{
    assert_true(i < p->n);
    assert_int_equal(p->items[i].action, action);
    assert_int_equal(p->items[i].nominal, nominal);
    assert_int_equal(p->items[i].next_at, next_at);
    assert_int_equal(p->items[i].skipped, skipped);
}

/* Apply the plan as one FIRE: every item must be taken. */
static void fire(struct tfsm *t, int64_t now, const struct plan *p)
{
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_FIRE;
    c.items = p->items;
    c.n_items = p->n;
    const struct fsm_result *r = tcmd(t, now, &c);
    assert_int_equal(r->code, 0);
    assert_int_equal(r->n_ids, p->n);
    for (unsigned i = 0; i < p->n; i++) {
        assert_int_equal(r->existed[i], FSM_ITEM_OK);
    }
}

static uint64_t last_run(struct tfsm *t, uint64_t id)
{
    struct fsm_reader *rd;
    struct fsm_job s;
    tget(t, id, &s, &rd);
    uint64_t run = s.last_run;
    fsm_read_end(rd);
    return run;
}

/* Nothing before the first occurrence; one RUN when it is due. */
static void test_plan_on_time(void **state)
{
    struct tfsm *t = *state;
    struct plan p;
    uint64_t s = tschedule(t, T0, "{\"schedule\":\"* * * * *\"}", T0 + MIN);

    assert_int_equal(plan(t, s, T0 + MIN - 1, &p), 0);
    assert_int_equal(plan(t, s, T0 + MIN + 200, &p), 1);
    assert_item(&p, 0, FSM_FIRE_RUN, T0 + MIN, T0 + 2 * MIN, 0);
    fire(t, T0 + MIN + 200, &p);
    assert_int_equal(tfsm_status(t, last_run(t, s)), FSM_PENDING);
}

/* catchup=skip (the default): only an occurrence at most 1 s late runs;
 * the missed ones are one SKIP record with its reason. */
static void test_plan_catchup_skip(void **state)
{
    struct tfsm *t = *state;
    struct plan p;
    uint64_t s = tschedule(t, T0, "{\"schedule\":\"* * * * *\"}", T0);

    /* T0 .. T0+5m are due; the newest is 30 s late: none runs. */
    assert_int_equal(plan(t, s, T0 + 5 * MIN + 30000, &p), 1);
    assert_item(&p, 0, FSM_FIRE_SKIP, T0, T0 + 6 * MIN, 6);
    assert_non_null(strstr(reason(&p, 0), "missed: 6 occurrences"));
    assert_non_null(strstr(reason(&p, 0), "catchup=skip"));

    /* The newest is 500 ms late: it runs, the 5 before are skipped. */
    assert_int_equal(plan(t, s, T0 + 5 * MIN + 500, &p), 2);
    assert_item(&p, 0, FSM_FIRE_SKIP, T0, T0 + 5 * MIN, 5);
    assert_item(&p, 1, FSM_FIRE_RUN, T0 + 5 * MIN, T0 + 6 * MIN, 0);
    fire(t, T0 + 5 * MIN + 500, &p);
    assert_int_not_equal(last_run(t, s), 0);

    /* One occurrence 2 s late: skipped alone, reason in the singular. */
    assert_int_equal(plan(t, s, T0 + 6 * MIN + 2000, &p), 1);
    assert_item(&p, 0, FSM_FIRE_SKIP, T0 + 6 * MIN, T0 + 7 * MIN, 1);
    assert_non_null(strstr(reason(&p, 0), "missed: 1 occurrence "));
}

/* catchup=latest: the newest due occurrence runs however late. */
static void test_plan_catchup_latest(void **state)
{
    struct tfsm *t = *state;
    struct plan p;
    uint64_t s = tschedule(t, T0,
                           "{\"schedule\":\"* * * * *\",\"catchup\":\"latest\","
                           "\"overlap\":\"allow\"}",
                           T0);

    assert_int_equal(plan(t, s, T0 + 5 * MIN + 30000, &p), 2);
    assert_item(&p, 0, FSM_FIRE_SKIP, T0, T0 + 5 * MIN, 5);
    assert_non_null(strstr(reason(&p, 0), "catchup=latest"));
    assert_item(&p, 1, FSM_FIRE_RUN, T0 + 5 * MIN, T0 + 6 * MIN, 0);
    fire(t, T0 + 5 * MIN + 30000, &p);

    /* A single late occurrence: no SKIP record. */
    assert_int_equal(plan(t, s, T0 + 6 * MIN + 50000, &p), 1);
    assert_item(&p, 0, FSM_FIRE_RUN, T0 + 6 * MIN, T0 + 7 * MIN, 0);
}

/* catchup=all: the last catchup_max occurrences run, oldest first, each
 * item's next_at the following one's nominal. */
static void test_plan_catchup_all(void **state)
{
    struct tfsm *t = *state;
    struct plan p;
    uint64_t s = tschedule(t, T0,
                           "{\"schedule\":\"* * * * *\",\"catchup\":\"all\","
                           "\"catchup_max\":3,\"overlap\":\"allow\"}",
                           T0);

    assert_int_equal(plan(t, s, T0 + 5 * MIN + 30000, &p), 4);
    assert_item(&p, 0, FSM_FIRE_SKIP, T0, T0 + 3 * MIN, 3);
    assert_non_null(strstr(reason(&p, 0), "catchup=all"));
    assert_item(&p, 1, FSM_FIRE_RUN, T0 + 3 * MIN, T0 + 4 * MIN, 0);
    assert_item(&p, 2, FSM_FIRE_RUN, T0 + 4 * MIN, T0 + 5 * MIN, 0);
    assert_item(&p, 3, FSM_FIRE_RUN, T0 + 5 * MIN, T0 + 6 * MIN, 0);
    fire(t, T0 + 5 * MIN + 30000, &p);

    /* Fewer due than catchup_max: all of them, no SKIP. */
    assert_int_equal(plan(t, s, T0 + 7 * MIN + 1, &p), 2);
    assert_item(&p, 0, FSM_FIRE_RUN, T0 + 6 * MIN, T0 + 7 * MIN, 0);
    assert_item(&p, 1, FSM_FIRE_RUN, T0 + 7 * MIN, T0 + 8 * MIN, 0);

    /* Default catchup_max (10) of 15 due. */
    uint64_t d = tschedule(
        t, T0, "{\"schedule\":\"* * * * *\",\"catchup\":\"all\"}", T0);
    assert_int_equal(plan(t, d, T0 + 14 * MIN + 5, &p), 1 + CATCHUP_DEFAULT);
    assert_item(&p, 0, FSM_FIRE_SKIP, T0, T0 + 5 * MIN, 5);
    assert_item(&p, 1, FSM_FIRE_RUN, T0 + 5 * MIN, T0 + 6 * MIN, 0);
    assert_item(&p, 10, FSM_FIRE_SKIP, T0 + 14 * MIN, T0 + 15 * MIN, 1);
    /* overlap=forbid (default): the first catch-up run is unfinished when
     * the next would start, so only it runs. */
    for (unsigned i = 2; i <= 10; i++) {
        assert_int_equal(p.items[i].action, FSM_FIRE_SKIP);
        assert_int_equal(p.items[i].skipped, 1);
    }
    /* ... naming that run by its occurrence (its id is not known before
     * the FIRE applies; this once read "run 0000000000000001"). */
    assert_string_equal(reason(&p, 2),
                        "overlap=forbid: the run of 2023-11-14T22:18:00.000Z "
                        "is still pending");
    fire(t, T0 + 14 * MIN + 5, &p);
}

/* overlap: forbid skips while the previous run is unfinished (saying
 * which and in what state), allow runs beside it, replace asks apply to
 * cancel it. */
static void test_plan_overlap(void **state)
{
    struct tfsm *t = *state;
    struct plan p;
    char want[SCHED_REASON_SIZE];
    uint64_t w = treg(t, T0, "default", 10);
    uint64_t forbid =
        tschedule(t, T0, "{\"schedule\":\"* * * * *\"}", T0 + MIN);
    uint64_t allow = tschedule(
        t, T0, "{\"schedule\":\"* * * * *\",\"overlap\":\"allow\"}", T0 + MIN);
    uint64_t replace =
        tschedule(t, T0, "{\"schedule\":\"* * * * *\",\"overlap\":\"replace\"}",
                  T0 + MIN);
    uint64_t ids[3] = {forbid, allow, replace};

    for (int i = 0; i < 3; i++) {
        assert_int_equal(plan(t, ids[i], T0 + MIN + 1, &p), 1);
        assert_int_equal(p.items[0].action,
                         i == 2 ? FSM_FIRE_REPLACE : FSM_FIRE_RUN);
        fire(t, T0 + MIN + 1, &p);
    }
    uint64_t first = last_run(t, forbid);

    /* forbid: the first run is pending, then running. */
    assert_int_equal(plan(t, forbid, T0 + 2 * MIN + 1, &p), 1);
    assert_item(&p, 0, FSM_FIRE_SKIP, T0 + 2 * MIN, T0 + 3 * MIN, 1);
    snprintf(want, sizeof want, "overlap=forbid: run %016llx is still pending",
             (unsigned long long)first);
    assert_string_equal(reason(&p, 0), want);
    assert_int_equal(tassign(t, T0 + 2 * MIN, first, w), FSM_ITEM_OK);
    assert_int_equal(plan(t, forbid, T0 + 2 * MIN + 1, &p), 1);
    snprintf(want, sizeof want, "overlap=forbid: run %016llx is still running",
             (unsigned long long)first);
    assert_string_equal(reason(&p, 0), want);
    fire(t, T0 + 2 * MIN + 1, &p);
    assert_int_equal(last_run(t, forbid), first);
    /* Once it ended, the next occurrence runs. */
    assert_int_equal(tcomplete(t, T0 + 3 * MIN, first), FSM_ITEM_OK);
    assert_int_equal(plan(t, forbid, T0 + 3 * MIN + 1, &p), 1);
    assert_item(&p, 0, FSM_FIRE_RUN, T0 + 3 * MIN, T0 + 4 * MIN, 0);

    /* allow: a second run beside the pending first. */
    uint64_t a1 = last_run(t, allow);
    assert_int_equal(tfsm_status(t, a1), FSM_PENDING);
    assert_int_equal(plan(t, allow, T0 + 2 * MIN + 1, &p), 1);
    assert_item(&p, 0, FSM_FIRE_RUN, T0 + 2 * MIN, T0 + 3 * MIN, 0);
    fire(t, T0 + 2 * MIN + 1, &p);
    assert_int_not_equal(last_run(t, allow), a1);
    assert_int_equal(tfsm_status(t, a1), FSM_PENDING);

    /* replace: the new run cancels the running one. */
    uint64_t r1 = last_run(t, replace);
    assert_int_equal(tassign(t, T0 + 2 * MIN, r1, w), FSM_ITEM_OK);
    assert_int_equal(plan(t, replace, T0 + 2 * MIN + 1, &p), 1);
    assert_item(&p, 0, FSM_FIRE_REPLACE, T0 + 2 * MIN, T0 + 3 * MIN, 0);
    fire(t, T0 + 2 * MIN + 1, &p);
    assert_int_equal(tfsm_status(t, r1), FSM_CANCELLED);
    assert_int_equal(tfsm_status(t, last_run(t, replace)), FSM_PENDING);
}

/* Europe/Berlin, 2026-03-29: 02:00 CET -> 03:00 CEST. Four wall times in
 * the gap ("0,15,30,45 2 * * *") are ONE occurrence, at 03:00 local. */
static void test_plan_dst_berlin(void **state)
{
    struct tfsm *t = *state;
    struct plan p;
    const int64_t d28_0245 = 1774662300000LL; /* 03-28 02:45 CET */
    const int64_t d29_0300 = 1774746000000LL; /* 03-29 03:00 CEST */
    const int64_t d30_0200 = 1774828800000LL; /* 03-30 02:00 CEST */
    const int64_t d29_1200 = 1774778400000LL; /* 03-29 12:00 CEST */
    uint64_t s = tschedule(t, d28_0245 - 1000,
                           "{\"schedule\":\"0,15,30,45 2 * * *\","
                           "\"timezone\":\"Europe/Berlin\",\"catchup\":\"all\","
                           "\"overlap\":\"allow\"}",
                           d28_0245);

    assert_int_equal(plan(t, s, d29_1200, &p), 2);
    assert_item(&p, 0, FSM_FIRE_RUN, d28_0245, d29_0300, 0);
    assert_item(&p, 1, FSM_FIRE_RUN, d29_0300, d30_0200, 0);
    fire(t, d29_1200, &p);

    /* Just after the gap, on time: one run at 03:00, next day 02:00. */
    uint64_t g = tschedule(t, d29_0300 - 3600000,
                           "{\"schedule\":\"0,15,30,45 2 * * *\","
                           "\"timezone\":\"Europe/Berlin\"}",
                           d29_0300);
    assert_int_equal(plan(t, g, d29_0300 + 100, &p), 1);
    assert_item(&p, 0, FSM_FIRE_RUN, d29_0300, d30_0200, 0);
}

/* A schedule that does not parse (the API would have refused it): one
 * SKIP that stops the schedule, saying why. */
static void test_plan_bad_schedule(void **state)
{
    struct tfsm *t = *state;
    struct plan p;
    uint64_t s = tschedule(t, T0, "{\"schedule\":\"61 * * * *\"}", T0);

    assert_int_equal(plan(t, s, T0 + 1, &p), 1);
    assert_item(&p, 0, FSM_FIRE_SKIP, T0, FSM_NEVER, 1);
    assert_string_equal(reason(&p, 0), "the schedule does not parse");
    fire(t, T0 + 1, &p);
    struct fsm_reader *rd;
    struct fsm_job j;
    tget(t, s, &j, &rd);
    assert_int_equal(j.run_at, FSM_NEVER); /* Never due again. */
    fsm_read_end(rd);

    /* No schedule key at all, and a spec that is not JSON. */
    s = tschedule(t, T0, "{\"payload\":{}}", T0);
    assert_int_equal(plan(t, s, T0 + 1, &p), 1);
    assert_int_equal(p.items[0].next_at, FSM_NEVER);
    s = tschedule(t, T0, "not json", T0);
    assert_int_equal(plan(t, s, T0 + 1, &p), 1);
    assert_int_equal(p.items[0].action, FSM_FIRE_SKIP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plan_on_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_catchup_skip, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plan_catchup_latest, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plan_catchup_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_overlap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_dst_berlin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_bad_schedule, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
