/* Static files: the dashboard, a single-page app (http/ui/) embedded into rotad
 * at build time (scripts/embed.py). GET / and GET /dashboard answer index.html,
 * GET /ui/{file} the other files. No token is needed for these static
 * files; the app sends the user's token with its API calls. Each answer
 * carries an ETag and Cache-Control: no-cache, so a browser revalidates
 * (304) and sees a new build at once. */

#include <string.h>

#include "http/internal.h"
#include "http/ui_files.h"

/* The page runs only its own script and style, and calls only this
 * node: data shown by the app can never run as code. */
#define CSP                                                       \
    "default-src 'none'; script-src 'self'; style-src 'self'; "   \
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; " \
    "form-action 'none'; frame-ancestors 'none'"

static const struct ui_file *find(const char *name, size_t len)
{
    for (size_t i = 0; i < http__n_ui_files; i++) {
        const struct ui_file *f = &http__ui_files[i];
        if (strlen(f->name) == len && memcmp(f->name, name, len) == 0) {
            return f;
        }
    }
    return NULL;
}

static void header(h2o_req_t *req, const char *name, const char *value)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0,
                          NULL, value, strlen(value));
}

static void send_file(h2o_req_t *req, const struct ui_file *f)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    bool fresh = i >= 0 && h2o_memis(req->headers.entries[i].value.base,
                                     req->headers.entries[i].value.len, f->etag,
                                     strlen(f->etag));

    header(req, "etag", f->etag);
    header(req, "cache-control", "no-cache");
    header(req, "x-content-type-options", "nosniff");
    header(req, "referrer-policy", "no-referrer");
    header(req, "content-security-policy", CSP);
    if (fresh) {
        http__send_text(req, 304, f->content_type, "", 0);
    } else {
        http__send_text(req, 200, f->content_type, (const char *)f->data,
                        f->len);
    }
}

void http__dashboard(struct http_server *s,
                     h2o_req_t *req,
                     const struct http_args *a)
{
    (void)s;
    (void)a;
    send_file(req, find(H2O_STRLIT("index.html")));
}

void http__dashboard_file(struct http_server *s,
                          h2o_req_t *req,
                          const struct http_args *a)
{
    const struct ui_file *f = find(a->id.base, a->id.len);
    (void)s;
    if (f == NULL) {
        http__send_error(req, 404, "not_found", NULL, "no dashboard file %.*s",
                         (int)(a->id.len < 100 ? a->id.len : 100), a->id.base);
        return;
    }
    send_file(req, f);
}

/* GET /v1/openapi.json: the OpenAPI 3.1 description of the API
 * (http/openapi.json, embedded the same way). No token needed: it
 * describes the routes and reveals no state. tests/integration/
 * test_openapi.py checks it against the route table and real answers. */
void http__openapi(struct http_server *s,
                   h2o_req_t *req,
                   const struct http_args *a)
{
    (void)s;
    (void)a;
    send_file(req, find(H2O_STRLIT("openapi.json")));
}
