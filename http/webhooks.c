/* Webhooks (docs/api.md "Webhooks"): the admin routes. The records and
 * their deliveries live in the replicated state (fsm/webhooks.c); the
 * leader sends them (http/webhook_send.c). */

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "http/internal.h"

#define SECRET_BYTES 32
#define LIST_DEFAULT 100
#define LIST_MAX 1000

/* The record as JSON; the secret itself never, once made. */
static void hook_write(struct sb *b, const struct fsm_webhook *w)
{
    char at[40];
    bool first = true;

    http__format_time(w->created_at, at, sizeof at);
    http__sb_printf(b,
                    "{\"id\":\"%016llx\",\"url\":", (unsigned long long)w->id);
    http__sb_json_str(b, w->url);
    http__sb_puts(b, ",\"events\":[");
    for (int k = 1; k <= FSM_EV_MAX; k++) {
        if (w->events & (1u << k)) {
            http__sb_printf(b, "%s\"%s\"", first ? "" : ",", fsm_event_name(k));
            first = false;
        }
    }
    http__sb_puts(b, "],\"queues\":[");
    const char *p = w->queues.p, *end = w->queues.p + w->queues.len;
    first = true;
    while (p != NULL && p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        size_t n = (size_t)((c != NULL ? c : end) - p);
        http__sb_puts(b, first ? "" : ",");
        http__sb_json_str(b, (struct fsm_str){p, (uint32_t)n});
        first = false;
        p += n + 1;
    }
    http__sb_printf(b,
                    "],\"secret_set\":%s,\"created_at\":\"%s\",\"pending\":%u,"
                    "\"delivered\":%llu,\"expired\":%llu,\"dropped\":%llu}",
                    w->secret.len > 0 ? "true" : "false", at, w->pending,
                    (unsigned long long)w->delivered,
                    (unsigned long long)w->expired,
                    (unsigned long long)w->dropped);
}

static bool parse_events(h2o_req_t *req, json_t *o, uint32_t *mask)
{
    json_t *ev = json_object_get(o, "events"), *v;
    size_t i;
    *mask = 0;
    if (!json_is_array(ev) || json_array_size(ev) == 0) {
        http__send_error(req, 400, "invalid_argument", "events",
                         "a non-empty array of event names such as "
                         "\"job.dead\" or \"job.*\"");
        return false;
    }
    json_array_foreach(ev, i, v)
    {
        uint32_t m;
        const char *name = json_string_value(v);
        if (name == NULL || http__event_mask(name, &m) != 0 ||
            (m & ~((2u << FSM_EV_MAX) - 2)) != 0) {
            http__send_error(req, 400, "invalid_argument", "events",
                             "events[%zu]: not an event a webhook can "
                             "receive (docs/api.md)",
                             i);
            return false;
        }
        *mask |= m;
    }
    return true;
}

static void created_cb(void *data, int status, const struct fsm_result *res)
{
    struct call *call = data;
    struct http_server *s = call->s;
    const char *secret = (const char *)(call + 1);
    h2o_req_t *req = http__call_finish(call);
    struct fsm_reader *rd;
    struct fsm_webhook w;

    if (req == NULL || http__failed(req, status, res)) {
        return;
    }
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        return;
    }
    if (fsm_webhook_get(rd, res->ids[0], &w) != 0) {
        fsm_read_end(rd);
        http__send_err(req, ERR_NOTFOUND, NULL, "the webhook is gone");
        return;
    }
    struct sb b;
    http__sb_init(&b, &req->pool);
    hook_write(&b, &w);
    fsm_read_end(rd);
    if (secret[0] != '\0') { /* Generated: shown this once. */
        b.len--;
        http__sb_puts(&b, ",\"secret\":");
        http__sb_json_str(&b,
                          (struct fsm_str){secret, (uint32_t)strlen(secret)});
        http__sb_puts(&b, "}");
    }
    http__send_sb(req, 201, &b, 0);
}

void http__webhooks_create(struct http_server *s,
                           h2o_req_t *req,
                           const struct http_args *a)
{
    json_t *o = http__body_object(req, true);
    char queues[1100];
    struct fsm_cmd cmd;
    (void)a;

    if (o == NULL) {
        return;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_CMD_WEBHOOK_SET;
    const char *url = json_string_value(json_object_get(o, "url"));
    json_t *sec = json_object_get(o, "secret");
    if (url == NULL) {
        http__send_error(req, 400, "invalid_argument", "url",
                         "url: an http:// or https:// URL is required");
    } else if (sec != NULL && !json_is_null(sec) &&
               (!json_is_string(sec) || json_string_length(sec) < 16)) {
        http__send_error(req, 400, "invalid_argument", "secret",
                         "secret: a string of at least 16 bytes (or none: "
                         "one is made)");
    } else if (parse_events(req, o, &cmd.webhook.events) &&
               http__parse_names(req, o, "queues", true, queues,
                                 sizeof queues)) {
        struct call *call = http__call_new_extra(s, req, 2 * SECRET_BYTES + 1);
        char *made = (char *)(call + 1);
        const char *secret = json_string_value(sec);
        if (secret == NULL) {
            unsigned char raw[SECRET_BYTES];
            if (RAND_bytes(raw, sizeof raw) == 1) {
                for (int i = 0; i < SECRET_BYTES; i++) {
                    snprintf(made + 2 * i, 3, "%02x", raw[i]);
                }
            }
            secret = made;
        }
        cmd.webhook.url = (struct fsm_str){url, (uint32_t)strlen(url)};
        cmd.webhook.queues = (struct fsm_str){queues, (uint32_t)strlen(queues)};
        cmd.webhook.secret = (struct fsm_str){secret, (uint32_t)strlen(secret)};
        int rv = secret[0] == '\0'
                     ? ERR_UNAVAILABLE
                     : http__submit_cmd(s, &cmd, created_cb, call);
        if (rv != 0) {
            http__call_unref(call);
            http__send_err(req, rv, NULL, NULL);
        }
    }
    json_decref(o);
}

static int list_cb(void *data, const struct fsm_webhook *w)
{
    struct sb *b = data;
    if (b->p[b->len - 1] != '[') {
        http__sb_puts(b, ",");
    }
    hook_write(b, w);
    return 0;
}

void http__webhooks_list(struct http_server *s,
                         h2o_req_t *req,
                         const struct http_args *a)
{
    struct fsm_reader *rd;
    struct sb b;
    (void)a;
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        return;
    }
    http__sb_init(&b, &req->pool);
    http__sb_puts(&b, "{\"webhooks\":[");
    fsm_webhooks(rd, list_cb, &b);
    fsm_read_end(rd);
    http__sb_puts(&b, "]}");
    http__send_sb(req, 200, &b, 0);
}

/* A read of webhook @id into *w (answers 404/500 itself: NULL then). */
static struct fsm_reader *read_hook(struct http_server *s,
                                    h2o_req_t *req,
                                    uint64_t id,
                                    struct fsm_webhook *w)
{
    struct fsm_reader *rd;
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        return NULL;
    }
    if (fsm_webhook_get(rd, id, w) != 0) {
        fsm_read_end(rd);
        http__send_error(req, 404, "not_found", "id", "no webhook %016llx",
                         (unsigned long long)id);
        return NULL;
    }
    return rd;
}

void http__webhook_get(struct http_server *s,
                       h2o_req_t *req,
                       const struct http_args *a)
{
    struct fsm_reader *rd;
    struct fsm_webhook w;
    uint64_t id;
    if (!http__id_or_404(req, a->id.base, a->id.len, &id) ||
        (rd = read_hook(s, req, id, &w)) == NULL) {
        return;
    }
    struct sb b;
    http__sb_init(&b, &req->pool);
    hook_write(&b, &w);
    fsm_read_end(rd);
    http__send_sb(req, 200, &b, 0);
}

static void deleted_cb(void *data, int status, const struct fsm_result *res)
{
    struct call *call = data;
    h2o_req_t *req = http__call_finish(call);
    if (req == NULL || http__failed(req, status, res)) {
        return;
    }
    http__send_json(req, 200, json_pack("{s:b}", "deleted", 1), 0);
}

void http__webhook_delete(struct http_server *s,
                          h2o_req_t *req,
                          const struct http_args *a)
{
    struct fsm_cmd cmd;
    uint64_t id;
    if (!http__id_or_404(req, a->id.base, a->id.len, &id)) {
        return;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_CMD_WEBHOOK_DEL;
    cmd.id = id;
    struct call *call = http__call_new(s, req);
    int rv = http__submit_cmd(s, &cmd, deleted_cb, call);
    if (rv != 0) {
        http__call_unref(call);
        http__send_err(req, rv, NULL, NULL);
    }
}

struct dl_ctx
{
    struct sb *b;
    unsigned n, limit;
    uint64_t last;
};

static int delivery_cb(void *data, const struct fsm_delivery *d)
{
    struct dl_ctx *c = data;
    char t[40];
    if (c->n == c->limit) {
        return 1;
    }
    http__sb_printf(c->b, "%s{\"delivery\":\"%016llx-%llu-%u\",\"tries\":%u",
                    c->n > 0 ? "," : "", (unsigned long long)d->webhook,
                    (unsigned long long)d->ev.index, d->ev.pos, d->tries);
    if (d->next_at != 0) {
        http__format_time(d->next_at, t, sizeof t);
        http__sb_printf(c->b, ",\"next_at\":\"%s\"", t);
    }
    if (d->last_at != 0) {
        http__format_time(d->last_at, t, sizeof t);
        http__sb_printf(c->b, ",\"last_at\":\"%s\",\"last_status\":%d", t,
                        d->last_status);
        http__sb_puts(c->b, ",\"last_error\":");
        http__sb_json_str(c->b, d->last_error);
    }
    http__sb_puts(c->b, ",\"event\":");
    http__event_data(c->b, &d->ev);
    http__sb_puts(c->b, "}");
    c->n++;
    c->last = d->key;
    return 0;
}

/* GET /v1/webhooks/{id}/deliveries?limit=&after=: the pending deliveries,
 * oldest first, with their tries and last error; the counters. */
void http__webhook_deliveries(struct http_server *s,
                              h2o_req_t *req,
                              const struct http_args *a)
{
    struct fsm_reader *rd;
    struct fsm_webhook w;
    struct sb b;
    struct dl_ctx c = {&b, 0, LIST_DEFAULT, 0};
    uint64_t id, after = 0;
    char buf[32];

    if (!http__id_or_404(req, a->id.base, a->id.len, &id)) {
        return;
    }
    if (http__query(req, "limit", buf, sizeof buf) != NULL) {
        c.limit = (unsigned)strtoul(buf, NULL, 10);
        if (c.limit == 0 || c.limit > LIST_MAX) {
            http__send_error(req, 400, "invalid_argument", "limit",
                             "limit: 1..%d", LIST_MAX);
            return;
        }
    }
    if (http__query(req, "after", buf, sizeof buf) != NULL) {
        after = strtoull(buf, NULL, 10);
    }
    if ((rd = read_hook(s, req, id, &w)) == NULL) {
        return;
    }
    http__sb_init(&b, &req->pool);
    http__sb_puts(&b, "{\"webhook\":");
    hook_write(&b, &w);
    http__sb_puts(&b, ",\"deliveries\":[");
    fsm_deliveries(rd, id, after, delivery_cb, &c);
    fsm_read_end(rd);
    http__sb_puts(&b, "]");
    if (c.n == c.limit) {
        http__sb_printf(&b, ",\"next_after\":\"%llu\"",
                        (unsigned long long)c.last);
    }
    http__sb_puts(&b, "}");
    http__send_sb(req, 200, &b, 0);
}
