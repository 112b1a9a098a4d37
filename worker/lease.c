/* The leader's answer to POST /v1/workers/{id}/lease, one lease at a time:
 *
 *   {"leases": [{"job": {"id": "000000000000002a", "type": ..., ...},
 *                "token": 17, "attempt": 1}, ...]}
 *
 * A lease that does not have this shape (no job object, an id that is not
 * 1-16 hex digits as the leader writes them, a token or attempt that is not a
 * non-negative integer) is refused with the reason: the worker logs it and
 * skips it, and the leader gives the job back when the lease expires. Nothing
 * here allocates. */

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "worker/worker.h"

static int refuse(char *err, size_t size, const char *why)
{
    snprintf(err, size, "%s", why);
    return -1;
}

int worker_lease_parse(json_t *lease, struct lease *out, char *err, size_t size)
{
    json_t *job = json_object_get(lease, "job");
    json_t *tk = json_object_get(lease, "token");
    json_t *at = json_object_get(lease, "attempt");
    const char *id = json_string_value(json_object_get(job, "id"));
    size_t len = id != NULL ? strlen(id) : 0;

    memset(out, 0, sizeof *out);
    if (!json_is_object(job)) {
        return refuse(err, size, "no job object");
    }
    if (len == 0 || len > 16 || strspn(id, "0123456789abcdefABCDEF") != len) {
        return refuse(err, size, "job id is not 1-16 hex digits");
    }
    if (!json_is_integer(tk) || json_integer_value(tk) < 0) {
        return refuse(err, size, "token is not a non-negative integer");
    }
    if (!json_is_integer(at) || json_integer_value(at) < 0 ||
        json_integer_value(at) > UINT_MAX) {
        return refuse(err, size, "attempt is not a non-negative integer");
    }
    memcpy(out->id, id, len + 1);
    out->token = (uint64_t)json_integer_value(tk);
    out->attempt = (unsigned)json_integer_value(at);
    out->job = job;
    return 0;
}
