/* sched/cron.c: parsing (fields, names, ranges, steps, lists, seconds,
 * macros, @every) and its error reports; cron_next() on plain schedules,
 * month ends, leap years, the day-of-month/day-of-week OR rule, impossible
 * dates, DST gaps and repeated hours in America/New_York and Europe/Berlin,
 * @every alignment; timezone validity. Expected instants were computed
 * with date(1), e.g. TZ=America/New_York date -d '2026-03-08 03:00' +%s. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "sched/cron.h"

#define S(sec) ((int64_t)(sec)*1000)

static struct cron parse_ok(const char *expr)
{
    struct cron c;
    char field[32], msg[128];
    int rc = cron_parse(expr, &c, field, sizeof field, msg, sizeof msg);
    if (rc != 0) {
        print_error("cron_parse(\"%s\"): %s: %s\n", expr, field, msg);
    }
    assert_int_equal(rc, 0);
    return c;
}

/* Parse must fail on @expr and blame @want_field. */
static void parse_bad(const char *expr,
                      const char *want_field,
                      const char *want_msg)
{
    struct cron c;
    char field[32], msg[128];
    assert_int_equal(cron_parse(expr, &c, field, sizeof field, msg, sizeof msg),
                     -1);
    assert_string_equal(field, want_field);
    if (want_msg != NULL) {
        assert_string_equal(msg, want_msg);
    }
}

/* Next run in seconds, asserting there is one. */
static int64_t next_s(const struct cron *c, const char *tz, int64_t after_s)
{
    int64_t next = 0;
    assert_int_equal(cron_next(c, tz, S(after_s), &next), 0);
    assert_int_equal(next % 1000, 0);
    return next / 1000;
}

/* ---- Parsing ---- */

static void test_parse_fields(void **state)
{
    struct cron c;
    (void)state;

    c = parse_ok("* * * * *");
    assert_true(c.sec == 1); /* 5 fields: second 0 only. */
    assert_true(c.min == (UINT64_C(1) << 60) - 1);
    assert_true(c.hour == (1u << 24) - 1);
    assert_true(c.dom == 0xfffffffeu);
    assert_true(c.month == 0x1ffe);
    assert_true(c.dow == 0x7f);
    assert_true(c.dom_star && c.dow_star);
    assert_int_equal(c.every_ms, 0);

    /* Single values, ranges, steps, lists. */
    c = parse_ok("5 1-3 */10 1,6-8 1-5/2");
    assert_true(c.min == UINT64_C(1) << 5);
    assert_true(c.hour == 0xe);
    assert_true(c.dom == ((1u << 1) | (1u << 11) | (1u << 21) | (1u << 31)));
    assert_true(c.month == ((1u << 1) | (1u << 6) | (1u << 7) | (1u << 8)));
    assert_true(c.dow == ((1u << 1) | (1u << 3) | (1u << 5)));
    assert_false(c.dom_star);
    assert_false(c.dow_star);

    c = parse_ok("0,30 8-18/5,23 ? * ?");
    assert_true(c.min == (UINT64_C(1) | UINT64_C(1) << 30));
    assert_true(c.hour == ((1u << 8) | (1u << 13) | (1u << 18) | (1u << 23)));
    assert_true(c.dom_star && c.dow_star);

    /* 'a/step' runs to the end of the field. */
    c = parse_ok("50/5 * * * *");
    assert_true(c.min == ((UINT64_C(1) << 50) | (UINT64_C(1) << 55)));

    /* Surrounding and repeated whitespace is fine. */
    c = parse_ok("  0\t12   * * *  ");
    assert_true(c.hour == 1u << 12);
}

static void test_parse_names(void **state)
{
    struct cron c;
    (void)state;

    c = parse_ok("0 0 * JAN,mar-May,Dec sun");
    assert_true(c.month ==
                ((1u << 1) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 12)));
    assert_true(c.dow == 1);
    assert_true(c.dom_star);
    assert_false(c.dow_star);

    c = parse_ok("0 0 * * MON-FRI");
    assert_true(c.dow == 0x3e);
    c = parse_ok("0 0 * * mon-fri/2");
    assert_true(c.dow == ((1u << 1) | (1u << 3) | (1u << 5)));

    /* 7 is Sunday too. */
    c = parse_ok("0 0 * * 7");
    assert_true(c.dow == 1);
    c = parse_ok("0 0 * * 5-7");
    assert_true(c.dow == ((1u << 0) | (1u << 5) | (1u << 6)));
    c = parse_ok("0 0 * * 0-7");
    assert_true(c.dow == 0x7f);
}

static void test_parse_seconds(void **state)
{
    struct cron c;
    (void)state;

    c = parse_ok("*/15 0 12 * * *");
    assert_true(c.sec == ((UINT64_C(1) << 0) | (UINT64_C(1) << 15) |
                          (UINT64_C(1) << 30) | (UINT64_C(1) << 45)));
    assert_true(c.min == 1);
    assert_true(c.hour == 1u << 12);
    assert_true(c.dom_star && c.dow_star);

    c = parse_ok("59 59 23 31 12 SAT");
    assert_true(c.sec == UINT64_C(1) << 59);
    assert_true(c.dow == 1u << 6);
}

static void test_parse_macros(void **state)
{
    struct cron c;
    (void)state;

    c = parse_ok("@yearly");
    assert_true(c.sec == 1 && c.min == 1 && c.hour == 1);
    assert_true(c.dom == 2 && c.month == 2 && c.dow_star);
    c = parse_ok("@ANNUALLY");
    assert_true(c.dom == 2 && c.month == 2);
    c = parse_ok("@monthly");
    assert_true(c.dom == 2 && c.month == 0x1ffe);
    c = parse_ok("@weekly");
    assert_true(c.dow == 1 && c.dom_star && !c.dow_star);
    c = parse_ok("@daily");
    assert_true(c.min == 1 && c.hour == 1 && c.dom_star && c.dow_star);
    c = parse_ok("@midnight");
    assert_true(c.min == 1 && c.hour == 1);
    c = parse_ok("@hourly");
    assert_true(c.min == 1 && c.hour == (1u << 24) - 1);
}

static void test_parse_every(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("@every 30s").every_ms, 30000);
    assert_int_equal(parse_ok("@every 5m").every_ms, 300000);
    assert_int_equal(parse_ok("@every 1h30m").every_ms, 5400000);
    assert_int_equal(parse_ok("@every 1s250ms").every_ms, 1250);
    assert_int_equal(parse_ok("@every 1000ms").every_ms, 1000);
    assert_int_equal(parse_ok("@every 90s").every_ms, 90000);
    assert_int_equal(parse_ok("  @EVERY   2h ").every_ms, 7200000);
}

static void test_parse_errors(void **state)
{
    (void)state;
    parse_bad("61 * * * *", "minutes", "\"61\" is out of range 0-59");
    parse_bad("* 24 * * *", "hours", "\"24\" is out of range 0-23");
    parse_bad("* * 0 * *", "day_of_month", "\"0\" is out of range 1-31");
    parse_bad("* * 32 * *", "day_of_month", NULL);
    parse_bad("* * * 13 *", "month", "\"13\" is out of range 1-12");
    parse_bad("* * * FOO *", "month", "\"FOO\" is not a number or month name");
    parse_bad("* * * * MON-FOO", "day_of_week",
              "\"FOO\" is not a number or day name");
    parse_bad("* * * * 8", "day_of_week", "\"8\" is out of range 0-7");
    parse_bad("* * * * FRI-MON", "day_of_week",
              "\"FRI-MON\" is a backwards range");
    parse_bad("60 * * * * *", "seconds", "\"60\" is out of range 0-59");
    parse_bad("x * * * *", "minutes", "\"x\" is not a number");
    parse_bad("1000 * * * *", "minutes", NULL);
    parse_bad("1,,2 * * * *", "minutes", "\"1,,2\" has an empty list item");
    parse_bad("1, * * * *", "minutes", NULL);
    parse_bad("*/0 * * * *", "minutes", "\"*/0\" has an invalid step (1-60)");
    parse_bad("*/ * * * *", "minutes", NULL);
    parse_bad("*/61 * * * *", "minutes", NULL);
    parse_bad("1-2-3 * * * *", "minutes", NULL);
    parse_bad("-5 * * * *", "minutes", NULL);
    parse_bad("* *", "expression", "\"* *\" has 2 fields, expected 5 or 6");
    parse_bad("", "expression", NULL);
    parse_bad("* * * * * * *", "expression", NULL);
    parse_bad("@fortnightly", "expression",
              "\"@fortnightly\" is not a known macro");
    parse_bad("@daily 5", "expression", NULL);
    parse_bad("@every 0s", "every", "\"0s\" is shorter than 1s");
    parse_bad("@every 999ms", "every", NULL);
    parse_bad("@every x", "every", NULL);
    parse_bad("@every 30", "every", NULL);
    parse_bad("@every 1.5h", "every", NULL);
    parse_bad("@every 5us", "every", NULL);
    parse_bad("@every", "every", NULL);
    parse_bad("@every 1s 2s", "every", NULL);
    parse_bad("@every 99999999999999999999h", "every", NULL);

    /* Over-long input is refused, not truncated. */
    {
        char big[CRON_MAX_EXPR + 8];
        memset(big, ' ', sizeof big);
        memcpy(big, "* * * * *", 9);
        big[sizeof big - 1] = '\0';
        parse_bad(big, "expression", NULL);
    }

    /* NULL/zero-size error buffers are allowed. */
    {
        struct cron c;
        assert_int_equal(cron_parse("61 * * * *", &c, NULL, 0, NULL, 0), -1);
        assert_int_equal(cron_parse(NULL, &c, NULL, 0, NULL, 0), -1);
    }
}

/* ---- Next run, UTC ---- */

static void test_next_every_minute(void **state)
{
    struct cron c = parse_ok("* * * * *");
    int64_t next;
    (void)state;

    /* 2026-01-15 10:20:30 UTC. */
    assert_int_equal(next_s(&c, "UTC", 1768472430), 1768472460);
    /* Strictly after: exactly on a minute gives the next one. */
    assert_int_equal(next_s(&c, "UTC", 1768472460), 1768472520);
    /* Milliseconds just before the minute. */
    assert_int_equal(cron_next(&c, "", S(1768472460) - 1, &next), 0);
    assert_int_equal(next, S(1768472460));
    assert_int_equal(cron_next(&c, NULL, S(1768472460) + 1, &next), 0);
    assert_int_equal(next, S(1768472520));

    /* Seconds field. */
    c = parse_ok("*/20 * * * * *");
    assert_int_equal(next_s(&c, "UTC", 1768472430), 1768472440);
    assert_int_equal(next_s(&c, "UTC", 1768472440), 1768472460);
}

static void test_next_daily_utc(void **state)
{
    struct cron c = parse_ok("0 0 * * *");
    (void)state;

    /* 2026-03-01 00:00 -> 2026-03-02 00:00. */
    assert_int_equal(next_s(&c, "UTC", 1772323200), 1772323200 + 86400);
    assert_int_equal(next_s(&c, "UTC", 1772323199), 1772323200);

    /* Across a year end: 2026-12-31 23:59:59 UTC. */
    c = parse_ok("@yearly");
    assert_int_equal(next_s(&c, "UTC", 1798761599), 1798761600);

    /* Local time matters: 09:00 in Kolkata (+05:30) and Sydney (+11). */
    c = parse_ok("0 9 * * *");
    assert_int_equal(next_s(&c, "Asia/Kolkata", 1767225600), 1767238200);
    assert_int_equal(next_s(&c, "Australia/Sydney", 1767225600),
                     1767218400 + 86400);
}

static void test_next_month_end(void **state)
{
    struct cron c = parse_ok("0 0 31 * *");
    (void)state;
    /* From 2026-04-01: April and... 30 days, so May 31. */
    assert_int_equal(next_s(&c, "UTC", 1775001600), 1780185600);

    /* Skipping December carries into January (regression: month 13 was
     * once looked up in the month-length table). From 2026-12-31. */
    c = parse_ok("0 0 1 1-11 *");
    assert_int_equal(next_s(&c, "UTC", 1798675200), 1798761600);
    c = parse_ok("0 0 * 1 *");
    assert_int_equal(next_s(&c, "UTC", 1796083200), 1798761600);
}

static void test_next_leap_year(void **state)
{
    struct cron c = parse_ok("0 0 29 2 *");
    int64_t next;
    (void)state;

    /* From 2026-03-01: 2027 is not leap, 2028 is. */
    assert_int_equal(next_s(&c, "UTC", 1772323200), 1835395200);

    /* 2100 is not a leap year: from 2096-03-01 the next is 2104-02-29,
     * beyond the 5-year search. */
    assert_int_equal(cron_next(&c, "UTC", S(3981398400), &next), -1);
}

static void test_next_dom_dow(void **state)
{
    struct cron c;
    (void)state;
    /* 2026-02-01 is a Sunday. Feb 2 Monday, Feb 6 Friday, Feb 13 Friday. */
    const int64_t feb1 = 1769904000;
    const int64_t feb2 = 1769990400, feb6 = 1770336000, feb13 = 1770940800;

    /* Both restricted: either matches. */
    c = parse_ok("0 0 2 * FRI");
    assert_int_equal(next_s(&c, "UTC", feb1), feb2);
    assert_int_equal(next_s(&c, "UTC", feb2), feb6);
    assert_int_equal(next_s(&c, "UTC", feb6), feb13);

    /* A stepped '*' is a restriction too. */
    c = parse_ok("0 0 */10 * MON");
    assert_int_equal(next_s(&c, "UTC", feb1), feb2);

    /* Only one restricted: it alone decides. */
    c = parse_ok("0 0 * * FRI");
    assert_int_equal(next_s(&c, "UTC", feb1), feb6);
    c = parse_ok("0 0 13 * ?");
    assert_int_equal(next_s(&c, "UTC", feb1), feb13);
    c = parse_ok("0 0 ? * 5");
    assert_int_equal(next_s(&c, "UTC", feb1), feb6);
}

static void test_next_impossible(void **state)
{
    struct cron c = parse_ok("0 0 30 2 *");
    int64_t next = 42;
    (void)state;
    assert_int_equal(cron_next(&c, "UTC", S(1772323200), &next), -1);
    c = parse_ok("0 0 31 4,6,9,11 *");
    assert_int_equal(cron_next(&c, "Europe/Berlin", S(1772323200), &next), -1);
}

/* ---- DST ---- */

static void test_dst_gap_new_york(void **state)
{
    struct cron c = parse_ok("30 2 * * *");
    (void)state;
    /* 2026-03-08: 02:00 EST -> 03:00 EDT. From 00:00 EST, 02:30 does not
     * exist and runs at 03:00 EDT; the next run is 03-09 02:30 EDT. */
    assert_int_equal(next_s(&c, "America/New_York", 1772946000), 1772953200);
    assert_int_equal(next_s(&c, "America/New_York", 1772953200), 1773037800);

    /* Several times inside the gap: still one run. */
    c = parse_ok("0,15,30,45 2 * * *");
    assert_int_equal(next_s(&c, "America/New_York", 1772946000), 1772953200);
    assert_int_equal(next_s(&c, "America/New_York", 1772953200),
                     1773037800 - 1800);

    /* Every 15 minutes: 01:45 EST, then 03:00 EDT, then 03:15 EDT. */
    c = parse_ok("*/15 * * * *");
    assert_int_equal(next_s(&c, "America/New_York", 1772953200 - 900),
                     1772953200);
    assert_int_equal(next_s(&c, "America/New_York", 1772953200),
                     1772953200 + 900);
}

static void test_dst_repeat_new_york(void **state)
{
    struct cron c = parse_ok("30 1 * * *");
    (void)state;
    /* 2026-11-01: 02:00 EDT -> 01:00 EST. 01:30 runs once, in EDT. */
    assert_int_equal(next_s(&c, "America/New_York", 1793505600), 1793511000);
    assert_int_equal(next_s(&c, "America/New_York", 1793511000), 1793601000);
    /* Even from inside the second pass, before its 01:30 EST. */
    assert_int_equal(next_s(&c, "America/New_York", 1793511000 + 3600 - 60),
                     1793601000);

    /* Every 30 minutes across the repeated hour: 01:00 EDT, 01:30 EDT,
     * 02:00 EST. */
    c = parse_ok("*/30 * * * *");
    {
        int64_t t0 = next_s(&c, "America/New_York", 1793507400); /* 00:30 */
        int64_t t1 = next_s(&c, "America/New_York", t0);
        int64_t t2 = next_s(&c, "America/New_York", t1);
        assert_int_equal(t0, 1793509200);
        assert_int_equal(t1, 1793511000);
        assert_int_equal(t2, 1793516400);
        assert_int_equal(t1 - t0, 1800);
        assert_int_equal(t2 - t1, 5400);
    }
}

static void test_dst_berlin(void **state)
{
    struct cron c = parse_ok("30 2 * * *");
    (void)state;
    /* 2026-03-29: 02:00 CET -> 03:00 CEST. */
    assert_int_equal(next_s(&c, "Europe/Berlin", 1774738800), 1774746000);
    assert_int_equal(next_s(&c, "Europe/Berlin", 1774746000), 1774830600);

    /* 2026-10-25: 03:00 CEST -> 02:00 CET. 02:30 runs once, in CEST. */
    assert_int_equal(next_s(&c, "Europe/Berlin", 1792879200), 1792888200);
    assert_int_equal(next_s(&c, "Europe/Berlin", 1792888200), 1792978200);
}

/* ---- @every ---- */

static void test_every(void **state)
{
    struct cron c = parse_ok("@every 1s");
    int64_t next;
    (void)state;

    assert_int_equal(cron_next(&c, "UTC", 1000, &next), 0);
    assert_int_equal(next, 2000);
    assert_int_equal(cron_next(&c, "UTC", 1001, &next), 0);
    assert_int_equal(next, 2000);
    assert_int_equal(cron_next(&c, "UTC", 1999, &next), 0);
    assert_int_equal(next, 2000);

    /* 90s: multiples of 90000 since the epoch, whatever the tz. */
    c = parse_ok("@every 90s");
    assert_int_equal(cron_next(&c, "UTC", S(1768472430), &next), 0);
    assert_int_equal(next, S(1768472460)); /* 19649694 * 90 s */
    assert_int_equal(cron_next(&c, "Asia/Kolkata", S(1768472430), &next), 0);
    assert_int_equal(next, S(1768472460));
    assert_int_equal(cron_next(&c, "UTC", S(1768472460), &next), 0);
    assert_int_equal(next, S(1768472550));
    assert_int_equal(cron_next(&c, "UTC", 0, &next), 0);
    assert_int_equal(next, 90000);
    assert_int_equal(cron_next(&c, "UTC", -1, &next), 0);
    assert_int_equal(next, 0);

    /* Still needs a valid tz. */
    assert_int_equal(cron_next(&c, "Mars/Base", 0, &next), -1);
}

/* ---- Timezones ---- */

static void test_tz_valid(void **state)
{
    struct cron c = parse_ok("0 0 * * *");
    int64_t next;
    (void)state;

    assert_true(cron_tz_valid("UTC"));
    assert_true(cron_tz_valid(""));
    assert_true(cron_tz_valid(NULL));
    assert_true(cron_tz_valid("Europe/Berlin"));
    assert_true(cron_tz_valid("America/New_York"));
    assert_true(cron_tz_valid("Australia/Sydney"));
    assert_true(cron_tz_valid("Asia/Kolkata"));
    assert_false(cron_tz_valid("Mars/Base"));
    assert_false(cron_tz_valid("Etc/Unknown"));
    assert_false(cron_tz_valid("GMT+05:00"));
    assert_false(cron_tz_valid("europe/berlin"));
    assert_false(cron_tz_valid("Europe/Berlin "));
    assert_false(cron_tz_valid("Europe/Berlin/../../x"));

    assert_int_equal(cron_next(&c, "Mars/Base", 0, &next), -1);

    /* More zones than the cache holds: eviction keeps results right. */
    {
        static const char *const zones[] = {
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Asia/Kolkata",
            "Australia/Sydney",
            "Europe/London",
            "Europe/Paris",
            "Asia/Tokyo",
            "America/Chicago",
            "America/Denver",
            "America/Los_Angeles",
            "Africa/Cairo",
            "Asia/Shanghai",
            "Europe/Moscow",
            "America/Sao_Paulo",
            "Pacific/Auckland",
            "Asia/Dubai",
            "Europe/Madrid",
            "Asia/Singapore",
            "America/Toronto",
        };
        for (int round = 0; round < 2; round++) {
            for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
                assert_int_equal(cron_next(&c, zones[i], 0, &next), 0);
            }
        }
        assert_int_equal(next_s(&c, "Asia/Kolkata", 1767225600),
                         1767225600 + 86400 - 19800);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_names),
        cmocka_unit_test(test_parse_seconds),
        cmocka_unit_test(test_parse_macros),
        cmocka_unit_test(test_parse_every),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_next_every_minute),
        cmocka_unit_test(test_next_daily_utc),
        cmocka_unit_test(test_next_month_end),
        cmocka_unit_test(test_next_leap_year),
        cmocka_unit_test(test_next_dom_dow),
        cmocka_unit_test(test_next_impossible),
        cmocka_unit_test(test_dst_gap_new_york),
        cmocka_unit_test(test_dst_repeat_new_york),
        cmocka_unit_test(test_dst_berlin),
        cmocka_unit_test(test_every),
        cmocka_unit_test(test_tz_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
