/* rota-bench: load generator and measurement harness.
 *
 *   rota-bench submit --nodes URL[,URL...] --jobs N --concurrency C
 *                     [--batch K] [--spread]
 *                     [--payload-bytes B] [--duration-limit S]
 *
 * Submits N noop jobs over C keep-alive connections (h2o's HTTP/1.1 client
 * on one libuv loop), K jobs per request in batch mode, and prints ONE JSON
 * line:
 *   {"mode":"submit","jobs":N,"ok":..,"errors":..,"seconds":..,
 *    "jobs_per_s":..,"requests_per_s":..,"latency_ms":{"p50","p99","max"}}
 * Progress goes to stderr once a second. The run stops after N jobs or the
 * duration limit, whichever comes first.
 *
 * Modes e2e (e2e.c) and delayed (delayed.c) start rota-workers and read the
 * jobs back; the helpers they share are at the end of this file. */

#include <arpa/inet.h>
#include <curl/curl.h>
#include <getopt.h>
#include <h2o.h>
#include <h2o/http1client.h>
#include <jansson.h>
#include <netdb.h>
#include <signal.h>
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

/* ---- The load loop ----------------------------------------------------
 * One libuv loop with h2o's HTTP/1.1 client: one keep-alive socket pool per
 * node, one request in flight per slot (C slots in all), the request
 * written as one head and one body buffer. A slot's next request starts
 * from the loop's idle phase, after h2o has put the answered connection
 * back into its pool, so C slots keep C connections.
 * h2o's client never retries: a failed request counts as an error.
 * (libcurl's multi interface spent ~32 µs of CPU per request here, about
 * a third of the whole machine's cost per job: bench/README.md.) */

struct target
{
    h2o_socketpool_t pool;
    h2o_http1client_ctx_t ctx;
    SSL_CTX *ssl;
    char host[256];      /* The URL's host, no brackets: the certificate. */
    char authority[280]; /* host[:port] as in the URL: the Host header. */
};

struct slot
{
    struct load *ld;
    struct target *t;
    struct slot *next_start; /* Queued for the idle phase. */
    long req;
    int n_jobs; /* In this request. */
    int status;
    double start;
    /* Own body (delayed: run_at of this request; the last, short batch), or
     * NULL. */
    char *body;
    char head[1024];
    h2o_iovec_t bufs[2];
};

/* One run of the load loop. */
struct load
{
    const struct options *o;
    char *body; /* Of every request but the delayed ones and the last. */
    size_t body_len;
    long n_reqs;
    long next_req; /* Requests handed out. */
    long ok_jobs;
    long errors;
    bool stop;   /* The duration limit: start no more requests. */
    bool told;   /* The first error was reported. */
    double *lat; /* Per request, ms. */
    double t0, last_progress;
    int active; /* Slots with a request in flight or queued. */
    uv_loop_t loop;
    uv_idle_t idle;  /* Runs while slots wait to start their next request. */
    uv_timer_t tick; /* Progress and the duration limit. */
    h2o_timeout_t io_timeout;
    struct target *targets; /* o->n_nodes */
    struct slot *slots;     /* o->concurrency */
    struct slot *to_start;
};

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client,
                                          const char *errstr,
                                          h2o_iovec_t **reqbufs,
                                          size_t *reqbufcnt,
                                          int *method_is_head);
static void on_idle(uv_idle_t *idle);

/* Start slot @s's next request; 0 when the run has no more for it. */
static int slot_start(struct slot *s)
{
    struct load *ld = s->ld;
    const struct options *o = ld->o;
    long req = ld->next_req;
    const char *body = ld->body;
    size_t body_len = ld->body_len;

    if (req >= ld->n_reqs || ld->stop) {
        return 0;
    }
    ld->next_req++;
    s->req = req;
    s->n_jobs = o->jobs - req * o->batch < o->batch
                    ? (int)(o->jobs - req * o->batch)
                    : o->batch;
    if (o->delay_ms > 0 || s->n_jobs != o->batch) {
        char run_at[80];
        if (o->delay_ms > 0) {
            /* Every job of the request is due delay_ms after it is sent. */
            format_run_at(o->delay_ms, run_at, sizeof run_at);
        }
        free(s->body);
        s->body =
            make_body(o, s->n_jobs, o->delay_ms > 0 ? run_at : NULL, &body_len);
        body = s->body;
    }
    int n = snprintf(s->head, sizeof s->head,
                     "POST /v1/jobs HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Type: application/json\r\n%s%s"
                     "Content-Length: %zu\r\n\r\n",
                     s->t->authority, creds.auth, creds.auth[0] ? "\r\n" : "",
                     body_len);
    s->bufs[0] = h2o_iovec_init(s->head, (size_t)n);
    s->bufs[1] = h2o_iovec_init(body, body_len);
    s->status = 0;
    s->start = bench_now();
    h2o_http1client_connect_with_pool(NULL, s, &s->t->ctx, &s->t->pool,
                                      on_connect);
    return 1;
}

/* The request of @s is over (h2o frees its client after this callback):
 * count it and queue the slot's next one for the idle phase. */
static void slot_done(struct slot *s, const char *err)
{
    struct load *ld = s->ld;
    ld->lat[s->req] = (bench_now() - s->start) * 1000.0;
    if (err == NULL) {
        ld->ok_jobs += s->n_jobs;
    } else {
        ld->errors++;
        if (!ld->told) {
            ld->told = true;
            fprintf(stderr, "rota-bench: first error: %s (%s)\n", err,
                    s->t->host);
        }
    }
    s->next_start = ld->to_start;
    ld->to_start = s;
    uv_idle_start(&ld->idle, on_idle);
}

static int on_body(h2o_http1client_t *client, const char *errstr)
{
    struct slot *s = client->data;
    if (errstr == NULL) {
        h2o_buffer_consume(&client->sock->input, client->sock->input->size);
        return 0;
    }
    if (errstr != h2o_http1client_error_is_eos) {
        slot_done(s, errstr);
    } else if (s->status != 200 && s->status != 201) {
        char what[64];
        snprintf(what, sizeof what, "HTTP status %d", s->status);
        slot_done(s, what);
    } else {
        slot_done(s, NULL);
    }
    return 0;
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client,
                                       const char *errstr,
                                       int minor_version,
                                       int status,
                                       h2o_iovec_t msg,
                                       h2o_header_t *headers,
                                       size_t num_headers,
                                       int rlen)
{
    struct slot *s = client->data;
    (void)minor_version, (void)msg, (void)headers, (void)num_headers,
        (void)rlen;
    if (errstr != NULL) { /* An error, or an answer without a body. */
        slot_done(s, errstr == h2o_http1client_error_is_eos
                         ? "an answer without a body"
                         : errstr);
        return NULL;
    }
    s->status = status;
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client,
                                          const char *errstr,
                                          h2o_iovec_t **reqbufs,
                                          size_t *reqbufcnt,
                                          int *method_is_head)
{
    struct slot *s = client->data;
    if (errstr != NULL) {
        slot_done(s, errstr);
        return NULL;
    }
    *reqbufs = s->bufs;
    *reqbufcnt = 2;
    *method_is_head = 0;
    return on_head;
}

static void on_idle(uv_idle_t *idle)
{
    struct load *ld = idle->data;
    struct slot *s = ld->to_start;
    ld->to_start = NULL;
    while (s != NULL) {
        struct slot *next = s->next_start;
        if (!slot_start(s)) {
            ld->active--;
        }
        s = next;
    }
    if (ld->to_start == NULL) {
        uv_idle_stop(idle);
    }
}

/* Connections verify the node against the CA, by the name or address its
 * URL gives. h2o 2.2.5 matches that name itself against DNS names only,
 * so a node certificate for an IP address fails its check, and it gives up
 * on a mismatch only when the context demands verification. So the context
 * says none, and every connection demands it from OpenSSL as its handshake
 * starts: OpenSSL checks the chain and the host or IP (the context's
 * X509_VERIFY_PARAM) and fails the handshake when either is wrong. */
static void demand_verify(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if ((where & SSL_CB_HANDSHAKE_START) != 0) {
        SSL_set_verify((SSL *)ssl, SSL_VERIFY_PEER, NULL);
    }
}

static SSL_CTX *client_tls(const char *host)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    X509_VERIFY_PARAM *param;
    unsigned char ip[16];
    int ok;

    if (ctx == NULL) {
        return NULL;
    }
    ok = creds.ca_file[0] != '\0'
             ? SSL_CTX_load_verify_locations(ctx, creds.ca_file, NULL)
             : SSL_CTX_set_default_verify_paths(ctx);
    param = SSL_CTX_get0_param(ctx);
    if (inet_pton(AF_INET, host, ip) == 1 ||
        inet_pton(AF_INET6, host, ip) == 1) {
        ok = ok && X509_VERIFY_PARAM_set1_ip_asc(param, host);
    } else {
        ok = ok && X509_VERIFY_PARAM_set1_host(param, host, 0);
    }
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_info_callback(ctx, demand_verify);
    return ctx;
}

/* A node's URL ("http[s]://host[:port]", h2o's parser) into @t; -1 on a bad
 * URL or an unknown host. */
static int target_init(struct target *t,
                       const char *url,
                       uv_loop_t *loop,
                       h2o_timeout_t *io_timeout)
{
    h2o_url_t u;
    char port[8];
    struct addrinfo hints, *ai = NULL;
    int tls;

    memset(t, 0, sizeof *t);
    if (h2o_url_parse(url, strlen(url), &u) != 0 ||
        u.host.len >= sizeof t->host ||
        u.authority.len >= sizeof t->authority) {
        return -1;
    }
    tls = u.scheme == &H2O_URL_SCHEME_HTTPS;
    memcpy(t->host, u.host.base, u.host.len);
    memcpy(t->authority, u.authority.base, u.authority.len);
    snprintf(port, sizeof port, "%u", (unsigned)h2o_url_get_port(&u));
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(t->host, port, &hints, &ai) != 0) {
        return -1;
    }
    if (tls && (t->ssl = client_tls(t->host)) == NULL) {
        freeaddrinfo(ai);
        return -1;
    }
    h2o_socketpool_init_by_address(&t->pool, ai->ai_addr, ai->ai_addrlen, tls,
                                   SIZE_MAX);
    /* Needed: taking a socket from the pool reads the time of this loop. An
     * idle socket is closed after 5 s, below the nodes' keep-alive. */
    h2o_socketpool_set_timeout(&t->pool, loop, 5000);
    freeaddrinfo(ai);
    t->ctx.loop = loop;
    t->ctx.io_timeout = io_timeout;
    t->ctx.ssl_ctx = t->ssl;
    return 0;
}

static void on_tick(uv_timer_t *tick)
{
    struct load *ld = tick->data;
    double now = bench_now(), secs = now - ld->t0;
    if (now - ld->last_progress >= 1.0) {
        ld->last_progress = now;
        fprintf(stderr,
                "rota-bench: %.0fs %ld jobs ok, %ld errors, %.0f jobs/s\n",
                secs, ld->ok_jobs, ld->errors, (double)ld->ok_jobs / secs);
    }
    if (secs > ld->o->limit_s && !ld->stop) {
        fprintf(stderr, "rota-bench: duration limit reached, stopping\n");
        ld->stop = true;
    }
}

/* Run every request of @ld to its end (or the duration limit). -1 if a
 * node's URL cannot be used. */
static int run_load(struct load *ld)
{
    const struct options *o = ld->o;
    int n_targets = 0, rv = 0;

    uv_loop_init(&ld->loop);
    h2o_timeout_init(&ld->loop, &ld->io_timeout, 30000);
    ld->targets = calloc((size_t)o->n_nodes, sizeof *ld->targets);
    ld->slots = calloc((size_t)o->concurrency, sizeof *ld->slots);
    for (; n_targets < o->n_nodes; n_targets++) {
        if (target_init(&ld->targets[n_targets], o->nodes[n_targets], &ld->loop,
                        &ld->io_timeout) != 0) {
            fprintf(stderr,
                    "rota-bench: cannot use %s (bad URL, unknown host or CA "
                    "file)\n",
                    o->nodes[n_targets]);
            rv = -1;
            break;
        }
    }
    uv_idle_init(&ld->loop, &ld->idle);
    ld->idle.data = ld;
    uv_timer_init(&ld->loop, &ld->tick);
    ld->tick.data = ld;
    uv_timer_start(&ld->tick, on_tick, 100, 100);
    ld->t0 = ld->last_progress = bench_now();
    for (int i = 0; rv == 0 && i < o->concurrency; i++) {
        struct slot *s = &ld->slots[i];
        s->ld = ld;
        s->t = &ld->targets[o->spread ? i % o->n_nodes : 0];
        ld->active += slot_start(s);
    }
    while (ld->active > 0) {
        uv_run(&ld->loop, UV_RUN_ONCE);
    }
    for (int i = 0; i < n_targets; i++) {
        h2o_socketpool_dispose(&ld->targets[i].pool);
        SSL_CTX_free(ld->targets[i].ssl);
    }
    for (int i = 0; i < o->concurrency; i++) {
        free(ld->slots[i].body);
    }
    uv_close((uv_handle_t *)&ld->idle, NULL);
    uv_close((uv_handle_t *)&ld->tick, NULL);
    h2o_timeout_dispose(&ld->loop, &ld->io_timeout);
    uv_run(&ld->loop, UV_RUN_DEFAULT); /* The closes. */
    uv_loop_close(&ld->loop);
    free(ld->targets);
    free(ld->slots);
    return rv;
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
    struct load ld;
    double secs;
    long done_reqs, m = 0;
    int rv;

    memset(&ld, 0, sizeof ld);
    ld.o = o;
    ld.n_reqs = (o->jobs + o->batch - 1) / o->batch;
    ld.lat = calloc((size_t)ld.n_reqs, sizeof *ld.lat);
    ld.body = make_body(o, o->batch, NULL, &ld.body_len);
    rv = run_load(&ld);
    secs = bench_now() - ld.t0;
    done_reqs = ld.next_req;
    /* Unfinished slots (stopped early) are zero: keep only measured ones. */
    for (long i = 0; i < done_reqs; i++) {
        if (ld.lat[i] > 0) {
            ld.lat[m++] = ld.lat[i];
        }
    }
    qsort(ld.lat, (size_t)m, sizeof *ld.lat, bench_cmp_double);
    if (ok_jobs != NULL) {
        *ok_jobs = ld.ok_jobs;
    }
    if (!o->quiet && rv == 0) {
        printf(
            "{\"mode\":\"submit\",\"nodes\":%d,\"jobs\":%ld,\"batch\":%d,"
            "\"concurrency\":%d,\"ok\":%ld,\"errors\":%ld,\"seconds\":%.3f,"
            "\"jobs_per_s\":%.0f,\"requests_per_s\":%.0f,\"latency_ms\":{"
            "\"p50\":%.2f,\"p99\":%.2f,\"max\":%.2f}}\n",
            o->n_nodes, o->jobs, o->batch, o->concurrency, ld.ok_jobs,
            ld.errors, secs, (double)ld.ok_jobs / secs, (double)m / secs,
            m > 0 ? ld.lat[m / 2] : 0, m > 0 ? ld.lat[(m * 99) / 100] : 0,
            m > 0 ? ld.lat[m - 1] : 0);
    }
    free(ld.lat);
    free(ld.body);
    return rv == 0 && ld.errors == 0 ? 0 : 1;
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
        "         [--concurrency C (32, at most 4096)] [--batch K (1)]\n"
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
    static const struct option opts[] = {{"nodes", 1, 0, 'n'},
                                         {"jobs", 1, 0, 'j'},
                                         {"concurrency", 1, 0, 'c'},
                                         {"batch", 1, 0, 'b'},
                                         {"payload-bytes", 1, 0, 'p'},
                                         {"duration-limit", 1, 0, 'd'},
                                         {"spread", 0, 0, 's'},
                                         {"workers", 1, 0, 'w'},
                                         {"worker-concurrency", 1, 0, 'W'},
                                         {"worker-bin", 1, 0, 'B'},
                                         {"delay", 1, 0, 'D'},
                                         {"ca-file", 1, 0, 'A'},
                                         {"token-file", 1, 0, 'T'},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct options o;
    char nodes[4096] = "http://127.0.0.1:8001";
    int c, conc_given = 0;
    const char *ca_file = NULL, *token_file = NULL;

    memset(&o, 0, sizeof o);
    o.jobs = 20000;
    o.concurrency = 32;
    o.batch = 1;
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
    if (o.jobs < 1 || o.concurrency < 1 || o.concurrency > 4096 ||
        o.batch < 1 || o.batch > 1000 || o.payload_bytes < 0 ||
        o.payload_bytes > 65000 || o.limit_s <= 0) {
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
