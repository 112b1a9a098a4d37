/* common/cron.c: parsing (fields, names, ranges, steps, lists, seconds,
 * macros, @every, errors naming the part) and next-time computation (UTC,
 * month ends, leap years, the day-of-month/day-of-week rule, expressions
 * that never match, DST gaps and repeats in America/New_York and
 * Europe/Berlin, @every alignment). Expected instants come from date(1). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/cron.h"

#define S 1000LL

static struct cron parse_ok(const char *expr)
{
    struct cron c;
    char field[32], msg[160];
    int rv = cron_parse(expr, &c, field, sizeof field, msg, sizeof msg);
    if (rv != 0) {
        print_error("%s: %s: %s\n", expr, field, msg);
    }
    assert_int_equal(rv, 0);
    return c;
}

static void parse_bad(const char *expr, const char *want_field)
{
    struct cron c;
    char field[32] = "", msg[160] = "";
    assert_int_equal(cron_parse(expr, &c, field, sizeof field, msg, sizeof msg),
                     -1);
    assert_string_equal(field, want_field);
    assert_true(msg[0] != '\0');
}

static int64_t next(const char *expr, const char *tz, int64_t after)
{
    struct cron c = parse_ok(expr);
    int64_t t = 0;
    assert_int_equal(cron_next(&c, tz, after, &t), 0);
    assert_true(t > after);
    return t;
}

static void test_parse(void **state)
{
    (void)state;
    struct cron c = parse_ok("0,30 9-17/2 * JAN-mar mon-FRI");
    assert_int_equal(c.min, (1ULL << 0) | (1ULL << 30));
    assert_int_equal(c.hour, (1u << 9) | (1u << 11) | (1u << 13) | (1u << 15) |
                                 (1u << 17));
    assert_int_equal(c.month, (1u << 1) | (1u << 2) | (1u << 3));
    assert_int_equal(c.dow, 0x3e);
    assert_true(c.dom_star);
    assert_false(c.dow_star);
    c = parse_ok("*/15 * * * * *"); /* Six fields: seconds first. */
    assert_int_equal(c.sec, (1ULL << 0) | (1ULL << 15) | (1ULL << 30) |
                                (1ULL << 45));
    c = parse_ok("0 0 * * 7");
    assert_int_equal(c.dow, 1); /* 7 is Sunday. */
    c = parse_ok("@daily");
    assert_int_equal(c.min, 1);
    assert_int_equal(c.hour, 1);
    c = parse_ok("@every 30s");
    assert_int_equal(c.every_ms, 30 * S);
    c = parse_ok("@every 1h30m");
    assert_int_equal(c.every_ms, 5400 * S);
    parse_bad("61 * * * *", "minutes");
    parse_bad("* 24 * * *", "hours");
    parse_bad("* * 0 * *", "day_of_month");
    parse_bad("* * * 13 *", "month");
    parse_bad("* * * * MON-FOO", "day_of_week");
    parse_bad("60 * * * * *", "seconds");
    parse_bad("* *", "expression");
    parse_bad("@fortnightly", "expression");
    parse_bad("@every 0s", "every");
    parse_bad("@every x", "every");
    parse_bad("*/0 * * * *", "minutes");
}

static void test_next_utc(void **state)
{
    (void)state;
    const int64_t mar1 = 1772323200 * S; /* 2026-03-01T00:00Z, a Sunday. */
    assert_int_equal(next("* * * * *", "UTC", mar1), mar1 + 60 * S);
    assert_int_equal(next("* * * * *", "UTC", mar1 + 1), mar1 + 60 * S);
    assert_int_equal(next("0 0 * * *", NULL, mar1), mar1 + 86400 * S);
    assert_int_equal(next("*/10 * * * * *", "", mar1), mar1 + 10 * S);
    /* Month ends: the 31st from April 1 is May 31. */
    assert_int_equal(next("0 0 31 * *", "UTC", 1775001600 * S),
                     1780185600 * S);
    /* Leap years: Feb 29 from 2026-03-01 is 2028-02-29. */
    assert_int_equal(next("0 0 29 2 *", "UTC", mar1), 1835395200 * S);
    /* Both day fields restricted: the 13th OR a Monday (Mar 2). */
    assert_int_equal(next("0 0 13 * MON", "UTC", mar1), mar1 + 86400 * S);
    /* Only day-of-week restricted: the first Friday (Mar 6). */
    assert_int_equal(next("0 0 * * FRI", "UTC", mar1), mar1 + 5 * 86400 * S);
    /* Never: February 30th. */
    struct cron c = parse_ok("0 0 30 2 *");
    int64_t t;
    assert_int_equal(cron_next(&c, "UTC", mar1, &t), -1);
    c = parse_ok("@daily");
    assert_int_equal(cron_next(&c, "Mars/Olympus", mar1, &t), -1);
}

static void test_dst_new_york(void **state)
{
    (void)state;
    /* 2026-03-08: 02:00 EST → 03:00 EDT. 02:30 does not exist: once at
     * 03:00 EDT (07:00Z), then 02:30 EDT the next day. */
    int64_t t = next("30 2 * * *", "America/New_York", 1772884800 * S);
    assert_int_equal(t, 1772953200 * S);
    assert_int_equal(next("30 2 * * *", "America/New_York", t),
                     1773037800 * S);
    /* Several times inside the gap: one run. */
    t = next("*/15 2 * * *", "America/New_York", 1772884800 * S);
    assert_int_equal(t, 1772953200 * S);
    assert_int_equal(next("*/15 2 * * *", "America/New_York", t),
                     1773037800 * S - 30 * 60 * S);
    /* 2026-11-01: 02:00 EDT → 01:00 EST. 01:30 runs once, the first. */
    t = next("30 1 * * *", "America/New_York", 1793448000 * S);
    assert_int_equal(t, 1793511000 * S); /* 01:30 EDT = 05:30Z. */
    assert_int_equal(next("30 1 * * *", "America/New_York", t),
                     1793601000 * S); /* Nov 2, 01:30 EST. */
    /* Every half hour across the repeated hour. */
    t = next("*/30 * * * *", "America/New_York", 1793508600 * S);
    assert_int_equal(t, 1793509200 * S); /* 01:00 EDT */
    t = next("*/30 * * * *", "America/New_York", t);
    assert_int_equal(t, 1793511000 * S); /* 01:30 EDT */
    t = next("*/30 * * * *", "America/New_York", t);
    assert_int_equal(t, 1793516400 * S); /* 02:00 EST: 90 min later. */
}

static void test_dst_berlin(void **state)
{
    (void)state;
    /* 2026-03-29: 02:00 CET → 03:00 CEST. */
    int64_t t = next("30 2 * * *", "Europe/Berlin", 1774699200 * S);
    assert_int_equal(t, 1774746000 * S); /* 03:00 CEST = 01:00Z. */
    assert_int_equal(next("30 2 * * *", "Europe/Berlin", t), 1774830600 * S);
    /* 2026-10-25: 03:00 CEST → 02:00 CET; 02:30 happens twice. */
    t = next("30 2 * * *", "Europe/Berlin", 1792843200 * S);
    assert_int_equal(t, 1792888200 * S); /* 02:30 CEST = 00:30Z. */
    assert_int_equal(next("30 2 * * *", "Europe/Berlin", t), 1792978200 * S);
    /* Midnight on New Year in Berlin is 23:00Z the day before. */
    assert_int_equal(next("0 0 1 1 *", "Europe/Berlin", 1772323200 * S),
                     (1798761600LL - 3600) * S);
}

static void test_every(void **state)
{
    (void)state;
    assert_int_equal(next("@every 1s", "UTC", 1000 * S + 1), 1001 * S);
    assert_int_equal(next("@every 1s", "UTC", 1000 * S), 1001 * S);
    assert_int_equal(next("@every 90s", "Europe/Berlin", 0), 90 * S);
    assert_int_equal(next("@every 90s", "UTC", 90 * S), 180 * S);
}

static void test_timezones(void **state)
{
    (void)state;
    assert_true(cron_tz_valid("UTC"));
    assert_true(cron_tz_valid("Europe/Berlin"));
    assert_true(cron_tz_valid("America/New_York"));
    assert_true(cron_tz_valid("Asia/Kolkata"));
    assert_false(cron_tz_valid("Mars/Olympus"));
    assert_false(cron_tz_valid("Europe/Nowhere"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),        cmocka_unit_test(test_next_utc),
        cmocka_unit_test(test_dst_new_york), cmocka_unit_test(test_dst_berlin),
        cmocka_unit_test(test_every),        cmocka_unit_test(test_timezones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
