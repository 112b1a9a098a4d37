#ifndef CLUSTER_SNAPFILE_H_
#define CLUSTER_SNAPFILE_H_

/* The backup file of the whole replicated state (GET /v1/snapshot, rotactl
 * snapshot save, rotad --restore; docs/operations.md "Backup, restore and
 * disaster recovery"): a fixed header, then the fsm snapshot bytes
 * (fsm_snapshot_write()) as they are.
 *
 *   offset  size  field (integers little-endian)
 *        0     8  magic "ROTASNAP"
 *        8     4  format version (1)
 *       12     4  header length in bytes (80)
 *       16     8  applied index of the state
 *       24     8  raft term of the node that wrote it, when it wrote it
 *       32     8  body length in bytes
 *       40    32  SHA-256 of the body
 *       72     8  id of the node that wrote it
 *
 * Header only (no library): included by the HTTP layer, cluster/recover.c
 * and rotactl, each hashing with its own OpenSSL. */

#include <stdint.h>
#include <string.h>

#define SNAPFILE_MAGIC "ROTASNAP"
#define SNAPFILE_VERSION 1
#define SNAPFILE_HEADER_LEN 80

struct snapfile_header
{
    uint32_t version;
    uint32_t header_len;
    uint64_t index;
    uint64_t term;
    uint64_t body_len;
    unsigned char sha256[32];
    uint64_t node_id;
};

static inline void snapfile__put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static inline uint64_t snapfile__get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline void snapfile_encode(const struct snapfile_header *h,
                                   unsigned char out[SNAPFILE_HEADER_LEN])
{
    memset(out, 0, SNAPFILE_HEADER_LEN);
    memcpy(out, SNAPFILE_MAGIC, 8);
    snapfile__put64(out + 8, (uint64_t)SNAPFILE_VERSION |
                                 ((uint64_t)SNAPFILE_HEADER_LEN << 32));
    snapfile__put64(out + 16, h->index);
    snapfile__put64(out + 24, h->term);
    snapfile__put64(out + 32, h->body_len);
    memcpy(out + 40, h->sha256, 32);
    snapfile__put64(out + 72, h->node_id);
}

/* 0, or a message saying why @p (@len bytes, at least the header) is not
 * a snapshot header this version reads. */
static inline const char *snapfile_decode(const unsigned char *p,
                                          size_t len,
                                          struct snapfile_header *h)
{
    uint64_t vh;
    if (len < SNAPFILE_HEADER_LEN) {
        return "shorter than a snapshot header (truncated?)";
    }
    if (memcmp(p, SNAPFILE_MAGIC, 8) != 0) {
        return "not a Rota snapshot (no ROTASNAP magic)";
    }
    vh = snapfile__get64(p + 8);
    h->version = (uint32_t)vh;
    h->header_len = (uint32_t)(vh >> 32);
    if (h->version != SNAPFILE_VERSION ||
        h->header_len != SNAPFILE_HEADER_LEN) {
        return "snapshot format version not supported by this build";
    }
    h->index = snapfile__get64(p + 16);
    h->term = snapfile__get64(p + 24);
    h->body_len = snapfile__get64(p + 32);
    memcpy(h->sha256, p + 40, 32);
    h->node_id = snapfile__get64(p + 72);
    return 0;
}

static inline void snapfile_hex(const unsigned char sha[32], char out[65])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = digits[sha[i] >> 4];
        out[2 * i + 1] = digits[sha[i] & 15];
    }
    out[64] = '\0';
}

#endif /* CLUSTER_SNAPFILE_H_ */
