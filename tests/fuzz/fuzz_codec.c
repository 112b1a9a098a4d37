/* Fuzz the FSM codecs: every input through the command decoder and the
 * record decoders (job, worker, token, queue, attempt history). A command
 * or record that decodes must encode again, and that encoding must decode
 * and encode to the same bytes (a follower and a leader agree on what an
 * entry says). */

#include <stdlib.h>
#include <string.h>

#include "fsm/internal.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void history(struct fsm_str h)
{
    struct fsm_attempt a;
    int n = 0;
    while (fsm_attempt_next(&h, &a) == 1 && n++ < 1000) {
        if (a.error.len > 0 && a.error.p == NULL) {
            FUZZ_FAIL();
        }
    }
}

static void same(const void *a, size_t al, const void *b, size_t bl)
{
    if (al != bl || memcmp(a, b, al) != 0) {
        FUZZ_FAIL();
    }
}

static void cmd(const uint8_t *data, size_t size)
{
    struct fsm_cmd c, c2;
    struct fsm_job *store, *store2;
    void *buf, *buf2;
    size_t len, len2;

    if (fsm_cmd_decode(data, size, &c, &store) != 0) {
        return;
    }
    for (uint32_t i = 0; i < c.n_jobs; i++) {
        history(c.jobs[i].history);
    }
    if (fsm_cmd_encode(&c, &buf, &len) == 0) {
        if (fsm_cmd_decode(buf, len, &c2, &store2) != 0 ||
            fsm_cmd_encode(&c2, &buf2, &len2) != 0) {
            FUZZ_FAIL();
        }
        same(buf, len, buf2, len2);
        fsm_cmd_free(&c2, store2);
        free(buf);
        free(buf2);
    }
    fsm_cmd_free(&c, store);
}

static void job(const uint8_t *data, size_t size)
{
    struct fsm_job j, j2;
    void *buf, *buf2;
    size_t len, len2;

    if (fsm_job_decode(data, size, &j) != 0) {
        return;
    }
    history(j.history);
    if (fsm_job_encode(&j, &buf, &len) == 0) {
        if (fsm_job_decode(buf, len, &j2) != 0 ||
            fsm_job_encode(&j2, &buf2, &len2) != 0) {
            FUZZ_FAIL();
        }
        same(buf, len, buf2, len2);
        free(buf);
        free(buf2);
    }
}

static void worker(const uint8_t *data, size_t size)
{
    struct fsm_worker w, w2;
    void *buf, *buf2;
    size_t len, len2;

    if (fsm_worker_decode(data, size, &w) != 0) {
        return;
    }
    if (fsm_worker_encode(&w, &buf, &len) == 0) {
        if (fsm_worker_decode(buf, len, &w2) != 0 ||
            fsm_worker_encode(&w2, &buf2, &len2) != 0) {
            FUZZ_FAIL();
        }
        same(buf, len, buf2, len2);
        free(buf);
        free(buf2);
    }
}

static void token(const uint8_t *data, size_t size)
{
    struct fsm_token t, t2;
    void *buf, *buf2;
    size_t len, len2;

    if (fsm_token_decode(data, size, &t) != 0) {
        return;
    }
    if (fsm_token_encode(&t, &buf, &len) == 0) {
        if (fsm_token_decode(buf, len, &t2) != 0 ||
            fsm_token_encode(&t2, &buf2, &len2) != 0) {
            FUZZ_FAIL();
        }
        same(buf, len, buf2, len2);
        free(buf);
        free(buf2);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly @size bytes: ASan sees any read past the end. */
    uint8_t *p = malloc(size > 0 ? size : 1);
    MDB_val v = {size, p};
    struct fsm_queue q;

    memcpy(p, data, size);
    cmd(p, size);
    job(p, size);
    worker(p, size);
    token(p, size);
    (void)fsm__queue_decode(&v, &q);
    history((struct fsm_str){(const char *)p, (uint32_t)size});
    free(p);
    return 0;
}
