"""rotactl wait and watch against a real cluster (issue 14 item 7).

wait: exit 0 for a job a worker completes, 1 for a job that goes dead, 2
when --timeout ends first, and it follows the next server when the one it
waits on dies. watch: a job's events in order as JSON lines, the readable
lines, SIGINT/SIGTERM exit 0, and a watch whose node is SIGKILLed goes on
on another node with every event after the kill, none twice."""

import json
import os
import queue
import signal
import subprocess
import threading
import time

import pytest

from conftest import ROTACTL, submit, wait_until


def servers_of(nodes):
    return ",".join(f"http://{n.http}" for n in nodes)


def ctl(servers, *args, timeout=90):
    p = subprocess.run([ROTACTL, "--server", servers, *args], capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class Watch:
    """rotactl watch as a subprocess; its stdout lines and stderr read by
    threads as they come."""

    def __init__(self, servers, *args, pre=()):
        self.p = subprocess.Popen([ROTACTL, "--server", servers, *pre, "watch", *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.err = []
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_out(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))

    def _read_err(self):
        for line in self.p.stderr:
            self.err.append(line)

    def stderr(self):
        return "".join(self.err)

    def wait_connected(self, count=1):
        wait_until(lambda: self.stderr().count("connected to") >= count,
                   what=f"watch connected ({count}); stderr: {self.stderr()!r}")

    def take(self, n, timeout=30.0):
        """The next @n lines, waiting for them up to @timeout."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"got {out}, wanted {n} lines; stderr: {self.stderr()}")
            try:
                out.append(self.lines.get(timeout=left))
            except queue.Empty:
                pass
        return out

    def stop(self, sig=signal.SIGTERM):
        self.p.send_signal(sig)
        return self.p.wait(timeout=15)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(timeout=10)


@pytest.fixture
def watches():
    made = []
    yield lambda *a, **kw: made.append(Watch(*a, **kw)) or made[-1]
    for w in made:
        w.kill()


@pytest.fixture(autouse=True)
def built(worker_built):
    if not os.path.exists(ROTACTL):
        pytest.fail(f"{ROTACTL} is not built")


def test_wait_exit_codes(shared_cluster):
    c = shared_cluster
    f = c.followers()[0]
    servers = servers_of([f] + [n for n in c.alive() if n is not f])
    ok = submit(c.leader(), {"type": "sleep", "queue": "live-wq", "payload": {"ms": 300}})
    dead = submit(c.leader(), {"type": "shell", "queue": "live-wq", "max_attempts": 1,
                               "payload": {"cmd": "exit 3"}})
    # Waiting before any worker runs them: the waits end when they do.
    w_ok = subprocess.Popen([ROTACTL, "--server", servers, "-o", "json", "wait", ok["id"],
                             "--timeout", "60s"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    w_dead = subprocess.Popen([ROTACTL, "--server", servers, "wait", dead["id"], "-o",
                               "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    c.start_worker("live-w1", queues="live-wq")
    out, err = w_ok.communicate(timeout=90)
    assert w_ok.returncode == 0, (out, err)
    assert json.loads(out)["status"] == "completed" and json.loads(out)["id"] == ok["id"]
    out, err = w_dead.communicate(timeout=90)
    assert w_dead.returncode == 1, (out, err)
    body = json.loads(out)
    assert body["status"] == "failed" and body["id"] == dead["id"], body
    # Already final: at once; the readable form is the job's fields.
    rc, out, err = ctl(servers, "wait", ok["id"])
    assert rc == 0 and any(l.split() == ["status", "completed"] for l in out.splitlines()), out
    # Nobody runs queue live-nobody: the timeout ends it, exit 2, said on stderr.
    idle = submit(c.leader(), {"type": "noop", "queue": "live-nobody"})
    rc, out, err = ctl(servers, "--json", "wait", idle["id"], "--timeout", "1s")
    assert rc == 2 and "timed out" in err and idle["id"] in err, (rc, out, err)
    assert json.loads(out)["status"] == "pending"
    # Cancelled: 1.
    assert c.leader().req("DELETE", f"/v1/jobs/{idle['id']}")[0] == 200
    rc, out, err = ctl(servers, "--json", "wait", idle["id"], "--timeout", "30s")
    assert rc == 1 and json.loads(out)["status"] == "cancelled", (rc, out, err)
    # Unknown job: the server's 404, exit 1; usage errors exit 2.
    rc, out, err = ctl(servers, "wait", "00000000000fffff", "--timeout", "5s")
    assert rc == 1 and "not_found" in err, (rc, out, err)
    for bad in ([], ["a", "b"], [ok["id"], "--timeout", "soon"]):
        rc, out, err = ctl(servers, "wait", *bad)
        assert rc == 2 and "usage: rotactl wait" in err, (bad, rc, err)


def test_watch_a_job_in_order(shared_cluster, watches):
    c = shared_cluster
    f = c.followers()[1]
    servers = servers_of([f])
    # An event id from before the job: a probe job's created event.
    probe_w = watches(servers, "-o", "json", "--queue", "live-probe")
    probe_w.wait_connected()
    probe = submit(c.leader(), {"type": "noop", "queue": "live-probe"})
    ev = json.loads(probe_w.take(1)[0])
    assert ev["event"] == "job.created" and ev["job"]["id"] == probe["id"], ev
    assert probe_w.stop(signal.SIGINT) == 0  # SIGINT: exit 0.
    job = submit(c.leader(), {"type": "sleep", "queue": "live-one", "payload": {"ms": 200}})
    other = submit(c.leader(), {"type": "noop", "queue": "live-one"})
    # Resume after the probe's event, keep only the job's events.
    w = watches(servers, "-o", "json", "--job", job["id"], "--last-event-id", ev["id"])
    w.wait_connected()
    created = json.loads(w.take(1)[0])
    assert created["event"] == "job.created" and created["job"]["id"] == job["id"], created
    c.start_worker("live-w2", queues="live-one")
    rest = [json.loads(l) for l in w.take(2)]
    evs = [created] + rest
    assert [e["event"] for e in evs] == ["job.created", "job.started", "job.completed"], evs
    assert all(e["job"]["id"] == job["id"] for e in evs)
    assert [e["job"]["status"] for e in evs] == ["pending", "running", "completed"], evs
    ids = [tuple(map(int, e["id"].split("-"))) for e in evs]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert rest[1]["job"]["attempts"] == 1
    # The other job of the queue never shows up on this stream.
    wait_until(lambda: f.req("GET", f"/v1/jobs/{other['id']}")[2]["status"] == "completed",
               what="the other job completed on the watched node")
    assert w.stop() == 0 and w.lines.empty(), list(w.lines.queue)
    # The readable form: one line per event with its fields.
    t = watches(servers, "--queue", "live-table")
    t.wait_connected()
    j = submit(c.leader(), {"type": "shell", "queue": "live-table", "max_attempts": 1,
                            "payload": {"cmd": "echo oops >&2; exit 4"}})
    c.start_worker("live-w3", queues="live-table")
    lines = t.take(4)
    names = [l.split()[1] for l in lines]
    assert names == ["job.created", "job.started", "job.failed", "job.dead"], lines
    for l in lines:
        cols = l.split()
        assert cols[0].endswith("Z") and cols[2] == j["id"] and cols[3] == "shell" \
            and cols[4] == "live-table", l
    assert lines[3].split()[5:7] == ["failed", "1"], lines[3]
    assert t.stop(signal.SIGINT) == 0
    # From an id older than what the node holds: the events.lost line
    # first, then what it has.
    r = watches(servers, "--job", j["id"], "--last-event-id", "0-0")
    lines = r.take(5)
    assert lines[0].split()[1] == "events.lost" and "after 0-0" in lines[0], lines[0]
    assert [l.split()[1] for l in lines[1:]] == names, lines
    assert r.stop() == 0


def test_watch_refusals(shared_cluster):
    c = shared_cluster
    servers = servers_of(c.alive())
    rc, out, err = ctl(servers, "watch", "--events", "job.nope", timeout=30)
    assert rc == 1 and "events" in err and "invalid" in err, (rc, out, err)
    rc, out, err = ctl(servers, "watch", "--last-event-id", "banana", timeout=30)
    assert rc == 2 and "last-event-id" in err, (rc, err)
    rc, out, err = ctl(servers, "watch", "extra", timeout=30)
    assert rc == 2


def has_socket(pid):
    fds = os.path.join("/proc", str(pid), "fd")
    return any(os.readlink(os.path.join(fds, fd)).startswith("socket:")
               for fd in os.listdir(fds))


def test_watch_and_wait_survive_a_killed_node(cluster, watches):
    c = cluster()
    a, b = c.followers()
    servers = servers_of([a, b, c.leader()])
    # A wait on a job nobody runs yet, connected to a, which will die.
    job = submit(c.leader(), {"type": "noop", "queue": "kq2"})
    waiter = subprocess.Popen([ROTACTL, "--server", servers, "-o", "json", "wait", job["id"],
                               "--timeout", "60s"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    wait_until(lambda: has_socket(waiter.pid), what="the wait connected")
    w = watches(servers, "-o", "json", "--queue", "kq", "--events", "job.created")
    w.wait_connected()
    assert f"connected to http://{a.http}" in w.stderr()
    before = [submit(c.leader(), {"type": "noop", "queue": "kq"})["id"] for _ in range(3)]
    got = [json.loads(l) for l in w.take(3)]
    assert [e["job"]["id"] for e in got] == before
    # Stop the watch while its node dies and more jobs are created: it can
    # only get them by reconnecting elsewhere after the last id it saw.
    w.p.send_signal(signal.SIGSTOP)
    try:
        a.kill()
        after = [submit(c.leader(), {"type": "noop", "queue": "kq"})["id"] for _ in range(3)]
        wait_until(lambda: all(b.req("GET", f"/v1/jobs/{i}")[0] == 200 for i in after),
                   what="b applied the jobs created after the kill")
    finally:
        w.p.send_signal(signal.SIGCONT)
    w.wait_connected(2)
    assert f"connected to http://{b.http}" in w.stderr(), w.stderr()
    assert "reconnecting" in w.stderr() and got[-1]["id"] in w.stderr(), w.stderr()
    got += [json.loads(l) for l in w.take(3)]
    # Live again on b.
    later = submit(c.leader(), {"type": "noop", "queue": "kq"})["id"]
    got += [json.loads(w.take(1)[0])]
    assert [e["job"]["id"] for e in got] == before + after + [later]
    ids = [e["id"] for e in got]
    assert len(set(ids)) == len(ids)  # None twice.
    keys = [tuple(map(int, i.split("-"))) for i in ids]
    assert keys == sorted(keys)
    assert w.stop(signal.SIGTERM) == 0
    assert w.lines.empty(), list(w.lines.queue)  # Nothing more was printed.
    # The wait lost a mid-request and went on with the next server.
    c.start_worker("live-k", queues="kq2")
    out, err = waiter.communicate(timeout=90)
    assert waiter.returncode == 0 and json.loads(out)["status"] == "completed", (out, err)
    assert a.http in err, err  # Its request to a failed.


def test_watch_and_wait_tls_token(cluster, tmp_path, watches):
    """Secure mode: HTTPS verified against the CA, a read token limited to
    one queue sees only that queue's events; no token: refused (1)."""
    certs = str(tmp_path / "certs")
    for args in (["create-ca"], ["create-node", "127.0.0.1"]):
        subprocess.run([ROTACTL, "cert", args[0], "--certs-dir", certs, *args[1:]],
                       check=True, capture_output=True, timeout=30)
    c = cluster(3, ["--certs-dir", certs])
    tok = c.make_token("read", queues=["tq"])
    c.wait_token_known(tok)
    tok_file = tmp_path / "token"
    tok_file.write_text(tok + "\n")
    servers = ",".join(n.http for n in c.followers())  # No scheme: https with a CA.
    tls = ["--ca-file", c.ca, "--token-file", str(tok_file)]
    w = watches(servers, "-o", "json", pre=tls)
    w.wait_connected()
    hidden = submit(c.leader(), {"type": "noop", "queue": "elsewhere"})
    shown = submit(c.leader(), {"type": "noop", "queue": "tq"})
    ev = json.loads(w.take(1)[0])
    assert ev["event"] == "job.created" and ev["job"]["id"] == shown["id"], ev
    assert w.stop() == 0 and w.lines.empty(), list(w.lines.queue)
    rc, out, err = ctl(servers, *tls, "--json", "wait", shown["id"], "--timeout", "1s")
    assert rc == 2 and json.loads(out)["status"] == "pending", (rc, out, err)
    rc, out, err = ctl(servers, "--ca-file", c.ca, "watch", timeout=30)
    assert rc == 1 and "HTTP 401" in err, (rc, out, err)
