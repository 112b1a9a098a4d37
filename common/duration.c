#include "common/duration.h"

#include <ctype.h>
#include <string.h>

/* Digits, then optionally '.' and digits; NULL if @s does not start so. */
static const char *decimal(const char *s, double *out)
{
    double v = 0, scale = 1;
    if (!isdigit((unsigned char)*s)) {
        return NULL;
    }
    while (isdigit((unsigned char)*s)) {
        v = v * 10 + (*s++ - '0');
        if (v > 1e15) {
            return NULL; /* Past every limit we have. */
        }
    }
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s)) {
            return NULL;
        }
        while (isdigit((unsigned char)*s)) {
            scale /= 10;
            v += (*s++ - '0') * scale;
        }
    }
    *out = v;
    return s;
}

int duration_parse_ms(const char *s, int64_t max_ms, int64_t *ms)
{
    static const struct
    {
        const char *unit;
        double ms;
    } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    double total = 0;

    if (s == NULL || *s == '\0') {
        return -1;
    }
    while (*s != '\0') {
        double n;
        size_t u;
        if ((s = decimal(s, &n)) == NULL) {
            return -1;
        }
        for (u = 0; u < sizeof units / sizeof units[0]; u++) {
            size_t l = strlen(units[u].unit);
            if (strncmp(s, units[u].unit, l) == 0) {
                break;
            }
        }
        if (u == sizeof units / sizeof units[0]) {
            return -1;
        }
        total += n * units[u].ms;
        if (total > (double)max_ms) {
            return -1;
        }
        s += strlen(units[u].unit);
    }
    *ms = (int64_t)total;
    return 0;
}
