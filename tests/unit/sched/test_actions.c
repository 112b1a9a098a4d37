/* sched/actions.c through the public API (sched_schedule_action) with a
 * fake sched_io on virtual time: back-to-back triggers all run under
 * overlap=allow, overlap=forbid refuses a trigger while a run is
 * unfinished, pause then resume, and the errors found before submitting. */

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tests/unit/sched/helpers.h"

#define HOUR 3600000LL

struct env
{
    struct tfsm t;
    struct fio io;
    struct sched *sc;
    bool in_call; /* Inside sched_schedule_action(). */
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    struct sched_config cfg;
    tfsm_open(&e->t);
    fio_init(&e->io, &e->t, T0, 1234);
    memset(&cfg, 0, sizeof cfg);
    cfg.worker_ttl_ms = 10000;
    struct sched_io io = fio_io(&e->io);
    assert_int_equal(sched_create(&io, &cfg, &e->sc), 0);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    sched_stop(e->sc);
    fio_clear(&e->io);
    sched_destroy(e->sc);
    tfsm_close(&e->t);
    free(e);
    return 0;
}

/* The outcome of one action. */
struct rec
{
    struct env *e;
    uint64_t schedule;
    int calls;
    bool inside; /* Fired from inside the call. */
    int status, code;
    char field[64];
    uint32_t n_ids;
    int existed;
    uint64_t run; /* The schedule's last_run once it applied. */
};

static void rec_cb(void *data, int status, const struct fsm_result *res)
{
    struct rec *r = data;
    r->calls++;
    r->inside = r->e->in_call;
    r->status = status;
    if (res != NULL) {
        r->code = res->code;
        memcpy(r->field, res->field, sizeof r->field);
        r->n_ids = res->n_ids;
        r->existed = res->n_ids > 0 ? res->existed[0] : -1;
    }
    if (status == 0 && res != NULL && res->code == 0) {
        struct fsm_reader *rd;
        struct fsm_job s;
        tget(&r->e->t, r->schedule, &s, &rd);
        r->run = s.last_run;
        fsm_read_end(rd);
    }
}

static int act(struct env *e, uint64_t id, int action, struct rec *r)
{
    memset(r, 0, sizeof *r);
    r->e = e;
    r->schedule = id;
    e->in_call = true;
    int rv = sched_schedule_action(e->sc, id, action, rec_cb, r);
    e->in_call = false;
    return rv;
}

static struct fsm_job get(struct env *e, uint64_t id, struct fsm_reader **rd)
{
    struct fsm_job j;
    tget(&e->t, id, &j, rd);
    return j;
}

static int count_runs_cb(void *data, const struct fsm_run *run)
{
    (void)run;
    (*(unsigned *)data)++;
    return 0;
}

/* 20 triggers issued back to back before any completes: decided one at a
 * time, each on the state the previous one left, so 20 FIREs succeed and
 * create 20 distinct runs (one virtual millisecond for all of them). */
static void test_actions_trigger_allow(void **state)
{
    enum { N = 20 };
    struct env *e = *state;
    struct rec r[N];
    uint64_t s = tschedule(&e->t, T0,
                           "{\"schedule\":\"@every 1h\",\"overlap\":\"allow\"}",
                           T0 + HOUR);

    for (int i = 0; i < N; i++) {
        assert_int_equal(act(e, s, SCHED_TRIGGER, &r[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 0); /* Nothing applied yet. */
    }
    assert_int_equal(e->io.submitted, 1); /* One at a time. */
    assert_int_equal(fio_flush(&e->io), N);
    assert_int_equal(e->io.submitted, N);

    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_false(r[i].inside);
        assert_int_equal(r[i].status, 0);
        assert_int_equal(r[i].code, 0);
        assert_int_equal(r[i].n_ids, 1);
        assert_int_equal(r[i].existed, FSM_ITEM_OK);
        assert_int_not_equal(r[i].run, 0);
        for (int k = 0; k < i; k++) {
            assert_int_not_equal(r[i].run, r[k].run);
        }
        struct fsm_reader *rd;
        struct fsm_job run = get(e, r[i].run, &rd);
        assert_int_equal(run.status, FSM_PENDING);
        assert_int_equal(run.parent, s);
        assert_true(run.flags & FSM_JOB_RUN);
        assert_int_equal(run.nominal_at, T0 + i); /* now, then newest+1. */
        fsm_read_end(rd);
    }
    /* The schedule's own occurrence is untouched; 20 run records. */
    struct fsm_reader *rd;
    struct fsm_job j = get(e, s, &rd);
    assert_int_equal(j.run_at, T0 + HOUR);
    assert_int_equal(j.last_run, r[N - 1].run);
    unsigned n = 0;
    fsm_runs(rd, s, 0, count_runs_cb, &n);
    assert_int_equal(n, N);
    fsm_read_end(rd);
}

/* overlap=forbid: a second trigger decided after the first applied is
 * refused (409 on "overlap"); once the run ended a trigger runs again. */
static void test_actions_trigger_forbid(void **state)
{
    struct env *e = *state;
    struct rec a, b, c, d;
    uint64_t w = treg(&e->t, T0, "default", 4);
    uint64_t s =
        tschedule(&e->t, T0, "{\"schedule\":\"@every 1h\"}", T0 + HOUR);

    assert_int_equal(act(e, s, SCHED_TRIGGER, &a), 0);
    assert_int_equal(act(e, s, SCHED_TRIGGER, &b), 0);
    assert_int_equal(a.calls + b.calls, 0);
    assert_int_equal(fio_flush(&e->io), 1); /* The second never went. */
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.code, 0);
    assert_int_not_equal(a.run, 0);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, 0);
    assert_int_equal(b.code, ERR_CONFLICT);
    assert_string_equal(b.field, "overlap");

    /* Running: still refused, answered at once. */
    assert_int_equal(tassign(&e->t, T0, a.run, w), FSM_ITEM_OK);
    assert_int_equal(act(e, s, SCHED_TRIGGER, &c), 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.code, ERR_CONFLICT);
    assert_string_equal(c.field, "overlap");
    assert_int_equal(fio_flush(&e->io), 0);

    /* Ended: a new run. */
    assert_int_equal(tcomplete(&e->t, T0 + 1, a.run), FSM_ITEM_OK);
    e->io.now = T0 + 5000;
    assert_int_equal(act(e, s, SCHED_TRIGGER, &d), 0);
    assert_int_equal(fio_flush(&e->io), 1);
    assert_int_equal(d.code, 0);
    assert_int_not_equal(d.run, 0);
    assert_int_not_equal(d.run, a.run);
    struct fsm_reader *rd;
    struct fsm_job run = get(e, d.run, &rd);
    assert_int_equal(run.nominal_at, T0 + 5000);
    fsm_read_end(rd);
}

/* Pause then resume, sent back to back: the schedule stops (run_at
 * never), then resumes at its next occurrence after the virtual now. */
static void test_actions_pause_resume(void **state)
{
    struct env *e = *state;
    struct rec p, r;
    struct fsm_reader *rd;
    struct fsm_job j;
    uint64_t s =
        tschedule(&e->t, T0, "{\"schedule\":\"@every 1h\"}", 1700002800000LL);

    e->io.now = 1700003000000LL;
    assert_int_equal(act(e, s, SCHED_PAUSE, &p), 0);
    assert_int_equal(fio_flush(&e->io), 1);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.code, 0);
    j = get(e, s, &rd);
    assert_true(j.flags & FSM_JOB_PAUSED);
    assert_int_equal(j.run_at, FSM_NEVER);
    fsm_read_end(rd);

    /* Hours later. */
    e->io.now = 1700010000000LL;
    assert_int_equal(act(e, s, SCHED_RESUME, &r), 0);
    assert_int_equal(fio_flush(&e->io), 1);
    assert_int_equal(r.code, 0);
    j = get(e, s, &rd);
    assert_false(j.flags & FSM_JOB_PAUSED);
    assert_int_equal(j.run_at,
                     1700010000000LL + 3600000LL - 1700010000000LL % 3600000LL);
    fsm_read_end(rd);

    /* Back to back: both decided in order. */
    assert_int_equal(act(e, s, SCHED_PAUSE, &p), 0);
    assert_int_equal(act(e, s, SCHED_RESUME, &r), 0);
    assert_int_equal(fio_flush(&e->io), 2);
    assert_int_equal(p.code, 0);
    assert_int_equal(r.code, 0);
    j = get(e, s, &rd);
    assert_false(j.flags & FSM_JOB_PAUSED);
    assert_true(j.run_at > e->io.now && j.run_at != FSM_NEVER);
    fsm_read_end(rd);
}

/* Errors found before submitting come back as rejections; a bad action
 * is refused by the call (no callback). */
static void test_actions_errors(void **state)
{
    struct env *e = *state;
    struct rec r;
    uint64_t plain = tsubmit(&e->t, T0, "default", 0, NULL, 0);

    assert_int_equal(act(e, 424242, SCHED_TRIGGER, &r), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.code, ERR_NOTFOUND);
    assert_string_equal(r.field, "id");
    assert_int_equal(act(e, plain, SCHED_PAUSE, &r), 0);
    assert_int_equal(r.code, ERR_INVALID);
    assert_string_equal(r.field, "id");
    assert_int_equal(act(e, plain, 99, &r), ERR_INVALID);
    assert_int_equal(r.calls, 0);
    assert_int_equal(e->io.submitted, 0);

    /* After sched_stop(): shut down, and waiting actions are answered. */
    uint64_t s =
        tschedule(&e->t, T0, "{\"schedule\":\"@every 1h\"}", T0 + HOUR);
    struct rec a, b;
    assert_int_equal(act(e, s, SCHED_PAUSE, &a), 0);
    assert_int_equal(act(e, s, SCHED_RESUME, &b), 0);
    sched_stop(e->sc);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, ERR_SHUTDOWN);
    assert_int_equal(a.calls, 0); /* In flight: its commit answers it. */
    assert_int_equal(fio_flush(&e->io), 1);
    assert_int_equal(a.calls, 1);
    assert_int_equal(act(e, s, SCHED_TRIGGER, &r), ERR_SHUTDOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_actions_trigger_allow, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_actions_trigger_forbid, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_actions_pause_resume, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_actions_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
