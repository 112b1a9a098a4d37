/* common/buf.c: growth over many appends, the NUL-terminated view, the
 * limit (an append that would pass it fails and changes nothing), reset,
 * take, and buf_curl_write's return value: the bytes taken, or 0 (curl's
 * signal to abort) when the limit would be exceeded. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

static void test_buf_empty(void **state)
{
    struct buf b;
    (void)state;
    buf_init(&b, 0);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_str(&b), "");
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_non_null(b.p); /* Allocated even for 0 bytes. */
    assert_string_equal(buf_str(&b), "");
    buf_free(&b);
    assert_null(b.p);
}

static void test_buf_append_grows(void **state)
{
    struct buf b;
    char expect[10000];
    (void)state;
    buf_init(&b, 0);
    for (size_t i = 0; i < sizeof expect - 1; i++) {
        char ch = (char)('a' + i % 26);
        expect[i] = ch;
        assert_int_equal(buf_append(&b, &ch, 1), 0);
        assert_int_equal(b.len, i + 1);
        assert_true(b.cap > b.len);
        assert_int_equal(b.p[b.len], '\0');
    }
    expect[sizeof expect - 1] = '\0';
    assert_string_equal(buf_str(&b), expect);
    /* One append much larger than the capacity. */
    static char big[100000];
    memset(big, 'z', sizeof big);
    assert_int_equal(buf_append(&b, big, sizeof big), 0);
    assert_int_equal(b.len, sizeof expect - 1 + sizeof big);
    assert_memory_equal(b.p + sizeof expect - 1, big, sizeof big);
    assert_int_equal(b.p[b.len], '\0');
    buf_free(&b);
}

static void test_buf_limit(void **state)
{
    struct buf b;
    (void)state;
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, "abcde", 5), 0);
    assert_int_equal(buf_append(&b, "fghi", 4), -1); /* 9 > 8 */
    assert_int_equal(b.len, 5);
    assert_string_equal(buf_str(&b), "abcde");
    assert_int_equal(buf_append(&b, "fgh", 3), 0); /* Exactly 8. */
    assert_string_equal(buf_str(&b), "abcdefgh");
    assert_int_equal(buf_append(&b, "i", 1), -1);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(b.len, 8);
    /* Reset empties it, keeps the limit. */
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_str(&b), "");
    assert_int_equal(b.limit, 8);
    assert_int_equal(buf_append(&b, "123456789", 9), -1);
    assert_int_equal(buf_append(&b, "12345678", 8), 0);
    buf_free(&b);
    assert_int_equal(b.limit, 8);
}

static void test_buf_take(void **state)
{
    struct buf b;
    char *s;
    (void)state;
    buf_init(&b, 0);
    s = buf_take(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    assert_int_equal(buf_append(&b, "hello", 5), 0);
    s = buf_take(&b);
    assert_string_equal(s, "hello");
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    free(s);
}

static void test_buf_curl_write(void **state)
{
    struct buf b;
    char data[] = "0123456789";
    (void)state;
    buf_init(&b, 12);
    assert_int_equal(buf_curl_write(data, 1, 10, &b), 10);
    assert_string_equal(buf_str(&b), "0123456789");
    /* size * nmemb counts, not nmemb alone. */
    assert_int_equal(buf_curl_write(data, 2, 1, &b), 2);
    assert_string_equal(buf_str(&b), "012345678901");
    /* Over the limit: 0, so curl aborts (CURLE_WRITE_ERROR); nothing
     * appended. */
    assert_int_equal(buf_curl_write(data, 1, 1, &b), 0);
    assert_int_equal(b.len, 12);
    assert_string_equal(buf_str(&b), "012345678901");
    buf_free(&b);

    buf_init(&b, 4);
    assert_int_equal(buf_curl_write(data, 1, 10, &b), 0);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_empty),
        cmocka_unit_test(test_buf_append_grows),
        cmocka_unit_test(test_buf_limit),
        cmocka_unit_test(test_buf_take),
        cmocka_unit_test(test_buf_curl_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
