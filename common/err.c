#include "common/err.h"

#include <stddef.h>

static const struct
{
    const char *name;
    const char *text;
    int http;
} table[ERR__COUNT] = {
    [0] = {"ok", "success", 200},
    [ERR_NOMEM] = {"out_of_memory", "out of memory", 500},
    [ERR_INVALID] = {"invalid_argument", "invalid argument", 400},
    [ERR_NOTFOUND] = {"not_found", "not found", 404},
    [ERR_CONFLICT] = {"conflict", "conflict with current state", 409},
    [ERR_TOOLARGE] = {"too_large", "over the size limit", 413},
    [ERR_NOTLEADER] = {"not_leader", "not the leader", 503},
    [ERR_NOLEADER] = {"no_leader", "no leader known", 503},
    [ERR_UNKNOWN] = {"outcome_unknown", "leadership lost: outcome unknown",
                     503},
    [ERR_TIMEOUT] = {"timeout", "deadline exceeded", 504},
    [ERR_STORAGE] = {"storage_error", "storage failure", 500},
    [ERR_CORRUPT] = {"corrupt", "corrupt data", 500},
    [ERR_SHUTDOWN] = {"shutting_down", "node is shutting down", 503},
    [ERR_CANCELED] = {"canceled", "operation canceled", 503},
    [ERR_UNAVAILABLE] = {"unavailable", "service unavailable", 503},
    [ERR_IO] = {"io_error", "I/O error", 502},
    [ERR_UNAUTHENTICATED] = {"unauthenticated", "credentials required", 401},
    [ERR_FORBIDDEN] = {"forbidden", "not allowed", 403},
    [ERR_BUSY] = {"resource_exhausted", "over a load limit: retry later", 429},
};

static int valid(int code)
{
    return code >= 0 && code < ERR__COUNT && table[code].name != NULL;
}

const char *err_code_name(int code)
{
    return valid(code) ? table[code].name : "internal";
}

const char *err_strerror(int code)
{
    return valid(code) ? table[code].text : "internal error";
}

int err_http_status(int code)
{
    return valid(code) ? table[code].http : 500;
}
