/* The executor registry: adding a job type is one file and one line. And
 * what this worker allows: shell is off unless --allow-shell (a worker
 * that runs shell runs arbitrary code as its user), optionally limited to
 * commands matching --shell-allow; http to --http-allow prefixes. */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/duration.h"
#include "worker/worker.h"

bool worker_allow_shell;
const char *worker_shell_allow;
const char *worker_http_allow[WORKER_MAX_HTTP_ALLOW];
unsigned worker_n_http_allow;
const char *worker_exec_dir;
static regex_t shell_re;
static bool shell_re_set;
static char exec_dir_real[PATH_MAX];              /* realpath of DIR. */
static char exec_dir_types[WORKER_TYPES_MAX + 1]; /* "a,b": scanned. */
static const struct executor dir_executor = {"exec-dir", exec_dir};

static const struct executor executors[] = {
    {"noop", exec_noop},
    {"sleep", exec_sleep},
    {"shell", exec_shell},
    {"http", exec_http},
};

static const struct executor *builtin(const char *type)
{
    for (size_t i = 0; i < sizeof executors / sizeof executors[0]; i++) {
        if (strcmp(executors[i].type, type) == 0) {
            return &executors[i];
        }
    }
    return NULL;
}

/* Is @type one of the comma-separated @list? */
static bool listed(const char *list, const char *type)
{
    size_t len = strlen(type);
    for (const char *p = list; *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (n == len && strncmp(p, type, n) == 0) {
            return true;
        }
        p += comma != NULL ? n + 1 : n;
    }
    return false;
}

const struct executor *executor_find(const char *type)
{
    if (strcmp(type, "shell") == 0 && !worker_allow_shell) {
        return NULL;
    }
    const struct executor *e = builtin(type);
    if (e == NULL && worker_exec_dir != NULL && type[0] != '\0' &&
        listed(exec_dir_types, type)) {
        e = &dir_executor;
    }
    return e;
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
    if (exec_dir_types[0] != '\0' && n < size) {
        snprintf(out + n, size - n, "%s%s", n > 0 ? "," : "", exec_dir_types);
    }
}

/* ---- exec-dir ------------------------------------------------------------ */

static bool type_name_ok(const char *type)
{
    size_t len = strlen(type);
    return len > 0 && len < NAME_MAX && type[0] != '.' &&
           strspn(type,
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789_.-") == len;
}

int worker_exec_dir_path(const char *type,
                         char *path,
                         size_t size,
                         char *err,
                         size_t err_size)
{
    char joined[PATH_MAX * 2], real[PATH_MAX];
    size_t dl = strlen(exec_dir_real);
    struct stat st;

    if (!type_name_ok(type)) {
        snprintf(err, err_size,
                 "type \"%.64s\" is not a file name in the exec dir "
                 "([A-Za-z0-9_.-]+, not starting with a dot)",
                 type);
        return -1;
    }
    snprintf(joined, sizeof joined, "%s/%s", exec_dir_real, type);
    if (realpath(joined, real) == NULL) {
        snprintf(err, err_size, "%s: %s", joined, strerror(errno));
        return -1;
    }
    if (strncmp(real, exec_dir_real, dl) != 0 || real[dl] != '/') {
        snprintf(err, err_size, "%s resolves to %s, outside %s", joined, real,
                 exec_dir_real);
        return -1;
    }
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode) ||
        access(real, X_OK) != 0) {
        snprintf(err, err_size, "%s is not a regular executable file", real);
        return -1;
    }
    snprintf(path, size, "%s", real);
    return 0;
}

/* Add the name of one entry of DIR if it is a type this worker can run. */
static int scan_one(const char *name, size_t *n)
{
    char path[PATH_MAX], err[PATH_MAX * 3];
    if (!type_name_ok(name) ||
        worker_exec_dir_path(name, path, sizeof path, err, sizeof err) != 0) {
        return 0; /* Not a job type: skipped. */
    }
    if (builtin(name) != NULL) {
        fprintf(stderr,
                "rota-worker: --exec-dir: %s is a built-in type; the file "
                "is not used\n",
                name);
        return 0;
    }
    if (*n + strlen(name) + 1 + 64 > WORKER_TYPES_MAX) {
        fprintf(stderr,
                "rota-worker: --exec-dir: too many types (their names "
                "and the built-in ones must fit in %d bytes)\n",
                WORKER_TYPES_MAX);
        return -1;
    }
    *n += (size_t)snprintf(exec_dir_types + *n, sizeof exec_dir_types - *n,
                           "%s%s", *n > 0 ? "," : "", name);
    return 0;
}

int worker_exec_dir_init(void)
{
    struct dirent **names = NULL;
    struct stat st;
    size_t n = 0;
    int count, rv = 0;

    if (worker_exec_dir == NULL) {
        return 0;
    }
    if (realpath(worker_exec_dir, exec_dir_real) == NULL) {
        fprintf(stderr, "rota-worker: --exec-dir %s: %s\n", worker_exec_dir,
                strerror(errno));
        return -1;
    }
    if (stat(exec_dir_real, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "rota-worker: --exec-dir %s: not a directory\n",
                worker_exec_dir);
        return -1;
    }
    count = scandir(exec_dir_real, &names, NULL, alphasort);
    if (count < 0) {
        fprintf(stderr, "rota-worker: --exec-dir %s: %s\n", worker_exec_dir,
                strerror(errno));
        return -1;
    }
    for (int i = 0; i < count; i++) {
        if (rv == 0) {
            rv = scan_one(names[i]->d_name, &n);
        }
        free(names[i]);
    }
    free(names);
    return rv;
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
