/* Scheduling policies: see policy.h. */

#include <stdbool.h>
#include <stdlib.h>

#include "sched/policy.h"

int64_t policy_backoff_ms(uint32_t attempts,
                          double initial_ms,
                          double multiplier,
                          double max_ms,
                          double jitter,
                          double u)
{
    double d = initial_ms;
    for (uint32_t i = 1; i < attempts && d < max_ms; i++) {
        d *= multiplier;
    }
    if (d > max_ms) {
        d = max_ms;
    }
    if (jitter > 0) {
        d *= 1.0 - jitter * u;
    }
    return d < 0 ? 0 : (int64_t)d;
}

int64_t policy_effective_priority(int32_t priority,
                                  int64_t age_ms,
                                  int64_t aging_ms)
{
    return (int64_t)priority +
           (age_ms > 0 && aging_ms > 0 ? age_ms / aging_ms : 0);
}

int policy_topo_order(unsigned n,
                      const unsigned *n_deps,
                      const unsigned *const *deps,
                      unsigned *order,
                      unsigned *cycle)
{
    /* Kahn's algorithm on the reversed edges, O(n * edges): a workflow has
     * at most 1000 jobs of at most 100 parents. */
    unsigned *left = calloc(n > 0 ? n : 1, sizeof *left);
    bool *placed = calloc(n > 0 ? n : 1, sizeof *placed);
    unsigned done = 0;
    int rv = 0;

    if (left == NULL || placed == NULL) {
        free(left);
        free(placed);
        return -1;
    }
    for (unsigned i = 0; i < n; i++) {
        left[i] = n_deps[i];
    }
    while (done < n) {
        unsigned before = done;
        for (unsigned i = 0; i < n; i++) {
            if (placed[i] || left[i] != 0) {
                continue;
            }
            placed[i] = true;
            order[done++] = i;
            for (unsigned c = 0; c < n; c++) {
                for (unsigned d = 0; d < n_deps[c]; d++) {
                    left[c] -= deps[c][d] == i;
                }
            }
        }
        if (done == before) {
            break;
        }
    }
    if (done < n) {
        unsigned i = 0;
        while (placed[i]) {
            i++;
        }
        *cycle = i;
        rv = -1;
    }
    free(left);
    free(placed);
    return rv;
}
