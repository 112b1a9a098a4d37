"""Who ran each attempt (issue 15 item 7): every ended attempt of a job
names the worker as it registered (worker_name, worker_host) beside its id,
and keeps them after the worker is gone. Real rotad x3 and rota-worker
processes; rota-worker registers its hostname as "host"."""

import signal
import socket

import pytest

from conftest import done, submit, wait_until

TTL = ["--worker-ttl", "2000"]
HOST = socket.gethostname()

pytestmark = pytest.mark.usefixtures("worker_built")


def who(job):
    return [(h["outcome"], h["worker_name"], h["worker_host"]) for h in job["history"]]


def workers(node):
    status, _, body = node.req("GET", "/v1/workers")
    assert status == 200, body
    return {w["name"]: w for w in body["workers"]}


def test_retry_across_two_workers_keeps_both_names(cluster, tmp_path):
    """Attempt 1 on att-a (given back when att-a stops: its drain times
    out), attempt 2 on att-b; both names stay, in order, once both workers
    have deregistered, on every node."""
    c = cluster(flags=TTL)
    mark = tmp_path / "first-run"
    a = c.start_worker("att-a", concurrency=1, extra=("--allow-shell", "--drain-timeout", "1"))
    wait_until(lambda: "att-a" in workers(c.leader()), what="att-a registered")
    assert workers(c.leader())["att-a"]["host"] == HOST
    job = submit(c.leader(), {"type": "shell", "max_attempts": 3, "backoff": {"initial": "50ms"},
                              "payload": {"cmd": f"if [ -e {mark} ]; then echo second; "
                                                 f"else touch {mark}; exec sleep 60; fi"}})
    wait_until(mark.exists, what="the first attempt running on att-a")
    a.send_signal(signal.SIGTERM)
    assert a.wait(timeout=20) == 0
    j = c.job(job["id"])
    assert j["status"] in ("pending", "scheduled"), j
    assert who(j) == [("failed", "att-a", HOST)], j["history"]

    b = c.start_worker("att-b", concurrency=1)
    j = done(c, job["id"])
    assert j["output"] == "second\n"
    assert who(j) == [("failed", "att-a", HOST), ("completed", "att-b", HOST)]
    ids = [h["worker_id"] for h in j["history"]]
    assert ids[0] != ids[1]

    b.send_signal(signal.SIGTERM)
    assert b.wait(timeout=20) == 0
    wait_until(lambda: workers(c.leader()) == {}, what="both workers deregistered")
    c.wait_converged()
    for n in c.nodes:
        status, _, j = n.req("GET", f"/v1/jobs/{job['id']}")
        assert status == 200
        assert who(j) == [("failed", "att-a", HOST), ("completed", "att-b", HOST)], n.id
        assert [h["worker_id"] for h in j["history"]] == ids


def test_lost_lease_records_the_killed_worker(cluster, tmp_path):
    """SIGKILL the worker while the job runs: the lease is lost when the
    worker is declared down, and that attempt names it."""
    c = cluster(flags=TTL)
    mark = tmp_path / "first-run"
    w = c.start_worker("att-killed", concurrency=1)
    job = submit(c.leader(), {"type": "shell", "max_attempts": 2, "backoff": {"initial": "50ms"},
                              "payload": {"cmd": f"if [ -e {mark} ]; then echo again; "
                                                 f"else touch {mark}; exec sleep 60; fi"}})
    wait_until(mark.exists, what="the job running on att-killed")
    w.kill()
    w.wait()

    def lost():
        j = c.job(job["id"])
        return j if j.get("history") else None
    j = wait_until(lost, timeout=20, what="the lost attempt recorded")
    assert who(j) == [("lost", "att-killed", HOST)], j["history"]
    assert j["history"][0]["error"] == "lease lost: worker down"
    assert workers(c.leader())["att-killed"]["state"] == "down"

    c.start_worker("att-next", concurrency=1)
    j = done(c, job["id"], timeout=20)
    assert who(j) == [("lost", "att-killed", HOST), ("completed", "att-next", HOST)]
    c.wait_converged()


def test_cancelled_attempt_names_its_worker(shared_cluster, tmp_path):
    c = shared_cluster
    mark = tmp_path / "running"
    w = c.start_worker("att-cancel", concurrency=1, queues="att-cancel")
    job = submit(c.leader(), {"type": "shell", "queue": "att-cancel",
                              "payload": {"cmd": f"touch {mark}; exec sleep 60"}})
    wait_until(mark.exists, what="the job running")
    status, _, j = c.followers()[0].req("DELETE", f"/v1/jobs/{job['id']}")
    assert status == 200, j
    j = c.job(job["id"])
    assert who(j) == [("cancelled", "att-cancel", HOST)]
    w.send_signal(signal.SIGTERM)
    assert w.wait(timeout=20) == 0


def register(node, body):
    return node.req("POST", "/v1/workers", body)


def test_registration_host(shared_cluster):
    """host is optional (absent or null: GET /v1/workers shows null), else a
    string of 1..256 bytes like name; bad ones answer 400 field "host"."""
    node = shared_cluster.followers()[0]
    base = {"queues": ["att-reg"], "concurrency": 1}
    for host in ("", "h" * 257, 7, ["x"], {"a": 1}):
        status, _, body = register(node, dict(base, name="att-bad", host=host))
        assert status == 400, (host, body)
        assert body["error"]["field"] == "host", body
        assert body["error"]["code"] == "invalid_argument", body
    made = {}
    for name, extra in (("att-none", {}), ("att-null", {"host": None}),
                        ("att-h", {"host": "h" * 256}), ("att-u", {"host": "m\u00e4schine-1"})):
        status, _, body = register(node, dict(base, name=name, **extra))
        assert status == 201, body
        made[name] = body
    shared_cluster.wait_converged()
    for n in shared_cluster.nodes:
        ws = workers(n)
        assert ws["att-none"]["host"] is None
        assert ws["att-null"]["host"] is None
        assert ws["att-h"]["host"] == "h" * 256
        assert ws["att-u"]["host"] == "m\u00e4schine-1"
    for body in made.values():  # Cleanup (a worker declared down already answers 404).
        status, _, _ = node.req("DELETE", f"/v1/workers/{body['id']}",
                                headers={"X-Rota-Worker-Secret": body["secret"]})
        assert status in (200, 204, 404)
