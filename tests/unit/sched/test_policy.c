/* sched/policy.c: retry backoff (growth, cap, jitter bounds), priority
 * aging, and the parents-first order of workflows (cycles, self-loops,
 * diamonds). sched/spec.c: backoff through sched__retry_at() with the
 * spec's keys and a seeded jitter, no_retry_exit_codes. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sched/internal.h"
#include "sched/policy.h"
#include "tests/unit/sched/helpers.h"

static void test_backoff(void **state)
{
    (void)state;
    /* 1s, 2s, 4s, ... capped at max. */
    assert_int_equal(policy_backoff_ms(1, 1000, 2, 3600000, 0, 0), 1000);
    assert_int_equal(policy_backoff_ms(2, 1000, 2, 3600000, 0, 0), 2000);
    assert_int_equal(policy_backoff_ms(5, 1000, 2, 3600000, 0, 0), 16000);
    assert_int_equal(policy_backoff_ms(40, 1000, 2, 3600000, 0, 0), 3600000);
    assert_int_equal(policy_backoff_ms(3, 200, 3, 1000, 0, 0), 1000);
    assert_int_equal(policy_backoff_ms(3, 500, 1, 3600000, 0, 0), 500);
    /* Jitter shortens by at most jitter * delay. */
    assert_int_equal(policy_backoff_ms(2, 1000, 2, 3600000, 0.5, 0), 2000);
    assert_int_equal(policy_backoff_ms(2, 1000, 2, 3600000, 0.5, 0.5), 1500);
    int64_t d = policy_backoff_ms(2, 1000, 2, 3600000, 1, 0.999);
    assert_true(d >= 0 && d <= 2);
}

static void test_aging(void **state)
{
    (void)state;
    assert_int_equal(policy_effective_priority(0, 0, 60000), 0);
    assert_int_equal(policy_effective_priority(0, 59999, 60000), 0);
    assert_int_equal(policy_effective_priority(0, 60000, 60000), 1);
    assert_int_equal(policy_effective_priority(-5, 600000, 60000), 5);
    assert_int_equal(policy_effective_priority(3, 3600000, 0), 3); /* Off. */
    assert_int_equal(policy_effective_priority(3, -10, 60000), 3);
    /* An old priority-0 job outranks new priority-2 ones after 3 min. */
    assert_true(policy_effective_priority(0, 180000, 60000) >
                policy_effective_priority(2, 0, 60000));
}

static void test_topo(void **state)
{
    (void)state;
    /* 0 <- 2 <- 1, and 3 <- {0, 1} (a diamond). */
    unsigned d1[] = {2}, d2[] = {0}, d3[] = {0, 1};
    const unsigned *deps[] = {NULL, d1, d2, d3};
    unsigned n_deps[] = {0, 1, 1, 2}, order[4], pos[4], cycle = 99;
    assert_int_equal(policy_topo_order(4, n_deps, deps, order, &cycle), 0);
    for (unsigned i = 0; i < 4; i++) {
        pos[order[i]] = i;
    }
    assert_true(pos[0] < pos[2] && pos[2] < pos[1]);
    assert_true(pos[0] < pos[3] && pos[1] < pos[3]);
    /* A cycle 1 -> 2 -> 1 below a fine root 0. */
    unsigned c1[] = {2}, c2[] = {1};
    const unsigned *cdeps[] = {NULL, c1, c2};
    unsigned cn[] = {0, 1, 1};
    assert_int_equal(policy_topo_order(3, cn, cdeps, order, &cycle), -1);
    assert_true(cycle == 1 || cycle == 2);
    /* Self-dependency. */
    unsigned s0[] = {0};
    const unsigned *sdeps[] = {s0};
    unsigned sn[] = {1};
    assert_int_equal(policy_topo_order(1, sn, sdeps, order, &cycle), -1);
    assert_int_equal(cycle, 0);
}

/* A job whose attempt number @attempts just failed, with @spec. */
static struct fsm_job failed(const char *spec, uint32_t attempts)
{
    struct fsm_job j = tjob("x");
    j.spec = tstr(spec);
    j.attempts = attempts;
    return j;
}

/* u in [0, 1) as the leader draws it (sched__uniform) from a seeded
 * generator. */
static double draw(uint64_t *seed)
{
    return (double)(fio_splitmix(seed) >> 11) * 0x1.0p-53;
}

/* The same seed gives the same instants; another seed other ones, all
 * within [d * (1 - jitter), d]. */
static void test_policy_retry_at_seeded(void **state)
{
    const char *spec =
        "{\"backoff\":{\"initial\":\"1s\",\"multiplier\":2,"
        "\"max\":\"1h\",\"jitter\":0.5}}";
    const int64_t now = T0;
    (void)state;
    for (uint32_t att = 1; att <= 6; att++) {
        struct fsm_job j = failed(spec, att);
        int64_t d = 1000LL << (att - 1);
        uint64_t s1 = 42 + att, s2 = 42 + att, s3 = 7;
        bool differs = false;
        for (int k = 0; k < 20; k++) {
            int64_t a = sched__retry_at(&j, now, draw(&s1));
            int64_t b = sched__retry_at(&j, now, draw(&s2));
            int64_t c = sched__retry_at(&j, now, draw(&s3));
            assert_int_equal(a, b);
            differs |= a != c;
            assert_true(a > now + d / 2 && a <= now + d);
            assert_true(c > now + d / 2 && c <= now + d);
        }
        assert_true(differs);
    }
    /* u = 0 is the full delay; u -> 1 about half of it. */
    struct fsm_job j = failed(spec, 3);
    assert_int_equal(sched__retry_at(&j, now, 0), now + 4000);
    assert_int_equal(sched__retry_at(&j, now, 0.5), now + 3000);
}

/* jitter 0 (the default): exact exponential values up to max, whatever
 * u is. */
static void test_policy_retry_at_exact(void **state)
{
    (void)state;
    /* Defaults: 1 s, x2, 1 h. */
    const int64_t want[] = {1000, 2000, 4000, 8000, 16000, 32000};
    for (uint32_t i = 0; i < 6; i++) {
        struct fsm_job j = failed("{\"payload\":{}}", i + 1);
        assert_int_equal(sched__retry_at(&j, T0, 0.9), T0 + want[i]);
    }
    struct fsm_job j = failed("{}", 40);
    assert_int_equal(sched__retry_at(&j, T0, 0.3), T0 + 3600000);
    j.spec = tstr("");
    j.attempts = 2;
    assert_int_equal(sched__retry_at(&j, T0, 0.3), T0 + 2000);
}

/* The spec's backoff keys: durations as strings or seconds, multiplier,
 * max, jitter; keys that do not read keep their defaults. */
static void test_policy_retry_at_spec_keys(void **state)
{
    struct sched_spec sp;
    (void)state;
    const char *spec =
        "{\"backoff\":{\"initial\":\"500ms\",\"multiplier\":3,"
        "\"max\":\"10s\",\"jitter\":0}}";
    const int64_t want[] = {500, 1500, 4500, 10000, 10000};
    for (uint32_t i = 0; i < 5; i++) {
        struct fsm_job j = failed(spec, i + 1);
        assert_int_equal(sched__retry_at(&j, T0, 0.7), T0 + want[i]);
    }
    struct fsm_job j = failed(spec, 1);
    sched__spec_read(&j, &sp);
    assert_true(sp.initial_ms == 500 && sp.multiplier == 3);
    assert_true(sp.max_ms == 10000 && sp.jitter == 0);

    /* Numbers are seconds; "1m30s" sums. */
    j = failed("{\"backoff\":{\"initial\":2,\"max\":\"1m30s\"}}", 6);
    assert_int_equal(sched__retry_at(&j, T0, 0), T0 + 64000);
    j.attempts = 7;
    assert_int_equal(sched__retry_at(&j, T0, 0), T0 + 90000);
    /* jitter 1 with u = 0.75: a quarter of the delay. */
    j = failed("{\"backoff\":{\"initial\":\"4s\",\"jitter\":1}}", 1);
    assert_int_equal(sched__retry_at(&j, T0, 0.75), T0 + 1000);

    /* Bad values keep the defaults. */
    j = failed(
        "{\"backoff\":{\"initial\":\"soon\",\"max\":-1,"
        "\"multiplier\":\"x\"}}",
        3);
    sched__spec_read(&j, &sp);
    assert_true(sp.initial_ms == 1000 && sp.multiplier == 2);
    assert_true(sp.max_ms == 3600000);
    assert_int_equal(sched__retry_at(&j, T0, 0), T0 + 4000);
    j = failed("{\"backoff\":7}", 2);
    assert_int_equal(sched__retry_at(&j, T0, 0), T0 + 2000);
    j = failed("not json", 2);
    assert_int_equal(sched__retry_at(&j, T0, 0), T0 + 2000);
}

static void test_policy_no_retry_codes(void **state)
{
    struct sched_spec sp;
    (void)state;
    struct fsm_job j =
        failed("{\"no_retry_exit_codes\":[2,126,-1,\"3\",4.5]}", 1);
    sched__spec_read(&j, &sp);
    assert_int_equal(sp.n_no_retry, 3);
    assert_true(sched__spec_no_retry(&sp, 2));
    assert_true(sched__spec_no_retry(&sp, 126));
    assert_true(sched__spec_no_retry(&sp, -1));
    assert_false(sched__spec_no_retry(&sp, 0));
    assert_false(sched__spec_no_retry(&sp, 1));
    assert_false(sched__spec_no_retry(&sp, 3));
    assert_false(sched__spec_no_retry(&sp, 4));

    j = failed("{}", 1);
    sched__spec_read(&j, &sp);
    assert_int_equal(sp.n_no_retry, 0);
    assert_false(sched__spec_no_retry(&sp, 1));

    /* At most MAX_NO_RETRY are kept. */
    char spec[1024];
    size_t o =
        (size_t)snprintf(spec, sizeof spec, "{\"no_retry_exit_codes\":[");
    for (int i = 0; i < MAX_NO_RETRY + 10; i++) {
        o += (size_t)snprintf(spec + o, sizeof spec - o, "%s%d", i ? "," : "",
                              i + 1);
    }
    snprintf(spec + o, sizeof spec - o, "]}");
    j = failed(spec, 1);
    sched__spec_read(&j, &sp);
    assert_int_equal(sp.n_no_retry, MAX_NO_RETRY);
    assert_true(sched__spec_no_retry(&sp, MAX_NO_RETRY));
    assert_false(sched__spec_no_retry(&sp, MAX_NO_RETRY + 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_aging),
        cmocka_unit_test(test_topo),
        cmocka_unit_test(test_policy_retry_at_seeded),
        cmocka_unit_test(test_policy_retry_at_exact),
        cmocka_unit_test(test_policy_retry_at_spec_keys),
        cmocka_unit_test(test_policy_no_retry_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
