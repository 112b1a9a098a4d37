/* common/duration.c: the duration grammar (sums of <decimal><unit>), its
 * limit, and everything strtod would have let through: nan, inf, signs,
 * exponents, hex, spaces. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/duration.h"

#define MAX (10LL * 366 * 86400000)

static int64_t ok(const char *s)
{
    int64_t ms = -1;
    assert_int_equal(duration_parse_ms(s, MAX, &ms), 0);
    return ms;
}

static void test_duration_valid(void **state)
{
    (void)state;
    assert_int_equal(ok("250ms"), 250);
    assert_int_equal(ok("1.5s"), 1500);
    assert_int_equal(ok("1h30m"), 5400000);
    assert_int_equal(ok("2d"), 172800000);
    assert_int_equal(ok("1s500ms"), 1500);
    assert_int_equal(ok("0s"), 0);
    assert_int_equal(ok("0.25m"), 15000);
}

static void test_duration_refused(void **state)
{
    static const char *const bad[] = {
        "",      "s",     "5",    "5x",    "nans",
        "nanms", "infs",  "inf",  "-1s",   "+1s",
        "1e3s",  "0x10s", " 5s",  "5s ",   "1.s",
        ".5s",   "5 s",   "NaNs", "1..5s", "99999999999999999999s",
        "3661d"};
    int64_t ms;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms = 7;
        if (duration_parse_ms(bad[i], MAX, &ms) != -1 || ms != 7) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
    }
    assert_int_equal(duration_parse_ms(NULL, MAX, &ms), -1);
    assert_int_equal(duration_parse_ms("2s", 1999, &ms), -1);
    assert_int_equal(duration_parse_ms("2s", 2000, &ms), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_valid),
        cmocka_unit_test(test_duration_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
