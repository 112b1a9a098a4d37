/* Fuzz the cron parser: "EXPR" or "EXPR\nTIMEZONE" through cron_parse and,
 * when it parses, cron_next from a few instants. A next occurrence must be
 * strictly after the instant it was asked from. */

#include <stdlib.h>
#include <string.h>

#include "sched/cron.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t after[] = {0, 1767225600000LL, 1774746000000LL,
                                    -86400000LL, 4102444799999LL};
    const char *nl = memchr(data, '\n', size);
    size_t el = nl != NULL ? (size_t)(nl - (const char *)data) : size;
    size_t tl = nl != NULL ? size - el - 1 : 0;
    char *expr = malloc(el + 1), *tz = malloc(tl + 1);
    char field[32], msg[128];
    struct cron c;

    memcpy(expr, data, el);
    expr[el] = '\0';
    if (nl != NULL) {
        memcpy(tz, nl + 1, tl);
    }
    tz[tl] = '\0';
    if (cron_parse(expr, &c, field, sizeof field, msg, sizeof msg) == 0 &&
        memchr(tz, '\0', tl) == NULL && tl < 64) {
        for (size_t i = 0; i < sizeof after / sizeof after[0]; i++) {
            int64_t next;
            if (cron_next(&c, tz, after[i], &next) == 0 && next <= after[i]) {
                FUZZ_FAIL();
            }
        }
    } else if (strlen(field) >= sizeof field || strlen(msg) >= sizeof msg) {
        FUZZ_FAIL();
    }
    free(expr);
    free(tz);
    return 0;
}
