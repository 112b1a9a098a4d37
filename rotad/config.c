/* rotad configuration: defaults < YAML file < ROTA_* environment < flags.
 * Every option has the same name in all three (docs/cli.md). */

#include "rotad/config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/log.h"

/* K_BOOL: a flag without a value (--acl), or true/false, 1/0, yes/no in the
 * environment and YAML. */
enum kind { K_U64, K_STR, K_SIZE, K_UINT, K_LEVEL, K_BOOL };

struct option_def
{
    const char *name; /* flag and YAML key with '-'; env upper-case '_' */
    enum kind kind;
    size_t offset;
    const char *help;
};

#define OPT(name, kind, field, help)                           \
    {                                                          \
        name, kind, offsetof(struct rotad_config, field), help \
    }

static const struct option_def defs[] = {
    OPT("id", K_U64, id, "raft server id (default 1)"),
    OPT("data-dir", K_STR, data_dir, "data directory (./data/node-<id>)"),
    OPT("raft-addr", K_STR, raft_addr, "raft address (127.0.0.1:<7000+id>)"),
    OPT("http-addr", K_STR, http_addr, "HTTP address (127.0.0.1:<8000+id>)"),
    OPT("http-advertise",
        K_STR,
        http_advertise,
        "HTTP address other nodes forward to (http-addr)"),
    OPT("cluster", K_STR, cluster, "initial voters id@addr,... (self)"),
    OPT("join", K_STR, join, "join through http://any-member:port"),
    OPT("max-body", K_SIZE, max_body, "request body limit (1048576)"),
    OPT("max-payload", K_SIZE, max_payload, "job payload limit (65536)"),
    OPT("max-inflight",
        K_SIZE,
        max_inflight,
        "bytes of writes waiting for their commit before new jobs get 429 "
        "(67108864)"),
    OPT("state-map-size",
        K_SIZE,
        state_map_size,
        "largest LMDB state file (address space reserved, not disk; "
        "~400 bytes per live job) (68719476736)"),
    OPT("batch-linger",
        K_UINT,
        batch_linger,
        "µs the leader's next raft entry waits, after one is applied, for "
        "the clients it answered to send their next write; 0 = never wait "
        "(5000)"),
    OPT("leader-hold",
        K_UINT,
        leader_hold,
        "ms a request that needs the leader waits for one during an "
        "election before 503; 0 = answer 503 at once (5000)"),
    OPT("snapshot-threshold",
        K_UINT,
        snapshot_threshold,
        "entries between snapshots; 0 = adaptive: at least 1024, up to "
        "65536 as the state grows (8x the snapshot file's bytes of log) (0)"),
    OPT("snapshot-trailing",
        K_UINT,
        snapshot_trailing,
        "entries kept after a snapshot (2048)"),
    OPT("install-snapshot-timeout",
        K_UINT,
        install_snapshot_timeout,
        "ms before a leader resends an unanswered snapshot, plus 1 s per "
        "8 MiB of snapshot (5000)"),
    OPT("election-timeout",
        K_UINT,
        election_timeout,
        "election timeout ms (1000)"),
    OPT("heartbeat-timeout", K_UINT, heartbeat_timeout, "heartbeat ms (100)"),
    OPT("forward-timeout",
        K_UINT,
        forward_timeout,
        "forwarded request deadline ms (5000)"),
    OPT("write-timeout",
        K_UINT,
        write_timeout,
        "ms an HTTP answer may make no write progress before the "
        "connection is closed (10000)"),
    OPT("worker-ttl",
        K_UINT,
        worker_ttl,
        "ms without a heartbeat before a worker is down (10000)"),
    OPT("retention-completed",
        K_UINT,
        retention_completed,
        "seconds a completed job is kept, 0 = forever (604800: 7 days)"),
    OPT("retention-failed",
        K_UINT,
        retention_failed,
        "seconds a failed job is kept, 0 = forever (2592000: 30 days)"),
    OPT("retention-cancelled",
        K_UINT,
        retention_cancelled,
        "seconds a cancelled job is kept, 0 = forever (604800: 7 days)"),
    OPT("priority-aging",
        K_UINT,
        priority_aging,
        "seconds a pending job waits per priority level gained (60)"),
    OPT("log-level", K_LEVEL, log_level, "debug, info, warn, error (info)"),
    OPT("certs-dir",
        K_STR,
        certs_dir,
        "secure mode: ca.crt, node.crt, node.key (rotactl cert); HTTPS API, "
        "mutual TLS between nodes"),
    OPT("insecure",
        K_BOOL,
        insecure,
        "plain mode: no TLS, no access control (say it: one of this and "
        "--certs-dir is required)"),
    OPT("acl",
        K_BOOL,
        acl,
        "require ACL tokens (Authorization: Bearer) on every route with a "
        "role (on in secure mode; with --insecure: on without TLS)"),
    OPT("cors-origins",
        K_STR,
        cors_origins,
        "browser origins allowed besides the node's own, comma-separated "
        "(none: cross-site requests get 403)"),
    OPT("metrics-public",
        K_BOOL,
        metrics_public,
        "with --acl, serve GET /metrics without a token (off)"),
    OPT("restore",
        K_STR,
        restore,
        "seed a NEW one-node cluster on an empty data dir with the state of "
        "this backup file (rotactl snapshot save); others --join it"),
    OPT("force-new-cluster",
        K_BOOL,
        force_new_cluster,
        "disaster recovery: make this node the only voter of its cluster, "
        "keeping its data (once per data dir; others --join it)"),
};
#define N_DEFS (sizeof defs / sizeof defs[0])

static int set_value(struct rotad_config *cfg,
                     const struct option_def *d,
                     const char *value,
                     char *err,
                     size_t size)
{
    char *p = (char *)cfg + d->offset;
    char *end;
    unsigned long long v;

    switch (d->kind) {
        case K_STR:
            free(*(char **)p);
            *(char **)p = strdup(value);
            return 0;
        case K_BOOL:
            if (value == NULL || strcmp(value, "true") == 0 ||
                strcmp(value, "1") == 0 || strcmp(value, "yes") == 0 ||
                strcmp(value, "on") == 0) {
                *(int *)p = 1;
            } else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0 ||
                       strcmp(value, "no") == 0 || strcmp(value, "off") == 0) {
                *(int *)p = 0;
            } else {
                snprintf(err, size, "%s: \"%s\" is not true or false", d->name,
                         value);
                return -1;
            }
            return 0;
        case K_LEVEL:
            if (log_level_parse(value) < 0) {
                snprintf(err, size, "%s: unknown level \"%s\"", d->name, value);
                return -1;
            }
            *(int *)p = log_level_parse(value);
            return 0;
        default:
            break;
    }
    errno = 0;
    v = strtoull(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || value[0] == '-') {
        snprintf(err, size, "%s: \"%s\" is not a non-negative integer", d->name,
                 value);
        return -1;
    }
    if (d->kind == K_U64) {
        *(uint64_t *)p = v;
    } else if (d->kind == K_SIZE) {
        *(size_t *)p = (size_t)v;
    } else {
        if (v > 0xffffffffULL) {
            snprintf(err, size, "%s: %s is too large", d->name, value);
            return -1;
        }
        *(unsigned *)p = (unsigned)v;
    }
    return 0;
}

static const struct option_def *find_def(const char *name)
{
    for (size_t i = 0; i < N_DEFS; i++) {
        const char *a = defs[i].name, *b = name;
        while (*a != '\0' && (*a == *b || (*a == '-' && *b == '_'))) {
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0') {
            return &defs[i];
        }
    }
    return NULL;
}

static int load_yaml(struct rotad_config *cfg,
                     const char *path,
                     char *err,
                     size_t size)
{
    FILE *f = fopen(path, "r");
    yaml_parser_t parser;
    yaml_event_t ev;
    char key[128] = "";
    int depth = 0, rv = 0;
    bool want_key = true, done = false;

    if (f == NULL) {
        snprintf(err, size, "config %s: %s", path, strerror(errno));
        return -1;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    while (!done && rv == 0) {
        if (!yaml_parser_parse(&parser, &ev)) {
            snprintf(err, size, "config %s: line %zu: %s", path,
                     parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "parse error");
            rv = -1;
            break;
        }
        switch (ev.type) {
            case YAML_MAPPING_START_EVENT:
                depth++;
                if (depth > 1) {
                    snprintf(err, size,
                             "config %s: nested maps are not "
                             "supported (key %s)",
                             path, key);
                    rv = -1;
                }
                break;
            case YAML_SCALAR_EVENT: {
                const char *s = (const char *)ev.data.scalar.value;
                if (want_key) {
                    snprintf(key, sizeof key, "%s", s);
                } else {
                    const struct option_def *d = find_def(key);
                    if (d == NULL) {
                        snprintf(err, size, "config %s: unknown key \"%s\"",
                                 path, key);
                        rv = -1;
                    } else {
                        rv = set_value(cfg, d, s, err, size);
                    }
                }
                want_key = !want_key;
                break;
            }
            case YAML_SEQUENCE_START_EVENT:
                snprintf(err, size, "config %s: %s: lists are not supported",
                         path, key);
                rv = -1;
                break;
            case YAML_STREAM_END_EVENT:
                done = true;
                break;
            default:
                break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    return rv;
}

void rotad_config_usage(FILE *out)
{
    fprintf(out,
            "usage: rotad [options]\n"
            "  A Rota scheduler node. Every option can also be set as a\n"
            "  ROTA_<NAME> environment variable or a key of the YAML file\n"
            "  given with --config (flags win over env, env over YAML).\n\n"
            "  --config FILE          YAML file\n");
    for (size_t i = 0; i < N_DEFS; i++) {
        fprintf(out, "  --%-20s %s\n", defs[i].name, defs[i].help);
    }
    fprintf(out, "  --help                 this text\n");
}

static void fill_defaults(struct rotad_config *cfg)
{
    char buf[256];
    if (cfg->id == 0) {
        cfg->id = 1;
    }
    if (cfg->data_dir == NULL) {
        snprintf(buf, sizeof buf, "./data/node-%llu",
                 (unsigned long long)cfg->id);
        cfg->data_dir = strdup(buf);
    }
    if (cfg->raft_addr == NULL) {
        snprintf(buf, sizeof buf, "127.0.0.1:%llu",
                 7000 + (unsigned long long)cfg->id);
        cfg->raft_addr = strdup(buf);
    }
    if (cfg->http_addr == NULL) {
        snprintf(buf, sizeof buf, "127.0.0.1:%llu",
                 8000 + (unsigned long long)cfg->id);
        cfg->http_addr = strdup(buf);
    }
    if (cfg->http_advertise == NULL) {
        cfg->http_advertise = strdup(cfg->http_addr);
    }
    if (cfg->cluster == NULL && cfg->join == NULL) {
        snprintf(buf, sizeof buf, "%llu@%s", (unsigned long long)cfg->id,
                 cfg->raft_addr);
        cfg->cluster = strdup(buf);
    }
}

int rotad_config_load(struct rotad_config *cfg,
                      int argc,
                      char **argv,
                      char *err,
                      size_t size)
{
    struct option longopts[N_DEFS + 3];
    const char *config_file = getenv("ROTA_CONFIG");
    char env[64];

    memset(cfg, 0, sizeof *cfg);
    cfg->max_body = 1 << 20;
    cfg->max_payload = 64 << 10;
    cfg->max_inflight = (size_t)64 << 20;
    cfg->leader_hold = 5000;
    cfg->batch_linger = 5000;
    cfg->state_map_size = (size_t)64 << 30;
    cfg->snapshot_threshold = 0; /* Adaptive (cluster/node.c). */
    cfg->snapshot_trailing = 2048;
    cfg->install_snapshot_timeout = 5000;
    cfg->election_timeout = 1000;
    cfg->heartbeat_timeout = 100;
    cfg->forward_timeout = 5000;
    cfg->write_timeout = 10000;
    cfg->worker_ttl = 10000;
    cfg->retention_completed = 7 * 86400;
    cfg->priority_aging = 60;
    cfg->retention_failed = 30 * 86400;
    cfg->retention_cancelled = 7 * 86400;
    cfg->log_level = LOG_INFO;

    for (size_t i = 0; i < N_DEFS; i++) {
        longopts[i].name = defs[i].name;
        longopts[i].has_arg =
            defs[i].kind == K_BOOL ? no_argument : required_argument;
        longopts[i].flag = NULL;
        longopts[i].val = 1000 + (int)i;
    }
    longopts[N_DEFS] = (struct option){"config", required_argument, NULL, 'c'};
    longopts[N_DEFS + 1] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[N_DEFS + 2] = (struct option){NULL, 0, NULL, 0};

    /* Pass 1: --config and --help only. */
    opterr = 0;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
        if (c == 'c') {
            config_file = optarg;
        } else if (c == 'h') {
            return 1;
        }
    }
    if (config_file != NULL && load_yaml(cfg, config_file, err, size) != 0) {
        return -1;
    }
    for (size_t i = 0; i < N_DEFS; i++) {
        const char *v;
        size_t j = 0;
        j += (size_t)snprintf(env, sizeof env, "ROTA_");
        for (const char *p = defs[i].name; *p != '\0' && j + 1 < sizeof env;
             p++) {
            env[j++] =
                *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        }
        env[j] = '\0';
        v = getenv(env);
        if (v != NULL && set_value(cfg, &defs[i], v, err, size) != 0) {
            return -1;
        }
    }
    /* Pass 2: every flag. */
    opterr = 0;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
        if (c >= 1000 && c < 1000 + (int)N_DEFS) {
            const char *v = optarg != NULL ? optarg : "true";
            if (set_value(cfg, &defs[c - 1000], v, err, size) != 0) {
                return -1;
            }
        } else if (c == '?' || c == ':') {
            snprintf(err, size,
                     "%s: unknown option or missing value (see "
                     "--help)",
                     argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        snprintf(err, size, "unexpected argument \"%s\"", argv[optind]);
        return -1;
    }
    if (cfg->cluster != NULL && cfg->join != NULL) {
        snprintf(err, size, "give --cluster or --join, not both");
        return -1;
    }
    if ((cfg->restore != NULL || cfg->force_new_cluster) &&
        (cfg->join != NULL ||
         (cfg->restore != NULL && cfg->force_new_cluster))) {
        snprintf(err, size,
                 "--restore and --force-new-cluster each start a new cluster: "
                 "give at most one of them, and not with --join");
        return -1;
    }
    if ((cfg->certs_dir == NULL) == !cfg->insecure) {
        snprintf(err, size,
                 cfg->insecure ? "give --certs-dir or --insecure, not both"
                               : "refusing to start without TLS: pass "
                                 "--certs-dir DIR (rotactl cert create-ca / "
                                 "create-node) or, to run without TLS and "
                                 "access control, --insecure");
        return -1;
    }
    fill_defaults(cfg);
    if (cfg->max_body < 1024 || cfg->max_payload < 16 ||
        cfg->max_inflight < cfg->max_body || cfg->leader_hold > 60000 ||
        cfg->batch_linger > 100000 || cfg->state_map_size < (16u << 20) ||
        cfg->election_timeout < 10 || cfg->heartbeat_timeout < 1 ||
        cfg->heartbeat_timeout >= cfg->election_timeout ||
        cfg->worker_ttl < 500) {
        snprintf(err, size,
                 "limits out of range: max-body >= 1024, "
                 "max-payload >= 16, max-inflight >= max-body, leader-hold <= "
                 "60000, batch-linger <= 100000, state-map-size >= 16 MiB, "
                 "heartbeat < election timeout, "
                 "worker-ttl >= 500");
        return -1;
    }
    return 0;
}

void rotad_config_close(struct rotad_config *cfg)
{
    free(cfg->data_dir);
    free(cfg->raft_addr);
    free(cfg->http_addr);
    free(cfg->http_advertise);
    free(cfg->cluster);
    free(cfg->join);
    free(cfg->certs_dir);
    free(cfg->cors_origins);
    free(cfg->restore);
}
