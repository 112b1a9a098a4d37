"""Workers, leases and dispatch with real rotad x3 and real rota-worker
processes (issue 3): jobs run, survive worker death and pauses, cancel and
drain, and leader failover does not reassign healthy leases."""

import os
import signal
import time

import pytest

from conftest import WORKER, done, submit, wait_until

TTL = ["--worker-ttl", "2000"]


pytestmark = pytest.mark.usefixtures("worker_built")


def test_shell_job_runs_with_env_and_output(cluster, tmp_path):
    c = cluster(flags=TTL)
    c.start_worker("w1")
    out = tmp_path / "env.txt"
    job = submit(c.followers()[0], {"type": "shell", "payload": {
        "cmd": f"echo $ROTA_JOB_ID $ROTA_ATTEMPT $ROTA_LEASE_TOKEN > {out}; echo done; exit 0"}})
    j = done(c, job["id"])
    assert j["attempts"] == 1 and j["exit_code"] == 0 and j["output"] == "done\n"
    jid, attempt, token = out.read_text().split()
    assert jid == job["id"] and attempt == "1" and int(token) == j["lease_token"]
    # argv form, env and cwd
    job = submit(c.leader(), {"type": "shell", "payload": {
        "argv": ["sh", "-c", "echo $FOO; pwd"], "env": {"FOO": "bar"}, "cwd": str(tmp_path)}})
    j = done(c, job["id"])
    assert j["output"] == f"bar\n{tmp_path}\n"


def test_worker_follows_the_leader(cluster):
    """A worker whose first server is a follower moves its calls to the
    leader (GET /v1/cluster): the follower forwards none of its lease and
    complete calls after that."""
    c = cluster(flags=TTL)
    leader, follower = c.leader(), c.followers()[0]
    w = c.start_worker("w1", servers=[follower, leader])
    wait_until(lambda: "following the leader" in open(w.log).read(), timeout=10,
               what="the worker following the leader")
    before = follower.metric("rota_forwarded_requests_total")
    jobs = [submit(leader, {"type": "noop"}) for _ in range(20)]
    for j in jobs:
        done(c, j["id"])
    assert follower.metric("rota_forwarded_requests_total") == before
    assert f"server=http://{leader.http}" in open(w.log).read()


def test_failures_retry_then_dead_letter(cluster):
    c = cluster(flags=TTL)
    c.start_worker("w1")
    leader = c.leader()
    failing = submit(leader, {"type": "shell", "payload": {"cmd": "echo no; exit 3"},
                              "max_attempts": 3, "backoff": {"initial": "50ms"}})
    unknown = submit(leader, {"type": "no-such-type"})
    bad = submit(leader, {"type": "shell", "payload": {"nothing": 1}})
    timeout = submit(leader, {"type": "shell", "payload": {"cmd": "sleep 30"},
                              "timeout": "300ms", "max_attempts": 1})
    j = done(c, failing["id"], "failed")
    assert j["attempts"] == 3 and j["exit_code"] == 3 and j["last_error"] == "exit status 3"
    # No worker registered the type: it waits, and says for what.
    j = c.job(unknown["id"])
    assert j["status"] == "pending" and j["attempts"] == 0, j
    assert j["waiting_for"] == "a live worker on queue default that runs type no-such-type"
    j = done(c, bad["id"], "failed")
    assert j["attempts"] == 1 and "payload.cmd" in j["last_error"]
    j = done(c, timeout["id"], "failed")
    assert j["last_error"] == "timeout"


def test_worker_sigkill_job_runs_elsewhere(cluster, tmp_path):
    c = cluster(flags=TTL)
    log = tmp_path / "runs.log"
    w1 = c.start_worker("w1", concurrency=1)
    job = submit(c.leader(), {"type": "shell", "payload": {
        "cmd": f"echo $ROTA_ATTEMPT >> {log}; sleep 1"}})
    wait_until(lambda: log.exists() and log.read_text().strip() == "1", what="first run")
    w1.kill()
    w1.wait()
    c.start_worker("w2", concurrency=1)
    j = done(c, job["id"], timeout=20)
    assert j["attempts"] == 2  # The lost attempt counts.
    assert log.read_text().split() == ["1", "2"]
    hist = j["history"]
    assert [(h["attempt"], h["outcome"]) for h in hist] == [(1, "lost"), (2, "completed")]
    assert hist[0]["lease_token"] < hist[1]["lease_token"] == j["lease_token"]
    assert hist[0]["worker_id"] != hist[1]["worker_id"]
    status, _, ws = c.leader().req("GET", "/v1/workers")
    states = {w["name"]: w["state"] for w in ws["workers"]}
    assert states["w1"] == "down" and states["w2"] == "alive"


def test_paused_worker_late_completion_is_stale(cluster, tmp_path):
    c = cluster(flags=TTL)
    log = tmp_path / "runs.log"
    w1 = c.start_worker("w1", concurrency=1)
    job = submit(c.leader(), {"type": "shell", "payload": {
        "cmd": f"echo start $ROTA_LEASE_TOKEN >> {log}; sleep 1.5; echo end $ROTA_LEASE_TOKEN >> {log}; echo $ROTA_LEASE_TOKEN"}})
    wait_until(lambda: log.exists() and "start" in log.read_text(), what="first run")
    first_token = int(log.read_text().split()[1])
    w1.send_signal(signal.SIGSTOP)
    c.start_worker("w2", concurrency=1)
    j = done(c, job["id"], timeout=20)
    second_token = j["lease_token"]
    assert second_token > first_token
    w1.send_signal(signal.SIGCONT)
    # The first run finishes and reports; the result must not replace the accepted one.
    wait_until(lambda: log.read_text().count("end") == 2, what="both runs ended", timeout=15)
    time.sleep(1.0)  # Let w1 deliver its late completion.
    j = c.job(job["id"])
    assert j["status"] == "completed" and j["lease_token"] == second_token
    assert j["output"].strip() == str(second_token)


def test_cancel_running_job_stops_process(cluster, tmp_path):
    c = cluster(flags=TTL)
    c.start_worker("w1")
    pidfile = tmp_path / "pid"
    job = submit(c.leader(), {"type": "shell", "payload": {"cmd": f"echo $$ > {pidfile}; exec sleep 60"}})
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), what="job started")
    pid = int(pidfile.read_text())
    status, _, body = c.followers()[0].req("DELETE", f"/v1/jobs/{job['id']}")
    assert status == 200 and body["status"] == "cancelled"

    def gone():
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True
    wait_until(gone, timeout=10, what="the job's process stopped")
    assert c.job(job["id"])["status"] == "cancelled"


def test_sigterm_drains_and_deregisters(cluster, tmp_path):
    c = cluster(flags=TTL)
    w = c.start_worker("w1")
    job = submit(c.leader(), {"type": "sleep", "payload": {"ms": 800}})
    wait_until(lambda: c.job(job["id"])["status"] == "running", what="running")
    w.send_signal(signal.SIGTERM)
    assert w.wait(timeout=20) == 0
    assert c.job(job["id"])["status"] == "completed"  # Finished, not dropped.
    # Its last line counts its calls: the one job was leased and reported.
    last = open(w.log).read().strip().splitlines()[-1]
    assert 'msg="stopped"' in last, last
    counts = dict(kv.split("=") for kv in last.split() if kv.split("=")[0] in (
        "lease_calls", "leased", "complete_calls", "results_sent"))
    assert int(counts["leased"]) == 1 and int(counts["results_sent"]) == 1, last
    assert int(counts["lease_calls"]) >= 1 and int(counts["complete_calls"]) >= 1, last
    wait_until(lambda: c.leader().req("GET", "/v1/workers")[2]["workers"] == [],
               what="the worker deregistered")


def test_sigterm_drain_timeout_gives_jobs_back(cluster):
    """A job still running when --drain-timeout ends is stopped and given
    back as retryable (not failed): another worker runs it again."""
    c = cluster(flags=TTL)
    w = c.start_worker("w1", extra=("--drain-timeout", "1"))
    job = submit(c.leader(), {"type": "sleep", "payload": {"ms": 3000},
                              "backoff": {"initial": "50ms"}})
    wait_until(lambda: c.job(job["id"])["status"] == "running", what="running")
    w.send_signal(signal.SIGTERM)
    assert w.wait(timeout=20) == 0
    j = c.job(job["id"])
    assert j["status"] in ("pending", "scheduled") and j["attempts"] == 1, j
    assert j["last_error"] == "worker stopped (drain timeout)", j
    c.start_worker("w2")
    j = done(c, job["id"])
    assert j["attempts"] == 2, j


def test_many_jobs_over_three_workers_complete_once(cluster, tmp_path):
    c = cluster(flags=TTL)
    for i in range(3):
        c.start_worker(f"w{i}", concurrency=8)
    leader = c.leader()
    ids = []
    for k in range(5):
        status, _, body = leader.req("POST", "/v1/jobs", [
            {"type": "shell", "payload": {"cmd": "true"}, "priority": k} for _ in range(100)])
        assert status == 201
        ids += [j["id"] for j in body["jobs"]]

    def all_done():
        status, _, body = leader.req("GET", "/v1/jobs?status=completed&type=shell&limit=1000")
        return len(body["jobs"]) == 500 and body
    body = wait_until(all_done, timeout=90, interval=0.5, what="500 jobs completed")
    assert sorted(j["id"] for j in body["jobs"]) == sorted(ids)
    assert all(j["attempts"] == 1 for j in body["jobs"])
    text = leader.req("GET", "/metrics")[2]
    assert "jobs_completed" in text and "job_duration_seconds_count" in text


def test_leader_kill_does_not_reassign_healthy_leases(cluster):
    c = cluster(flags=TTL)
    c.start_worker("w1", concurrency=4)
    leader = c.leader()
    jobs = [submit(leader, {"type": "sleep", "payload": {"ms": 2500}}) for _ in range(4)]
    wait_until(lambda: all(c.job(j["id"])["status"] == "running" for j in jobs), what="running")
    leader.kill(signal.SIGKILL)
    c.wait_for_leader()
    for j in jobs:
        final = done(c, j["id"], timeout=30)
        assert final["attempts"] == 1  # Completed once, never reassigned.


def test_http_executor(cluster):
    import http.server
    import threading

    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append((self.path, dict(self.headers), body))
            code = 200 if self.path == "/ok" else 500
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"hi")

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        c = cluster(flags=TTL)
        c.start_worker("w1")
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        ok = submit(c.leader(), {"type": "http", "payload": {
            "url": base + "/ok", "method": "POST", "headers": {"X-Test": "1"},
            "body": {"a": 1}}})
        bad = submit(c.leader(), {"type": "http", "max_attempts": 1,
                                  "payload": {"url": base + "/fail", "method": "POST"}})
        j = done(c, ok["id"])
        assert j["exit_code"] == 200 and j["result"] == {"status": 200} and j["output"] == "hi"
        path, headers, body = next(s for s in seen if s[0] == "/ok")
        assert headers["X-Rota-Job-Id"] == ok["id"] and headers["X-Test"] == "1"
        assert int(headers["X-Rota-Lease-Token"]) == j["lease_token"]
        assert headers["X-Rota-Attempt"] == "1" and body == b'{"a":1}'
        j = done(c, bad["id"], "failed")
        assert j["exit_code"] == 500 and j["last_error"] == "http: status 500"
        invalid = submit(c.leader(), {"type": "http", "payload": {"url": "ftp://x"}})
        j = done(c, invalid["id"], "failed")
        assert j["attempts"] == 1 and "payload.url" in j["last_error"]
    finally:
        srv.shutdown()


def test_dispatch_order_and_capacity(cluster):
    """Higher priority first, oldest first within a priority, never more
    running than the worker's concurrency, and only the worker's queues."""
    c = cluster(flags=TTL)
    leader = c.leader()
    low = [submit(leader, {"type": "sleep", "payload": {"ms": 50}, "priority": 1})["id"]
           for _ in range(4)]
    high = [submit(leader, {"type": "sleep", "payload": {"ms": 50}, "priority": 5})["id"]
            for _ in range(3)]
    other = submit(leader, {"type": "sleep", "queue": "elsewhere", "payload": {"ms": 1}})["id"]
    w = c.start_worker("w1", concurrency=1)
    jobs = [done(c, j) for j in high + low]
    order = [j["id"] for j in sorted(jobs, key=lambda j: j["started_at"])]
    assert order == high + low
    spans = sorted((j["history"][0]["started_at"], j["history"][0]["finished_at"]) for j in jobs)
    for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
        assert e1 <= s2  # Concurrency 1: no two runs overlap.
    assert c.job(other)["status"] == "pending"  # Not a queue of w1.
    status, _, ws = leader.req("GET", "/v1/workers")
    entry = ws["workers"][0]
    assert entry["name"] == "w1" and entry["state"] == "alive" and entry["last_heartbeat"]
    w.send_signal(signal.SIGTERM)
    assert w.wait(timeout=20) == 0


def test_sigterm_before_registration_exits(tmp_path):
    """A worker that reaches no server still stops on SIGTERM."""
    import subprocess
    with open(tmp_path / "w.log", "wb") as log:
        p = subprocess.Popen([WORKER, "--servers", "http://127.0.0.1:1"],
                             stdout=log, stderr=subprocess.STDOUT)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=15) == 0


def test_workers_shell_is_opt_in(cluster):
    """A worker without --allow-shell registers without the shell type and
    is never given a shell job: the job waits (and says for what) while
    other jobs run; a worker with --allow-shell --shell-allow runs the
    commands the pattern allows and fails the others without running them."""
    c = cluster(flags=TTL)
    c.start_worker("plain", extra=())
    leader = c.leader()
    shell = submit(leader, {"type": "shell", "payload": {"cmd": "echo ran"}})
    noop = submit(leader, {"type": "noop"})
    done(c, noop["id"])
    wait_until(lambda: leader.req("GET", "/v1/workers")[2]["workers"], what="worker listed")
    w = leader.req("GET", "/v1/workers")[2]["workers"][0]
    assert "shell" not in w["types"].split(",") and "noop" in w["types"].split(","), w
    time.sleep(1.0)  # Several dispatch rounds with a free worker.
    j = c.job(shell["id"])
    assert j["status"] == "pending" and j["attempts"] == 0, j
    assert "runs type shell" in j["waiting_for"], j
    c.start_worker("shell", extra=("--allow-shell", "--shell-allow", "^echo "))
    j = done(c, shell["id"])
    assert j["output"] == "ran\n" and "waiting_for" not in j
    refused = submit(leader, {"type": "shell", "payload": {"cmd": "id"}, "max_attempts": 3})
    j = done(c, refused["id"], "failed")
    assert "--shell-allow" in j["last_error"] and j.get("output", "") == "", j


def test_workers_registration_secret_required(shared_cluster):
    """Every lease, heartbeat, completion and deregistration must carry the
    registration's own secret: none, or another worker's, is a 403 and
    changes nothing."""
    n = shared_cluster.followers()[0]
    regs = []
    for name in ("sec-a", "sec-b"):
        st, _, r = n.req("POST", "/v1/workers",
                         {"name": name, "queues": ["nobody-sec"], "concurrency": 1})
        assert st == 201 and len(r["secret"]) == 64, r
        regs.append(r)
    a, b = regs
    assert a["secret"] != b["secret"]
    hdr = lambda r: {"X-Rota-Worker-Secret": r["secret"]}
    calls = [("POST", f"/v1/workers/{a['id']}/lease", {"max": 1, "wait_ms": 0}),
             ("POST", f"/v1/workers/{a['id']}/heartbeat", {"running": []}),
             ("POST", f"/v1/workers/{a['id']}/complete",
              {"results": [{"id": "00000000000fffff", "token": 1, "ok": True}]}),
             ("DELETE", f"/v1/workers/{a['id']}", None)]
    for method, path, body in calls:
        for headers in ({}, hdr(b), {"X-Rota-Worker-Secret": "x" * 64}):
            st, _, err = n.req(method, path, body, headers=headers)
            assert st == 403 and err["error"]["code"] == "forbidden", (path, headers, st, err)
    for method, path, body in calls[:2]:
        st, _, resp = n.req(method, path, body, headers=hdr(a))
        assert st == 200, (path, st, resp)
    st, _, resp = n.req("DELETE", f"/v1/workers/{a['id']}", None, headers=hdr(a))
    assert st == 200, resp
    st, _, resp = n.req("DELETE", f"/v1/workers/{b['id']}", None, headers=hdr(b))
    assert st == 200, resp
    # The secret is not in the listing.
    _, _, ws = n.req("GET", "/v1/workers")
    assert a["secret"] not in str(ws) and b["secret"] not in str(ws)


def test_oversized_worker_name_refused_before_raft(shared_cluster):
    """A 900 KB worker name is a 400 naming the field, and nothing reaches
    the raft log for it."""
    lead = shared_cluster.leader()
    before = shared_cluster.digest(lead)[1]
    st, _, body = lead.req("POST", "/v1/workers",
                           {"name": "w" * 900_000, "queues": ["default"]})
    assert st == 400 and body["error"]["field"] == "name", body
    st, _, body = lead.req("POST", "/v1/workers", {"name": "w" * 257, "queues": ["default"]})
    assert st == 400 and body["error"]["field"] == "name", body
    assert shared_cluster.digest(lead)[1] == before


def test_workers_compact_lease(shared_cluster):
    """"compact": true leases jobs with what running them needs (id, type,
    queue, priority, attempts, payload and the spec's members, timeout) and
    none of their state; without it a lease carries the whole record; a
    compact that is not a boolean is a 400 naming it."""
    n = shared_cluster.followers()[0]
    leader = shared_cluster.leader()
    st, _, w = n.req("POST", "/v1/workers",
                     {"name": "compact", "queues": ["compact-q"], "concurrency": 4})
    assert st == 201, w
    hdr = {"X-Rota-Worker-Secret": w["secret"]}
    path = f"/v1/workers/{w['id']}/lease"
    st, _, err = n.req("POST", path, {"max": 1, "compact": "yes"}, headers=hdr)
    assert st == 400 and err["error"]["field"] == "compact", err
    jobs = [submit(leader, {"type": "noop", "queue": "compact-q", "priority": 3,
                            "payload": {"n": i}, "timeout": "90s", "tags": {"t": "x"}})
            for i in range(2)]

    def lease(compact):
        def got():
            st, _, r = n.req("POST", path, {"max": 1, "wait_ms": 500, "compact": compact},
                             headers=hdr)
            assert st == 200, r
            return r["leases"][0] if r["leases"] else None
        return wait_until(got, what="a lease")

    small = lease(True)
    assert set(small["job"]) == {"id", "type", "queue", "priority", "attempts",
                                 "max_attempts", "payload", "timeout", "tags"}, small
    assert small["job"]["id"] == jobs[0]["id"] and small["job"]["payload"] == {"n": 0}
    assert small["job"]["timeout"] == "90s" and small["job"]["priority"] == 3
    assert small["token"] >= 1 and small["attempt"] == 1
    full = lease(False)
    assert full["job"]["id"] == jobs[1]["id"] and full["job"]["status"] == "running"
    assert full["job"]["worker_id"] == w["id"] and "created_at" in full["job"]
    results = [{"id": ls["job"]["id"], "token": ls["token"], "ok": True}
               for ls in (small, full)]
    st, _, r = n.req("POST", f"/v1/workers/{w['id']}/complete", {"results": results},
                     headers=hdr)
    assert st == 200 and [x["status"] for x in r["results"]] == ["ok", "ok"], r
    for j in jobs:
        done(shared_cluster, j["id"])
    st, _, _ = n.req("DELETE", f"/v1/workers/{w['id']}", None, headers=hdr)
    assert st == 200


def test_a_worker_runs_its_concurrency_at_once(cluster, tmp_path):
    """A burst of leases starts on as many pool threads as it has jobs (each
    woken thread wakes the next): with --concurrency 8, eight 3-second shell
    jobs all start before any of them ends; then 200 noop jobs complete."""
    c = cluster(1)
    c.start_worker("wide", concurrency=8, queues="wide")
    leader = c.leader()
    cmd = (f"touch {tmp_path}/start-$ROTA_JOB_ID; sleep 3; "
           f"touch {tmp_path}/end-$ROTA_JOB_ID")
    status, _, body = leader.req("POST", "/v1/jobs", [
        {"type": "shell", "queue": "wide", "payload": {"cmd": cmd}} for _ in range(8)])
    assert status == 201, body
    names = lambda prefix: [p for p in os.listdir(tmp_path) if p.startswith(prefix)]
    wait_until(lambda: len(names("start-")) == 8, timeout=20, what="8 jobs started")
    assert names("end-") == [], "a job ended before the eighth started"
    status, _, more = leader.req("POST", "/v1/jobs", [
        {"type": "noop", "queue": "wide"} for _ in range(200)])
    assert status == 201
    for j in body["jobs"] + more["jobs"][-1:]:
        done(c, j["id"])
    _, _, b = leader.req("GET", "/v1/jobs?queue=wide&status=completed&limit=1000")
    assert len(b["jobs"]) == 208
