/* Batches: the payload of one raft entry (layout in fsm.h). Every command
 * starts 8-aligned and the total is a multiple of 8 bytes: raft 0.15's TCP
 * transport corrupts unpadded entries during follower catch-up. */

#include <stdlib.h>
#include <string.h>

#include "fsm/internal.h"

#define BATCH_MAGIC 0x41544f52u /* "ROTA" little endian. */
#define BATCH_VERSION 1

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

void fsm_batch_init(struct fsm_batch *b)
{
    memset(b, 0, sizeof *b);
}

static int reserve(struct fsm_batch *b, size_t n)
{
    if (b->len + n <= b->cap) {
        return 0;
    }
    size_t cap = b->cap == 0 ? 4096 : b->cap;
    while (cap < b->len + n) {
        cap *= 2;
    }
    char *p = realloc(b->buf, cap);
    if (p == NULL) {
        return ERR_NOMEM;
    }
    b->buf = p;
    b->cap = cap;
    return 0;
}

int fsm_batch_append(struct fsm_batch *b, const void *cmd, size_t len)
{
    size_t need;
    uint32_t l32 = (uint32_t)len;

    if (len > UINT32_MAX - 16) {
        return ERR_TOOLARGE;
    }
    if (b->len == 0) {
        if (reserve(b, FSM_BATCH_HEADER) != 0) {
            return ERR_NOMEM;
        }
        memset(b->buf, 0, FSM_BATCH_HEADER);
        b->len = FSM_BATCH_HEADER;
    }
    need = pad8(4 + len);
    if (reserve(b, need) != 0) {
        return ERR_NOMEM;
    }
    memcpy(b->buf + b->len, &l32, 4);
    memcpy(b->buf + b->len + 4, cmd, len);
    memset(b->buf + b->len + 4 + len, 0, need - 4 - len);
    b->len += need;
    b->n++;
    return 0;
}

void fsm_batch_seal(struct fsm_batch *b, int64_t time_ms)
{
    uint32_t magic = BATCH_MAGIC, n = b->n, pad = 0;
    uint16_t version = BATCH_VERSION, flags = 0;
    if (b->len == 0 && reserve(b, FSM_BATCH_HEADER) == 0) {
        b->len = FSM_BATCH_HEADER;
    }
    if (b->len < FSM_BATCH_HEADER) {
        return;
    }
    memcpy(b->buf, &magic, 4);
    memcpy(b->buf + 4, &version, 2);
    memcpy(b->buf + 6, &flags, 2);
    memcpy(b->buf + 8, &time_ms, 8);
    memcpy(b->buf + 16, &n, 4);
    memcpy(b->buf + 20, &pad, 4);
}

void fsm_batch_reset(struct fsm_batch *b)
{
    b->len = 0;
    b->n = 0;
}

void fsm_batch_close(struct fsm_batch *b)
{
    free(b->buf);
    memset(b, 0, sizeof *b);
}

/* Used by apply: parse the header. Returns 0 or ERR_CORRUPT. */
int fsm__batch_header(const void *buf,
                      size_t len,
                      int64_t *time_ms,
                      uint32_t *n);
int fsm__batch_header(const void *buf,
                      size_t len,
                      int64_t *time_ms,
                      uint32_t *n)
{
    uint32_t magic;
    uint16_t version;
    if (len < FSM_BATCH_HEADER || len % 8 != 0) {
        return ERR_CORRUPT;
    }
    memcpy(&magic, buf, 4);
    memcpy(&version, (const char *)buf + 4, 2);
    if (magic != BATCH_MAGIC || version != BATCH_VERSION) {
        return ERR_CORRUPT;
    }
    memcpy(time_ms, (const char *)buf + 8, 8);
    memcpy(n, (const char *)buf + 16, 4);
    return 0;
}
