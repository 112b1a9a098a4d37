/* rotactl acl: bootstrap, token create|list|delete (docs/api.md, Access
 * control). The secret of a new token is printed once: the cluster keeps
 * only its hash. */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : "-";
}

/* A number for --rate/--burst; what is not one goes as the string, and
 * the server's 400 names the field. */
static json_t *number_arg(const char *arg, bool integer)
{
    char *end = NULL;
    if (integer) {
        long long v = strtoll(arg, &end, 10);
        if (end != arg && *end == '\0') {
            return json_integer(v);
        }
    } else {
        double v = strtod(arg, &end);
        if (end != arg && *end == '\0') {
            return json_real(v);
        }
    }
    return json_string(arg);
}

/* "5/s (burst 5)", or "-" for a token without a rate. */
static void rate_text(json_t *t, char *out, size_t size)
{
    json_t *r = json_object_get(t, "rate"), *b = json_object_get(t, "burst");
    if (!json_is_number(r)) {
        snprintf(out, size, "-");
    } else {
        snprintf(out, size, "%g/s burst %lld", json_number_value(r),
                 json_is_integer(b) ? (long long)json_integer_value(b) : 0LL);
    }
}

static void join_names(json_t *arr, char *out, size_t size)
{
    size_t i, n = 0;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(arr, i, v)
    {
        n += (size_t)snprintf(out + n, n < size ? size - n : 0, "%s%s",
                              i > 0 ? "," : "", json_string_value(v));
    }
    if (n == 0) {
        snprintf(out, size, "all");
    }
}

static int print_created(struct ctl *ctl, json_t *out)
{
    if (ctl->json) {
        ctl_print_json(out);
    } else {
        printf("id:     %s\nname:   %s\nrole:   %s\nsecret: %s\n",
               str(out, "id"), str(out, "name"), str(out, "role"),
               str(out, "secret"));
        fprintf(stderr,
                "(the secret is shown once: keep it, e.g. in a file for "
                "--token-file)\n");
    }
    json_decref(out);
    return 0;
}

static int acl_bootstrap(struct ctl *ctl)
{
    json_t *out;
    int rv = ctl_call(ctl, "POST", "/v1/acl/bootstrap", NULL, &out);
    return rv != 0 ? rv : print_created(ctl, out);
}

static int usage(const char *msg)
{
    fprintf(stderr,
            "rotactl acl: %s\nusage: rotactl acl bootstrap | token create "
            "--name N --role admin|submit|worker|read [--queue Q]... "
            "[--type T]... [--expires-at TIME] [--rate PER_S [--burst N]] | "
            "token list | token delete ID\n",
            msg);
    return CTL_EXIT_USAGE;
}

static int token_create(struct ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", 1, 0, 'n'},       {"role", 1, 0, 'r'},
        {"queue", 1, 0, 'q'},      {"type", 1, 0, 't'},
        {"expires-at", 1, 0, 'e'}, {"rate", 1, 0, 'R'},
        {"burst", 1, 0, 'B'},      {0, 0, 0, 0}};
    json_t *req = json_object(), *queues = json_array(), *types = json_array();
    json_t *out;
    char *body;
    int c, rv;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "q:t:", opts, NULL)) != -1) {
        switch (c) {
            case 'n':
                json_object_set_new(req, "name", json_string(optarg));
                break;
            case 'r':
                json_object_set_new(req, "role", json_string(optarg));
                break;
            case 'q':
                json_array_append_new(queues, json_string(optarg));
                break;
            case 't':
                json_array_append_new(types, json_string(optarg));
                break;
            case 'e':
                json_object_set_new(req, "expires_at", json_string(optarg));
                break;
            case 'R':
                json_object_set_new(req, "rate", number_arg(optarg, false));
                break;
            case 'B':
                json_object_set_new(req, "burst", number_arg(optarg, true));
                break;
            default:
                json_decref(req);
                json_decref(queues);
                json_decref(types);
                return usage("unknown option to token create");
        }
    }
    if (json_object_get(req, "name") == NULL ||
        json_object_get(req, "role") == NULL) {
        json_decref(req);
        json_decref(queues);
        json_decref(types);
        return usage("token create needs --name and --role");
    }
    json_object_set_new(req, "queues", queues);
    json_object_set_new(req, "types", types);
    body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    rv = ctl_call(ctl, "POST", "/v1/acl/tokens", body, &out);
    free(body);
    return rv != 0 ? rv : print_created(ctl, out);
}

static int token_list(struct ctl *ctl)
{
    json_t *out, *t;
    size_t i;
    int rv = ctl_get_table(ctl, "/v1/acl/tokens", &out);

    if (rv != 0 || out == NULL) {
        return rv;
    }
    printf("%-16s  %-16s %-7s %-16s %-16s %-20s %s\n", "ID", "NAME", "ROLE",
           "QUEUES", "TYPES", "RATE", "EXPIRES");
    json_array_foreach(json_object_get(out, "tokens"), i, t)
    {
        char q[256], ty[256], rate[64];
        join_names(json_object_get(t, "queues"), q, sizeof q);
        join_names(json_object_get(t, "types"), ty, sizeof ty);
        rate_text(t, rate, sizeof rate);
        printf("%-16s  %-16.16s %-7s %-16.16s %-16.16s %-20s %s\n",
               str(t, "id"), str(t, "name"), str(t, "role"), q, ty, rate,
               json_is_string(json_object_get(t, "expires_at"))
                   ? str(t, "expires_at")
                   : "never");
    }
    json_decref(out);
    return 0;
}

static int token_delete(struct ctl *ctl, const char *id)
{
    char path[128];
    json_t *out;
    int rv;
    snprintf(path, sizeof path, "/v1/acl/tokens/%s", id);
    rv = ctl_call(ctl, "DELETE", path, NULL, &out);
    if (rv == 0 && ctl->json) {
        ctl_print_json(out);
        json_decref(out);
    } else if (rv == 0) {
        printf("deleted token %s\n", str(out, "id"));
        json_decref(out);
    }
    return rv;
}

/* acl bootstrap | acl token create|list|delete */
int ctl_cmd_acl(struct ctl *ctl, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "bootstrap") == 0) {
        return acl_bootstrap(ctl);
    }
    if (argc >= 3 && strcmp(argv[1], "token") == 0) {
        if (strcmp(argv[2], "create") == 0) {
            return token_create(ctl, argc - 2, argv + 2);
        }
        if (strcmp(argv[2], "list") == 0) {
            return token_list(ctl);
        }
        if (strcmp(argv[2], "delete") == 0 && argc >= 4) {
            return token_delete(ctl, argv[3]);
        }
    }
    return usage("missing or unknown subcommand");
}
