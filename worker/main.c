/* rota-worker: the lease loop, heartbeats, completions and draining.
 *
 *   rota-worker --servers URL[,URL...] [--queues default,email]
 *               [--concurrency N] [--name NAME] [--output-limit BYTES]
 *               [--drain-timeout S] [--kill-grace S] [--exec-dir DIR]
 *
 * Any server will do: writes are forwarded to the leader. On a connection
 * error or a 5xx the worker rotates to the next server. Results that could
 * not be delivered (e.g. during an election) are kept and sent again until
 * a server gives a definite answer, so no accepted result is lost. */

#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/creds.h"
#define LOG_MODULE "worker"
#include "common/log.h"
#include "worker/worker.h"

struct worker
{
    char *servers[16];
    int n_servers, cur;
    char queues[1024];
    char name[256];
    char host[256]; /* gethostname(): sent at registration ("" = none). */
    int concurrency;
    unsigned drain_s;
    char id[20];
    char secret[80];    /* This registration's, sent with every call. */
    struct creds creds; /* --ca-file, the ACL token. */
    unsigned heartbeat_ms;
    pthread_mutex_t lock;
    pthread_cond_t work;      /* A run was queued, or the pool stops. */
    pthread_cond_t slot_free; /* A run ended. */
    pthread_t *pool;          /* --concurrency threads, made at start. */
    int n_pool;
    struct run *runs;   /* Every lease held: queued or running (linked). */
    struct run *queue;  /* Leased, waiting for a pool thread (FIFO). */
    struct run **qtail; /* Where the next queued run goes. */
    int n_running;      /* Leases held (length of runs). */
    int idle;           /* Pool threads waiting on @work. */
    int waking;         /* Of those, signalled and not yet back. */
    bool stop_pool;
    json_t *pending;  /* Results to deliver (array). */
    json_t *flushing; /* Results being delivered now (array or NULL). */
    volatile sig_atomic_t draining;
    volatile bool stop_threads;
    /* For the "stopped" line: lease calls and the jobs they brought
     * (main thread), completion calls and results sent (under @lock: the
     * completion thread and drain both flush). */
    unsigned long long lease_calls, leased, complete_calls, completed;
};

static struct worker W;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- HTTP -----------------------------------------------------------------
 */

/* One request to the current server; rotates on failure. Returns the HTTP
 * status (0 when no answer) and the parsed body in *out (may be NULL). */
static long call(CURL *c,
                 const char *method,
                 const char *path,
                 json_t *body,
                 long timeout_ms,
                 json_t **out)
{
    struct buf b;
    struct curl_slist *h = curl_slist_append(NULL,
                                             "Content-Type: "
                                             "application/json");
    char url[512], *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    char secret[128];
    long status = 0;
    int cur;

    buf_init(&b, 0);
    pthread_mutex_lock(&W.lock);
    cur = W.cur;
    snprintf(url, sizeof url, "%s%s", W.servers[cur], path);
    snprintf(secret, sizeof secret, "X-Rota-Worker-Secret: %s", W.secret);
    pthread_mutex_unlock(&W.lock);
    if (secret[sizeof "X-Rota-Worker-Secret: " - 1] != '\0') {
        h = curl_slist_append(h, secret);
    }
    if (W.creds.auth[0] != '\0') {
        h = curl_slist_append(h, W.creds.auth);
    }
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_curl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (W.creds.ca_file[0] != '\0') {
        curl_easy_setopt(c, CURLOPT_CAINFO, W.creds.ca_file);
    }
    if (text != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    }
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    }
    if (status == 0 || status >= 500) {
        pthread_mutex_lock(&W.lock);
        if (W.cur == cur) {
            W.cur = (W.cur + 1) % W.n_servers; /* Try another node. */
        }
        pthread_mutex_unlock(&W.lock);
    }
    if (out != NULL) {
        *out = b.p != NULL ? json_loads(b.p, 0, NULL) : NULL;
    }
    curl_slist_free_all(h);
    buf_free(&b);
    free(text);
    return status;
}

/* Lease and complete calls are the leader's to answer: a follower forwards
 * each one (an extra HTTP hop, ~15% of rota-bench e2e). So the worker asks
 * GET /v1/cluster where the leader is and, when that node is one of its
 * --servers, talks to it; after a failure call() moves to the next server
 * and the next look comes back to the leader. Only the configured servers
 * are used (their names are what TLS checks). */
static void follow_leader(CURL *c)
{
    json_t *out = NULL;
    int found = -1;
    if (W.n_servers < 2 ||
        call(c, "GET", "/v1/cluster", NULL, 2000, &out) != 200) {
        json_decref(out);
        return;
    }
    const char *addr = json_string_value(
        json_object_get(json_object_get(out, "leader"), "http_addr"));
    size_t n = addr != NULL ? strlen(addr) : 0;
    for (int i = 0; n > 0 && i < W.n_servers; i++) {
        const char *host = strstr(W.servers[i], "://");
        host = host != NULL ? host + 3 : W.servers[i];
        if (strncmp(host, addr, n) == 0 &&
            (host[n] == '\0' || host[n] == '/')) {
            found = i;
        }
    }
    pthread_mutex_lock(&W.lock);
    if (found >= 0 && W.cur != found) {
        W.cur = found;
        LOG(LOG_INFO, "following the leader", "server=%s", W.servers[found]);
    }
    pthread_mutex_unlock(&W.lock);
    json_decref(out);
}

static void register_worker(CURL *c)
{
    json_t *qs = json_array();
    char copy[WORKER_TYPES_MAX + 1], *save = NULL;
    long backoff = 100;

    snprintf(copy, sizeof copy, "%s", W.queues);
    for (char *q = strtok_r(copy, ",", &save); q != NULL;
         q = strtok_r(NULL, ",", &save)) {
        json_array_append_new(qs, json_string(q));
    }
    char types[WORKER_TYPES_MAX + 1];
    json_t *ts = json_array();
    worker_types(types, sizeof types);
    snprintf(copy, sizeof copy, "%s", types);
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        json_array_append_new(ts, json_string(t));
    }
    json_t *body = json_pack("{s:s,s:o,s:i,s:o}", "name", W.name, "queues", qs,
                             "concurrency", W.concurrency, "types", ts);
    if (W.host[0] != '\0') { /* Kept in the attempts this worker makes. */
        json_object_set_new(body, "host", json_string(W.host));
    }
    for (;;) {
        json_t *out = NULL;
        long st = call(c, "POST", "/v1/workers", body, 10000, &out);
        const char *id = json_string_value(json_object_get(out, "id"));
        const char *secret = json_string_value(json_object_get(out, "secret"));
        if (st == 201 && id != NULL) {
            pthread_mutex_lock(&W.lock);
            snprintf(W.id, sizeof W.id, "%s", id);
            snprintf(W.secret, sizeof W.secret, "%s",
                     secret != NULL ? secret : "");
            W.heartbeat_ms = (unsigned)json_integer_value(
                json_object_get(out, "heartbeat_ms"));
            if (W.heartbeat_ms == 0) {
                W.heartbeat_ms = 2000;
            }
            pthread_mutex_unlock(&W.lock);
            LOG(LOG_INFO, "registered",
                "id=%s name=%s queues=%s concurrency=%d types=%s", id, W.name,
                W.queues, W.concurrency, types);
            json_decref(out);
            break;
        }
        json_decref(out);
        if (st == 401) {
            /* A token made a moment ago may not have reached this node
             * yet (followers apply it a heartbeat later): try another. */
            LOG(LOG_WARN, "registration refused, retrying",
                "status=401 reason=\"token unknown here (yet?)\"");
            pthread_mutex_lock(&W.lock);
            W.cur = (W.cur + 1) % W.n_servers;
            pthread_mutex_unlock(&W.lock);
        } else if (st >= 400 && st < 500) {
            LOG(LOG_ERROR, "registration refused", "status=%ld", st);
            exit(2);
        }
        if (W.draining && W.n_running == 0) {
            /* SIGTERM while no server answers: nothing to drain. */
            LOG(LOG_INFO, "stopped", "reason=\"not registered\"");
            exit(0);
        }
        sleep_ms(backoff);
        backoff = backoff < 2000 ? backoff * 2 : 2000;
    }
    json_decref(body);
}

/* ---- Jobs ------------------------------------------------------------------
 */

/* The result of @r, queued for the completion thread; @r leaves the runs
 * in the same critical section, so a heartbeat always lists the lease once
 * (running or with its result queued). NULL @o: report nothing (lost). */
static void finish(struct run *r, const struct outcome *o)
{
    json_t *res = NULL;
    if (o != NULL) {
        res = json_pack("{s:s,s:I,s:b,s:b,s:i}", "id", r->id, "token",
                        (json_int_t)r->token, "ok", o->ok, "retryable",
                        o->retryable, "exit_code", o->exit_code);
        if (o->error[0] != '\0') {
            json_object_set_new(res, "error", json_string(o->error));
        }
        if (o->output != NULL) {
            json_t *s = json_string(o->output); /* NULL if not UTF-8. */
            json_object_set_new(res, "output",
                                s != NULL ? s : json_string("(binary output)"));
        }
        if (o->result != NULL) {
            json_object_set(res, "result", o->result);
        }
    }
    pthread_mutex_lock(&W.lock);
    if (res != NULL) {
        json_array_append_new(W.pending, res);
    }
    for (struct run **pp = &W.runs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    W.n_running--;
    pthread_cond_signal(&W.slot_free);
    pthread_mutex_unlock(&W.lock);
    json_decref(r->job);
    free(r);
}

/* Run one leased job with its executor and report it. */
static void run_job(struct run *r)
{
    struct outcome o;
    const char *type = json_string_value(json_object_get(r->job, "type"));
    const struct executor *e = executor_find(type != NULL ? type : "");

    memset(&o, 0, sizeof o);
    if (r->lost) {
        /* Lost before it started: nothing to report. */
    } else if (r->cancel) {
        snprintf(o.error, sizeof o.error, "cancelled"); /* Never started. */
    } else if (e == NULL) {
        snprintf(o.error, sizeof o.error, "unknown job type \"%s\"",
                 type != NULL ? type : "");
        o.retryable = false; /* An invalid job is not retried. */
    } else {
        e->run(r, &o);
    }
    if (r->drain && !o.ok) {
        /* Stopped because the worker is stopping: not the job's fault. */
        snprintf(o.error, sizeof o.error, "worker stopped (drain timeout)");
        o.retryable = true;
    }
    finish(r, r->lost ? NULL : &o);
    free(o.output);
    json_decref(o.result);
}

/* Wake one idle pool thread for the queued runs, unless one is on its way
 * already (under W.lock). Each woken thread that leaves runs queued wakes
 * the next before it runs its own: a burst of N leases starts N threads
 * one after the other, while runs that end at once (noop) are taken by the
 * threads already awake instead of costing a sleep and a wake-up each. */
static void pool_wake(void)
{
    if (W.queue != NULL && W.waking == 0 && W.idle > 0) {
        W.waking++;
        pthread_cond_signal(&W.work);
    }
}

/* One of the pool's threads: runs queued jobs until the pool stops. */
static void *pool_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&W.lock);
    for (;;) {
        while (W.queue == NULL && !W.stop_pool) {
            W.idle++;
            pthread_cond_wait(&W.work, &W.lock);
            W.idle--;
            if (W.waking > 0) {
                W.waking--;
            }
        }
        struct run *r = W.queue;
        if (r == NULL) {
            break; /* Stopping, and nothing left to run. */
        }
        W.queue = r->qnext;
        if (W.queue == NULL) {
            W.qtail = &W.queue;
        }
        pool_wake();
        pthread_mutex_unlock(&W.lock);
        run_job(r);
        pthread_mutex_lock(&W.lock);
    }
    pthread_mutex_unlock(&W.lock);
    return NULL;
}

static void pool_start(void)
{
    pthread_attr_t attr;
    W.pool = calloc((size_t)W.concurrency, sizeof *W.pool);
    W.qtail = &W.queue;
    pthread_attr_init(&attr);
    /* 1 MiB each (not the default 8): up to 10,000 of them at start. */
    pthread_attr_setstacksize(&attr, 1024 * 1024);
    for (W.n_pool = 0; W.n_pool < W.concurrency; W.n_pool++) {
        int rv = pthread_create(&W.pool[W.n_pool], &attr, pool_thread, NULL);
        if (rv != 0) {
            LOG(LOG_ERROR, "cannot start the thread pool",
                "threads=%d concurrency=%d error=\"%s\"", W.n_pool,
                W.concurrency, strerror(rv));
            exit(1);
        }
    }
    pthread_attr_destroy(&attr);
}

static void pool_stop(void)
{
    pthread_mutex_lock(&W.lock);
    W.stop_pool = true;
    pthread_cond_broadcast(&W.work);
    pthread_mutex_unlock(&W.lock);
    for (int i = 0; i < W.n_pool; i++) {
        pthread_join(W.pool[i], NULL);
    }
    free(W.pool);
}

/* Hand a lease to the pool. */
static void start_job(const struct lease *l)
{
    struct run *r = calloc(1, sizeof *r);
    memcpy(r->id, l->id, sizeof r->id);
    r->token = l->token;
    r->attempt = l->attempt;
    r->job = json_incref(l->job);
    pthread_mutex_lock(&W.lock);
    r->next = W.runs;
    W.runs = r;
    W.n_running++;
    *W.qtail = r;
    W.qtail = &r->qnext;
    pool_wake();
    pthread_mutex_unlock(&W.lock);
}

/* ---- Heartbeats and completions -------------------------------------------
 */

static void mark(json_t *ids, bool cancel)
{
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        const char *id = json_string_value(v);
        pthread_mutex_lock(&W.lock);
        for (struct run *r = W.runs; r != NULL; r = r->next) {
            if (id != NULL && strcmp(r->id, id) == 0) {
                if (cancel) {
                    r->cancel = true;
                } else {
                    r->lost = true;
                }
            }
        }
        pthread_mutex_unlock(&W.lock);
    }
}

static void *heartbeat_thread(void *arg)
{
    CURL *c = curl_easy_init();
    (void)arg;
    while (!W.stop_threads) {
        char path[128];
        json_t *running = json_array(), *out = NULL;
        pthread_mutex_lock(&W.lock);
        /* Every lease we hold: waiting for a thread, running, finished
         * with the result still queued or being delivered. A lease left out is
         * given back by the leader as never received. */
        for (struct run *r = W.runs; r != NULL; r = r->next) {
            json_array_append_new(running,
                                  json_pack("{s:s,s:I}", "id", r->id, "token",
                                            (json_int_t)r->token));
        }
        json_t *queued[2] = {W.pending, W.flushing}, *res;
        for (int q = 0; q < 2; q++) {
            size_t k;
            json_array_foreach(queued[q], k, res)
            {
                json_array_append_new(
                    running,
                    json_pack("{s:O,s:O}", "id", json_object_get(res, "id"),
                              "token", json_object_get(res, "token")));
            }
        }
        snprintf(path, sizeof path, "/v1/workers/%s/heartbeat", W.id);
        unsigned every = W.heartbeat_ms;
        pthread_mutex_unlock(&W.lock);
        json_t *body = json_pack("{s:o}", "running", running);
        long st = call(c, "POST", path, body, 5000, &out);
        json_decref(body);
        if (st == 200) {
            mark(json_object_get(out, "cancel"), true);
            mark(json_object_get(out, "lost"), false);
        } else if (st == 404) {
            /* Declared down: every lease we hold is gone. */
            pthread_mutex_lock(&W.lock);
            for (struct run *r = W.runs; r != NULL; r = r->next) {
                r->lost = true;
            }
            pthread_mutex_unlock(&W.lock);
            /* A worker that is stopping (its DELETE may be what made it
             * unknown) never registers again on the way out. */
            if (!W.draining) {
                LOG(LOG_WARN, "re-registering",
                    "reason=\"worker unknown or declared down\" id=%s", W.id);
                register_worker(c);
            }
        }
        json_decref(out);
        follow_leader(c);
        for (unsigned t = 0; t < every && !W.stop_threads; t += 20) {
            sleep_ms(20);
        }
    }
    curl_easy_cleanup(c);
    return NULL;
}

/* Deliver pending results in one batch; keep them on no definite answer. */
static bool flush_results(CURL *c)
{
    char path[128];
    json_t *batch, *out = NULL;
    long st;

    pthread_mutex_lock(&W.lock);
    if (json_array_size(W.pending) == 0) {
        pthread_mutex_unlock(&W.lock);
        return true;
    }
    batch = W.pending;
    W.pending = json_array();
    W.flushing = json_incref(batch);
    snprintf(path, sizeof path, "/v1/workers/%s/complete", W.id);
    W.complete_calls++; /* Under the lock: drain flushes too. */
    W.completed += json_array_size(batch);
    pthread_mutex_unlock(&W.lock);
    json_t *body = json_pack("{s:O}", "results", batch);
    st = call(c, "POST", path, body, 10000, &out);
    json_decref(body);
    json_decref(out);
    pthread_mutex_lock(&W.lock);
    json_decref(W.flushing);
    W.flushing = NULL;
    if (st == 200 || st == 409 || (st >= 400 && st < 500 && st != 404)) {
        pthread_mutex_unlock(&W.lock);
        json_decref(batch); /* Definite: accepted or stale. */
        return true;
    }
    /* Try again later, in order (still under the lock: a heartbeat never
     * sees these leases missing). */
    json_array_extend(batch, W.pending);
    json_decref(W.pending);
    W.pending = batch;
    pthread_mutex_unlock(&W.lock);
    return false;
}

static void *complete_thread(void *arg)
{
    CURL *c = curl_easy_init();
    long backoff = 0;
    (void)arg;
    while (!W.stop_threads) {
        if (flush_results(c)) {
            backoff = 0;
            sleep_ms(5);
        } else {
            backoff = backoff == 0 ? 50 : (backoff < 2000 ? backoff * 2 : 2000);
            sleep_ms(backoff);
        }
    }
    curl_easy_cleanup(c);
    return NULL;
}

/* ---- Main ------------------------------------------------------------------
 */

static void on_signal(int sig)
{
    (void)sig;
    W.draining = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rota-worker --servers URL[,URL...] [--queues Q[,Q...]] "
            "[--concurrency N]\n"
            "       [--name NAME] [--output-limit BYTES] [--drain-timeout S] "
            "[--kill-grace S]\n"
            "       [--allow-shell [--shell-allow REGEX]] "
            "[--http-allow PREFIX]...\n"
            "       [--exec-dir DIR]\n"
            "       [--ca-file F] [--token-file F]\n"
            "  env: ROTA_CA_FILE, ROTA_TOKEN (the secret) or ROTA_TOKEN_FILE\n"
            "  shell jobs run arbitrary commands as this user: they are off "
            "unless\n  --allow-shell (then only commands matching "
            "--shell-allow, if given).\n"
            "  --exec-dir DIR: a job of type T runs the executable DIR/T, "
            "payload on\n  stdin, result on stdout (JSON).\n"
            "  env: ROTA_SERVERS, ROTA_QUEUES, ROTA_CONCURRENCY, ROTA_NAME\n"
            "  SIGTERM drains: no new leases, running jobs finish (or are "
            "stopped and\n  given back after --drain-timeout), then it "
            "deregisters and exits 0.\n");
}

static void parse(int argc, char **argv)
{
    static const struct option opts[] = {{"servers", 1, 0, 's'},
                                         {"queues", 1, 0, 'q'},
                                         {"concurrency", 1, 0, 'c'},
                                         {"name", 1, 0, 'n'},
                                         {"output-limit", 1, 0, 'o'},
                                         {"drain-timeout", 1, 0, 'd'},
                                         {"kill-grace", 1, 0, 'k'},
                                         {"allow-shell", 0, 0, 'S'},
                                         {"shell-allow", 1, 0, 'R'},
                                         {"http-allow", 1, 0, 'H'},
                                         {"ca-file", 1, 0, 'A'},
                                         {"token-file", 1, 0, 'T'},
                                         {"exec-dir", 1, 0, 'X'},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *servers = getenv("ROTA_SERVERS");
    const char *ca_file = NULL, *token_file = NULL;
    char host[128], err[256];
    int c;

    snprintf(W.queues, sizeof W.queues, "%s",
             getenv("ROTA_QUEUES") ? getenv("ROTA_QUEUES") : "default");
    W.concurrency =
        getenv("ROTA_CONCURRENCY") ? atoi(getenv("ROTA_CONCURRENCY")) : 4;
    if (gethostname(host, sizeof host) != 0) {
        host[0] = '\0';
    }
    host[sizeof host - 1] = '\0'; /* Not terminated if truncated. */
    snprintf(W.host, sizeof W.host, "%s", host);
    snprintf(W.name, sizeof W.name, "%s-%d", host, (int)getpid());
    if (getenv("ROTA_NAME") != NULL) {
        snprintf(W.name, sizeof W.name, "%s", getenv("ROTA_NAME"));
    }
    W.drain_s = 30;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
            case 's':
                servers = optarg;
                break;
            case 'q':
                snprintf(W.queues, sizeof W.queues, "%s", optarg);
                break;
            case 'c':
                W.concurrency = atoi(optarg);
                break;
            case 'n':
                snprintf(W.name, sizeof W.name, "%s", optarg);
                break;
            case 'o':
                worker_output_limit = (size_t)atol(optarg);
                break;
            case 'd':
                W.drain_s = (unsigned)atoi(optarg);
                break;
            case 'k':
                worker_kill_grace_ms = (unsigned)atoi(optarg) * 1000;
                break;
            case 'S':
                worker_allow_shell = true;
                break;
            case 'A':
                ca_file = optarg;
                break;
            case 'T':
                token_file = optarg;
                break;
            case 'R':
                worker_shell_allow = optarg;
                break;
            case 'X':
                worker_exec_dir = optarg;
                break;
            case 'H':
                if (worker_n_http_allow == WORKER_MAX_HTTP_ALLOW) {
                    fprintf(stderr, "rota-worker: at most %d --http-allow\n",
                            WORKER_MAX_HTTP_ALLOW);
                    exit(2);
                }
                worker_http_allow[worker_n_http_allow++] = optarg;
                break;
            case 'h':
                usage(stdout);
                exit(0);
            default:
                usage(stderr);
                exit(2);
        }
    }
    if (servers == NULL || W.concurrency < 1 || W.concurrency > 10000 ||
        worker_output_limit < 16 ||
        (worker_shell_allow != NULL && !worker_allow_shell)) {
        usage(stderr);
        exit(2);
    }
    if (worker_policy_init() != 0 || worker_exec_dir_init() != 0) {
        exit(2);
    }
    if (creds_load(&W.creds, ca_file, token_file, err, sizeof err) != 0) {
        fprintf(stderr, "rota-worker: %s\n", err);
        exit(2);
    }
    char *copy = strdup(servers), *save = NULL;
    for (char *s = strtok_r(copy, ",", &save); s != NULL && W.n_servers < 16;
         s = strtok_r(NULL, ",", &save)) {
        W.servers[W.n_servers++] = strdup(s);
    }
    free(copy);
}

/* Until no lease is held or @deadline_ms (CLOCK_REALTIME ms; -1: none). */
static void wait_idle(long long deadline_ms)
{
    pthread_mutex_lock(&W.lock);
    while (W.n_running > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (deadline_ms >= 0 && now >= deadline_ms) {
            break;
        }
        long long until = deadline_ms >= 0 && deadline_ms < now + 100
                              ? deadline_ms
                              : now + 100;
        ts.tv_sec = (time_t)(until / 1000);
        ts.tv_nsec = (long)(until % 1000) * 1000000L;
        pthread_cond_timedwait(&W.slot_free, &W.lock, &ts);
    }
    pthread_mutex_unlock(&W.lock);
}

static void drain(CURL *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    LOG(LOG_INFO, "draining", "running=%d timeout_s=%u", W.n_running,
        W.drain_s);
    wait_idle((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 +
              (long long)W.drain_s * 1000);
    pthread_mutex_lock(&W.lock);
    for (struct run *r = W.runs; r != NULL; r = r->next) {
        r->drain = true; /* Stopped and given back (retryable). */
        r->cancel = true;
    }
    pthread_mutex_unlock(&W.lock);
    wait_idle(-1);
    pool_stop();
    /* Every result delivered, including a batch the completion thread
     * is sending now: a DELETE before it would make those leases lost. */
    for (int tries = 0; tries < 100;) {
        pthread_mutex_lock(&W.lock);
        bool idle = json_array_size(W.pending) == 0 && W.flushing == NULL;
        pthread_mutex_unlock(&W.lock);
        if (idle) {
            break;
        }
        if (!flush_results(c)) {
            tries++;
            sleep_ms(100);
        } else {
            sleep_ms(5);
        }
    }
    char path[128];
    snprintf(path, sizeof path, "/v1/workers/%s", W.id);
    for (int i = 0; i < 20; i++) { /* Until a definite answer. */
        long st = call(c, "DELETE", path, NULL, 5000, NULL);
        if (st == 200 || st == 404) {
            break;
        }
        sleep_ms(200);
    }
    pthread_mutex_lock(&W.lock);
    unsigned long long calls = W.complete_calls, sent = W.completed;
    pthread_mutex_unlock(&W.lock);
    LOG(LOG_INFO, "stopped",
        "id=%s lease_calls=%llu leased=%llu complete_calls=%llu "
        "results_sent=%llu",
        W.id, W.lease_calls, W.leased, calls, sent);
}

int main(int argc, char **argv)
{
    pthread_t hb, cp;
    CURL *c;

    log_init();
    log_fatal_signals();
    parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_mutex_init(&W.lock, NULL);
    pthread_cond_init(&W.work, NULL);
    pthread_cond_init(&W.slot_free, NULL);
    W.pending = json_array();
    c = curl_easy_init();
    LOG(LOG_INFO, "started", "servers=%d queues=%s concurrency=%d", W.n_servers,
        W.queues, W.concurrency);
    pool_start();
    register_worker(c);
    follow_leader(c);
    pthread_create(&hb, NULL, heartbeat_thread, NULL);
    pthread_create(&cp, NULL, complete_thread, NULL);
    while (!W.draining) {
        int free_slots;
        char path[128];
        pthread_mutex_lock(&W.lock);
        if (W.n_running >= W.concurrency) {
            /* Woken when a run ends; the timeout notices SIGTERM. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&W.slot_free, &W.lock, &ts);
        }
        free_slots = W.concurrency - W.n_running;
        snprintf(path, sizeof path, "/v1/workers/%s/lease", W.id);
        pthread_mutex_unlock(&W.lock);
        if (free_slots <= 0) {
            continue;
        }
        /* compact: the jobs carry what running them needs, not their
         * state (times, history, ...): less to render and to parse. */
        json_t *out = NULL,
               *body = json_pack("{s:i,s:i,s:b}", "max", free_slots, "wait_ms",
                                 2000, "compact", 1);
        long st = call(c, "POST", path, body, 8000, &out);
        json_decref(body);
        W.lease_calls++;
        if (st == 200) {
            W.leased += json_array_size(json_object_get(out, "leases"));
            size_t i;
            json_t *v;
            json_array_foreach(json_object_get(out, "leases"), i, v)
            {
                struct lease l;
                char err[64];
                if (worker_lease_parse(v, &l, err, sizeof err) != 0) {
                    LOG(LOG_WARN, "lease skipped", "reason=\"%s\"", err);
                    continue;
                }
                start_job(&l);
            }
        } else if (st == 404 || st == 403) {
            register_worker(c);
        } else {
            sleep_ms(100);
        }
        json_decref(out);
    }
    drain(c);
    W.stop_threads = true;
    pthread_join(hb, NULL);
    pthread_join(cp, NULL);
    curl_easy_cleanup(c);
    curl_global_cleanup();
    return 0;
}
