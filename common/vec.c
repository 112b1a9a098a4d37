#include "common/vec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int vec_reserve(void *pp, size_t *cap, size_t want, size_t size)
{
    void *p;
    size_t n = *cap > 0 ? *cap : 16;

    if (want <= *cap) {
        return 0;
    }
    while (n < want) {
        if (n > SIZE_MAX / 2 / size) {
            return -1;
        }
        n *= 2;
    }
    memcpy(&p, pp, sizeof p); /* pp is a T **: no aliasing through void **. */
    p = realloc(p, n * size);
    if (p == NULL) {
        return -1;
    }
    memcpy(pp, &p, sizeof p);
    *cap = n;
    return 0;
}
