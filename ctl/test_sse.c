/* ctl/sse.c: the same events whatever the pieces the bytes arrive in
 * (every split point, one byte at a time), LF, CRLF and CR line ends (a
 * CRLF split across pieces is one line end), comments, multi-line data,
 * ids, retry, blocks without data, fields without a colon, a partial
 * event forgotten by sse_reset, a line over the limit, and a callback
 * that stops the parse. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/sse.h"

/* The events seen, one "id|event|data" line each. */
static int collect(void *arg, const struct sse_event *ev)
{
    struct buf *log = arg;
    char line[512];
    snprintf(line, sizeof line, "%s|%s|%s\n", ev->id != NULL ? ev->id : "-",
             ev->event, ev->data);
    assert_int_equal(buf_append(log, line, strlen(line)), 0);
    return 0;
}

static const char STREAM[] =
    "retry: 1000\n\n"
    ": keepalive\n\n"
    "id: 12-0\nevent: job.created\ndata: {\"a\":1}\n\n"
    "id: 12-1\r\nevent: job.started\r\ndata: first\r\ndata: second\r\n\r\n"
    ": a comment\rid: 13-0\revent: job.completed\rdata:no-space\r\r"
    "event: leader.changed\ndata:  two spaces\n\n"
    "id: 14-0\nevent: nodata\n\n"
    "data\n\n"
    "unknown: x\ndata: last\n\n";

static const char EXPECT[] =
    "12-0|job.created|{\"a\":1}\n"
    "12-1|job.started|first\nsecond\n"
    "13-0|job.completed|no-space\n"
    "-|leader.changed| two spaces\n"
    "-|message|\n"
    "-|message|last\n";

static void parse_in_pieces(const size_t *cuts, size_t n_cuts, struct buf *log)
{
    struct sse p;
    size_t at = 0, len = strlen(STREAM);
    sse_init(&p, collect, log);
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : len;
        assert_int_equal(sse_feed(&p, STREAM + at, end - at), 0);
        at = end;
    }
    assert_int_equal(p.retry_ms, 1000);
    sse_free(&p);
}

static void test_sse_every_split(void **state)
{
    struct buf log;
    (void)state;
    buf_init(&log, 0);
    for (size_t cut = 0; cut <= strlen(STREAM); cut++) {
        buf_reset(&log);
        parse_in_pieces(&cut, 1, &log);
        assert_string_equal(buf_str(&log), EXPECT);
    }
    for (size_t a = 0; a <= strlen(STREAM); a += 7) {
        for (size_t b = a; b <= strlen(STREAM); b += 5) {
            size_t cuts[2] = {a, b};
            buf_reset(&log);
            parse_in_pieces(cuts, 2, &log);
            assert_string_equal(buf_str(&log), EXPECT);
        }
    }
    buf_free(&log);
}

static void test_sse_byte_by_byte(void **state)
{
    struct buf log;
    struct sse p;
    (void)state;
    buf_init(&log, 0);
    sse_init(&p, collect, &log);
    for (size_t i = 0; i < strlen(STREAM); i++) {
        assert_int_equal(sse_feed(&p, STREAM + i, 1), 0);
    }
    assert_string_equal(buf_str(&log), EXPECT);
    sse_free(&p);
    buf_free(&log);
}

static void test_sse_reset_forgets_a_partial_event(void **state)
{
    struct buf log;
    struct sse p;
    const char *a = "id: 1-0\nevent: job.created\ndata: half";
    const char *b = "id: 2-0\nevent: job.started\ndata: whole\n\n";
    (void)state;
    buf_init(&log, 0);
    sse_init(&p, collect, &log);
    assert_int_equal(sse_feed(&p, a, strlen(a)), 0);
    assert_string_equal(buf_str(&log), ""); /* Not dispatched: no blank. */
    sse_reset(&p);                          /* The connection dropped. */
    assert_int_equal(sse_feed(&p, b, strlen(b)), 0);
    assert_string_equal(buf_str(&log), "2-0|job.started|whole\n");
    sse_free(&p);
    buf_free(&log);
}

static int stop_at_second(void *arg, const struct sse_event *ev)
{
    int *n = arg;
    (void)ev;
    return ++*n == 2 ? 7 : 0;
}

static void test_sse_callback_stops(void **state)
{
    struct sse p;
    int n = 0;
    const char *s = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    (void)state;
    sse_init(&p, stop_at_second, &n);
    assert_int_equal(sse_feed(&p, s, strlen(s)), 7);
    assert_int_equal(n, 2);
    sse_free(&p);
}

static void test_sse_line_limit(void **state)
{
    struct sse p;
    struct buf log;
    char *big = malloc(SSE_MAX_LINE + 10);
    (void)state;
    memset(big, 'x', SSE_MAX_LINE + 10);
    memcpy(big, "data: ", 6);
    buf_init(&log, 0);
    sse_init(&p, collect, &log);
    assert_int_equal(sse_feed(&p, big, SSE_MAX_LINE + 10), -1);
    sse_free(&p);
    buf_free(&log);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_every_split),
        cmocka_unit_test(test_sse_byte_by_byte),
        cmocka_unit_test(test_sse_reset_forgets_a_partial_event),
        cmocka_unit_test(test_sse_callback_stops),
        cmocka_unit_test(test_sse_line_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
