/* rota-bench delayed: how late delayed jobs start. W workers (started here)
 * serve a queue of this run only; N noop jobs are submitted in batches, each
 * batch with run_at = the time its request is sent + --delay, so every job
 * of the run falls due within the submit window. When all have completed,
 * every job is read back and lateness = started_at - run_at (ms, both as
 * the API writes them) is printed as one JSON line:
 *   {"mode":"delayed","jobs":N,"delay_ms":D,"completed":C,
 *    "lateness_ms":{"p50":..,"p99":..,"max":..,"min":..}} */

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench/bench.h"

/* Wait until @want jobs of the queue are completed, the duration limit
 * (counted from @t0) passes or every worker has exited. Progress on stderr
 * once a second. Returns the last count (-1: the node did not answer). */
static long wait_completed(CURL *c,
                           const struct options *o,
                           pid_t *pids,
                           long want,
                           double t0)
{
    double last = 0;
    long done = -1;
    for (;;) {
        struct timespec tick = {0, 100 * 1000 * 1000};
        done = bench_count_completed(c, o);
        if (done >= want) {
            break;
        }
        if (bench_workers_exited(pids) == o->workers) {
            fprintf(stderr, "rota-bench: no worker left, giving up\n");
            break;
        }
        if (bench_now() - t0 > o->limit_s) {
            fprintf(stderr,
                    "rota-bench: duration limit reached, %ld of %ld jobs "
                    "completed\n",
                    done, want);
            break;
        }
        if (bench_now() - last >= 1.0) {
            last = bench_now();
            fprintf(stderr, "rota-bench: %.0fs %ld of %ld jobs completed\n",
                    last - t0, done, want);
        }
        nanosleep(&tick, NULL);
    }
    return done;
}

int bench_delayed(const struct options *o)
{
    pid_t pids[64] = {0};
    CURL *c = curl_easy_init();
    double t0 = bench_now(), *late = NULL;
    long ok = 0, done, m = 0, bad = 0;
    int rv = 1;

    if (c == NULL || bench_start_workers(o, pids) != 0) {
        goto out;
    }
    /* Quiet submit: o->quiet is set for this mode, o->delay_ms puts run_at
     * on every request. */
    int sub = bench_submit_ok(o, &ok);
    if (ok == 0) {
        fprintf(stderr, "rota-bench: no job accepted by %s\n", o->nodes[0]);
        goto out;
    }
    if (sub != 0) {
        fprintf(stderr,
                "rota-bench: %ld of %ld jobs accepted; waiting for those\n", ok,
                o->jobs);
    }
    done = wait_completed(c, o, pids, ok, t0);
    if (done < 0) {
        fprintf(stderr, "rota-bench: cannot list jobs on %s\n", o->nodes[0]);
    }
    bench_stop_workers(pids);

    /* Every completed job, read once the workers are gone. */
    late = calloc((size_t)ok + 1, sizeof *late);
    m = bench_read_completed(c, o, "run_at", late, ok, &bad);
    if (m < 0) {
        fprintf(stderr, "rota-bench: cannot list jobs on %s\n", o->nodes[0]);
        m = 0;
    }
    if (m > ok) {
        m = ok;
    }
    if (bad > 0) {
        fprintf(stderr,
                "rota-bench: %ld completed jobs without run_at/started_at\n",
                bad);
    }
    qsort(late, (size_t)m, sizeof *late, bench_cmp_double);
    /* The API's times have ms resolution: lateness is whole ms. */
    if (m > 0) {
        printf(
            "{\"mode\":\"delayed\",\"jobs\":%ld,\"delay_ms\":%ld,"
            "\"completed\":%ld,\"lateness_ms\":{\"p50\":%.0f,\"p99\":%.0f,"
            "\"max\":%.0f,\"min\":%.0f}}\n",
            o->jobs, o->delay_ms, m, late[m / 2], late[m * 99 / 100],
            late[m - 1], late[0]);
    } else {
        printf(
            "{\"mode\":\"delayed\",\"jobs\":%ld,\"delay_ms\":%ld,"
            "\"completed\":0,\"lateness_ms\":null}\n",
            o->jobs, o->delay_ms);
    }
    fflush(stdout);
    rv = sub == 0 && m >= o->jobs && bad == 0 ? 0 : 1;
out:
    bench_stop_workers(pids); /* Also on errors; a no-op when done above. */
    free(late);
    if (c != NULL) {
        curl_easy_cleanup(c);
    }
    return rv;
}
