/* rota-bench e2e: W workers (started here) run N noop jobs submitted in
 * batches; prints completed jobs/s and submit-to-start latency (started_at
 * minus created_at of every job, from the API) as one JSON line. The jobs
 * go to a queue of this run only, so other traffic does not count. */

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct buf
{
    char *p;
    size_t len;
};

static size_t collect(char *p, size_t s, size_t n, void *data)
{
    struct buf *b = data;
    char *q = realloc(b->p, b->len + s * n + 1);
    if (q == NULL) {
        return 0;
    }
    memcpy(q + b->len, p, s * n);
    b->p = q;
    b->len += s * n;
    b->p[b->len] = '\0';
    return s * n;
}

static json_t *get_json(CURL *c, const char *url)
{
    struct buf b = {NULL, 0};
    json_t *out = NULL;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (curl_easy_perform(c) == CURLE_OK && b.p != NULL) {
        out = json_loads(b.p, 0, NULL);
    }
    free(b.p);
    return out;
}

/* RFC 3339 UTC with milliseconds, as the API writes it. */
static double parse_time(const char *s)
{
    struct tm tm;
    int ms = 0;
    memset(&tm, 0, sizeof tm);
    if (s == NULL ||
        sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm) + ms / 1000.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Completed jobs of the run's queue; fills @lat (ms) when given. */
static long count_completed(CURL *c,
                            const struct options *o,
                            double *lat,
                            long max)
{
    char url[2048], cursor[1300] = "";
    long n = 0;
    for (int pages = 0; pages < 10000; pages++) {
        snprintf(url, sizeof url,
                 "%s/v1/jobs?queue=%s&status=completed&limit=1000%s%s",
                 o->nodes[0], o->queue, cursor[0] ? "&cursor=" : "", cursor);
        json_t *page = get_json(c, url), *j;
        size_t i;
        if (page == NULL) {
            return n;
        }
        json_array_foreach(json_object_get(page, "jobs"), i, j)
        {
            if (lat != NULL && n < max) {
                double cr = parse_time(
                    json_string_value(json_object_get(j, "created_at")));
                double st = parse_time(
                    json_string_value(json_object_get(j, "started_at")));
                lat[n] = (st - cr) * 1000.0;
            }
            n++;
        }
        const char *next =
            json_string_value(json_object_get(page, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next != NULL ? next : "");
        json_decref(page);
        if (cursor[0] == '\0') {
            return n;
        }
    }
    return n;
}

int bench_e2e(const struct options *o)
{
    pid_t pids[64];
    char servers[4096] = "", conc[16];
    CURL *c = curl_easy_init();
    double t0, t_done = 0;
    long done = 0;
    int rv;

    for (int i = 0; i < o->n_nodes; i++) {
        size_t n = strlen(servers);
        snprintf(servers + n, sizeof servers - n, "%s%s", i ? "," : "",
                 o->nodes[i]);
    }
    snprintf(conc, sizeof conc, "%d", o->worker_conc);
    for (int w = 0; w < o->workers; w++) {
        pids[w] = fork();
        if (pids[w] == 0) {
            char name[64];
            snprintf(name, sizeof name, "bench-%d-%d", (int)getppid(), w);
            freopen("/dev/null", "w", stdout);
            execl(o->worker_bin, o->worker_bin, "--servers", servers,
                  "--queues", o->queue, "--concurrency", conc, "--name", name,
                  (char *)NULL);
            _exit(127);
        }
    }
    t0 = now_s();
    rv = bench_submit(o); /* Prints its own JSON line (mode submit). */
    while (now_s() - t0 < o->limit_s) {
        struct timespec tick = {0, 200 * 1000 * 1000};
        done = count_completed(c, o, NULL, 0);
        fprintf(stderr, "rota-bench: %.0fs %ld of %ld jobs completed\n",
                now_s() - t0, done, o->jobs);
        if (done >= o->jobs) {
            t_done = now_s();
            break;
        }
        nanosleep(&tick, NULL);
    }
    for (int w = 0; w < o->workers; w++) {
        kill(pids[w], SIGTERM);
    }
    for (int w = 0; w < o->workers; w++) {
        waitpid(pids[w], NULL, 0);
    }
    double *lat = calloc((size_t)o->jobs + 1, sizeof *lat);
    long m = count_completed(c, o, lat, o->jobs);
    if (m > o->jobs) {
        m = o->jobs;
    }
    qsort(lat, (size_t)m, sizeof *lat, cmp_double);
    double secs = (t_done > 0 ? t_done : now_s()) - t0;
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
