/* Restore from a backup file and force a new cluster (cluster/recover.h).
 *
 * Restore writes the file's state as this node's raft snapshot through
 * raft_uv's own snapshot_put (trailing 0: the same call raft makes when a
 * follower installs a leader's snapshot), before raft_start. The snapshot
 * keeps the file's applied index, so job ids made by new entries (derived
 * from their raft index, fsm/fsm.h) never collide with restored ones. Its
 * term is 1 and the metadata term is set to 1 so that raft_bootstrap (in
 * cluster_start) sees a used data dir and does nothing: the node then
 * starts as the only voter of a new cluster and elects itself.
 *
 * Force-new-cluster is raft_recover(): raft_uv appends a configuration
 * entry naming this node alone after the last entry of its log. Every
 * entry of the log, committed before or not, is kept and gets committed by
 * the new one-node cluster. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_MODULE "cluster"
#include "cluster/internal.h"
#include "cluster/recover.h"
#include "cluster/snapfile.h"
#include "common/err.h"
#include "common/log.h"

#define MARKER "force-new-cluster.done"

/* Does <data>/raft hold raft state (metadata, segments, snapshots)? */
int cluster__raft_dir_used(struct cluster *c, bool *used)
{
    char path[1100];
    DIR *d;
    struct dirent *e;

    *used = false;
    snprintf(path, sizeof path, "%s/raft", c->data_dir);
    d = opendir(path);
    if (d == NULL) {
        return errno == ENOENT ? 0 : -1;
    }
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strncmp(n, "metadata", 8) == 0 || strncmp(n, "snapshot-", 9) == 0 ||
            strncmp(n, "open-", 5) == 0 || (n[0] >= '0' && n[0] <= '9')) {
            *used = true;
        }
    }
    closedir(d);
    return 0;
}

/* ---- Restore ------------------------------------------------------------ */

/* Read and check @path: the body (raft_malloc'ed) and its header. */
static int read_backup(const char *path,
                       struct snapfile_header *h,
                       void **body,
                       char *errmsg,
                       size_t size)
{
    unsigned char head[SNAPFILE_HEADER_LEN], sha[32];
    unsigned int n = 0;
    const char *why;
    struct stat st;
    FILE *f = fopen(path, "rb");
    size_t got;

    *body = NULL;
    if (f == NULL) {
        snprintf(errmsg, size, "restore: %s: %s", path, strerror(errno));
        return ERR_INVALID;
    }
    got = fread(head, 1, sizeof head, f);
    why = snapfile_decode(head, got, h);
    if (why == NULL &&
        (fstat(fileno(f), &st) != 0 ||
         (uint64_t)st.st_size != SNAPFILE_HEADER_LEN + h->body_len)) {
        why =
            "file size does not match the header's body length "
            "(truncated or appended to)";
    }
    if (why == NULL && (*body = raft_malloc(h->body_len + 1)) == NULL) {
        why = "out of memory";
    }
    if (why == NULL && fread(*body, 1, h->body_len, f) != h->body_len) {
        why = "short read";
    }
    fclose(f);
    if (why == NULL &&
        (EVP_Digest(*body, h->body_len, sha, &n, EVP_sha256(), NULL) != 1 ||
         n != 32 || memcmp(sha, h->sha256, 32) != 0)) {
        why =
            "SHA-256 of the body does not match the header: the file is "
            "corrupt";
    }
    if (why != NULL) {
        snprintf(errmsg, size, "restore: %s: %s", path, why);
        raft_free(*body);
        *body = NULL;
        return ERR_INVALID;
    }
    return 0;
}

struct put_wait
{
    bool done;
    int status;
};

static void put_cb(struct raft_io_snapshot_put *req, int status)
{
    struct put_wait *w = req->data;
    w->status = status;
    w->done = true;
}

/* Store @body as the raft snapshot at @index, configuration = us alone. */
static int put_snapshot(struct cluster *c,
                        uint64_t index,
                        void *body,
                        size_t len,
                        char *errmsg,
                        size_t size)
{
    struct raft_snapshot snap;
    struct raft_buffer buf = {body, len};
    struct raft_io_snapshot_put req;
    struct put_wait w = {false, 0};
    int rv;

    memset(&snap, 0, sizeof snap);
    snap.index = index;
    snap.term = 1;
    raft_configuration_init(&snap.configuration);
    if (raft_configuration_add(&snap.configuration, c->cfg.id, c->raft_addr,
                               RAFT_VOTER) != 0) {
        snprintf(errmsg, size, "restore: configuration: out of memory");
        return ERR_NOMEM;
    }
    snap.configuration_index = index;
    snap.bufs = &buf;
    snap.n_bufs = 1;
    req.data = &w;
    rv = c->io.snapshot_put(&c->io, 0, &req, &snap, put_cb);
    while (rv == 0 && !w.done) {
        uv_run(c->loop, UV_RUN_ONCE);
    }
    raft_configuration_close(&snap.configuration);
    if (rv == 0) {
        rv = w.status;
    }
    if (rv == 0) {
        rv = c->io.set_term(&c->io, 1);
    }
    if (rv != 0) {
        snprintf(errmsg, size, "restore: write raft snapshot: %s (%s)",
                 raft_strerror(rv), c->io.errmsg);
        return ERR_IO;
    }
    return 0;
}

int cluster_restore_file(struct cluster *c,
                         const char *path,
                         char *errmsg,
                         size_t size)
{
    struct snapfile_header h;
    char sha[65];
    void *body;
    bool used;
    int rv;

    if (cluster__raft_dir_used(c, &used) != 0 || used) {
        snprintf(errmsg, size,
                 "restore: %s/raft already holds raft state: --restore seeds "
                 "a new cluster on an empty data dir (remove the flag to "
                 "restart this node as it is)",
                 c->data_dir);
        return ERR_INVALID;
    }
    rv = read_backup(path, &h, &body, errmsg, size);
    if (rv != 0) {
        return rv;
    }
    /* The body must decode as a whole: fsm_restore writes it in one
     * transaction that a defect rolls back (raft_start then skips the raft
     * snapshot made from it: the state has reached it). */
    rv = fsm_restore(c->fsm, body, h.body_len);
    if (rv == 0 && fsm_applied_index(c->fsm) != h.index) {
        snprintf(errmsg, size,
                 "restore: %s: applied index %llu in the header, %llu in "
                 "the body",
                 path, (unsigned long long)h.index,
                 (unsigned long long)fsm_applied_index(c->fsm));
        raft_free(body);
        return ERR_INVALID;
    }
    if (rv != 0) {
        snprintf(errmsg, size, "restore: %s: the state does not decode: %s",
                 path, fsm_errmsg(c->fsm));
        raft_free(body);
        return ERR_INVALID;
    }
    rv = put_snapshot(c, h.index, body, h.body_len, errmsg, size);
    raft_free(body);
    if (rv != 0) {
        return rv;
    }
    snapfile_hex(h.sha256, sha);
    if (c->cluster_spec != NULL && strchr(c->cluster_spec, ',') != NULL) {
        LOG(LOG_WARN, "restore ignores --cluster",
            "cluster=%s note=\"the restored node is the only voter: start "
            "the others on empty data dirs with --join\"",
            c->cluster_spec);
    }
    LOG(LOG_WARN, "restored from backup",
        "file=\"%s\" index=%llu bytes=%llu sha256=%s source_node=%llu "
        "source_term=%llu voters=\"%llu@%s\" note=\"a new one-node cluster: "
        "start the other nodes with --join\"",
        path, (unsigned long long)h.index, (unsigned long long)h.body_len, sha,
        (unsigned long long)h.node_id, (unsigned long long)h.term,
        (unsigned long long)c->cfg.id, c->raft_addr);
    return 0;
}

/* ---- Force a new cluster ------------------------------------------------ */

int cluster_force_new(struct cluster *c, char *errmsg, size_t size)
{
    struct raft_configuration conf;
    char marker[1100], stamp[64];
    bool used;
    int rv, fd;

    snprintf(marker, sizeof marker, "%s/%s", c->data_dir, MARKER);
    if (access(marker, F_OK) == 0) {
        LOG(LOG_WARN, "force-new-cluster skipped",
            "marker=\"%s\" reason=\"this data dir was already forced into a "
            "new cluster: remove --force-new-cluster (or the marker file to "
            "force again)\"",
            marker);
        return 0;
    }
    if (cluster__raft_dir_used(c, &used) != 0 || !used) {
        snprintf(errmsg, size,
                 "force-new-cluster: %s/raft holds no raft state: nothing to "
                 "recover",
                 c->data_dir);
        return ERR_INVALID;
    }
    raft_configuration_init(&conf);
    rv = raft_configuration_add(&conf, c->cfg.id, c->raft_addr, RAFT_VOTER);
    if (rv == 0) {
        rv = raft_recover(&c->raft, &conf);
    }
    raft_configuration_close(&conf);
    if (rv != 0) {
        snprintf(errmsg, size, "force-new-cluster: raft_recover: %s (%s)",
                 raft_strerror(rv), c->io.errmsg);
        return ERR_IO;
    }
    fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        int n = snprintf(stamp, sizeof stamp, "%lld\n", (long long)time(NULL));
        if (write(fd, stamp, (size_t)n) != n || fsync(fd) != 0) {
            LOG(LOG_WARN, "force-new-cluster marker", "file=\"%s\" err=\"%s\"",
                marker, strerror(errno));
        }
        close(fd);
    }
    LOG(LOG_WARN, "forced a new cluster",
        "voters=\"%llu@%s\" data_dir=%s marker=\"%s\" note=\"the raft "
        "configuration now names this node alone: every entry of its log is "
        "kept and will be committed, the other members are out of the "
        "cluster; start fresh nodes with --join to grow it again\"",
        (unsigned long long)c->cfg.id, c->raft_addr, c->data_dir, marker);
    return 0;
}
