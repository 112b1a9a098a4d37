"""Hardened edges of the HTTP server (http/server.c, http/reply.c): output
bounded per connection (list pages capped in bytes, a write timeout, a cap on
answers buffered at once), strict HTTP/1 framing (400 + close) and the JSON
error shape for every error, h2o's own included. Raw sockets, real rotad
processes, 127.0.0.1 only."""

import json
import os
import socket
import struct
import time

import pytest

from conftest import Cluster, ROTAD, _finish, request, wait_until

PAGE_MAX = 4 << 20  # http_config.page_max_bytes default (docs/api.md).
WRITE_TIMEOUT_MS = 2000  # --write-timeout for the node under load.
N_JOBS = 300
BLOB = 60_000  # Bytes of payload per job.


# ---- Raw HTTP/1 helpers -----------------------------------------------------

def connect(addr, rcvbuf=None, timeout=5.0):
    host, port = addr.split(":")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((host, int(port)))
    return s


def read_all(s, deadline_s=10.0, max_bytes=64 << 20):
    """Everything until EOF or reset: (bytes, how) with how "eof", "reset"
    or "timeout" (the server kept the connection open)."""
    out = bytearray()
    end = time.monotonic() + deadline_s
    while len(out) < max_bytes:
        left = end - time.monotonic()
        if left <= 0:
            return bytes(out), "timeout"
        s.settimeout(left)
        try:
            b = s.recv(1 << 16)
        except socket.timeout:
            return bytes(out), "timeout"
        except ConnectionResetError:
            return bytes(out), "reset"
        if not b:
            return bytes(out), "eof"
        out += b
    return bytes(out), "too much"


def responses(data):
    """Split raw HTTP/1 responses (Content-Length framed): [(status,
    headers, body)]; a trailing partial response is ignored."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hs[k.strip().lower()] = v.strip()
        n = int(hs.get("content-length", len(rest)))
        out.append((status, hs, rest[:n]))
        data = rest[n:]
    return out


def exchange(addr, data):
    """Send @data at once; the answers until the server closes."""
    s = connect(addr)
    try:
        s.sendall(data)
        got, how = read_all(s, deadline_s=10.0)
    finally:
        s.close()
    return responses(got), how


def assert_json_error(status_want, resp):
    status, hs, body = resp
    assert status == status_want, (status, body)
    assert hs.get("content-type", "").startswith("application/json"), hs
    doc = json.loads(body)
    assert set(doc) == {"error"}, doc
    assert isinstance(doc["error"]["code"], str) and doc["error"]["code"], doc
    assert isinstance(doc["error"]["message"], str), doc
    return doc["error"]


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"


# ---- Strict framing ---------------------------------------------------------

FRAMING = {
    "cl_and_te": b"POST /v1/jobs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"2\r\n{}\r\n0\r\n\r\n",
    "te_and_cl": b"POST /v1/jobs HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "cl_twice_same": b"POST /v1/jobs HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
                     b"Content-Length: 2\r\n\r\n{}",
    "cl_twice_different": b"POST /v1/jobs HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
                          b"Content-Length: 40\r\n\r\n{}",
    "obs_fold_space": b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Note: a\r\n  folded\r\n\r\n",
    "obs_fold_tab": b"POST /v1/jobs HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nX-Note: a\r\n"
                    b"\tfolded\r\n\r\n{}",
    "chunk_size_not_hex": b"POST /v1/jobs HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"zz\r\n{}\r\n0\r\n\r\n",
    "chunk_size_negative": b"POST /v1/jobs HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"-2\r\n{}\r\n0\r\n\r\n",
    "chunk_size_overflow": b"POST /v1/jobs HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"1" * 40 + b"\r\n{}\r\n0\r\n\r\n",
    "chunk_longer_than_size": b"POST /v1/jobs HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"1\r\n{}\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(FRAMING))
def test_edges_framing_400_and_close(shared_cluster, case):
    """One JSON 400, then the connection closes: the request smuggled after
    it (a healthz) is never answered."""
    node = shared_cluster.leader()
    got, how = exchange(node.http, FRAMING[case] + HEALTHZ)
    assert how in ("eof", "reset"), (case, how, got)
    assert len(got) == 1, (case, got)
    err = assert_json_error(400, got[0])
    assert err["code"] == "invalid_argument", err
    assert got[0][1].get("connection") == "close", got[0][1]
    # The node still serves.
    assert request(node.http, "GET", "/healthz")[0] == 200


def test_edges_framing_good_requests_still_pipeline(shared_cluster):
    """The checks do not touch well-framed requests: chunked alone,
    Content-Length alone and a plain GET, pipelined, are all answered."""
    node = shared_cluster.leader()
    body = b'{"type":"edges.noop","queue":"edges-ok"}'
    chunked = (b"POST /v1/jobs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body +
               b"\r\n0\r\n\r\n")
    plain = (b"POST /v1/jobs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             b"Content-Length: %d\r\n\r\n" % len(body) + body)
    last = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    got, how = exchange(node.http, chunked + plain + last)
    assert [r[0] for r in got] == [201, 201, 200], got


# ---- JSON for every error -------------------------------------------------

def test_edges_percent_ff_path_is_json_404(shared_cluster):
    node = shared_cluster.leader()
    got, _ = exchange(node.http, b"GET /%ff HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert len(got) == 1
    assert assert_json_error(404, got[0])["code"] == "not_found"


def test_edges_percent_ff_status_is_json_400(shared_cluster):
    node = shared_cluster.leader()
    got, _ = exchange(node.http, b"GET /v1/jobs?status=%ff HTTP/1.1\r\nHost: t\r\n"
                                 b"Connection: close\r\n\r\n")
    assert len(got) == 1
    err = assert_json_error(400, got[0])
    assert err["code"] == "invalid_argument" and err.get("field") == "status", err


def test_edges_oversized_bodies_are_json_413(shared_cluster):
    node = shared_cluster.leader()
    # Over --max-body (1 MiB): our own check, after h2o read the body.
    big = b"x" * (2 << 20)
    got, _ = exchange(node.http, b"POST /v1/jobs HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                                 b"Content-Length: %d\r\n\r\n" % len(big) + big)
    assert len(got) == 1
    assert assert_json_error(413, got[0])["code"] == "too_large"
    # Far over it: h2o refuses on the header alone (its own 413, rewritten).
    got, how = exchange(node.http, b"POST /v1/jobs HTTP/1.1\r\nHost: t\r\n"
                                   b"Content-Length: 999999999\r\n\r\n" + HEALTHZ)
    assert len(got) == 1, got
    assert how in ("eof", "reset")
    assert assert_json_error(413, got[0])["code"] == "too_large"


# ---- Output bounds: a queue of big jobs ------------------------------------

@pytest.fixture(scope="module")
def big_cluster(request):
    """One node holding N_JOBS jobs of ~60 KB in queue "big", with a short
    write timeout."""
    if not os.path.exists(ROTAD):
        pytest.fail(f"{ROTAD} is not built")
    c = Cluster(1, ["--write-timeout", str(WRITE_TIMEOUT_MS),
                    "--max-body", str(4 << 20)]).start()
    node = c.leader()
    ids = []
    for first in range(0, N_JOBS, 50):
        batch = [{"type": "edges.big", "queue": "big",
                  "payload": {"i": first + i, "blob": "x" * BLOB}}
                 for i in range(min(50, N_JOBS - first))]
        status, _, resp = node.req("POST", "/v1/jobs", {"jobs": batch}, timeout=30)
        assert status == 201, (status, resp)
        ids += [j["id"] for j in resp["jobs"]]
    c.big_ids = ids
    yield c
    problems = _finish(request, c)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_edges_list_page_bounded_in_bytes(big_cluster):
    """limit=1000 over 300 jobs of 60 KB: pages stop near 4 MiB with a
    next_cursor, and following the cursors yields every job exactly once."""
    node = big_cluster.leader()
    seen = []
    cursor = None
    pages = 0
    while True:
        path = "/v1/jobs?queue=big&limit=1000"
        if cursor:
            path += "&cursor=" + cursor
        status, hs, page = node.req("GET", path, timeout=30)
        assert status == 200, (status, page)
        size = len(json.dumps(page))
        assert 1 <= len(page["jobs"]), page.get("next_cursor")
        assert size <= PAGE_MAX + 2 * BLOB, size
        seen += [j["id"] for j in page["jobs"]]
        pages += 1
        assert pages <= 20
        cursor = page.get("next_cursor")
        if cursor is None:
            break
        # A page cut by bytes: fewer items than the limit, the cap reached.
        assert len(page["jobs"]) < 1000 and size >= PAGE_MAX - 2 * BLOB, size
    assert pages >= 3, pages
    assert len(seen) == len(set(seen)), "a job listed twice"
    assert sorted(seen) == sorted(big_cluster.big_ids)


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


TCP_CLOSE, TCP_CLOSE_WAIT = 7, 8


def tcp_state(s):
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("B", info, 0)[0]


def test_edges_non_reading_clients_are_bounded_and_closed(big_cluster):
    """20 sockets x 5 pipelined 1000-item lists, never read: memory stays
    bounded, /healthz stays fast, and the write timeout closes them all."""
    node = big_cluster.leader()
    pid = node.proc.pid
    base = rss_bytes(pid)
    req = b"GET /v1/jobs?queue=big&limit=1000 HTTP/1.1\r\nHost: t\r\n\r\n"
    socks = []
    try:
        for _ in range(20):
            s = connect(node.http, rcvbuf=4096)
            s.sendall(req * 5)
            socks.append(s)
        peak = base
        slow = []
        closed = False
        end = time.monotonic() + WRITE_TIMEOUT_MS / 1000 + 15
        samples = 0
        while time.monotonic() < end:
            t0 = time.monotonic()
            status = request(node.http, "GET", "/healthz", timeout=5)[0]
            dt = time.monotonic() - t0
            samples += 1
            assert status == 200
            if dt >= 1.0:
                slow.append(dt)
            peak = max(peak, rss_bytes(pid))
            # Closed by the server (FIN: CLOSE_WAIT, or reset: CLOSE),
            # seen without reading a byte.
            if all(tcp_state(s) in (TCP_CLOSE, TCP_CLOSE_WAIT) for s in socks):
                closed = True
                break
            time.sleep(0.2)
        assert not slow, f"/healthz took {slow} s"
        assert samples >= 3
        assert peak - base < 512 << 20, f"RSS grew by {(peak - base) >> 20} MiB"
        states = [tcp_state(s) for s in socks]
        assert closed, f"connections not closed by the server: tcp states {states}"
        # A read now ends (EOF or reset) instead of waiting for more.
        for s in socks:
            _, how = read_all(s, deadline_s=10.0)
            assert how in ("eof", "reset"), how
    finally:
        for s in socks:
            s.close()
    assert "no write progress" in node.log_text()
    st, _, text = node.req("GET", "/metrics")
    closed_metric = [l for l in text.splitlines()
                     if l.startswith("rota_http_connections_stalled_closed_total ")]
    assert closed_metric and float(closed_metric[0].split()[1]) >= 1, closed_metric
    # Nothing stays held: the node answers a big page again.
    status, _, page = node.req("GET", "/v1/jobs?queue=big&limit=1000", timeout=30)
    assert status == 200 and page["jobs"], status


def h2_frame(ftype, flags, stream, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) +
            struct.pack(">I", stream) + payload)


def hpack_literal(index, value):
    """A header field without indexing, name from the static table."""
    value = value.encode()
    assert len(value) < 127
    return bytes([index, len(value)]) + value


def test_edges_http2_client_granting_no_window_is_closed(big_cluster):
    """HTTP/2 prior knowledge on the plain port: a client that reads the
    socket but never sends WINDOW_UPDATE stalls its answers inside h2o (the
    socket is idle, so the socket check cannot see it); the write timeout
    closes the connection all the same."""
    node = big_cluster.leader()
    block = (b"\x82\x86" + hpack_literal(4, "/v1/jobs?queue=big&limit=1000") +
             hpack_literal(1, "t"))  # GET, http, :path, :authority
    s = connect(node.http)
    try:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0) +
                  b"".join(h2_frame(1, 0x5, sid, block) for sid in (1, 3, 5)))
        t0 = time.monotonic()
        got, how = read_all(s, deadline_s=WRITE_TIMEOUT_MS / 1000 + 8)
        took = time.monotonic() - t0
    finally:
        s.close()
    assert how in ("eof", "reset"), (how, len(got))
    # The answers were started (one flow-control window of DATA), then cut.
    assert 60_000 < len(got) < 1 << 20, len(got)
    assert took >= WRITE_TIMEOUT_MS / 1000 - 0.5, took
    assert "http=2" in node.log_text()
    assert request(node.http, "GET", "/healthz")[0] == 200
