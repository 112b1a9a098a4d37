/* rotactl commands for schedules, the dead-letter queue, workflows and
 * queues: thin wrappers over the HTTP API (docs/api.md) that print the
 * server's JSON. */

#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

static int print(json_t *out)
{
    char *s = json_dumps(out, JSON_INDENT(2) | JSON_ENCODE_ANY);
    puts(s != NULL ? s : "null");
    free(s);
    json_decref(out);
    return 0;
}

static int call_print(struct ctl *ctl,
                      const char *method,
                      const char *path,
                      const char *body)
{
    json_t *out = NULL;
    int rv = ctl_call(ctl, method, path, body, &out);
    return rv != 0 ? rv : print(out);
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
    return call_print(ctl, strcmp(argv[0], "runs") == 0 ? "GET" : "POST", path,
                      NULL);
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
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
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
        return call_print(ctl, method, retry, NULL);
    }
    return call_print(ctl, method, path, NULL);
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
        return call_print(ctl, "GET", "/v1/queues", NULL);
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
        return call_print(ctl, "GET", path, NULL);
    }
    char *body = json_dumps(set, JSON_COMPACT);
    json_decref(set);
    rv = call_print(ctl, "PUT", path, body);
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
        int rv = call_print(ctl, "POST", "/v1/workflows", body);
        free(body);
        return rv;
    }
    int rv = need_arg(argc, argv, "workflow", "workflow id or --file");
    if (rv != 0) {
        return rv;
    }
    snprintf(path, sizeof path, "/v1/workflows/%s", argv[1]);
    bool cancel = argc >= 3 && strcmp(argv[2], "--cancel") == 0;
    return call_print(ctl, cancel ? "DELETE" : "GET", path, NULL);
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
    return call_print(ctl, "GET", path, NULL);
}
