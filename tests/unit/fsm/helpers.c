#include "tests/unit/fsm/helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tfsm_open(struct tfsm *t)
{
    struct fsm_options o;
    memset(t, 0, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/rota-unit-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    memset(&o, 0, sizeof o);
    o.dir = t->dir;
    o.map_size = 64 << 20;
    o.fresh = true;
    assert_int_equal(fsm_open(&o, &t->f), 0);
}

void tfsm_close(struct tfsm *t)
{
    char cmd[128];
    fsm_close(t->f);
    snprintf(cmd, sizeof cmd, "rm -rf %s", t->dir);
    assert_int_equal(system(cmd), 0);
}

struct fsm_str tstr(const char *s)
{
    struct fsm_str r = {s, s != NULL ? (uint32_t)strlen(s) : 0};
    return r;
}

struct fsm_job tjob(const char *type)
{
    struct fsm_job j;
    memset(&j, 0, sizeof j);
    j.type = tstr(type);
    j.queue = tstr("default");
    j.spec = tstr("{\"payload\":{}}");
    j.max_attempts = 3;
    return j;
}

const struct fsm_result *tfsm_apply(struct tfsm *t,
                                    int64_t now,
                                    const struct fsm_cmd *cmds,
                                    unsigned n,
                                    unsigned *n_out)
{
    struct fsm_batch b;
    const struct fsm_result *res;

    fsm_batch_init(&b);
    for (unsigned i = 0; i < n; i++) {
        void *buf;
        size_t len;
        assert_int_equal(fsm_cmd_encode(&cmds[i], &buf, &len), 0);
        assert_int_equal(fsm_batch_append(&b, buf, len), 0);
        free(buf);
    }
    fsm_batch_seal(&b, now);
    assert_int_equal(b.len % 8, 0);
    t->index++;
    assert_int_equal(fsm_apply(t->f, t->index, b.buf, b.len, &res, n_out), 0);
    fsm_batch_close(&b);
    return res;
}

const struct fsm_result *tfsm_submit(struct tfsm *t,
                                     int64_t now,
                                     const struct fsm_job *jobs,
                                     unsigned n)
{
    struct fsm_cmd c;
    unsigned got;
    const struct fsm_result *r;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_SUBMIT;
    c.n_jobs = n;
    c.jobs = jobs;
    r = tfsm_apply(t, now, &c, 1, &got);
    assert_int_equal(got, 1);
    return r;
}

int tfsm_status(struct tfsm *t, uint64_t id)
{
    struct fsm_reader *rd;
    struct fsm_job j;
    int st = 0;
    assert_int_equal(fsm_read_begin(t->f, &rd), 0);
    if (fsm_get_job(rd, id, &j) == 0) {
        st = j.status;
    }
    fsm_read_end(rd);
    return st;
}

uint64_t tfsm_digest(struct tfsm *t)
{
    uint64_t d;
    assert_int_equal(fsm_digest(t->f, &d), 0);
    return d;
}

void *tfsm_snapshot(struct tfsm *t,
                    size_t block,
                    size_t chunk,
                    size_t *len,
                    unsigned *n_chunks)
{
    struct fsm_snapshot *s;
    struct fsm_snapshot_chunks ch;
    unsigned char *buf;
    size_t off = 0;

    assert_int_equal(fsm_snapshot_begin(t->f, &s), 0);
    if (block != 0) {
        fsm_snapshot_set_sizes(s, block, chunk);
    }
    assert_int_equal(fsm_snapshot_write(s, &ch), 0);
    fsm_snapshot_end(s);
    assert_true(ch.n >= 1);
    *len = 0;
    for (unsigned i = 0; i < ch.n; i++) {
        assert_true(ch.v[i].len > 0);
        *len += ch.v[i].len;
    }
    buf = malloc(*len);
    assert_non_null(buf);
    for (unsigned i = 0; i < ch.n; i++) {
        memcpy(buf + off, ch.v[i].base, ch.v[i].len);
        off += ch.v[i].len;
    }
    if (n_chunks != NULL) {
        *n_chunks = ch.n;
    }
    fsm_snapshot_chunks_free(&ch);
    assert_int_equal(ch.n, 0);
    return buf;
}

int tfsm_setup(void **state)
{
    struct tfsm *t = malloc(sizeof *t);
    tfsm_open(t);
    *state = t;
    return 0;
}

int tfsm_teardown(void **state)
{
    tfsm_close(*state);
    free(*state);
    return 0;
}
