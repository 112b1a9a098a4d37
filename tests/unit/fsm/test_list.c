/* fsm/list.c and the indexes: filters, status moves, pagination. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tests/unit/fsm/helpers.h"

#define T0 1700000000000LL
#define N 50

struct fixture
{
    struct tfsm t;
    uint64_t ids[N];
};

/* Job i: user "u<i%3>", queue "q<i%2>", type "t<i%5>". Every 7th cancelled. */
static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    char users[N][8], queues[N][8], types[N][8];
    struct fsm_job jobs[N];

    tfsm_open(&fx->t);
    for (int i = 0; i < N; i++) {
        snprintf(users[i], 8, "u%d", i % 3);
        snprintf(queues[i], 8, "q%d", i % 2);
        snprintf(types[i], 8, "t%d", i % 5);
        jobs[i] = tjob(types[i]);
        jobs[i].user_id = tstr(users[i]);
        jobs[i].queue = tstr(queues[i]);
    }
    for (int i = 0; i < N; i += 10) {
        const struct fsm_result *r = tfsm_submit(&fx->t, T0, jobs + i, 10);
        assert_int_equal(r->code, 0);
        memcpy(fx->ids + i, r->ids, 10 * sizeof(uint64_t));
    }
    for (int i = 0; i < N; i += 7) {
        struct fsm_cmd c;
        unsigned n;
        memset(&c, 0, sizeof c);
        c.type = FSM_CMD_CANCEL;
        c.id = fx->ids[i];
        assert_int_equal(tfsm_apply(&fx->t, T0, &c, 1, &n)->code, 0);
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    tfsm_close(&fx->t);
    free(fx);
    return 0;
}

struct collect
{
    uint64_t ids[N * 2];
    int n;
};

static int collect_cb(void *data, const struct fsm_job *job)
{
    struct collect *c = data;
    c->ids[c->n++] = job->id;
    return 0;
}

/* All pages of @q with @limit; asserts page sizes and the last cursor. */
static int all_pages(struct tfsm *t,
                     struct fsm_query q,
                     unsigned limit,
                     struct collect *out)
{
    char next[FSM_CURSOR_SIZE], cursor[FSM_CURSOR_SIZE];
    struct fsm_reader *rd;
    int pages = 0;

    out->n = 0;
    q.limit = limit;
    q.cursor = NULL;
    for (;;) {
        int before = out->n;
        assert_int_equal(fsm_read_begin(t->f, &rd), 0);
        assert_int_equal(fsm_list(rd, &q, collect_cb, out, next), 0);
        fsm_read_end(rd);
        pages++;
        assert_true(out->n - before <= (int)limit);
        if (next[0] == '\0') {
            return pages;
        }
        assert_int_equal(out->n - before,
                         (int)limit); /* Only full pages go on. */
        strcpy(cursor, next);
        q.cursor = cursor;
        assert_true(pages < 200);
    }
}

static bool is_cancelled(int i)
{
    return i % 7 == 0;
}

static void expect(struct fixture *fx,
                   struct fsm_query q,
                   int (*want)(int),
                   unsigned limit)
{
    struct collect got;
    uint64_t exp[N];
    int n = 0;
    for (int i = 0; i < N; i++) {
        if (want(i)) {
            exp[n++] = fx->ids[i];
        }
    }
    all_pages(&fx->t, q, limit, &got);
    assert_int_equal(got.n, n);
    for (int i = 0; i < n; i++) {
        int found = 0;
        for (int k = 0; k < got.n; k++) {
            found += got.ids[k] == exp[i];
        }
        assert_int_equal(found, 1); /* Exactly once. */
    }
}

static int all(int i)
{
    (void)i;
    return 1;
}
static int user1(int i)
{
    return i % 3 == 1;
}
static int user1_pending(int i)
{
    return i % 3 == 1 && !is_cancelled(i);
}
static int cancelled(int i)
{
    return is_cancelled(i);
}
static int q0_t2(int i)
{
    return i % 2 == 0 && i % 5 == 2;
}
static int t3_pending(int i)
{
    return i % 5 == 3 && !is_cancelled(i);
}

static void test_list_filters_and_pages(void **state)
{
    struct fixture *fx = *state;
    struct fsm_query q;
    static const unsigned limits[] = {1, 2, 7, 17, 50, 1000};

    for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++) {
        memset(&q, 0, sizeof q);
        expect(fx, q, all, limits[l]);
        q.user_id = tstr("u1");
        expect(fx, q, user1, limits[l]);
        q.status = FSM_PENDING;
        expect(fx, q, user1_pending, limits[l]);
        memset(&q, 0, sizeof q);
        q.status = FSM_CANCELLED;
        expect(fx, q, cancelled, limits[l]);
        memset(&q, 0, sizeof q);
        q.queue = tstr("q0");
        q.type = tstr("t2");
        expect(fx, q, q0_t2, limits[l]);
        memset(&q, 0, sizeof q);
        q.type = tstr("t3");
        q.status = FSM_PENDING;
        expect(fx, q, t3_pending, limits[l]);
    }
}

static void test_list_exactly_full_last_page(void **state)
{
    struct fixture *fx = *state;
    struct fsm_query q;
    struct collect got;
    memset(&q, 0, sizeof q);
    q.status = FSM_CANCELLED; /* 8 jobs: 0, 7, ..., 49 */
    assert_int_equal(all_pages(&fx->t, q, 8, &got), 1);
    assert_int_equal(got.n, 8);
    assert_int_equal(all_pages(&fx->t, q, 4, &got), 2);
}

static void test_list_bad_cursor(void **state)
{
    struct fixture *fx = *state;
    struct fsm_query q;
    struct fsm_reader *rd;
    struct collect got = {{0}, 0};
    char next[FSM_CURSOR_SIZE];
    static const char *const bad[] = {"zz", "j", "jxyz", "s00", "u0000"};

    memset(&q, 0, sizeof q);
    q.limit = 5;
    assert_int_equal(fsm_read_begin(fx->t.f, &rd), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        q.cursor = bad[i];
        assert_int_equal(fsm_list(rd, &q, collect_cb, &got, next), ERR_INVALID);
    }
    /* A cursor of another index. */
    q.cursor = NULL;
    q.status = FSM_PENDING;
    assert_int_equal(fsm_list(rd, &q, collect_cb, &got, next), 0);
    assert_true(next[0] == 's');
    q.status = 0;
    q.user_id = tstr("u1");
    q.cursor = next;
    assert_int_equal(fsm_list(rd, &q, collect_cb, &got, next), ERR_INVALID);
    fsm_read_end(rd);
}

/* order=desc: every query's pages, walked backwards, are exactly the
 * forward pages reversed; without a user/queue/type filter that is newest
 * (highest id) first. A cursor continues only its own direction. */
static void test_list_desc(void **state)
{
    struct fixture *fx = *state;
    struct fsm_query qs[5];
    struct collect fwd, back;
    static const unsigned limits[] = {1, 3, 8, 50, 1000};
    struct fsm_reader *rd;
    char next[FSM_CURSOR_SIZE];

    memset(qs, 0, sizeof qs);
    qs[1].status = FSM_CANCELLED;
    qs[2].queue = tstr("q1");
    qs[3].user_id = tstr("u2");
    qs[3].status = FSM_PENDING;
    qs[4].type = tstr("t4");
    for (size_t i = 0; i < 5; i++) {
        for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++) {
            struct fsm_query q = qs[i];
            all_pages(&fx->t, q, limits[l], &fwd);
            q.desc = true;
            all_pages(&fx->t, q, limits[l], &back);
            assert_true(fwd.n > 0);
            assert_int_equal(back.n, fwd.n);
            for (int k = 0; k < fwd.n; k++) {
                assert_true(back.ids[k] == fwd.ids[fwd.n - 1 - k]);
            }
        }
    }
    qs[0].desc = true;
    all_pages(&fx->t, qs[0], 7, &back);
    assert_int_equal(back.n, N);
    for (int k = 0; k < N; k++) {
        assert_true(back.ids[k] == fx->ids[N - 1 - k]);
    }
    /* A backwards cursor is refused going forwards, and the reverse. */
    qs[0].limit = 5;
    back.n = 0;
    assert_int_equal(fsm_read_begin(fx->t.f, &rd), 0);
    assert_int_equal(fsm_list(rd, &qs[0], collect_cb, &back, next), 0);
    assert_true(next[0] == 'J');
    qs[0].cursor = next;
    qs[0].desc = false;
    assert_int_equal(fsm_list(rd, &qs[0], collect_cb, &back, next),
                     ERR_INVALID);
    qs[0].cursor = "j0000000000000001";
    qs[0].desc = true;
    assert_int_equal(fsm_list(rd, &qs[0], collect_cb, &back, next),
                     ERR_INVALID);
    fsm_read_end(rd);
}

static void test_list_counts(void **state)
{
    struct fixture *fx = *state;
    struct fsm_reader *rd;
    uint64_t counts[8];
    assert_int_equal(fsm_read_begin(fx->t.f, &rd), 0);
    assert_int_equal(fsm_count_by_status(rd, counts), 0);
    fsm_read_end(rd);
    assert_int_equal(counts[FSM_CANCELLED], 8);
    assert_int_equal(counts[FSM_PENDING], N - 8);
    assert_int_equal(counts[FSM_RUNNING], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_filters_and_pages, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list_exactly_full_last_page, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list_bad_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_desc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_counts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
