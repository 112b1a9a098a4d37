"""The raft port in --insecure mode (cluster/tls_transport.c, plain mode).

raft's own TCP transport (raft_uv_tcp_init) listened with a backlog of 1
and no deadline: 100 peers that connected and never spoke were held open
for 75 s and opening them took 18 s. The plain mode reads raft's transport
handshake within 5 s (TLS_TRANSPORT_HANDSHAKE_MS) or closes."""

import select
import socket
import time

from conftest import submit


def _closed(sock):
    """True once the server closed @sock (EOF or reset)."""
    r, _, _ = select.select([sock], [], [], 0)
    if not r:
        return False
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, OSError):
        return True


def test_silent_raft_peers_closed_cluster_serves(cluster):
    c = cluster(3)
    target = c.followers()[0]
    host, port = target.raft.rsplit(":", 1)

    t0 = time.monotonic()
    socks = []
    for _ in range(20):
        s = socket.create_connection((host, int(port)), timeout=5)
        socks.append(s)
    opened = time.monotonic() - t0
    assert opened < 5, f"opening 20 connections took {opened:.1f} s"

    try:
        # Meanwhile the cluster serves writes, through the node under
        # attack too.
        for node in (c.leader(), target):
            job = submit(node, {"type": "order"})
            assert job["id"]

        closed_at = {}
        deadline = t0 + 15
        while len(closed_at) < len(socks) and time.monotonic() < deadline:
            for i, s in enumerate(socks):
                if i not in closed_at and _closed(s):
                    closed_at[i] = time.monotonic() - t0
            time.sleep(0.05)
        assert len(closed_at) == len(socks), (
            f"{len(socks) - len(closed_at)} of {len(socks)} silent "
            f"connections still open after 15 s")
        print(f"20 silent connections closed after "
              f"{min(closed_at.values()):.2f}-{max(closed_at.values()):.2f} s")
        assert min(closed_at.values()) >= 4, "closed before the 5 s deadline"

        job = submit(target, {"type": "order"})
        assert job["id"]
        assert "handshake timeout" in target.log_text()
    finally:
        for s in socks:
            s.close()
