#!/usr/bin/python3
"""Rota with millions of live jobs (issue 13, target 4): one fresh 3-node
plain cluster of a build tree on loopback, and in order

  1. e2e on the empty table (rota-bench e2e, its own queue),
  2. ingest N pending jobs (rota-bench submit, batches, all three nodes),
  3. reads: GET /v1/jobs/{id} and a filtered list page, p50/p99/max,
  4. e2e again, beside the N-job backlog,
  5. restart of a follower to ready: SIGTERM then start; SIGKILL then start,
  6. snapshot install: a follower whose data dir was emptied catches up,

sampling every node's memory (/proc/PID/status: RssAnon = the process's
own memory, RssFile = pages of mapped files, LMDB's map) twice a second,
and printing one JSON line per step plus a summary. It stops what it
started (by PID) and removes its data dir.

  bench/scale.py --build build --jobs 10000000
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

RAFT, HTTP = 9601, 9611


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, file=sys.stderr, flush=True)


class Node:
    def __init__(self, b, i, root, spec, extra):
        self.i, self.b, self.spec, self.extra = i, b, spec, extra
        self.dir = os.path.join(root, f"n{i}")
        self.http = f"127.0.0.1:{HTTP + i}"
        self.raft = f"127.0.0.1:{RAFT + i}"
        self.logf = os.path.join(root, f"n{i}.log")
        self.p = None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        out = open(self.logf, "ab")
        self.p = subprocess.Popen(
            [os.path.join(self.b, "rotad"), "--insecure", "--id", str(self.i),
             "--data-dir", self.dir, "--raft-addr", self.raft,
             "--http-addr", self.http, "--cluster", self.spec] + self.extra,
            stdout=out, stderr=subprocess.STDOUT)
        out.close()
        return time.monotonic()

    def stop(self, sig=signal.SIGTERM):
        if self.p and self.p.poll() is None:
            self.p.send_signal(sig)
            self.p.wait(120)

    def get(self, path, conn=None, timeout=30):
        c = conn or http.client.HTTPConnection(self.http, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            return r.status, body
        finally:
            if conn is None:
                c.close()

    def metric(self, name):
        st, body = self.get("/metrics")
        m = re.search(rf"^{name} (\S+)$", body.decode(), re.M)
        return float(m.group(1)) if m else None

    def ready(self):
        try:
            return self.get("/readyz", timeout=2)[0] == 200
        except OSError:
            return False


class Sampler(threading.Thread):
    """Peak RssAnon / RssFile / VmRSS per node, per named phase."""

    def __init__(self, nodes):
        super().__init__(daemon=True)
        self.nodes, self.phase, self.peaks, self.stop_ = nodes, "start", {}, False

    def run(self):
        while not self.stop_:
            for n in self.nodes:
                if n.p is None or n.p.poll() is not None:
                    continue
                try:
                    with open(f"/proc/{n.p.pid}/status") as f:
                        st = f.read()
                except OSError:
                    continue
                v = {k: int(re.search(rf"^{k}:\s+(\d+)", st, re.M).group(1)) // 1024
                     for k in ("RssAnon", "RssFile", "VmRSS")}
                pk = self.peaks.setdefault(self.phase, {}).setdefault(n.i, {})
                for k, mb in v.items():
                    pk[k] = max(pk.get(k, 0), mb)
            time.sleep(0.5)


def bench(b, *args):
    out = subprocess.run([os.path.join(b, "bench", "rota-bench")] + list(args),
                         stdout=subprocess.PIPE, stderr=sys.stderr, check=False)
    lines = [json.loads(x) for x in out.stdout.decode().splitlines() if x.startswith("{")]
    return lines[-1] if lines else {"error": out.returncode}


def cpu_s(nodes):
    """CPU seconds (user + system) the running nodes used so far."""
    t = 0
    for n in nodes:
        try:
            with open(f"/proc/{n.p.pid}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
            t += int(st[11]) + int(st[12])
        except (OSError, AttributeError):
            pass
    return t / os.sysconf("SC_CLK_TCK")


def pct(xs, p):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(len(xs) * p))], 3)


def timed_gets(node, paths):
    conn = http.client.HTTPConnection(node.http, timeout=30)
    ms = []
    for p in paths:
        t0 = time.perf_counter()
        st, _ = node.get(p, conn)
        ms.append((time.perf_counter() - t0) * 1000)
        assert st == 200, (p, st)
    conn.close()
    return {"n": len(ms), "p50_ms": pct(ms, 0.5), "p99_ms": pct(ms, 0.99), "max_ms": round(max(ms), 3)}


def wait(cond, timeout, what):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(0.05)
    raise SystemExit(f"timed out after {timeout} s: {what}")


def leader_of(nodes):
    st, body = nodes[0].get("/v1/cluster")
    lid = json.loads(body)["leader"]["id"]
    return next(n for n in nodes if n.i == lid)


def caught_up(n, lead):
    try:
        return n.ready() and n.metric("rota_raft_applied_index") >= lead.metric("rota_raft_commit_index")
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--jobs", type=int, default=10_000_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--e2e-jobs", type=int, default=20000)
    ap.add_argument("--root", default="/tmp/rota-scale")
    ap.add_argument("--rotad-arg", action="append", default=[])
    a = ap.parse_args()
    b = os.path.abspath(a.build)
    shutil.rmtree(a.root, ignore_errors=True)
    os.makedirs(a.root)
    spec = ",".join(f"{i}@127.0.0.1:{RAFT + i}" for i in (1, 2, 3))
    nodes = [Node(b, i, a.root, spec, a.rotad_arg) for i in (1, 2, 3)]
    urls = ",".join(f"http://{n.http}" for n in nodes)
    sampler = Sampler(nodes)
    results = []

    def snapshots_so_far():
        n = 0
        for nd in nodes:
            try:
                n += open(nd.logf, errors="replace").read().count('msg="snapshot taken"')
            except OSError:
                pass
        return n

    def step(name, **kw):
        kw = {"step": name, **kw, "snapshots_taken_so_far": snapshots_so_far()}
        results.append(kw)
        print(json.dumps(kw), flush=True)

    try:
        for n in nodes:
            n.start()
        sampler.start()
        wait(lambda: all(n.ready() for n in nodes), 60, "cluster ready")

        sampler.phase = "e2e-empty"
        c0 = cpu_s(nodes)
        r = bench(b, "e2e", "--nodes", urls, "--jobs", str(a.e2e_jobs), "--workers", "4")
        step("e2e-empty", server_cpu_s=round(cpu_s(nodes) - c0, 2), **r)

        sampler.phase = "ingest"
        log(f"ingesting {a.jobs} jobs")
        r = bench(b, "submit", "--nodes", urls, "--spread", "--jobs", str(a.jobs), "--batch", str(a.batch),
                  "--concurrency", str(a.concurrency), "--duration-limit", "3600")
        step("ingest", **r)
        lead = leader_of(nodes)
        wait(lambda: all(caught_up(n, lead) for n in nodes), 600, "followers caught up")
        sizes = {n.i: os.path.getsize(os.path.join(n.dir, "fsm", "data.mdb")) >> 20 for n in nodes}
        snaps = {n.i: max([os.path.getsize(os.path.join(n.dir, "raft", f)) >> 20
                           for f in os.listdir(os.path.join(n.dir, "raft"))
                           if f.startswith("snapshot-") and not f.endswith(".meta")] or [0])
                 for n in nodes}
        step("state", pending=json.loads(lead.get("/v1/queues/default")[1])["counts"]["pending"],
             data_mdb_mb=sizes, snapshot_file_mb=snaps)

        sampler.phase = "reads"
        f = next(n for n in nodes if n is not lead)
        ids = []
        for order in ("asc", "desc"):
            st, body = f.get(f"/v1/jobs?queue=default&limit=1000&order={order}")
            ids += [j["id"] for j in json.loads(body)["jobs"]]
        random.seed(13)
        for n in (lead, f):
            step("get-job", node=n.i, **timed_gets(n, [f"/v1/jobs/{random.choice(ids)}" for _ in range(2000)]))
            step("list-page", node=n.i, **timed_gets(
                n, ["/v1/jobs?queue=default&status=pending&limit=100" + random.choice(["", "&order=desc"])
                    for _ in range(300)]))

        sampler.phase = "e2e-backlog"
        c0 = cpu_s(nodes)
        r = bench(b, "e2e", "--nodes", urls, "--jobs", str(a.e2e_jobs), "--workers", "4")
        step("e2e-backlog", server_cpu_s=round(cpu_s(nodes) - c0, 2), **r)

        for sig in (signal.SIGTERM, signal.SIGKILL):
            sampler.phase = f"restart-{sig.name}"
            lead = leader_of(nodes)
            f = next(n for n in nodes if n is not lead)
            f.stop(sig)
            t0 = f.start()
            wait(f.ready, 600, "restarted follower ready")
            step("restart", signal=sig.name, node=f.i, ready_s=round(time.monotonic() - t0, 2),
                 log=[ln for ln in open(f.logf).read().splitlines() if "state kept" in ln or "state rebuilt" in ln][-1][-120:])

        sampler.phase = "install"
        lead = leader_of(nodes)
        f = next(n for n in nodes if n is not lead)
        f.stop()
        shutil.rmtree(f.dir)
        t0 = f.start()
        wait(lambda: caught_up(f, lead), 1200, "emptied follower caught up")
        step("install", node=f.i, caught_up_s=round(time.monotonic() - t0, 2),
             installed=f.metric("rota_snapshots_installed_total"))

        taken = []
        for n in nodes:
            for ln in open(n.logf):
                m = re.search(r'msg="snapshot taken".*?ms=(\d+)', ln)
                if m:
                    taken.append(int(m.group(1)))
        step("snapshots", taken=len(taken), take_ms_max=max(taken or [0]), take_ms_median=pct(taken or [0], 0.5))
        sampler.stop_ = True
        step("memory", peaks_mb=sampler.peaks)
    finally:
        sampler.stop_ = True
        for n in nodes:
            n.stop()
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(a.root, ignore_errors=True)


if __name__ == "__main__":
    main()
