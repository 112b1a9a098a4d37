#ifndef COMMON_BUF_H_
#define COMMON_BUF_H_

/* A growable byte buffer, e.g. for an HTTP response body. No library
 * headers: buf_curl_write only has libcurl's write-callback signature. */

#include <stddef.h>

struct buf
{
    char *p;      /* NUL-terminated once anything was appended, else NULL. */
    size_t len;   /* Bytes held, not counting the NUL. */
    size_t cap;   /* Bytes allocated at p, the NUL included. */
    size_t limit; /* len never exceeds it; 0: no limit. */
};

/* An empty buffer that holds at most @limit bytes (0: no limit). */
void buf_init(struct buf *b, size_t limit);
/* Append @n bytes (n may be 0: p is then allocated all the same). 0, or -1
 * if len would exceed the limit or memory is short; @b is then unchanged. */
int buf_append(struct buf *b, const void *data, size_t n);
/* Empty it, keeping the memory and the limit. */
void buf_reset(struct buf *b);
/* Free the memory; @b is an empty buffer again (same limit). */
void buf_free(struct buf *b);
/* The bytes as a NUL-terminated string: "" when nothing was appended. */
const char *buf_str(const struct buf *b);
/* The bytes as a malloc'ed NUL-terminated string that the caller frees
 * ("" when empty), or NULL if memory is short; @b is left empty. */
char *buf_take(struct buf *b);

/* A libcurl CURLOPT_WRITEFUNCTION with a struct buf * as CURLOPT_WRITEDATA:
 * appends and returns size * nmemb, or returns 0 when the limit would be
 * exceeded or memory is short, which makes curl abort the transfer with
 * CURLE_WRITE_ERROR. */
size_t buf_curl_write(char *ptr, size_t size, size_t nmemb, void *data);

#endif /* COMMON_BUF_H_ */
