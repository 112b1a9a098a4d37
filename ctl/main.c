/* rotactl: talk to any Rota node.
 *
 *   rotactl [-s|--server URL[,URL...]] [--json | -o json|table]
 *           [--timeout S] COMMAND [options]
 *
 * Commands print a readable table or one summary line, or the server's
 * JSON with --json (-o json). A refusal prints the server's error and
 * exits 1; usage errors exit 2; no server reachable exits 3. */

#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "ctl/cert.h"
#include "ctl/ctl.h"

struct command
{
    const char *name;
    const char *usage;
    int (*run)(struct ctl *ctl, int argc, char **argv);
};

static const struct command *find_command(const char *name);

static int usage_error(const char *cmd, const char *msg)
{
    const struct command *c = find_command(cmd);
    fprintf(stderr, "rotactl %s: %s\nusage: rotactl %s %s\n", cmd, msg, cmd,
            c != NULL ? c->usage : "");
    return CTL_EXIT_USAGE;
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return true;
        }
    }
    return false;
}

/* ---- submit ------------------------------------------------------------- */

static int set_json(json_t *obj, const char *key, const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (v == NULL) {
        return -1;
    }
    json_object_set_new(obj, key, v);
    return 0;
}

static char *read_file(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    struct buf b;
    char chunk[4096];
    size_t n;
    int rc = 0;

    if (f == NULL) {
        return NULL;
    }
    buf_init(&b, 0);
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        rc = buf_append(&b, chunk, n);
    }
    if (f != stdin) {
        fclose(f);
    }
    if (rc != 0) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b);
}

/* submit's options that set one field of the job to their argument. */
static const struct
{
    int opt;
    const char *key;
    bool integer;
} submit_fields[] = {
    {'t', "type", false},     {'q', "queue", false},
    {'u', "user_id", false},  {'d', "delay", false},
    {'r', "run_at", false},   {'s', "schedule", false},
    {'z', "timezone", false}, {'T', "timeout", false},
    {'n', "name", false},     {'k', "idempotency_key", false},
    {'P', "priority", true},  {'m', "max_attempts", true},
};

/* What submit's options say. */
struct submit_args
{
    json_t *job;      /* The job built from the options (owned). */
    const char *file; /* --file: send this file (or stdin) instead. */
};

static bool submit_field(json_t *job, int opt, const char *arg)
{
    for (size_t i = 0; i < sizeof submit_fields / sizeof submit_fields[0];
         i++) {
        if (submit_fields[i].opt == opt) {
            json_object_set_new(job, submit_fields[i].key,
                                submit_fields[i].integer
                                    ? json_integer(atoll(arg))
                                    : json_string(arg));
            return true;
        }
    }
    return false;
}

/* --tag key=value; -1 without '='. */
static int submit_tag(json_t *job, const char *arg)
{
    const char *eq = strchr(arg, '=');
    json_t *tags = json_object_get(job, "tags");
    char key[256];

    if (eq == NULL) {
        return -1;
    }
    if (tags == NULL) {
        tags = json_object();
        json_object_set_new(job, "tags", tags);
    }
    snprintf(key, sizeof key, "%.*s", (int)(eq - arg), arg);
    json_object_set_new(tags, key, json_string(eq + 1));
    return 0;
}

/* --depends-on ID, repeatable. */
static void submit_dep(json_t *job, const char *arg)
{
    json_t *deps = json_object_get(job, "depends_on");
    if (deps == NULL) {
        deps = json_array();
        json_object_set_new(job, "depends_on", deps);
    }
    json_array_append_new(deps, json_string(arg));
}

/* Parse submit's options into @a. 0, or the exit code of the usage error
 * it printed (a->job is then NULL). */
static int submit_parse(int argc, char **argv, struct submit_args *a)
{
    static const struct option opts[] = {{"type", 1, 0, 't'},
                                         {"payload", 1, 0, 'p'},
                                         {"queue", 1, 0, 'q'},
                                         {"priority", 1, 0, 'P'},
                                         {"user", 1, 0, 'u'},
                                         {"tag", 1, 0, 'g'},
                                         {"delay", 1, 0, 'd'},
                                         {"run-at", 1, 0, 'r'},
                                         {"schedule", 1, 0, 's'},
                                         {"timezone", 1, 0, 'z'},
                                         {"max-attempts", 1, 0, 'm'},
                                         {"timeout", 1, 0, 'T'},
                                         {"depends-on", 1, 0, 'D'},
                                         {"idempotency-key", 1, 0, 'k'},
                                         {"name", 1, 0, 'n'},
                                         {"file", 1, 0, 'f'},
                                         {0, 0, 0, 0}};
    const char *err = NULL;
    int c;

    a->job = json_object();
    a->file = NULL;
    optind = 1;
    while (err == NULL &&
           (c = getopt_long(argc, argv, "t:p:q:", opts, NULL)) != -1) {
        if (c == 'f') {
            a->file = optarg;
        } else if (c == 'p') {
            if (set_json(a->job, "payload", optarg) != 0) {
                err = "--payload is not JSON";
            }
        } else if (c == 'g') {
            if (submit_tag(a->job, optarg) != 0) {
                err = "--tag wants key=value";
            }
        } else if (c == 'D') {
            submit_dep(a->job, optarg);
        } else if (!submit_field(a->job, c, optarg)) {
            err = "unknown option";
        }
    }
    if (err != NULL) {
        json_decref(a->job);
        a->job = NULL;
        return usage_error("submit", err);
    }
    return 0;
}

/* The request body into *body: --file's text, else the job as JSON. 0, or
 * the exit code of the usage error it printed. */
static int submit_body(const struct submit_args *a, char **body)
{
    if (a->file != NULL) {
        *body = read_file(a->file);
        return *body != NULL ? 0 : usage_error("submit", "cannot read --file");
    }
    if (json_object_get(a->job, "type") == NULL) {
        return usage_error("submit", "--type is required");
    }
    *body = json_dumps(a->job, JSON_COMPACT);
    return 0;
}

/* POST @body and print the job(s) the server answers with. */
static int submit_send(struct ctl *ctl, const char *body)
{
    json_t *out = NULL, *jobs, *j;
    size_t i;
    int rv = ctl_call(ctl, "POST", "/v1/jobs", body, &out);

    if (rv != 0) {
        return rv;
    }
    if (ctl->json) {
        ctl_print_json(out);
    } else {
        jobs = json_object_get(out, "jobs");
        ctl_job_header();
        if (jobs != NULL) {
            json_array_foreach(jobs, i, j)
            {
                ctl_job_row(j);
            }
        } else {
            ctl_job_row(out);
        }
    }
    json_decref(out);
    return 0;
}

static int cmd_submit(struct ctl *ctl, int argc, char **argv)
{
    struct submit_args a;
    char *body = NULL;
    int rv = submit_parse(argc, argv, &a);

    if (rv == 0) {
        rv = submit_body(&a, &body);
    }
    json_decref(a.job);
    if (rv == 0) {
        rv = submit_send(ctl, body);
    }
    free(body);
    return rv;
}

/* ---- get, cancel, patch ---------------------------------------------------
 */

int ctl_show_job(struct ctl *ctl, json_t *job)
{
    if (ctl->json) {
        ctl_print_json(job);
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(job, key, v)
        {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            printf("%-16s %s\n", key,
                   json_is_string(v) ? json_string_value(v) : s);
            free(s);
        }
    }
    json_decref(job);
    return 0;
}

static int cmd_get(struct ctl *ctl, int argc, char **argv)
{
    char path[256];
    json_t *out;
    bool lin = argc > 2 && strcmp(argv[2], "--linearizable") == 0;
    int rv;
    if (argc < 2 || argv[1][0] == '-') {
        return usage_error("get", "missing job id");
    }
    snprintf(path, sizeof path, "/v1/jobs/%s%s", argv[1],
             lin ? "?consistency=linearizable" : "");
    rv = ctl_call(ctl, "GET", path, NULL, &out);
    return rv != 0 ? rv : ctl_show_job(ctl, out);
}

static int cmd_cancel(struct ctl *ctl, int argc, char **argv)
{
    char path[256];
    json_t *out;
    int rv;
    if (argc < 2) {
        return usage_error("cancel", "missing job id");
    }
    snprintf(path, sizeof path, "/v1/jobs/%s", argv[1]);
    rv = ctl_call(ctl, "DELETE", path, NULL, &out);
    return rv != 0 ? rv : ctl_show_job(ctl, out);
}

static int cmd_patch(struct ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        {"priority", 1, 0, 'P'}, {"payload", 1, 0, 'p'},
        {"queue", 1, 0, 'q'},    {"max-attempts", 1, 0, 'm'},
        {"run-at", 1, 0, 'r'},   {"delay", 1, 0, 'd'},
        {"timeout", 1, 0, 'T'},  {0, 0, 0, 0}};
    json_t *patch = json_object(), *out;
    char path[256], *body;
    int c, rv;

    if (argc < 2 || argv[1][0] == '-') {
        json_decref(patch);
        return usage_error("patch", "missing job id");
    }
    optind = 2;
    while ((c = getopt_long(argc, argv, "p:q:", opts, NULL)) != -1) {
        switch (c) {
            case 'P':
                json_object_set_new(patch, "priority",
                                    json_integer(atoll(optarg)));
                break;
            case 'm':
                json_object_set_new(patch, "max_attempts",
                                    json_integer(atoll(optarg)));
                break;
            case 'q':
                json_object_set_new(patch, "queue", json_string(optarg));
                break;
            case 'r':
                json_object_set_new(patch, "run_at", json_string(optarg));
                break;
            case 'd':
                json_object_set_new(patch, "delay", json_string(optarg));
                break;
            case 'T':
                json_object_set_new(patch, "timeout", json_string(optarg));
                break;
            case 'p':
                if (set_json(patch, "payload", optarg) == 0) {
                    break;
                }
                /* fallthrough */
            default:
                json_decref(patch);
                return usage_error("patch", "bad option");
        }
    }
    snprintf(path, sizeof path, "/v1/jobs/%s", argv[1]);
    body = json_dumps(patch, JSON_COMPACT);
    json_decref(patch);
    rv = ctl_call(ctl, "PATCH", path, body, &out);
    free(body);
    return rv != 0 ? rv : ctl_show_job(ctl, out);
}

/* ---- list --------------------------------------------------------------- */

static int cmd_list(struct ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        {"status", 1, 0, 's'}, {"user", 1, 0, 'u'},  {"queue", 1, 0, 'q'},
        {"type", 1, 0, 't'},   {"limit", 1, 0, 'l'}, {"cursor", 1, 0, 'c'},
        {"all", 0, 0, 'a'},    {0, 0, 0, 0}};
    char query[2048] = "", path[4200];
    const char *cursor = NULL;
    bool all = false, first = true;
    json_t *collected = json_array();
    int c, rv = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "q:t:n:", opts, NULL)) != -1) {
        switch (c) {
            case 's':
                ctl_add_query(query, sizeof query, "status", optarg);
                break;
            case 'u':
                ctl_add_query(query, sizeof query, "user_id", optarg);
                break;
            case 'q':
                ctl_add_query(query, sizeof query, "queue", optarg);
                break;
            case 't':
                ctl_add_query(query, sizeof query, "type", optarg);
                break;
            case 'l':
            case 'n':
                ctl_add_query(query, sizeof query, "limit", optarg);
                break;
            case 'c':
                cursor = optarg;
                break;
            case 'a':
                all = true;
                break;
            default:
                json_decref(collected);
                return usage_error("list", "unknown option");
        }
    }
    char next[2048] = "";
    if (cursor != NULL) {
        snprintf(next, sizeof next, "%s", cursor);
    }
    do {
        json_t *out, *jobs, *j;
        size_t i;
        char q[4096];
        snprintf(q, sizeof q, "%s", query);
        if (next[0] != '\0') {
            ctl_add_query(q, sizeof q, "cursor", next);
        }
        snprintf(path, sizeof path, "/v1/jobs%s", q);
        rv = ctl_call(ctl, "GET", path, NULL, &out);
        if (rv != 0) {
            break;
        }
        jobs = json_object_get(out, "jobs");
        if (!ctl->json && first) {
            ctl_job_header();
        }
        first = false;
        json_array_foreach(jobs, i, j)
        {
            if (ctl->json) {
                json_array_append(collected, j);
            } else {
                ctl_job_row(j);
            }
        }
        const char *nc = json_string_value(json_object_get(out, "next_cursor"));
        snprintf(next, sizeof next, "%s", nc != NULL ? nc : "");
        if (!all && nc != NULL && !ctl->json) {
            printf("next cursor: %s\n", nc);
        }
        if (!all && ctl->json) {
            json_t *res = json_pack("{s:O}", "jobs", collected);
            if (nc != NULL) {
                json_object_set_new(res, "next_cursor", json_string(nc));
            }
            ctl_print_json(res);
            json_decref(res);
        }
        json_decref(out);
    } while (all && next[0] != '\0');
    if (rv == 0 && all && ctl->json) {
        json_t *res = json_pack("{s:O}", "jobs", collected);
        ctl_print_json(res);
        json_decref(res);
    }
    json_decref(collected);
    return rv;
}

/* ---- cluster ------------------------------------------------------------ */

static int show_cluster(struct ctl *ctl, json_t *v)
{
    json_t *nodes, *n, *leader;
    size_t i;
    if (ctl->json) {
        ctl_print_json(v);
        json_decref(v);
        return 0;
    }
    leader = json_object_get(v, "leader");
    printf("leader: %s  term: %lld\n",
           json_is_object(leader) ? ctl_str(leader, "http_addr") : "none",
           (long long)json_integer_value(json_object_get(v, "term")));
    printf("%-4s %-22s %-22s %-9s %-5s %s\n", "ID", "RAFT", "HTTP", "ROLE",
           "VOTER", "APPLIED");
    nodes = json_object_get(v, "nodes");
    json_array_foreach(nodes, i, n)
    {
        json_t *a = json_object_get(n, "applied_index");
        char applied[32] = "-";
        if (json_is_integer(a)) {
            snprintf(applied, sizeof applied, "%lld",
                     (long long)json_integer_value(a));
        }
        printf("%-4lld %-22s %-22s %-9s %-5s %s\n",
               (long long)json_integer_value(json_object_get(n, "id")),
               ctl_str(n, "raft_addr"), ctl_str(n, "http_addr"),
               ctl_str(n, "role"),
               json_is_true(json_object_get(n, "voter")) ? "yes" : "no",
               applied);
    }
    json_decref(v);
    return 0;
}

static int cmd_cluster(struct ctl *ctl, int argc, char **argv)
{
    json_t *out;
    int rv = ctl_call(ctl, "GET", "/v1/cluster", NULL, &out);
    (void)argc;
    (void)argv;
    return rv != 0 ? rv : show_cluster(ctl, out);
}

static int cmd_join(struct ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {{"id", 1, 0, 'i'},
                                         {"raft-addr", 1, 0, 'r'},
                                         {"http-addr", 1, 0, 'h'},
                                         {0, 0, 0, 0}};
    long long id = 0;
    const char *raft = NULL, *http = NULL;
    json_t *out;
    char *body;
    int c, rv;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
            case 'i':
                id = atoll(optarg);
                break;
            case 'r':
                raft = optarg;
                break;
            case 'h':
                http = optarg;
                break;
            default:
                return usage_error("join", "unknown option");
        }
    }
    if (id <= 0 || raft == NULL || http == NULL) {
        return usage_error("join",
                           "--id, --raft-addr and --http-addr are "
                           "required");
    }
    json_t *req = json_pack("{s:I,s:s,s:s}", "id", (json_int_t)id, "raft_addr",
                            raft, "http_addr", http);
    body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    rv = ctl_call(ctl, "POST", "/v1/cluster/nodes", body, &out);
    free(body);
    return rv != 0 ? rv : show_cluster(ctl, out);
}

static int cmd_remove(struct ctl *ctl, int argc, char **argv)
{
    char path[128];
    json_t *out;
    int rv;
    if (argc < 2) {
        return usage_error("remove", "missing node id");
    }
    snprintf(path, sizeof path, "/v1/cluster/nodes/%s", argv[1]);
    rv = ctl_call(ctl, "DELETE", path, NULL, &out);
    return rv != 0 ? rv : show_cluster(ctl, out);
}

static int cmd_transfer(struct ctl *ctl, int argc, char **argv)
{
    char body[64];
    json_t *out;
    int rv;
    snprintf(body, sizeof body, "{\"id\":%lld}",
             argc >= 2 ? atoll(argv[1]) : 0LL);
    rv = ctl_call(ctl, "POST", "/v1/cluster/transfer", body, &out);
    return rv != 0 ? rv : show_cluster(ctl, out);
}

/* ---- main --------------------------------------------------------------- */

static const struct command commands[] = {
    {"submit",
     "-t|--type T [-p|--payload JSON] [-q|--queue Q] [--priority N] "
     "[--user U] "
     "[--tag k=v]... [--delay D | --run-at TIME] [--schedule CRON "
     "[--timezone TZ]] [--max-attempts N] [--timeout D] [--depends-on ID]... "
     "[--idempotency-key K] [--name N] | --file FILE|-",
     cmd_submit},
    {"get", "ID [--linearizable]", cmd_get},
    {"list",
     "[--status S] [--user U] [-q|--queue Q] [-t|--type T] "
     "[-n|--limit N] [--cursor C] [--all]",
     cmd_list},
    {"cancel", "ID", cmd_cancel},
    {"patch",
     "ID [--priority N] [-p|--payload JSON] [-q|--queue Q] "
     "[--max-attempts N] "
     "[--run-at TIME | --delay D] [--timeout D]",
     cmd_patch},
    {"wait",
     "ID [--timeout D] (until the job is final; exit 0 completed, 1 failed "
     "or cancelled, 2 timed out)",
     ctl_cmd_wait},
    {"watch",
     "[-q|--queue Q] [-t|--type T] [--job ID] [--events E,...] "
     "[--last-event-id ID] (follow the events until SIGINT)",
     ctl_cmd_watch},
    {"cluster", "", cmd_cluster},
    {"workers", "(the registered workers)", ctl_cmd_workers},
    {"join", "--id N --raft-addr A:P --http-addr A:P", cmd_join},
    {"remove", "ID", cmd_remove},
    {"transfer", "[ID]", cmd_transfer},
    {"pause", "ID (a schedule)", ctl_cmd_job_action},
    {"resume", "ID (a schedule)", ctl_cmd_job_action},
    {"trigger", "ID (a schedule: run now)", ctl_cmd_job_action},
    {"runs", "ID (a schedule's occurrences)", ctl_cmd_job_action},
    {"retry", "ID (requeue a failed job)", ctl_cmd_job_action},
    {"dlq", "[-q|--queue Q] [-t|--type T] [--user U] [--retry | --delete]",
     ctl_cmd_dlq},
    {"preview", "SCHEDULE [--timezone TZ] [--n N]", ctl_cmd_preview},
    {"workflow", "ID [--cancel] | --file FILE|-", ctl_cmd_workflow},
    {"queues", "", ctl_cmd_queues},
    {"queue",
     "NAME [--pause | --resume] [--concurrency N|none] "
     "[--max-pending N|none]",
     ctl_cmd_queues},
    {"acl",
     "bootstrap | token create --name N --role admin|submit|worker|read "
     "[-q|--queue Q]... [-t|--type T]... [--expires-at TIME] "
     "[--rate PER_S [--burst N]] | token list | token delete ID",
     ctl_cmd_acl},
    {"webhook",
     "create --url U --events E,... [-q|--queue Q]... [--secret S] | list | "
     "get ID | delete ID | deliveries ID [--limit N] [--after K]",
     ctl_cmd_webhook},
    {"snapshot",
     "save FILE (the whole state, from the leader) | verify FILE "
     "(restore: rotad --restore FILE)",
     ctl_cmd_snapshot},
    {"cert",
     "create-ca --certs-dir D [--lifetime DAYS] [--overwrite] | "
     "create-node --certs-dir D [--lifetime DAYS] [--overwrite] HOST...",
     ctl_cmd_cert},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: rotactl [-s|--server URL[,URL...]] [--json | -o json|table] "
        "[--timeout S] COMMAND [options]\n"
        "  -s, --server URL[,URL...]  nodes to try in turn (env "
        "ROTA_SERVERS, as rota-worker;\n"
        "                  the old ROTA_SERVER is still read; default "
        "http://127.0.0.1:8001)\n"
        "  --json, -o json print the server's JSON (also after the "
        "command)\n"
        "  -o table        a readable table or summary line (the "
        "default)\n"
        "  --timeout S     seconds per request (default 10)\n"
        "  --ca-file F     verify HTTPS against this CA (env "
        "ROTA_CA_FILE)\n"
        "  --token-file F  send the ACL token in F as Bearer (env "
        "ROTA_TOKEN: the token itself, ROTA_TOKEN_FILE)\n"
        "  Without them, a quickstart's .rota/certs/ca.crt and .rota/token "
        "in this\n  directory are used (and https://127.0.0.1:8001).\n"
        "\ncommands (short options: -q --queue, -t --type, -p --payload, "
        "-n --limit):\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].usage);
    }
    fprintf(out,
            "\nexit: 0 ok, 1 refused by the server, 2 usage, 3 no "
            "server reachable;\n  wait: 0 completed, 1 failed or "
            "cancelled, 2 timed out\n");
}

/* -o/--output FMT: 0, or -1 for an unknown format. */
static int set_output(struct ctl *ctl, const char *fmt)
{
    if (strcmp(fmt, "json") == 0) {
        ctl->json = true;
    } else if (strcmp(fmt, "table") == 0) {
        ctl->json = false;
    } else {
        fprintf(stderr, "rotactl: -o wants json or table, not \"%s\"\n", fmt);
        return -1;
    }
    return 0;
}

/* The output options (--json, -o FMT, -oFMT, --output FMT, --output=FMT)
 * at argv[*i]: 1 if it is one (*i then at its last word), 0 if not, -1 on
 * an error. */
static int output_option(struct ctl *ctl, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strcmp(a, "--json") == 0) {
        ctl->json = true;
        return 1;
    }
    if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "rotactl: %s wants json or table\n", a);
            return -1;
        }
        return set_output(ctl, argv[++*i]) == 0 ? 1 : -1;
    }
    if (strncmp(a, "--output=", 9) == 0) {
        return set_output(ctl, a + 9) == 0 ? 1 : -1;
    }
    if (strncmp(a, "-o", 2) == 0 && a[2] != '\0') {
        return set_output(ctl, a + 2) == 0 ? 1 : -1;
    }
    return 0;
}

/* Take the output options out of a command's arguments (up to "--"), so
 * that `rotactl list --json` is `rotactl --json list`. The new argc, or -1
 * on an error. */
static int strip_output_options(struct ctl *ctl, int argc, char **argv)
{
    int n = 1, i;
    for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        int r = output_option(ctl, argc, argv, &i);
        if (r < 0) {
            return -1;
        }
        if (r == 0) {
            argv[n++] = argv[i];
        }
    }
    for (; i < argc; i++) {
        argv[n++] = argv[i];
    }
    argv[n] = NULL;
    return n;
}

/* With nothing said (no options, no ROTA_* environment), a quickstart's
 * .rota/ in this directory: its CA, its admin token, its first node. */
static void quickstart_defaults(struct ctl *ctl,
                                const char **ca_file,
                                const char **token_file)
{
    bool qs = access(".rota/certs/ca.crt", R_OK) == 0;
    if (*ca_file == NULL && getenv("ROTA_CA_FILE") == NULL && qs) {
        *ca_file = ".rota/certs/ca.crt";
    }
    if (*token_file == NULL && getenv("ROTA_TOKEN") == NULL &&
        getenv("ROTA_TOKEN_FILE") == NULL && access(".rota/token", R_OK) == 0) {
        *token_file = ".rota/token";
    }
    if (ctl->servers == NULL) {
        ctl->servers = qs ? "https://127.0.0.1:8001" : "http://127.0.0.1:8001";
    }
}

int main(int argc, char **argv)
{
    struct ctl ctl;
    const struct command *cmd;
    const char *token_file = NULL, *ca_file = NULL;
    char err[256];
    int i, n, rv;

    memset(&ctl, 0, sizeof ctl);
    ctl.timeout = 10;
    /* ROTA_SERVERS, the name rota-worker reads; ROTA_SERVER, the old one. */
    ctl.servers = getenv("ROTA_SERVERS");
    if (ctl.servers == NULL || ctl.servers[0] == '\0') {
        ctl.servers = getenv("ROTA_SERVER");
    }
    if (ctl.servers != NULL && ctl.servers[0] == '\0') {
        ctl.servers = NULL;
    }
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        int r = output_option(&ctl, argc, argv, &i);
        if (r < 0) {
            return CTL_EXIT_USAGE;
        } else if (r > 0) {
            continue;
        } else if ((strcmp(argv[i], "--server") == 0 ||
                    strcmp(argv[i], "-s") == 0) &&
                   i + 1 < argc) {
            ctl.servers = argv[++i];
        } else if (strncmp(argv[i], "--server=", 9) == 0) {
            ctl.servers = argv[i] + 9;
        } else if (strcmp(argv[i], "--token-file") == 0 && i + 1 < argc) {
            token_file = argv[++i];
        } else if (strcmp(argv[i], "--ca-file") == 0 && i + 1 < argc) {
            ca_file = argv[++i];
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            ctl.timeout = atol(argv[++i]);
        } else if (strcmp(argv[i], "--help") == 0 ||
                   strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (i == argc) {
        usage(stderr);
        return CTL_EXIT_USAGE;
    }
    cmd = find_command(argv[i]);
    if (cmd == NULL) {
        fprintf(stderr, "rotactl: unknown command \"%s\"\n", argv[i]);
        usage(stderr);
        return CTL_EXIT_USAGE;
    }
    if (wants_help(argc - i, argv + i)) {
        printf("usage: rotactl %s %s\n", cmd->name, cmd->usage);
        return 0;
    }
    n = strip_output_options(&ctl, argc - i, argv + i);
    if (n < 0) {
        return CTL_EXIT_USAGE;
    }
    quickstart_defaults(&ctl, &ca_file, &token_file);
    if (creds_load(&ctl.creds, ca_file, token_file, err, sizeof err) != 0) {
        fprintf(stderr, "rotactl: %s\n", err);
        return CTL_EXIT_USAGE;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rv = cmd->run(&ctl, n, argv + i);
    memset(&ctl.creds, 0, sizeof ctl.creds);
    if (ctl.curl != NULL) {
        curl_easy_cleanup(ctl.curl);
    }
    curl_global_cleanup();
    return rv;
}
