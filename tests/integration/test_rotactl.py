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
