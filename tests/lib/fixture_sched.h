#ifndef TESTS_LIB_FIXTURE_SCHED_H_
#define TESTS_LIB_FIXTURE_SCHED_H_

/* The real leader's services (sched/) on the cluster fixture: one struct
 * sched per fixture server, wired as rotad/main.c wires it on a real node,
 * with the fixture in place of the cluster and of the clocks:
 *
 *   submit     group commit as cluster/submit.c: commands queue on the
 *              node (ERR_NOTLEADER unless it is leader) and each step
 *              proposes them as ONE entry through the fixture's submit
 *              path (cluster_fixture_submit_encoded, sealed with the
 *              virtual time); a refused raft_apply fails them all. Never
 *              raft_apply from inside raft's callbacks (raft 0.15 crashes
 *              when an apply callback proposes).
 *   is_leader  raft_state() of that server is RAFT_LEADER
 *   fsm        that server's FSM
 *   now        CLUSTER_EPOCH_MS + the fixture's virtual time
 *   random     xorshift64* per server, seeded from the run's seed
 *
 * Time: rotad ticks every SCHED_TICK_MS; here the fixture_sched_step*
 * functions step the raft fixture and, whenever the virtual time reached
 * the next multiple of SCHED_TICK_MS, call sched_tick() on every ALIVE
 * server (a killed node runs nothing). The fixture's time moves from event
 * to event, so a tick may come late, as a uv timer of a busy loop does.
 * Stepping the raft fixture directly leaves the services asleep.
 *
 * Lifetime: create after the fixture; fixture_sched_destroy() stops every
 * sched (answering waiting polls), closes the fixture's raft (pending
 * submits fail into the services) and frees them; the caller destroys the
 * fixture after it. */

#include <stdbool.h>
#include <stdint.h>

#include "sched/sched.h"
#include "tests/lib/cluster_fixture.h"

struct fixture_sched;

struct fixture_sched_sub; /* A queued command. */

struct fixture_sched_node
{
    struct fixture_sched *fs;
    unsigned i;
    struct sched *sc;
    uint64_t rng;
    struct fixture_sched_sub *queue; /* Not proposed yet, in order. */
    unsigned n_queue, cap_queue;
    unsigned long long submits, entries; /* Commands, entries proposed. */
};

struct fixture_sched
{
    struct cluster_fixture *f;
    struct fixture_sched_node nodes[CLUSTER_MAX_N];
    raft_time next_tick;
    bool closing;
    /* Optional observer: every command the services submitted, once its
     * outcome is known (the status its submitter gets; @res NULL unless
     * status is 0), decoded (valid during the call), before the
     * submitter's callback. */
    void (*on_result)(void *data,
                      unsigned server,
                      const struct fsm_cmd *cmd,
                      int status,
                      const struct fsm_result *res);
    void *on_result_data;
    unsigned long long ticks; /* Rounds of sched_tick (all servers). */
};

/* @cfg NULL: a worker TTL of 2 s, aging 60 s, no retention. */
struct fixture_sched *fixture_sched_create(struct cluster_fixture *f,
                                           const struct sched_config *cfg,
                                           uint64_t seed);
void fixture_sched_destroy(struct fixture_sched *fs);

#define FIXTURE_SCHED(FS, I) ((FS)->nodes[I].sc)

/* sched_tick() on every alive server now. */
void fixture_sched_tick(struct fixture_sched *fs);
/* Propose every node's queued commands (fixture_sched_step does). */
void fixture_sched_flush(struct fixture_sched *fs);
/* One raft_fixture_step(), then the ticks that are due; queued commands
 * are proposed before and after. */
void fixture_sched_step(struct fixture_sched *fs);
/* Step until @stop (checked before each step) or @max_ms of virtual time
 * passed; true if @stop held (as raft_fixture_step_until). */
bool fixture_sched_step_until(struct fixture_sched *fs,
                              bool (*stop)(struct fixture_sched *fs, void *arg),
                              void *arg,
                              unsigned max_ms);
void fixture_sched_step_until_elapsed(struct fixture_sched *fs, unsigned ms);
bool fixture_sched_step_until_has_leader(struct fixture_sched *fs,
                                         unsigned max_ms);
/* Until every alive server applied @index. */
bool fixture_sched_step_until_applied(struct fixture_sched *fs,
                                      raft_index index,
                                      unsigned max_ms);

#endif /* TESTS_LIB_FIXTURE_SCHED_H_ */
