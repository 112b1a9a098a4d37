/* fsm/apply_acl.c: ACL tokens keyed by the hash of their secret, the
 * once-per-cluster bootstrap, deletion by id, the codec of TOKEN_* and a
 * token surviving snapshot + restore. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tests/unit/fsm/helpers.h"

#define T0 1700000000000LL

/* A 64-hex-digit hash made of digit @c. */
static struct fsm_str hash_of(char *buf, char c)
{
    memset(buf, c, 64);
    buf[64] = '\0';
    return tstr(buf);
}

static struct fsm_cmd token_cmd(uint8_t type,
                                struct fsm_str hash,
                                const char *name,
                                const char *role)
{
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = type;
    c.token.hash = hash;
    c.token.name = tstr(name);
    c.token.role = tstr(role);
    return c;
}

static const struct fsm_result *apply1(struct tfsm *t, struct fsm_cmd *c)
{
    unsigned n;
    return tfsm_apply(t, T0, c, 1, &n);
}

/* The token of @hash, copied out of the read transaction (its strings
 * are not needed after). */
static int get_token(struct tfsm *t,
                     struct fsm_str hash,
                     struct fsm_token *out,
                     char *role,
                     char *queues)
{
    struct fsm_reader *rd;
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    int rv = fsm_get_token(rd, hash, out);
    if (rv == 0) {
        snprintf(role, 16, "%.*s", (int)out->role.len, out->role.p);
        snprintf(queues, 64, "%.*s", (int)out->queues.len, out->queues.p);
        assert_int_equal(out->hash.len, 0);
    }
    fsm_read_end(rd);
    return rv;
}

static void test_acl_codec_round_trip(void **state)
{
    char h[65];
    struct fsm_cmd c = token_cmd(FSM_CMD_TOKEN_SET, hash_of(h, 'a'), "ci",
                                 "submit"),
                   d;
    struct fsm_job *jobs;
    void *buf;
    size_t len;
    (void)state;

    c.token.queues = tstr("q1,q2");
    c.token.types = tstr("shell");
    c.token.expires_at = T0 + 5000;
    c.token.rate_milli = 2500;
    c.token.burst = 7;
    assert_int_equal(fsm_cmd_encode(&c, &buf, &len), 0);
    assert_int_equal(fsm_cmd_decode(buf, len, &d, &jobs), 0);
    assert_int_equal(d.type, FSM_CMD_TOKEN_SET);
    assert_int_equal(d.token.hash.len, 64);
    assert_memory_equal(d.token.hash.p, h, 64);
    assert_int_equal(d.token.role.len, 6);
    assert_memory_equal(d.token.queues.p, "q1,q2", 5);
    assert_memory_equal(d.token.types.p, "shell", 5);
    assert_int_equal(d.token.expires_at, T0 + 5000);
    assert_int_equal(d.token.rate_milli, 2500);
    assert_int_equal(d.token.burst, 7);
    fsm_cmd_free(&d, jobs);
    free(buf);

    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_TOKEN_DEL;
    c.id = 0x1234500001ULL;
    assert_int_equal(fsm_cmd_encode(&c, &buf, &len), 0);
    assert_int_equal(fsm_cmd_decode(buf, len, &d, &jobs), 0);
    assert_int_equal(d.type, FSM_CMD_TOKEN_DEL);
    assert_int_equal(d.id, c.id);
    fsm_cmd_free(&d, jobs);
    free(buf);
}

static void test_acl_set_get_delete(void **state)
{
    struct tfsm *t = *state;
    char h[65], role[16], queues[64];
    struct fsm_token tok;
    struct fsm_cmd c =
        token_cmd(FSM_CMD_TOKEN_SET, hash_of(h, 'b'), "ci", "submit");
    const struct fsm_result *r;

    c.token.queues = tstr("q1");
    r = apply1(t, &c);
    assert_int_equal(r->code, 0);
    assert_int_equal(r->n_ids, 1);
    uint64_t id = r->ids[0];
    assert_int_equal(id >> FSM_ID_SHIFT, t->index);
    assert_int_equal(get_token(t, tstr(h), &tok, role, queues), 0);
    assert_int_equal(tok.id, id);
    assert_string_equal(role, "submit");
    assert_string_equal(queues, "q1");
    assert_int_equal(tok.created_at, T0);

    /* The same hash again: conflict. */
    assert_int_equal(apply1(t, &c)->code, ERR_CONFLICT);

    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_TOKEN_DEL;
    c.id = id;
    assert_int_equal(apply1(t, &c)->code, 0);
    assert_int_equal(get_token(t, tstr(h), &tok, role, queues), ERR_NOTFOUND);
    assert_int_equal(apply1(t, &c)->code, ERR_NOTFOUND);
}

static void test_acl_set_validation(void **state)
{
    struct tfsm *t = *state;
    char h[65];
    struct fsm_cmd c =
        token_cmd(FSM_CMD_TOKEN_SET, hash_of(h, 'c'), "x", "root");
    const struct fsm_result *r = apply1(t, &c);

    assert_int_equal(r->code, ERR_INVALID);
    assert_string_equal(r->field, "role");
    c.token.role = tstr("read");
    c.token.hash = tstr("secret-in-clear");
    r = apply1(t, &c);
    assert_int_equal(r->code, ERR_INVALID);
    assert_string_equal(r->field, "hash");
    c.token.hash = hash_of(h, 'C'); /* Upper case: not our encoding. */
    assert_int_equal(apply1(t, &c)->code, ERR_INVALID);
    c.token.hash = hash_of(h, 'c');
    c.token.name = tstr("");
    assert_int_equal(apply1(t, &c)->code, ERR_INVALID);
    /* Rate and burst: bounded; a burst only with a rate. */
    c.token.name = tstr("x");
    c.token.rate_milli = (uint64_t)FSM_TOKEN_MAX_RATE * 1000 + 1;
    c.token.burst = 1;
    r = apply1(t, &c);
    assert_int_equal(r->code, ERR_INVALID);
    assert_string_equal(r->field, "rate");
    c.token.rate_milli = 5000;
    c.token.burst = 0;
    r = apply1(t, &c);
    assert_int_equal(r->code, ERR_INVALID);
    assert_string_equal(r->field, "burst");
    c.token.rate_milli = 0;
    c.token.burst = 5;
    assert_int_equal(apply1(t, &c)->code, ERR_INVALID);
    c.token.rate_milli = 5000;
    c.token.burst = FSM_TOKEN_MAX_BURST + 1;
    assert_int_equal(apply1(t, &c)->code, ERR_INVALID);
    c.token.burst = 5;
    assert_int_equal(apply1(t, &c)->code, 0);
}

static void test_acl_bootstrap_once(void **state)
{
    struct tfsm *t = *state;
    char h1[65], h2[65], role[16], queues[64];
    struct fsm_token tok;
    struct fsm_reader *rd;
    struct fsm_cmd c = token_cmd(FSM_CMD_ACL_BOOTSTRAP, hash_of(h1, '1'), "",
                                 "read"); /* Role forced to admin. */
    const struct fsm_result *r = apply1(t, &c);

    assert_int_equal(r->code, 0);
    uint64_t id = r->ids[0];
    assert_int_equal(get_token(t, tstr(h1), &tok, role, queues), 0);
    assert_string_equal(role, "admin");
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    assert_true(fsm_acl_bootstrapped(rd));
    assert_int_equal(fsm_get_token(rd, tstr(h1), &tok), 0);
    assert_memory_equal(tok.name.p, "bootstrap", 9);
    fsm_read_end(rd);

    c.token.hash = hash_of(h2, '2');
    assert_int_equal(apply1(t, &c)->code, ERR_CONFLICT);
    /* Deleting every token does not re-open bootstrap. */
    struct fsm_cmd del;
    memset(&del, 0, sizeof del);
    del.type = FSM_CMD_TOKEN_DEL;
    del.id = id;
    assert_int_equal(apply1(t, &del)->code, 0);
    assert_int_equal(apply1(t, &c)->code, ERR_CONFLICT);
    assert_int_equal(get_token(t, tstr(h2), &tok, role, queues), ERR_NOTFOUND);
}

static void count_cb(void *data, const struct fsm_token *t)
{
    (void)t;
    (*(int *)data)++;
}

static void test_acl_token_survives_snapshot(void **state)
{
    struct tfsm a, b;
    char h[65], role[16], queues[64];
    struct fsm_token tok;
    struct fsm_reader *rd;
    void *buf;
    size_t len;
    int n = 0;
    (void)state;

    tfsm_open(&a);
    tfsm_open(&b);
    struct fsm_cmd c =
        token_cmd(FSM_CMD_ACL_BOOTSTRAP, hash_of(h, 'd'), "", "admin");
    assert_int_equal(apply1(&a, &c)->code, 0);
    c = token_cmd(FSM_CMD_TOKEN_SET, hash_of(h, 'e'), "ops", "read");
    c.token.queues = tstr("q9");
    assert_int_equal(apply1(&a, &c)->code, 0);
    buf = tfsm_snapshot(&a, 0, 0, &len, NULL);
    assert_int_equal(fsm_restore(b.f, buf, len), 0);
    assert_int_equal(tfsm_digest(&a), tfsm_digest(&b));
    assert_int_equal(get_token(&b, tstr(h), &tok, role, queues), 0);
    assert_string_equal(role, "read");
    assert_string_equal(queues, "q9");
    assert_int_equal(fsm_read_begin(b.f, &rd), 0);
    assert_true(fsm_acl_bootstrapped(rd));
    fsm_tokens(rd, count_cb, &n);
    fsm_read_end(rd);
    assert_int_equal(n, 2);
    /* The restored replica refuses a second bootstrap too. */
    b.index = a.index;
    c = token_cmd(FSM_CMD_ACL_BOOTSTRAP, hash_of(h, 'f'), "", "admin");
    assert_int_equal(apply1(&b, &c)->code, ERR_CONFLICT);
    free(buf);
    tfsm_close(&a);
    tfsm_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acl_codec_round_trip),
        cmocka_unit_test_setup_teardown(test_acl_set_get_delete, tfsm_setup,
                                        tfsm_teardown),
        cmocka_unit_test_setup_teardown(test_acl_set_validation, tfsm_setup,
                                        tfsm_teardown),
        cmocka_unit_test_setup_teardown(test_acl_bootstrap_once, tfsm_setup,
                                        tfsm_teardown),
        cmocka_unit_test(test_acl_token_survives_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
