/* shell: payload.cmd (run by /bin/sh -c) or payload.argv, optional env and
 * cwd. Exit 0 is success. The last worker_output_limit bytes of stdout and
 * stderr are kept. The job's timeout, a cancel or a lost lease stop the
 * process group: SIGTERM, then SIGKILL after worker_kill_grace_ms. The job
 * sees ROTA_JOB_ID, ROTA_ATTEMPT and ROTA_LEASE_TOKEN. */

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

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* In the child: set up and exec; never returns. */
static void child(struct run *r, json_t *payload, int out_fd)
{
    json_t *cmd = json_object_get(payload, "cmd");
    json_t *argv = json_object_get(payload, "argv");
    json_t *env = json_object_get(payload, "env");
    json_t *cwd = json_object_get(payload, "cwd");
    char buf[32];
    const char *key;
    json_t *v;

    setpgid(0, 0);
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    close(out_fd);
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

void exec_shell(struct run *r, struct outcome *out)
{
    json_t *payload = json_object_get(r->job, "payload");
    long long timeout = worker_duration_ms(
        json_string_value(json_object_get(r->job, "timeout")));
    long long start = mono_ms(), term_at = -1;
    const char *why = NULL;
    struct tail t;
    int fds[2], status = 0;
    pid_t pid;

    if (!payload_ok(payload, out->error, sizeof out->error)) {
        out->retryable = false; /* An invalid job is not retried. */
        return;
    }
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(out->error, sizeof out->error, "pipe: %s", strerror(errno));
        out->retryable = true;
        return;
    }
    pid = fork();
    if (pid == 0) {
        int fd = dup(fds[1]); /* Without O_CLOEXEC. */
        child(r, payload, fd);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        snprintf(out->error, sizeof out->error, "fork: %s", strerror(errno));
        out->retryable = true;
        return;
    }
    setpgid(pid, pid);
    r->pgid = pid;
    tail_init(&t, worker_output_limit);
    for (bool open_ = true;;) {
        struct pollfd p = {fds[0], POLLIN, 0};
        long long now = mono_ms();
        if (why == NULL) {
            why = r->cancel                                ? "cancelled"
                  : r->lost                                ? "lease lost"
                  : (timeout > 0 && now - start > timeout) ? "timeout"
                                                           : NULL;
            if (why != NULL) {
                kill(-pid, SIGTERM);
                term_at = now;
            }
        } else if (term_at >= 0 && now - term_at > worker_kill_grace_ms) {
            kill(-pid, SIGKILL);
            term_at = -1;
        }
        if (open_ && poll(&p, 1, 20) > 0) {
            char buf[8192];
            ssize_t n = read(fds[0], buf, sizeof buf);
            if (n > 0) {
                tail_add(&t, buf, (size_t)n);
            } else {
                open_ = false;
            }
        } else if (!open_) {
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (!open_ && waitpid(pid, &status, WNOHANG) == pid) {
            break;
        }
    }
    close(fds[0]);
    r->pgid = 0;
    kill(-pid, SIGKILL); /* Leftover children of the group. */
    out->output = tail_take(&t);
    out->exit_code =
        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (why != NULL) {
        snprintf(out->error, sizeof out->error, "%s", why);
        out->retryable = strcmp(why, "cancelled") != 0;
    } else if (out->exit_code == 0) {
        out->ok = true;
    } else {
        snprintf(out->error, sizeof out->error, "exit status %d",
                 out->exit_code);
        out->retryable = true;
    }
}
