/* rotactl webhook create|list|get|delete|deliveries (docs/api.md,
 * Webhooks; admin). A secret the cluster makes is printed once. */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

#define WEBHOOK_USAGE                                                      \
    "create --url U --events E,... [-q|--queue Q]... [--secret S] | list " \
    "| get ID | delete ID | deliveries ID [--limit N] [--after K]"

static int usage(const char *msg)
{
    fprintf(stderr, "rotactl webhook: %s\nusage: rotactl webhook %s\n", msg,
            WEBHOOK_USAGE);
    return CTL_EXIT_USAGE;
}

/* Append the comma-separated names of @arg to the array @arr. */
static void add_names(json_t *arr, const char *arg)
{
    char copy[2048], *save = NULL;
    snprintf(copy, sizeof copy, "%s", arg);
    for (char *s = strtok_r(copy, ",", &save); s != NULL;
         s = strtok_r(NULL, ",", &save)) {
        json_array_append_new(arr, json_string(s));
    }
}

/* "a,b", or @none for an empty array. */
static void join(json_t *arr, const char *none, char *out, size_t size)
{
    size_t i, n = 0;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(arr, i, v)
    {
        if (n < size) {
            n += (size_t)snprintf(out + n, size - n, "%s%s", i > 0 ? "," : "",
                                  json_string_value(v));
        }
    }
    if (json_array_size(arr) == 0) {
        snprintf(out, size, "%s", none);
    }
}

/* The events last: "job.*" comes back as every job event's name. */
static void hook_header(void)
{
    printf("%-16s  %-40s %-12s %7s %9s %7s %7s  %s\n", "ID", "URL", "QUEUES",
           "PENDING", "DELIVERED", "EXPIRED", "DROPPED", "EVENTS");
}

static void hook_row(json_t *w)
{
    char events[512], queues[512];
    join(json_object_get(w, "events"), "-", events, sizeof events);
    join(json_object_get(w, "queues"), "all", queues, sizeof queues);
    printf("%-16s  %-40s %-12s %7lld %9lld %7lld %7lld  %s\n", ctl_str(w, "id"),
           ctl_str(w, "url"), queues, ctl_int(w, "pending"),
           ctl_int(w, "delivered"), ctl_int(w, "expired"),
           ctl_int(w, "dropped"), events);
}

static int webhook_create(struct ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {{"url", 1, 0, 'u'},
                                         {"events", 1, 0, 'e'},
                                         {"queue", 1, 0, 'q'},
                                         {"secret", 1, 0, 's'},
                                         {0, 0, 0, 0}};
    json_t *req = json_object(), *events = json_array(), *queues = NULL;
    json_t *out = NULL;
    char *body;
    int c, rv;

    optind = 1;
    while ((c = getopt_long(argc, argv, "q:", opts, NULL)) != -1) {
        if (c == 'u' || c == 's') {
            json_object_set_new(req, c == 'u' ? "url" : "secret",
                                json_string(optarg));
        } else if (c == 'e') {
            add_names(events, optarg);
        } else if (c == 'q') {
            if (queues == NULL) {
                queues = json_array();
            }
            add_names(queues, optarg);
        } else {
            json_decref(req), json_decref(events), json_decref(queues);
            return usage("unknown option");
        }
    }
    if (json_object_get(req, "url") == NULL || json_array_size(events) == 0 ||
        optind < argc) {
        json_decref(req), json_decref(events), json_decref(queues);
        return usage("create wants --url and --events");
    }
    json_object_set_new(req, "events", events);
    if (queues != NULL) {
        json_object_set_new(req, "queues", queues);
    }
    body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    rv = ctl_call(ctl, "POST", "/v1/webhooks", body, &out);
    free(body);
    if (rv != 0) {
        return rv;
    }
    if (ctl->json) {
        ctl_print_json(out);
    } else {
        hook_header();
        hook_row(out);
        if (json_object_get(out, "secret") != NULL) {
            printf("secret: %s\n", ctl_str(out, "secret"));
            fprintf(stderr,
                    "(the secret is shown once: the receiver checks "
                    "signatures with it)\n");
        }
    }
    json_decref(out);
    return 0;
}

static int webhook_list(struct ctl *ctl)
{
    json_t *out = NULL, *w;
    size_t i;
    int rv = ctl_get_table(ctl, "/v1/webhooks", &out);
    if (rv != 0 || out == NULL) {
        return rv;
    }
    hook_header();
    json_array_foreach(json_object_get(out, "webhooks"), i, w)
    {
        hook_row(w);
    }
    json_decref(out);
    return 0;
}

static int webhook_get(struct ctl *ctl, const char *id)
{
    char path[256];
    json_t *out = NULL;
    int rv;
    snprintf(path, sizeof path, "/v1/webhooks/%s", id);
    rv = ctl_get_table(ctl, path, &out);
    if (rv != 0 || out == NULL) {
        return rv;
    }
    hook_header();
    hook_row(out);
    json_decref(out);
    return 0;
}

static int webhook_delete(struct ctl *ctl, const char *id)
{
    char path[256];
    json_t *out = NULL;
    int rv;
    snprintf(path, sizeof path, "/v1/webhooks/%s", id);
    rv = ctl_call(ctl, "DELETE", path, NULL, &out);
    if (rv != 0) {
        return rv;
    }
    if (ctl->json) {
        ctl_print_json(out);
    } else {
        printf("deleted webhook %s\n", id);
    }
    json_decref(out);
    return 0;
}

static void delivery_row(json_t *d)
{
    json_t *ev = json_object_get(d, "event");
    json_t *job = json_object_get(ev, "job");
    json_t *st = json_object_get(d, "last_status");
    char status[16] = "-";
    if (json_is_integer(st)) {
        snprintf(status, sizeof status, "%lld",
                 (long long)json_integer_value(st));
    }
    printf("%-34s %5lld  %-24s %-24s %6s  %-16s %-16s  %s\n",
           ctl_str(d, "delivery"), ctl_int(d, "tries"), ctl_str(d, "next_at"),
           ctl_str(d, "last_at"), status, ctl_str(ev, "event"),
           job != NULL ? ctl_str(job, "id") : "-", ctl_str(d, "last_error"));
}

static int webhook_deliveries(struct ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        {"limit", 1, 0, 'n'}, {"after", 1, 0, 'a'}, {0, 0, 0, 0}};
    char path[1024];
    json_t *out = NULL, *d;
    size_t i;
    int c, rv;

    if (argc < 2 || argv[1][0] == '-') {
        return usage("deliveries wants a webhook id");
    }
    snprintf(path, sizeof path, "/v1/webhooks/%s/deliveries", argv[1]);
    optind = 2;
    while ((c = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
        if (c != 'n' && c != 'a') {
            return usage("unknown option");
        }
        ctl_add_query(path, sizeof path, c == 'n' ? "limit" : "after", optarg);
    }
    rv = ctl_get_table(ctl, path, &out);
    if (rv != 0 || out == NULL) {
        return rv;
    }
    hook_header();
    hook_row(json_object_get(out, "webhook"));
    printf("\n%-34s %5s  %-24s %-24s %6s  %-16s %-16s  %s\n", "DELIVERY",
           "TRIES", "NEXT TRY", "LAST TRY", "STATUS", "EVENT", "JOB",
           "LAST ERROR");
    json_array_foreach(json_object_get(out, "deliveries"), i, d)
    {
        delivery_row(d);
    }
    if (json_object_get(out, "next_after") != NULL) {
        printf("more: --after %s\n", ctl_str(out, "next_after"));
    }
    json_decref(out);
    return 0;
}

int ctl_cmd_webhook(struct ctl *ctl, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    bool one_id = argc == 3 && argv[2][0] != '-';

    if (strcmp(sub, "create") == 0) {
        return webhook_create(ctl, argc - 1, argv + 1);
    }
    if (strcmp(sub, "list") == 0 && argc == 2) {
        return webhook_list(ctl);
    }
    if (strcmp(sub, "get") == 0 && one_id) {
        return webhook_get(ctl, argv[2]);
    }
    if (strcmp(sub, "delete") == 0 && one_id) {
        return webhook_delete(ctl, argv[2]);
    }
    if (strcmp(sub, "deliveries") == 0) {
        return webhook_deliveries(ctl, argc - 1, argv + 1);
    }
    return usage(sub[0] == '\0' ? "which subcommand?"
                                : "unknown subcommand or arguments");
}
