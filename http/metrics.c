/* GET /metrics: Prometheus text format, written by hand (Debian 12 has no C
 * client library for it). Names are documented in docs/operations.md. */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http/internal.h"

struct out
{
    char *buf;
    size_t len, cap;
    h2o_req_t *req;
};

static void put(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        int n;
        va_start(ap, fmt);
        n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *nb = h2o_mem_alloc_pool(&o->req->pool, cap);
        memcpy(nb, o->buf, o->len);
        o->buf = nb;
        o->cap = cap;
    }
}

static void metric(struct out *o,
                   const char *name,
                   const char *type,
                   const char *help,
                   unsigned long long value)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type,
        name, value);
}

/* The leader's services (this node, while leader). */
static void sched_metrics(struct out *o, struct sched *sc)
{
    struct sched_stats st;
    sched_stats(sc, &st);
    metric(o, "jobs_started", "counter",
           "Jobs leased to workers (this node, while leader).", st.started);
    metric(o, "jobs_completed", "counter", "Jobs completed successfully.",
           st.completed);
    metric(o, "jobs_failed", "counter", "Jobs that ended failed (dead letter).",
           st.failed);
    metric(o, "rota_leases_lost_total", "counter",
           "Leases ended by a worker declared down.", st.lost);
    metric(o, "rota_schedule_fires_total", "counter",
           "Cron occurrences recorded (run or skipped).", st.fired);
    metric(o, "rota_leases_unreceived_total", "counter",
           "Leases ended because the worker never received them.",
           st.unreceived);
    metric(o, "rota_jobs_expired_total", "counter",
           "Finished jobs removed by retention.", st.expired);
    put(o,
        "# HELP job_duration_seconds Run time of accepted results.\n"
        "# TYPE job_duration_seconds histogram\n");
    for (int k = 0; k < SCHED_DURATION_BUCKETS; k++) {
        put(o, "job_duration_seconds_bucket{le=\"%g\"} %llu\n",
            sched_duration_bounds_s[k], st.duration_buckets[k]);
    }
    put(o,
        "job_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
        "job_duration_seconds_sum %.3f\njob_duration_seconds_count %llu\n",
        st.duration_count, st.duration_sum, st.duration_count);
}

void http__metrics(struct http_server *s,
                   h2o_req_t *req,
                   const struct http_args *a)
{
    struct out o = {NULL, 0, 8192, req};
    struct cluster_stats cs;
    struct fsm_reader *rd;
    uint64_t counts[8];

    o.buf = h2o_mem_alloc_pool(&req->pool, o.cap);
    cluster_stats(s->cluster, &cs);
    memset(counts, 0, sizeof counts);
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) == 0) {
        fsm_count_by_status(rd, counts);
        fsm_read_end(rd);
    }
    put(&o,
        "# HELP rota_jobs Jobs in the job table by status.\n"
        "# TYPE rota_jobs gauge\n");
    for (int st = 1; st <= FSM_STATUS_MAX; st++) {
        put(&o, "rota_jobs{status=\"%s\"} %llu\n", fsm_status_name(st),
            (unsigned long long)counts[st]);
    }
    metric(&o, "rota_jobs_submitted_total", "counter",
           "Jobs created through this node while it led.", s->submitted);
    metric(&o, "rota_raft_is_leader", "gauge", "1 if this node leads.",
           cluster_is_leader(s->cluster));
    metric(&o, "rota_raft_term", "gauge", "Current raft term.",
           cluster_term(s->cluster));
    metric(&o, "rota_raft_commit_index", "gauge", "Raft commit index.",
           cluster_commit_index(s->cluster));
    metric(&o, "rota_raft_applied_index", "gauge", "Last applied index.",
           cluster_applied_index(s->cluster));
    metric(&o, "rota_raft_entries_proposed_total", "counter",
           "Raft entries proposed (one per group commit).", cs.batches);
    metric(&o, "rota_raft_commands_proposed_total", "counter",
           "Commands carried by proposed entries.", cs.commands);
    metric(&o, "rota_raft_entries_applied_total", "counter",
           "Raft entries applied to the state machine.", cs.entries_applied);
    metric(&o, "rota_leader_changes_total", "counter",
           "Leader changes seen by this node.", cs.leader_changes);
    metric(&o, "rota_snapshots_taken_total", "counter", "Snapshots taken.",
           cs.snapshots_taken);
    metric(&o, "rota_snapshots_installed_total", "counter",
           "Snapshots restored (start or install).", cs.snapshots_restored);
    metric(&o, "rota_raft_guard_fixes_total", "counter",
           "Raft 0.15 bugs worked around by this node (cluster/raft_guard.h, "
           "docs/reliability.md).",
           cs.raft_guard_fixes);
    metric(&o, "rota_writes_refused_busy_total", "counter",
           "New jobs refused with 429: too many writes waiting for their "
           "commit (--max-inflight).",
           cs.refused_busy);
    metric(&o, "rota_writes_inflight_bytes", "gauge",
           "Bytes of writes waiting for their commit.", cs.inflight_bytes);
    metric(&o, "rota_http_connections_stalled_closed_total", "counter",
           "Connections closed because their answer made no write progress "
           "for --write-timeout.",
           s->stalled_closed);
    metric(&o, "rota_http_answers_refused_total", "counter",
           "Answers refused with 503: too many answer bytes not yet written.",
           s->busy_refused);
    metric(&o, "rota_http_requests_held_total", "counter",
           "Requests held for a leader during an election (--leader-hold).",
           s->leader_held);
    metric(&o, "rota_http_requests_held_expired_total", "counter",
           "Held requests answered 503 when the hold ran out.",
           s->leader_held_expired);
    metric(&o, "rota_forwarded_requests_total", "counter",
           "Requests forwarded to the leader.", s->forwarded);
    metric(&o, "rota_http_client_errors_total", "counter",
           "Failed forwards and joins.", cs.forward_errors);
    metric(&o, "rota_forward_channel_sent_total", "counter",
           "Writes sent to the leader over the forward channel.", cs.fwd_sent);
    metric(&o, "rota_forward_channel_received_total", "counter",
           "Writes received from followers over the forward channel.",
           cs.fwd_received);
    metric(&o, "rota_forward_channel_errors_total", "counter",
           "Forward channel writes that got no answer (channel closed, "
           "timeout).",
           cs.fwd_errors);
    sched_metrics(&o, s->sched);
    http__send_text(req, 200, "text/plain; version=0.0.4", o.buf, o.len);
}
