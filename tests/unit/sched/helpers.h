#ifndef TESTS_UNIT_SCHED_HELPERS_H_
#define TESTS_UNIT_SCHED_HELPERS_H_

/* Shared by the sched unit tests: an fsm in a temp dir (tests/unit/fsm/
 * helpers.h) plus commands built the way the leader builds them, and a
 * fake struct sched_io on virtual time. The fake submit queues the encoded
 * command; fio_flush() applies each one as a one-command batch at the
 * virtual now and fires its callback (never from inside submit, as the
 * sched_io contract says). */

#include <stdbool.h>

#include "sched/internal.h"
#include "tests/unit/fsm/helpers.h"

/* 2023-11-14T22:13:00Z: a whole minute. */
#define T0 1699999980000LL

/* Apply the single command @c at @now; the result (borrowed). */
const struct fsm_result *tcmd(struct tfsm *t,
                              int64_t now,
                              const struct fsm_cmd *c);
/* Register a worker of @queues ("a,b") and @concurrency; its id. */
uint64_t treg(struct tfsm *t, int64_t now, const char *queues, unsigned conc);
/* Submit one job of @queue with @priority (ckey and limit optional: NULL);
 * its id. */
uint64_t tsubmit(struct tfsm *t,
                 int64_t now,
                 const char *queue,
                 int32_t priority,
                 const char *ckey,
                 uint32_t ckey_limit);
/* Lease @job to @worker (ASSIGN of one item): the item outcome. */
int tassign(struct tfsm *t, int64_t now, uint64_t job, uint64_t worker);
/* End the lease of running @job with success; the item outcome. */
int tcomplete(struct tfsm *t, int64_t now, uint64_t job);
/* Queue settings. */
void tqueue(struct tfsm *t,
            int64_t now,
            const char *name,
            bool paused,
            uint32_t concurrency);
/* A recurring job with @spec (JSON) whose first occurrence is @first. */
uint64_t tschedule(struct tfsm *t,
                   int64_t now,
                   const char *spec,
                   int64_t first);
/* Read job @id into *job (valid until fsm_read_end(*rd)). */
void tget(struct tfsm *t,
          uint64_t id,
          struct fsm_job *job,
          struct fsm_reader **rd);

/* ---- A fake sched_io ---------------------------------------------------- */

struct fio_cmd;

struct fio
{
    struct tfsm *t;
    int64_t now;
    uint64_t rng; /* splitmix64 state: the seed. */
    bool leader;
    struct fio_cmd *head, *tail;
    unsigned submitted, applied;
};

uint64_t fio_splitmix(uint64_t *state);
void fio_init(struct fio *io, struct tfsm *t, int64_t now, uint64_t seed);
struct sched_io fio_io(struct fio *io);
/* Apply queued commands in order (and those their callbacks queue) until
 * none is left; how many. */
unsigned fio_flush(struct fio *io);
/* Drop what is still queued (no callbacks). */
void fio_clear(struct fio *io);

#endif /* TESTS_UNIT_SCHED_HELPERS_H_ */
