"""rotactl cert create-ca / create-node: the files, what openssl makes of
them, refusals, and a real mutual-TLS handshake between openssl s_server and
s_client with the node certificate on both ends. No rotad needed."""

import os
import shutil
import stat
import subprocess
import time

import pytest

from conftest import ROTACTL, free_port

OPENSSL = shutil.which("openssl")


@pytest.fixture(autouse=True)
def built():
    if not os.path.exists(ROTACTL):
        pytest.fail(f"{ROTACTL} is not built")
    if OPENSSL is None:
        pytest.fail("the openssl command is needed by these tests")


def cert(*args, umask=None):
    pre = (lambda: os.umask(umask)) if umask is not None else None
    p = subprocess.run([ROTACTL, "cert", *args], capture_output=True, text=True,
                       timeout=30, preexec_fn=pre)
    return p.returncode, p.stdout, p.stderr


def openssl(*args, timeout=30):
    p = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def text(path):
    rc, out = openssl("x509", "-noout", "-text", "-in", str(path))
    assert rc == 0, out
    return out


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def make_ca_and_node(d, *hosts):
    rc, out, err = cert("create-ca", "--certs-dir", str(d))
    assert rc == 0, err
    rc, out, err = cert("create-node", "--certs-dir", str(d), *(hosts or ("127.0.0.1", "localhost")))
    assert rc == 0, err


def test_cert_create_ca_and_node(tmp_path):
    d = tmp_path / "certs"  # Does not exist yet: create-ca makes it, 0700.
    # umask 0: the modes come from the open(), not from the caller's umask.
    rc, out, err = cert("create-ca", "--certs-dir", str(d), umask=0)
    assert rc == 0, err
    assert "ca.crt" in out
    assert mode(d) == 0o700
    rc, out, err = cert("create-node", "--certs-dir", str(d), "127.0.0.1", "localhost",
                        "node1.example", "::1", umask=0)
    assert rc == 0, err
    assert sorted(os.listdir(d)) == ["ca.crt", "ca.key", "node.crt", "node.key"]  # No temp files.
    assert mode(d / "ca.key") == 0o600 and mode(d / "node.key") == 0o600
    assert mode(d / "ca.crt") == 0o644 and mode(d / "node.crt") == 0o644
    assert read(d / "ca.key").startswith(b"-----BEGIN PRIVATE KEY-----")
    assert read(d / "ca.crt").startswith(b"-----BEGIN CERTIFICATE-----")

    rc, out = openssl("verify", "-CAfile", str(d / "ca.crt"), str(d / "node.crt"))
    assert rc == 0 and out.strip().endswith("OK"), out

    ca = text(d / "ca.crt")
    assert "CA:TRUE" in ca
    assert "Certificate Sign, CRL Sign" in ca
    assert "X509v3 Subject Key Identifier" in ca
    assert "NIST CURVE: P-256" in ca and "ecdsa-with-SHA256" in ca

    node = text(d / "node.crt")
    assert "CA:TRUE" not in node
    assert "IP Address:127.0.0.1" in node
    assert "DNS:localhost" in node and "DNS:node1.example" in node
    assert "IP Address:0:0:0:0:0:0:0:1" in node
    assert "TLS Web Server Authentication" in node
    assert "TLS Web Client Authentication" in node
    assert "Digital Signature, Key Encipherment" in node
    assert "X509v3 Authority Key Identifier" in node
    assert "CN = 127.0.0.1" in node
    assert "NIST CURVE: P-256" in node

    # Random 128-bit serials: two certificates never share one.
    serials = {openssl("x509", "-noout", "-serial", "-in", str(d / f))[1] for f in ("ca.crt", "node.crt")}
    assert len(serials) == 2

    # Lifetimes: 3650 days for the CA, 365 for the node.
    day = 86400
    assert openssl("x509", "-noout", "-checkend", str(3640 * day), "-in", str(d / "ca.crt"))[0] == 0
    assert openssl("x509", "-noout", "-checkend", str(3660 * day), "-in", str(d / "ca.crt"))[0] != 0
    assert openssl("x509", "-noout", "-checkend", str(360 * day), "-in", str(d / "node.crt"))[0] == 0
    assert openssl("x509", "-noout", "-checkend", str(370 * day), "-in", str(d / "node.crt"))[0] != 0


def test_cert_create_ca_refuses_to_overwrite(tmp_path):
    d = tmp_path / "certs"
    make_ca_and_node(d)
    before = {f: read(d / f) for f in os.listdir(d)}

    rc, out, err = cert("create-ca", "--certs-dir", str(d))
    assert rc != 0
    assert "already exists" in err and "--overwrite" in err
    rc, out, err = cert("create-node", "--certs-dir", str(d), "localhost")
    assert rc != 0 and "already exists" in err
    assert {f: read(d / f) for f in os.listdir(d)} == before

    rc, out, err = cert("create-ca", "--certs-dir", str(d), "--overwrite")
    assert rc == 0, err
    assert read(d / "ca.crt") != before["ca.crt"] and read(d / "ca.key") != before["ca.key"]
    assert mode(d / "ca.key") == 0o600
    # The old node certificate no longer verifies; a new one does.
    rc, out = openssl("verify", "-CAfile", str(d / "ca.crt"), str(d / "node.crt"))
    assert rc != 0
    rc, out, err = cert("create-node", "--certs-dir", str(d), "--overwrite", "localhost")
    assert rc == 0, err
    rc, out = openssl("verify", "-CAfile", str(d / "ca.crt"), str(d / "node.crt"))
    assert rc == 0 and "OK" in out
    assert sorted(os.listdir(d)) == ["ca.crt", "ca.key", "node.crt", "node.key"]


def test_cert_create_node_usage(tmp_path):
    d = tmp_path / "certs"
    rc, _, err = cert("create-ca", "--certs-dir", str(d))
    assert rc == 0, err

    rc, out, err = cert("create-node", "--certs-dir", str(d))
    assert rc == 2
    assert "at least one HOST" in err and "usage: rotactl cert create-node" in err
    assert not (d / "node.crt").exists() and not (d / "node.key").exists()

    rc, _, err = cert("create-node", "localhost")
    assert rc == 2 and "--certs-dir" in err
    rc, _, err = cert("create-node", "--certs-dir", str(d), "--lifetime", "0", "localhost")
    assert rc == 2 and "--lifetime" in err
    rc, _, err = cert("create-node", "--certs-dir", str(d), "bad host!")
    assert rc != 0 and "bad host!" in err
    rc, _, err = cert("create-ca", "--certs-dir", str(d), "--overwrite", "extra")
    assert rc == 2
    rc, _, err = cert("frobnicate")
    assert rc == 2 and "usage" in err
    rc, _, err = cert()
    assert rc == 2 and "usage" in err
    # Nothing above wrote a node certificate (or left a temp file).
    assert sorted(os.listdir(d)) == ["ca.crt", "ca.key"]

    # Without a CA there is nothing to sign with.
    rc, _, err = cert("create-node", "--certs-dir", str(tmp_path / "none"), "localhost")
    assert rc == 1 and "create-ca" in err


def test_cert_node_of_another_ca_does_not_verify(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make_ca_and_node(a)
    make_ca_and_node(b)
    rc, out = openssl("verify", "-CAfile", str(a / "ca.crt"), str(b / "node.crt"))
    assert rc != 0 and "OK" not in out.split(":")[-1]
    rc, out = openssl("verify", "-CAfile", str(b / "ca.crt"), str(b / "node.crt"))
    assert rc == 0


def test_cert_node_lifetime_capped_by_ca(tmp_path):
    d = tmp_path / "certs"
    rc, _, err = cert("create-ca", "--certs-dir", str(d), "--lifetime", "10")
    assert rc == 0, err
    rc, _, err = cert("create-node", "--certs-dir", str(d), "--lifetime", "365", "localhost")
    assert rc == 0, err
    assert "expires" in err  # The warning.
    rc, _ = openssl("x509", "-noout", "-checkend", str(11 * 86400), "-in", str(d / "node.crt"))
    assert rc != 0


def test_cert_tls_handshake(tmp_path):
    d = tmp_path / "certs"
    make_ca_and_node(d, "127.0.0.1", "localhost", "node1.example")
    port = free_port()
    log = tmp_path / "s_server.log"
    with open(log, "wb") as f:
        server = subprocess.Popen(
            [OPENSSL, "s_server", "-cert", str(d / "node.crt"), "-key", str(d / "node.key"),
             "-CAfile", str(d / "ca.crt"), "-Verify", "1", "-verify_return_error",
             "-accept", f"127.0.0.1:{port}"],
            # A pipe held open: on end of input s_server stops serving.
            stdin=subprocess.PIPE, stdout=f, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while b"ACCEPT" not in read(log):
            assert server.poll() is None, read(log)
            assert time.monotonic() < deadline, "s_server did not start"
            time.sleep(0.05)
        p = subprocess.run(
            [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}",
             "-cert", str(d / "node.crt"), "-key", str(d / "node.key"),
             "-CAfile", str(d / "ca.crt"), "-verify_return_error",
             "-verify_ip", "127.0.0.1"],
            input="", capture_output=True, text=True, timeout=20)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "Verify return code: 0 (ok)" in p.stdout, p.stdout + p.stderr
        # The server checked the client's certificate too (-Verify 1).
        deadline = time.monotonic() + 5
        while b"CONNECTION CLOSED" not in read(log) and time.monotonic() < deadline:
            time.sleep(0.05)
        srv = read(log).decode(errors="replace")
        assert "Client certificate" in srv and "subject=O = Rota, CN = 127.0.0.1" in srv, srv
        assert "CIPHER is" in srv and "verify error" not in srv, srv

        # A client whose certificate another CA signed is turned away.
        other = tmp_path / "other"
        make_ca_and_node(other, "127.0.0.1")
        p = subprocess.run(
            [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}",
             "-cert", str(other / "node.crt"), "-key", str(other / "node.key"),
             "-CAfile", str(d / "ca.crt"), "-verify_return_error"],
            input="", capture_output=True, text=True, timeout=20)
        deadline = time.monotonic() + 5
        while b"verify error" not in read(log) and time.monotonic() < deadline:
            time.sleep(0.05)
        srv = read(log).decode(errors="replace")
        assert "verify error" in srv, srv + p.stdout + p.stderr
    finally:
        server.stdin.close()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
