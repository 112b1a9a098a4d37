/* common/creds.c: where a client's CA file and token come from (options
 * first, then ROTA_CA_FILE, ROTA_TOKEN, ROTA_TOKEN_FILE), white space
 * around a token file's secret, and the refusals (unreadable files, empty
 * or spaced tokens). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/creds.h"

static char dir[] = "/tmp/rota-creds-XXXXXX";

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    write_file("ca.crt", "-----BEGIN CERTIFICATE-----\n");
    write_file("token", "  s3cret-token\n\n");
    write_file("empty", " \n");
    write_file("spaced", "two words\n");
    unsetenv("ROTA_CA_FILE");
    unsetenv("ROTA_TOKEN");
    unsetenv("ROTA_TOKEN_FILE");
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *path(const char *name)
{
    static char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static void test_creds_none(void **state)
{
    struct creds c;
    char err[128];
    (void)state;
    assert_int_equal(creds_load(&c, NULL, NULL, err, sizeof err), 0);
    assert_string_equal(c.ca_file, "");
    assert_string_equal(c.auth, "");
}

static void test_creds_options_and_file(void **state)
{
    struct creds c;
    char err[128];
    char ca[256];
    (void)state;
    snprintf(ca, sizeof ca, "%s", path("ca.crt"));
    assert_int_equal(creds_load(&c, ca, path("token"), err, sizeof err), 0);
    assert_string_equal(c.ca_file, ca);
    assert_string_equal(c.auth, "Authorization: Bearer s3cret-token");
}

static void test_creds_environment(void **state)
{
    struct creds c;
    char err[128];
    (void)state;
    setenv("ROTA_CA_FILE", path("ca.crt"), 1);
    setenv("ROTA_TOKEN_FILE", path("token"), 1);
    assert_int_equal(creds_load(&c, NULL, NULL, err, sizeof err), 0);
    assert_string_equal(c.auth, "Authorization: Bearer s3cret-token");
    assert_string_equal(c.ca_file, path("ca.crt"));
    /* ROTA_TOKEN (the secret itself) comes before ROTA_TOKEN_FILE. */
    setenv("ROTA_TOKEN", "direct", 1);
    assert_int_equal(creds_load(&c, NULL, NULL, err, sizeof err), 0);
    assert_string_equal(c.auth, "Authorization: Bearer direct");
    /* An option comes before both. */
    assert_int_equal(creds_load(&c, NULL, path("token"), err, sizeof err), 0);
    assert_string_equal(c.auth, "Authorization: Bearer s3cret-token");
    unsetenv("ROTA_CA_FILE");
    unsetenv("ROTA_TOKEN");
    unsetenv("ROTA_TOKEN_FILE");
}

static void test_creds_refused(void **state)
{
    struct creds c;
    char err[128];
    (void)state;
    assert_int_equal(creds_load(&c, path("nope"), NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "CA file"));
    assert_int_equal(creds_load(&c, NULL, path("nope"), err, sizeof err), -1);
    assert_non_null(strstr(err, "token file"));
    assert_int_equal(creds_load(&c, NULL, path("empty"), err, sizeof err), -1);
    assert_int_equal(creds_load(&c, NULL, path("spaced"), err, sizeof err), -1);
    assert_non_null(strstr(err, "bad characters"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_creds_none),
        cmocka_unit_test(test_creds_options_and_file),
        cmocka_unit_test(test_creds_environment),
        cmocka_unit_test(test_creds_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
