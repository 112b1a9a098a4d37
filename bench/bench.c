/* rota-bench: load generator and measurement harness.
 *
 *   rota-bench submit --nodes URL[,URL...] --jobs N --concurrency C
 *                     [--batch K] [--threads T] [--spread]
 *                     [--payload-bytes B] [--duration-limit S]
 *
 * Submits N noop jobs over C keep-alive connections (libcurl multi, one per
 * thread), K jobs per request in batch mode, and prints ONE JSON line:
 *   {"mode":"submit","jobs":N,"ok":..,"errors":..,"seconds":..,
 *    "jobs_per_s":..,"requests_per_s":..,"latency_ms":{"p50","p99","max"}}
 * Progress goes to stderr once a second. The run stops after N jobs or the
 * duration limit, whichever comes first.
 *
 * Modes e2e (e2e.c) and delayed (delayed.c) start rota-workers and read the
 * jobs back; the helpers they share are at the end of this file. */

#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "common/buf.h"
#include "common/creds.h"
#include "common/duration.h"

/* --ca-file / --token-file (or ROTA_CA_FILE, ROTA_TOKEN...): every request
 * verifies HTTPS against the CA and carries the token. The workers that
 * e2e/delayed start get the same through the environment. */
static struct creds creds;

struct shared
{
    const struct options *o;
    char *body;
    size_t body_len;
    atomic_long next_req; /* Requests handed out. */
    atomic_long ok_jobs;
    atomic_long errors;
    atomic_int stop;
    atomic_int finished; /* Worker threads done. */
    long n_reqs;
    double *lat; /* Per request, ms. */
    double t0;
};

struct conn
{
    CURL *easy;
    struct curl_slist *hdr;
    long req;
    int n_jobs; /* In this request. */
    double start;
    /* Own body (delayed: run_at of this request; the last, short batch), or
     * NULL. */
    char *body;
};

/* now (wall clock) + @delay_ms as the API writes times: RFC 3339 UTC, ms. */
static void format_run_at(long delay_ms, char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    long long ms;
    time_t secs;

    clock_gettime(CLOCK_REALTIME, &ts);
    ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + delay_ms;
    secs = (time_t)(ms / 1000);
    gmtime_r(&secs, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ms % 1000));
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t discard(char *p, size_t s, size_t n, void *d)
{
    (void)p;
    (void)d;
    return s * n;
}

static int arm(struct shared *sh, CURLM *multi, struct conn *c, int idx)
{
    const struct options *o = sh->o;
    long req = atomic_fetch_add(&sh->next_req, 1);
    char url[300];

    if (req >= sh->n_reqs || atomic_load(&sh->stop)) {
        return 0;
    }
    c->req = req;
    c->n_jobs = o->jobs - req * o->batch < o->batch
                    ? (int)(o->jobs - req * o->batch)
                    : o->batch;
    const char *body = sh->body;
    size_t body_len = sh->body_len;
    if (o->delay_ms > 0 || c->n_jobs != o->batch) {
        char run_at[80];
        if (o->delay_ms > 0) {
            /* Every job of the request is due delay_ms after it is sent. */
            format_run_at(o->delay_ms, run_at, sizeof run_at);
        }
        free(c->body);
        c->body =
            make_body(o, c->n_jobs, o->delay_ms > 0 ? run_at : NULL, &body_len);
        body = c->body;
    }
    c->start = bench_now();
    snprintf(url, sizeof url, "%s/v1/jobs",
             o->nodes[o->spread ? (idx % o->n_nodes) : 0]);
    curl_easy_setopt(c->easy, CURLOPT_URL, url);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)body_len);
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->hdr);
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c->easy, CURLOPT_TCP_NODELAY, 1L);
    if (creds.ca_file[0] != '\0') {
        curl_easy_setopt(c->easy, CURLOPT_CAINFO, creds.ca_file);
    }
    curl_multi_add_handle(multi, c->easy);
    return 1;
}

struct worker
{
    struct shared *sh;
    int conns;
    int first;
};

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    CURLM *multi = curl_multi_init();
    struct conn *cs = calloc((size_t)w->conns, sizeof *cs);
    int active = 0;

    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)w->conns);
    for (int i = 0; i < w->conns; i++) {
        cs[i].easy = curl_easy_init();
        /* No SIGALRM-based DNS timeouts: without this libcurl calls
         * sigaction twice per transfer (~20 syscalls per request seen). */
        curl_easy_setopt(cs[i].easy, CURLOPT_NOSIGNAL, 1L);
        cs[i].hdr = curl_slist_append(NULL, "Content-Type: application/json");
        cs[i].hdr = curl_slist_append(cs[i].hdr, "Expect:");
        if (creds.auth[0] != '\0') {
            cs[i].hdr = curl_slist_append(cs[i].hdr, creds.auth);
        }
        active += arm(sh, multi, &cs[i], w->first + i);
    }
    while (active > 0) {
        int running;
        CURLMsg *m;
        int left;
        curl_multi_perform(multi, &running);
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            struct conn *c;
            long status = 0;
            if (m->msg != CURLMSG_DONE) {
                continue;
            }
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
            curl_multi_remove_handle(multi, c->easy);
            sh->lat[c->req] = (bench_now() - c->start) * 1000.0;
            if (m->data.result == CURLE_OK &&
                (status == 200 || status == 201)) {
                atomic_fetch_add(&sh->ok_jobs, c->n_jobs);
            } else {
                atomic_fetch_add(&sh->errors, 1);
            }
            active--;
            active += arm(sh, multi, c, w->first + (int)(c - cs));
        }
        if (active > 0) {
            curl_multi_poll(multi, NULL, 0, 100, NULL);
        }
    }
    for (int i = 0; i < w->conns; i++) {
        curl_slist_free_all(cs[i].hdr);
        curl_easy_cleanup(cs[i].easy);
        free(cs[i].body);
    }
    free(cs);
    curl_multi_cleanup(multi);
    atomic_fetch_add(&sh->finished, 1);
    return NULL;
}

int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

char *make_body(const struct options *o,
                int n_jobs,
                const char *run_at,
                size_t *len)
{
    /* {"type":"noop","queue":"","payload":{"p":""},"run_at":""}: 58. An
     * array (batch > 1) even when n_jobs is 1, so every answer is alike. */
    size_t one_len = (size_t)o->payload_bytes + sizeof o->queue + 7 + 64 +
                     (run_at != NULL ? strlen(run_at) : 0);
    size_t cap = one_len * (size_t)o->batch + 16;
    char *body = malloc(cap), *pad = malloc((size_t)o->payload_bytes + 1);
    size_t n = 0;

    memset(pad, 'x', (size_t)o->payload_bytes);
    pad[o->payload_bytes] = '\0';
    if (o->batch > 1) {
        body[n++] = '[';
    }
    for (int i = 0; i < n_jobs; i++) {
        n += (size_t)snprintf(
            body + n, cap - n,
            "%s{\"type\":\"noop\",\"queue\":\"%s\",\"payload\":{\"p\":"
            "\"%s\"}%s%s%s}",
            i > 0 ? "," : "", o->queue[0] != '\0' ? o->queue : "default", pad,
            run_at != NULL ? ",\"run_at\":\"" : "",
            run_at != NULL ? run_at : "", run_at != NULL ? "\"" : "");
    }
    if (o->batch > 1) {
        body[n++] = ']';
    }
    body[n] = '\0';
    free(pad);
    *len = n;
    return body;
}

int bench_submit(const struct options *o)
{
    return bench_submit_ok(o, NULL);
}

int bench_submit_ok(const struct options *o, long *ok_jobs)
{
    struct shared sh;
    pthread_t th[16];
    struct worker ws[16];
    int per = o->concurrency / o->threads, extra = o->concurrency % o->threads;
    double t_end, secs;
    long done_reqs;

    memset(&sh, 0, sizeof sh);
    sh.o = o;
    sh.n_reqs = (o->jobs + o->batch - 1) / o->batch;
    sh.lat = calloc((size_t)sh.n_reqs, sizeof *sh.lat);
    sh.body = make_body(o, o->batch, NULL, &sh.body_len);
    sh.t0 = bench_now();
    for (int t = 0, first = 0; t < o->threads; t++) {
        ws[t].sh = &sh;
        ws[t].conns = per + (t < extra);
        ws[t].first = first;
        first += ws[t].conns;
        pthread_create(&th[t], NULL, run_worker, &ws[t]);
    }
    double last = sh.t0;
    while (atomic_load(&sh.finished) < o->threads) {
        struct timespec tick = {0, 50 * 1000 * 1000};
        nanosleep(&tick, NULL);
        secs = bench_now() - sh.t0;
        if (bench_now() - last >= 1.0) {
            long ok = atomic_load(&sh.ok_jobs);
            last = bench_now();
            fprintf(stderr,
                    "rota-bench: %.0fs %ld jobs ok, %ld errors, %.0f jobs/s\n",
                    secs, ok, atomic_load(&sh.errors), (double)ok / secs);
        }
        if (secs > o->limit_s && !atomic_load(&sh.stop)) {
            fprintf(stderr, "rota-bench: duration limit reached, stopping\n");
            atomic_store(&sh.stop, 1);
        }
    }
    for (int t = 0; t < o->threads; t++) {
        pthread_join(th[t], NULL);
    }
    t_end = bench_now();
    secs = t_end - sh.t0;
    done_reqs = atomic_load(&sh.next_req);
    if (done_reqs > sh.n_reqs) {
        done_reqs = sh.n_reqs;
    }
    /* Unfinished slots (stopped early) are zero: keep only measured ones. */
    long m = 0;
    for (long i = 0; i < done_reqs; i++) {
        if (sh.lat[i] > 0) {
            sh.lat[m++] = sh.lat[i];
        }
    }
    qsort(sh.lat, (size_t)m, sizeof *sh.lat, bench_cmp_double);
    if (ok_jobs != NULL) {
        *ok_jobs = atomic_load(&sh.ok_jobs);
    }
    if (!o->quiet) {
        printf(
            "{\"mode\":\"submit\",\"nodes\":%d,\"jobs\":%ld,\"batch\":%d,"
            "\"concurrency\":%d,\"ok\":%ld,\"errors\":%ld,\"seconds\":%.3f,"
            "\"jobs_per_s\":%.0f,\"requests_per_s\":%.0f,\"latency_ms\":{"
            "\"p50\":%.2f,\"p99\":%.2f,\"max\":%.2f}}\n",
            o->n_nodes, o->jobs, o->batch, o->concurrency,
            atomic_load(&sh.ok_jobs), atomic_load(&sh.errors), secs,
            (double)atomic_load(&sh.ok_jobs) / secs, (double)m / secs,
            m > 0 ? sh.lat[m / 2] : 0, m > 0 ? sh.lat[(m * 99) / 100] : 0,
            m > 0 ? sh.lat[m - 1] : 0);
    }
    free(sh.lat);
    free(sh.body);
    return atomic_load(&sh.errors) == 0 ? 0 : 1;
}

/* ---- Shared by the modes that read jobs back and start workers. ---- */

json_t *bench_get_json(CURL *c, const char *url)
{
    struct curl_slist *h = NULL;
    struct buf b;
    long status = 0;
    json_t *out = NULL;
    buf_init(&b, 0);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (creds.auth[0] != '\0') {
        h = curl_slist_append(h, creds.auth);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    }
    if (creds.ca_file[0] != '\0') {
        curl_easy_setopt(c, CURLOPT_CAINFO, creds.ca_file);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_curl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (curl_easy_perform(c) == CURLE_OK && b.p != NULL &&
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
        status == 200) {
        out = json_loads(b.p, 0, NULL);
    }
    buf_free(&b);
    curl_slist_free_all(h);
    return out;
}

double bench_parse_time(const char *s)
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

long bench_count_completed(CURL *c, const struct options *o)
{
    char url[1024];
    long n = -1;

    snprintf(url, sizeof url, "%s/v1/queues/%s", o->nodes[0], o->queue);
    json_t *q = bench_get_json(c, url);
    json_t *v = json_object_get(json_object_get(q, "counts"), "completed");
    if (json_is_integer(v)) {
        n = (long)json_integer_value(v);
    }
    json_decref(q);
    return n;
}

long bench_read_completed(CURL *c,
                          const struct options *o,
                          const char *from,
                          double *ms,
                          long max,
                          long *bad)
{
    char url[2048], cursor[1300] = "";
    long n = 0;
    for (int pages = 0; pages < 10000; pages++) {
        snprintf(url, sizeof url,
                 "%s/v1/jobs?queue=%s&status=completed&limit=1000%s%s",
                 o->nodes[0], o->queue, cursor[0] ? "&cursor=" : "", cursor);
        json_t *page = bench_get_json(c, url), *j;
        size_t i;
        if (page == NULL) {
            return -1;
        }
        json_array_foreach(json_object_get(page, "jobs"), i, j)
        {
            if (n < max) {
                double t0 = bench_parse_time(
                    json_string_value(json_object_get(j, from)));
                double st = bench_parse_time(
                    json_string_value(json_object_get(j, "started_at")));
                if (t0 < 0 || st < 0) {
                    if (bad != NULL) {
                        (*bad)++;
                    }
                    continue;
                }
                ms[n] = (st - t0) * 1000.0;
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

/* Workers of this process, for the signal handler. */
static pid_t *started_pids;
static int n_started;

static void kill_started(void)
{
    for (int w = 0; w < n_started; w++) {
        if (started_pids[w] > 0) {
            kill(started_pids[w], SIGTERM);
        }
    }
}

static void on_signal(int sig)
{
    kill_started(); /* kill(2) is async-signal-safe. */
    _exit(128 + sig);
}

int bench_start_workers(const struct options *o, pid_t *pids)
{
    char servers[4096] = "", conc[16];
    struct sigaction sa;
    sigset_t block, old;

    if (access(o->worker_bin, X_OK) != 0) {
        fprintf(stderr, "rota-bench: no worker binary at %s (--worker-bin)\n",
                o->worker_bin);
        return -1;
    }
    for (int i = 0; i < o->n_nodes; i++) {
        size_t n = strlen(servers);
        snprintf(servers + n, sizeof servers - n, "%s%s", i ? "," : "",
                 o->nodes[i]);
    }
    snprintf(conc, sizeof conc, "%d", o->worker_conc);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    started_pids = pids;
    n_started = 0;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    fflush(NULL);
    /* No signal between fork and recording the pid. */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    for (int w = 0; w < o->workers; w++) {
        sigprocmask(SIG_BLOCK, &block, &old);
        pid_t pid = fork();
        if (pid < 0) {
            perror("rota-bench: fork");
            sigprocmask(SIG_SETMASK, &old, NULL);
            return -1;
        }
        if (pid == 0) {
            char name[64];
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            signal(SIGHUP, SIG_DFL);
            sigprocmask(SIG_SETMASK, &old, NULL);
            snprintf(name, sizeof name, "bench-%d-%d", (int)getppid(), w);
            if (freopen("/dev/null", "w", stdout) == NULL) {
                _exit(127);
            }
            execl(o->worker_bin, o->worker_bin, "--servers", servers,
                  "--queues", o->queue, "--concurrency", conc, "--name", name,
                  (char *)NULL);
            _exit(127);
        }
        pids[w] = pid;
        n_started = w + 1;
        sigprocmask(SIG_SETMASK, &old, NULL);
    }
    return 0;
}

int bench_workers_exited(pid_t *pids)
{
    int gone = 0;
    for (int w = 0; w < n_started; w++) {
        int st;
        if (pids[w] > 0 && waitpid(pids[w], &st, WNOHANG) == pids[w]) {
            fprintf(stderr, "rota-bench: worker %d (pid %d) exited (%s %d)\n",
                    w, (int)pids[w], WIFEXITED(st) ? "status" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            pids[w] = 0;
        }
        gone += pids[w] <= 0;
    }
    return gone;
}

void bench_stop_workers(pid_t *pids)
{
    kill_started();
    for (int w = 0; w < n_started; w++) {
        if (pids[w] > 0) {
            waitpid(pids[w], NULL, 0);
            pids[w] = 0;
        }
    }
    n_started = 0;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
}

/* A duration ("2s", "1.5s", "250ms", "1m": common/duration.h) or a number
 * of seconds; -1 if neither. */
static long parse_delay_ms(const char *s)
{
    int64_t ms;
    char secs[64];
    if (duration_parse_ms(s, 86400000, &ms) == 0) {
        return (long)ms;
    }
    snprintf(secs, sizeof secs, "%ss", s); /* A plain number: seconds. */
    return duration_parse_ms(secs, 86400000, &ms) == 0 ? (long)ms : -1;
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: rota-bench MODE ... [--ca-file F] [--token-file F] (or env\n"
        "         ROTA_CA_FILE, ROTA_TOKEN, ROTA_TOKEN_FILE)\n"
        "       rota-bench submit --nodes URL[,URL...] [--jobs N (20000)]\n"
        "         [--concurrency C (32)] [--batch K (1)] [--threads T (2)]\n"
        "         [--spread] [--payload-bytes B (16)] "
        "[--duration-limit S (120)]\n"
        "  Submits N noop jobs over C keep-alive connections to the first\n"
        "  node (all nodes round-robin with --spread) and prints one JSON "
        "line.\n"
        "       rota-bench e2e --nodes URL[,URL...] [--jobs N] [--workers W "
        "(4)]\n"
        "         [--worker-concurrency C (64)] [--worker-bin PATH] [--batch K "
        "(100)]\n"
        "  Starts W rota-workers on a queue of its own, submits N noop jobs,\n"
        "  waits for them and prints completed jobs/s and submit-to-start\n"
        "  percentiles.\n"
        "       rota-bench delayed --nodes URL[,URL...] [--jobs N] [--delay D "
        "(2s)]\n"
        "         [--workers W (4)] [--worker-concurrency C (64)] "
        "[--worker-bin PATH]\n"
        "         [--batch K (100)]\n"
        "  Starts W rota-workers on a queue of its own, submits N noop jobs\n"
        "  each due D after its request is sent (run_at), waits for them and\n"
        "  prints lateness percentiles (started_at - run_at).\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"nodes", 1, 0, 'n'},          {"jobs", 1, 0, 'j'},
        {"concurrency", 1, 0, 'c'},    {"batch", 1, 0, 'b'},
        {"threads", 1, 0, 't'},        {"payload-bytes", 1, 0, 'p'},
        {"duration-limit", 1, 0, 'd'}, {"spread", 0, 0, 's'},
        {"workers", 1, 0, 'w'},        {"worker-concurrency", 1, 0, 'W'},
        {"worker-bin", 1, 0, 'B'},     {"delay", 1, 0, 'D'},
        {"ca-file", 1, 0, 'A'},        {"token-file", 1, 0, 'T'},
        {"help", 0, 0, 'h'},           {0, 0, 0, 0}};
    struct options o;
    char nodes[4096] = "http://127.0.0.1:8001";
    int c, conc_given = 0;
    const char *ca_file = NULL, *token_file = NULL;

    memset(&o, 0, sizeof o);
    o.jobs = 20000;
    o.concurrency = 32;
    o.batch = 1;
    o.threads = 2;
    o.payload_bytes = 16;
    o.limit_s = 120;
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    bool delayed = strcmp(argv[1], "delayed") == 0;
    bool e2e = strcmp(argv[1], "e2e") == 0;
    if (strcmp(argv[1], "submit") != 0 && !e2e && !delayed) {
        fprintf(stderr, "rota-bench: unknown mode \"%s\" (--help)\n", argv[1]);
        return 2;
    }
    if (delayed) {
        o.delay_ms = 2000;
        o.quiet = 1;
    }
    if (e2e || delayed) {
        o.batch = 100;
        o.workers = 4;
        o.worker_conc = 64;
        snprintf(o.queue, sizeof o.queue, "bench-%d", (int)getpid());
        /* The worker binary next to ours in the build tree. */
        snprintf(o.worker_bin, sizeof o.worker_bin, "%s", argv[0]);
        char *slash = strrchr(o.worker_bin, '/');
        size_t at = slash != NULL ? (size_t)(slash - o.worker_bin) + 1 : 0;
        snprintf(o.worker_bin + at, sizeof o.worker_bin - at,
                 "../worker/rota-worker");
    }
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
            case 'n':
                snprintf(nodes, sizeof nodes, "%s", optarg);
                break;
            case 'j':
                o.jobs = atol(optarg);
                break;
            case 'c':
                o.concurrency = atoi(optarg);
                break;
            case 'b':
                o.batch = atoi(optarg);
                break;
            case 't':
                o.threads = atoi(optarg);
                break;
            case 'p':
                o.payload_bytes = atoi(optarg);
                break;
            case 'd':
                o.limit_s = atof(optarg);
                break;
            case 's':
                o.spread = 1;
                break;
            case 'w':
                o.workers = atoi(optarg);
                break;
            case 'W':
                o.worker_conc = atoi(optarg);
                conc_given = 1;
                break;
            case 'B':
                snprintf(o.worker_bin, sizeof o.worker_bin, "%s", optarg);
                break;
            case 'A':
                ca_file = optarg;
                setenv("ROTA_CA_FILE", optarg, 1); /* For the workers. */
                break;
            case 'T':
                token_file = optarg;
                setenv("ROTA_TOKEN_FILE", optarg, 1);
                break;
            case 'D':
                o.delay_ms = parse_delay_ms(optarg);
                if (!delayed || o.delay_ms < 1) {
                    fprintf(stderr,
                            "rota-bench: --delay is for mode delayed, "
                            "e.g. 2s, 500ms, 1m\n");
                    return 2;
                }
                break;
            case 'h':
                usage(stdout);
                return 0;
            default:
                usage(stderr);
                return 2;
        }
    }
    char err[256];
    if (creds_load(&creds, ca_file, token_file, err, sizeof err) != 0) {
        fprintf(stderr, "rota-bench: %s\n", err);
        return 2;
    }
    if (o.jobs < 1 || o.concurrency < 1 || o.batch < 1 || o.batch > 1000 ||
        o.threads < 1 || o.threads > 16 || o.threads > o.concurrency ||
        o.payload_bytes < 0 || o.payload_bytes > 65000 || o.limit_s <= 0) {
        fprintf(stderr, "rota-bench: option out of range\n");
        return 2;
    }
    char *save = NULL;
    for (char *s = strtok_r(nodes, ",", &save); s != NULL && o.n_nodes < 16;
         s = strtok_r(NULL, ",", &save)) {
        snprintf(o.nodes[o.n_nodes++], sizeof o.nodes[0], "%s%s",
                 strncmp(s, "http", 4) == 0 ? "" : "http://", s);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (delayed && !conc_given && o.workers > 0) {
        /* Lateness should measure the scheduler, not a backlog: by default
         * the workers have a slot for every job of the burst. */
        long per = (o.jobs + o.workers - 1) / o.workers;
        o.worker_conc = per < 64 ? 64 : per > 1024 ? 1024 : (int)per;
    }
    if ((e2e || delayed) &&
        (o.workers < 1 || o.workers > 64 || o.worker_conc < 1)) {
        fprintf(stderr, "rota-bench: --workers 1..64\n");
        return 2;
    }
    int rv = delayed ? bench_delayed(&o)
             : e2e   ? bench_e2e(&o)
                     : bench_submit(&o);
    curl_global_cleanup();
    return rv;
}
