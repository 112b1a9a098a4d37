"""Multi-process test harness: real rotad processes on loopback.

A Cluster starts N nodes on free ports in a temporary directory, knows how
to kill and restart them, and prints the tail of every node's log when a
test fails. Every wait polls to a deadline; every process is stopped by PID.

Stopping a cluster checks how its nodes ended: a node stopped by SIGTERM
must exit 0 (under ASan a leak or memory error makes the exit code
non-zero), a node must not die by itself, and no node log may hold a
sanitizer report. Otherwise the test fails at teardown with the report.
"""

import http.client
import json
import os
import re
import shutil
import signal
import ssl
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("ROTA_BUILD_DIR", os.path.join(ROOT, "build"))
ROTAD = os.path.join(BUILD, "rotad")
ROTACTL = os.path.join(BUILD, "ctl", "rotactl")
# The worker may come from another build tree (the ASan pass tests the
# ASan rotad with a normal worker: forking an ASan process per job is slow).
WORKER = os.environ.get("ROTA_WORKER_BIN", os.path.join(BUILD, "worker", "rota-worker"))


# What AddressSanitizer, LeakSanitizer and UBSan print when they report.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

_handed_out = set()


def free_port():
    """A free loopback port never handed out before in this run: the kernel
    may return a just-closed port twice, and two members of one cluster on
    the same address fail to start ("duplicate or bad member")."""
    for _ in range(100):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no fresh free port")


def wait_until(cond, timeout=15.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except (OSError, http.client.HTTPException, ValueError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def request(addr, method, path, body=None, headers=None, timeout=10.0, raw=None, ca=None):
    """Returns (status, headers dict (lower-case), parsed JSON or text).
    With @ca (a CA file): HTTPS verified against it."""
    host, port = addr.split(":")
    if ca is not None:
        ctx = ssl.create_default_context(cafile=ca)
        conn = http.client.HTTPSConnection(host, int(port), timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        data = raw
        if data is None and body is not None:
            data = json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json"}
        hdrs.update({k: v for k, v in (headers or {}).items() if v is not None})
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        hs = {k.lower(): v for k, v in resp.getheaders()}
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload.decode(errors="replace")
        return resp.status, hs, parsed
    finally:
        conn.close()


class Node:
    def __init__(self, cluster, node_id):
        self.cluster = cluster
        self.id = node_id
        self.raft = f"127.0.0.1:{free_port()}"
        self.http = f"127.0.0.1:{free_port()}"
        self.dir = os.path.join(cluster.dir, f"n{node_id}")
        self.log = os.path.join(cluster.dir, f"n{node_id}.log")
        self.proc = None
        self.problems = []
        cluster.every_node.append(self)  # Removed from .nodes or not.
        self.killed = False  # This process was SIGKILLed on purpose.
        self.checked = False

    def start(self, extra):
        self.check_exit()
        logf = open(self.log, "ab")
        args = [ROTAD, "--id", str(self.id), "--data-dir", self.dir,
                "--raft-addr", self.raft, "--http-addr", self.http] + extra
        if "--certs-dir" not in extra:
            # Tests of everything but security run plain (said out loud).
            args.append("--insecure")
        self.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT)
        self.killed = False
        self.checked = False
        logf.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)
            self.killed = sig == signal.SIGKILL
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.problems.append(f"node {self.id} pid {self.proc.pid}: "
                                     f"no exit 10 s after signal {sig}")
                self.killed = True
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.check_exit()

    def check_exit(self):
        """Record a non-zero exit of an ended process not SIGKILLed on purpose."""
        if self.proc is None or self.proc.poll() is None or self.checked:
            return
        self.checked = True
        rc = self.proc.returncode
        if rc != 0 and not self.killed:
            self.problems.append(f"node {self.id} pid {self.proc.pid} exited {rc}")

    def sanitizer_report(self):
        """The first sanitizer report in the log, or None."""
        lines = self.log_text().splitlines()
        for i, line in enumerate(lines):
            if any(m in line for m in SANITIZER_MARKS):
                return "\n".join(lines[max(0, i - 1):i + 60])
        return None

    def req(self, method, path, body=None, **kw):
        kw.setdefault("ca", self.cluster.ca)
        if self.cluster.token is not None:
            # Secure mode: the bootstrap admin token unless the test sends
            # its own Authorization (or none: "Authorization": None).
            hdrs = {"Authorization": f"Bearer {self.cluster.token}"}
            hdrs.update(kw.get("headers") or {})
            kw["headers"] = {k: v for k, v in hdrs.items() if v is not None}
        return request(self.http, method, path, body, **kw)

    def metric(self, name):
        """The value of an unlabelled metric in this node's /metrics."""
        st, _, text = self.req("GET", "/metrics")
        assert st == 200, (st, text)
        m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        assert m, f"{name} not in /metrics of node {self.id}"
        return float(m.group(1))

    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""


class Cluster:
    def __init__(self, n=3, flags=None):
        self.dir = tempfile.mkdtemp(prefix="rota-it-")
        self.flags = ["--election-timeout", "500", "--heartbeat-timeout", "50"] + (flags or [])
        # Secure mode: the API is HTTPS verified against the cluster CA.
        certs = self.flags[self.flags.index("--certs-dir") + 1] if "--certs-dir" in self.flags else None
        self.ca = os.path.join(certs, "ca.crt") if certs else None
        self.token = None  # Secure mode: the bootstrap admin token (start()).
        self.every_node = []
        self.nodes = [Node(self, i + 1) for i in range(n)]
        self.workers = []
        self.spec = ",".join(f"{n.id}@{n.raft}" for n in self.nodes)

    def start(self):
        for n in self.nodes:
            n.start(["--cluster", self.spec] + self.flags)
        self.wait_for_leader()
        if self.ca is not None:
            # Secure mode has access control on: bootstrap an admin token.
            status, _, tok = self.leader().req("POST", "/v1/acl/bootstrap", {})
            assert status in (200, 201), (status, tok)
            self.token = tok["secret"]
            self.wait_token_known(self.token)
        return self

    def wait_token_known(self, secret):
        """Until every live node knows the token (followers apply it a
        heartbeat after the leader)."""
        for n in self.alive():
            wait_until(lambda n=n: n.req("GET", "/v1/jobs?limit=1",
                                         headers={"Authorization": f"Bearer {secret}"})[0] != 401,
                       what=f"token known on node {n.id}")

    def make_token(self, role, **limits):
        """A new ACL token's secret (secure mode)."""
        body = {"name": f"t-{role}-{time.monotonic_ns()}", "role": role}
        body.update(limits)
        status, _, tok = self.leader().req("POST", "/v1/acl/tokens", body)
        assert status in (200, 201), (status, tok)
        return tok["secret"]

    def node(self, node_id):
        return next(n for n in self.nodes if n.id == node_id)

    def alive(self):
        return [n for n in self.nodes if n.alive()]

    def restart(self, node):
        node.start(["--cluster", self.spec] + self.flags)

    def join(self, node_id, via):
        n = Node(self, node_id)
        self.nodes.append(n)
        scheme = "https" if self.ca else "http"
        n.start(["--join", f"{scheme}://{via.http}"] + self.flags)
        return n

    def view(self, node):
        status, _, body = node.req("GET", "/v1/cluster")
        return body if status == 200 else None

    def wait_for_leader(self, timeout=20.0):
        """A leader every alive node agrees on, with every alive node ready."""
        def agreed():
            leaders = set()
            for n in self.alive():
                v = self.view(n)
                if not v or not v["leader"] or not v["leader"].get("http_addr"):
                    return None
                leaders.add(v["leader"]["id"])
            alive_ids = {n.id for n in self.alive()}
            if len(leaders) != 1 or not leaders <= alive_ids:
                return None  # None yet, or still the dead one.
            if any(n.req("GET", "/readyz")[0] != 200 for n in self.alive()):
                return None
            return self.node(leaders.pop())
        return wait_until(agreed, timeout, what="an agreed leader")

    def leader(self):
        return self.wait_for_leader()

    def followers(self):
        lead = self.leader()
        return [n for n in self.alive() if n.id != lead.id]

    def digest(self, node):
        status, _, body = node.req("GET", "/v1/debug/digest")
        if status == 401 and self.token is not None:
            return None  # A restarted node that has not replayed the token yet.
        assert status == 200
        return body["digest"], body["applied_index"]

    def wait_converged(self, nodes=None, timeout=20.0):
        nodes = nodes or self.alive()
        def same():
            ds = [self.digest(n) for n in nodes]
            return ds if None not in ds and len({d for d in ds}) == 1 else None
        return wait_until(same, timeout, what="equal digests and applied indexes")

    def start_worker(self, name, concurrency=4, queues="default", extra=("--allow-shell",),
                     servers=None):
        log = os.path.join(self.dir, f"worker-{name}.log")
        scheme = "https" if self.ca else "http"
        urls = ",".join(f"{scheme}://{n.http}" for n in (servers or self.nodes))
        tls = ["--ca-file", self.ca] if self.ca else []
        env = dict(os.environ)
        if self.token is not None:
            env["ROTA_TOKEN"] = self.make_token("worker")
            self.wait_token_known(env["ROTA_TOKEN"])
        with open(log, "ab") as f:
            p = subprocess.Popen([WORKER, "--servers", urls, "--name", name,
                                  "--queues", queues, "--concurrency", str(concurrency),
                                  "--kill-grace", "1", *tls, *extra], stdout=f,
                                 stderr=subprocess.STDOUT, env=env)
        p.log = log
        self.workers.append(p)
        return p

    def job(self, job_id):
        """The job as the leader sees it after a barrier."""
        return self.leader().req("GET", f"/v1/jobs/{job_id}?consistency=linearizable")[2]

    def stop(self, keep=False):
        """SIGTERM every node and wait; returns the problems found (bad
        exits, sanitizer reports), then keeps the directory."""
        for w in self.workers:
            if w.poll() is None:
                w.send_signal(signal.SIGCONT)
                w.kill()
                w.wait(timeout=10)
        problems = []
        for n in self.every_node:
            n.kill(signal.SIGTERM)
            problems += n.problems
            report = n.sanitizer_report()
            if report is not None:
                problems.append(f"node {n.id} ({n.log}):\n{report}")
        if keep or problems:
            print(f"data and logs kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return problems

    def dump_logs(self):
        for n in self.nodes:
            text = n.log_text().splitlines()[-25:]
            print(f"----- node {n.id} ({n.http}) -----")
            print("\n".join(text))


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _finish(request, cluster):
    failed = any(getattr(request.node, "rep_" + w, None) is not None
                 and getattr(request.node, "rep_" + w).failed for w in ("setup", "call"))
    if failed:
        cluster.dump_logs()
    return cluster.stop(keep=failed)


def module_cluster(request, n=3, flags=None):
    """Generator for a module-scoped cluster fixture: yields the started
    cluster once, then stops it and fails on a bad exit (next(gen, None))."""
    if not os.path.exists(ROTAD):
        pytest.fail(f"{ROTAD} is not built")
    c = Cluster(n, flags).start()
    yield c
    failed = request.session.testsfailed > 0
    if failed:
        c.dump_logs()
    problems = c.stop(keep=failed)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def shared_cluster(request):
    """One 3-node cluster for the tests that do not break anything."""
    yield from module_cluster(request)


@pytest.fixture
def cluster(request):
    """A fresh 3-node cluster for destructive tests."""
    created = []

    def make(n=3, flags=None):
        c = Cluster(n, flags).start()
        created.append(c)
        return c
    yield make
    problems = []
    for c in created:
        problems += _finish(request, c)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def submit(node, body, expect=201):
    status, headers, resp = node.req("POST", "/v1/jobs", body)
    assert status == expect, (status, resp)
    return resp


@pytest.fixture
def worker_built():
    if not os.path.exists(WORKER):
        pytest.fail(f"{WORKER} is not built")


def done(c, job_id, status="completed", timeout=30):
    """Wait until the job (as the leader sees it) has @status; return it."""
    return wait_until(lambda: (lambda j: j if j["status"] == status else None)(c.job(job_id)),
                      timeout=timeout, what=f"job {job_id} {status}")
