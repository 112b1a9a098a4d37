#ifndef COMMON_CLOCK_H_
#define COMMON_CLOCK_H_

/* The one wall clock of the servers: ms since the Unix epoch
 * (CLOCK_REALTIME). The leader stamps commands with it (apply never reads
 * a clock); the leader's services get it through sched_io so that tests
 * can replace it. */

#include <stdint.h>

int64_t clock_now_ms(void);

/* CLOCK_MONOTONIC in ns: durations. */
uint64_t clock_mono_ns(void);

#endif /* COMMON_CLOCK_H_ */
