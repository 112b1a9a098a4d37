/* The leader sends webhook deliveries (docs/api.md "Webhooks").
 *
 * Every WH_TICK_MS, while this node leads: report the outcomes gathered
 * since the last tick as one DELIVERY command, then for each webhook not
 * backing off and with room (WH_INFLIGHT), POST its due deliveries, oldest
 * first, each signed with HMAC-SHA256 of the body with the webhook's
 * secret. A delivery stays "in flight" here from its send until its
 * outcome is committed, so it is never sent twice by one leader; a new
 * leader sends what the replicated state still holds (at least once:
 * receivers deduplicate by X-Rota-Delivery). Sending is asynchronous
 * (cluster_http_request on the loop, WH_TIMEOUT_MS each), so a slow or
 * dead receiver holds WH_INFLIGHT requests at most and never the loop.
 *
 * A failed try sets the delivery's next attempt (1 s doubling to 10 min)
 * and backs the whole webhook off (1 s doubling to 1 min) so a receiver
 * that is down costs one probe per backoff, not one per delivery. After
 * WH_EXPIRE_MS since the event a delivery that keeps failing expires. */

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "webhook"
#include "common/clock.h"
#include "common/err.h"
#include "common/list.h"
#include "common/log.h"
#include "http/internal.h"

#define WH_TICK_MS 100
#define WH_INFLIGHT 8
#define WH_TIMEOUT_MS 10000
#define WH_SCAN 256
#define WH_EXPIRE_MS (24LL * 3600 * 1000)
#define WH_RETRY_MAX_MS (10LL * 60 * 1000)
#define WH_PAUSE_MAX_MS 60000
#define WH_ERR 200

struct sender;

/* One delivery from its send until its outcome commits. */
struct sending
{
    struct list link;  /* In ws->inflight. */
    struct sender *ws; /* NULL once the sender closed. */
    uint64_t hook, key;
    uint32_t tries;
    int64_t at; /* The event's time. */
    bool answered;
    /* The outcome, reported at the next tick. */
    bool ok;
    int status;
    char err[WH_ERR];
};

struct hook_state
{
    uint64_t id;
    uint64_t paused_until; /* uv_now() ms. */
    unsigned fails, inflight;
};

/* A DELIVERY command waiting for its commit: what it reported. */
struct report
{
    struct list link; /* In ws->reports. */
    struct sender *ws;
    unsigned n;
    struct sending *items[];
};

struct sender
{
    struct http_server *s;
    uv_timer_t *timer;
    struct list inflight, reports;
    struct hook_state hooks[FSM_MAX_WEBHOOKS];
    unsigned n_hooks;
    unsigned long long sent, ok, failed, expired;
};

static struct hook_state *hook_state(struct sender *ws, uint64_t id)
{
    for (unsigned i = 0; i < ws->n_hooks; i++) {
        if (ws->hooks[i].id == id) {
            return &ws->hooks[i];
        }
    }
    if (ws->n_hooks == FSM_MAX_WEBHOOKS) {
        ws->n_hooks = 0; /* Deleted ones linger: start over. */
    }
    struct hook_state *h = &ws->hooks[ws->n_hooks++];
    memset(h, 0, sizeof *h);
    h->id = id;
    return h;
}

static struct sending *find(struct sender *ws, uint64_t hook, uint64_t key)
{
    struct list *l;
    LIST_FOREACH (l, &ws->inflight) {
        struct sending *x = CONTAINER_OF(l, struct sending, link);
        if (x->hook == hook && x->key == key) {
            return x;
        }
    }
    return NULL;
}

/* ---- Outcomes ------------------------------------------------------------ */

static void report_done(void *data, int status, const struct fsm_result *res)
{
    struct report *r = data;
    (void)res;
    if (r->ws != NULL) {
        list_remove(&r->link);
        if (status != 0) {
            LOG(LOG_WARN, "delivery outcomes not recorded",
                "n=%u status=%d reason=\"they will be sent again\"", r->n,
                status);
        }
    }
    for (unsigned i = 0; i < r->n; i++) {
        if (r->items[i]->ws != NULL) {
            list_remove(&r->items[i]->link);
        }
        free(r->items[i]);
    }
    free(r);
}

static int64_t retry_delay(uint32_t tries)
{
    int64_t d = 1000;
    for (uint32_t i = 0; i < tries && d < WH_RETRY_MAX_MS; i++) {
        d *= 2;
    }
    return d < WH_RETRY_MAX_MS ? d : WH_RETRY_MAX_MS;
}

/* One DELIVERY command with every answered delivery. */
static void report(struct sender *ws, int64_t now)
{
    struct list *l;
    unsigned n = 0;
    LIST_FOREACH (l, &ws->inflight) {
        n += CONTAINER_OF(l, struct sending, link)->answered;
    }
    if (n == 0) {
        return;
    }
    struct report *r = malloc(sizeof *r + n * sizeof r->items[0]);
    struct fsm_item *items = calloc(n, sizeof *items);
    if (r == NULL || items == NULL) {
        free(r);
        free(items);
        return;
    }
    r->ws = ws;
    r->n = 0;
    for (l = ws->inflight.next; l != &ws->inflight;) {
        struct sending *x = CONTAINER_OF(l, struct sending, link);
        l = l->next;
        if (!x->answered) {
            continue;
        }
        struct fsm_item *it = &items[r->n];
        it->job_id = x->hook;
        it->token = x->key;
        it->ok = x->ok;
        it->exit_code = x->status;
        if (!x->ok) {
            it->retry_at = now + retry_delay(x->tries);
            it->error = (struct fsm_str){x->err, (uint32_t)strlen(x->err)};
            if (now - x->at >= WH_EXPIRE_MS) {
                it->action = FSM_DELIVERY_EXPIRE;
                ws->expired++;
                LOG(LOG_WARN, "delivery expired",
                    "webhook=%016llx event=%llu-%llu tries=%u error=\"%s\"",
                    (unsigned long long)x->hook,
                    (unsigned long long)(x->key >> 20),
                    (unsigned long long)(x->key & 0xfffff), x->tries + 1,
                    x->err);
            }
        }
        x->answered = false; /* Reported: waits for the commit. */
        r->items[r->n++] = x;
    }
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_CMD_DELIVERY;
    cmd.items = items;
    cmd.n_items = r->n;
    list_push(&ws->reports, &r->link);
    if (cluster_submit_cmd(ws->s->cluster, &cmd, report_done, r) != 0) {
        report_done(r, ERR_NOTLEADER, NULL);
    }
    free(items);
}

/* ---- Sending ------------------------------------------------------------- */

static void answered_cb(void *data, const struct cluster_http_response *res)
{
    struct sending *x = data;
    struct sender *ws = x->ws;
    if (ws == NULL) {
        free(x); /* The sender closed. */
        return;
    }
    struct hook_state *h = hook_state(ws, x->hook);
    h->inflight -= h->inflight > 0 ? 1 : 0;
    x->answered = true;
    x->status = res->status;
    x->ok = res->status >= 200 && res->status < 300;
    if (x->ok) {
        ws->ok++;
        h->fails = 0;
        h->paused_until = 0;
        return;
    }
    ws->failed++;
    if (res->status != 0) {
        snprintf(x->err, sizeof x->err, "HTTP %d", res->status);
    } else {
        snprintf(x->err, sizeof x->err, "%s",
                 res->err == ERR_TIMEOUT ? "no answer within 10 s"
                                         : "cannot connect");
    }
    uint64_t pause = 1000;
    for (unsigned i = 0; i < h->fails && pause < WH_PAUSE_MAX_MS; i++) {
        pause *= 2;
    }
    h->fails++;
    h->paused_until = uv_now(ws->s->loop) +
                      (pause < WH_PAUSE_MAX_MS ? pause : WH_PAUSE_MAX_MS);
}

static void send_one(struct sender *ws,
                     const struct fsm_webhook *w,
                     const struct fsm_delivery *d,
                     struct hook_state *h)
{
    h2o_mem_pool_t pool;
    struct sb b;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    char sig[2 * EVP_MAX_MD_SIZE + 32], delivery[80], event[64];
    char url[FSM_WEBHOOK_URL_MAX + 1];
    struct sending *x = calloc(1, sizeof *x);

    if (x == NULL) {
        return;
    }
    h2o_mem_init_pool(&pool);
    http__sb_init(&b, &pool);
    http__event_data(&b, &d->ev);
    HMAC(EVP_sha256(), w->secret.p, (int)w->secret.len,
         (const unsigned char *)b.p, b.len, mac, &mac_len);
    int n = snprintf(sig, sizeof sig, "X-Rota-Signature: sha256=");
    for (unsigned i = 0; i < mac_len; i++) {
        n += snprintf(sig + n, sizeof sig - (size_t)n, "%02x", mac[i]);
    }
    snprintf(delivery, sizeof delivery, "X-Rota-Delivery: %016llx-%llu-%u",
             (unsigned long long)w->id, (unsigned long long)d->ev.index,
             d->ev.pos);
    snprintf(event, sizeof event, "X-Rota-Event: %s",
             fsm_event_name(d->ev.kind));
    snprintf(url, sizeof url, "%.*s", (int)w->url.len, w->url.p);
    const char *headers[] = {"Content-Type: application/json",
                             "User-Agent: rota-webhook",
                             event,
                             delivery,
                             sig,
                             NULL};
    struct cluster_http_req req = {"POST", url,           headers, b.p,
                                   b.len,  WH_TIMEOUT_MS, true};
    x->ws = ws;
    x->hook = w->id;
    x->key = d->key;
    x->tries = d->tries;
    x->at = d->ev.at;
    list_push(&ws->inflight, &x->link);
    h->inflight++;
    ws->sent++;
    if (cluster_http_request(ws->s->cluster, &req, answered_cb, x) != 0) {
        struct cluster_http_response res;
        memset(&res, 0, sizeof res);
        res.err = ERR_UNAVAILABLE;
        answered_cb(x, &res);
    }
    h2o_mem_clear_pool(&pool);
}

struct scan
{
    struct sender *ws;
    const struct fsm_webhook *w;
    struct hook_state *h;
    int64_t now;
    unsigned seen;
    struct fsm_reader *rd;
};

static int due_cb(void *data, const struct fsm_delivery *d)
{
    struct scan *sc = data;
    if (++sc->seen > WH_SCAN || sc->h->inflight >= WH_INFLIGHT ||
        uv_now(sc->ws->s->loop) < sc->h->paused_until) {
        return 1;
    }
    if (d->next_at <= sc->now && find(sc->ws, d->webhook, d->key) == NULL) {
        send_one(sc->ws, sc->w, d, sc->h);
    }
    return 0;
}

static int hook_cb(void *data, const struct fsm_webhook *w)
{
    struct scan *sc = data;
    sc->w = w;
    sc->h = hook_state(sc->ws, w->id);
    sc->seen = 0;
    if (w->pending > 0 && sc->h->inflight < WH_INFLIGHT &&
        uv_now(sc->ws->s->loop) >= sc->h->paused_until) {
        fsm_deliveries(sc->rd, w->id, 0, due_cb, sc);
    }
    return 0;
}

static void tick_cb(uv_timer_t *t)
{
    struct sender *ws = t->data;
    struct fsm_reader *rd;
    int64_t now = clock_now_ms();

    if (!cluster_is_leader(ws->s->cluster)) {
        ws->n_hooks = 0; /* A later term starts fresh. */
        return;
    }
    report(ws, now);
    if (fsm_read_begin(cluster_fsm(ws->s->cluster), &rd) != 0) {
        return;
    }
    struct scan sc = {ws, NULL, NULL, now, 0, rd};
    fsm_webhooks(rd, hook_cb, &sc);
    fsm_read_end(rd);
}

/* ---- Life ---------------------------------------------------------------- */

int http__webhooks_init(struct http_server *s)
{
    struct sender *ws = calloc(1, sizeof *ws);
    if (ws == NULL || (ws->timer = malloc(sizeof *ws->timer)) == NULL) {
        free(ws);
        return ERR_NOMEM;
    }
    ws->s = s;
    list_init(&ws->inflight);
    list_init(&ws->reports);
    uv_timer_init(s->loop, ws->timer);
    ws->timer->data = ws;
    uv_timer_start(ws->timer, tick_cb, WH_TICK_MS, WH_TICK_MS);
    uv_unref((uv_handle_t *)ws->timer);
    s->webhooks = ws;
    return 0;
}

static void timer_free_cb(uv_handle_t *h)
{
    free(h);
}

/* Requests and reports still out free themselves when they end. */
void http__webhooks_close(struct http_server *s)
{
    struct sender *ws = s->webhooks;
    while (!list_empty(&ws->inflight)) {
        struct sending *x =
            CONTAINER_OF(ws->inflight.next, struct sending, link);
        list_remove(&x->link);
        x->ws = NULL;
        if (x->answered) {
            free(x); /* Answered, not reported: nobody holds it. */
        }
    }
    while (!list_empty(&ws->reports)) {
        struct report *r = CONTAINER_OF(ws->reports.next, struct report, link);
        list_remove(&r->link);
        r->ws = NULL;
    }
    uv_close((uv_handle_t *)ws->timer, timer_free_cb);
    ws->timer = NULL;
}

void http__webhooks_free(struct http_server *s)
{
    free(s->webhooks);
}

void http__webhooks_stats(struct http_server *s, unsigned long long out[4])
{
    struct sender *ws = s->webhooks;
    out[0] = ws->sent;
    out[1] = ws->ok;
    out[2] = ws->failed;
    out[3] = ws->expired;
}
