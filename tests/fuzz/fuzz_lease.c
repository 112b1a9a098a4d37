/* Fuzz the worker's reading of the leader's answer to a lease request:
 * the body as the worker parses it (json_loads of the text), each element
 * of "leases" through worker_lease_parse as the lease loop does. An
 * accepted lease has an id of 1-16 hex digits and a job object. */

#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "worker/worker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The worker's buffer is NUL-terminated text. */
    char *text = malloc(size + 1);
    json_t *out, *v;
    size_t i;

    memcpy(text, data, size);
    text[size] = '\0';
    out = json_loads(text, 0, NULL);
    json_array_foreach(json_object_get(out, "leases"), i, v)
    {
        struct lease l;
        char err[64];
        if (worker_lease_parse(v, &l, err, sizeof err) != 0) {
            if (strlen(err) == 0) {
                FUZZ_FAIL();
            }
            continue;
        }
        size_t n = strlen(l.id);
        if (n == 0 || n > 16 || !json_is_object(l.job)) {
            FUZZ_FAIL();
        }
    }
    json_decref(out);
    free(text);
    return 0;
}
