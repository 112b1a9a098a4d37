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
