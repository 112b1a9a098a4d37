#ifndef BENCH_BENCH_H_
#define BENCH_BENCH_H_

/* rota-bench modes share the options and the submit loop. */

#include <stddef.h>

struct options
{
    char nodes[16][256];
    int n_nodes;
    long jobs;
    int concurrency;
    int batch;
    int threads;
    int payload_bytes;
    double limit_s;
    int spread;
    char queue[64];  /* e2e: a queue of this run only. */
    int workers;     /* e2e: rota-worker processes to start. */
    int worker_conc; /* e2e: --concurrency of each. */
    char worker_bin[512];
};

/* Submit o->jobs noop jobs and print one JSON line (mode "submit"), or
 * quietly when @quiet (e2e uses it). Returns 0 if every request succeeded. */
int bench_submit(const struct options *o);
char *make_body(const struct options *o, size_t *len);
/* e2e: start o->workers workers, submit, wait for completion, print one
 * JSON line with completed jobs/s and submit-to-start percentiles. */
int bench_e2e(const struct options *o);

#endif /* BENCH_BENCH_H_ */
