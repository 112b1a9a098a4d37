#ifndef ROTAD_CONFIG_H_
#define ROTAD_CONFIG_H_

/* rotad's configuration (docs/cli.md). */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct rotad_config
{
    uint64_t id;
    char *data_dir;
    char *raft_addr;
    char *http_addr;
    char *http_advertise;
    char *cluster;
    char *join;
    size_t max_body;
    size_t max_payload;
    size_t max_inflight;
    unsigned leader_hold;
    unsigned batch_linger; /* µs (cluster/submit.c). */
    size_t state_map_size;
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    unsigned install_snapshot_timeout;
    unsigned election_timeout;
    unsigned heartbeat_timeout;
    unsigned forward_timeout;
    unsigned write_timeout; /* ms without HTTP write progress: close. */
    unsigned worker_ttl;
    unsigned retention_completed; /* Seconds; 0 = keep forever. */
    unsigned retention_failed;
    unsigned retention_cancelled;
    unsigned priority_aging; /* Seconds per priority level; 0 = no aging. */
    int log_level;
    /* Secure mode: D/ca.crt, D/node.crt, D/node.key (rotactl cert). */
    char *certs_dir;
    int insecure;       /* Said out loud: no TLS, no ACL. */
    int acl;            /* Bool: access control (--acl). */
    int metrics_public; /* Bool: GET /metrics without a token. */
    char *cors_origins; /* Browser origins allowed besides the node's. */
    /* Disaster recovery (docs/operations.md): seed a new one-node cluster
     * on an empty data dir from a backup file; or make this node the only
     * voter of its cluster, keeping its data (once per data dir). */
    char *restore;
    int force_new_cluster;
};

/* Returns 0, 1 for --help, or -1 with @err written. */
int rotad_config_load(struct rotad_config *cfg,
                      int argc,
                      char **argv,
                      char *err,
                      size_t size);
void rotad_config_usage(FILE *out);
void rotad_config_close(struct rotad_config *cfg);

#endif /* ROTAD_CONFIG_H_ */
