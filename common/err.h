#ifndef COMMON_ERR_H_
#define COMMON_ERR_H_

/* Error codes shared by every folder. 0 is success. Each code has a stable
 * machine name (err_code_name) that the HTTP API returns in error bodies, and
 * an HTTP status (err_http_status). */
enum {
    ERR_NOMEM = 1,   /* Out of memory. */
    ERR_INVALID,     /* Bad input: a field is malformed or out of range. */
    ERR_NOTFOUND,    /* No such job, node or route. */
    ERR_CONFLICT,    /* The request conflicts with the current state. */
    ERR_TOOLARGE,    /* Body, batch or field over its documented limit. */
    ERR_NOTLEADER,   /* This node is not the leader and cannot forward. */
    ERR_NOLEADER,    /* No leader is known: retry later. */
    ERR_UNKNOWN,     /* Leadership lost: the outcome of a write is unknown. */
    ERR_TIMEOUT,     /* A deadline passed. */
    ERR_STORAGE,     /* LMDB or raft storage failure (the node fail-stops). */
    ERR_CORRUPT,     /* A replicated entry or record does not decode. */
    ERR_SHUTDOWN,    /* The node is closing. */
    ERR_CANCELED,    /* The operation was cancelled before completion. */
    ERR_UNAVAILABLE, /* A dependency (peer, leader) cannot be reached. */
    ERR_IO,          /* Other I/O error. */
    ERR_UNAUTHENTICATED, /* No credentials, or unknown or expired ones. */
    ERR_FORBIDDEN,       /* Known credentials that may not do this. */
    ERR_BUSY,            /* Over a limit of load: retry after a while. */
    ERR__COUNT
};

#define ERRMSG_SIZE 256

/* Stable machine name of @code, e.g. "invalid_argument". */
const char *err_code_name(int code);

/* Human text of @code. */
const char *err_strerror(int code);

/* HTTP status that @code maps to (400, 404, 409, 413, 503, ...). */
int err_http_status(int code);

#endif /* COMMON_ERR_H_ */
