/* exec-dir: with --exec-dir DIR, a job of type T runs the executable DIR/T
 * (a function in any language). The payload is its stdin, as JSON; its
 * stdout, JSON too, at most worker_output_limit bytes, is the job's result
 * (empty: none); stderr is the job's output (the last worker_output_limit
 * bytes). Exit 0 is success, 75 (EX_TEMPFAIL) a failure to retry, another
 * exit a failure retried by the job's policy (as shell); stdout that is not
 * JSON or too long fails the job without retries. It sees ROTA_JOB_ID,
 * ROTA_JOB_ATTEMPT, ROTA_JOB_TYPE, ROTA_QUEUE (and ROTA_ATTEMPT,
 * ROTA_LEASE_TOKEN as shell jobs). The type is checked again here (name,
 * real path inside DIR, a regular executable file): the file may have
 * changed since the scan. Process handling: exec_proc.c. */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "worker/worker.h"

/* In the child: the environment, then exec. */
static void dir_child(struct run *r, void *arg)
{
    const char *path = arg;
    const char *type = json_string_value(json_object_get(r->job, "type"));
    const char *queue = json_string_value(json_object_get(r->job, "queue"));
    char buf[32];

    setenv("ROTA_JOB_ID", r->id, 1);
    snprintf(buf, sizeof buf, "%u", r->attempt);
    setenv("ROTA_JOB_ATTEMPT", buf, 1);
    setenv("ROTA_ATTEMPT", buf, 1);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)r->token);
    setenv("ROTA_LEASE_TOKEN", buf, 1);
    setenv("ROTA_JOB_TYPE", type != NULL ? type : "", 1);
    setenv("ROTA_QUEUE", queue != NULL ? queue : "", 1);
    execl(path, path, (char *)NULL);
    fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
    _exit(127);
}

/* The payload as JSON in an anonymous file (no pipe to fill or deadlock
 * on), positioned at its start; -1 with out->error set. */
static int payload_fd(struct run *r, struct outcome *out)
{
    json_t *payload = json_object_get(r->job, "payload");
    char *text = payload != NULL
                     ? json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY)
                     : strdup("{}");
    size_t len = text != NULL ? strlen(text) : 0, done = 0;
    int fd = memfd_create("rota-payload", MFD_CLOEXEC);

    while (fd >= 0 && done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno != EINTR) {
            close(fd);
            fd = -1;
        } else if (n > 0) {
            done += (size_t)n;
        }
    }
    free(text);
    if (fd < 0 || lseek(fd, 0, SEEK_SET) != 0) {
        snprintf(out->error, sizeof out->error, "exec-dir: payload: %s",
                 strerror(errno));
        out->retryable = true;
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

/* A successful run's stdout: the result, or a failure (not retried). */
static void take_result(struct proc *p, struct outcome *out)
{
    json_error_t jerr;
    if (p->out_over) {
        out->ok = false;
        snprintf(out->error, sizeof out->error,
                 "exec-dir: stdout is longer than %zu bytes (--output-limit)",
                 worker_output_limit);
        return;
    }
    if (p->out_len == strspn(p->out, " \t\r\n")) {
        return; /* Nothing printed: no result. */
    }
    out->result = json_loadb(p->out, p->out_len, JSON_DECODE_ANY, &jerr);
    if (out->result == NULL) {
        out->ok = false;
        snprintf(out->error, sizeof out->error,
                 "exec-dir: stdout is not JSON (%s, line %d column %d)",
                 jerr.text, jerr.line, jerr.column);
    }
}

void exec_dir(struct run *r, struct outcome *out)
{
    const char *type = json_string_value(json_object_get(r->job, "type"));
    long long timeout = worker_duration_ms(
        json_string_value(json_object_get(r->job, "timeout")));
    char path[PATH_MAX], err[400];
    struct proc p = {.split = true, .child = dir_child, .arg = path};

    if (worker_exec_dir_path(type != NULL ? type : "", path, sizeof path, err,
                             sizeof err) != 0) {
        snprintf(out->error, sizeof out->error, "exec-dir: %s", err);
        out->retryable = false; /* Not a job this worker can run. */
        return;
    }
    if ((p.stdin_fd = payload_fd(r, out)) < 0) {
        return;
    }
    int rv = proc_run(r, &p, timeout, out);
    close(p.stdin_fd);
    if (rv == 0 && out->ok) {
        take_result(&p, out);
    } else if (rv == 0 && p.why == NULL && out->exit_code == 75) {
        snprintf(out->error, sizeof out->error,
                 "exit status 75 (EX_TEMPFAIL: a temporary failure)");
        out->retryable = true;
    }
    free(p.out);
}
