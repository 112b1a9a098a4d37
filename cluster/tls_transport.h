/* Mutual-TLS raft transport: a struct raft_uv_transport for raft_uv_init
 * that speaks TLS 1.3 (both ends authenticated against one CA) on the wire
 * and gives raft a plain stream.
 *
 * Each connection is a TCP socket with OpenSSL on memory BIOs. Only after
 * the TLS handshake (and, on accept, raft's transport handshake: protocol,
 * server id, address) does raft get a stream: one end of a socketpair as a
 * uv_pipe_t. The other end is pumped through SSL_read/SSL_write on the
 * loop, both directions, each bounded (a side stops reading while the
 * other side's write queue is above TLS_TRANSPORT_QUEUE_MAX).
 *
 * A peer that fails the TLS handshake (no certificate, another CA, plain
 * bytes, silent past the deadline) is closed before raft sees a byte, with
 * one rate-limited log line. On connect the server certificate must carry
 * an IP SAN equal to the address dialled; on accept the client certificate
 * must carry an IP SAN equal to the host of the raft address it claims.
 *
 * Use:
 *   cluster_tls_transport_init(&t, loop, ca, cert, key, errmsg, size);
 *   raft_uv_init(&io, loop, dir, &t);  ... raft_init, raft_start ...
 *   raft_close(...) -> in its callback: raft_uv_close(&io);
 *                                       cluster_tls_transport_close(&t);
 * raft_uv_init owns t->data; this module keeps its state in t->impl.
 *
 * Plain mode (cluster_plain_transport_init, for --insecure): no TLS and no
 * pump, raft gets the TCP socket itself, but the same edges as TLS mode:
 * listen backlog 128, connect and (on accept) raft's transport handshake
 * within TLS_TRANSPORT_HANDSHAKE_MS, at most TLS_TRANSPORT_MAX_PENDING
 * incoming connections in the handshake, one rate-limited log line per
 * refusal. raft_uv_tcp_init's transport has a backlog of 1 and no
 * deadline: a silent peer was held until it left. */

#ifndef CLUSTER_TLS_TRANSPORT_H_
#define CLUSTER_TLS_TRANSPORT_H_

#include <stddef.h>
#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

/* Per direction, per connection: stop reading the source while the
 * destination's write queue holds more than this. */
#define TLS_TRANSPORT_QUEUE_MAX (4u << 20)

/* TCP connect + TLS handshake (+ raft handshake on accept) must finish in
 * this time; also the most a closing connection lingers to flush. */
#define TLS_TRANSPORT_HANDSHAKE_MS 5000

/* Incoming connections still in the handshake; more are refused. */
#define TLS_TRANSPORT_MAX_PENDING 64

struct cluster_tls_transport_stats
{
    uint64_t accepted;       /* Incoming handed to raft. */
    uint64_t refused;        /* Incoming closed before raft saw a byte. */
    uint64_t connected;      /* Outgoing handed to raft. */
    uint64_t connect_failed; /* Outgoing failed (TCP or TLS). */
    uint64_t open;           /* Connections now open (any state). */
    uint64_t tcp_queue_max;  /* High-water mark of a TCP write queue. */
    uint64_t pipe_queue_max; /* High-water mark of a pipe write queue. */
};

/* Fill @t (any previous content except t->data is overwritten) with a
 * transport using the PEM files given. 0, or non-zero with @errmsg set. */
int cluster_tls_transport_init(struct raft_uv_transport *t,
                               uv_loop_t *loop,
                               const char *ca_file,
                               const char *cert_file,
                               const char *key_file,
                               char *errmsg,
                               size_t size);

/* Fill @t with a plain TCP transport (see above). 0, or non-zero with
 * @errmsg set. Closed with cluster_tls_transport_close. */
int cluster_plain_transport_init(struct raft_uv_transport *t,
                                 uv_loop_t *loop,
                                 char *errmsg,
                                 size_t size);

/* Release the memory of @t. Call after t->close's callback fired (raft_uv
 * calls t->close from raft_close), or if @t was never used. */
void cluster_tls_transport_close(struct raft_uv_transport *t);

/* Side connections: the same port, the same TLS and handshake deadline,
 * and a handshake that says "not raft" (its first word), for node-to-node
 * traffic that is not raft's (cluster/fwd.c). An accepted one goes to @cb
 * with the peer's id, its claimed address (checked against its
 * certificate) and the stream, which @cb then owns: uv_close() it and
 * raft_free() it in the close callback. Until this is called, side
 * handshakes are refused like any bad handshake. */
typedef void (*cluster_side_accept_cb)(void *data,
                                       raft_id id,
                                       const char *address,
                                       uv_stream_t *stream);
void cluster_transport_set_side(struct raft_uv_transport *t,
                                cluster_side_accept_cb cb,
                                void *data);

/* Open a side connection to @address; @cb as raft's connect callback
 * (status 0 and a stream the caller owns, as above, or an error). */
int cluster_transport_dial_side(struct raft_uv_transport *t,
                                struct raft_uv_connect *req,
                                const char *address,
                                raft_uv_connect_cb cb);

void cluster_tls_transport_stats(const struct raft_uv_transport *t,
                                 struct cluster_tls_transport_stats *out);

#endif /* CLUSTER_TLS_TRANSPORT_H_ */
