"""Secure mode: a client that resumes its cached TLS session (libcurl,
Node's undici and Python do by default) is served, not dropped. The node
asks for a client certificate; without a session id context OpenSSL
refused every resumed handshake."""

import socket
import ssl
import subprocess

from conftest import ROTACTL


def get_healthz(addr, ctx, session=None):
    host, port = addr.split(":")
    raw = socket.create_connection((host, int(port)), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname=host, session=session)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0], s.session, s.session_reused
    finally:
        s.close()


def test_resumed_tls_session_is_served(cluster, tmp_path):
    certs = str(tmp_path / "certs")
    for args in (["create-ca"], ["create-node", "127.0.0.1"]):
        subprocess.run([ROTACTL, "cert", args[0], "--certs-dir", certs, *args[1:]],
                       check=True, capture_output=True, timeout=30)
    c = cluster(1, ["--certs-dir", certs])
    node = c.leader()
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ssl.create_default_context(cafile=c.ca)
        ctx.maximum_version = version
        line, session, reused = get_healthz(node.http, ctx)
        assert line.endswith(b"200 OK") and not reused
        assert session is not None
        line, _, reused = get_healthz(node.http, ctx, session)
        assert line.endswith(b"200 OK"), (version, line)
        assert reused, version
