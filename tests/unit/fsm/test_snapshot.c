/* fsm/snapshot.c: round trips with equal digests across block and chunk
 * boundaries (format v2), v1 snapshots of older versions still restore,
 * corrupt snapshots leave the old state intact. */

#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tests/unit/fsm/helpers.h"

#define T0 1700000000000LL
#define MIB (1u << 20)

static void populate(struct tfsm *t)
{
    struct fsm_job jobs[20];
    char users[20][8];
    for (int i = 0; i < 20; i++) {
        snprintf(users[i], 8, "u%d", i % 4);
        jobs[i] = tjob(i % 2 ? "shell" : "http");
        jobs[i].user_id = tstr(users[i]);
        jobs[i].run_at = i % 3 == 0 ? T0 + 1000 : 0;
    }
    for (int k = 0; k < 5; k++) {
        assert_int_equal(tfsm_submit(t, T0 + k, jobs, 20)->code, 0);
    }
    struct fsm_cmd c;
    unsigned n;
    memset(&c, 0, sizeof c);
    c.type = FSM_CMD_NODE_SET;
    c.node_id = 1;
    c.raft_addr = tstr("127.0.0.1:7001");
    c.http_addr = tstr("127.0.0.1:8001");
    assert_int_equal(tfsm_apply(t, T0, &c, 1, &n)->code, 0);
}

/* @rounds submits of 20 jobs whose specs are @spec_len bytes. */
static void populate_big(struct tfsm *t, int rounds, size_t spec_len)
{
    char *spec = malloc(spec_len + 1);
    struct fsm_job jobs[20];
    assert_non_null(spec);
    for (int k = 0; k < rounds; k++) {
        /* {"payload":"...."}: varied bytes (LZ4 still has work). */
        size_t n = (size_t)snprintf(spec, spec_len, "{\"payload\":\"");
        for (; n < spec_len - 2; n++) {
            spec[n] = (char)('a' + (n * 7 + (size_t)k * 13 + n / 97) % 26);
        }
        memcpy(spec + n, "\"}", 3);
        for (int i = 0; i < 20; i++) {
            jobs[i] = tjob("big");
            jobs[i].spec = tstr(spec);
        }
        assert_int_equal(tfsm_submit(t, T0 + k, jobs, 20)->code, 0);
    }
    free(spec);
}

static void *snapshot(struct tfsm *t, size_t *len)
{
    void *buf = tfsm_snapshot(t, 0, 0, len, NULL);
    /* Its header says the applied index (GET /v1/snapshot's file). */
    assert_int_equal(fsm_snapshot_index(buf, *len), fsm_applied_index(t->f));
    assert_int_equal(fsm_snapshot_index(buf, 15), 0);
    assert_int_equal(fsm_snapshot_index("not a snapshot at all", 21), 0);
    return buf;
}

/* Walk the v2 block headers: the number of blocks; *largest raw. */
static unsigned count_blocks(const unsigned char *buf,
                             size_t len,
                             uint32_t *largest)
{
    size_t off = 20;
    unsigned n = 0;
    uint32_t v;
    memcpy(&v, buf + 4, 4);
    assert_int_equal(v, 2);
    *largest = 0;
    while (off < len) {
        uint32_t h[3];
        assert_true(len - off >= 12);
        memcpy(h, buf + off, 12);
        *largest = h[0] > *largest ? h[0] : *largest;
        off += 12 + h[1];
        n++;
    }
    assert_int_equal(off, len);
    return n;
}

/* The v1 form of a v2 snapshot: version 1, the blocks decompressed. This
 * is what versions before v2 wrote (the same header and record stream). */
static void *to_v1(const unsigned char *buf, size_t len, size_t *out_len)
{
    unsigned char *v1 = malloc(20);
    size_t off = 20, n = 20;
    uint32_t one = 1;
    assert_non_null(v1);
    memcpy(v1, buf, 20);
    memcpy(v1 + 4, &one, 4);
    while (off < len) {
        uint32_t h[3];
        memcpy(h, buf + off, 12);
        v1 = realloc(v1, n + h[0]);
        assert_non_null(v1);
        assert_int_equal(
            LZ4_decompress_safe((const char *)buf + off + 12, (char *)v1 + n,
                                (int)h[1], (int)h[0]),
            (int)h[0]);
        n += h[0];
        off += 12 + h[1];
    }
    *out_len = n;
    return v1;
}

/* A v2 snapshot of one block holding @raw (@n bytes), @ndb dbs. */
static void *make_v2(const void *raw, size_t n, uint32_t ndb, size_t *len)
{
    int bound = LZ4_compressBound((int)n);
    unsigned char *buf = malloc(32 + (size_t)bound);
    uint32_t h32[2] = {0x504e5352u, 2}, h[3];
    uint64_t applied = 77;
    assert_non_null(buf);
    memcpy(buf, h32, 8);
    memcpy(buf + 8, &applied, 8);
    memcpy(buf + 16, &ndb, 4);
    h[0] = (uint32_t)n;
    h[1] = (uint32_t)LZ4_compress_default(raw, (char *)buf + 32, (int)n, bound);
    assert_true(h[1] > 0);
    /* Adler-32 of the compressed bytes (RFC 1950), computed plainly. */
    uint32_t a = 1, b = 0;
    for (uint32_t i = 0; i < h[1]; i++) {
        a = (a + buf[32 + i]) % 65521;
        b = (b + a) % 65521;
    }
    h[2] = (b << 16) | a;
    memcpy(buf + 20, h, 12);
    *len = 32 + h[1];
    return buf;
}

/* Append to a record stream. */
struct stream
{
    unsigned char b[4096];
    size_t n;
};

static void s_put(struct stream *s, const void *p, size_t n)
{
    assert_true(s->n + n <= sizeof s->b);
    memcpy(s->b + s->n, p, n);
    s->n += n;
}

static void s_u32(struct stream *s, uint32_t v)
{
    s_put(s, &v, 4);
}

static void s_db(struct stream *s, const char *name, uint64_t count)
{
    s_u32(s, (uint32_t)strlen(name));
    s_put(s, name, strlen(name));
    s_put(s, &count, 8);
}

static void s_rec(struct stream *s, const char *k, const char *v)
{
    s_u32(s, (uint32_t)strlen(k));
    s_put(s, k, strlen(k));
    s_u32(s, (uint32_t)strlen(v));
    s_put(s, v, strlen(v));
}

static void test_snapshot_round_trip(void **state)
{
    struct tfsm a, b;
    void *buf;
    size_t len;
    (void)state;

    tfsm_open(&a);
    tfsm_open(&b);
    populate(&a);
    buf = snapshot(&a, &len);
    assert_int_equal(fsm_restore(b.f, buf, len), 0);
    assert_int_equal(tfsm_digest(&a), tfsm_digest(&b));
    assert_int_equal(fsm_applied_index(b.f), fsm_applied_index(a.f));
    /* The restored replica goes on applying like the original. */
    b.index = a.index;
    struct fsm_job j = tjob("after");
    assert_int_equal(tfsm_submit(&a, T0 + 50, &j, 1)->code, 0);
    assert_int_equal(tfsm_submit(&b, T0 + 50, &j, 1)->code, 0);
    assert_int_equal(tfsm_digest(&a), tfsm_digest(&b));
    free(buf);
    tfsm_close(&a);
    tfsm_close(&b);
}

/* Small blocks and chunks: records, and their integers, span blocks;
 * blocks fill several chunks; values larger than a block. */
static void test_snapshot_blocks_and_chunks(void **state)
{
    static const size_t sizes[][2] = {
        {1, 0},       {7, 100},     {100, 300},      {4096, 1},
        {4096, 9000}, {65536, MIB}, {MIB, 64 * MIB},
    };
    struct tfsm a, b;
    (void)state;

    tfsm_open(&a);
    tfsm_open(&b);
    populate(&a);
    populate_big(&a, 2, 10000);
    uint64_t want = tfsm_digest(&a);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t len;
        unsigned n_chunks;
        uint32_t largest;
        unsigned char *buf =
            tfsm_snapshot(&a, sizes[i][0], sizes[i][1], &len, &n_chunks);
        unsigned blocks = count_blocks(buf, len, &largest);
        assert_int_equal(largest, sizes[i][0] < len ? sizes[i][0] : largest);
        if (sizes[i][0] < 100000) {
            assert_true(blocks > 2); /* ~420 KB raw. */
        }
        if (sizes[i][1] < 10000) {
            assert_true(n_chunks > 2);
        }
        assert_int_equal(fsm_restore(b.f, buf, len), 0);
        assert_int_equal(tfsm_digest(&b), want);
        assert_int_equal(fsm_applied_index(b.f), fsm_applied_index(a.f));
        free(buf);
    }
    tfsm_close(&a);
    tfsm_close(&b);
}

/* The default sizes: more than four 1 MiB blocks, and (with small chunks)
 * several output chunks. */
static void test_snapshot_default_blocks(void **state)
{
    struct tfsm a, b;
    size_t len;
    unsigned n_chunks, blocks;
    uint32_t largest;
    unsigned char *buf;
    (void)state;

    tfsm_open(&a);
    tfsm_open(&b);
    populate_big(&a, 12, 20000); /* 240 jobs, ~4.8 MB raw. */
    buf = tfsm_snapshot(&a, 0, 0, &len, &n_chunks);
    blocks = count_blocks(buf, len, &largest);
    assert_true(blocks >= 5);
    assert_int_equal(largest, MIB);
    assert_true(n_chunks >= 2); /* The first chunk (64 KiB) holds no block. */
    assert_int_equal(fsm_restore(b.f, buf, len), 0);
    assert_int_equal(tfsm_digest(&b), tfsm_digest(&a));
    free(buf);
    /* Chunks too small for a block hold one block each. */
    buf = tfsm_snapshot(&a, MIB, 1000, &len, &n_chunks);
    assert_int_equal(count_blocks(buf, len, &largest), blocks);
    assert_true(n_chunks >= blocks); /* The last, small, may share. */
    tfsm_close(&b);
    tfsm_open(&b);
    assert_int_equal(fsm_restore(b.f, buf, len), 0);
    assert_int_equal(tfsm_digest(&b), tfsm_digest(&a));
    free(buf);
    tfsm_close(&a);
    tfsm_close(&b);
}

static void test_snapshot_v1_restores(void **state)
{
    struct tfsm a, b, c;
    size_t len, v1_len;
    void *buf, *v1;
    (void)state;

    tfsm_open(&a);
    tfsm_open(&b);
    populate(&a);
    populate_big(&a, 1, 5000);
    buf = tfsm_snapshot(&a, 1000, 0, &len, NULL);
    v1 = to_v1(buf, len, &v1_len);
    assert_int_equal(fsm_snapshot_index(v1, v1_len), fsm_applied_index(a.f));
    assert_int_equal(fsm_restore(b.f, v1, v1_len), 0);
    assert_int_equal(tfsm_digest(&b), tfsm_digest(&a));
    assert_int_equal(fsm_applied_index(b.f), fsm_applied_index(a.f));
    /* A truncated v1 still fails and leaves the state. */
    assert_int_equal(fsm_restore(b.f, v1, v1_len - 1), ERR_CORRUPT);
    assert_int_equal(tfsm_digest(&b), tfsm_digest(&a));
    free(buf);
    free(v1);

    /* The seed the v1 writer itself made (tests/fuzz/corpus): restores,
     * and its v2 snapshot restores to the same state. */
    const char *root = getenv("ROTA_SOURCE_ROOT");
    char path[1024];
    FILE *f;
    assert_non_null(root);
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/snapshot/small_v1", root);
    f = fopen(path, "rb");
    assert_non_null(f);
    v1 = malloc(1 << 16);
    v1_len = fread(v1, 1, 1 << 16, f);
    fclose(f);
    assert_true(v1_len > 20 && ((unsigned char *)v1)[4] == 1);
    assert_int_equal(fsm_restore(b.f, v1, v1_len), 0);
    assert_int_equal(fsm_applied_index(b.f), fsm_snapshot_index(v1, v1_len));
    buf = tfsm_snapshot(&b, 0, 0, &len, NULL);
    tfsm_open(&c);
    assert_int_equal(fsm_restore(c.f, buf, len), 0);
    assert_int_equal(tfsm_digest(&c), tfsm_digest(&b));
    free(buf);
    free(v1);
    tfsm_close(&a);
    tfsm_close(&b);
    tfsm_close(&c);
}

static void test_snapshot_corrupt_keeps_state(void **state)
{
    struct tfsm a, b;
    unsigned char *buf, *more;
    size_t len;
    (void)state;

    tfsm_open(&a);
    tfsm_open(&b);
    populate(&a);
    struct fsm_job j = tjob("mine");
    tfsm_submit(&b, T0, &j, 1);
    uint64_t before = tfsm_digest(&b);
    uint64_t applied = fsm_applied_index(b.f);
    buf = tfsm_snapshot(&a, 200, 1000, &len, NULL);
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_equal(fsm_restore(b.f, buf, cut), ERR_CORRUPT);
    }
    /* Any byte changed after the header: a block header out of range, a
     * checksum mismatch, a block that does not decompress to its size. */
    for (size_t i = 20; i < len; i++) {
        buf[i] ^= 0x10;
        assert_int_equal(fsm_restore(b.f, buf, len), ERR_CORRUPT);
        buf[i] ^= 0x10;
    }
    buf[20 + 12 + 3] ^= 1; /* First block's data. */
    assert_int_equal(fsm_restore(b.f, buf, len), ERR_CORRUPT);
    assert_non_null(strstr(fsm_errmsg(b.f), "checksum mismatch"));
    assert_non_null(strstr(fsm_errmsg(b.f), "block 1 at byte 20"));
    buf[20 + 12 + 3] ^= 1;
    buf[0] ^= 1; /* Bad magic. */
    assert_int_equal(fsm_restore(b.f, buf, len), ERR_CORRUPT);
    buf[0] ^= 1;
    buf[4] = 3; /* Unknown version. */
    assert_int_equal(fsm_restore(b.f, buf, len), ERR_CORRUPT);
    assert_non_null(strstr(fsm_errmsg(b.f), "version 3"));
    buf[4] = 2;
    /* Trailing bytes: one, or a whole valid block again. */
    more = malloc(len + 300);
    memcpy(more, buf, len);
    more[len] = 0;
    assert_int_equal(fsm_restore(b.f, more, len + 1), ERR_CORRUPT);
    assert_non_null(strstr(fsm_errmsg(b.f), "trailing"));
    memcpy(more + len, buf + 20, 12);
    uint32_t h[3];
    memcpy(h, buf + 20, 12);
    memcpy(more + len, buf + 20, 12 + h[1]);
    assert_int_equal(fsm_restore(b.f, more, len + 12 + h[1]), ERR_CORRUPT);
    assert_non_null(strstr(fsm_errmsg(b.f), "trailing"));
    free(more);
    /* Nothing of that touched the state. */
    assert_int_equal(tfsm_digest(&b), before);
    assert_int_equal(fsm_applied_index(b.f), applied);
    /* And the intact snapshot still restores. */
    assert_int_equal(fsm_restore(b.f, buf, len), 0);
    assert_int_equal(tfsm_digest(&b), tfsm_digest(&a));
    free(buf);
    tfsm_close(&a);
    tfsm_close(&b);
}

/* Hand-made streams: each defect named in errmsg, the state kept. */
static void test_snapshot_crafted(void **state)
{
    struct tfsm b;
    struct stream s;
    unsigned char *buf;
    size_t len;
    uint32_t h[3];
    (void)state;

    tfsm_open(&b);
    populate(&b);
    uint64_t before = tfsm_digest(&b);

    /* Keys out of order. */
    memset(&s, 0, sizeof s);
    s_db(&s, "meta", 2);
    s_rec(&s, "b", "1");
    s_rec(&s, "a", "2");
    buf = make_v2(s.b, s.n, 1, &len);
    assert_int_equal(fsm_restore(b.f, buf, len), ERR_CORRUPT);
    assert_non_null(strstr(fsm_errmsg(b.f), "keys out of order in db meta"));
    free(buf);

    /* A key longer than LMDB's limit; an unknown db. */
    char key[600];
    memset(key, 'k', sizeof key - 1);
    key[599] = '\0';
    memset(&s, 0, sizeof s);
    s_db(&s, "meta", 1);
    s_rec(&s, key, "1");
    buf = make_v2(s.b, s.n, 1, &len);
    assert_int_equal(fsm_restore(b.f, buf, len), ERR_CORRUPT);
    assert_non_null(strstr(fsm_errmsg(b.f), "key length 599"));
    free(buf);
    memset(&s, 0, sizeof s);
    s_db(&s, "nosuch", 0);
    buf = make_v2(s.b, s.n, 1, &len);
    assert_int_equal(fsm_restore(b.f, buf, len), ERR_CORRUPT);
    assert_non_null(strstr(fsm_errmsg(b.f), "unknown db"));
    free(buf);

    /* More records announced than there are. */
    memset(&s, 0, sizeof s);
    s_db(&s, "meta", 3);
    s_rec(&s, "a", "1");
    buf = make_v2(s.b, s.n, 1, &len);
    assert_int_equal(fsm_restore(b.f, buf, len), ERR_CORRUPT);
    assert_non_null(strstr(fsm_errmsg(b.f), "truncated"));
    free(buf);

    /* Not LZ4, with a right checksum: a valid block's compressed bytes
     * overwritten with 0xff, the checksum made to match. */
    memset(&s, 0, sizeof s);
    s_db(&s, "meta", 1);
    s_rec(&s, "a", "1");
    buf = make_v2(s.b, s.n, 1, &len);
    memcpy(h, buf + 20, 12);
    memset(buf + 32, 0xff, h[1]);
    {
        uint32_t a = 1, c = 0;
        for (uint32_t i = 0; i < h[1]; i++) {
            a = (a + 0xff) % 65521;
            c = (c + a) % 65521;
        }
        h[2] = (c << 16) | a;
    }
    memcpy(buf + 20, h, 12);
    assert_int_equal(fsm_restore(b.f, buf, len), ERR_CORRUPT);
    assert_non_null(strstr(fsm_errmsg(b.f), "does not decompress"));
    /* A raw length over 4 MiB is refused before anything is allocated. */
    h[0] = FSM_SNAPSHOT_MAX_BLOCK + 1;
    memcpy(buf + 20, h, 12);
    assert_int_equal(fsm_restore(b.f, buf, len), ERR_CORRUPT);
    assert_non_null(strstr(fsm_errmsg(b.f), "raw length"));
    h[0] = 0;
    memcpy(buf + 20, h, 12);
    assert_int_equal(fsm_restore(b.f, buf, len), ERR_CORRUPT);
    free(buf);

    assert_int_equal(tfsm_digest(&b), before);

    /* The same builder's valid stream restores (the tests above fail for
     * the defect they name, not for the builder). */
    memset(&s, 0, sizeof s);
    s_db(&s, "meta", 2);
    s_rec(&s, "a", "1");
    s_rec(&s, "b", "2");
    buf = make_v2(s.b, s.n, 1, &len);
    assert_int_equal(fsm_restore(b.f, buf, len), 0);
    assert_int_equal(fsm_applied_index(b.f), 77);
    assert_int_not_equal(tfsm_digest(&b), before);
    free(buf);
    tfsm_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_snapshot_blocks_and_chunks),
        cmocka_unit_test(test_snapshot_default_blocks),
        cmocka_unit_test(test_snapshot_v1_restores),
        cmocka_unit_test(test_snapshot_corrupt_keeps_state),
        cmocka_unit_test(test_snapshot_crafted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
