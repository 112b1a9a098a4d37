/* Child processes for the executors that run one (shell, exec-dir): fork,
 * collect the output, stop the process group on a cancel, a lost lease or
 * the job's timeout (SIGTERM, then SIGKILL after worker_kill_grace_ms),
 * reap, and classify the end the same way for both.
 *
 * stderr (and stdout unless proc.split) goes to a tail of the last
 * worker_output_limit bytes; with proc.split, stdout is kept apart, from its
 * start, up to worker_output_limit bytes (proc.out_over when longer: the
 * rest is read and dropped, so the child never blocks on a full pipe). */

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

/* In the child: its own process group, the pipes as 1 and 2 (and stdin),
 * then the executor's part, which execs. Never returns. */
static void child(struct run *r, struct proc *p, int err_w, int out_w)
{
    int e = dup(err_w), o = out_w >= 0 ? dup(out_w) : -1; /* No CLOEXEC. */
    setpgid(0, 0);
    if (p->stdin_fd >= 0) {
        dup2(p->stdin_fd, 0);
    }
    dup2(o >= 0 ? o : e, 1);
    dup2(e, 2);
    close(e);
    if (o >= 0) {
        close(o);
    }
    p->child(r, p->arg);
    _exit(127);
}

/* Which stop applies now, if any. */
static const char *stop_reason(const struct run *r,
                               long long start,
                               long long timeout)
{
    return r->cancel                                      ? "cancelled"
           : r->lost                                      ? "lease lost"
           : (timeout > 0 && mono_ms() - start > timeout) ? "timeout"
                                                          : NULL;
}

static void keep_stdout(struct proc *p, const char *buf, size_t n)
{
    size_t room = worker_output_limit - p->out_len;
    if (n > room) {
        p->out_over = true;
        n = room;
    }
    memcpy(p->out + p->out_len, buf, n);
    p->out_len += n;
    p->out[p->out_len] = '\0';
}

/* Read what is ready on the open pipes (fds[i] = -1 once closed), waiting
 * up to 20 ms; when both are closed, just wait. */
static void collect(struct proc *p, int fds[2], struct tail *t)
{
    struct pollfd pf[2];
    int n = 0, which[2];
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0) {
            pf[n] = (struct pollfd){fds[i], POLLIN, 0};
            which[n++] = i;
        }
    }
    if (n == 0) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        return;
    }
    if (poll(pf, (nfds_t)n, 20) <= 0) {
        return;
    }
    for (int k = 0; k < n; k++) {
        char buf[8192];
        ssize_t got;
        if (pf[k].revents == 0) {
            continue;
        }
        got = read(pf[k].fd, buf, sizeof buf);
        if (got <= 0) {
            close(pf[k].fd);
            fds[which[k]] = -1;
        } else if (which[k] == 1) {
            keep_stdout(p, buf, (size_t)got);
        } else {
            tail_add(t, buf, (size_t)got);
        }
    }
}

/* Fork with the pipes; the child's pid, or -1 with out->error set. */
static pid_t spawn(struct run *r, struct proc *p, int fds[2], struct outcome *o)
{
    int err_p[2], out_p[2] = {-1, -1};
    pid_t pid;
    if (pipe2(err_p, O_CLOEXEC) != 0) {
        snprintf(o->error, sizeof o->error, "pipe: %s", strerror(errno));
        return -1;
    }
    if (p->split && pipe2(out_p, O_CLOEXEC) != 0) {
        snprintf(o->error, sizeof o->error, "pipe: %s", strerror(errno));
        close(err_p[0]);
        close(err_p[1]);
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        child(r, p, err_p[1], out_p[1]);
    }
    close(err_p[1]);
    if (out_p[1] >= 0) {
        close(out_p[1]);
    }
    fds[0] = err_p[0];
    fds[1] = out_p[0];
    if (pid < 0) {
        snprintf(o->error, sizeof o->error, "fork: %s", strerror(errno));
        close(fds[0]);
        if (fds[1] >= 0) {
            close(fds[1]);
        }
        return -1;
    }
    setpgid(pid, pid);
    return pid;
}

int proc_run(struct run *r,
             struct proc *p,
             long long timeout,
             struct outcome *o)
{
    long long start = mono_ms(), term_at = -1;
    struct tail t;
    int fds[2], status = 0;
    pid_t pid;

    p->why = NULL;
    p->out_len = 0;
    p->out_over = false;
    p->out = p->split ? malloc(worker_output_limit + 1) : NULL;
    if (p->out != NULL) {
        p->out[0] = '\0';
    }
    if ((pid = spawn(r, p, fds, o)) < 0) {
        o->retryable = true;
        free(p->out);
        p->out = NULL;
        return -1;
    }
    r->pgid = pid;
    tail_init(&t, worker_output_limit);
    for (;;) {
        if (p->why == NULL) {
            if ((p->why = stop_reason(r, start, timeout)) != NULL) {
                kill(-pid, SIGTERM);
                term_at = mono_ms();
            }
        } else if (term_at >= 0 && mono_ms() - term_at > worker_kill_grace_ms) {
            kill(-pid, SIGKILL);
            term_at = -1;
        }
        collect(p, fds, &t);
        if (fds[0] < 0 && fds[1] < 0 && waitpid(pid, &status, WNOHANG) == pid) {
            break;
        }
    }
    r->pgid = 0;
    kill(-pid, SIGKILL); /* Leftover children of the group. */
    o->output = tail_take(&t);
    o->exit_code =
        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (p->why != NULL) {
        snprintf(o->error, sizeof o->error, "%s", p->why);
        o->retryable = strcmp(p->why, "cancelled") != 0;
    } else if (o->exit_code == 0) {
        o->ok = true;
    } else {
        snprintf(o->error, sizeof o->error, "exit status %d", o->exit_code);
        o->retryable = true;
    }
    return 0;
}
