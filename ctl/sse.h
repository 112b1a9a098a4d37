#ifndef CTL_SSE_H_
#define CTL_SSE_H_

/* An incremental Server-Sent Events parser (the text/event-stream format
 * of the WHATWG HTML standard): bytes go in as they arrive, in pieces of
 * any size (a line, a field or a CRLF may be split across pieces); each
 * complete event comes out through a callback. Comments (": keepalive")
 * and unknown fields are skipped; multi-line data is joined with "\n". */

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

struct sse_event
{
    const char *id;    /* The block's id: field, or NULL if it had none. */
    const char *event; /* The event: field, else "message". */
    const char *data;  /* The data: lines joined with "\n". */
};

/* Called for each event; a non-zero return stops the parse, and
 * sse_feed() returns it. */
typedef int (*sse_fn)(void *arg, const struct sse_event *ev);

struct sse
{
    sse_fn fn;
    void *arg;
    struct buf line; /* The line being read. */
    struct buf data; /* The data lines of the event being read. */
    bool cr;         /* The last byte was a CR: skip an LF after it. */
    bool has_data, has_id;
    char event[64];
    char id[128];
    long retry_ms; /* The last retry: field; 0 if none yet. */
};

/* Lines longer than this make sse_feed() fail (-1). */
#define SSE_MAX_LINE (1u << 20)

void sse_init(struct sse *p, sse_fn fn, void *arg);
/* Parse @n bytes. 0, the callback's non-zero return, or -1 on a line over
 * SSE_MAX_LINE or short memory. */
int sse_feed(struct sse *p, const char *bytes, size_t n);
/* Forget a partly read event (a new connection). */
void sse_reset(struct sse *p);
void sse_free(struct sse *p);

#endif /* CTL_SSE_H_ */
