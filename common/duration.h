#ifndef COMMON_DURATION_H_
#define COMMON_DURATION_H_

/* The one duration grammar of jobs and tools: a sum of <decimal><unit>,
 * unit ms, s, m, h or d ("250ms", "1.5s", "1h30m"). A decimal is digits
 * with an optional fraction: no sign, no exponent, no "nan"/"inf", no hex,
 * no spaces. The total must be at most @max_ms. */

#include <stdint.h>

/* 0 and *ms, or -1. */
int duration_parse_ms(const char *s, int64_t max_ms, int64_t *ms);

#endif /* COMMON_DURATION_H_ */
