"""rota-bench measures what it says: every mode runs to completion against a
real cluster and prints one JSON line whose counts match the jobs that
exist (the figures themselves are timings, kept out of pass/fail)."""

import json
import os
import subprocess

import pytest

from conftest import BUILD, request

BENCH = os.path.join(BUILD, "bench", "rota-bench")


def run_bench(*args, timeout=120):
    p = subprocess.run([BENCH, *args], capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    return p.returncode, lines, p.stderr


@pytest.fixture
def bench_built():
    if not os.path.exists(BENCH):
        pytest.fail(f"{BENCH} is not built")


def queue_counts(node, queue):
    """The queue's counters as @node answers (with the cluster's CA and
    token in secure mode)."""
    st, _, q = node.req("GET", f"/v1/queues/{queue}")
    assert st == 200, q
    return q["counts"]


def test_submit_counts_every_job(shared_cluster, bench_built):
    nodes = ",".join("http://" + n.http for n in shared_cluster.alive())
    rc, lines, err = run_bench("submit", "--nodes", nodes, "--jobs", "250",
                               "--concurrency", "8", "--spread")
    assert rc == 0, err
    (line,) = lines
    assert line["mode"] == "submit" and line["nodes"] == 3
    assert (line["jobs"], line["ok"], line["errors"]) == (250, 250, 0)
    assert line["latency_ms"]["p50"] > 0


def test_e2e_waits_for_every_job(shared_cluster, bench_built, worker_built):
    """e2e starts its workers, waits on the queue's counters and reads every
    completed job back for its latency: the queue it used holds exactly the
    jobs it reports, all completed."""
    lead = shared_cluster.leader()
    rc, lines, err = run_bench("e2e", "--nodes", "http://" + lead.http,
                               "--jobs", "300", "--workers", "2", "--duration-limit", "60")
    assert rc == 0, err
    submit_line, e2e = lines
    assert submit_line["ok"] == 300
    assert e2e["mode"] == "e2e" and e2e["completed"] == 300
    assert 0 <= e2e["submit_to_start_ms"]["p50"] <= e2e["submit_to_start_ms"]["p99"]
    # Its last progress line counted them all (from the queue's counters).
    progress = [ln for ln in err.splitlines() if "jobs completed" in ln]
    assert progress and progress[-1].split()[2] == "300", progress[-1:]
    st, _, listed = request(lead.http, "GET", "/v1/queues")
    assert st == 200
    mine = [q for q in listed["queues"] if q["name"].startswith("bench-")
            and q["counts"]["completed"] == 300]
    assert mine, listed
    counts = mine[-1]["counts"]
    assert counts["pending"] == counts["running"] == counts["failed"] == 0


def test_submit_over_tls_verifies_the_node(cluster, tmp_path, bench_built):
    """Against a secure cluster rota-bench speaks HTTPS, checks each node's
    certificate against the CA it is given (an IP address in the
    certificate, as rotactl makes them) and sends the token: every job is
    accepted. With another CA's certificate, or a token the cluster does
    not know, nothing is."""
    from test_security import make_certs
    certs = make_certs(str(tmp_path / "certs"), "127.0.0.1")
    other = make_certs(str(tmp_path / "other"), "127.0.0.1")
    c = cluster(3, ["--certs-dir", certs])
    nodes = ",".join("https://" + n.http for n in c.alive())
    token = tmp_path / "token"
    token.write_text(c.token + "\n")
    args = ["submit", "--nodes", nodes, "--jobs", "120", "--concurrency", "6",
            "--spread", "--token-file", str(token)]
    rc, lines, err = run_bench(*args, "--ca-file", os.path.join(certs, "ca.crt"))
    assert rc == 0, err
    (line,) = lines
    assert (line["ok"], line["errors"]) == (120, 0), err
    assert queue_counts(c.leader(), "default")["pending"] == 120

    rc, lines, err = run_bench(*args, "--ca-file", os.path.join(other, "ca.crt"))
    assert rc != 0
    (line,) = lines
    assert line["ok"] == 0 and line["errors"] == 120, line
    assert "first error" in err, err

    token.write_text("0" * 64 + "\n")
    rc, lines, err = run_bench(*args, "--ca-file", os.path.join(certs, "ca.crt"))
    assert rc != 0 and lines[0]["ok"] == 0
    assert "HTTP status 401" in err, err
    assert queue_counts(c.leader(), "default")["pending"] == 120


def test_pairs_summary_pairs_runs_in_order(tmp_path):
    """bench/compare.py --pairs (bench/pairs.sh's summary) pairs the k-th
    BullMQ W1 of each durability with the k-th single-submit rota-bench
    run, leaves bulk runs out, and gives the median of the ratios; a run
    missing in the last pair is shown as missing, not paired with another
    pair's run."""
    from conftest import ROOT

    def bull(label, workload, rate):
        return {"peer": "bullmq", "workload": workload, "label": label,
                "submit": {"jobs_per_s": rate}}
    lines_b = []
    for every, always in ((20000, 16000), (10000, 8000), (30000, 20000)):
        lines_b += [bull("redis aof everysec", "w1", every),
                    bull("redis aof always", "w1", always),
                    bull("redis aof always", "w1bulk", 99999)]
    lines_b.append(bull("redis aof everysec", "w1", 40000))  # a fourth pair, its Rota run missing
    rota = [{"mode": "submit", "batch": 1, "jobs_per_s": 18000},
            {"mode": "submit", "batch": 100, "jobs_per_s": 500000},
            {"mode": "submit", "batch": 1, "jobs_per_s": 12000},
            {"mode": "submit", "batch": 1, "jobs_per_s": 30000}]
    (tmp_path / "peers-bullmq.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in lines_b))
    (tmp_path / "rota-bench.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in rota))
    p = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "compare.py"),
                        "--pairs", str(tmp_path)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    rows = [ln.split() for ln in p.stdout.splitlines() if ln.strip()[:1].isdigit()]
    assert rows == [
        ["1", "20,000", "16,000", "18,000", "0.90x", "1.12x"],
        ["2", "10,000", "8,000", "12,000", "1.20x", "1.50x"],
        ["3", "30,000", "20,000", "30,000", "1.00x", "1.50x"],
        ["4", "40,000", "-", "-", "-", "-"],
    ], p.stdout
    assert "median of the ratios: 1.00x against AOF everysec" in p.stdout
    assert "1.50x against appendfsync always" in p.stdout
    assert "2 of 3 pairs at or above 1x" in p.stdout
    assert "a run is missing" in p.stdout


def test_pairs_summary_tmpfs_column(tmp_path):
    """With TMPFS=1, bench/pairs.sh's third run of each pair (the nodes'
    data on tmpfs) gets its own column, paired by position like the
    others, and its own median ratio against AOF everysec; a pair whose
    tmpfs run is missing is flagged."""
    from conftest import ROOT

    bull = []
    for every, always in ((20000, 10000), (16000, 8000)):
        bull += [{"workload": "w1", "label": "redis aof everysec",
                  "submit": {"jobs_per_s": every}},
                 {"workload": "w1", "label": "redis aof always",
                  "submit": {"jobs_per_s": always}}]
    disk = [{"mode": "submit", "batch": 1, "jobs_per_s": 18000},
            {"mode": "submit", "batch": 1, "jobs_per_s": 12000}]
    tmpfs = [{"mode": "submit", "batch": 1, "jobs_per_s": 24000}]
    for name, rows in (("peers-bullmq.jsonl", bull), ("rota-bench.jsonl", disk),
                       ("rota-bench-tmpfs.jsonl", tmpfs)):
        (tmp_path / name).write_text("".join(json.dumps(x) + "\n" for x in rows))
    p = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "compare.py"),
                        "--pairs", str(tmp_path)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    rows = [ln.split() for ln in p.stdout.splitlines() if ln.strip()[:1].isdigit()]
    assert rows == [
        ["1", "20,000", "10,000", "18,000", "0.90x", "1.80x", "24,000", "1.20x"],
        ["2", "16,000", "8,000", "12,000", "0.75x", "1.50x", "-", "-"],
    ], p.stdout
    assert "on tmpfs (no disk wait in the commit): 1.20x against AOF everysec" in p.stdout
    assert "1 of 1 pairs at or above 1x" in p.stdout
    assert "a run is missing" in p.stdout
