/* GET /v1/openapi.json: the OpenAPI 3.1 description of this API
 * (http/openapi.json), compiled in as a byte array by scripts/embed.py.
 * No token needed: it describes the routes, it reveals no state.
 * tests/integration/test_openapi.py checks it against the route table and
 * real answers. */

#include "http/internal.h"

void http__openapi(struct http_server *s,
                   h2o_req_t *req,
                   const struct http_args *a)
{
    (void)s;
    http__send_text(req, 200, "application/json",
                    (const char *)http__openapi_json, http__openapi_json_len);
}
