"""rotactl against a real cluster: every command, JSON and table output,
errors with the server's message and the documented exit codes."""

import json
import os
import subprocess

import pytest

from conftest import ROTACTL, wait_until


def ctl(cluster, *args, servers=None):
    servers = servers or ",".join(f"http://{n.http}" for n in cluster.alive())
    p = subprocess.run([ROTACTL, "--server", servers, *args], capture_output=True,
                       text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(autouse=True)
def built():
    if not os.path.exists(ROTACTL):
        pytest.fail(f"{ROTACTL} is not built")


def test_rotactl_commands(shared_cluster):
    c = shared_cluster
    rc, out, err = ctl(c, "--json", "submit", "--type", "shell", "--payload",
                       '{"cmd":"true"}', "--user", "ctl-user", "--tag", "a=b",
                       "--priority", "4")
    assert rc == 0, err
    job = json.loads(out)
    assert job["priority"] == 4 and job["tags"] == {"a": "b"} and job["user_id"] == "ctl-user"
    # Follower reads catch up within a heartbeat: poll.
    rc, out, _ = wait_until(lambda: (lambda r: r if r[0] == 0 else None)(ctl(c, "get", job["id"])),
                            what="get through the first server")
    assert job["id"] in out and "pending" in out
    rc, out, _ = ctl(c, "--json", "get", job["id"], "--linearizable")
    assert rc == 0 and json.loads(out)["id"] == job["id"]
    rc, out, _ = ctl(c, "list", "--status", "pending", "--user", "ctl-user")
    assert rc == 0 and "ID" in out.splitlines()[0] and job["id"] in out
    rc, out, _ = ctl(c, "--json", "list", "--user", "ctl-user", "--all", "--limit", "1")
    assert rc == 0 and [j["id"] for j in json.loads(out)["jobs"]] == [job["id"]]
    rc, out, _ = ctl(c, "--json", "patch", job["id"], "--priority", "9")
    assert rc == 0 and json.loads(out)["priority"] == 9
    rc, out, _ = ctl(c, "cancel", job["id"])
    assert rc == 0 and "cancelled" in out
    rc, out, err = ctl(c, "cancel", job["id"])
    assert rc == 1 and "conflict" in err and "cannot cancel" in err
    rc, out, _ = ctl(c, "cluster")
    assert rc == 0 and "leader:" in out and out.count("yes") == 3
    rc, out, _ = ctl(c, "--json", "cluster")
    assert rc == 0 and len(json.loads(out)["nodes"]) == 3


def test_rotactl_errors(shared_cluster):
    c = shared_cluster
    rc, _, err = ctl(c, "submit", "--type", "x", "--priority", "999999999")
    assert rc == 1 and "priority" in err
    rc, _, err = ctl(c, "submit")
    assert rc == 2 and "--type is required" in err
    rc, _, err = ctl(c, "frobnicate")
    assert rc == 2
    rc, _, err = ctl(c, "cluster", servers="http://127.0.0.1:1")
    assert rc == 3 and "no server answered" in err
    # A dead first server is skipped.
    rc, out, _ = ctl(c, "cluster", servers="http://127.0.0.1:1," + f"http://{c.leader().http}")
    assert rc == 0
    rc, out, _ = ctl(c, "submit", "--help")
    assert rc == 0 and "usage: rotactl submit" in out
    rc, _, err = ctl(c, "remove", "99")
    assert rc == 1 and "not_found" in err


def test_rotactl_scheduling_commands(shared_cluster, tmp_path):
    c = shared_cluster
    rc, out, err = ctl(c, "preview", "30 2 * * *", "--timezone", "America/New_York", "--n", "2")
    assert rc == 0, err
    assert len(json.loads(out)["times"]) == 2
    rc, out, err = ctl(c, "--json", "submit", "--type", "noop", "--schedule", "0 0 1 1 *",
                       "--queue", "ctl-nobody")
    assert rc == 0, err
    sid = json.loads(out)["id"]
    rc, out, err = ctl(c, "pause", sid)
    assert rc == 0 and json.loads(out)["paused"] is True, err
    rc, out, err = ctl(c, "resume", sid)
    assert rc == 0 and json.loads(out)["paused"] is False, err
    rc, out, err = ctl(c, "trigger", sid)
    assert rc == 0, err
    run = json.loads(out)["id"]
    # Reads are served by the first server: poll until it applied the run.
    wait_until(lambda: [r["job_id"] for r in json.loads(ctl(c, "runs", sid)[1])["runs"]] == [run],
               what="the run listed")
    rc, _, err = ctl(c, "trigger", sid)  # overlap=forbid: refused
    assert rc == 1 and "overlap" in err
    rc, out, err = ctl(c, "queue", "ctl-q", "--pause", "--concurrency", "2")
    assert rc == 0 and json.loads(out)["paused"] is True and json.loads(out)["concurrency"] == 2
    rc, out, err = ctl(c, "queue", "ctl-q", "--max-pending", "7")
    assert rc == 0 and json.loads(out)["max_pending"] == 7, (out, err)
    rc, out, err = ctl(c, "queue", "ctl-q", "--max-pending", "none")
    assert rc == 0 and json.loads(out)["max_pending"] is None, (out, err)
    rc, out, err = ctl(c, "queue", "ctl-q", "--max-pending", "lots")
    assert rc != 0 and "max-pending" in err, (rc, out, err)
    wait_until(lambda: "ctl-q" in [q["name"] for q in json.loads(ctl(c, "queues")[1])["queues"]],
               what="the queue listed")
    wf = tmp_path / "wf.json"
    wf.write_text(json.dumps({"name": "ctl", "jobs": [
        {"key": "a", "type": "noop", "queue": "ctl-q"},
        {"key": "b", "type": "noop", "queue": "ctl-q", "depends_on": ["a"]}]}))
    rc, out, err = ctl(c, "workflow", "--file", str(wf))
    assert rc == 0, err
    wid = json.loads(out)["id"]
    rc, out, _ = ctl(c, "workflow", wid, "--cancel")  # A write: the leader answers.
    assert rc == 0 and json.loads(out)["status"] == "cancelled"
    rc, out, _ = ctl(c, "dlq", "--queue", "ctl-q")
    assert rc == 0 and json.loads(out)["jobs"] == []
    rc, out, _ = ctl(c, "dlq", "--queue", "ctl-q", "--retry")
    assert rc == 0 and json.loads(out)["matched"] == 0
