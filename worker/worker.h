#ifndef WORKER_WORKER_H_
#define WORKER_WORKER_H_

/* rota-worker: registers, long-polls for leases, runs jobs through the
 * executor registry, heartbeats, reports results (docs/worker.md).
 *
 * Threads: the main thread leases; a fixed pool of --concurrency threads,
 * made at start, runs the leased jobs from a queue; a heartbeat thread and a
 * completion thread talk to the cluster. Shared state is under worker.lock. */

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct run
{
    char id[20];
    uint64_t token;
    unsigned attempt;
    json_t *job;          /* The job record (owned). */
    volatile bool cancel; /* Stop it and report it cancelled. */
    volatile bool lost;   /* Stop it and report nothing (lease lost). */
    volatile bool drain;  /* Stopped by the drain timeout: give it back. */
    volatile int pgid;    /* shell: the process group to signal. */
    struct run *next;     /* Every lease held (worker.runs). */
    struct run *qnext;    /* Leased, not started yet (worker.queue). */
};

/* What an executor reports. */
struct outcome
{
    bool ok;
    bool retryable;
    int exit_code;
    char error[512];
    char *output;   /* malloc'ed tail, or NULL. */
    json_t *result; /* Owned, or NULL. */
};

struct executor
{
    const char *type;
    /* Run @r to its end (honouring r->cancel / r->lost), fill @out. */
    void (*run)(struct run *r, struct outcome *out);
};

/* lease.c: one element of "leases" in the leader's answer to a lease
 * request. 0 with *out filled (out->job borrowed from @lease), or -1 with
 * the reason in @err when it is malformed (then skip it). */
struct lease
{
    char id[20];
    uint64_t token;
    unsigned attempt;
    json_t *job;
};
int worker_lease_parse(json_t *lease,
                       struct lease *out,
                       char *err,
                       size_t size);

/* executors.c: the registry. */
const struct executor *executor_find(const char *type);

/* exec_*.c */
void exec_noop(struct run *r, struct outcome *out);
void exec_sleep(struct run *r, struct outcome *out);
void exec_shell(struct run *r, struct outcome *out);
void exec_http(struct run *r, struct outcome *out);

void exec_dir(struct run *r, struct outcome *out);

/* exec_proc.c: a child process for an executor (shell, exec-dir). */
struct proc
{
    /* In: */
    int stdin_fd; /* The child's stdin, or -1: the worker's. */
    bool split;   /* stdout kept apart from stderr (out), else both: output. */
    /* In the child, after the pipes are set up: set up and exec; never
     * returns (exit 127 if it does). */
    void (*child)(struct run *r, void *arg);
    void *arg;
    /* Out: */
    char *out;       /* split: stdout (malloc'ed, NUL-terminated). */
    size_t out_len;  /* Bytes kept in out (at most worker_output_limit). */
    bool out_over;   /* split: stdout was longer than the limit. */
    const char *why; /* "cancelled", "lease lost", "timeout" or NULL. */
};
/* Run it to its end, stopping its process group (SIGTERM, then SIGKILL
 * after worker_kill_grace_ms) on r->cancel, r->lost or after @timeout_ms
 * (<= 0: none). Fills @out: output (tail of stderr, and of stdout unless
 * split), exit_code, and ok / error / retryable as a shell job: exit 0 is
 * success; another exit is retryable; a stop reports p->why, retryable unless
 * cancelled. 0, or -1 (nothing ran) with out->error set, retryable. */
int proc_run(struct run *r,
             struct proc *p,
             long long timeout_ms,
             struct outcome *out);

/* exec-dir (executors.c): with --exec-dir DIR, a job whose type names an
 * executable file in DIR runs it. Scan DIR (the types it advertises); 0, or
 * -1 with a message on stderr. */
extern const char *worker_exec_dir;
int worker_exec_dir_init(void);
/* The path to run for @type: 0 with the real path in @path, or -1 with why
 * not in @err (a name that is not [A-Za-z0-9_.-]+ or starts with a dot, a
 * file that is missing, not regular, not executable or outside DIR). */
int worker_exec_dir_path(const char *type,
                         char *path,
                         size_t size,
                         char *err,
                         size_t err_size);

/* Settings every executor may read. */
extern size_t worker_output_limit;
extern unsigned worker_kill_grace_ms;

/* What this worker may run (docs/worker.md, "Security"): shell only with
 * --allow-shell, and then only commands matching --shell-allow if given;
 * http only to URLs starting with one of --http-allow if given. */
#define WORKER_MAX_HTTP_ALLOW 16
extern bool worker_allow_shell;
extern const char *worker_shell_allow; /* ERE, or NULL: any command. */
extern const char *worker_http_allow[WORKER_MAX_HTTP_ALLOW];
extern unsigned worker_n_http_allow;
/* Compile --shell-allow; 0, or -1 with a message on stderr. */
int worker_policy_init(void);
/* The job types it runs, "a,b,c", as it registers them (at most
 * WORKER_TYPES_MAX bytes, the cluster's limit). */
#define WORKER_TYPES_MAX 1024
void worker_types(char *out, size_t size);
/* May @cmd (shell) / @url (http) run here? false with the reason in @err. */
bool worker_shell_permitted(const char *cmd, char *err, size_t size);
bool worker_http_permitted(const char *url, char *err, size_t size);

/* Milliseconds of a duration ("30s", "1500ms", "2m") or -1. */
long long worker_duration_ms(const char *s);

/* Keep the last worker_output_limit bytes of a stream. */
struct tail
{
    char *buf;
    size_t len, cap, total;
};
void tail_init(struct tail *t, size_t cap);
void tail_add(struct tail *t, const char *p, size_t n);
/* The kept bytes as a NUL-terminated malloc'ed string (taken). */
char *tail_take(struct tail *t);

#endif /* WORKER_WORKER_H_ */
