/* Fuzz the router: "METHOD PATH" (the first space splits them; no space:
 * GET) through http__route_find, on the path as sent and as h2o
 * normalizes it, then the captured {id} through http__parse_id as the
 * handlers do. A match must be of the route's method, and its {id} a
 * non-empty segment of the path. */

#include <stdlib.h>
#include <string.h>

#include "http/internal.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void route(const char *m, size_t ml, const char *p, size_t pl)
{
    struct http_args a;
    bool known;
    const struct http_route *r = http__route_find(m, ml, p, pl, &a, &known);
    uint64_t id;

    if (r == NULL) {
        if (a.id.base != NULL || a.id.len != 0) {
            FUZZ_FAIL();
        }
        return;
    }
    if (!known || strlen(r->method) != ml || memcmp(r->method, m, ml) != 0) {
        FUZZ_FAIL();
    }
    if (strchr(r->pattern, '{') == NULL) {
        if (a.id.base != NULL || strlen(r->pattern) != pl ||
            memcmp(r->pattern, p, pl) != 0) {
            FUZZ_FAIL();
        }
        return;
    }
    if (a.id.len == 0 || a.id.base < p || a.id.base + a.id.len > p + pl ||
        memchr(a.id.base, '/', a.id.len) != NULL) {
        FUZZ_FAIL();
    }
    (void)http__parse_id(a.id.base, a.id.len, &id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data, *sp = memchr(s, ' ', size);
    const char *m = sp != NULL ? s : "GET";
    size_t ml = sp != NULL ? (size_t)(sp - s) : 3;
    const char *p = sp != NULL ? sp + 1 : s;
    size_t pl = sp != NULL ? size - ml - 1 : size;
    /* Copies, so ASan sees a read past either end. */
    char *mc = malloc(ml + 1), *pc = malloc(pl + 1);
    h2o_mem_pool_t pool;
    size_t query_at;
    size_t *norm_indexes = NULL;
    h2o_iovec_t norm;

    memcpy(mc, m, ml);
    memcpy(pc, p, pl);
    route(mc, ml, pc, pl);
    h2o_mem_init_pool(&pool);
    norm = h2o_url_normalize_path(&pool, pc, pl, &query_at, &norm_indexes);
    route(mc, ml, norm.base, norm.len); /* As req->path_normalized. */
    h2o_mem_clear_pool(&pool);
    free(mc);
    free(pc);
    return 0;
}
