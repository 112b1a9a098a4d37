/* Growable byte buffer (buf.h). */

#include "common/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t limit)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

/* Room for @n more bytes and the NUL. */
static int reserve(struct buf *b, size_t n)
{
    size_t need, cap;
    char *p;

    if (n > SIZE_MAX - 1 - b->len) {
        return -1;
    }
    need = b->len + n + 1;
    if (need <= b->cap) {
        return 0;
    }
    cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    p = realloc(b->p, cap);
    if (p == NULL) {
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *data, size_t n)
{
    if (b->limit != 0 && (n > b->limit || b->len > b->limit - n)) {
        return -1;
    }
    if (reserve(b, n) != 0) {
        return -1;
    }
    if (n > 0) {
        memcpy(b->p + b->len, data, n);
    }
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->p != NULL) {
        b->p[0] = '\0';
    }
}

void buf_free(struct buf *b)
{
    free(b->p);
    buf_init(b, b->limit);
}

const char *buf_str(const struct buf *b)
{
    return b->p != NULL ? b->p : "";
}

char *buf_take(struct buf *b)
{
    char *s;
    if (reserve(b, 0) != 0) {
        return NULL;
    }
    b->p[b->len] = '\0';
    s = b->p;
    buf_init(b, b->limit);
    return s;
}

size_t buf_curl_write(char *ptr, size_t size, size_t nmemb, void *data)
{
    size_t n = size * nmemb;
    return buf_append(data, ptr, n) == 0 ? n : 0;
}
