"""rotad nodes and rota-worker processes started in their host namespaces
(``ip netns exec NS ...``), and the control requests the harness makes.

Every process is started by this module and stopped by its PID. Every wait
polls to a deadline.
"""

import http.client
import json
import os
import shutil
import signal
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("ROTA_BUILD_DIR", os.path.join(ROOT, "build"))
ROTAD_SRC = os.path.join(BUILD, "rotad")
WORKER_SRC = os.environ.get("ROTA_WORKER_BIN", os.path.join(BUILD, "worker", "rota-worker"))

RAFT_PORT = 7001
HTTP_PORT = 8001
HTTP_ERRORS = (OSError, http.client.HTTPException, ValueError)


def request(addr, method, path, body=None, timeout=5.0):
    """(status, parsed JSON or text). Raises OSError/HTTPException on
    connection trouble."""
    host, port = addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        payload = resp.read()
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload.decode(errors="replace")
        return resp.status, parsed
    finally:
        conn.close()


def stable_binaries(dest, log=print, wait_s=180):
    """Copies rotad and rota-worker into dest so that a rebuild in the tree
    during the run does not swap binaries under the suite. Waits (bounded)
    while the other engineer's build has them absent."""
    os.makedirs(dest, exist_ok=True)
    out = []
    for src, name in ((ROTAD_SRC, "rotad"), (WORKER_SRC, "rota-worker")):
        end = time.monotonic() + wait_s
        while True:
            try:
                tmp = os.path.join(dest, name + ".tmp")
                shutil.copy2(src, tmp)
                os.replace(tmp, os.path.join(dest, name))
                break
            except OSError as e:
                if time.monotonic() > end:
                    raise RuntimeError(f"{src} missing for {wait_s}s: {e}")
                log(f"{src} absent (a rebuild?), waiting: {e}")
                time.sleep(10)
        out.append(os.path.join(dest, name))
    return out


class Proc:
    """A process started in a namespace; stopped by PID only."""

    def __init__(self):
        self.proc = None
        self.paused = False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def exit_code(self):
        return self.proc.poll() if self.proc else None

    def send(self, sig):
        if self.alive():
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def pause(self):
        self.send(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.send(signal.SIGCONT)
        self.paused = False

    def kill(self, sig=signal.SIGKILL, wait=10.0):
        if not self.alive():
            return self.exit_code()
        if self.paused:
            self.resume()
        self.send(sig)
        try:
            self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGKILL)
            self.proc.wait(timeout=10)
        return self.exit_code()


class Node(Proc):
    def __init__(self, cluster, node_id, host):
        super().__init__()
        self.c = cluster
        self.id = node_id
        self.host = host
        self.ip = cluster.net.ip(host)
        self.raft = f"{self.ip}:{RAFT_PORT}"
        self.http = f"{self.ip}:{HTTP_PORT}"
        self.dir = os.path.join(cluster.dir, "data", host)
        self.log = os.path.join(cluster.dir, f"{host}.log")
        self.join_via = None    # http addr when (re)started with --join
        self.starts = 0

    def start(self):
        if self.join_via:
            mode = ["--join", f"http://{self.join_via}"]
        else:
            mode = ["--cluster", self.c.spec]
        args = ["ip", "netns", "exec", self.c.net.ns(self.host), self.c.rotad,
                "--id", str(self.id), "--data-dir", self.dir, "--insecure",
                "--raft-addr", self.raft, "--http-addr", self.http] + mode + self.c.flags
        with open(self.log, "ab") as logf:
            logf.write(f"### harness: start {' '.join(args)}\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.paused = False
        self.starts += 1

    def req(self, method, path, body=None, timeout=3.0):
        return request(self.http, method, path, body, timeout)

    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""


class Worker(Proc):
    def __init__(self, cluster, host, concurrency=4):
        super().__init__()
        self.c = cluster
        self.host = host
        self.name = host
        self.concurrency = concurrency
        self.log = os.path.join(cluster.dir, f"worker-{host}.log")
        self.exec_log = os.path.join(cluster.dir, f"exec-{host}.log")

    def start(self):
        servers = ",".join(f"http://{n.http}" for n in self.c.nodes.values())
        args = ["ip", "netns", "exec", self.c.net.ns(self.host), self.c.worker_bin,
                "--servers", servers, "--name", self.name, "--queues", "default",
                "--concurrency", str(self.concurrency), "--kill-grace", "1",
                "--allow-shell"]  # The workload is shell jobs.
        env = dict(os.environ, FAULT_EXEC_LOG=self.exec_log)
        with open(self.log, "ab") as logf:
            logf.write(f"### harness: start {' '.join(args)}\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True)
        self.paused = False


class Cluster:
    def __init__(self, net, run_dir, node_hosts, worker_hosts, bins, flags):
        self.net = net
        self.dir = run_dir
        self.rotad, self.worker_bin = bins
        self.flags = flags
        self.nodes = {}
        for i, host in enumerate(node_hosts):
            self.nodes[i + 1] = Node(self, i + 1, host)
        self.spec = ",".join(f"{n.id}@{n.raft}" for n in self.nodes.values())
        self.workers = [Worker(self, h) for h in worker_hosts]
        self.removed = set()    # node ids currently removed from the config

    # --- processes -------------------------------------------------------
    def start(self, timeout=40):
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        for n in self.nodes.values():
            n.start()
        self.wait_for_leader(timeout)
        for w in self.workers:
            w.start()

    def members(self):
        return [n for i, n in self.nodes.items() if i not in self.removed]

    def alive(self):
        return [n for n in self.members() if n.alive() and not n.paused]

    def stop(self):
        for w in self.workers:
            w.kill(signal.SIGKILL)
        for n in self.nodes.values():
            n.kill(signal.SIGKILL)

    # --- views ------------------------------------------------------------
    def view(self, node, timeout=2.0):
        try:
            status, body = node.req("GET", "/v1/cluster", timeout=timeout)
        except HTTP_ERRORS:
            return None
        return body if status == 200 and isinstance(body, dict) else None

    def current_leader(self):
        """The leader the alive nodes report (majority vote), or None."""
        votes = {}
        for n in self.alive():
            v = self.view(n, timeout=1.0)
            if v and v.get("leader"):
                lid = v["leader"]["id"]
                votes[lid] = votes.get(lid, 0) + 1
        if not votes:
            return None
        lid = max(votes, key=votes.get)
        return self.nodes.get(lid)

    def wait_for_leader(self, timeout=30.0, all_ready=True):
        """A leader every alive member agrees on (and every one ready)."""
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            leaders = set()
            ok = True
            for n in self.alive():
                v = self.view(n)
                if not v or not v.get("leader") or not v["leader"].get("http_addr"):
                    ok = False
                    last = (n.id, v and v.get("leader"))
                    break
                leaders.add(v["leader"]["id"])
            alive_ids = {n.id for n in self.alive()}
            if ok and len(leaders) == 1 and leaders <= alive_ids:
                if not all_ready:
                    return self.nodes[leaders.pop()]
                try:
                    if all(n.req("GET", "/readyz")[0] == 200 for n in self.alive()):
                        return self.nodes[leaders.pop()]
                    last = "not ready"
                except HTTP_ERRORS as e:
                    last = e
            elif ok:
                last = leaders
            time.sleep(0.1)
        raise TimeoutError(f"no agreed leader in {timeout}s (last: {last!r})")

    def digest(self, node):
        try:
            status, body = node.req("GET", "/v1/debug/digest", timeout=2.0)
        except HTTP_ERRORS:
            return None
        if status != 200 or not isinstance(body, dict):
            return None
        return {"node": node.id, "digest": body.get("digest"),
                "applied_index": body.get("applied_index")}

    def metrics(self, node):
        try:
            status, body = node.req("GET", "/metrics", timeout=2.0)
        except HTTP_ERRORS:
            return {}
        out = {}
        if status == 200 and isinstance(body, str):
            for line in body.splitlines():
                if line.startswith("#") or not line.strip():
                    continue
                parts = line.rsplit(" ", 1)
                if len(parts) == 2:
                    try:
                        out[parts[0]] = float(parts[1])
                    except ValueError:
                        pass
        return out

    def list_jobs(self, node, timeout=60.0):
        """Every job in node's table (paginated, bounded)."""
        jobs = []
        cursor = None
        end = time.monotonic() + timeout
        for _ in range(10000):
            if time.monotonic() > end:
                raise TimeoutError("listing jobs")
            path = "/v1/jobs?limit=1000"
            if cursor:
                path += f"&cursor={cursor}"
            status, body = node.req("GET", path, timeout=10.0)
            if status != 200:
                raise RuntimeError(f"list jobs: {status} {body}")
            jobs += body.get("jobs", [])
            cursor = body.get("next_cursor")
            if not cursor:
                return jobs
        raise RuntimeError("too many pages")
