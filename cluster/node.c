/* The raft node: create (fsm + raft_uv + TCP transport), start (bootstrap
 * on first start with --cluster), a leader watch timer (raft 0.15 has no
 * state-change callback), and close.
 *
 * The LMDB environment is kept across restarts when its marker says it is
 * whole (a clean stop, or a process crash on the same kernel boot:
 * fsm/state_mark.c); otherwise it is removed and rebuilt from the last
 * snapshot (restore at raft_start) and the entries after it. A kept one
 * skips the restore of a snapshot it has passed (cluster/raft_fsm.c) and
 * the entries it has applied (fsm_apply). */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define LOG_MODULE "cluster"
#include "cluster/internal.h"
#include "cluster/raft_fsm.h"
#include "cluster/raft_guard.h"
#include "cluster/tls_transport.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"

#define WATCH_INTERVAL_MS 50
#define SNAPSHOT_THRESHOLD_MIN 1024
#define SNAPSHOT_THRESHOLD_MAX 65536
#define SNAPSHOT_LOG_BYTES_MAX (256ull << 20)

/* ---- Fail-stop on a failed disk write ----------------------------------
 * raft 0.15 keeps leading after a failed append (fixed in 0.16): wrap the
 * io's append so that a failure stops the node (LIBRARIES.md 8, 11). */

struct append_wrap
{
    struct raft_io_append inner;
    struct raft_io_append *outer;
    raft_io_append_cb cb;
};

static void append_wrap_cb(struct raft_io_append *inner, int status)
{
    struct append_wrap *w = CONTAINER_OF(inner, struct append_wrap, inner);
    struct raft_io_append *outer = w->outer;
    raft_io_append_cb cb = w->cb;

    free(w);
    if (status != 0 && status != RAFT_CANCELED) {
        LOG(LOG_ERROR, "fail-stop",
            "reason=\"raft log append failed\" "
            "err=\"%s\"",
            raft_strerror(status));
        fflush(stderr);
        _exit(70);
    }
    cb(outer, status);
}

static int append_wrap(struct raft_io *io,
                       struct raft_io_append *req,
                       const struct raft_entry entries[],
                       unsigned n,
                       raft_io_append_cb cb)
{
    /* raft_init set io->data to the raft instance, embedded in ours. */
    struct cluster *c = CONTAINER_OF(io->data, struct cluster, raft);
    struct append_wrap *w = malloc(sizeof *w);
    int rv;

    if (w == NULL) {
        return RAFT_NOMEM;
    }
    w->outer = req;
    w->cb = cb;
    w->inner.data = req->data;
    rv = c->uv_append(io, &w->inner, entries, n, append_wrap_cb);
    if (rv != 0) {
        free(w);
    }
    return rv;
}

/* ---- Closing raft_uv ----------------------------------------------------
 * raft 0.15's raft_uv calls its close callback each time one of its parts
 * ends closing once all have (uvMaybeFireCloseCb keeps no "fired" flag),
 * and a part may end after that. The callback must therefore reach raft
 * once only, and raft_uv's memory must outlive every callback still
 * queued on the loop: freeing it in raft's close callback (as this node
 * did) let a late part read the freed struct and call raft's close
 * callback again through a stale pointer, a SIGSEGV at shutdown seen in
 * CI with the stack in libraft's close callback. So the callback is
 * passed on once, and raft_uv and the transport are freed in
 * cluster_destroy(), after rotad ran the loop to its end. */

static void io_closed_once(struct raft_io *io)
{
    struct cluster *c = CONTAINER_OF(io->data, struct cluster, raft);
    if (!c->io_closed) {
        c->io_closed = true;
        c->io_close_cb(io);
    }
}

static void close_wrap(struct raft_io *io, raft_io_close_cb cb)
{
    struct cluster *c = CONTAINER_OF(io->data, struct cluster, raft);
    c->io_close_cb = cb;
    c->uv_close(io, io_closed_once);
}

/* ---- Install-snapshot timeout -------------------------------------------
 * raft 0.15 waits install_snapshot_timeout (default 30 s) for the answer to
 * an InstallSnapshot before it sends it again. A follower that is taking a
 * snapshot of its own (or installing one) when it arrives drops it without
 * an answer (replicationInstallSnapshot returns RAFT_BUSY, which recv.c
 * swallows): a restarted follower that applies its backlog, snapshots, and
 * meanwhile falls behind the leader's log waited the whole 30 s. The
 * timeout is cfg.install_snapshot_timeout plus 1 s per 8 MiB of the latest
 * snapshot file (sending, writing and restoring scale with it). */

#define INSTALL_TIMEOUT_DEFAULT_MS 5000
#define INSTALL_TIMEOUT_BYTES_PER_S (8u << 20)

/* Size of the newest snapshot file in <data>/raft, 0 if none. */
static uint64_t snapshot_file_size(struct cluster *c)
{
    char path[1024];
    DIR *d;
    struct dirent *e;
    unsigned long long best = 0;
    uint64_t size = 0;

    snprintf(path, sizeof path, "%s/raft", c->data_dir);
    d = opendir(path);
    if (d == NULL) {
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        unsigned long long term, index, ts;
        int n = 0;
        struct stat st;
        char file[1300];
        if (sscanf(e->d_name, "snapshot-%llu-%llu-%llu%n", &term, &index, &ts,
                   &n) != 3 ||
            e->d_name[n] != '\0' || index < best) {
            continue;
        }
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        if (stat(file, &st) == 0) {
            best = index;
            size = (uint64_t)st.st_size;
        }
    }
    closedir(d);
    return size;
}

static unsigned install_timeout(struct cluster *c, uint64_t snapshot_bytes)
{
    unsigned base = c->cfg.install_snapshot_timeout != 0
                        ? c->cfg.install_snapshot_timeout
                        : INSTALL_TIMEOUT_DEFAULT_MS;
    uint64_t extra = snapshot_bytes * 1000 / INSTALL_TIMEOUT_BYTES_PER_S;
    return extra > 600000 ? base + 600000 : base + (unsigned)extra;
}

/* From the watch timer: rescale when the snapshot changed. */
/* Adaptive snapshot threshold (--snapshot-threshold 0, the default): each
 * snapshot serialises the whole state, so taking one every 1024 entries
 * costs more per entry as the state grows (8% of a follower's CPU at 60k
 * jobs, bench/README.md). After each snapshot the threshold becomes the
 * number of entries (of the recent average size) that make eight times the
 * snapshot file's bytes of log (LZ4-compressed: by the fsm since format v2
 * of fsm/snapshot.c, by raft before, when 60,000 jobs took 1.3 MB, ~15
 * times less than the state it holds), so the work of a
 * snapshot is spread over about as many log bytes as the state has.
 * Bounded by 1024..65536 entries and 256 MiB of log (raft keeps the
 * entries since the snapshot in memory). */
static void snapshot_threshold_update(struct cluster *c, uint64_t snap_bytes)
{
    struct cluster_raft_fsm_stats fs;
    unsigned long long entries, bytes, avg, log_bytes, t;

    if (c->cfg.snapshot_threshold != 0) {
        return;
    }
    cluster_raft_fsm_stats(&c->rfsm, &fs);
    entries = fs.entries_applied - c->snap_entries_seen;
    bytes = fs.bytes_applied - c->snap_bytes_seen;
    c->snap_entries_seen = fs.entries_applied;
    c->snap_bytes_seen = fs.bytes_applied;
    if (entries == 0 || bytes == 0 || snap_bytes == 0) {
        return;
    }
    avg = bytes / entries > 0 ? bytes / entries : 1;
    log_bytes = 8 * snap_bytes;
    if (log_bytes > SNAPSHOT_LOG_BYTES_MAX) {
        log_bytes = SNAPSHOT_LOG_BYTES_MAX;
    }
    t = log_bytes / avg;
    t = t < SNAPSHOT_THRESHOLD_MIN   ? SNAPSHOT_THRESHOLD_MIN
        : t > SNAPSHOT_THRESHOLD_MAX ? SNAPSHOT_THRESHOLD_MAX
                                     : t;
    if (t != c->snapshot_threshold_now) {
        LOG(LOG_INFO, "snapshot threshold",
            "entries=%llu snapshot_bytes=%llu "
            "entry_bytes_avg=%llu",
            t, (unsigned long long)snap_bytes, avg);
        c->snapshot_threshold_now = (unsigned)t;
        raft_set_snapshot_threshold(&c->raft, (unsigned)t);
    }
}

static void install_timeout_update(struct cluster *c)
{
    raft_index last = c->raft.log.snapshot.last_index;
    uint64_t size;
    if (last == c->snapshot_seen) {
        return;
    }
    c->snapshot_seen = last;
    size = snapshot_file_size(c);
    raft_set_install_snapshot_timeout(&c->raft, install_timeout(c, size));
    snapshot_threshold_update(c, size);
}

/* ---- Create / start ----------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s == NULL ? NULL : strdup(s);
}

/* Open <data>/fsm: kept when its marker allows it (fsm_options.keep), but
 * never for --restore / --force-new-cluster (cfg.discard_state) nor with a
 * raft dir that holds nothing (the state would belong to a log that is
 * gone). */
static int open_state(struct cluster *c, char *errmsg, size_t size)
{
    struct fsm_options fo;
    char path[1024];
    const char *why = NULL, *kept_why;
    bool used = true;
    int rv;

    memset(&fo, 0, sizeof fo);
    snprintf(path, sizeof path, "%s/fsm", c->data_dir);
    fo.dir = path;
    fo.map_size = c->cfg.state_map_size;
    fo.keep = true;
    if (c->cfg.discard_state != NULL) {
        fo.fresh = true;
        why = c->cfg.discard_state;
    } else if (cluster__raft_dir_used(c, &used) != 0 || !used) {
        fo.fresh = true;
        why = "no-raft-state";
    }
    rv = fsm_open(&fo, &c->fsm);
    if (rv != 0) {
        snprintf(errmsg, size, "fsm: %s",
                 c->fsm != NULL ? fsm_errmsg(c->fsm) : err_strerror(rv));
        return rv;
    }
    if (fsm_state_kept(c->fsm, &kept_why)) {
        LOG(LOG_INFO, "state kept", "applied=%llu reason=%s",
            (unsigned long long)fsm_applied_index(c->fsm), kept_why);
    } else {
        LOG(LOG_INFO, "state rebuilt",
            "reason=%s note=\"from the last snapshot and the raft log\"",
            fo.fresh ? why : kept_why);
    }
    return 0;
}

int cluster_create(uv_loop_t *loop,
                   const struct cluster_config *cfg,
                   struct cluster **out,
                   char *errmsg,
                   size_t size)
{
    struct cluster *c = calloc(1, sizeof *c);
    char path[1024];
    int rv;

    if (c == NULL) {
        snprintf(errmsg, size, "out of memory");
        return ERR_NOMEM;
    }
    c->loop = loop;
    c->cfg = *cfg;
    c->data_dir = strdup(cfg->data_dir);
    c->raft_addr = strdup(cfg->raft_addr);
    c->http_addr = strdup(cfg->http_addr);
    c->cluster_spec = dup_or_null(cfg->cluster);
    c->join_url = dup_or_null(cfg->join);
    c->cfg.data_dir = c->data_dir;
    c->cfg.raft_addr = c->raft_addr;
    c->cfg.http_addr = c->http_addr;
    c->cfg.cluster = c->cluster_spec;
    c->cfg.join = c->join_url;

    snprintf(path, sizeof path, "%s/raft", cfg->data_dir);
    if (fs_mkdir_p(path) != 0) {
        snprintf(errmsg, size, "data dir %s: %s", path, strerror(errno));
        return ERR_IO;
    }
    rv = open_state(c, errmsg, size);
    if (rv != 0) {
        return rv;
    }
    rv = cluster_raft_fsm_init(&c->rfsm, c->fsm, true);
    if (rv != 0) {
        snprintf(errmsg, size, "raft fsm: %s", err_strerror(rv));
        return rv;
    }
    if (cfg->tls_ca != NULL) {
        /* Mutual TLS: a peer without a certificate from the cluster CA is
         * dropped before raft sees a byte (Nagle is off inside). */
        rv = cluster_tls_transport_init(&c->transport, loop, cfg->tls_ca,
                                        cfg->tls_cert, cfg->tls_key, errmsg,
                                        size);
        if (rv != 0) {
            return ERR_IO; /* @errmsg says which file and why. */
        }
    } else {
        /* --insecure: plain TCP with the same deadlines and caps (raft's
         * own TCP transport has a backlog of 1 and no deadline). */
        rv = cluster_plain_transport_init(&c->transport, loop, errmsg, size);
        if (rv != 0) {
            return ERR_IO;
        }
    }
    snprintf(path, sizeof path, "%s/raft", cfg->data_dir);
    rv = raft_uv_init(&c->io, loop, path, &c->transport);
    if (rv != 0) {
        snprintf(errmsg, size, "raft io: %s", raft_strerror(rv));
        return ERR_IO;
    }
    /* FSM v3 (async snapshot) needs io->version 2; raft_uv_init sets 1
     * (LIBRARIES.md 2). */
    c->io.version = 2;
    c->uv_append = c->io.append;
    c->io.append = append_wrap;
    c->uv_close = c->io.close;
    c->io.close = close_wrap;
    raft_uv_set_connect_retry_delay(&c->io, 200);
    /* The fsm's snapshots are LZ4-compressed already (format v2,
     * fsm/snapshot.c): raft compressing them again would copy them into one
     * more buffer. Off, raft_uv writes our chunks with one writev, and
     * sends the file as it is to a follower; snapshot files compressed by
     * older versions still load (raft_uv looks at the file's LZ4 frame
     * magic, not at this setting). */
    rv = raft_uv_set_snapshot_compression(&c->io, false);
    if (rv != 0) {
        snprintf(errmsg, size, "raft io: snapshot compression: %s",
                 raft_strerror(rv));
        return ERR_IO;
    }
    rv = raft_init(&c->raft, &c->io, &c->rfsm, cfg->id, c->raft_addr);
    if (rv != 0) {
        snprintf(errmsg, size, "raft init: %s", raft_errmsg(&c->raft));
        return ERR_IO;
    }
    cluster_raft_fsm_set_raft(&c->rfsm, &c->raft);
    /* Followers must not claim entries they do not share with the leader
     * (a raft 0.15 bug, cluster/raft_guard.h). */
    rv = raft_guard_install(&c->io);
    if (rv != 0) {
        snprintf(errmsg, size, "raft guard: %s", err_strerror(rv));
        return rv;
    }
    raft_set_election_timeout(&c->raft, cfg->election_timeout);
    raft_set_heartbeat_timeout(&c->raft, cfg->heartbeat_timeout);
    raft_set_snapshot_threshold(&c->raft, cfg->snapshot_threshold != 0
                                              ? cfg->snapshot_threshold
                                              : SNAPSHOT_THRESHOLD_MIN);
    raft_set_snapshot_trailing(&c->raft, cfg->snapshot_trailing);
    raft_set_pre_vote(&c->raft, true);
    raft_set_install_snapshot_timeout(&c->raft, install_timeout(c, 0));
    *out = c;
    return 0;
}

/* Parse "1@127.0.0.1:7001,2@..." into @conf. */
static int parse_cluster(const char *spec,
                         struct raft_configuration *conf,
                         char *errmsg,
                         size_t size)
{
    char *copy = strdup(spec);
    char *save = NULL;
    int rv = 0;

    if (copy == NULL) {
        return ERR_NOMEM;
    }
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        char *at = strchr(tok, '@');
        char *end;
        unsigned long long id;
        if (at == NULL) {
            snprintf(errmsg, size, "cluster: %s: want id@host:port", tok);
            rv = ERR_INVALID;
            break;
        }
        *at = '\0';
        id = strtoull(tok, &end, 10);
        if (*end != '\0' || id == 0) {
            snprintf(errmsg, size, "cluster: bad id %s", tok);
            rv = ERR_INVALID;
            break;
        }
        if (raft_configuration_add(conf, id, at + 1, RAFT_VOTER) != 0) {
            snprintf(errmsg, size, "cluster: duplicate or bad member %llu", id);
            rv = ERR_INVALID;
            break;
        }
    }
    free(copy);
    return rv;
}

static void watch_cb(uv_timer_t *timer);

static void apply_check_cb(uv_check_t *check)
{
    struct cluster *c = check->data;
    cluster_raft_fsm_flush(&c->rfsm);
}

int cluster_start(struct cluster *c, char *errmsg, size_t size)
{
    struct raft_configuration conf;
    int rv;

    if (c->join_url == NULL) {
        raft_configuration_init(&conf);
        rv = parse_cluster(c->cluster_spec, &conf, errmsg, size);
        if (rv == 0) {
            rv = raft_bootstrap(&c->raft, &conf);
            if (rv == 0) {
                LOG(LOG_INFO, "bootstrapped", "voters=%u cluster=%s", conf.n,
                    c->cluster_spec);
            } else if (rv == RAFT_CANTBOOTSTRAP) {
                rv = 0; /* Restart on an existing data dir. */
            } else {
                snprintf(errmsg, size, "bootstrap: %s", raft_strerror(rv));
                rv = ERR_IO;
            }
        }
        raft_configuration_close(&conf);
        if (rv != 0) {
            return rv;
        }
    }
    rv = cluster__httpc_create(c, &c->http);
    if (rv != 0) {
        snprintf(errmsg, size, "http client: %s", err_strerror(rv));
        return rv;
    }
    rv = cluster__submit_init(c);
    if (rv != 0) {
        snprintf(errmsg, size, "group commit: %s", err_strerror(rv));
        return rv;
    }
    rv = cluster__fwd_init(c);
    if (rv != 0) {
        snprintf(errmsg, size, "forward channel: %s", err_strerror(rv));
        return rv;
    }
    uv_check_init(c->loop, &c->apply_check);
    c->apply_check.data = c;
    c->open_handles++;
    uv_check_start(&c->apply_check, apply_check_cb);
    /* Only a check phase that keeps nothing alive: the loop runs anyway. */
    uv_unref((uv_handle_t *)&c->apply_check);
    cluster_raft_fsm_set_hold(&c->rfsm, true);
    rv = raft_start(&c->raft);
    if (rv != 0) {
        snprintf(errmsg, size, "raft start: %s", raft_errmsg(&c->raft));
        return ERR_IO;
    }
    uv_timer_init(c->loop, &c->watch);
    c->watch.data = c;
    c->open_handles++;
    uv_timer_start(&c->watch, watch_cb, 0, WATCH_INTERVAL_MS);
    return 0;
}

/* ---- Leader watch ------------------------------------------------------- */

static void watch_cb(uv_timer_t *timer)
{
    struct cluster *c = timer->data;
    raft_id leader_id;
    const char *leader_addr;
    int state = raft_state(&c->raft);
    uint64_t term = c->raft.current_term;

    install_timeout_update(c);
    raft_leader(&c->raft, &leader_id, &leader_addr);
    if (leader_id != c->leader_id || term != c->term) {
        if (leader_id != c->leader_id) {
            c->stats.leader_changes++;
            LOG(LOG_INFO, "leader changed",
                "leader=%llu addr=%s term=%llu "
                "role=%s",
                (unsigned long long)leader_id,
                leader_addr != NULL ? leader_addr : "none",
                (unsigned long long)term,
                state == RAFT_LEADER ? "leader" : "follower");
        }
        c->leader_id = leader_id;
        c->term = term;
    }
    if (state != c->state && c->state == RAFT_LEADER) {
        /* Lost leadership: what is queued for the next entry cannot go. */
        cluster__fail_pending(c, ERR_NOTLEADER);
    }
    c->state = state;
    cluster__register_tick(c);
    cluster__fwd_tick(c);
}

/* ---- Close -------------------------------------------------------------- */

static void maybe_closed(struct cluster *c)
{
    if (c->open_handles == 0 && c->close_cb != NULL) {
        cluster_close_cb cb = c->close_cb;
        c->close_cb = NULL;
        LOG(LOG_INFO, "stopped", "%s", "");
        cb(c->close_data);
    }
}

void cluster__handle_closed(struct cluster *c)
{
    c->open_handles--;
    maybe_closed(c);
}

static void handle_closed_cb(uv_handle_t *handle)
{
    cluster__handle_closed(handle->data);
}

static void httpc_closed_cb(struct cluster *c)
{
    c->http = NULL;
    cluster__handle_closed(c);
}

static void raft_closed_cb(struct raft *r)
{
    struct cluster *c = CONTAINER_OF(r, struct cluster, raft);
    /* raft_uv and the transport are freed in cluster_destroy (see
     * "Closing raft_uv"). */
    if (c->http != NULL) {
        cluster__httpc_close(c->http, httpc_closed_cb);
    } else {
        cluster__handle_closed(c);
    }
}

void cluster_close(struct cluster *c, cluster_close_cb cb, void *data)
{
    c->closing = true;
    c->close_cb = cb;
    c->close_data = data;
    c->open_handles++; /* raft + http client, released in raft_closed_cb. */
    if (uv_is_active((uv_handle_t *)&c->watch) || c->watch.loop == c->loop) {
        uv_timer_stop(&c->watch);
        uv_close((uv_handle_t *)&c->watch, handle_closed_cb);
    }
    if (c->apply_check.loop == c->loop) {
        /* Applied while the rest of the node (event streams) still runs;
         * raft, closing, applies nothing more on a follower. */
        cluster_raft_fsm_set_hold(&c->rfsm, false);
        cluster_raft_fsm_flush(&c->rfsm);
        uv_check_stop(&c->apply_check);
        uv_close((uv_handle_t *)&c->apply_check, handle_closed_cb);
    }
    cluster__submit_close(c);
    cluster__fwd_close(c);
    raft_close(&c->raft, raft_closed_cb);
}

void cluster_destroy(struct cluster *c)
{
    raft_uv_close(&c->io);
    cluster_tls_transport_close(&c->transport);
    raft_guard_remove(&c->io);
    cluster_raft_fsm_close(&c->rfsm);
    fsm_close(c->fsm);
    free(c->pending_subs);
    free(c->data_dir);
    free(c->raft_addr);
    free(c->http_addr);
    free(c->cluster_spec);
    free(c->join_url);
    free(c);
}

/* ---- State -------------------------------------------------------------- */

struct fsm *cluster_fsm(struct cluster *c)
{
    return c->fsm;
}

uint64_t cluster_id(struct cluster *c)
{
    return c->cfg.id;
}

bool cluster_is_leader(struct cluster *c)
{
    return raft_state(&c->raft) == RAFT_LEADER;
}

struct find_http
{
    uint64_t id;
    char *out;
    size_t size;
};

static void find_http_cb(void *data,
                         uint64_t id,
                         struct fsm_str raft_addr,
                         struct fsm_str http_addr)
{
    struct find_http *f = data;
    (void)raft_addr;
    if (id == f->id && http_addr.len < f->size) {
        memcpy(f->out, http_addr.p, http_addr.len);
        f->out[http_addr.len] = '\0';
    }
}

uint64_t cluster_leader(struct cluster *c, char *http, size_t size)
{
    raft_id id;
    const char *addr;
    struct fsm_reader *rd;

    raft_leader(&c->raft, &id, &addr);
    if (http != NULL && size > 0) {
        struct find_http f = {id, http, size};
        http[0] = '\0';
        if (id != 0 && fsm_read_begin(c->fsm, &rd) == 0) {
            fsm_nodes(rd, find_http_cb, &f);
            fsm_read_end(rd);
        }
        if (id == c->cfg.id && http[0] == '\0') {
            snprintf(http, size, "%s", c->http_addr);
        }
    }
    return id;
}

uint64_t cluster_term(struct cluster *c)
{
    return c->raft.current_term;
}

uint64_t cluster_commit_index(struct cluster *c)
{
    return c->raft.commit_index;
}

uint64_t cluster_applied_index(struct cluster *c)
{
    return cluster_raft_fsm_applied(&c->rfsm);
}

bool cluster_ready(struct cluster *c, const char **reason)
{
    raft_id id;
    const char *addr;

    raft_leader(&c->raft, &id, &addr);
    if (id == 0) {
        *reason = "no leader known";
        return false;
    }
    if (raft_last_applied(&c->raft) < c->raft.commit_index) {
        *reason = "catching up";
        return false;
    }
    if (!c->registered) {
        *reason = "own address not yet in the node table";
        return false;
    }
    *reason = NULL;
    return true;
}

void cluster_members(struct cluster *c, cluster_member_cb cb, void *data)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    raft_id leader;
    const char *addr;
    bool leading = raft_state(&c->raft) == RAFT_LEADER;

    raft_leader(&c->raft, &leader, &addr);
    for (unsigned i = 0; i < conf->n; i++) {
        const struct raft_server *s = &conf->servers[i];
        struct cluster_member m;
        m.id = s->id;
        m.raft_addr = s->address;
        m.voter = s->role == RAFT_VOTER;
        m.role = s->role == RAFT_VOTER     ? "voter"
                 : s->role == RAFT_STANDBY ? "standby"
                                           : "spare";
        m.is_leader = s->id == leader;
        m.match_index = -1;
        if (s->id == c->cfg.id) {
            m.match_index = (int64_t)raft_last_applied(&c->raft);
        } else if (leading && c->raft.leader_state.progress != NULL) {
            m.match_index =
                (int64_t)c->raft.leader_state.progress[i].match_index;
        }
        cb(data, &m);
    }
}

void cluster_stats(struct cluster *c, struct cluster_stats *out)
{
    struct cluster_raft_fsm_stats fs;
    *out = c->stats;
    cluster_raft_fsm_stats(&c->rfsm, &fs);
    out->snapshots_taken = fs.snapshots_taken;
    out->snapshots_restored = fs.snapshots_restored;
    out->snapshots_skipped = fs.snapshots_skipped;
    out->entries_applied = fs.entries_applied;
    out->applies_held = fs.applies_held;
    out->apply_seconds = (double)fs.apply_ns / 1e9;
    struct raft_guard_stats gs;
    raft_guard_stats(&c->io, &gs);
    out->raft_guard_fixes = gs.clamped + gs.raised + gs.rollbacks;
    out->inflight_bytes = c->inflight_cost;
}

const char *cluster_scheme(struct cluster *c)
{
    return c->cfg.tls_ca != NULL ? "https" : "http";
}
