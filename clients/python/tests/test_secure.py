"""Secure mode (HTTPS with the cluster CA, access control on): the client
and the worker with tokens of their roles."""

import subprocess
import threading

import pytest

import rota
from conftest import ROTACTL, it, make_client


def test_secure_cluster_with_tokens(cluster, tmp_path):
    certs = str(tmp_path / "certs")
    for args in (["create-ca"], ["create-node", "127.0.0.1"]):
        subprocess.run([ROTACTL, "cert", args[0], "--certs-dir", certs, *args[1:]],
                       check=True, capture_output=True, timeout=30)
    c = cluster(3, ["--certs-dir", certs])
    submit_token, worker_token, read_token = (c.make_token(r) for r in ("submit", "worker", "read"))
    for t in (submit_token, worker_token, read_token):
        c.wait_token_known(t)
    cl = make_client(c, token=submit_token)
    assert cl.leader() is not None
    job = cl.submit("py.secure", {"x": 1}, queue="py-sec")
    assert cl.get(job["id"])["status"] == "pending"
    assert [j["id"] for j in cl.list(queue="py-sec")] == [job["id"]]

    # A worker with a worker token runs it over HTTPS.
    wcl = make_client(c, token=worker_token)
    w = rota.Worker(wcl, queues=["py-sec"], concurrency=1, name="py-secure")

    @w.handler("py.secure")
    def handle(j):
        return {"x": j["payload"]["x"] + 1}
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    try:
        assert it.done(c, job["id"])["result"] == {"x": 2}
    finally:
        w.stop()
        t.join(60)
    assert not t.is_alive()

    # No token, or a token without the role: the API's errors.
    anon = make_client(c, token=None, batch_linger=0)
    with pytest.raises(rota.APIError) as e:
        anon.get(job["id"])
    assert (e.value.status, e.value.code) == (401, "unauthenticated")
    reader = make_client(c, token=read_token)
    assert reader.get(job["id"])["status"] == "completed"
    with pytest.raises(rota.APIError) as e:
        reader.submit("noop", queue="py-sec")
    assert (e.value.status, e.value.code) == (403, "forbidden")
    # Without the CA the server's certificate is not trusted.
    untrusting = rota.Client([f"https://{n.http}" for n in c.nodes], token=submit_token,
                             batch_linger=0, retry_for=0.5)
    with pytest.raises(rota.APIError) as e:
        untrusting.get(job["id"])
    assert e.value.status == 0 and "CERTIFICATE_VERIFY_FAILED" in e.value.message
