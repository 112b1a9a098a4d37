/* fsm_options.keep (fsm/state_mark.c): the environment is kept after a
 * clean close or on the same kernel boot, removed otherwise; the marker
 * says "boot ID" while it is open and "clean" after fsm_close. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/fsm/helpers.h"

#define T0 1700000000000LL

static char boot[64];

static void read_file(const char *dir, const char *name, char *out, size_t n)
{
    char path[256];
    FILE *f;
    size_t got;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "r");
    assert_non_null(f);
    got = fread(out, 1, n - 1, f);
    fclose(f);
    out[got] = '\0';
}

static void write_marker(const char *dir, const char *text)
{
    char path[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, FSM_STATE_MARK);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Close @t->f and open @t->dir again with keep (and @fresh); returns
 * whether the environment was kept. With @marker, the marker file is
 * replaced by it in between (as a crash or a reboot leaves it). */
static bool reopen(struct tfsm *t,
                   bool fresh,
                   const char *marker,
                   const char **why)
{
    struct fsm_options o;
    memset(&o, 0, sizeof o);
    o.dir = t->dir;
    o.map_size = 64 << 20;
    o.keep = true;
    o.fresh = fresh;
    fsm_close(t->f);
    t->f = NULL;
    if (marker != NULL) {
        write_marker(t->dir, marker);
    }
    assert_int_equal(fsm_open(&o, &t->f), 0);
    return fsm_state_kept(t->f, why);
}

static void submit_one(struct tfsm *t)
{
    struct fsm_job j = tjob("http");
    assert_int_equal(tfsm_submit(t, T0, &j, 1)->code, 0);
}

static int setup(void **state)
{
    read_file("/proc/sys/kernel/random", "boot_id", boot, sizeof boot);
    boot[strcspn(boot, "\n")] = '\0';
    tfsm_setup(state);
    submit_one(*state);
    return 0;
}

static void assert_marker(struct tfsm *t, const char *state)
{
    char got[128], want[128];
    read_file(t->dir, FSM_STATE_MARK, got, sizeof got);
    snprintf(want, sizeof want, "%s\nlayout 1\n", state);
    assert_string_equal(got, want);
}

static void test_kept_after_clean_close(void **state)
{
    struct tfsm *t = *state;
    const char *why;
    char running[80];
    uint64_t digest, applied;

    /* The helper opened it without keep: no marker, so removed. */
    assert_false(reopen(t, false, NULL, &why));
    assert_string_equal(why, "no-marker");
    assert_int_equal(fsm_applied_index(t->f), 0);
    submit_one(t);
    digest = tfsm_digest(t);
    applied = fsm_applied_index(t->f);
    snprintf(running, sizeof running, "boot %s", boot);
    assert_marker(t, running); /* Written before the first write. */

    assert_true(reopen(t, false, NULL, &why)); /* fsm_close: "clean". */
    assert_string_equal(why, "clean");
    assert_int_equal(fsm_applied_index(t->f), applied);
    assert_int_equal(tfsm_digest(t), digest);
    assert_marker(t, running);

    /* @fresh wins over a clean marker. */
    assert_false(reopen(t, true, NULL, &why));
    assert_string_equal(why, "fresh");
    assert_int_equal(fsm_applied_index(t->f), 0);
}

static void test_kept_on_same_boot_only(void **state)
{
    struct tfsm *t = *state;
    const char *why;
    char crashed[128];
    uint64_t applied;
    static const struct
    {
        const char *text, *why;
    } bad[] = {
        {"boot 00000000-0000-0000-0000-000000000000\nlayout 1\n", "other-boot"},
        {"clean\nlayout 2\n", "layout-changed"},
        {"clean", "marker-unknown"},
        {"dirty\nlayout 1\n", "marker-unknown"},
    };

    reopen(t, false, NULL, &why);
    submit_one(t);
    applied = fsm_applied_index(t->f);
    snprintf(crashed, sizeof crashed, "boot %s\nlayout 1\n", boot);
    assert_true(reopen(t, false, crashed, &why));
    assert_string_equal(why, "same-boot");
    assert_int_equal(fsm_applied_index(t->f), applied);

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        submit_one(t);
        assert_false(reopen(t, false, bad[i].text, &why));
        assert_string_equal(why, bad[i].why);
        assert_int_equal(fsm_applied_index(t->f), 0); /* Removed. */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kept_after_clean_close, setup,
                                        tfsm_teardown),
        cmocka_unit_test_setup_teardown(test_kept_on_same_boot_only, setup,
                                        tfsm_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
