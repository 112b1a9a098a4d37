/* shell: payload.cmd (run by /bin/sh -c) or payload.argv, optional env and
 * cwd. Exit 0 is success. The last worker_output_limit bytes of stdout and
 * stderr are kept. The job's timeout, a cancel or a lost lease stop the
 * process group: SIGTERM, then SIGKILL after worker_kill_grace_ms. The job
 * sees ROTA_JOB_ID, ROTA_ATTEMPT and ROTA_LEASE_TOKEN. The process handling
 * is exec_proc.c's. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "worker/worker.h"

/* In the child: set up and exec; never returns. */
static void child(struct run *r, json_t *payload)
{
    json_t *cmd = json_object_get(payload, "cmd");
    json_t *argv = json_object_get(payload, "argv");
    json_t *env = json_object_get(payload, "env");
    json_t *cwd = json_object_get(payload, "cwd");
    char buf[32];
    const char *key;
    json_t *v;

    setenv("ROTA_JOB_ID", r->id, 1);
    snprintf(buf, sizeof buf, "%u", r->attempt);
    setenv("ROTA_ATTEMPT", buf, 1);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)r->token);
    setenv("ROTA_LEASE_TOKEN", buf, 1);
    json_object_foreach(env, key, v)
    {
        if (json_is_string(v)) {
            setenv(key, json_string_value(v), 1);
        }
    }
    if (json_is_string(cwd) && chdir(json_string_value(cwd)) != 0) {
        fprintf(stderr, "cwd %s: %s\n", json_string_value(cwd),
                strerror(errno));
        _exit(126);
    }
    if (json_is_string(cmd)) {
        execl("/bin/sh", "sh", "-c", json_string_value(cmd), (char *)NULL);
    } else {
        size_t n = json_array_size(argv);
        char **args = calloc(n + 1, sizeof *args);
        for (size_t i = 0; i < n; i++) {
            args[i] = (char *)json_string_value(json_array_get(argv, i));
        }
        execvp(args[0], args);
    }
    fprintf(stderr, "exec: %s\n", strerror(errno));
    _exit(127);
}

static bool payload_ok(json_t *payload, char *err, size_t size)
{
    json_t *cmd = json_object_get(payload, "cmd");
    json_t *argv = json_object_get(payload, "argv");
    json_t *env = json_object_get(payload, "env");
    json_t *cwd = json_object_get(payload, "cwd");
    if (json_is_string(cmd) == json_is_array(argv)) {
        snprintf(err, size,
                 "shell: give payload.cmd (a string) or "
                 "payload.argv (an array of strings)");
        return false;
    }
    if (json_is_array(argv)) {
        size_t i;
        json_t *v;
        if (json_array_size(argv) == 0) {
            snprintf(err, size, "shell: payload.argv is empty");
            return false;
        }
        json_array_foreach(argv, i, v)
        {
            if (!json_is_string(v)) {
                snprintf(err, size,
                         "shell: payload.argv[%zu] is not a "
                         "string",
                         i);
                return false;
            }
        }
    }
    if ((env != NULL && !json_is_object(env)) ||
        (cwd != NULL && !json_is_string(cwd))) {
        snprintf(err, size, "shell: env must be an object, cwd a string");
        return false;
    }
    /* What --shell-allow judges: the command line, argv joined by spaces. */
    char line[4096] = "";
    size_t n = 0, i;
    json_t *v;
    if (json_is_string(cmd)) {
        snprintf(line, sizeof line, "%s", json_string_value(cmd));
    }
    json_array_foreach(argv, i, v)
    {
        if (n < sizeof line) {
            n += (size_t)snprintf(line + n, sizeof line - n, "%s%s",
                                  i > 0 ? " " : "", json_string_value(v));
        }
    }
    return worker_shell_permitted(line, err, size);
}

static void shell_child(struct run *r, void *arg)
{
    child(r, arg);
}

void exec_shell(struct run *r, struct outcome *out)
{
    json_t *payload = json_object_get(r->job, "payload");
    long long timeout = worker_duration_ms(
        json_string_value(json_object_get(r->job, "timeout")));
    struct proc p = {.stdin_fd = -1, .child = shell_child, .arg = payload};

    if (!payload_ok(payload, out->error, sizeof out->error)) {
        out->retryable = false; /* An invalid job is not retried. */
        return;
    }
    proc_run(r, &p, timeout, out);
}
