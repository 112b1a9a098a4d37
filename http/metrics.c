/* GET /metrics: Prometheus text format, written by hand (Debian 12 has no C
 * client library for it). Names are documented in docs/operations.md. */

#include <stdarg.h>
#include <stddef.h>
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

/* A label value as the text format wants it (queue names are letters,
 * digits and _.:- already; escape anyway). */
static void put_label(struct out *o, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"') {
            put(o, "\\%c", *v);
        } else if (*v == '\n') {
            put(o, "\\n");
        } else {
            put(o, "%c", *v);
        }
    }
}

static void family(struct out *o,
                   const char *name,
                   const char *type,
                   const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram series: @buckets are per bucket (not cumulative), @n
 * bounds then +Inf; @queue the queue label or NULL. */
static void hist_series(struct out *o,
                        const char *name,
                        const char *queue,
                        const double *bounds,
                        int n,
                        const unsigned long long *buckets,
                        double sum,
                        unsigned long long count)
{
    unsigned long long cum = 0;
    for (int k = 0; k <= n; k++) {
        cum += buckets[k];
        put(o, "%s_bucket{", name);
        if (queue != NULL) {
            put(o, "queue=\"");
            put_label(o, queue);
            put(o, "\",");
        }
        if (k < n) {
            put(o, "le=\"%g\"} %llu\n", bounds[k], cum);
        } else {
            put(o, "le=\"+Inf\"} %llu\n", cum);
        }
    }
    const char *suffix[2] = {"_sum", "_count"};
    for (int i = 0; i < 2; i++) {
        put(o, "%s%s", name, suffix[i]);
        if (queue != NULL) {
            put(o, "{queue=\"");
            put_label(o, queue);
            put(o, "\"}");
        }
        if (i == 0) {
            put(o, " %.6f\n", sum);
        } else {
            put(o, " %llu\n", count);
        }
    }
}

/* A per-queue counter family: the field at @offset of each queue's
 * counters. */
static void queue_counter(struct out *o,
                          const struct sched_queue_stats *qs,
                          unsigned n,
                          const char *name,
                          const char *help,
                          size_t offset)
{
    family(o, name, "counter", help);
    for (unsigned i = 0; i < n; i++) {
        unsigned long long v;
        memcpy(&v, (const char *)&qs[i] + offset, sizeof v);
        put(o, "%s{queue=\"", name);
        put_label(o, qs[i].name);
        put(o, "\"} %llu\n", v);
    }
}

static void queue_hist(struct out *o,
                       const struct sched_queue_stats *qs,
                       unsigned n,
                       const char *name,
                       const char *help,
                       bool delay)
{
    family(o, name, "histogram", help);
    for (unsigned i = 0; i < n; i++) {
        const struct sched_hist *h =
            delay ? &qs[i].start_delay : &qs[i].duration;
        hist_series(o, name, qs[i].name, sched_duration_bounds_s,
                    SCHED_DURATION_BUCKETS, h->buckets, h->sum, h->count);
    }
}

/* The canonical per-queue job metrics (this node, while leader; at most
 * SCHED_STATS_QUEUES queues, the rest under queue="_other"). */
static void queue_metrics(struct out *o, struct sched *sc)
{
    unsigned n;
    const struct sched_queue_stats *qs = sched_queue_stats(sc, &n);
    queue_counter(o, qs, n, "rota_jobs_submitted_total",
                  "Jobs created through the API on this node while it led.",
                  offsetof(struct sched_queue_stats, submitted));
    queue_counter(o, qs, n, "rota_jobs_started_total",
                  "Attempts leased to workers (this node, while leader).",
                  offsetof(struct sched_queue_stats, started));
    queue_counter(o, qs, n, "rota_jobs_completed_total",
                  "Attempts that succeeded (this node, while leader).",
                  offsetof(struct sched_queue_stats, completed));
    queue_counter(o, qs, n, "rota_jobs_failed_total",
                  "Attempts that failed, lost leases included (this node, "
                  "while leader).",
                  offsetof(struct sched_queue_stats, failed));
    queue_counter(o, qs, n, "rota_jobs_dead_total",
                  "Jobs moved to the dead-letter queue (this node, while "
                  "leader).",
                  offsetof(struct sched_queue_stats, dead));
    queue_hist(o, qs, n, "rota_job_duration_seconds",
               "Run time of accepted results (this node, while leader).",
               false);
    queue_hist(o, qs, n, "rota_job_start_delay_seconds",
               "From when a job was ready (run_at, else creation) to its "
               "lease (this node, while leader).",
               true);
}

/* The leader's services (this node, while leader). */
static void sched_metrics(struct out *o, struct sched *sc)
{
    struct sched_stats st;
    unsigned long long buckets[SCHED_DURATION_BUCKETS + 1];
    sched_stats(sc, &st);
    /* The seed names (users know them): counters without the _total
     * suffix, so "untyped" keeps promtool's lint quiet; the rota_jobs_*
     * series by queue are the canonical ones. */
    metric(o, "jobs_started", "untyped",
           "Attempts leased to workers (this node, while leader); old name "
           "of sum(rota_jobs_started_total).",
           st.started);
    metric(o, "jobs_completed", "untyped",
           "Jobs completed successfully; old name of "
           "sum(rota_jobs_completed_total).",
           st.completed);
    metric(o, "jobs_failed", "untyped",
           "Jobs that ended failed (dead letter); old name of "
           "sum(rota_jobs_dead_total).",
           st.failed);
    metric(o, "rota_leases_lost_total", "counter",
           "Leases ended by a worker declared down.", st.lost);
    metric(o, "rota_leases_unreceived_total", "counter",
           "Leases ended because the worker never received them.",
           st.unreceived);
    metric(o, "rota_lease_expiries_total", "counter",
           "Leases ended without a result: worker declared down or lease "
           "never received.",
           st.lost + st.unreceived);
    metric(o, "rota_schedule_fires_total", "counter",
           "Schedule runs created (occurrences and manual triggers).",
           st.fire_runs);
    metric(o, "rota_schedule_skips_total", "counter",
           "Schedule occurrences skipped (overlap, catch-up, misfire).",
           st.skips);
    metric(o, "rota_jobs_expired_total", "counter",
           "Finished jobs removed by retention.", st.expired);
    /* The seed histogram: its buckets are kept cumulative. */
    for (int k = 0; k < SCHED_DURATION_BUCKETS; k++) {
        buckets[k] =
            st.duration_buckets[k] - (k > 0 ? st.duration_buckets[k - 1] : 0);
    }
    buckets[SCHED_DURATION_BUCKETS] =
        st.duration_count - st.duration_buckets[SCHED_DURATION_BUCKETS - 1];
    family(o, "job_duration_seconds", "histogram",
           "Run time of accepted results.");
    hist_series(o, "job_duration_seconds", NULL, sched_duration_bounds_s,
                SCHED_DURATION_BUCKETS, buckets, st.duration_sum,
                st.duration_count);
    queue_metrics(o, sc);
}

struct worker_states
{
    struct sched *sc;
    unsigned long long alive, late, down;
};

static void worker_state_cb(void *data, const struct fsm_worker *w)
{
    struct worker_states *ws = data;
    struct sched_worker_view v;
    if (w->down) {
        ws->down++;
        return;
    }
    sched_worker_view(ws->sc, w->id, &v);
    ws->late += v.late;
    ws->alive += !v.late;
}

/* What the replicated state says (same on every node, as of its applied
 * index): jobs by status, workers by state. */
static void state_metrics(struct out *o, struct http_server *s)
{
    struct fsm_reader *rd;
    uint64_t counts[8];
    struct worker_states ws = {s->sched, 0, 0, 0};

    memset(counts, 0, sizeof counts);
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) == 0) {
        fsm_count_by_status(rd, counts);
        fsm_workers(rd, worker_state_cb, &ws);
        fsm_read_end(rd);
    }
    family(o, "rota_jobs", "gauge", "Jobs in the job table by status.");
    for (int st = 1; st <= FSM_STATUS_MAX; st++) {
        put(o, "rota_jobs{status=\"%s\"} %llu\n", fsm_status_name(st),
            (unsigned long long)counts[st]);
    }
    family(o, "rota_workers", "gauge",
           "Registered workers by state (late: past its heartbeat deadline, "
           "known on the leader only).");
    put(o,
        "rota_workers{state=\"alive\"} %llu\nrota_workers{state=\"late\"} "
        "%llu\nrota_workers{state=\"down\"} %llu\n",
        ws.alive, ws.late, ws.down);
}

static void raft_metrics(struct out *o,
                         struct http_server *s,
                         const struct cluster_stats *cs)
{
    metric(o, "rota_raft_is_leader", "gauge", "1 if this node leads.",
           cluster_is_leader(s->cluster));
    metric(o, "rota_raft_term", "gauge", "Current raft term.",
           cluster_term(s->cluster));
    metric(o, "rota_raft_commit_index", "gauge", "Raft commit index.",
           cluster_commit_index(s->cluster));
    metric(o, "rota_raft_applied_index", "gauge", "Last applied index.",
           cluster_applied_index(s->cluster));
    metric(o, "rota_raft_entries_proposed_total", "counter",
           "Raft entries proposed (one per group commit).", cs->batches);
    metric(o, "rota_raft_commands_proposed_total", "counter",
           "Commands carried by proposed entries.", cs->commands);
    metric(o, "rota_raft_entries_applied_total", "counter",
           "Raft entries applied to the state machine.", cs->entries_applied);
    metric(o, "rota_fsm_applies_held_total", "counter",
           "Entries this follower applied after answering the leader's "
           "AppendEntries, not before.",
           cs->applies_held);
    family(o, "rota_fsm_apply_seconds_total", "counter",
           "Time spent applying raft entries to the state machine (LMDB), "
           "on the node's event loop.");
    put(o, "rota_fsm_apply_seconds_total %.6f\n", cs->apply_seconds);
    family(o, "rota_raft_commit_latency_seconds", "histogram",
           "From proposing an entry to its apply on this leader (committed "
           "by a majority), per entry.");
    hist_series(o, "rota_raft_commit_latency_seconds", NULL,
                cluster_commit_bounds_s, CLUSTER_COMMIT_BUCKETS,
                cs->commit_buckets, cs->commit_sum, cs->commit_count);
    metric(o, "rota_leader_changes_total", "counter",
           "Leader changes seen by this node.", cs->leader_changes);
    metric(o, "rota_snapshots_taken_total", "counter", "Snapshots taken.",
           cs->snapshots_taken);
    metric(o, "rota_snapshots_installed_total", "counter",
           "Snapshots restored (start or install).", cs->snapshots_restored);
    metric(o, "rota_snapshots_skipped_total", "counter",
           "Snapshot restores skipped: the state had already reached the "
           "snapshot (a kept state at start, docs/architecture.md).",
           cs->snapshots_skipped);
    metric(o, "rota_raft_guard_fixes_total", "counter",
           "Raft 0.15 bugs worked around by this node (cluster/raft_guard.h, "
           "docs/reliability.md).",
           cs->raft_guard_fixes);
}

static void http_metrics(struct out *o,
                         struct http_server *s,
                         const struct cluster_stats *cs)
{
    metric(o, "rota_writes_refused_busy_total", "counter",
           "New jobs refused with 429: too many writes waiting for their "
           "commit (--max-inflight).",
           cs->refused_busy);
    metric(o, "rota_raft_linger_expired_total", "counter",
           "Raft entries proposed when --batch-linger ran out (the clients "
           "answered by the previous entry had not all written again).",
           cs->linger_expired);
    metric(o, "rota_writes_refused_full_total", "counter",
           "New jobs refused with 429: the LMDB state reached 90% of "
           "--state-map-size.",
           cs->refused_full);
    metric(o, "rota_writes_inflight_bytes", "gauge",
           "Bytes of writes waiting for their commit.", cs->inflight_bytes);
    metric(o, "rota_http_connections_stalled_closed_total", "counter",
           "Connections closed because their answer made no write progress "
           "for --write-timeout.",
           s->stalled_closed);
    metric(o, "rota_http_answers_refused_total", "counter",
           "Answers refused with 503: too many answer bytes not yet written.",
           s->busy_refused);
    metric(o, "rota_http_requests_held_total", "counter",
           "Requests held for a leader during an election (--leader-hold).",
           s->leader_held);
    metric(o, "rota_http_requests_held_expired_total", "counter",
           "Held requests answered 503 when the hold ran out.",
           s->leader_held_expired);
    metric(o, "rota_forwarded_requests_total", "counter",
           "Requests forwarded to the leader.", s->forwarded);
    metric(o, "rota_forwarded_http_requests_total", "counter",
           "Of those, and joins: requests sent to another node over HTTP "
           "(the rest went over the forward channel).",
           cs->forwards);
    metric(o, "rota_http_client_errors_total", "counter",
           "Failed forwards and joins.", cs->forward_errors);
    metric(o, "rota_forward_channel_sent_total", "counter",
           "Writes sent to the leader over the forward channel.", cs->fwd_sent);
    metric(o, "rota_forward_channel_received_total", "counter",
           "Writes received from followers over the forward channel.",
           cs->fwd_received);
    metric(o, "rota_forward_channel_errors_total", "counter",
           "Forward channel writes that got no answer (channel closed, "
           "timeout).",
           cs->fwd_errors);
}

/* Event streams and waits on this node. */
static void event_metrics(struct out *o, struct http_server *s)
{
    unsigned long long st[3];
    http__events_stats(s, st);
    metric(o, "rota_event_streams", "gauge",
           "Open GET /v1/events streams on this node.", st[0]);
    metric(o, "rota_event_streams_dropped_total", "counter",
           "Event streams ended because their reader fell behind the node's "
           "event buffer.",
           st[1]);
    metric(o, "rota_job_waits", "gauge",
           "GET /v1/jobs/{id}?wait= requests waiting on this node.", st[2]);
}

/* Webhook deliveries sent by this node while it led, by result. */
static void webhook_metrics(struct out *o, struct http_server *s)
{
    static const char *const results[] = {"sent", "ok", "failed", "expired"};
    unsigned long long st[4];
    http__webhooks_stats(s, st);
    family(o, "rota_webhook_deliveries_total", "counter",
           "Webhook delivery attempts by this node while it led: sent, "
           "answered 2xx (ok), failed, and deliveries expired after 24 h.");
    for (int i = 0; i < 4; i++) {
        put(o, "rota_webhook_deliveries_total{result=\"%s\"} %llu\n",
            results[i], st[i]);
    }
}

void http__metrics(struct http_server *s,
                   h2o_req_t *req,
                   const struct http_args *a)
{
    struct out o = {NULL, 0, 16384, req};
    struct cluster_stats cs;

    (void)a;
    o.buf = h2o_mem_alloc_pool(&req->pool, o.cap);
    cluster_stats(s->cluster, &cs);
    state_metrics(&o, s);
    raft_metrics(&o, s, &cs);
    http_metrics(&o, s, &cs);
    sched_metrics(&o, s->sched);
    webhook_metrics(&o, s);
    event_metrics(&o, s);
    http__send_text(req, 200, "text/plain; version=0.0.4", o.buf, o.len);
}

void http__count_created(struct http_server *s,
                         const struct fsm_result *res,
                         uint32_t from)
{
    struct fsm_reader *rd;
    bool read = fsm_read_begin(cluster_fsm(s->cluster), &rd) == 0;
    for (uint32_t i = from; i < res->n_ids; i++) {
        struct fsm_job job;
        if (res->existed != NULL && res->existed[i]) {
            continue; /* An idempotency key matched: not created. */
        }
        s->submitted++;
        if (read && fsm_get_job(rd, res->ids[i], &job) == 0) {
            sched_count_submitted(s->sched, job.queue, 1);
        }
    }
    if (read) {
        fsm_read_end(rd);
    }
}
