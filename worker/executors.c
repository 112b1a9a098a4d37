/* The executor registry: adding a job type is one file and one line. And
 * what this worker allows: shell is off unless --allow-shell (a worker
 * that runs shell runs arbitrary code as its user), optionally limited to
 * commands matching --shell-allow; http to --http-allow prefixes. */

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "worker/worker.h"

bool worker_allow_shell;
const char *worker_shell_allow;
const char *worker_http_allow[WORKER_MAX_HTTP_ALLOW];
unsigned worker_n_http_allow;
static regex_t shell_re;
static bool shell_re_set;

static const struct executor executors[] = {
    {"noop", exec_noop},
    {"sleep", exec_sleep},
    {"shell", exec_shell},
    {"http", exec_http},
};

const struct executor *executor_find(const char *type)
{
    if (strcmp(type, "shell") == 0 && !worker_allow_shell) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof executors / sizeof executors[0]; i++) {
        if (strcmp(executors[i].type, type) == 0) {
            return &executors[i];
        }
    }
    return NULL;
}

void worker_types(char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof executors / sizeof executors[0]; i++) {
        if (executor_find(executors[i].type) != NULL && n < size) {
            n += (size_t)snprintf(out + n, size - n, "%s%s", n > 0 ? "," : "",
                                  executors[i].type);
        }
    }
}

int worker_policy_init(void)
{
    if (worker_shell_allow == NULL) {
        return 0;
    }
    int rv = regcomp(&shell_re, worker_shell_allow, REG_EXTENDED | REG_NOSUB);
    if (rv != 0) {
        char msg[128];
        regerror(rv, &shell_re, msg, sizeof msg);
        fprintf(stderr, "rota-worker: --shell-allow: %s\n", msg);
        return -1;
    }
    shell_re_set = true;
    return 0;
}

bool worker_shell_permitted(const char *cmd, char *err, size_t size)
{
    if (!worker_allow_shell) {
        snprintf(err, size, "shell is off on this worker (--allow-shell)");
        return false;
    }
    if (shell_re_set && regexec(&shell_re, cmd, 0, NULL, 0) != 0) {
        snprintf(err, size, "shell: the command does not match --shell-allow");
        return false;
    }
    return true;
}

bool worker_http_permitted(const char *url, char *err, size_t size)
{
    for (unsigned i = 0; i < worker_n_http_allow; i++) {
        if (strncmp(url, worker_http_allow[i], strlen(worker_http_allow[i])) ==
            0) {
            return true;
        }
    }
    if (worker_n_http_allow == 0) {
        return true;
    }
    snprintf(err, size,
             "http: the URL does not start with an --http-allow "
             "prefix");
    return false;
}

size_t worker_output_limit = 64 * 1024;
unsigned worker_kill_grace_ms = 5000;

long long worker_duration_ms(const char *s)
{
    int64_t ms;
    /* The cluster validated it (common/duration.h); 10 years at most. */
    return duration_parse_ms(s, 10LL * 366 * 86400000, &ms) == 0 ? ms : -1;
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
