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
 * duration limit, whichever comes first. */

#include <curl/curl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

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
    double start;
};

static double now_s(void)
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
    c->start = now_s();
    snprintf(url, sizeof url, "%s/v1/jobs",
             o->nodes[o->spread ? (idx % o->n_nodes) : 0]);
    curl_easy_setopt(c->easy, CURLOPT_URL, url);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, sh->body);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)sh->body_len);
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->hdr);
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c->easy, CURLOPT_TCP_NODELAY, 1L);
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
        cs[i].hdr = curl_slist_append(NULL, "Content-Type: application/json");
        cs[i].hdr = curl_slist_append(cs[i].hdr, "Expect:");
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
            sh->lat[c->req] = (now_s() - c->start) * 1000.0;
            if (m->data.result == CURLE_OK &&
                (status == 200 || status == 201)) {
                atomic_fetch_add(&sh->ok_jobs, sh->o->batch);
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
    }
    free(cs);
    curl_multi_cleanup(multi);
    atomic_fetch_add(&sh->finished, 1);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

char *make_body(const struct options *o, size_t *len)
{
    size_t one_len = (size_t)o->payload_bytes + 64;
    size_t cap = one_len * (size_t)o->batch + 16;
    char *body = malloc(cap), *pad = malloc((size_t)o->payload_bytes + 1);
    size_t n = 0;

    memset(pad, 'x', (size_t)o->payload_bytes);
    pad[o->payload_bytes] = '\0';
    if (o->batch > 1) {
        body[n++] = '[';
    }
    for (int i = 0; i < o->batch; i++) {
        n += (size_t)snprintf(
            body + n, cap - n,
            "%s{\"type\":\"noop\",\"queue\":\"%s\",\"payload\":{\"p\":"
            "\"%s\"}}",
            i > 0 ? "," : "", o->queue[0] != '\0' ? o->queue : "default", pad);
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
    sh.body = make_body(o, &sh.body_len);
    sh.t0 = now_s();
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
        secs = now_s() - sh.t0;
        if (now_s() - last >= 1.0) {
            long ok = atomic_load(&sh.ok_jobs);
            last = now_s();
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
    t_end = now_s();
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
    qsort(sh.lat, (size_t)m, sizeof *sh.lat, cmp_double);
    printf(
        "{\"mode\":\"submit\",\"nodes\":%d,\"jobs\":%ld,\"batch\":%d,"
        "\"concurrency\":%d,\"ok\":%ld,\"errors\":%ld,\"seconds\":%.3f,"
        "\"jobs_per_s\":%.0f,\"requests_per_s\":%.0f,\"latency_ms\":{"
        "\"p50\":%.2f,\"p99\":%.2f,\"max\":%.2f}}\n",
        o->n_nodes, o->jobs, o->batch, o->concurrency, atomic_load(&sh.ok_jobs),
        atomic_load(&sh.errors), secs, (double)atomic_load(&sh.ok_jobs) / secs,
        (double)m / secs, m > 0 ? sh.lat[m / 2] : 0,
        m > 0 ? sh.lat[(m * 99) / 100] : 0, m > 0 ? sh.lat[m - 1] : 0);
    free(sh.lat);
    free(sh.body);
    return atomic_load(&sh.errors) == 0 ? 0 : 1;
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: rota-bench submit --nodes URL[,URL...] [--jobs N (20000)]\n"
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
        "  percentiles. Mode delayed comes with the scheduling issue.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"nodes", 1, 0, 'n'},
                                         {"jobs", 1, 0, 'j'},
                                         {"concurrency", 1, 0, 'c'},
                                         {"batch", 1, 0, 'b'},
                                         {"threads", 1, 0, 't'},
                                         {"payload-bytes", 1, 0, 'p'},
                                         {"duration-limit", 1, 0, 'd'},
                                         {"spread", 0, 0, 's'},
                                         {"workers", 1, 0, 'w'},
                                         {"worker-concurrency", 1, 0, 'W'},
                                         {"worker-bin", 1, 0, 'B'},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct options o;
    char nodes[4096] = "http://127.0.0.1:8001";
    int c;

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
    bool e2e = strcmp(argv[1], "e2e") == 0;
    if (strcmp(argv[1], "submit") != 0 && !e2e) {
        fprintf(stderr, "rota-bench: mode \"%s\" is not implemented yet\n",
                argv[1]);
        return 2;
    }
    if (e2e) {
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
                break;
            case 'B':
                snprintf(o.worker_bin, sizeof o.worker_bin, "%s", optarg);
                break;
            case 'h':
                usage(stdout);
                return 0;
            default:
                usage(stderr);
                return 2;
        }
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
    if (e2e && (o.workers < 1 || o.workers > 64 || o.worker_conc < 1)) {
        fprintf(stderr, "rota-bench: --workers 1..64\n");
        return 2;
    }
    int rv = e2e ? bench_e2e(&o) : bench_submit(&o);
    curl_global_cleanup();
    return rv;
}
