/* rota-bench e2e: W workers (started here) run N noop jobs submitted in
 * batches; prints completed jobs/s and submit-to-start latency (started_at
 * minus created_at of every job, from the API) as one JSON line. The jobs
 * go to a queue of this run only, so other traffic does not count. */

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"

int bench_e2e(const struct options *o)
{
    pid_t pids[64];
    CURL *c = curl_easy_init();
    double t0, t_done = 0;
    long done = 0;
    int rv;

    if (c == NULL || bench_start_workers(o, pids) != 0) {
        bench_stop_workers(pids);
        if (c != NULL) {
            curl_easy_cleanup(c);
        }
        return 1;
    }
    t0 = bench_now();
    rv = bench_submit(o); /* Prints its own JSON line (mode submit). */
    while (bench_now() - t0 < o->limit_s) {
        struct timespec tick = {0, 50 * 1000 * 1000};
        /* The counters, not the jobs: listing every completed job on
         * each poll was most of what the node read during a run. */
        done = bench_count_completed(c, o);
        fprintf(stderr, "rota-bench: %.0fs %ld of %ld jobs completed\n",
                bench_now() - t0, done, o->jobs);
        if (done >= o->jobs) {
            t_done = bench_now();
            break;
        }
        nanosleep(&tick, NULL);
    }
    bench_stop_workers(pids);
    double *lat = calloc((size_t)o->jobs + 1, sizeof *lat);
    long bad = 0;
    long m = bench_read_completed(c, o, "created_at", lat, o->jobs, &bad);
    m = m < 0 ? 0 : m > o->jobs ? o->jobs : m;
    qsort(lat, (size_t)m, sizeof *lat, bench_cmp_double);
    double secs = (t_done > 0 ? t_done : bench_now()) - t0;
    printf(
        "{\"mode\":\"e2e\",\"jobs\":%ld,\"workers\":%d,\"completed\":%ld,"
        "\"seconds\":%.3f,\"completed_per_s\":%.0f,"
        "\"submit_to_start_ms\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}}\n",
        o->jobs, o->workers, m, secs, (double)m / secs, m > 0 ? lat[m / 2] : 0,
        m > 0 ? lat[m * 99 / 100] : 0, m > 0 ? lat[m - 1] : 0);
    free(lat);
    curl_easy_cleanup(c);
    return rv == 0 && m >= o->jobs ? 0 : 1;
}
