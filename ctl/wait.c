/* rotactl wait ID [--timeout D]: until the job is final.
 *
 * GET /v1/jobs/{id}?wait= in pieces of at most 60 s (the server's bound)
 * until the job is completed, failed or cancelled, or --timeout ends. Each
 * piece goes to the first server that answers (ctl_request), so a node
 * that dies mid-wait is replaced by the next one. Exit 0 if the job
 * completed, 1 if it failed or was cancelled (or the server refused, e.g.
 * an unknown job), 2 when --timeout ended first, 3 if no server answered
 * up to the timeout. */

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/duration.h"
#include "ctl/ctl.h"

#define WAIT_PIECE_MS 60000 /* GET ?wait= answers 400 above. */
#define WAIT_RETRY_MS 1000  /* Between rounds when no server answered. */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* --timeout: a duration ("90s", "5m", "1h30m") or plain seconds. */
static int parse_timeout(const char *s, int64_t *ms)
{
    size_t digits = strspn(s, "0123456789");
    if (digits > 0 && digits <= 9 && s[digits] == '\0') {
        *ms = strtoll(s, NULL, 10) * 1000;
        return 0;
    }
    return duration_parse_ms(s, INT64_C(1) << 50, ms);
}

static bool is_final(const char *status, int *code)
{
    if (strcmp(status, "completed") == 0) {
        *code = CTL_EXIT_OK;
        return true;
    }
    if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
        *code = CTL_EXIT_ERROR;
        return true;
    }
    return false;
}

/* One GET ?wait=@piece_ms. CTL_EXIT_CONN if no server answered, else 0
 * with *status and *out. */
static int wait_piece(struct ctl *ctl,
                      const char *id,
                      int64_t piece_ms,
                      long *status,
                      json_t **out)
{
    char path[256];
    long saved = ctl->timeout;
    int rv;

    snprintf(path, sizeof path, "/v1/jobs/%s?wait=%" PRId64 "ms", id,
             piece_ms > 0 ? piece_ms : 1);
    /* The HTTP timeout covers the wait plus the usual --timeout. */
    ctl->timeout = saved + (long)(piece_ms / 1000) + 1;
    rv = ctl_request(ctl, "GET", path, NULL, status, out);
    ctl->timeout = saved;
    return rv;
}

/* Wait for @id until @deadline (monotonic ms; -1: none). */
static int wait_loop(struct ctl *ctl, const char *id, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline < 0 ? WAIT_PIECE_MS : deadline - now_ms();
        long status = 0;
        json_t *job = NULL;
        int code;
        int rv =
            wait_piece(ctl, id, left < WAIT_PIECE_MS ? left : WAIT_PIECE_MS,
                       &status, &job);

        if (rv == 0 && status >= 400 && status != 502 && status != 503 &&
            status != 504) {
            ctl_print_error(status, job); /* 404, 400, 401, 403: final. */
            json_decref(job);
            return CTL_EXIT_ERROR;
        }
        if (rv == 0 && status == 200) {
            const char *st = json_string_value(json_object_get(job, "status"));
            if (st != NULL && is_final(st, &code)) {
                ctl_show_job(ctl, job);
                return code;
            }
        }
        if (deadline >= 0 && now_ms() >= deadline) {
            if (rv != 0) {
                fprintf(stderr,
                        "rotactl wait: timed out: no server answered (%s)\n",
                        ctl->servers);
                return CTL_EXIT_CONN;
            }
            fprintf(stderr, "rotactl wait: timed out: job %s is still %s\n", id,
                    status == 200 ? ctl_str(job, "status") : "not answered");
            if (status == 200) {
                ctl_show_job(ctl, job); /* Its state when the time ran out. */
            } else {
                json_decref(job);
            }
            return 2;
        }
        if (rv != 0 || status != 200) {
            /* No server answered, or one was busy: again a bit later. */
            if (rv == 0) {
                ctl_print_error(status, job);
            }
            left = deadline < 0 ? WAIT_RETRY_MS : deadline - now_ms();
            sleep_ms(left < WAIT_RETRY_MS ? left : WAIT_RETRY_MS);
        }
        json_decref(job);
    }
}

int ctl_cmd_wait(struct ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {{"timeout", 1, 0, 'T'}, {0, 0, 0, 0}};
    const char *id = NULL;
    int64_t timeout_ms = -1;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'T' || parse_timeout(optarg, &timeout_ms) != 0) {
            fprintf(stderr,
                    "rotactl wait: %s\nusage: rotactl wait ID [--timeout D]\n",
                    c == 'T' ? "--timeout wants a duration such as 30s or 5m"
                             : "unknown option");
            return CTL_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr,
                "rotactl wait: one job id wanted\n"
                "usage: rotactl wait ID [--timeout D]\n");
        return CTL_EXIT_USAGE;
    }
    id = argv[optind];
    return wait_loop(ctl, id, timeout_ms < 0 ? -1 : now_ms() + timeout_ms);
}
