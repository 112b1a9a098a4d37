/* http/render.c and http__format_time: a job's JSON as the API has always
 * spelled it (the renderer appends members without printf), and times
 * against gmtime_r + strftime, across second boundaries (the formatter keeps
 * the text of the last second). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "http/internal.h"

#define S(lit) ((struct fsm_str){lit, sizeof lit - 1})

static void reference_time(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    size_t n;
    gmtime_r(&secs, &tm);
    n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(ms % 1000));
}

static void test_format_time_matches_strftime(void **state)
{
    /* Seconds going back and forth, every millisecond digit, a leap day,
     * the epoch, a year boundary. */
    static const int64_t at[] = {0,
                                 1,
                                 999,
                                 1000,
                                 1700000000000,
                                 1700000000999,
                                 1700000001000,
                                 1700000000001,
                                 1709164800123,
                                 1735689599999,
                                 1735689600000,
                                 4102444800000,
                                 253402300799999};
    char got[40], want[40];
    (void)state;
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
            http__format_time(at[i], got, sizeof got);
            reference_time(at[i], want, sizeof want);
            assert_string_equal(got, want);
        }
    }
    for (int64_t ms = 1700000000000; ms < 1700000003000; ms += 7) {
        http__format_time(ms, got, sizeof got);
        reference_time(ms, want, sizeof want);
        assert_string_equal(got, want);
    }
    /* Six seconds in turn: more than the formatter keeps, colliding. */
    for (int64_t k = 0; k < 600; k++) {
        int64_t ms = 1700000000000 + (k % 6) * 1000 + k;
        http__format_time(ms, got, sizeof got);
        reference_time(ms, want, sizeof want);
        assert_string_equal(got, want);
    }
    /* Too small a buffer is cut short, never overrun. */
    memset(got, 'x', sizeof got);
    http__format_time(1700000000123, got, 10);
    assert_true(strlen(got) < 10);
    assert_int_equal(got[11], 'x');
}

static const char *render(h2o_mem_pool_t *pool, const struct fsm_job *job)
{
    struct sb b;
    http__sb_init(&b, pool);
    http__job_write(&b, job);
    http__sb_put(&b, "", 1);
    return b.p;
}

static void test_job_write_running(void **state)
{
    h2o_mem_pool_t pool;
    struct fsm_job job = {0};
    (void)state;
    h2o_mem_init_pool(&pool);
    job.id = 0x00000000002a0001ULL;
    job.status = FSM_RUNNING;
    job.priority = -7;
    job.attempts = 2;
    job.max_attempts = 5;
    job.type = S("shell");
    job.queue = S("q\"1");
    job.spec = S("{\"payload\":{\"n\":1}}");
    job.timeout_ms = 1500;
    job.run_at = 1700000000000;
    job.created_at = 1700000000000;
    job.updated_at = 1700000001001;
    job.started_at = 1700000001001;
    job.worker_id = 0xfedcba9876543210ULL;
    job.lease_token = 18446744073709551615ULL;
    job.exit_code = -2;
    assert_string_equal(
        render(&pool, &job),
        "{\"id\":\"00000000002a0001\",\"type\":\"shell\",\"status\":"
        "\"running\","
        "\"queue\":\"q\\\"1\",\"priority\":-7,\"attempts\":2,\"max_attempts\":"
        "5,"
        "\"payload\":{\"n\":1},\"timeout\":\"1500ms\","
        "\"run_at\":\"2023-11-14T22:13:20.000Z\","
        "\"worker_id\":\"fedcba9876543210\","
        "\"lease_token\":18446744073709551615,\"exit_code\":-2,"
        "\"created_at\":\"2023-11-14T22:13:20.000Z\","
        "\"updated_at\":\"2023-11-14T22:13:21.001Z\","
        "\"started_at\":\"2023-11-14T22:13:21.001Z\",\"finished_at\":null,"
        "\"last_error\":null,\"result\":null}");
    h2o_mem_clear_pool(&pool);
}

static void test_job_write_pending_minimal(void **state)
{
    h2o_mem_pool_t pool;
    struct fsm_job job = {0};
    (void)state;
    h2o_mem_init_pool(&pool);
    job.id = 1;
    job.status = FSM_PENDING;
    job.max_attempts = 3;
    job.type = S("noop");
    job.queue = S("default");
    job.created_at = 1000;
    job.updated_at = 1000;
    job.run_at = 1000;
    assert_string_equal(
        render(&pool, &job),
        "{\"id\":\"0000000000000001\",\"type\":\"noop\",\"status\":\"pending\","
        "\"queue\":\"default\",\"priority\":0,\"attempts\":0,"
        "\"max_attempts\":3,\"payload\":{},"
        "\"run_at\":\"1970-01-01T00:00:01.000Z\","
        "\"created_at\":\"1970-01-01T00:00:01.000Z\","
        "\"updated_at\":\"1970-01-01T00:00:01.000Z\",\"started_at\":null,"
        "\"finished_at\":null,\"last_error\":null,\"result\":null}");
    h2o_mem_clear_pool(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_time_matches_strftime),
        cmocka_unit_test(test_job_write_running),
        cmocka_unit_test(test_job_write_pending_minimal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
