/* rotactl watch: follow GET /v1/events (Server-Sent Events).
 *
 * One line per event (or, with -o json, each event's data as one JSON
 * line), flushed at once. When the connection drops (its node died, or
 * stopped, or nothing arrived for WATCH_IDLE_S although the server sends
 * a keepalive every 15 s), rotactl connects to the next server after a
 * backoff, sending the last event id it printed as Last-Event-ID: the
 * stream continues after it, so nothing is missed or repeated. An event
 * whose id is not after the last one printed (a node that had not applied
 * that far yet) is skipped. SIGINT and SIGTERM end it with exit 0; a
 * refusal (400 bad filter, 401, 403) exits 1. */

#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "ctl/ctl.h"
#include "ctl/sse.h"

#define WATCH_IDLE_S 45          /* No byte this long: reconnect. */
#define WATCH_BACKOFF_MIN_MS 250 /* First pause before a reconnect. */
#define WATCH_BACKOFF_MAX_MS 8000

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

struct watch
{
    struct ctl *ctl;
    CURL *curl;
    struct sse sse;
    const char *server;  /* The one connected to. */
    long status;         /* HTTP status of the current answer; 0 before. */
    struct buf err;      /* The body of a non-200 answer. */
    bool have_last;      /* An event with an id was printed. */
    char last_id[64];    /* Its id, sent as Last-Event-ID. */
    uint64_t last_index; /* The id's parts, to skip repeats. */
    uint32_t last_pos;
    unsigned long events; /* Events printed on this connection. */
};

/* "1234-0" -> (1234, 0); false if it is not an event id. */
static bool parse_id(const char *s, uint64_t *index, uint32_t *pos)
{
    unsigned long long i;
    unsigned p;
    int n = 0;
    if (sscanf(s, "%llu-%u%n", &i, &p, &n) != 2 || s[n] != '\0') {
        return false;
    }
    *index = i;
    *pos = p;
    return true;
}

/* Not after the last event printed: a repeat. Else remember it. */
static bool seen_before(struct watch *w, const char *id)
{
    uint64_t index;
    uint32_t pos;

    if (id == NULL || !parse_id(id, &index, &pos)) {
        return false; /* leader.changed, events.lost: no id. */
    }
    if (w->have_last && (index < w->last_index ||
                         (index == w->last_index && pos <= w->last_pos))) {
        return true;
    }
    w->have_last = true;
    w->last_index = index;
    w->last_pos = pos;
    snprintf(w->last_id, sizeof w->last_id, "%s", id);
    return false;
}

static void now_utc(char *out, size_t size)
{
    struct timespec ts;
    struct tm tm;
    char sec[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, size, "%s.%03dZ", sec, (int)(ts.tv_nsec / 1000000));
}

/* The readable line of one event. */
static void print_line(const char *name, json_t *d)
{
    char at[64];
    json_t *job = json_object_get(d, "job");
    json_t *worker = json_object_get(d, "worker");
    json_t *sched = json_object_get(d, "schedule");
    const char *err;

    if (json_is_string(json_object_get(d, "at"))) {
        snprintf(at, sizeof at, "%s", ctl_str(d, "at"));
    } else {
        now_utc(at, sizeof at); /* Events without a time: when seen. */
    }
    printf("%-24s  %-16s ", at, name);
    if (job != NULL) {
        err = ctl_str(job, "error");
        printf("%-16s  %-14s %-10s %-10s %3lld%s%s", ctl_str(job, "id"),
               ctl_str(job, "type"), ctl_str(job, "queue"),
               ctl_str(job, "status"), ctl_int(job, "attempts"),
               strcmp(err, "-") != 0 ? "  " : "",
               strcmp(err, "-") != 0 ? err : "");
    } else if (worker != NULL) {
        printf("%-16s  worker %s", ctl_str(worker, "id"),
               ctl_str(worker, "name"));
    } else if (sched != NULL) {
        printf("%-16s  %-14s %-10s", ctl_str(sched, "id"),
               ctl_str(sched, "type"), ctl_str(sched, "queue"));
        if (json_object_get(d, "run") != NULL) {
            printf(" run %s", ctl_str(d, "run"));
        }
        if (json_object_get(d, "error") != NULL) {
            printf("  %s", ctl_str(d, "error"));
        }
    } else if (strcmp(name, "leader.changed") == 0) {
        printf("leader %lld term %lld", ctl_int(d, "leader"),
               ctl_int(d, "term"));
    } else if (strcmp(name, "events.lost") == 0) {
        printf(
            "events after %s are no longer held by the server: some "
            "may be missing",
            ctl_str(d, "after"));
    } else if (strcmp(name, "events.dropped") == 0) {
        printf("this reader fell behind: reconnecting");
    }
    putchar('\n');
}

static int on_event(void *arg, const struct sse_event *ev)
{
    struct watch *w = arg;
    json_t *d;

    if (seen_before(w, ev->id)) {
        return 0;
    }
    d = json_loads(ev->data, JSON_DECODE_ANY, NULL);
    if (d == NULL) {
        d = json_string(ev->data); /* Not JSON: shown as a string. */
    }
    if (w->ctl->json) {
        char *s = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
        puts(s != NULL ? s : "null");
        free(s);
    } else {
        print_line(ev->event, d);
    }
    json_decref(d);
    w->events++;
    if (fflush(stdout) != 0) {
        stop_signal = SIGPIPE; /* Nobody reads our output any more. */
        return -1;
    }
    return 0;
}

static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
    struct watch *w = arg;
    if (w->status == 0) {
        curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &w->status);
        if (w->status == 200) {
            fprintf(stderr, "rotactl watch: connected to %s\n", w->server);
        }
    }
    if (w->status != 200) {
        return buf_curl_write(p, size, n, &w->err); /* An error's body. */
    }
    return sse_feed(&w->sse, p, size * n) == 0 ? size * n : 0;
}

/* Called about once a second even when idle: ends the transfer on a
 * signal. */
static int on_progress(void *arg,
                       curl_off_t dt,
                       curl_off_t dn,
                       curl_off_t ut,
                       curl_off_t un)
{
    (void)arg, (void)dt, (void)dn, (void)ut, (void)un;
    return stop_signal != 0;
}

/* One connection to @server until it ends. Its CURLcode; w->status. */
static CURLcode watch_once(struct watch *w,
                           const char *server,
                           const char *query)
{
    char url[4096], last[128];
    struct curl_slist *h = NULL;
    CURLcode cc;

    ctl_url(w->ctl, server, "/v1/events", url, sizeof url);
    snprintf(url + strlen(url), sizeof url - strlen(url), "%s", query);
    w->server = server;
    w->status = 0;
    w->events = 0;
    buf_reset(&w->err);
    sse_reset(&w->sse);
    curl_easy_reset(w->curl);
    h = curl_slist_append(h, "Accept: text/event-stream");
    if (w->have_last) {
        snprintf(last, sizeof last, "Last-Event-ID: %s", w->last_id);
        h = curl_slist_append(h, last);
    }
    h = ctl_setup(w->ctl, w->curl, url, h);
    curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(w->curl, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(w->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(w->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(w->curl, CURLOPT_CONNECTTIMEOUT, w->ctl->timeout);
    curl_easy_setopt(w->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(w->curl, CURLOPT_LOW_SPEED_TIME, (long)WATCH_IDLE_S);
    cc = curl_easy_perform(w->curl);
    curl_slist_free_all(h);
    if (w->status == 0) {
        curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &w->status);
    }
    return cc;
}

/* Sleep @ms, or less when a signal comes. */
static void pause_ms(long ms)
{
    while (ms > 0 && stop_signal == 0) {
        long step = ms < 100 ? ms : 100;
        struct timespec ts = {0, step * 1000000};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* A refusal that another try would not change: print it, true. */
static bool refused(struct watch *w)
{
    json_t *e;
    if (w->status < 400 || w->status == 429 || w->status >= 500) {
        return false;
    }
    e = json_loads(buf_str(&w->err), 0, NULL);
    ctl_print_error(w->status, e);
    json_decref(e);
    return true;
}

/* Connect, follow, reconnect to the next server until a signal. */
static int watch_loop(struct watch *w, const char *query)
{
    char servers[CTL_MAX_SERVERS][256];
    int n = ctl_servers(w->ctl, servers, CTL_MAX_SERVERS), s = 0;
    long backoff = WATCH_BACKOFF_MIN_MS;

    if (n == 0) {
        fprintf(stderr, "rotactl watch: no server given\n");
        return CTL_EXIT_USAGE;
    }
    while (stop_signal == 0) {
        CURLcode cc = watch_once(w, servers[s], query);
        if (stop_signal != 0) {
            break;
        }
        if (refused(w)) {
            return CTL_EXIT_ERROR;
        }
        if (w->status == 200 && w->events > 0) {
            backoff = WATCH_BACKOFF_MIN_MS; /* It worked for a while. */
        }
        fprintf(stderr, "rotactl watch: %s: %s; reconnecting to %s", servers[s],
                cc != CURLE_OK     ? curl_easy_strerror(cc)
                : w->status == 200 ? "the stream ended"
                                   : "refused for now",
                servers[(s + 1) % n]);
        if (w->have_last) {
            fprintf(stderr, " after event %s", w->last_id);
        }
        fprintf(stderr, " in %ld ms\n", backoff);
        s = (s + 1) % n;
        pause_ms(backoff);
        backoff = backoff * 2 < WATCH_BACKOFF_MAX_MS ? backoff * 2
                                                     : WATCH_BACKOFF_MAX_MS;
    }
    return CTL_EXIT_OK;
}

/* The options into @query (?queue=...&events=...) and @w's start. 0 or
 * CTL_EXIT_USAGE. */
static int watch_parse(struct watch *w,
                       int argc,
                       char **argv,
                       char *query,
                       size_t size)
{
    static const struct option opts[] = {
        {"queue", 1, 0, 'q'},  {"type", 1, 0, 't'},          {"job", 1, 0, 'j'},
        {"events", 1, 0, 'e'}, {"last-event-id", 1, 0, 'l'}, {0, 0, 0, 0}};
    static const char *const keys[] = {
        ['q'] = "queue", ['t'] = "type", ['j'] = "job", ['e'] = "events"};
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "q:t:", opts, NULL)) != -1) {
        if (c == 'l') {
            if (!parse_id(optarg, &w->last_index, &w->last_pos)) {
                fprintf(stderr,
                        "rotactl watch: --last-event-id wants an "
                        "event id such as 1234-0\n");
                return CTL_EXIT_USAGE;
            }
            w->have_last = true;
            snprintf(w->last_id, sizeof w->last_id, "%s", optarg);
        } else if (c == 'q' || c == 't' || c == 'j' || c == 'e') {
            ctl_add_query(query, size, keys[c], optarg);
        } else {
            fprintf(stderr, "rotactl watch: unknown option\n");
            return CTL_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rotactl watch: unexpected argument \"%s\"\n",
                argv[optind]);
        return CTL_EXIT_USAGE;
    }
    return 0;
}

int ctl_cmd_watch(struct ctl *ctl, int argc, char **argv)
{
    struct watch w;
    struct sigaction sa;
    char query[2048] = "";
    int rv;

    memset(&w, 0, sizeof w);
    w.ctl = ctl;
    rv = watch_parse(&w, argc, argv, query, sizeof query);
    if (rv != 0) {
        return rv;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* No SA_RESTART: sleeps end at once. */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* A closed stdout ends it (on_event). */
    buf_init(&w.err, 65536);
    sse_init(&w.sse, on_event, &w);
    w.curl = curl_easy_init();
    rv = w.curl != NULL ? watch_loop(&w, query) : CTL_EXIT_CONN;
    if (w.curl != NULL) {
        curl_easy_cleanup(w.curl);
    }
    sse_free(&w.sse);
    buf_free(&w.err);
    return rv;
}
