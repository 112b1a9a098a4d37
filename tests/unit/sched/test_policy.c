/* http/policy.c: retry backoff (growth, cap, jitter bounds), priority
 * aging, and the parents-first order of workflows (cycles, self-loops,
 * diamonds). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sched/policy.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_aging),
        cmocka_unit_test(test_topo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
