/* Live events (docs/api.md "Events"): GET /v1/events as Server-Sent Events,
 * and GET /v1/jobs/{id}?wait=... answered when the job ends.
 *
 * Every node hears the events of the entries it applies (fsm_watch_events)
 * and keeps the last EV_RING of them (their strings in a 2 MiB arena); an
 * event's id is "<raft index>-<position>", the same on every node. A stream
 * starts at the ring's head, or after the Last-Event-ID it is given; when that
 * id is older than what the ring holds (evicted, or before this node's last
 * restore or start) the stream first says events.lost.
 *
 * A stream has one chunk in flight at a time (its pool is cleared when h2o
 * asks for more): a reader that does not read holds at most one chunk plus
 * the socket's buffers, and once the ring has moved past its position it
 * gets events.dropped and the stream ends. The server's write timeout
 * closes a connection whose chunk makes no progress.
 *
 * Waits: a waiter per request, hashed by job id, answered by the job's
 * terminal event (completed, dead, cancelled) or at its deadline. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "http"
#include "common/duration.h"
#include "common/err.h"
#include "common/list.h"
#include "common/log.h"
#include "http/internal.h"

#define EV_RING 8192
#define EV_MAX_STREAMS 256
#define EV_MAX_WAITERS 10000
#define EV_WAIT_MAX_MS 60000
#define EV_TICK_MS 100
#define EV_CHUNK_BYTES (32 << 10)
#define EV_BUCKETS 1024
#define EV_ERR_MAX 512
#define EV_ARENA ((size_t)2 << 20)

/* A leader change and the ring's own notices have no slot. */
#define KIND_LEADER (FSM_EV_MAX + 1)
#define MASK_ALL ((1u << (KIND_LEADER + 1)) - 2)

/* A slot holds an event's numbers; its strings (type or worker name,
 * queue, error) lie contiguous in the arena at @str (a position that only
 * grows; the arena is EV_ARENA bytes around it). Small slots and one
 * arena keep the memory an event touches to a couple of cache lines. */
struct slot
{
    uint64_t index, id, run;
    int64_t at;
    uint64_t str;
    uint32_t pos, attempts;
    uint8_t kind, status;
    uint16_t a_len, queue_len, err_len;
};

struct stream
{
    h2o_generator_t gen; /* First: h2o hands it back. */
    struct list link;    /* In ev->streams while it may send. */
    struct events *ev;
    h2o_req_t *req;
    const struct acl_token *token;
    h2o_mem_pool_t chunk; /* The chunk in flight. */
    uint64_t cursor;      /* Next ring sequence to send. */
    uint64_t sent_at;     /* uv_now() of the last chunk. */
    uint64_t leader, term;
    uint64_t job;
    uint32_t mask;
    bool inflight, lost, leader_pending, done;
    char lost_after[48];
    char queue[FSM_MAX_STR + 1], type[FSM_MAX_STR + 1];
};

struct waiter
{
    struct list by_id, all;
    uint64_t id, deadline;
    struct call *call;
};

struct events
{
    struct http_server *s;
    struct slot *ring;
    char *arena;
    uint64_t arena_head; /* End of the last strings written. */
    uint64_t head;       /* Sequence of the next slot written. */
    uint64_t first;      /* Oldest sequence held. */
    /* Events up to here are not held (evicted, or before the last restore
     * or start). */
    uint64_t horizon_index;
    uint32_t horizon_pos;
    uint64_t restores;
    struct list streams;
    unsigned n_streams;
    struct list waiters, buckets[EV_BUCKETS];
    unsigned n_waiters;
    unsigned long long dropped; /* Streams ended by events.dropped. */
    uv_timer_t *tick;           /* malloc'ed: closed after @ev may be gone. */
    uv_idle_t *idle; /* Sends the streams' news once per loop turn. */
    bool idle_on;
    uint64_t leader, term, leader_checked;
    unsigned keepalive_ms;
};

static bool id_before(uint64_t i1, uint32_t p1, uint64_t i2, uint32_t p2)
{
    return i1 < i2 || (i1 == i2 && p1 < p2);
}

/* ---- Rendering ----------------------------------------------------------- */

void http__event_data(struct sb *b, const struct fsm_event *e)
{
    const char *name = fsm_event_name(e->kind);
    char at[40];

    http__format_time(e->at, at, sizeof at);
    http__sb_printf(b,
                    "{\"event\":\"%s\",\"id\":\"%llu-%u\",\"index\":%llu,"
                    "\"at\":\"%s\"",
                    name, (unsigned long long)e->index, e->pos,
                    (unsigned long long)e->index, at);
    if (e->kind == FSM_EV_WORKER_UP || e->kind == FSM_EV_WORKER_DOWN) {
        http__sb_printf(b, ",\"worker\":{\"id\":\"%016llx\",\"name\":",
                        (unsigned long long)e->id);
        http__sb_json_str(b, e->name);
        http__sb_puts(b, "}");
    } else if (e->kind == FSM_EV_SCHEDULE_FIRED ||
               e->kind == FSM_EV_SCHEDULE_SKIPPED) {
        http__sb_printf(b, ",\"schedule\":{\"id\":\"%016llx\",\"type\":",
                        (unsigned long long)e->id);
        http__sb_json_str(b, e->type);
        http__sb_puts(b, ",\"queue\":");
        http__sb_json_str(b, e->queue);
        http__sb_puts(b, "}");
        if (e->run != 0) {
            http__sb_printf(b, ",\"run\":\"%016llx\"",
                            (unsigned long long)e->run);
        }
        if (e->error.len > 0) {
            http__sb_puts(b, ",\"error\":");
            http__sb_json_str(b, e->error);
        }
    } else {
        const char *st = fsm_status_name(e->status);
        http__sb_printf(b, ",\"job\":{\"id\":\"%016llx\",\"type\":",
                        (unsigned long long)e->id);
        http__sb_json_str(b, e->type);
        http__sb_puts(b, ",\"queue\":");
        http__sb_json_str(b, e->queue);
        http__sb_printf(b, ",\"status\":\"%s\",\"attempts\":%u",
                        st != NULL ? st : "unknown", e->attempts);
        if (e->error.len > 0) {
            http__sb_puts(b, ",\"error\":");
            http__sb_json_str(b, e->error);
        }
        http__sb_puts(b, "}");
    }
    http__sb_puts(b, "}");
}

/* The slot's strings: type (or worker name), queue, error. */
static struct fsm_str slot_a(const struct events *ev, const struct slot *sl)
{
    return (struct fsm_str){ev->arena + sl->str % EV_ARENA, sl->a_len};
}

static struct fsm_str slot_queue(const struct events *ev, const struct slot *sl)
{
    return (struct fsm_str){ev->arena + sl->str % EV_ARENA + sl->a_len,
                            sl->queue_len};
}

static struct fsm_str slot_err(const struct events *ev, const struct slot *sl)
{
    return (struct fsm_str){
        ev->arena + sl->str % EV_ARENA + sl->a_len + sl->queue_len,
        sl->err_len};
}

static bool str_is(const char *want, struct fsm_str s)
{
    return strlen(want) == s.len && memcmp(want, s.p, s.len) == 0;
}

static void render_slot(struct sb *b,
                        const struct events *ev,
                        const struct slot *sl)
{
    bool worker =
        sl->kind == FSM_EV_WORKER_UP || sl->kind == FSM_EV_WORKER_DOWN;
    struct fsm_str a = slot_a(ev, sl);
    struct fsm_event e = {
        .index = sl->index,
        .pos = sl->pos,
        .kind = sl->kind,
        .status = sl->status,
        .attempts = sl->attempts,
        .id = sl->id,
        .run = sl->run,
        .at = sl->at,
        .type = worker ? (struct fsm_str){NULL, 0} : a,
        .name = worker ? a : (struct fsm_str){NULL, 0},
        .queue = slot_queue(ev, sl),
        .error = slot_err(ev, sl),
    };
    http__sb_printf(
        b, "id: %llu-%u\nevent: %s\ndata: ", (unsigned long long)sl->index,
        sl->pos, fsm_event_name(sl->kind));
    http__event_data(b, &e);
    http__sb_puts(b, "\n\n");
}

static bool matches(const struct stream *st, const struct slot *e)
{
    bool jobish =
        e->kind <= FSM_EV_JOB_CANCELLED || e->kind >= FSM_EV_SCHEDULE_FIRED;
    if (!(st->mask & (1u << e->kind))) {
        return false;
    }
    if (st->job != 0 && (!jobish || e->id != st->job)) {
        return false;
    }
    struct fsm_str queue = slot_queue(st->ev, e), type = slot_a(st->ev, e);
    if (st->queue[0] != '\0' && (!jobish || !str_is(st->queue, queue))) {
        return false;
    }
    if (st->type[0] != '\0' && (!jobish || !str_is(st->type, type))) {
        return false;
    }
    if (jobish && st->token != NULL) {
        struct http_args a = {.token = st->token};
        return http__acl_allows(&a, queue, type);
    }
    return true;
}

/* ---- Streams ------------------------------------------------------------- */

static void stream_end(struct stream *st)
{
    if (!st->done) {
        st->done = true;
        list_remove(&st->link);
        st->ev->n_streams--;
    }
}

static void stream_send(struct stream *st, struct sb *b, bool final)
{
    h2o_iovec_t buf = h2o_iovec_init(b->p, b->len);
    st->inflight = true;
    st->sent_at = uv_now(st->ev->s->loop);
    if (final) {
        stream_end(st);
    }
    h2o_send(st->req, &buf, 1,
             final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

/* Send what @st has not seen, one chunk at most. */
static void stream_pump(struct stream *st, bool keepalive)
{
    struct events *ev = st->ev;
    struct sb b;

    if (st->inflight || st->done) {
        return;
    }
    http__sb_init(&b, &st->chunk);
    if (st->cursor < ev->first && !st->lost) {
        http__sb_puts(&b,
                      "event: events.dropped\ndata: {\"event\":\"events."
                      "dropped\",\"reason\":\"the reader fell behind "
                      "by more than the node's event buffer: reconnect "
                      "with Last-Event-ID\"}\n\n");
        ev->dropped++;
        stream_send(st, &b, true);
        return;
    }
    if (st->lost) {
        st->lost = false;
        st->cursor = st->cursor < ev->first ? ev->first : st->cursor;
        http__sb_printf(&b,
                        "event: events.lost\ndata: {\"event\":\"events.lost\","
                        "\"after\":\"%s\"}\n\n",
                        st->lost_after);
    }
    if (st->leader_pending) {
        st->leader_pending = false;
        http__sb_printf(&b,
                        "event: leader.changed\ndata: {\"event\":\"leader."
                        "changed\",\"leader\":%llu,\"term\":%llu}\n\n",
                        (unsigned long long)st->leader,
                        (unsigned long long)st->term);
    }
    while (st->cursor < ev->head && b.len < EV_CHUNK_BYTES) {
        const struct slot *e = &ev->ring[st->cursor % EV_RING];
        st->cursor++;
        if (matches(st, e)) {
            render_slot(&b, ev, e);
        }
    }
    if (b.len == 0 && keepalive) {
        http__sb_puts(&b, ": keepalive\n\n");
    }
    if (b.len > 0) {
        stream_send(st, &b, false);
    } else {
        h2o_mem_clear_pool(&st->chunk);
    }
}

static void stream_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    struct stream *st = (struct stream *)gen;
    (void)req;
    st->inflight = false;
    h2o_mem_clear_pool(&st->chunk);
    stream_pump(st, false);
}

/* Closing: the chunk in flight is written; end the stream. */
static void stream_proceed_final(h2o_generator_t *gen, h2o_req_t *req)
{
    struct stream *st = (struct stream *)gen;
    struct sb b;
    (void)req;
    st->inflight = false;
    h2o_mem_clear_pool(&st->chunk);
    http__sb_init(&b, &st->chunk);
    http__sb_puts(&b, ": closing\n\n");
    stream_send(st, &b, true);
}

static void stream_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    struct stream *st = (struct stream *)gen;
    (void)req;
    stream_end(st);
}

static void stream_dispose(void *p)
{
    struct stream *st = p;
    stream_end(st);
    h2o_mem_clear_pool(&st->chunk);
}

static void pump_all(struct events *ev)
{
    struct list *l, *next;
    for (l = ev->streams.next; l != &ev->streams; l = next) {
        next = l->next; /* A final send unlinks it. */
        stream_pump(CONTAINER_OF(l, struct stream, link), false);
    }
}

static void idle_cb(uv_idle_t *idle)
{
    struct events *ev = idle->data;
    uv_idle_stop(idle);
    ev->idle_on = false;
    pump_all(ev);
}

static void wake_streams(struct events *ev)
{
    if (!ev->idle_on && ev->n_streams > 0 && ev->idle != NULL) {
        ev->idle_on = true;
        uv_idle_start(ev->idle, idle_cb);
    }
}

/* ---- Waiters ------------------------------------------------------------- */

static void waiter_answer(struct events *ev, struct waiter *w)
{
    h2o_req_t *req = http__call_finish(w->call);
    list_remove(&w->by_id);
    list_remove(&w->all);
    ev->n_waiters--;
    if (req != NULL) {
        http__job_answer(ev->s, req, w->id);
    }
    free(w);
}

static void wake_waiters(struct events *ev, uint64_t id)
{
    struct list *head = &ev->buckets[id % EV_BUCKETS], *l, *next;
    for (l = head->next; l != head; l = next) {
        struct waiter *w = CONTAINER_OF(l, struct waiter, by_id);
        next = l->next;
        if (w->id == id) {
            waiter_answer(ev, w);
        }
    }
}

/* ---- The feed ------------------------------------------------------------ */

static void evict_first(struct events *ev)
{
    const struct slot *old = &ev->ring[ev->first % EV_RING];
    ev->horizon_index = old->index;
    ev->horizon_pos = old->pos;
    ev->first++;
}

/* Copy @s (at most @cap bytes) to the arena at *at. */
static uint16_t put_str(struct events *ev,
                        uint64_t *at,
                        struct fsm_str s,
                        size_t cap)
{
    size_t n = s.len < cap ? s.len : cap;
    if (n > 0) {
        memcpy(ev->arena + *at % EV_ARENA, s.p, n);
    }
    *at += n;
    return (uint16_t)n;
}

static void on_event(void *data, const struct fsm_event *e)
{
    struct events *ev = data;
    uint64_t restores = fsm_restores(cluster_fsm(ev->s->cluster));
    struct fsm_str a = e->name.len > 0 ? e->name : e->type;
    size_t n = (a.len < FSM_MAX_STR ? a.len : FSM_MAX_STR) +
               (e->queue.len < FSM_MAX_STR ? e->queue.len : FSM_MAX_STR) +
               (e->error.len < EV_ERR_MAX ? e->error.len : EV_ERR_MAX);

    if (restores != ev->restores) { /* What came before is not held. */
        ev->restores = restores;
        ev->first = ev->head;
        ev->horizon_index = e->index - 1;
        ev->horizon_pos = UINT32_MAX;
    }
    /* The strings lie contiguous: skip the arena's tail if they do not
     * fit before its end; then drop the slots whose strings get
     * overwritten, and the oldest when the ring is full. */
    uint64_t at = ev->arena_head;
    if (at % EV_ARENA + n > EV_ARENA) {
        at += EV_ARENA - at % EV_ARENA;
    }
    while (ev->first < ev->head &&
           ev->ring[ev->first % EV_RING].str + EV_ARENA < at + n) {
        evict_first(ev);
    }
    if (ev->head - ev->first == EV_RING) {
        evict_first(ev);
    }
    struct slot *sl = &ev->ring[ev->head % EV_RING];
    sl->index = e->index;
    sl->pos = e->pos;
    sl->kind = e->kind;
    sl->status = e->status;
    sl->attempts = e->attempts;
    sl->id = e->id;
    sl->run = e->run;
    sl->at = e->at;
    sl->str = at;
    sl->a_len = put_str(ev, &at, a, FSM_MAX_STR);
    sl->queue_len = put_str(ev, &at, e->queue, FSM_MAX_STR);
    sl->err_len = put_str(ev, &at, e->error, EV_ERR_MAX);
    ev->arena_head = at;
    ev->head++;
    if (e->kind == FSM_EV_JOB_COMPLETED || e->kind == FSM_EV_JOB_DEAD ||
        e->kind == FSM_EV_JOB_CANCELLED) {
        wake_waiters(ev, e->id);
    }
    wake_streams(ev);
}

static void check_leader(struct events *ev)
{
    uint64_t leader = cluster_leader(ev->s->cluster, NULL, 0);
    uint64_t term = cluster_term(ev->s->cluster);
    struct list *l;

    if (leader == ev->leader && term == ev->term) {
        return;
    }
    ev->leader = leader;
    ev->term = term;
    if (leader == 0) {
        return; /* An election: said once its winner is known. */
    }
    LIST_FOREACH (l, &ev->streams) {
        struct stream *st = CONTAINER_OF(l, struct stream, link);
        if (st->mask & (1u << KIND_LEADER)) {
            st->leader = leader;
            st->term = term;
            st->leader_pending = true;
        }
    }
    wake_streams(ev);
}

static void tick_cb(uv_timer_t *t)
{
    struct events *ev = t->data;
    uint64_t now = uv_now(ev->s->loop);
    struct list *l, *next;

    for (l = ev->waiters.next; l != &ev->waiters; l = next) {
        struct waiter *w = CONTAINER_OF(l, struct waiter, all);
        next = l->next;
        if (w->deadline <= now) {
            waiter_answer(ev, w);
        }
    }
    if (now - ev->leader_checked >= 500) {
        ev->leader_checked = now;
        check_leader(ev);
    }
    for (l = ev->streams.next; l != &ev->streams; l = next) {
        struct stream *st = CONTAINER_OF(l, struct stream, link);
        next = l->next;
        if (!st->inflight && now - st->sent_at >= ev->keepalive_ms) {
            stream_pump(st, true);
        }
    }
}

/* ---- Requests ------------------------------------------------------------ */

int http__event_mask(const char *t, uint32_t *mask)
{
    size_t n = strlen(t);
    *mask = 0;
    for (int k = 1; k <= KIND_LEADER; k++) {
        const char *name =
            k == KIND_LEADER ? "leader.changed" : fsm_event_name(k);
        bool glob = n >= 2 && strcmp(t + n - 2, ".*") == 0 &&
                    strncmp(name, t, n - 1) == 0;
        if (glob || strcmp(name, t) == 0) {
            *mask |= 1u << k;
        }
    }
    return *mask != 0 ? 0 : -1;
}

/* "job.*,worker.up" into a mask; false on an unknown name. */
static bool parse_kinds(const char *list, uint32_t *mask)
{
    char copy[512], *save = NULL;
    snprintf(copy, sizeof copy, "%s", list);
    *mask = 0;
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        uint32_t m;
        if (http__event_mask(t, &m) != 0) {
            return false;
        }
        *mask |= m;
    }
    return *mask != 0;
}

/* "<index>-<pos>" */
static bool parse_event_id(const char *s, uint64_t *index, uint32_t *pos)
{
    unsigned long long i;
    unsigned p;
    char tail;
    if (sscanf(s, "%llu-%u%c", &i, &p, &tail) != 2) {
        return false;
    }
    *index = i;
    *pos = p;
    return true;
}

/* The first sequence held whose id is after (@index, @pos). */
static uint64_t seek(const struct events *ev, uint64_t index, uint32_t pos)
{
    uint64_t lo = ev->first, hi = ev->head;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        const struct slot *e = &ev->ring[mid % EV_RING];
        if (id_before(index, pos, e->index, e->pos)) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return lo;
}

static bool stream_filters(h2o_req_t *req, struct stream *st)
{
    char buf[512];
    if (http__query(req, "queue", st->queue, sizeof st->queue) == NULL) {
        st->queue[0] = '\0';
    }
    if (http__query(req, "type", st->type, sizeof st->type) == NULL) {
        st->type[0] = '\0';
    }
    st->mask = MASK_ALL;
    if (http__query(req, "events", buf, sizeof buf) != NULL &&
        !parse_kinds(buf, &st->mask)) {
        http__send_err(req, ERR_INVALID, "events",
                       "a comma-separated list of event names such as "
                       "job.completed or job.* (docs/api.md)");
        return false;
    }
    st->job = 0;
    if (http__query(req, "job", buf, sizeof buf) != NULL &&
        http__parse_id(buf, strlen(buf), &st->job) != 0) {
        http__send_err(req, ERR_INVALID, "job", "a job id (16 hex digits)");
        return false;
    }
    return true;
}

/* Where a stream starts: after Last-Event-ID (header or ?last_event_id),
 * else at the head. False once answered 400. */
static bool stream_start_at(h2o_req_t *req, struct stream *st)
{
    struct events *ev = st->ev;
    char buf[48];
    ssize_t hi =
        h2o_find_header_by_str(&req->headers, H2O_STRLIT("last-event-id"), -1);
    const char *last = NULL;
    if (hi >= 0) {
        h2o_iovec_t v = req->headers.entries[hi].value;
        snprintf(buf, sizeof buf, "%.*s", (int)v.len, v.base);
        last = buf;
    } else {
        last = http__query(req, "last_event_id", buf, sizeof buf);
    }
    st->cursor = ev->head;
    if (last == NULL || last[0] == '\0') {
        return true;
    }
    uint64_t index;
    uint32_t pos;
    if (!parse_event_id(last, &index, &pos)) {
        http__send_err(req, ERR_INVALID, "Last-Event-ID",
                       "an event id such as 1234-0");
        return false;
    }
    st->cursor = seek(ev, index, pos);
    if (id_before(index, pos, ev->horizon_index, ev->horizon_pos)) {
        st->lost = true;
        snprintf(st->lost_after, sizeof st->lost_after, "%llu-%u",
                 (unsigned long long)index, pos);
    }
    return true;
}

void http__events_stream(struct http_server *s,
                         h2o_req_t *req,
                         const struct http_args *a)
{
    struct events *ev = s->events;
    struct stream tmp, *st;

    memset(&tmp, 0, sizeof tmp);
    tmp.ev = ev;
    if (!stream_filters(req, &tmp) || !stream_start_at(req, &tmp)) {
        return;
    }
    if (ev->n_streams >= EV_MAX_STREAMS) {
        http__send_err(req, ERR_UNAVAILABLE, NULL,
                       "too many event streams on this node (%d): retry "
                       "later or on another node");
        return;
    }
    st = h2o_mem_alloc_shared(&req->pool, sizeof *st, stream_dispose);
    *st = tmp;
    st->gen.proceed = stream_proceed;
    st->gen.stop = stream_stop;
    st->req = req;
    st->token = a->token;
    st->sent_at = uv_now(s->loop);
    h2o_mem_init_pool(&st->chunk);
    list_push(&ev->streams, &st->link);
    ev->n_streams++;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
    h2o_start_response(req, &st->gen);
    /* The headers and the retry hint go out at once. */
    struct sb b;
    http__sb_init(&b, &st->chunk);
    http__sb_puts(&b, "retry: 1000\n\n");
    stream_send(st, &b, false);
}

/* "30s", "500ms", "1m", or plain seconds ("10"). */
static int parse_wait(const char *s, int64_t *ms)
{
    size_t digits = strspn(s, "0123456789");
    if (digits > 0 && digits <= 6 && s[digits] == '\0') {
        *ms = strtoll(s, NULL, 10) * 1000;
        return *ms <= EV_WAIT_MAX_MS ? 0 : -1;
    }
    return duration_parse_ms(s, EV_WAIT_MAX_MS, ms);
}

int http__job_wait(struct http_server *s, h2o_req_t *req, uint64_t id)
{
    struct events *ev = s->events;
    char buf[32];
    int64_t ms;

    if (http__query(req, "wait", buf, sizeof buf) == NULL) {
        return 0;
    }
    if (parse_wait(buf, &ms) != 0) {
        http__send_err(req, ERR_INVALID, "wait",
                       "a duration of at most 60s, such as 30s, 500ms or 10");
        return -1;
    }
    struct fsm_reader *rd;
    struct fsm_job job;
    int rv = fsm_read_begin(cluster_fsm(s->cluster), &rd);
    if (rv == 0) {
        rv = fsm_get_job(rd, id, &job);
        bool final = rv == 0 && fsm_status_is_final(job.status);
        fsm_read_end(rd);
        if (final || ms == 0) {
            return 0; /* Answered now, as without a wait. */
        }
    }
    /* A job this node has not applied yet (written through the leader a
     * moment ago: its id holds the index of its entry) is waited for. */
    bool coming = rv == ERR_NOTFOUND &&
                  (id >> FSM_ID_SHIFT) > cluster_applied_index(s->cluster);
    if (rv != 0 && !coming) {
        return 0; /* The plain answer says why (404, ...). */
    }
    if (ev->n_waiters >= EV_MAX_WAITERS) {
        http__send_err(req, ERR_UNAVAILABLE, "wait",
                       "too many waiting requests on this node: retry later "
                       "or poll");
        return -1;
    }
    struct waiter *w = malloc(sizeof *w);
    if (w == NULL || (w->call = http__call_new(s, req)) == NULL) {
        free(w);
        http__send_err(req, ERR_NOMEM, NULL, NULL);
        return -1;
    }
    w->id = id;
    w->deadline = uv_now(s->loop) + (uint64_t)ms;
    list_push(&ev->buckets[id % EV_BUCKETS], &w->by_id);
    list_push(&ev->waiters, &w->all);
    ev->n_waiters++;
    return 1;
}

/* ---- Life ---------------------------------------------------------------- */

int http__events_init(struct http_server *s)
{
    struct events *ev = calloc(1, sizeof *ev);
    if (ev == NULL) {
        return ERR_NOMEM;
    }
    ev->ring = calloc(EV_RING, sizeof *ev->ring);
    ev->arena = malloc(EV_ARENA);
    ev->tick = malloc(sizeof *ev->tick);
    ev->idle = malloc(sizeof *ev->idle);
    if (ev->ring == NULL || ev->arena == NULL || ev->tick == NULL ||
        ev->idle == NULL) {
        free(ev->ring);
        free(ev->arena);
        free(ev->tick);
        free(ev->idle);
        free(ev);
        return ERR_NOMEM;
    }
    ev->s = s;
    ev->keepalive_ms = HTTP_EVENTS_KEEPALIVE_MS;
    list_init(&ev->streams);
    list_init(&ev->waiters);
    for (int i = 0; i < EV_BUCKETS; i++) {
        list_init(&ev->buckets[i]);
    }
    struct fsm *f = cluster_fsm(s->cluster);
    ev->restores = fsm_restores(f);
    ev->horizon_index = fsm_applied_index(f);
    ev->horizon_pos = UINT32_MAX;
    uv_timer_init(s->loop, ev->tick);
    ev->tick->data = ev;
    uv_timer_start(ev->tick, tick_cb, EV_TICK_MS, EV_TICK_MS);
    uv_unref((uv_handle_t *)ev->tick);
    uv_idle_init(s->loop, ev->idle);
    ev->idle->data = ev;
    s->events = ev;
    fsm_watch_events(f, on_event, ev);
    return 0;
}

static void handle_free_cb(uv_handle_t *h)
{
    free(h);
}

/* Closing: waiters get their answer now, streams their last chunk (at
 * once, or when the one in flight is written). */
void http__events_close(struct http_server *s)
{
    struct events *ev = s->events;
    struct list *l, *next;

    fsm_watch_events(cluster_fsm(s->cluster), NULL, NULL);
    while (!list_empty(&ev->waiters)) {
        waiter_answer(ev, CONTAINER_OF(ev->waiters.next, struct waiter, all));
    }
    for (l = ev->streams.next; l != &ev->streams; l = next) {
        struct stream *st = CONTAINER_OF(l, struct stream, link);
        next = l->next;
        if (!st->inflight) {
            struct sb b;
            http__sb_init(&b, &st->chunk);
            http__sb_puts(&b, ": closing\n\n");
            stream_send(st, &b, true);
        } else {
            st->gen.proceed = stream_proceed_final;
        }
    }
    uv_close((uv_handle_t *)ev->tick, handle_free_cb);
    uv_close((uv_handle_t *)ev->idle, handle_free_cb);
    ev->tick = NULL;
    ev->idle = NULL;
}

void http__events_free(struct http_server *s)
{
    if (s->events != NULL) {
        free(s->events->ring);
        free(s->events->arena);
        free(s->events);
    }
}

void http__events_stats(struct http_server *s, unsigned long long out[3])
{
    out[0] = s->events->n_streams;
    out[1] = s->events->dropped;
    out[2] = s->events->n_waiters;
}
