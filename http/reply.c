/* Responses: JSON bodies, JSON errors, query parameters. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "http"
#include "common/err.h"
#include "common/list.h"
#include "common/log.h"
#include "http/internal.h"

/* The reason phrase of the status line (RFC 9110, section 15). */
const char *http__reason(int status)
{
    switch (status) {
        case 200:
            return "OK";
        case 201:
            return "Created";
        case 202:
            return "Accepted";
        case 204:
            return "No Content";
        case 304:
            return "Not Modified";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 409:
            return "Conflict";
        case 410:
            return "Gone";
        case 411:
            return "Length Required";
        case 413:
            return "Content Too Large";
        case 415:
            return "Unsupported Media Type";
        case 422:
            return "Unprocessable Content";
        case 429:
            return "Too Many Requests";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 502:
            return "Bad Gateway";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
        case 507:
            return "Insufficient Storage";
        default:
            return status < 400 ? "OK" : "Error";
    }
}

void http__send_text(h2o_req_t *req,
                     int status,
                     const char *ctype,
                     const char *body,
                     size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_iovec_t buf = h2o_iovec_init(body, len);

    if (req->res.status != 0) {
        /* A second answer to one request: h2o 2.2.5 would write it while
         * the first is in flight and abort (uv-binding do_write). Seen twice
         * in the fault soak; this line names the route that does it. */
        LOG(LOG_ERROR, "second answer to one request dropped",
            "method=%.*s path=%.*s first=%d second=%d", (int)req->method.len,
            req->method.base, (int)req->path.len, req->path.base,
            req->res.status, status);
        return;
    }
    if (!http__output_reserve(http__server_of(req), req, len)) {
        /* Counted until the request's pool goes, i.e. until h2o wrote the
         * answer out or dropped the connection. */
        http__server_of(req)->busy_refused++;
        http__send_err(req, ERR_UNAVAILABLE, NULL,
                       "too many answers are waiting for their clients to "
                       "read them: retry later");
        return;
    }
    req->res.status = status;
    req->res.reason = http__reason(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   ctype, strlen(ctype));
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

void http__send_json(h2o_req_t *req, int status, json_t *body, uint64_t index)
{
    size_t len = json_dumpb(body, NULL, 0, JSON_COMPACT);
    char *buf = h2o_mem_alloc_pool(&req->pool, len + 1);

    json_dumpb(body, buf, len, JSON_COMPACT);
    buf[len] = '\n';
    json_decref(body);
    if (index != 0) {
        char *v = h2o_mem_alloc_pool(&req->pool, 24);
        int n = snprintf(v, 24, "%llu", (unsigned long long)index);
        h2o_add_header_by_str(&req->pool, &req->res.headers,
                              H2O_STRLIT("x-rota-index"), 0, NULL, v,
                              (size_t)n);
    }
    http__send_text(req, status, "application/json", buf, len + 1);
}

/* Replace each byte that does not start a valid UTF-8 sequence with '?':
 * a message quoting the request (a path with %ff) must stay JSON. */
static void utf8_clean(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p != 0) {
        size_t n = *p < 0x80                           ? 1
                   : (*p & 0xe0) == 0xc0 && *p >= 0xc2 ? 2
                   : (*p & 0xf0) == 0xe0               ? 3
                   : (*p & 0xf8) == 0xf0 && *p <= 0xf4 ? 4
                                                       : 0;
        size_t i;
        for (i = 1; i < n && (p[i] & 0xc0) == 0x80; i++) {
        }
        if (n == 0 || i < n ||
            (n == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) ||
                        (p[0] == 0xed && p[1] >= 0xa0))) ||
            (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) ||
                        (p[0] == 0xf4 && p[1] >= 0x90)))) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

static void send_error_v(h2o_req_t *req,
                         int status,
                         const char *code,
                         const char *field,
                         const char *fmt,
                         va_list ap)
{
    char msg[512];
    json_t *err;

    vsnprintf(msg, sizeof msg, fmt, ap);
    utf8_clean(msg);
    err = json_pack("{s:s,s:s}", "code", code, "message", msg);
    if (field != NULL && field[0] != '\0') {
        json_object_set_new(err, "field", json_string(field));
    }
    if ((status == 503 || status == 429) &&
        h2o_find_header(&req->res.headers, H2O_TOKEN_RETRY_AFTER, -1) == -1) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER,
                       NULL, H2O_STRLIT("1"));
    }
    http__send_json(req, status, json_pack("{s:o}", "error", err), 0);
}

void http__send_error(h2o_req_t *req,
                      int status,
                      const char *code,
                      const char *field,
                      const char *fmt,
                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_error_v(req, status, code, field, fmt, ap);
    va_end(ap);
}

void http__send_err(h2o_req_t *req, int err, const char *field, const char *msg)
{
    /* Nothing was done with a request that found no leader, and a lost
     * leadership's unknown outcome is harmless to repeat for some: they
     * wait for the next leader (hold.c) rather than fail. */
    if ((err == ERR_NOLEADER || err == ERR_NOTLEADER ||
         (err == ERR_UNKNOWN && http__hold_safe_again(req))) &&
        http__hold(CONTAINER_OF(req->conn->ctx, struct http_server, ctx), req,
                   err, msg)) {
        return;
    }
    http__send_error(req, err_http_status(err), err_code_name(err), field, "%s",
                     msg != NULL && msg[0] != '\0' ? msg : err_strerror(err));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

const char *http__query(h2o_req_t *req,
                        const char *name,
                        char *buf,
                        size_t size)
{
    const char *q, *end;
    size_t nlen = strlen(name);

    if (req->query_at == SIZE_MAX) {
        return NULL;
    }
    q = req->path.base + req->query_at + 1;
    end = req->path.base + req->path.len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp != NULL ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(stop - q));
        const char *key_end = eq != NULL ? eq : stop;
        if ((size_t)(key_end - q) == nlen && memcmp(q, name, nlen) == 0) {
            size_t o = 0;
            const char *v = eq != NULL ? eq + 1 : stop;
            while (v < stop && o + 1 < size) {
                if (*v == '%' && v + 2 < stop + 1 && v + 2 <= stop - 0 &&
                    hexval(v[1]) >= 0 && hexval(v[2]) >= 0) {
                    buf[o++] = (char)(hexval(v[1]) * 16 + hexval(v[2]));
                    v += 3;
                } else {
                    buf[o++] = *v == '+' ? ' ' : *v;
                    v++;
                }
            }
            buf[o] = '\0';
            return buf;
        }
        q = stop + 1;
    }
    return NULL;
}

/* ---- Requests and submits shared by the handlers ----------------------- */

/* The one body parser: a JSON object, duplicate keys refused; an empty
 * body is {} unless @required. NULL with the reason in @why. */
json_t *http__parse_body(const char *p,
                         size_t len,
                         bool object,
                         bool required,
                         char *why,
                         size_t size)
{
    json_error_t jerr;
    json_t *v;
    if (p == NULL || len == 0) {
        if (object && !required) {
            return json_object();
        }
        snprintf(why, size, "the request needs a JSON body");
        return NULL;
    }
    v = json_loadb(p, len, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL) {
        snprintf(why, size, "malformed JSON at line %d column %d: %s",
                 jerr.line, jerr.column, jerr.text);
    } else if (object && !json_is_object(v)) {
        json_decref(v);
        snprintf(why, size, "want a JSON object");
        return NULL;
    }
    return v;
}

static json_t *body_of(h2o_req_t *req, bool object, bool required)
{
    char why[256];
    json_t *v = http__parse_body(req->entity.base, req->entity.len, object,
                                 required, why, sizeof why);
    if (v == NULL) {
        http__send_error(req, 400, "invalid_argument", "", "%s", why);
    }
    return v;
}

json_t *http__body_json(h2o_req_t *req)
{
    return body_of(req, false, true);
}

json_t *http__body_object(h2o_req_t *req, bool required)
{
    return body_of(req, true, required);
}

bool http__id_or_404(h2o_req_t *req, const char *s, size_t len, uint64_t *id)
{
    if (http__parse_id(s, len, id) != 0) {
        http__send_error(req, 404, "not_found", "id", "no job %.*s", (int)len,
                         s);
        return false;
    }
    return true;
}

int http__submit_cmd(struct http_server *s,
                     const struct fsm_cmd *cmd,
                     cluster_submit_cb cb,
                     void *data)
{
    return cluster_submit_cmd(s->cluster, cmd, cb, data);
}

void http__submit_for(struct http_server *s,
                      h2o_req_t *req,
                      const struct fsm_cmd *cmd,
                      cluster_submit_cb cb,
                      int kind)
{
    struct call *call = http__call_new(s, req);
    call->kind = kind;
    int rv = http__submit_cmd(s, cmd, cb, call);
    if (rv != 0) {
        http__call_unref(call);
        http__send_err(req, rv, NULL, NULL);
    }
}

bool http__failed(h2o_req_t *req, int status, const struct fsm_result *res)
{
    if (status != 0) {
        http__send_err(req, status, NULL, NULL);
        return true;
    }
    if (res->code != 0) {
        http__send_err(req, res->code, res->field, res->msg);
        return true;
    }
    return false;
}

void http__send_job(struct http_server *s,
                    h2o_req_t *req,
                    uint64_t id,
                    int status)
{
    struct fsm_reader *rd;
    struct fsm_job job;
    struct sb b;
    if (fsm_read_begin(cluster_fsm(s->cluster), &rd) != 0) {
        http__send_err(req, ERR_STORAGE, NULL, NULL);
        return;
    }
    if (fsm_get_job(rd, id, &job) != 0) {
        fsm_read_end(rd);
        http__send_err(req, ERR_NOTFOUND, "id", "job vanished");
        return;
    }
    http__sb_init(&b, &req->pool);
    http__job_write(&b, &job);
    fsm_read_end(rd);
    http__send_sb(req, status, &b, cluster_applied_index(s->cluster));
}

/* @field: a (non-empty unless @optional) array of names without commas,
 * joined with commas into @out. */
bool http__parse_names(h2o_req_t *req,
                       json_t *o,
                       const char *field,
                       bool optional,
                       char *out,
                       size_t size)
{
    json_t *q = json_object_get(o, field), *v;
    size_t i, n = 0;

    out[0] = '\0';
    if ((q == NULL || json_is_null(q)) && optional) {
        return true;
    }
    if (!json_is_array(q) || (json_array_size(q) == 0 && !optional)) {
        http__send_error(req, 400, "invalid_argument", field,
                         "%s: a non-empty array of names", field);
        return false;
    }
    json_array_foreach(q, i, v)
    {
        const char *qs = json_string_value(v);
        if (qs == NULL || qs[0] == '\0' || strchr(qs, ',') != NULL ||
            n + strlen(qs) + 1 >= size) {
            http__send_error(req, 400, "invalid_argument", field,
                             "%s[%zu]: a name without commas", field, i);
            return false;
        }
        n += (size_t)snprintf(out + n, size - n, "%s%s", n > 0 ? "," : "", qs);
    }
    return true;
}
