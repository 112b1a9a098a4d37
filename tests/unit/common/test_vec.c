/* common/vec.c: VEC_RESERVE grows by doubling from 16, keeps what the
 * array held, does nothing when there is room, and refuses a size that
 * would overflow (leaving the array as it was). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>

#include "common/vec.h"

struct pair
{
    uint64_t a, b;
};

static void test_vec_grows_and_keeps(void **state)
{
    struct pair *p = NULL;
    size_t cap = 0, n = 0;
    (void)state;
    for (uint64_t i = 0; i < 1000; i++) {
        assert_int_equal(VEC_RESERVE(p, cap, n + 1), 0);
        assert_true(cap >= n + 1);
        p[n].a = i;
        p[n].b = ~i;
        n++;
    }
    assert_int_equal(cap, 1024); /* 16, 32, ..., 1024. */
    for (uint64_t i = 0; i < n; i++) {
        assert_int_equal(p[i].a, i);
        assert_int_equal(p[i].b, ~i);
    }
    free(p);
}

static void test_vec_room_is_no_op(void **state)
{
    char *p = NULL;
    size_t cap = 0;
    (void)state;
    assert_int_equal(VEC_RESERVE(p, cap, 5), 0);
    assert_int_equal(cap, 16);
    char *before = p;
    assert_int_equal(VEC_RESERVE(p, cap, 16), 0);
    assert_ptr_equal(p, before);
    assert_int_equal(VEC_RESERVE(p, cap, 17), 0);
    assert_int_equal(cap, 32);
    free(p);
}

static void test_vec_overflow_refused(void **state)
{
    struct pair *p = NULL;
    size_t cap = 0;
    (void)state;
    assert_int_equal(VEC_RESERVE(p, cap, 4), 0);
    struct pair *before = p;
    assert_int_equal(VEC_RESERVE(p, cap, SIZE_MAX / 4), -1);
    assert_ptr_equal(p, before);
    assert_int_equal(cap, 16);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vec_grows_and_keeps),
        cmocka_unit_test(test_vec_room_is_no_op),
        cmocka_unit_test(test_vec_overflow_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
