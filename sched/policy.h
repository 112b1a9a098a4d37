#ifndef SCHED_POLICY_H_
#define SCHED_POLICY_H_

/* Pure scheduling policies of the leader, kept apart so that they are unit
 * tested (tests/unit/sched/test_policy.c): retry backoff, priority aging,
 * and the parents-first order of a workflow. */

#include <stdint.h>

/* Delay before the attempt after @attempts failed ones (>= 1):
 * min(initial * multiplier^(attempts-1), max), then multiplied by
 * (1 - jitter * u) with u in [0, 1) drawn by the caller (the leader). */
int64_t policy_backoff_ms(uint32_t attempts,
                          double initial_ms,
                          double multiplier,
                          double max_ms,
                          double jitter,
                          double u);

/* A pending job's effective priority after waiting @age_ms: one level per
 * @aging_ms (0 = no aging). */
int64_t policy_effective_priority(int32_t priority,
                                  int64_t age_ms,
                                  int64_t aging_ms);

/* Order the @n jobs of a workflow parents first. @deps[i] lists the
 * indexes of job i's parents (@n_deps[i] of them). Writes the order into
 * @order and returns 0, or returns -1 with *@cycle set to a job on a
 * dependency cycle (or depending on itself). */
int policy_topo_order(unsigned n,
                      const unsigned *n_deps,
                      const unsigned *const *deps,
                      unsigned *order,
                      unsigned *cycle);

#endif /* SCHED_POLICY_H_ */
