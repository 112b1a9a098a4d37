/* http/ratelimit.c: token bucket arithmetic on virtual time (no clock is
 * read), Retry-After rounding, the table's keys, forget and sweep. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "http/ratelimit.h"

#define T0 1700000000000LL
#define OWNER ((const void *)0x1000)

static struct rl_limit lim(uint64_t rate_milli, uint32_t burst)
{
    return (struct rl_limit){rate_milli, burst};
}

/* rate 5/s, burst 5: five at once, then 200 ms per request. */
static void test_ratelimit_burst_then_rate(void **state)
{
    struct rl_table t = {0};
    (void)state;

    for (int i = 0; i < 5; i++) {
        assert_int_equal(rl_take(&t, OWNER, 1, lim(5000, 5), T0), 0);
    }
    assert_int_equal(rl_take(&t, OWNER, 1, lim(5000, 5), T0), 200);
    assert_int_equal(rl_take(&t, OWNER, 1, lim(5000, 5), T0 + 150), 50);
    assert_int_equal(rl_take(&t, OWNER, 1, lim(5000, 5), T0 + 200), 0);
    assert_int_equal(rl_take(&t, OWNER, 1, lim(5000, 5), T0 + 200), 200);
    /* A long pause refills to the burst, not beyond. */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(rl_take(&t, OWNER, 1, lim(5000, 5), T0 + 3600000), 0);
    }
    assert_true(rl_take(&t, OWNER, 1, lim(5000, 5), T0 + 3600000) > 0);
    assert_int_equal(t.n, 1);
    rl_clear(&t);
}

/* Over a long run the rate holds: 1000 s at 2.5/s allows 2500 (+ burst). */
static void test_ratelimit_long_run(void **state)
{
    struct rl_table t = {0};
    unsigned allowed = 0;
    (void)state;

    for (int64_t ms = 0; ms < 1000000; ms += 7) {
        allowed += rl_take(&t, OWNER, 9, lim(2500, 3), T0 + ms) == 0;
    }
    assert_true(allowed >= 2500 && allowed <= 2503);
    rl_clear(&t);
}

static void test_ratelimit_slow_rate_and_retry_after(void **state)
{
    struct rl_table t = {0};
    int64_t wait;
    (void)state;

    /* 0.001/s: one request, then 1000 s. */
    assert_int_equal(rl_take(&t, OWNER, 2, lim(1, 1), T0), 0);
    wait = rl_take(&t, OWNER, 2, lim(1, 1), T0);
    assert_int_equal(wait, 1000000);
    assert_int_equal(rl_retry_after_s(wait), 1000);
    assert_int_equal(rl_retry_after_s(1), 1);
    assert_int_equal(rl_retry_after_s(1000), 1);
    assert_int_equal(rl_retry_after_s(1001), 2);
    assert_int_equal(rl_retry_after_s(0), 1);
    /* The fastest rate and biggest burst: no overflow after a year. */
    struct rl_limit big = lim(1000000000ULL, 1000000);
    assert_int_equal(rl_take(&t, OWNER, 3, big, T0), 0);
    assert_int_equal(rl_take(&t, OWNER, 3, big, T0 + 365LL * 86400000), 0);
    rl_clear(&t);
}

/* A clock that goes back adds nothing and does not lock the token out. */
static void test_ratelimit_clock_back(void **state)
{
    struct rl_table t = {0};
    (void)state;

    assert_int_equal(rl_take(&t, OWNER, 4, lim(1000, 1), T0), 0);
    assert_int_equal(rl_take(&t, OWNER, 4, lim(1000, 1), T0 - 60000), 1000);
    assert_int_equal(rl_take(&t, OWNER, 4, lim(1000, 1), T0 - 59000), 0);
    rl_clear(&t);
}

static bool only_odd(void *data, uint64_t id)
{
    (void)data;
    return id % 2 == 1;
}

/* Keys are (owner, id); forget and sweep drop buckets. */
static void test_ratelimit_table(void **state)
{
    struct rl_table t = {0};
    const void *other = (const void *)0x2000;
    (void)state;

    for (uint64_t id = 100; id > 0; id--) {
        assert_int_equal(rl_take(&t, OWNER, id, lim(1000, 1), T0), 0);
    }
    assert_int_equal(rl_take(&t, other, 5, lim(1000, 1), T0), 0);
    assert_int_equal(t.n, 101);
    for (size_t i = 1; i < t.n; i++) {
        assert_true((uintptr_t)t.v[i - 1].owner < (uintptr_t)t.v[i].owner ||
                    t.v[i - 1].id < t.v[i].id);
    }
    /* Each is empty; @other's token 5 is another bucket. */
    assert_true(rl_take(&t, OWNER, 5, lim(1000, 1), T0) > 0);
    rl_forget(&t, OWNER, 5);
    assert_int_equal(t.n, 100);
    assert_int_equal(rl_take(&t, OWNER, 5, lim(1000, 1), T0), 0);

    assert_true(rl_sweep_due(&t, T0)); /* Never swept. */
    t.swept_at = T0;
    assert_false(rl_sweep_due(&t, T0 + RL_SWEEP_MS - 1));
    assert_true(rl_sweep_due(&t, T0 + RL_SWEEP_MS));
    assert_true(rl_sweep_due(&t, T0 - 1));
    /* 500 ms later nothing is full: only the deleted (even) go. */
    rl_sweep(&t, OWNER, T0 + 500, only_odd, NULL);
    assert_int_equal(t.n, 51); /* 50 odd + @other's. */
    /* A second later every bucket is full again: only @other's stays. */
    rl_sweep(&t, OWNER, T0 + 1000, NULL, NULL);
    assert_int_equal(t.n, 1);
    assert_ptr_equal(t.v[0].owner, other);
    rl_sweep(&t, other, T0 + 1000, NULL, NULL);
    assert_int_equal(t.n, 0);
    assert_null(t.v);
    rl_clear(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ratelimit_burst_then_rate),
        cmocka_unit_test(test_ratelimit_long_run),
        cmocka_unit_test(test_ratelimit_slow_rate_and_retry_after),
        cmocka_unit_test(test_ratelimit_clock_back),
        cmocka_unit_test(test_ratelimit_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
