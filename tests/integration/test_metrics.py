"""Operator metrics (issue 15): the per-queue job counters and histograms
agree with what the jobs' records say happened, /metrics passes
`promtool check metrics` on the leader and a follower, and every metric the
Grafana board (deploy/grafana/rota.json) queries exists in a live /metrics.

One 3-node cluster with one worker runs one workload for the whole module:
queue mq-a gets jobs that succeed (one sent to a follower, so it crosses
the forward channel); queue mq-b gets jobs that succeed, one that fails
permanently (an exit code in no_retry_exit_codes: one attempt) and one that
fails every attempt until it goes to the dead-letter queue (two attempts);
queue mq-cron holds a schedule triggered once (no worker serves it)."""

import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, done, module_cluster, submit, wait_until

pytestmark = pytest.mark.usefixtures("worker_built")

PROMTOOL = shutil.which("promtool")
BOARD = os.path.join(ROOT, "deploy", "grafana", "rota.json")
PROM_CONFIG = os.path.join(ROOT, "deploy", "prometheus.yml")
FAST_BACKOFF = {"initial": "100ms", "multiplier": 1, "max": "100ms", "jitter": 0}
QUEUES = ("mq-a", "mq-b")


def parse(text):
    """{(sample name, frozenset of label pairs): value} of a /metrics page."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        assert m, f"unparsable line: {line!r}"
        labels = frozenset(re.findall(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metrics_of(node):
    st, _, text = node.req("GET", "/metrics")
    assert st == 200, (st, text)
    return text


def summed(cluster, name, **labels):
    """@name's value with @labels, summed over every node (the job counters
    count on the node that led when the event happened)."""
    want = {(k, v) for k, v in labels.items()}
    total = 0.0
    for n in cluster.alive():
        for (sample, lbls), v in parse(metrics_of(n)).items():
            if sample == name and lbls == frozenset(want):
                total += v
    return total


@pytest.fixture(scope="module")
def mc(request):
    yield from module_cluster(request, flags=["--worker-ttl", "2000"])


@pytest.fixture(scope="module")
def workload(mc):
    """Runs the jobs once; returns {queue: [final job records]} and the
    schedule's triggered run."""
    mc.start_worker("mw", queues=",".join(QUEUES))
    leader = mc.leader()
    follower = mc.followers()[0]
    ids = {"mq-a": [], "mq-b": []}
    ids["mq-a"].append(submit(follower, {"type": "noop", "queue": "mq-a"})["id"])
    st, _, body = leader.req("POST", "/v1/jobs", [{"type": "noop", "queue": "mq-a"}] * 2)
    assert st == 201, body
    ids["mq-a"] += [j["id"] for j in body["jobs"]]
    ids["mq-b"] += [submit(leader, {"type": "noop", "queue": "mq-b"})["id"] for _ in range(2)]
    perm = submit(follower, {"type": "shell", "queue": "mq-b", "max_attempts": 3,
                             "no_retry_exit_codes": [7], "payload": {"cmd": "exit 7"}})
    dead = submit(leader, {"type": "shell", "queue": "mq-b", "max_attempts": 2,
                           "backoff": FAST_BACKOFF, "payload": {"cmd": "exit 3"}})
    ids["mq-b"] += [perm["id"], dead["id"]]
    sched = submit(leader, {"type": "noop", "queue": "mq-cron", "schedule": "0 0 1 1 *"})
    st, _, run = leader.req("POST", f"/v1/jobs/{sched['id']}/trigger")
    assert st == 201, run
    jobs = {q: [done(mc, i, status="completed" if i not in (perm["id"], dead["id"]) else "failed")
                for i in qids] for q, qids in ids.items()}
    assert next(j for j in jobs["mq-b"] if j["id"] == perm["id"])["attempts"] == 1
    assert next(j for j in jobs["mq-b"] if j["id"] == dead["id"])["attempts"] == 2
    return jobs


def expected(jobs):
    """The counters each queue's job records imply."""
    exp = {}
    for q, js in jobs.items():
        attempts = sum(j["attempts"] for j in js)
        ok = sum(1 for j in js if j["status"] == "completed")
        exp[q] = {
            "rota_jobs_submitted_total": len(js),
            "rota_jobs_started_total": attempts,
            "rota_jobs_completed_total": ok,
            "rota_jobs_failed_total": attempts - ok,
            "rota_jobs_dead_total": sum(1 for j in js if j["status"] == "failed"),
            "rota_job_duration_seconds_count": attempts,
            "rota_job_start_delay_seconds_count": attempts,
        }
    return exp


def test_queue_counters_match_the_jobs(mc, workload):
    exp = expected(workload)
    assert exp["mq-b"]["rota_jobs_failed_total"] == 3 and exp["mq-b"]["rota_jobs_dead_total"] == 2

    def observed():
        return {q: {name: summed(mc, name, queue=q) for name in e} for q, e in exp.items()}
    # The counters move when the leader applies each entry: poll until they
    # say what the records say, then compare exactly (the message shows both).
    try:
        wait_until(lambda: observed() == exp, timeout=10, what="counters equal to the records")
    except AssertionError:
        pass
    assert observed() == exp
    # The seed names stay, unlabelled: whole jobs ended, attempts leased.
    assert summed(mc, "jobs_completed") == 5
    assert summed(mc, "jobs_failed") == 2
    assert summed(mc, "jobs_started") == 8
    assert summed(mc, "job_duration_seconds_count") == 8
    # A triggered schedule run is a fire; its queue is served by no worker.
    assert summed(mc, "rota_schedule_fires_total") == 1
    assert summed(mc, "rota_jobs_submitted_total", queue="mq-cron") == 1  # The schedule.
    assert summed(mc, "rota_jobs_started_total", queue="mq-cron") == 0


def test_histograms_are_consistent(mc, workload):
    leader = mc.leader()
    m = parse(metrics_of(leader))
    for name in ("rota_job_duration_seconds", "rota_job_start_delay_seconds"):
        for q in QUEUES:
            buckets = sorted(((float(dict(l)["le"]), v) for (s, l), v in m.items()
                              if s == name + "_bucket" and dict(l).get("queue") == q))
            assert buckets and buckets[-1][0] == float("inf"), (name, q)
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), (name, q, buckets)  # Cumulative.
            assert counts[-1] == m[(name + "_count", frozenset({("queue", q)}))]
            assert m[(name + "_sum", frozenset({("queue", q)}))] >= 0
    # Every committed entry the leader proposed is one commit latency sample.
    lat = {s: v for (s, l), v in m.items() if s.startswith("rota_raft_commit_latency_seconds")
           and not l or dict(l).get("le") == "+Inf"}
    assert lat["rota_raft_commit_latency_seconds_count"] > 0
    assert lat["rota_raft_commit_latency_seconds_bucket"] == lat["rota_raft_commit_latency_seconds_count"]
    assert lat["rota_raft_commit_latency_seconds_count"] <= m[("rota_raft_entries_proposed_total", frozenset())]
    # Every node spent time applying entries (seconds, not a count of them).
    for n in mc.alive():
        w = parse(metrics_of(n))
        assert 0 < w[("rota_fsm_apply_seconds_total", frozenset())] < 600, n
    # A follower applies its entries after answering the leader (raft_fsm.h).
    for n in mc.followers():
        w = parse(metrics_of(n))
        assert w[("rota_fsm_applies_held_total", frozenset())] > 0, n
    # Workers: one alive on every node's view of the replicated state.
    for n in mc.alive():
        w = parse(metrics_of(n))
        assert w[("rota_workers", frozenset({("state", "alive")}))] + \
            w[("rota_workers", frozenset({("state", "late")}))] >= 1


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
def test_promtool_check_metrics(mc, workload):
    for node in (mc.leader(), mc.followers()[0]):
        text = metrics_of(node)
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=60)
        report = (p.stdout + p.stderr).decode().strip()
        assert p.returncode == 0 and report == "", f"node {node.id}:\n{report}"


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset",
                "bool", "and", "or", "unless", "inf", "nan"}


def board_queries():
    """The board, the PromQL of its panels, and the selectors of its query
    variables (label_values(SELECTOR, label))."""
    with open(BOARD) as f:
        board = json.load(f)
    exprs = []

    def walk(x):
        if isinstance(x, dict):
            if isinstance(x.get("expr"), str):
                exprs.append(x["expr"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(board["panels"])
    selectors = []
    for v in board["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.match(r"^label_values\((.+),\s*\w+\)$", q)
            assert m, q
            selectors.append(m.group(1))
    return board, exprs, selectors


def metric_names(expr):
    """The metric names a PromQL expression selects."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)        # strings
    e = re.sub(r"\{[^}]*\}", " ", e)                     # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)                    # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)                   # dashboard variables
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", e):
        if m.group(2) or m.group(1).lower() in PROMQL_WORDS:
            continue  # A function call or a keyword.
        names.add(m.group(1))
    return names


def test_metric_names_parser():
    assert metric_names('sum by (queue) (rate(rota_jobs_started_total{queue=~"$queue"}[$__rate_interval]))') \
        == {"rota_jobs_started_total"}
    assert metric_names("histogram_quantile(0.99, sum by (le) (rate(x_bucket[1m]))) / on(instance) y") \
        == {"x_bucket", "y"}


def test_grafana_board_uses_live_metrics(mc, workload):
    board, exprs, selectors = board_queries()
    assert 35 <= board["schemaVersion"] <= 41
    assert any(v.get("type") == "datasource" and v.get("query") == "prometheus"
               for v in board["templating"]["list"])
    assert len(exprs) >= 14, exprs
    live = set()
    for n in mc.alive():
        live |= {s for s, _ in parse(metrics_of(n))}
    used = set()
    for e in exprs + selectors:
        used |= metric_names(e)
    assert used, exprs
    missing = sorted(used - live)
    assert not missing, f"queried by {BOARD} but not in /metrics: {missing}"
    # Counters that count on the leader only are summed over the instances.
    for e in exprs:
        for name in ("rota_jobs_submitted_total", "rota_jobs_started_total",
                     "rota_jobs_completed_total", "rota_jobs_failed_total",
                     "rota_jobs_dead_total"):
            if name in e:
                assert re.search(r"\bsum\b", e), e


def test_prometheus_config_parses():
    import yaml
    with open(PROM_CONFIG) as f:
        cfg = yaml.safe_load(f)
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert len(jobs["rota"]["static_configs"][0]["targets"]) == 3
    if PROMTOOL is not None:
        p = subprocess.run([PROMTOOL, "check", "config", PROM_CONFIG],
                           capture_output=True, timeout=60)
        assert p.returncode == 0, (p.stdout + p.stderr).decode()


def test_lost_lease_counts_as_an_expiry_and_a_dead_letter(mc, workload):
    """A worker killed while it runs a job with no attempt left: the leader
    declares it down, the lease expires, the attempt fails and the job goes
    to the dead-letter queue; the worker shows as down. (Last: it leaves a
    down worker behind.)"""
    w = mc.start_worker("mlost", queues="mq-lost")
    job = submit(mc.leader(), {"type": "sleep", "queue": "mq-lost", "max_attempts": 1,
                               "payload": {"ms": 60000}})
    wait_until(lambda: mc.job(job["id"])["status"] == "running", what="running")
    w.kill()
    w.wait(timeout=10)
    done(mc, job["id"], status="failed")
    exp = {"rota_jobs_started_total": 1, "rota_jobs_completed_total": 0,
           "rota_jobs_failed_total": 1, "rota_jobs_dead_total": 1}

    def observed():
        return {name: summed(mc, name, queue="mq-lost") for name in exp}
    try:
        wait_until(lambda: observed() == exp, timeout=10, what="lost lease counted")
    except AssertionError:
        pass
    assert observed() == exp
    assert summed(mc, "rota_lease_expiries_total") == 1
    assert summed(mc, "rota_leases_lost_total") == 1
    leader = parse(metrics_of(mc.leader()))
    assert leader[("rota_workers", frozenset({("state", "down")}))] == 1
