"""Scheduling semantics with real rotad x3 and real rota-worker processes
(issue 4): cron schedules across a leader SIGKILL, runs and their reasons,
pause/resume/trigger, retries with backoff into the dead-letter queue and
back, workflows (order, failure propagation, all_done, cancel), queue pause
and concurrency, concurrency keys, priority aging, retention, and the 400s
of bad schedules."""

import time
import urllib.parse

import pytest

from conftest import done, submit, wait_until

TTL = ["--worker-ttl", "2000"]


pytestmark = pytest.mark.usefixtures("worker_built")


def get(node, path, expect=200):
    status, _, body = node.req("GET", path)
    assert status == expect, (path, status, body)
    return body


def post(node, path, body=None, expect=200, method="POST"):
    status, _, resp = node.req(method, path, body)
    assert status == expect, (path, status, resp)
    return resp


def parse_ms(t):
    """RFC 3339 with milliseconds, UTC → ms since the epoch."""
    import datetime
    return int(datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000)


def all_runs(node, sid):
    return get(node, f"/v1/jobs/{sid}/runs?limit=1000")["runs"]


def ran_runs(node, sid):
    return [r for r in all_runs(node, sid) if "job_id" in r]


def intervals(log):
    """Lines 'S <ns>' / 'E <ns>' per job → max number running at once."""
    events = []
    for line in open(log).read().split("\n"):
        if line:
            kind, ns = line.split()[:2]
            events.append((int(ns), 1 if kind == "S" else -1))
    events.sort(key=lambda e: (e[0], e[1]))
    cur = peak = 0
    for _, d in events:
        cur += d
        peak = max(peak, cur)
    return peak, len(events) // 2


def test_every_second_across_leader_kill(cluster, tmp_path):
    """@every 1s runs once per occurrence across a leader SIGKILL: every
    second from the first to the last occurrence is either one run (one
    execution) or covered by a skip record with its reason; none twice."""
    c = cluster(flags=TTL)
    c.start_worker("w1")
    log = tmp_path / "runs.log"
    sched = submit(c.followers()[0], {
        "type": "shell", "schedule": "@every 1s",
        "payload": {"cmd": f"echo $ROTA_JOB_ID >> {log}"}})
    sid = sched["id"]
    assert sched["recurring"] is True and sched["next_run_at"].endswith(".000Z")
    wait_until(lambda: len(ran_runs(c.leader(), sid)) >= 3, timeout=20, what="3 runs")
    old = c.leader()
    old.kill()
    wait_until(lambda: c.wait_for_leader().id != old.id, timeout=20, what="new leader")
    first_after = len(ran_runs(c.leader(), sid))
    wait_until(lambda: len(ran_runs(c.leader(), sid)) >= first_after + 3, timeout=20,
               what="runs under the new leader")
    c.restart(old)
    c.wait_for_leader()
    post(c.leader(), f"/v1/jobs/{sid}/pause")
    runs = all_runs(c.leader(), sid)
    # Wait for the runs to finish, then compare with the executions.
    ran = [r for r in runs if "job_id" in r]
    for r in ran:
        done(c, r["job_id"])
    executed = open(log).read().split()
    assert sorted(executed) == sorted(r["job_id"] for r in ran), "one execution per run"
    covered = {}
    for r in runs:
        t = parse_ms(r["nominal_at"])
        assert t % 1000 == 0
        n = r.get("occurrences", 1)
        if r["outcome"] == "skipped":
            assert r["reason"], r
        for k in range(n):
            assert t + 1000 * k not in covered, ("occurrence twice", r)
            covered[t + 1000 * k] = r["outcome"]
    lo, hi = min(covered), max(covered)
    missing = [t for t in range(lo, hi + 1, 1000) if t not in covered]
    assert not missing, f"occurrences neither run nor recorded: {missing} in {runs}"
    assert len(ran) >= 6, runs
    c.wait_converged()


def test_schedule_api_pause_resume_trigger_overlap(shared_cluster):
    c = shared_cluster
    leader, follower = c.leader(), c.followers()[0]
    # A schedule far in the future: nothing fires by itself.
    s = submit(follower, {"type": "sleep", "schedule": "0 0 1 1 *", "timezone": "Europe/Berlin",
                          "payload": {"ms": 60000}, "queue": "nobody-sched"})
    assert s["next_run_at"].endswith("T23:00:00.000Z")  # Midnight in Berlin, CET.
    t1 = post(follower, f"/v1/jobs/{s['id']}/trigger", expect=201)
    assert t1["schedule_id"] == s["id"] and t1["status"] == "pending"
    # overlap=forbid (default): the first run has not finished.
    st, _, err = follower.req("POST", f"/v1/jobs/{s['id']}/trigger")
    assert st == 409 and err["error"]["field"] == "overlap", err
    p = post(leader, f"/v1/jobs/{s['id']}/pause")
    assert p["paused"] is True and p["next_run_at"] is None
    r = post(follower, f"/v1/jobs/{s['id']}/resume")
    assert r["paused"] is False and r["next_run_at"] == s["next_run_at"]
    runs = all_runs(follower, s["id"])
    assert [x["job_id"] for x in runs] == [t1["id"]]
    # Not a schedule: 400 naming the id; unknown: 404.
    plain = submit(leader, {"type": "noop", "queue": "nobody-sched"})
    st, _, err = leader.req("POST", f"/v1/jobs/{plain['id']}/pause")
    assert st == 400 and err["error"]["field"] == "id"
    st, _, _ = leader.req("POST", "/v1/jobs/00000000000fffff/trigger")
    assert st == 404
    # overlap=allow: a second trigger runs while the first is pending.
    a = submit(leader, {"type": "noop", "schedule": "0 0 1 1 *", "overlap": "allow",
                        "queue": "nobody-sched"})
    post(leader, f"/v1/jobs/{a['id']}/trigger", expect=201)
    post(leader, f"/v1/jobs/{a['id']}/trigger", expect=201)
    assert len(all_runs(leader, a["id"])) == 2
    # overlap=replace: the previous unfinished run is cancelled.
    rp = submit(leader, {"type": "noop", "schedule": "0 0 1 1 *", "overlap": "replace",
                         "queue": "nobody-sched"})
    first = post(leader, f"/v1/jobs/{rp['id']}/trigger", expect=201)
    post(leader, f"/v1/jobs/{rp['id']}/trigger", expect=201)
    old = c.job(first["id"])
    assert old["status"] == "cancelled" and "replaced" in old["last_error"]
    # Cancelling the schedule stops it.
    post(leader, f"/v1/jobs/{s['id']}", method="DELETE")
    st, _, err = leader.req("POST", f"/v1/jobs/{s['id']}/trigger")
    assert st == 409


def test_schedule_triggers_at_once_all_run(shared_cluster):
    """20 triggers sent at once (half through a follower) on an
    overlap=allow schedule: each is its own decision on the leader, made
    after the previous one applied, so all 20 answer 201 with 20 runs; a
    409 is only for a conflict the caller caused. Resumes sent at once all
    succeed too."""
    from concurrent.futures import ThreadPoolExecutor
    c = shared_cluster
    leader, follower = c.leader(), c.followers()[0]
    a = submit(leader, {"type": "noop", "schedule": "0 0 1 1 *", "overlap": "allow",
                        "queue": "nobody-sched"})
    nodes = [leader if i % 2 else follower for i in range(20)]
    with ThreadPoolExecutor(max_workers=20) as ex:
        answers = list(ex.map(lambda n: n.req("POST", f"/v1/jobs/{a['id']}/trigger"), nodes))
    assert [st for st, _, _ in answers] == [201] * 20, answers
    run_ids = {body["id"] for _, _, body in answers}
    assert len(run_ids) == 20
    runs = all_runs(leader, a["id"])
    assert {r["job_id"] for r in runs} == run_ids
    assert len({r["nominal_at"] for r in runs}) == 20
    post(leader, f"/v1/jobs/{a['id']}/pause")
    with ThreadPoolExecutor(max_workers=10) as ex:
        answers = list(ex.map(lambda n: n.req("POST", f"/v1/jobs/{a['id']}/resume"),
                              nodes[:10]))
    assert [st for st, _, _ in answers] == [200] * 10, answers
    assert get(leader, f"/v1/jobs/{a['id']}")["paused"] is False


def test_bad_schedules_are_400_naming_the_part(shared_cluster):
    n = shared_cluster.followers()[0]
    cases = [({"schedule": "61 * * * *"}, "schedule", "minutes"),
             ({"schedule": "* * * 13 *"}, "schedule", "month"),
             ({"schedule": "* * * * MON-FOO"}, "schedule", "day_of_week"),
             ({"schedule": "* *"}, "schedule", "expression"),
             ({"schedule": "@every 0s"}, "schedule", "every"),
             ({"schedule": "0 0 30 2 *"}, "schedule", "never"),
             ({"schedule": "@daily", "timezone": "Mars/Olympus"}, "timezone", "Mars"),
             ({"timezone": "UTC"}, "timezone", "schedule"),
             ({"schedule": "@daily", "overlap": "sometimes"}, "overlap", "forbid"),
             ({"schedule": "@daily", "catchup": "all", "catchup_max": 0}, "catchup_max", ""),
             ({"trigger": "maybe"}, "trigger", "all_done"),
             ({"concurrency_limit": 2}, "concurrency_limit", "concurrency_key"),
             ({"schedule": "@daily", "depends_on": ["0000000000100000"]}, "depends_on", "")]
    for extra, field, words in cases:
        body = {"type": "noop"}
        body.update(extra)
        st, _, err = n.req("POST", "/v1/jobs", body)
        assert st == 400, (extra, st, err)
        assert err["error"]["field"] == field, (extra, err)
        assert words in err["error"]["message"], (extra, err)


def test_schedule_preview(shared_cluster):
    n = shared_cluster.followers()[0]
    q = urllib.parse.urlencode({"schedule": "30 2 * * *", "timezone": "America/New_York",
                                "n": 3, "after": "2026-03-07T00:00:00Z"})
    body = get(n, f"/v1/schedule/preview?{q}")
    # The 8th has no 02:30 (spring forward): once, at 03:00 EDT.
    assert body["times"] == ["2026-03-07T07:30:00.000Z", "2026-03-08T07:00:00.000Z",
                             "2026-03-09T06:30:00.000Z"]
    q = urllib.parse.urlencode({"schedule": "@every 90s", "n": 2,
                                "after": "2026-01-01T00:00:00Z"})
    assert get(n, f"/v1/schedule/preview?{q}")["times"] == [
        "2026-01-01T00:01:30.000Z", "2026-01-01T00:03:00.000Z"]
    st, _, err = n.req("GET", "/v1/schedule/preview?schedule=%2A+%2A")
    assert st == 400 and err["error"]["field"] == "schedule"
    st, _, err = n.req("GET", "/v1/schedule/preview?schedule=%40daily&n=1000")
    assert st == 400 and err["error"]["field"] == "n"


def test_retries_backoff_dead_letter_and_requeue(cluster, tmp_path):
    c = cluster(flags=TTL)
    c.start_worker("w1", queues="default,bulk")
    leader = c.leader()
    marker = tmp_path / "ok"
    cmd = f"test -e {marker} || exit 3"
    j = submit(leader, {"type": "shell", "payload": {"cmd": cmd}, "max_attempts": 3,
                        "backoff": {"initial": "200ms", "multiplier": 2}})
    failed = done(c, j["id"], "failed")
    h = failed["history"]
    assert [a["attempt"] for a in h] == [1, 2, 3]
    # Backoff: attempt k+1 may start only backoff(k) after the leader saw
    # attempt k fail, which is after attempt k started (same leader clock).
    gaps = [parse_ms(h[i + 1]["started_at"]) - parse_ms(h[i]["started_at"]) for i in range(2)]
    assert gaps[0] >= 200 and gaps[1] >= 400, gaps
    # A follower's read trails the leader by up to a heartbeat.
    follower = c.followers()[0]
    dlq = wait_until(lambda: (lambda d: d if j["id"] in [x["id"] for x in d] else None)(
        get(follower, "/v1/dlq")["jobs"]), what="the job in the follower's DLQ")
    assert all(x["status"] == "failed" for x in dlq)
    # Requeue one with fresh attempts: it now succeeds.
    marker.write_text("")
    r = post(c.followers()[0], f"/v1/jobs/{j['id']}/retry")
    assert r["status"] == "pending" and r["attempts"] == 0
    ok = done(c, j["id"])
    assert ok["attempts"] == 1 and len(ok["history"]) == 4
    st, _, err = leader.req("POST", f"/v1/jobs/{j['id']}/retry")
    assert st == 409 and err["error"]["field"] == "status"
    # no_retry_exit_codes: straight to failed.
    nr = submit(leader, {"type": "shell", "payload": {"cmd": "exit 4"}, "max_attempts": 5,
                         "no_retry_exit_codes": [4]})
    assert done(c, nr["id"], "failed")["attempts"] == 1
    # Bulk on a filter: retry then delete, answering how many.
    bad = f"test -e {tmp_path}/never || exit 1"
    ids = [submit(leader, {"type": "shell", "queue": "bulk", "max_attempts": 1,
                           "payload": {"cmd": bad}})["id"] for _ in range(3)]
    for i in ids:
        done(c, i, "failed")
    res = post(c.followers()[1], "/v1/dlq/retry?queue=bulk")
    assert res == {"matched": 3, "retried": 3, "more": False}
    for i in ids:
        assert done(c, i, "failed")["history"][-1]["attempt"] == 1
        assert len(c.job(i)["history"]) == 2
    res = post(c.followers()[0], "/v1/dlq?queue=bulk", method="DELETE")
    assert res == {"matched": 3, "deleted": 3, "more": False}
    for i in ids:
        assert leader.req("GET", f"/v1/jobs/{i}")[0] == 404
    assert nr["id"] in [x["id"] for x in get(leader, "/v1/dlq")["jobs"]]


def test_workflow_order_failure_and_cancel(cluster, tmp_path):
    c = cluster(flags=TTL)
    c.start_worker("w1", concurrency=4)
    log = tmp_path / "order.log"

    def step(key, extra=""):
        return {"key": key, "type": "shell",
                "payload": {"cmd": f"echo {key} >> {log}; {extra}"}}
    wf = post(c.followers()[0], "/v1/workflows", {"name": "etl", "jobs": [
        dict(step("load"), depends_on=["transform"]),
        step("extract", "sleep 0.2"),
        dict(step("transform"), depends_on=["extract"])]}, expect=201)
    assert wf["name"] == "etl" and len(wf["jobs"]) == 3
    ids = {j["workflow_key"]: j["id"] for j in wf["jobs"]}
    done(c, ids["load"])
    assert log.read_text().split() == ["extract", "transform", "load"]
    body = get(c.leader(), f"/v1/workflows/{wf['id']}")
    assert body["status"] == "completed" and body["counts"]["completed"] == 3

    # A failed root: descendants cancelled naming their parent; all_done runs.
    wf2 = post(c.leader(), "/v1/workflows", {"name": "broken", "jobs": [
        {"key": "a", "type": "shell", "payload": {"cmd": "exit 1"}, "max_attempts": 1},
        {"key": "b", "type": "noop", "depends_on": ["a"]},
        {"key": "c", "type": "noop", "depends_on": ["b"]},
        {"key": "report", "type": "noop", "depends_on": ["a"], "trigger": "all_done"}]},
        expect=201)
    ids = {j["workflow_key"]: j["id"] for j in wf2["jobs"]}
    done(c, ids["a"], "failed")
    done(c, ids["report"])
    b, cc = c.job(ids["b"]), c.job(ids["c"])
    assert b["status"] == "cancelled" and ids["a"] in b["last_error"]
    assert cc["status"] == "cancelled" and ids["b"] in cc["last_error"]
    assert get(c.leader(), f"/v1/workflows/{wf2['id']}")["status"] == "failed"

    # Cancelling a workflow cancels its unfinished jobs, the running one too.
    wf3 = post(c.leader(), "/v1/workflows", {"name": "long", "jobs": [
        {"key": "slow", "type": "sleep", "payload": {"ms": 30000}},
        {"key": "after", "type": "noop", "depends_on": ["slow"]}]}, expect=201)
    ids = {j["workflow_key"]: j["id"] for j in wf3["jobs"]}
    done(c, ids["slow"], "running")
    res = post(c.followers()[0], f"/v1/workflows/{wf3['id']}", method="DELETE")
    assert res["status"] == "cancelled"
    assert {j["status"] for j in res["jobs"]} == {"cancelled"}

    # Bad workflows are 400s naming the problem.
    for body, words in [
            ({"name": "cyc", "jobs": [{"key": "a", "type": "noop", "depends_on": ["b"]},
                                      {"key": "b", "type": "noop", "depends_on": ["a"]}]},
             "cycle"),
            ({"name": "m", "jobs": [{"key": "a", "type": "noop", "depends_on": ["zz"]}]},
             "zz"),
            ({"name": "dup", "jobs": [{"key": "a", "type": "noop"},
                                      {"key": "a", "type": "noop"}]}, "twice"),
            ({"name": "u", "jobs": [{"key": "a", "type": "noop",
                                     "depends_on": ["00000000000fffff"]}]}, "unknown job"),
            ({"jobs": [{"key": "a", "type": "noop"}]}, "name"),
            ({"name": "s", "jobs": [{"key": "a", "type": "noop", "depends_on": ["a"]}]},
             "itself"),
            ({"name": "r", "jobs": [{"key": "a", "type": "noop", "schedule": "@daily"}]},
             "jobs[0].schedule"),
            ({"name": "i", "jobs": [{"key": "a", "type": "noop", "idempotency_key": "k"}]},
             "jobs[0].idempotency_key"),
            ({"name": "k", "jobs": [{"type": "noop"}]}, "jobs[0].key"),
            ({"name": "d", "jobs": [{"key": "a", "type": "noop", "depends_on": "a"}]},
             "jobs[0].depends_on"),
            ({"name": "t", "jobs": [{"key": "a", "type": "noop"}], "extra": 1}, "extra"),
            ({"name": "p", "jobs": [{"key": "a", "type": "noop", "priority": "high"}]},
             "jobs[0].priority")]:
        st, _, err = c.leader().req("POST", "/v1/workflows", body)
        assert st == 400 and words in err["error"]["message"] + err["error"]["field"], err


def test_paused_queue_dispatches_nothing_until_resumed(cluster):
    c = cluster(flags=TTL)
    leader = c.leader()
    q = post(leader, "/v1/queues/reports", {"paused": True}, method="PUT")
    assert q["paused"] is True
    c.start_worker("w1", queues="reports")
    ids = [submit(c.followers()[0], {"type": "noop", "queue": "reports"})["id"] for _ in range(5)]
    time.sleep(1.5)  # Time for several dispatch rounds: none may lease.
    assert {c.job(i)["status"] for i in ids} == {"pending"}
    body = get(c.followers()[1], "/v1/queues/reports")
    assert body["counts"]["pending"] == 5 and body["counts"]["running"] == 0
    post(c.followers()[1], "/v1/queues/reports", {"paused": False}, method="PUT")
    for i in ids:
        done(c, i)
    listed = {x["name"]: x for x in get(leader, "/v1/queues")["queues"]}
    assert listed["reports"]["counts"]["completed"] == 5
    st, _, err = leader.req("PUT", "/v1/queues/reports", {"paused": "yes"})
    assert st == 400 and err["error"]["field"] == "paused"


def test_queue_concurrency_limit_holds_for_200_jobs(cluster, tmp_path):
    c = cluster(flags=TTL)
    leader = c.leader()
    post(leader, "/v1/queues/limited", {"concurrency": 3}, method="PUT")
    c.start_worker("w1", concurrency=8, queues="limited")
    c.start_worker("w2", concurrency=8, queues="limited")
    log = tmp_path / "conc.log"
    cmd = f"echo S $(date +%s%N) >> {log}; sleep 0.02; echo E $(date +%s%N) >> {log}"
    jobs = [{"type": "shell", "queue": "limited", "payload": {"cmd": cmd}} for _ in range(200)]
    ids = []
    for k in range(0, 200, 100):
        st, _, body = leader.req("POST", "/v1/jobs", jobs[k:k + 100])
        assert st == 201, body
        ids += [j["id"] for j in body["jobs"]]
    wait_until(lambda: get(leader, "/v1/queues/limited")["counts"]["completed"] == 200,
               timeout=120, interval=0.2, what="200 completed")
    peak, n = intervals(log)
    assert n == 200
    assert peak <= 3, f"{peak} ran at once"
    assert peak >= 2  # The cap, not one slow worker, was the limit.


def test_concurrency_key_one_per_user(cluster, tmp_path):
    c = cluster(flags=TTL)
    c.start_worker("w1", concurrency=8)
    log = tmp_path / "key.log"
    other = tmp_path / "other.log"

    def job(user, path):
        return {"type": "shell", "user_id": user, "concurrency_key": user,
                "payload": {"cmd": f"echo S $(date +%s%N) >> {path}; sleep 0.05; "
                                   f"echo E $(date +%s%N) >> {path}"}}
    st, _, body = c.leader().req("POST", "/v1/jobs", [job("alice", log)] * 10 +
                                 [job("bob", other)] * 10)
    assert st == 201
    for j in body["jobs"]:
        done(c, j["id"])
    assert intervals(log) == (1, 10)
    assert intervals(other) == (1, 10)


def test_priority_aging_lets_an_old_job_overtake(cluster):
    c = cluster(flags=TTL + ["--priority-aging", "1"])
    leader = c.leader()
    post(leader, "/v1/queues/aging", {"paused": True}, method="PUT")
    old = submit(leader, {"type": "noop", "queue": "aging", "priority": 0})
    time.sleep(3.2)  # Three levels gained: effective priority 3.
    high = [submit(leader, {"type": "noop", "queue": "aging", "priority": 2})["id"]
            for _ in range(5)]
    c.start_worker("w1", concurrency=1, queues="aging")
    post(leader, "/v1/queues/aging", {"paused": False}, method="PUT")
    for i in high + [old["id"]]:
        done(c, i)
    first = min(parse_ms(c.job(i)["started_at"]) for i in high)
    assert parse_ms(c.job(old["id"])["started_at"]) < first


def test_retention_removes_finished_jobs(cluster):
    c = cluster(flags=TTL + ["--retention-completed", "1", "--retention-cancelled", "0"])
    c.start_worker("w1")
    leader = c.leader()
    ok = submit(leader, {"type": "noop"})
    cancelled = submit(leader, {"type": "noop", "delay": "1h"})
    post(leader, f"/v1/jobs/{cancelled['id']}", method="DELETE")
    done(c, ok["id"])
    wait_until(lambda: leader.req("GET", f"/v1/jobs/{ok['id']}")[0] == 404, timeout=15,
               what="the completed job removed")
    assert c.job(cancelled["id"])["status"] == "cancelled"  # Kept: retention 0.
    counts = {x["name"]: x for x in get(leader, "/v1/queues")["queues"]}["default"]["counts"]
    assert counts["completed"] == 0
    c.wait_converged()
