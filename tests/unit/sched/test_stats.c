/* sched/stats.c and the counting in results.c, dispatch.c, clock.c and
 * actions.c, through the public API with a fake sched_io on virtual time:
 * the per-queue table is bounded (the rest count as "_other"), histogram
 * buckets, an attempt that fails then one that goes dead, and schedule
 * fires, triggers and skips. */

#include <stdio.h>
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
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    struct sched_config cfg;
    tfsm_open(&e->t);
    fio_init(&e->io, &e->t, T0, 99);
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

static const struct sched_queue_stats *find(struct env *e, const char *name)
{
    unsigned n;
    const struct sched_queue_stats *qs = sched_queue_stats(e->sc, &n);
    for (unsigned i = 0; i < n; i++) {
        if (strcmp(qs[i].name, name) == 0) {
            return &qs[i];
        }
    }
    return NULL;
}

/* 300 queue names: the first SCHED_STATS_QUEUES get their own counters,
 * the other 44 share "_other" (listed last); "" is "default". */
static void test_stats_queue_bound(void **state)
{
    struct env *e = *state;
    char name[32];
    unsigned n;

    assert_int_equal((sched_queue_stats(e->sc, &n), n), 0);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "q%d", i);
        sched_count_submitted(e->sc, (struct fsm_str){name, strlen(name)}, 1);
    }
    sched_count_submitted(e->sc, (struct fsm_str){"q0", 2}, 2);
    const struct sched_queue_stats *qs = sched_queue_stats(e->sc, &n);
    assert_int_equal(n, SCHED_STATS_QUEUES + 1);
    assert_string_equal(qs[0].name, "q0");
    assert_int_equal(qs[0].submitted, 3);
    assert_string_equal(qs[SCHED_STATS_QUEUES - 1].name, "q255");
    assert_string_equal(qs[SCHED_STATS_QUEUES].name, SCHED_STATS_OTHER);
    assert_int_equal(qs[SCHED_STATS_QUEUES].submitted, 300 - 256);
    assert_null(find(e, "q256"));
    /* "" is "default", which is past the bound now: _other. */
    sched_count_submitted(e->sc, (struct fsm_str){"", 0}, 1);
    assert_int_equal(qs[SCHED_STATS_QUEUES].submitted, 300 - 256 + 1);
}

static void test_stats_default_queue(void **state)
{
    struct env *e = *state;
    sched_count_submitted(e->sc, (struct fsm_str){"", 0}, 1);
    sched_count_submitted(e->sc, (struct fsm_str){"default", 7}, 1);
    assert_int_equal(find(e, "default")->submitted, 2);
}

/* A bound belongs to its bucket (le); past the last one is +Inf. */
static void test_stats_hist_buckets(void **state)
{
    struct sched_hist h;
    (void)state;
    memset(&h, 0, sizeof h);
    sched_hist_observe(&h, 0.005);
    sched_hist_observe(&h, 0.0051);
    sched_hist_observe(&h, -1);
    sched_hist_observe(&h, 61);
    assert_int_equal(h.buckets[0], 2);
    assert_int_equal(h.buckets[1], 1);
    assert_int_equal(h.buckets[SCHED_DURATION_BUCKETS], 1);
    assert_int_equal(h.count, 4);
    assert_true(h.sum > 61.01 && h.sum < 61.02);
}

static void leased_cb(void *data, const uint64_t *jobs, unsigned n)
{
    unsigned *got = data;
    (void)jobs;
    *got += n;
}

static void done_cb(void *data, int status, const struct fsm_result *res)
{
    int *calls = data;
    assert_int_equal(status, 0);
    assert_int_equal(res->code, 0);
    (*calls)++;
}

/* Lease @job to @w and report a failed attempt (@retryable). */
static void lease_and_fail(struct env *e, uint64_t w, uint64_t job, bool retry)
{
    struct fsm_reader *rd;
    struct fsm_job j;
    struct fsm_item it;
    unsigned got = 0;
    int calls = 0;

    assert_int_equal(sched_lease(e->sc, w, 1, 1000, leased_cb, &got), 0);
    fio_flush(&e->io);
    assert_int_equal(got, 1);
    tget(&e->t, job, &j, &rd);
    memset(&it, 0, sizeof it);
    it.job_id = job;
    it.token = j.lease_token;
    fsm_read_end(rd);
    it.retryable = retry;
    it.exit_code = 3;
    e->io.now += 250;
    assert_int_equal(sched_complete(e->sc, w, &it, 1, done_cb, &calls), 0);
    fio_flush(&e->io);
    assert_int_equal(calls, 1);
}

static void test_stats_failed_then_dead(void **state)
{
    struct env *e = *state;
    uint64_t w = treg(&e->t, T0, "qa", 4);
    uint64_t job = tsubmit(&e->t, T0 - 2000, "qa", 0, NULL, 0);

    sched_tick(e->sc);
    lease_and_fail(e, w, job, true); /* Retried later: failed, not dead. */
    const struct sched_queue_stats *q = find(e, "qa");
    assert_non_null(q);
    assert_int_equal(q->started, 1);
    assert_int_equal(q->failed, 1);
    assert_int_equal(q->dead, 0);
    assert_int_equal(q->completed, 0);
    assert_int_equal(q->duration.count, 1);
    assert_int_equal(q->start_delay.count, 1);
    /* Waited 2 s from its creation to its lease. */
    assert_true(q->start_delay.sum >= 2.0 && q->start_delay.sum < 2.1);

    e->io.now += 5000; /* Past the default backoff (1 s), within the TTL. */
    sched_tick(e->sc);
    fio_flush(&e->io);
    lease_and_fail(e, w, job, false); /* Not retryable: dead letter. */
    assert_int_equal(tfsm_status(&e->t, job), FSM_FAILED);
    assert_int_equal(q->started, 2);
    assert_int_equal(q->failed, 2);
    assert_int_equal(q->dead, 1);
    struct sched_stats st;
    sched_stats(e->sc, &st);
    assert_int_equal(st.failed, 1); /* jobs_failed: whole jobs. */
    assert_int_equal(st.started, 2);
}

/* overlap=forbid: the first occurrence runs (its run never ends here), the
 * next one is skipped; a trigger under allow is a fire too. */
static void test_stats_fires_and_skips(void **state)
{
    struct env *e = *state;
    struct sched_stats st;
    uint64_t s = tschedule(
        &e->t, T0, "{\"schedule\":\"@every 1h\",\"overlap\":\"forbid\"}",
        T0 + HOUR);
    (void)s;
    e->io.now = T0 + HOUR;
    sched_tick(e->sc);
    fio_flush(&e->io);
    sched_stats(e->sc, &st);
    assert_int_equal(st.fire_runs, 1);
    assert_int_equal(st.skips, 0);
    e->io.now = T0 + 2 * HOUR;
    sched_tick(e->sc);
    fio_flush(&e->io);
    sched_stats(e->sc, &st);
    assert_int_equal(st.fire_runs, 1);
    assert_int_equal(st.skips, 1);

    uint64_t a = tschedule(&e->t, e->io.now,
                           "{\"schedule\":\"@every 1h\",\"overlap\":\"allow\"}",
                           e->io.now + HOUR);
    int calls = 0;
    assert_int_equal(
        sched_schedule_action(e->sc, a, SCHED_TRIGGER, done_cb, &calls), 0);
    fio_flush(&e->io);
    assert_int_equal(calls, 1);
    sched_stats(e->sc, &st);
    assert_int_equal(st.fire_runs, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stats_queue_bound, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stats_default_queue, setup,
                                        teardown),
        cmocka_unit_test(test_stats_hist_buckets),
        cmocka_unit_test_setup_teardown(test_stats_failed_then_dead, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stats_fires_and_skips, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
