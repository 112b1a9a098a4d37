#ifndef TESTS_UNIT_FSM_HELPERS_H_
#define TESTS_UNIT_FSM_HELPERS_H_

/* Shared by the fsm unit tests: a temporary fsm, and entries built from
 * commands the way the leader builds them. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "fsm/fsm.h"

struct tfsm
{
    char dir[64];
    struct fsm *f;
    uint64_t index; /* Last index applied through tfsm_apply. */
};

void tfsm_open(struct tfsm *t);
/* cmocka setup/teardown: a fresh tfsm in *state. */
int tfsm_setup(void **state);
int tfsm_teardown(void **state);
void tfsm_close(struct tfsm *t);

/* A job with @type, queue "default", max_attempts 3. */
struct fsm_job tjob(const char *type);
struct fsm_str tstr(const char *s);

/* Build an entry from @n commands, apply it at the next index with time
 * @now. Returns the results (borrowed) and their count in *n_out. */
const struct fsm_result *tfsm_apply(struct tfsm *t,
                                    int64_t now,
                                    const struct fsm_cmd *cmds,
                                    unsigned n,
                                    unsigned *n_out);
/* One SUBMIT of @n jobs with hashes 0; returns the single result. */
const struct fsm_result *tfsm_submit(struct tfsm *t,
                                     int64_t now,
                                     const struct fsm_job *jobs,
                                     unsigned n);
/* Status of job @id, or 0 if absent. */
int tfsm_status(struct tfsm *t, uint64_t id);
uint64_t tfsm_digest(struct tfsm *t);
/* A snapshot of @t, its chunks concatenated into one malloc'ed buffer
 * (*len bytes, from *n_chunks chunks if not NULL). @block 0: the default
 * sizes, else fsm_snapshot_set_sizes(@block, @chunk). */
void *tfsm_snapshot(struct tfsm *t,
                    size_t block,
                    size_t chunk,
                    size_t *len,
                    unsigned *n_chunks);

#endif /* TESTS_UNIT_FSM_HELPERS_H_ */
