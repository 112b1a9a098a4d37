/* Incremental Server-Sent Events parser: see sse.h. */

#include "ctl/sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sse_init(struct sse *p, sse_fn fn, void *arg)
{
    memset(p, 0, sizeof *p);
    p->fn = fn;
    p->arg = arg;
    buf_init(&p->line, SSE_MAX_LINE);
    buf_init(&p->data, 0);
}

static void clear_event(struct sse *p)
{
    buf_reset(&p->data);
    p->has_data = false;
    p->has_id = false;
    p->event[0] = '\0';
    p->id[0] = '\0';
}

void sse_reset(struct sse *p)
{
    buf_reset(&p->line);
    p->cr = false;
    clear_event(p);
}

void sse_free(struct sse *p)
{
    buf_free(&p->line);
    buf_free(&p->data);
}

/* A blank line: hand the event over (none without data, as the standard
 * says). */
static int dispatch(struct sse *p)
{
    struct sse_event ev;
    int rv = 0;

    if (p->has_data) {
        ev.id = p->has_id ? p->id : NULL;
        ev.event = p->event[0] != '\0' ? p->event : "message";
        ev.data = buf_str(&p->data);
        rv = p->fn(p->arg, &ev);
    }
    clear_event(p);
    return rv;
}

static int field(struct sse *p, const char *name, const char *value)
{
    if (strcmp(name, "data") == 0) {
        if ((p->has_data && buf_append(&p->data, "\n", 1) != 0) ||
            buf_append(&p->data, value, strlen(value)) != 0) {
            return -1;
        }
        p->has_data = true;
    } else if (strcmp(name, "event") == 0) {
        snprintf(p->event, sizeof p->event, "%s", value);
    } else if (strcmp(name, "id") == 0) {
        snprintf(p->id, sizeof p->id, "%s", value);
        p->has_id = true;
    } else if (strcmp(name, "retry") == 0 && value[0] != '\0' &&
               strspn(value, "0123456789") == strlen(value) &&
               strlen(value) < 10) {
        p->retry_ms = atol(value);
    }
    return 0; /* Other fields are ignored. */
}

/* One complete line (without its end). */
static int line(struct sse *p)
{
    char *s = (char *)buf_str(&p->line), *colon, *value;
    int rv;

    if (s[0] == '\0') {
        rv = dispatch(p);
    } else if (s[0] == ':') {
        rv = 0; /* A comment. */
    } else {
        colon = strchr(s, ':');
        if (colon != NULL) {
            *colon = '\0';
            value = colon[1] == ' ' ? colon + 2 : colon + 1;
        } else {
            value = s + strlen(s);
        }
        rv = field(p, s, value);
    }
    buf_reset(&p->line);
    return rv;
}

int sse_feed(struct sse *p, const char *bytes, size_t n)
{
    size_t i = 0;

    while (i < n) {
        if (p->cr && bytes[i] == '\n') {
            p->cr = false; /* The LF of a CRLF split across pieces. */
            i++;
            continue;
        }
        p->cr = false;
        size_t run = 0; /* @bytes has no NUL at its end: no strcspn. */
        while (i + run < n && bytes[i + run] != '\r' &&
               bytes[i + run] != '\n') {
            run++;
        }
        if (run > 0 && buf_append(&p->line, bytes + i, run) != 0) {
            return -1;
        }
        i += run;
        if (i == n) {
            break; /* The line continues in the next piece. */
        }
        p->cr = bytes[i] == '\r';
        i++;
        int rv = line(p);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}
