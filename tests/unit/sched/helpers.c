#include "tests/unit/sched/helpers.h"

#include <stdlib.h>
#include <string.h>

const struct fsm_result *tcmd(struct tfsm *t,
                              int64_t now,
                              const struct fsm_cmd *c)
{
    unsigned n;
    const struct fsm_result *r = tfsm_apply(t, now, c, 1, &n);
    assert_int_equal(n, 1);
    return r;
}

uint64_t treg(struct tfsm *t, int64_t now, const char *queues, unsigned conc)
{
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_WORKER_REG;
    c.worker.name = tstr("w");
    c.worker.queues = tstr(queues);
    c.worker.concurrency = conc;
    const struct fsm_result *r = tcmd(t, now, &c);
    assert_int_equal(r->code, 0);
    return r->ids[0];
}

uint64_t tsubmit(struct tfsm *t,
                 int64_t now,
                 const char *queue,
                 int32_t priority,
                 const char *ckey,
                 uint32_t ckey_limit)
{
    struct fsm_job j = tjob("work");
    j.queue = tstr(queue);
    j.priority = priority;
    j.ckey = tstr(ckey);
    j.ckey_limit = ckey_limit;
    const struct fsm_result *r = tfsm_submit(t, now, &j, 1);
    assert_int_equal(r->code, 0);
    return r->ids[0];
}

static int item1(struct tfsm *t,
                 int64_t now,
                 uint8_t type,
                 const struct fsm_item *it)
{
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = type;
    c.items = it;
    c.n_items = 1;
    const struct fsm_result *r = tcmd(t, now, &c);
    assert_int_equal(r->code, 0);
    assert_int_equal(r->n_ids, 1);
    return r->existed[0];
}

int tassign(struct tfsm *t, int64_t now, uint64_t job, uint64_t worker)
{
    struct fsm_item it;
    memset(&it, 0, sizeof it);
    it.job_id = job;
    it.worker_id = worker;
    return item1(t, now, FSM_CMD_ASSIGN, &it);
}

int tcomplete(struct tfsm *t, int64_t now, uint64_t job)
{
    struct fsm_reader *rd;
    struct fsm_job j;
    struct fsm_item it;
    tget(t, job, &j, &rd);
    memset(&it, 0, sizeof it);
    it.job_id = job;
    it.token = j.lease_token;
    it.ok = 1;
    fsm_read_end(rd);
    return item1(t, now, FSM_CMD_COMPLETE, &it);
}

void tqueue(struct tfsm *t,
            int64_t now,
            const char *name,
            bool paused,
            uint32_t concurrency)
{
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_QUEUE_SET;
    c.queue.name = tstr(name);
    c.queue.paused = paused;
    c.queue.concurrency = concurrency;
    assert_int_equal(tcmd(t, now, &c)->code, 0);
}

uint64_t tschedule(struct tfsm *t, int64_t now, const char *spec, int64_t first)
{
    struct fsm_job j = tjob("report");
    j.flags = FSM_JOB_RECURRING;
    j.run_at = first;
    j.spec = tstr(spec);
    const struct fsm_result *r = tfsm_submit(t, now, &j, 1);
    assert_int_equal(r->code, 0);
    assert_int_equal(tfsm_status(t, r->ids[0]), FSM_SCHEDULED);
    return r->ids[0];
}

void tget(struct tfsm *t,
          uint64_t id,
          struct fsm_job *job,
          struct fsm_reader **rd)
{
    assert_int_equal(fsm_read_begin(t->f, rd), 0);
    assert_int_equal(fsm_get_job(*rd, id, job), 0);
}

/* ---- The fake sched_io ----------------------------------------------------
 */

struct fio_cmd
{
    struct fio_cmd *next;
    void *buf;
    size_t len;
    sched_submit_cb cb;
    void *cb_data;
};

uint64_t fio_splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int fio_submit(void *data,
                      const void *cmd,
                      size_t len,
                      sched_submit_cb cb,
                      void *cb_data)
{
    struct fio *io = data;
    struct fio_cmd *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->buf = malloc(len);
    assert_non_null(c->buf);
    memcpy(c->buf, cmd, len);
    c->len = len;
    c->cb = cb;
    c->cb_data = cb_data;
    if (io->tail != NULL) {
        io->tail->next = c;
    } else {
        io->head = c;
    }
    io->tail = c;
    io->submitted++;
    return 0;
}

static bool fio_is_leader(void *data)
{
    return ((struct fio *)data)->leader;
}

static struct fsm *fio_fsm(void *data)
{
    return ((struct fio *)data)->t->f;
}

static int64_t fio_now(void *data)
{
    return ((struct fio *)data)->now;
}

static uint64_t fio_random(void *data)
{
    return fio_splitmix(&((struct fio *)data)->rng);
}

void fio_init(struct fio *io, struct tfsm *t, int64_t now, uint64_t seed)
{
    memset(io, 0, sizeof *io);
    io->t = t;
    io->now = now;
    io->rng = seed;
    io->leader = true;
}

struct sched_io fio_io(struct fio *io)
{
    struct sched_io s;
    memset(&s, 0, sizeof s);
    s.data = io;
    s.submit = fio_submit;
    s.is_leader = fio_is_leader;
    s.fsm = fio_fsm;
    s.now = fio_now;
    s.random = fio_random;
    return s;
}

unsigned fio_flush(struct fio *io)
{
    unsigned n = 0;
    while (io->head != NULL) {
        struct fio_cmd *c = io->head;
        struct fsm_batch b;
        const struct fsm_result *res;
        unsigned got;

        io->head = c->next;
        if (io->head == NULL) {
            io->tail = NULL;
        }
        fsm_batch_init(&b);
        assert_int_equal(fsm_batch_append(&b, c->buf, c->len), 0);
        fsm_batch_seal(&b, io->now);
        io->t->index++;
        assert_int_equal(
            fsm_apply(io->t->f, io->t->index, b.buf, b.len, &res, &got), 0);
        assert_int_equal(got, 1);
        fsm_batch_close(&b);
        io->applied++;
        n++;
        c->cb(c->cb_data, 0, &res[0]); /* May submit more. */
        free(c->buf);
        free(c);
    }
    return n;
}

void fio_clear(struct fio *io)
{
    while (io->head != NULL) {
        struct fio_cmd *c = io->head;
        io->head = c->next;
        free(c->buf);
        free(c);
    }
    io->tail = NULL;
}
