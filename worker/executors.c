/* The executor registry: adding a job type is one file and one line. */

#include <stdlib.h>
#include <string.h>

#include "worker/worker.h"

static const struct executor executors[] = {
    {"noop", exec_noop},
    {"sleep", exec_sleep},
    {"shell", exec_shell},
    {"http", exec_http},
};

const struct executor *executor_find(const char *type)
{
    for (size_t i = 0; i < sizeof executors / sizeof executors[0]; i++) {
        if (strcmp(executors[i].type, type) == 0) {
            return &executors[i];
        }
    }
    return NULL;
}

size_t worker_output_limit = 64 * 1024;
unsigned worker_kill_grace_ms = 5000;

long long worker_duration_ms(const char *s)
{
    double total = 0;
    if (s == NULL || *s == '\0') {
        return -1;
    }
    while (*s != '\0') {
        char *end;
        double n = strtod(s, &end);
        if (end == s || n < 0) {
            return -1;
        }
        s = end;
        if (strncmp(s, "ms", 2) == 0) {
            s += 2;
        } else if (*s == 's') {
            n *= 1000;
            s++;
        } else if (*s == 'm') {
            n *= 60000;
            s++;
        } else if (*s == 'h') {
            n *= 3600000;
            s++;
        } else {
            return -1;
        }
        total += n;
    }
    return (long long)total;
}

void tail_init(struct tail *t, size_t cap)
{
    t->cap = cap;
    t->buf = malloc(cap + 1);
    t->len = 0;
    t->total = 0;
}

void tail_add(struct tail *t, const char *p, size_t n)
{
    t->total += n;
    if (n >= t->cap) {
        memcpy(t->buf, p + n - t->cap, t->cap);
        t->len = t->cap;
        return;
    }
    if (t->len + n > t->cap) {
        size_t drop = t->len + n - t->cap;
        memmove(t->buf, t->buf + drop, t->len - drop);
        t->len -= drop;
    }
    memcpy(t->buf + t->len, p, n);
    t->len += n;
}

char *tail_take(struct tail *t)
{
    char *s = t->buf;
    s[t->len] = '\0';
    t->buf = NULL;
    return s;
}
