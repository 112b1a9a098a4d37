"""rota.Worker against a real cluster: results, retries, permanent
failures, cancellation, draining on stop() and on SIGTERM."""

import os
import signal
import subprocess
import sys
import threading
import uuid

import pytest

import rota
from conftest import it, make_client, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))


def uniq(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Running:
    """A Worker's run() in a thread; stop() drains and joins it."""

    def __init__(self, worker):
        self.worker = worker
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.worker.run()
        except BaseException as e:  # Reported by stop().
            self.error = e

    def stop(self, timeout=60):
        self.worker.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "run() did not return after stop()"
        assert self.error is None, self.error


@pytest.fixture
def run_worker():
    started = []

    def start(worker):
        r = Running(worker)
        started.append(r)
        return r
    yield start
    for r in started:
        if r.thread.is_alive():
            r.stop()


def workers(c):
    st, _, body = c.leader().req("GET", "/v1/workers")
    assert st == 200, body
    return body["workers"]


def test_worker_runs_jobs_with_results(shared_cluster, run_worker):
    c = shared_cluster
    q = uniq("pyw")
    cl = make_client(c)
    seen = []
    w = rota.Worker(cl, queues=[q], concurrency=4, name=uniq("pyw"))

    @w.handler("py.double")
    def double(job):
        seen.append((job["id"], job["attempt"], job["lease_token"], job["cancelled"].is_set()))
        return {"n": job["payload"]["n"] * 2}
    r = run_worker(w)
    jobs = [cl.submit("py.double", {"n": i}, queue=q) for i in range(12)]
    for i, j in enumerate(jobs):
        done = it.done(c, j["id"])
        assert done["result"] == {"n": 2 * i}, done
        assert done["attempts"] == 1
    assert sorted(s[0] for s in seen) == sorted(j["id"] for j in jobs)
    assert all(s[1] == 1 and isinstance(s[2], int) and s[2] > 0 and not s[3] for s in seen), seen
    mine = [x for x in workers(c) if x["name"] == w.name]
    assert len(mine) == 1 and mine[0]["state"] == "alive" and mine[0]["types"] in (["py.double"], "py.double")
    r.stop()
    # Deregistered on the way out.
    wait_until(lambda: all(x["name"] != w.name or x["state"] != "alive" for x in workers(c)),
               what="the worker deregistered")


def test_retry_then_success_and_permanent_failure(shared_cluster, run_worker):
    c = shared_cluster
    q = uniq("pyr")
    cl = make_client(c)
    w = rota.Worker(cl, queues=[q], concurrency=2, name=uniq("pyr"))

    @w.handler("py.flaky")
    def flaky(job):
        if job["attempt"] < 2:
            raise RuntimeError(f"flaky attempt {job['attempt']}")
        return "ok"

    @w.handler("py.bad")
    def bad(job):
        raise rota.Permanent("the payload is wrong")

    @w.handler("py.notjson")
    def notjson(job):
        return {"a set": {1, 2}}
    run_worker(w)
    backoff = {"initial": "100ms", "multiplier": 1, "max": "100ms", "jitter": 0}
    flaky_job = cl.submit("py.flaky", queue=q, max_attempts=3, backoff=backoff)
    bad_job = cl.submit("py.bad", queue=q, max_attempts=3, backoff=backoff)
    ok = it.done(c, flaky_job["id"])
    assert ok["attempts"] == 2 and ok["result"] == "ok", ok
    first = ok["history"][0]
    assert first["outcome"] == "failed" and "flaky attempt 1" in first["error"], ok["history"]
    dead = it.done(c, bad_job["id"], status="failed")
    assert dead["attempts"] == 1, dead  # Not retried although max_attempts is 3.
    assert "Permanent: the payload is wrong" in dead["last_error"], dead
    odd = it.done(c, cl.submit("py.notjson", queue=q, max_attempts=3)["id"], status="failed")
    assert odd["attempts"] == 1 and "not JSON" in odd["last_error"], odd


def test_cancel_reaches_the_running_handler(shared_cluster, run_worker):
    c = shared_cluster
    q = uniq("pyc")
    cl = make_client(c)
    started, stopped = threading.Event(), []
    w = rota.Worker(cl, queues=[q], concurrency=1, name=uniq("pyc"))

    @w.handler("py.long")
    def long(job):
        started.set()
        stopped.append(job["cancelled"].wait(60))
        return "finished"
    run_worker(w)
    job = cl.submit("py.long", queue=q)
    assert started.wait(30)
    assert cl.cancel(job["id"])["status"] == "cancelled"
    wait_until(lambda: stopped, timeout=30, what="the handler told of the cancel")
    assert stopped == [True]
    assert it.done(c, job["id"], status="cancelled")["result"] is None


def test_stop_drains_running_jobs(shared_cluster, run_worker):
    """stop() while a job runs: no new leases, the job finishes and its
    result is delivered, then the worker deregisters."""
    c = shared_cluster
    q = uniq("pyd")
    cl = make_client(c)
    started, release = threading.Event(), threading.Event()
    ran = []
    w = rota.Worker(cl, queues=[q], concurrency=1, name=uniq("pyd"))

    @w.handler("py.slow")
    def slow(job):
        ran.append(job["id"])
        started.set()
        release.wait(30)
        return {"drained": True}
    r = run_worker(w)
    first = cl.submit("py.slow", queue=q)
    assert started.wait(30)
    w.stop()
    second = cl.submit("py.slow", queue=q)  # Never leased by a draining worker.
    release.set()
    r.stop()
    assert it.done(c, first["id"])["result"] == {"drained": True}
    assert ran == [first["id"]]
    assert c.job(second["id"])["status"] == "pending"
    assert all(x["name"] != w.name or x["state"] != "alive" for x in workers(c))
    cl.cancel(second["id"])


SIGTERM_SCRIPT = r"""
import sys, threading, time
sys.path.insert(0, sys.argv[1])
import rota
cl = rota.Client(sys.argv[2])
w = rota.Worker(cl, queues=[sys.argv[3]], concurrency=2, name=sys.argv[4])

@w.handler("py.term")
def term(job):
    print("started", job["id"], flush=True)
    time.sleep(job["payload"]["sleep"])
    return {"pid_done": True}
w.run()
print("returned", flush=True)
"""


def test_sigterm_drains_and_exits(shared_cluster, tmp_path):
    c = shared_cluster
    q, name = uniq("pyt"), uniq("pyt")
    cl = make_client(c)
    out = tmp_path / "out"
    with open(out, "w") as f:
        p = subprocess.Popen([sys.executable, "-c", SIGTERM_SCRIPT, os.path.dirname(HERE),
                              ",".join(n.http for n in c.nodes), q, name],
                             stdout=f, stderr=subprocess.STDOUT)
    try:
        job = cl.submit("py.term", {"sleep": 1.0}, queue=q)
        wait_until(lambda: "started" in out.read_text(), timeout=30, what="the job started")
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=60) == 0, out.read_text()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "returned" in out.read_text()
    assert it.done(c, job["id"])["result"] == {"pid_done": True}
    assert all(x["name"] != name or x["state"] != "alive" for x in workers(c))


def test_reregisters_when_declared_down(cluster, run_worker):
    """Heartbeats that do not arrive for the TTL: the cluster declares the
    worker down; its next heartbeat gets 404 and it registers again (a
    new id) and goes on running jobs."""
    c = cluster(3, ["--worker-ttl", "1000"])
    cl = make_client(c)
    w = rota.Worker(cl, queues=["pyre"], concurrency=1, name="py-re")
    w.handler("py.re")(lambda job: job["payload"])
    silent = threading.Event()
    call = w._call

    def maybe_silent(method, path, *a, **kw):
        if silent.is_set() and path != "/v1/workers":
            return 0, None  # As if the network dropped it.
        return call(method, path, *a, **kw)
    w._call = maybe_silent
    run_worker(w)
    first = cl.submit("py.re", {"n": 1}, queue="pyre")
    assert it.done(c, first["id"])["result"] == {"n": 1}
    old_id = w.id
    silent.set()
    wait_until(lambda: any(x["id"] == old_id and x["state"] == "down" for x in workers(c)),
               timeout=30, what="the worker declared down")
    silent.clear()
    wait_until(lambda: w.id != old_id and any(x["id"] == w.id and x["state"] == "alive"
                                                for x in workers(c)),
               timeout=30, what="the worker registered again")
    second = cl.submit("py.re", {"n": 2}, queue="pyre")
    assert it.done(c, second["id"])["result"] == {"n": 2}
