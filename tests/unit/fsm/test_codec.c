/* fsm/codec.c and fsm/batch.c: round trips, unknown fields kept, garbage
 * refused without crashing, batches padded to 8 bytes. */

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tests/unit/fsm/helpers.h"

static void test_codec_job_round_trip(void **state)
{
    uint64_t deps[2] = {0x100000, 0x200001};
    struct fsm_job j = tjob("shell"), d;
    void *buf;
    size_t len;
    (void)state;

    j.id = 0x500003;
    j.status = FSM_RUNNING;
    j.priority = -42;
    j.attempts = 2;
    j.created_at = 1700000000123;
    j.run_at = 1700000009999;
    j.timeout_ms = 1500;
    j.user_id = tstr("u1");
    j.idem_key = tstr("k");
    j.last_error = tstr("boom");
    j.result = tstr("{\"ok\":1}");
    j.deps = deps;
    j.n_deps = 2;
    assert_int_equal(fsm_job_encode(&j, &buf, &len), 0);
    assert_int_equal(fsm_job_decode(buf, len, &d), 0);
    assert_int_equal(d.id, j.id);
    assert_int_equal(d.status, FSM_RUNNING);
    assert_int_equal(d.priority, -42);
    assert_int_equal(d.attempts, 2);
    assert_int_equal(d.max_attempts, 3);
    assert_int_equal(d.created_at, j.created_at);
    assert_int_equal(d.run_at, j.run_at);
    assert_int_equal(d.timeout_ms, 1500);
    assert_memory_equal(d.type.p, "shell", 5);
    assert_memory_equal(d.user_id.p, "u1", 2);
    assert_memory_equal(d.last_error.p, "boom", 4);
    assert_int_equal(d.n_deps, 2);
    uint64_t got;
    memcpy(&got, &d.deps[1], 8);
    assert_int_equal(got, 0x200001);
    free(buf);
}

static void test_codec_unknown_fields_kept(void **state)
{
    struct fsm_job j = tjob("t"), d, d2;
    void *buf, *buf2;
    size_t len, len2;
    /* A newer node's field: tag 900, 3 bytes. */
    const unsigned char extra[] = {0x84, 0x03, 3, 0, 0, 0, 'n', 'e', 'w'};
    (void)state;

    assert_int_equal(fsm_job_encode(&j, &buf, &len), 0);
    buf = realloc(buf, len + sizeof extra);
    memcpy((char *)buf + len, extra, sizeof extra);
    len += sizeof extra;
    assert_int_equal(fsm_job_decode(buf, len, &d), 0);
    assert_int_equal(d.extra.len, sizeof extra);
    d.priority = 9; /* An update by this version... */
    assert_int_equal(fsm_job_encode(&d, &buf2, &len2), 0);
    assert_int_equal(fsm_job_decode(buf2, len2, &d2), 0);
    assert_int_equal(d2.priority, 9); /* ...keeps the newer field. */
    assert_int_equal(d2.extra.len, sizeof extra);
    assert_memory_equal(d2.extra.p, extra, sizeof extra);
    free(buf);
    free(buf2);
}

static void test_codec_garbage_is_corrupt(void **state)
{
    struct fsm_job jobs[2] = {tjob("a"), tjob("bb")};
    uint64_t hashes[2] = {1, 2};
    struct fsm_cmd c, d;
    struct fsm_job *store;
    void *buf;
    size_t len;
    (void)state;

    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_SUBMIT;
    c.n_jobs = 2;
    c.jobs = jobs;
    c.hashes = hashes;
    assert_int_equal(fsm_cmd_encode(&c, &buf, &len), 0);
    assert_int_equal(fsm_cmd_decode(buf, len, &d, &store), 0);
    assert_int_equal(d.n_jobs, 2);
    assert_memory_equal(d.jobs[1].type.p, "bb", 2);
    free(store);
    /* A truncation fails, except exactly after the last job (the hashes
     * are optional): never a command with fewer jobs than announced. */
    int whole = 0;
    for (size_t cut = 0; cut < len; cut++) {
        int rv = fsm_cmd_decode(buf, cut, &d, &store);
        if (rv == 0) {
            assert_int_equal(d.n_jobs, 2);
            assert_null(d.hashes);
            free(store);
            whole++;
            continue;
        }
        assert_int_equal(rv, ERR_CORRUPT);
        assert_null(store);
    }
    assert_int_equal(whole, 1);
    /* Flipped bytes never crash (ASan/UBSan watch). */
    unsigned char *p = buf;
    for (size_t i = 0; i < len; i++) {
        p[i] ^= 0xff;
        if (fsm_cmd_decode(buf, len, &d, &store) == 0) {
            free(store);
        }
        p[i] ^= 0xff;
    }
    /* Job records: the empty buffer and a cut inside a field are refused. */
    struct fsm_job j = tjob("shell"), out;
    void *jb;
    size_t jl;
    assert_int_equal(fsm_job_encode(&j, &jb, &jl), 0);
    assert_int_equal(fsm_job_decode(jb, 0, &out), ERR_CORRUPT);
    assert_int_equal(fsm_job_decode(jb, jl - 1, &out), ERR_CORRUPT);
    assert_int_equal(fsm_job_decode(jb, jl, &out), 0);
    free(jb);
    free(buf);
}

static void test_codec_batch_padded(void **state)
{
    static const size_t sizes[] = {1, 3, 7, 8, 9, 13, 15, 16, 17, 100, 1001};
    struct fsm_batch b;
    char cmd[2048];
    (void)state;

    memset(cmd, 'x', sizeof cmd);
    fsm_batch_init(&b);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t before = b.len == 0 ? FSM_BATCH_HEADER : b.len;
        assert_int_equal(fsm_batch_append(&b, cmd, sizes[i]), 0);
        assert_int_equal(before % 8, 0);
        assert_int_equal(b.len % 8, 0);
    }
    fsm_batch_seal(&b, 123);
    assert_int_equal(b.n, sizeof sizes / sizeof sizes[0]);
    assert_int_equal(b.len % 8, 0);
    assert_memory_equal(b.buf, "ROTA", 4);
    fsm_batch_reset(&b);
    assert_int_equal(b.n, 0);
    fsm_batch_close(&b);
}

static void test_codec_status_names(void **state)
{
    (void)state;
    assert_int_equal(fsm_status_parse("queued"), FSM_PENDING);
    assert_int_equal(fsm_status_parse("in-progress"), FSM_RUNNING);
    assert_int_equal(fsm_status_parse("cancelled"), FSM_CANCELLED);
    assert_int_equal(fsm_status_parse("nope"), 0);
    assert_string_equal(fsm_status_name(FSM_WAITING), "waiting");
    assert_null(fsm_status_name(99));
    assert_true(fsm_status_is_final(FSM_FAILED));
    assert_false(fsm_status_is_final(FSM_RUNNING));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_job_round_trip),
        cmocka_unit_test(test_codec_unknown_fields_kept),
        cmocka_unit_test(test_codec_garbage_is_corrupt),
        cmocka_unit_test(test_codec_batch_padded),
        cmocka_unit_test(test_codec_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
