/* rotactl commands for schedules, the dead-letter queue, workflows and
 * queues: thin wrappers over the HTTP API (docs/api.md) that print a table
 * or a summary line, or the server's JSON with --json. */

#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

/* How the answer of one request is shown without --json. */
typedef void (*show_fn)(json_t *out, const char *arg);

static int call_show(struct ctl *ctl,
                     const char *method,
                     const char *path,
                     const char *body,
                     show_fn show,
                     const char *arg)
{
    json_t *out = NULL;
    int rv = ctl_call(ctl, method, path, body, &out);
    if (rv != 0) {
        return rv;
    }
    if (ctl->json) {
        ctl_print_json(out);
    } else {
        show(out, arg);
    }
    json_decref(out);
    return 0;
}

/* pause, resume: "paused schedule ID (next run T)". */
static void show_schedule(json_t *out, const char *action)
{
    printf("%s schedule %s (next run %s)\n",
           strcmp(action, "pause") == 0 ? "paused" : "resumed",
           ctl_str(out, "id"), ctl_str(out, "next_run_at"));
}

/* trigger: the run it created. */
static void show_trigger(json_t *out, const char *sid)
{
    printf("triggered schedule %s: run %s (%s)\n", sid, ctl_str(out, "id"),
           ctl_str(out, "status"));
}

/* retry: the job, requeued. */
static void show_job_row(json_t *out, const char *arg)
{
    (void)arg;
    ctl_job_header();
    ctl_job_row(out);
}

static void show_runs(json_t *out, const char *arg)
{
    json_t *r;
    size_t i;
    (void)arg;
    printf("%-24s  %-16s  %-10s  %s\n", "NOMINAL AT", "JOB", "OUTCOME",
           "DETAIL");
    json_array_foreach(json_object_get(out, "runs"), i, r)
    {
        char detail[64] = "";
        const char *d = ctl_str(r, "error");
        if (json_is_integer(json_object_get(r, "occurrences"))) {
            snprintf(detail, sizeof detail, "%lld occurrence(s) skipped",
                     ctl_int(r, "occurrences"));
            d = detail;
        } else if (strcmp(d, "-") == 0) {
            d = ctl_str(r, "reason");
        }
        printf("%-24s  %-16s  %-10s  %s\n", ctl_str(r, "nominal_at"),
               ctl_str(r, "job_id"), ctl_str(r, "outcome"),
               strcmp(d, "-") == 0 ? "" : d);
    }
    if (json_is_string(json_object_get(out, "next_before"))) {
        printf("(older runs before %s)\n", ctl_str(out, "next_before"));
    }
}

/* dlq: the failed jobs with their last error. */
static void show_dlq(json_t *out, const char *arg)
{
    json_t *j;
    size_t i;
    (void)arg;
    printf("%-16s  %-14s %-10s %4s  %-24s  %s\n", "ID", "TYPE", "QUEUE", "TRY",
           "FINISHED", "LAST ERROR");
    json_array_foreach(json_object_get(out, "jobs"), i, j)
    {
        printf("%-16s  %-14.14s %-10.10s %4lld  %-24s  %.60s\n",
               ctl_str(j, "id"), ctl_str(j, "type"), ctl_str(j, "queue"),
               ctl_int(j, "attempts"), ctl_str(j, "finished_at"),
               ctl_str(j, "last_error"));
    }
    if (json_is_string(json_object_get(out, "next_cursor"))) {
        printf("next cursor: %s\n", ctl_str(out, "next_cursor"));
    }
}

/* dlq --retry | --delete: "retried 3 of 3 dead-letter jobs". */
static void show_dlq_bulk(json_t *out, const char *verb)
{
    printf("%s %lld of %lld dead-letter jobs%s\n", verb, ctl_int(out, verb),
           ctl_int(out, "matched"),
           json_is_true(json_object_get(out, "more"))
               ? " (more are left: run it again)"
               : "");
}

/* "none" for a JSON null (no cap), else the number. */
static void cap_text(json_t *q, const char *key, char *out, size_t size)
{
    json_t *v = json_object_get(q, key);
    if (json_is_integer(v)) {
        snprintf(out, size, "%lld", (long long)json_integer_value(v));
    } else {
        snprintf(out, size, "none");
    }
}

static void queue_header(void)
{
    printf("%-16s %-7s %11s %11s %8s %8s %8s %10s %9s %7s\n", "NAME", "STATE",
           "CONCURRENCY", "MAX PENDING", "WAITING", "PENDING", "RUNNING",
           "COMPLETED", "CANCELLED", "FAILED");
}

static void queue_row(json_t *q)
{
    json_t *counts = json_object_get(q, "counts");
    char conc[24], maxp[24];
    cap_text(q, "concurrency", conc, sizeof conc);
    cap_text(q, "max_pending", maxp, sizeof maxp);
    /* Scheduled and waiting jobs are both not yet runnable. */
    printf("%-16s %-7s %11s %11s %8lld %8lld %8lld %10lld %9lld %7lld\n",
           ctl_str(q, "name"),
           json_is_true(json_object_get(q, "paused")) ? "paused" : "active",
           conc, maxp,
           ctl_int(counts, "scheduled") + ctl_int(counts, "waiting"),
           ctl_int(counts, "pending"), ctl_int(counts, "running"),
           ctl_int(counts, "completed"), ctl_int(counts, "cancelled"),
           ctl_int(counts, "failed"));
}

static void show_queues(json_t *out, const char *arg)
{
    json_t *q;
    size_t i;
    (void)arg;
    queue_header();
    json_array_foreach(json_object_get(out, "queues"), i, q)
    {
        queue_row(q);
    }
}

static void show_queue(json_t *out, const char *arg)
{
    (void)arg;
    queue_header();
    queue_row(out);
}

/* workflow: a summary line, then its jobs. */
static void show_workflow(json_t *out, const char *arg)
{
    const char *key;
    json_t *v;
    bool first = true;
    (void)arg;
    printf("workflow %s \"%s\": %s (", ctl_str(out, "id"),
           json_string_value(json_object_get(out, "name")) != NULL
               ? json_string_value(json_object_get(out, "name"))
               : "",
           ctl_str(out, "status"));
    json_object_foreach(json_object_get(out, "counts"), key, v)
    {
        if (json_integer_value(v) > 0) {
            printf("%s%lld %s", first ? "" : ", ",
                   (long long)json_integer_value(v), key);
            first = false;
        }
    }
    printf("%s)\n", first ? "no jobs" : "");
    if (json_array_size(json_object_get(out, "jobs")) > 0) {
        ctl_jobs_table(json_object_get(out, "jobs"));
    }
}

/* preview: one time a line. */
static void show_times(json_t *out, const char *arg)
{
    json_t *t;
    size_t i;
    (void)arg;
    json_array_foreach(json_object_get(out, "times"), i, t)
    {
        puts(json_is_string(t) ? json_string_value(t) : "-");
    }
}

static int need_arg(int argc, char **argv, const char *cmd, const char *what)
{
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "rotactl %s: missing %s\n", cmd, what);
        return CTL_EXIT_USAGE;
    }
    return 0;
}

/* pause|resume|trigger|retry|runs ID */
int ctl_cmd_job_action(struct ctl *ctl, int argc, char **argv)
{
    char path[300];
    int rv = need_arg(argc, argv, argv[0], "job id");
    if (rv != 0) {
        return rv;
    }
    snprintf(path, sizeof path, "/v1/jobs/%s/%s", argv[1], argv[0]);
    if (strcmp(argv[0], "runs") == 0) {
        return call_show(ctl, "GET", path, NULL, show_runs, NULL);
    }
    return call_show(ctl, "POST", path, NULL,
                     strcmp(argv[0], "trigger") == 0 ? show_trigger
                     : strcmp(argv[0], "retry") == 0 ? show_job_row
                                                     : show_schedule,
                     strcmp(argv[0], "trigger") == 0 ? argv[1] : argv[0]);
}

/* dlq [--queue Q] [--type T] [--user U] [--retry | --delete] */
int ctl_cmd_dlq(struct ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        {"queue", 1, 0, 'q'}, {"type", 1, 0, 't'},   {"user", 1, 0, 'u'},
        {"retry", 0, 0, 'r'}, {"delete", 0, 0, 'd'}, {0, 0, 0, 0}};
    char path[1200] = "/v1/dlq";
    const char *method = "GET";
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "q:t:", opts, NULL)) != -1) {
        switch (c) {
            case 'q':
                ctl_add_query(path, sizeof path, "queue", optarg);
                break;
            case 't':
                ctl_add_query(path, sizeof path, "type", optarg);
                break;
            case 'u':
                ctl_add_query(path, sizeof path, "user_id", optarg);
                break;
            case 'r':
                method = "POST";
                break;
            case 'd':
                method = "DELETE";
                break;
            default:
                return CTL_EXIT_USAGE;
        }
    }
    if (strcmp(method, "POST") == 0) {
        /* The same filters on /v1/dlq/retry. */
        char retry[1300];
        const char *q = strchr(path, '?');
        snprintf(retry, sizeof retry, "/v1/dlq/retry%s", q != NULL ? q : "");
        return call_show(ctl, method, retry, NULL, show_dlq_bulk, "retried");
    }
    if (strcmp(method, "DELETE") == 0) {
        return call_show(ctl, method, path, NULL, show_dlq_bulk, "deleted");
    }
    return call_show(ctl, method, path, NULL, show_dlq, NULL);
}

/* "none" (null: no cap) or a non-negative integer; NULL if neither (the
 * server checks the range). */
static json_t *cap_value(const char *s)
{
    char *end;
    long long v;
    if (strcmp(s, "none") == 0) {
        return json_null();
    }
    v = strtoll(s, &end, 10);
    return *s != '\0' && *end == '\0' && v >= 0 ? json_integer(v) : NULL;
}

/* queues | queue NAME [--pause | --resume] [--concurrency N|none]
 *        [--max-pending N|none] */
int ctl_cmd_queues(struct ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {{"pause", 0, 0, 'p'},
                                         {"resume", 0, 0, 'r'},
                                         {"concurrency", 1, 0, 'c'},
                                         {"max-pending", 1, 0, 'm'},
                                         {0, 0, 0, 0}};
    json_t *cap;
    char path[400];
    json_t *set = json_object();
    int c, rv;

    if (strcmp(argv[0], "queues") == 0) {
        json_decref(set);
        return call_show(ctl, "GET", "/v1/queues", NULL, show_queues, NULL);
    }
    rv = need_arg(argc, argv, "queue", "queue name");
    if (rv != 0) {
        json_decref(set);
        return rv;
    }
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'p' || c == 'r') {
            json_object_set_new(set, "paused", json_boolean(c == 'p'));
        } else if ((c == 'c' || c == 'm') &&
                   (cap = cap_value(optarg)) != NULL) {
            json_object_set_new(set, c == 'c' ? "concurrency" : "max_pending",
                                cap);
        } else {
            if (c == 'c' || c == 'm') {
                fprintf(stderr, "rotactl queue: --%s wants a number or none\n",
                        c == 'c' ? "concurrency" : "max-pending");
            }
            json_decref(set);
            return CTL_EXIT_USAGE;
        }
    }
    snprintf(path, sizeof path, "/v1/queues/%s", argv[1]);
    if (json_object_size(set) == 0) {
        json_decref(set);
        return call_show(ctl, "GET", path, NULL, show_queue, NULL);
    }
    char *body = json_dumps(set, JSON_COMPACT);
    json_decref(set);
    rv = call_show(ctl, "PUT", path, body, show_queue, NULL);
    free(body);
    return rv;
}

/* workflow ID [--cancel] | workflow --file FILE|- (submit) */
int ctl_cmd_workflow(struct ctl *ctl, int argc, char **argv)
{
    char path[300];
    if (argc >= 3 && strcmp(argv[1], "--file") == 0) {
        FILE *f = strcmp(argv[2], "-") == 0 ? stdin : fopen(argv[2], "r");
        json_error_t err;
        json_t *wf = f != NULL ? json_loadf(f, 0, &err) : NULL;
        if (f != NULL && f != stdin) {
            fclose(f);
        }
        if (wf == NULL) {
            fprintf(stderr, "rotactl workflow: cannot read %s\n", argv[2]);
            return CTL_EXIT_USAGE;
        }
        char *body = json_dumps(wf, JSON_COMPACT);
        json_decref(wf);
        int rv =
            call_show(ctl, "POST", "/v1/workflows", body, show_workflow, NULL);
        free(body);
        return rv;
    }
    int rv = need_arg(argc, argv, "workflow", "workflow id or --file");
    if (rv != 0) {
        return rv;
    }
    snprintf(path, sizeof path, "/v1/workflows/%s", argv[1]);
    bool cancel = argc >= 3 && strcmp(argv[2], "--cancel") == 0;
    return call_show(ctl, cancel ? "DELETE" : "GET", path, NULL, show_workflow,
                     NULL);
}

/* preview SCHEDULE [--timezone TZ] [--n N] */
int ctl_cmd_preview(struct ctl *ctl, int argc, char **argv)
{
    char path[1200] = "/v1/schedule/preview";
    int rv = need_arg(argc, argv, "preview", "schedule expression");
    if (rv != 0) {
        return rv;
    }
    ctl_add_query(path, sizeof path, "schedule", argv[1]);
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--timezone") == 0) {
            ctl_add_query(path, sizeof path, "timezone", argv[i + 1]);
        } else if (strcmp(argv[i], "--n") == 0) {
            ctl_add_query(path, sizeof path, "n", argv[i + 1]);
        } else {
            return CTL_EXIT_USAGE;
        }
    }
    return call_show(ctl, "GET", path, NULL, show_times, NULL);
}
