#ifndef BENCH_BENCH_H_
#define BENCH_BENCH_H_

/* rota-bench modes share the options, the submit loop and the helpers that
 * read jobs back and start workers (bench.c). */

#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

struct options
{
    char nodes[16][256];
    int n_nodes;
    long jobs;
    int concurrency;
    int batch;
    int payload_bytes;
    double limit_s;
    int spread;
    char queue[64];  /* e2e, delayed: a queue of this run only. */
    int workers;     /* e2e, delayed: rota-worker processes to start. */
    int worker_conc; /* e2e, delayed: --concurrency of each. */
    char worker_bin[512];
    long delay_ms; /* delayed: each job's run_at = its request's send + this. */
    int quiet;     /* bench_submit prints no JSON line. */
};

/* Submit o->jobs noop jobs and print one JSON line (mode "submit") unless
 * o->quiet. Returns 0 if every request succeeded. With o->delay_ms > 0 each
 * request's jobs carry run_at = the time the request is sent + delay_ms. */
int bench_submit(const struct options *o);
/* The same; *ok_jobs (when given) = jobs the cluster accepted. */
int bench_submit_ok(const struct options *o, long *ok_jobs);
/* The request body: @n_jobs (<= o->batch) noop jobs (an array when
 * o->batch > 1) on o->queue, each with run_at (RFC 3339 string) unless
 * NULL. The last request of a run carries jobs % batch when that is not 0. */
char *make_body(const struct options *o,
                int n_jobs,
                const char *run_at,
                size_t *len);
/* e2e: start o->workers workers, submit, wait for completion, print one
 * JSON line with completed jobs/s and submit-to-start percentiles. */
int bench_e2e(const struct options *o);
/* delayed: start workers, submit jobs due o->delay_ms after submission,
 * wait for completion, print one JSON line with lateness percentiles
 * (started_at - run_at of every job). */
int bench_delayed(const struct options *o);

/* Helpers. */
double bench_now(void); /* CLOCK_MONOTONIC, seconds. */
int bench_cmp_double(const void *a, const void *b);
/* GET @url; the parsed body of a 200 answer, NULL otherwise. */
json_t *bench_get_json(CURL *c, const char *url);
/* RFC 3339 UTC with milliseconds, as the API writes it: seconds since the
 * epoch, or -1. */
double bench_parse_time(const char *s);
/* The completed jobs of o->queue from its counters (GET /v1/queues/{name}
 * on the first node: one small answer however many jobs there are), or
 * -1. For waiting; bench_read_completed reads the jobs themselves. */
long bench_count_completed(CURL *c, const struct options *o);
/* Read the completed jobs of o->queue back (paging GET /v1/jobs on the
 * first node) and fill up to @max entries of @ms with started_at minus the
 * job's time field @from ("created_at", "run_at"), in ms. Returns how many
 * were read, -1 if a page cannot be; jobs where either time is missing
 * are not counted but added to *bad. */
long bench_read_completed(CURL *c,
                          const struct options *o,
                          const char *from,
                          double *ms,
                          long max,
                          long *bad);
/* Fork o->workers rota-workers (o->worker_bin) on o->queue into @pids
 * (o->workers entries), stdout to /dev/null. SIGINT/SIGTERM/SIGHUP stop
 * them and exit until bench_stop_workers. Returns 0, or -1 (the ones
 * started are in @pids; call bench_stop_workers). */
int bench_start_workers(const struct options *o, pid_t *pids);
/* How many of the started workers have exited (reports each on stderr). */
int bench_workers_exited(pid_t *pids);
/* SIGTERM the started workers that still run and wait for them. */
void bench_stop_workers(pid_t *pids);

#endif /* BENCH_BENCH_H_ */
