/* noop (succeeds at once) and sleep (payload.ms) for tests and benchmarks. */

#include <time.h>

#include "worker/worker.h"

void exec_noop(struct run *r, struct outcome *out)
{
    (void)r;
    out->ok = true;
}

void exec_sleep(struct run *r, struct outcome *out)
{
    json_t *ms = json_object_get(json_object_get(r->job, "payload"), "ms");
    long long left;
    if (!json_is_integer(ms) || json_integer_value(ms) < 0) {
        out->retryable = false;
        snprintf(out->error, sizeof out->error,
                 "sleep: payload.ms must be a non-negative integer");
        return;
    }
    left = json_integer_value(ms);
    while (left > 0 && !r->cancel && !r->lost) {
        long long step = left < 10 ? left : 10;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        left -= step;
    }
    if (r->cancel || r->lost) {
        snprintf(out->error, sizeof out->error, "stopped");
        return;
    }
    out->ok = true;
}
