"""Secure mode (issue 11): a 3-node cluster started with --certs-dir (made
by rotactl cert) serves HTTPS only, talks raft over mutual TLS, forwards
over HTTPS, runs a worker's jobs over HTTPS; strangers on the raft port
(plain TCP, or TLS with another CA's certificate) are dropped before raft:
the term and the leader do not move; a node with another CA's certificate
cannot join."""

import os
import socket
import ssl
import subprocess
import time

import pytest

from conftest import BUILD, Cluster, request, submit, wait_until, done

ROTACTL = os.path.join(BUILD, "ctl", "rotactl")


def make_certs(d, *hosts):
    for args in (["create-ca"], ["create-node", *hosts]):
        p = subprocess.run([ROTACTL, "cert", args[0], "--certs-dir", d, *args[1:]],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
    return d


@pytest.fixture
def secure(tmp_path):
    certs = make_certs(str(tmp_path / "certs"), "127.0.0.1", "localhost")
    c = Cluster(3, ["--certs-dir", certs]).start()
    yield c
    c.stop()


def test_security_https_only_and_forwarding(secure, worker_built):
    c = secure
    leader, follower = c.leader(), c.followers()[0]
    st, _, view = follower.req("GET", "/v1/cluster")
    assert st == 200 and view["secure"] is True
    # Plain HTTP to the HTTPS port gets no HTTP answer.
    with pytest.raises(Exception):
        request(follower.http, "GET", "/v1/cluster", timeout=3)
    # HTTPS that does not trust the cluster CA is refused by the client.
    with pytest.raises(ssl.SSLError):
        ctx = ssl.create_default_context()
        s = ctx.wrap_socket(socket.create_connection(tuple_of(follower.http), timeout=3),
                            server_hostname="127.0.0.1")
        s.close()
    # A write through a follower is forwarded to the leader over HTTPS.
    job = submit(follower, {"type": "noop"})
    c.start_worker("w1")
    j = done(c, job["id"])
    assert j["attempts"] == 1


def tuple_of(addr):
    host, port = addr.split(":")
    return host, int(port)


def term_and_leader(c):
    _, _, v = c.leader().req("GET", "/v1/cluster")
    return v["term"], v["leader"]["id"]


def test_security_strangers_on_the_raft_port(secure, tmp_path):
    c = secure
    before = term_and_leader(c)
    target = tuple_of(c.leader().raft)
    # Plain TCP: raft's handshake bytes and garbage with a huge "term".
    for payload in (b"\x01" + b"\x00" * 7 + b"\x63" + b"\x00" * 7 + b"\xff" * 64,
                    b"GET / HTTP/1.0\r\n\r\n"):
        s = socket.create_connection(target, timeout=3)
        try:
            s.sendall(payload)
            s.settimeout(3)
            try:
                assert s.recv(100) == b""  # Closed on us, nothing said.
            except ConnectionResetError:
                pass
        finally:
            s.close()
    # TLS with a certificate from another CA: the handshake fails.
    other = make_certs(str(tmp_path / "other"), "127.0.0.1")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(os.path.join(other, "node.crt"), os.path.join(other, "node.key"))
    refused = False
    try:
        s = ctx.wrap_socket(socket.create_connection(target, timeout=3))
        s.sendall(b"\x01" + b"\x00" * 200)
        s.settimeout(3)
        refused = s.recv(100) == b""
        s.close()
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, socket.timeout):
        refused = True
    assert refused
    time.sleep(1.0)
    assert term_and_leader(c) == before
    logs = "".join(n.log_text() for n in c.nodes)
    assert 'msg="raft peer refused"' in logs
    # The cluster still works.
    submit(c.followers()[0], {"type": "noop"})


def test_security_node_of_another_ca_cannot_join(secure, tmp_path):
    c = secure
    other = make_certs(str(tmp_path / "other"), "127.0.0.1", "localhost")
    before = term_and_leader(c)
    from conftest import Node
    n = Node(c, 4)
    n.start(["--join", f"https://{c.leader().http}", "--certs-dir", other])
    time.sleep(3)
    _, _, v = c.leader().req("GET", "/v1/cluster")
    assert 4 not in [m["id"] for m in v["nodes"]], v
    assert term_and_leader(c) == before
    n.kill()


def test_security_access_control_is_on(secure):
    """Secure mode turns access control on: no token or a bad one is 401,
    a token of the wrong role 403; the status routes need none."""
    c = secure
    f = c.followers()[0]
    st, _, _ = f.req("GET", "/v1/cluster", headers={"Authorization": None})
    assert st == 200
    st, _, err = f.req("POST", "/v1/jobs", {"type": "noop"}, headers={"Authorization": None})
    assert st == 401 and err["error"]["code"] == "unauthenticated", err
    st, _, err = f.req("GET", "/v1/jobs", headers={"Authorization": "Bearer " + "0" * 64})
    assert st == 401, err
    worker = c.make_token("worker")
    # A token made on the leader reaches the follower with the next heartbeat.
    st, _, err = wait_until(lambda: (lambda r: r if r[0] != 401 else None)(
        f.req("POST", "/v1/jobs", {"type": "noop"},
              headers={"Authorization": f"Bearer {worker}"})), what="token replicated")
    assert st == 403 and err["error"]["code"] == "forbidden", err
    reader = c.make_token("read")
    st, _, _ = wait_until(lambda: (lambda r: r if r[0] != 401 else None)(
        f.req("GET", "/v1/jobs", headers={"Authorization": f"Bearer {reader}"})),
        what="token replicated")
    assert st == 200
    st, _, again = c.leader().req("POST", "/v1/acl/bootstrap", {})
    assert st == 403, again


def test_security_failover_restart_join_remove(secure):
    """Node-to-node traffic in secure mode across a leader kill, a restart,
    a join (over HTTPS, an admin adding it) and a removal."""
    import signal
    c = secure
    old = c.leader()
    old.kill(signal.SIGKILL)
    wait_until(lambda: (lambda v: v and v["leader"] and v["leader"]["id"] != old.id)(
        c.view(c.alive()[0])), timeout=20, what="a new leader")
    job = submit(c.alive()[0], {"type": "noop"})
    c.restart(old)
    c.wait_converged(c.alive(), timeout=30)
    assert c.job(job["id"])["status"] in ("pending", "completed")
    # Join: a node with a certificate of the same CA, admitted by an admin
    # first (membership changes need the admin role), then started.
    from conftest import Node
    n4 = Node(c, 4)
    n4.start(["--join", f"https://{c.followers()[0].http}"] + c.flags)
    st, _, resp = c.leader().req("POST", "/v1/cluster/nodes",
                                 {"id": 4, "raft_addr": n4.raft, "http_addr": n4.http},
                                 timeout=30)
    assert st == 200, resp
    c.nodes.append(n4)
    wait_until(lambda: (lambda v: v and sum(1 for x in v["nodes"] if x["voter"]) == 4)(
        c.view(c.leader())), timeout=30, what="4 voters")
    c.wait_converged(c.alive(), timeout=30)
    st, _, resp = c.leader().req("DELETE", "/v1/cluster/nodes/4")
    assert st == 200, resp
    wait_until(lambda: (lambda v: v and 4 not in [x["id"] for x in v["nodes"]])(
        c.view(c.leader())), timeout=20, what="node 4 removed")
    n4.kill()
    submit(c.followers()[0], {"type": "noop"})


def test_security_expired_certificates(secure, tmp_path):
    """A node whose certificate has expired refuses to start and says so; a
    peer showing an expired certificate of the cluster CA is refused on the
    raft port with OpenSSL's reason in the log."""
    c = secure
    certs = os.path.dirname(c.ca)
    exp = tmp_path / "expired"
    exp.mkdir()
    key, csr, ext, crt = (str(exp / f) for f in ("node.key", "r.csr", "ext", "node.crt"))
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", key], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=127.0.0.1",
                    "-out", csr], check=True, capture_output=True)
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", c.ca, "-CAkey",
                    os.path.join(certs, "ca.key"), "-CAcreateserial", "-days", "0",
                    "-extfile", ext, "-out", crt], check=True, capture_output=True)
    subprocess.run(["cp", c.ca, str(exp / "ca.crt")], check=True)
    time.sleep(1.1)
    from conftest import ROTAD, free_port
    p = subprocess.run([ROTAD, "--certs-dir", str(exp), "--data-dir", str(exp / "d"),
                        "--raft-addr", f"127.0.0.1:{free_port()}",
                        "--http-addr", f"127.0.0.1:{free_port()}"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1 and "has expired" in p.stderr, p.stderr
    before = term_and_leader(c)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(crt, key)
    try:
        s = ctx.wrap_socket(socket.create_connection(tuple_of(c.leader().raft), timeout=3))
        s.sendall(b"\x01" + b"\x00" * 200)
        s.settimeout(3)
        s.recv(100)
        s.close()
    except (ssl.SSLError, OSError):
        pass
    wait_until(lambda: "certificate has expired" in "".join(n.log_text() for n in c.nodes),
               timeout=10, what="the refusal logged")
    assert term_and_leader(c) == before


def test_security_rotactl_reads_quickstart_dir(secure, tmp_path):
    """The README's promise: rotactl run where a quickstart's .rota/ is
    uses its CA and admin token by itself; elsewhere it has neither."""
    import shutil
    c = secure
    qs = tmp_path / "qs"
    (qs / ".rota" / "certs").mkdir(parents=True)
    shutil.copy(c.ca, qs / ".rota" / "certs" / "ca.crt")
    (qs / ".rota" / "token").write_text(c.token + "\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("ROTA_CA_FILE", "ROTA_TOKEN", "ROTA_TOKEN_FILE")}
    env["ROTA_SERVER"] = f"https://{c.followers()[0].http}"
    ok = subprocess.run([ROTACTL, "list"], cwd=qs, env=env, capture_output=True,
                        text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    bare = tmp_path / "bare"
    bare.mkdir()
    no = subprocess.run([ROTACTL, "list"], cwd=bare, env=env, capture_output=True,
                        text=True, timeout=30)
    assert no.returncode != 0
