"""rotactl against a real cluster: every command, JSON and table output,
errors with the server's message and the documented exit codes."""

import json
import os
import subprocess

import pytest

from conftest import ROTACTL, free_port, wait_until


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
    rc, out, err = ctl(c, "--json", "preview", "30 2 * * *", "--timezone", "America/New_York",
                       "--n", "2")
    assert rc == 0, err
    times = json.loads(out)["times"]
    assert len(times) == 2
    rc, out, err = ctl(c, "preview", "30 2 * * *", "--timezone", "America/New_York", "--n", "2")
    assert rc == 0 and out.split() == times, (out, err)  # One time a line.
    rc, out, err = ctl(c, "--json", "submit", "--type", "noop", "--schedule", "0 0 1 1 *",
                       "--queue", "ctl-nobody")
    assert rc == 0, err
    sid = json.loads(out)["id"]
    rc, out, err = ctl(c, "--json", "pause", sid)
    assert rc == 0 and json.loads(out)["paused"] is True, err
    rc, out, err = ctl(c, "resume", sid)
    assert rc == 0 and out.startswith(f"resumed schedule {sid}"), (out, err)
    rc, out, err = ctl(c, "pause", sid, "--json")  # --json after the command.
    assert rc == 0 and json.loads(out)["paused"] is True, err
    rc, out, err = ctl(c, "-o", "json", "resume", sid)
    assert rc == 0 and json.loads(out)["paused"] is False, err
    rc, out, err = ctl(c, "--json", "trigger", sid)
    assert rc == 0, err
    run = json.loads(out)["id"]
    # Reads are served by the first server: poll until it applied the run.
    wait_until(lambda: [r["job_id"] for r in
                        json.loads(ctl(c, "--json", "runs", sid)[1])["runs"]] == [run],
               what="the run listed")
    rc, out, err = ctl(c, "runs", sid)
    assert rc == 0 and "OUTCOME" in out.splitlines()[0] and run in out, (out, err)
    rc, _, err = ctl(c, "trigger", sid)  # overlap=forbid: refused
    assert rc == 1 and "overlap" in err
    rc, out, err = ctl(c, "--json", "queue", "ctl-q", "--pause", "--concurrency", "2")
    assert rc == 0 and json.loads(out)["paused"] is True and json.loads(out)["concurrency"] == 2
    rc, out, err = ctl(c, "--json", "queue", "ctl-q", "--max-pending", "7")
    assert rc == 0 and json.loads(out)["max_pending"] == 7, (out, err)
    rc, out, err = ctl(c, "queue", "ctl-q", "--max-pending", "none")
    row = out.splitlines()[1].split()
    assert rc == 0 and row[:4] == ["ctl-q", "paused", "2", "none"], (out, err)
    rc, out, err = ctl(c, "queue", "ctl-q", "--max-pending", "lots")
    assert rc != 0 and "max-pending" in err, (rc, out, err)
    wait_until(lambda: "ctl-q" in [q["name"] for q in
                                   json.loads(ctl(c, "--json", "queues")[1])["queues"]],
               what="the queue listed")
    rc, out, err = ctl(c, "queues")
    assert rc == 0 and "NAME" in out.splitlines()[0], err
    assert any(l.split()[:2] == ["ctl-q", "paused"] for l in out.splitlines()), out
    wf = tmp_path / "wf.json"
    wf.write_text(json.dumps({"name": "ctl", "jobs": [
        {"key": "a", "type": "noop", "queue": "ctl-q"},
        {"key": "b", "type": "noop", "queue": "ctl-q", "depends_on": ["a"]}]}))
    rc, out, err = ctl(c, "--json", "workflow", "--file", str(wf))
    assert rc == 0, err
    wid = json.loads(out)["id"]
    rc, out, _ = ctl(c, "workflow", wid, "--cancel")  # A write: the leader answers.
    assert rc == 0 and out.startswith(f'workflow {wid} "ctl": cancelled'), out
    assert "2 cancelled" in out.splitlines()[0] and "ID" in out.splitlines()[1], out
    rc, out, _ = ctl(c, "--json", "dlq", "--queue", "ctl-q")
    assert rc == 0 and json.loads(out)["jobs"] == []
    rc, out, _ = ctl(c, "dlq", "-q", "ctl-q")
    assert rc == 0 and "LAST ERROR" in out and len(out.splitlines()) == 1, out
    rc, out, _ = ctl(c, "--json", "dlq", "--queue", "ctl-q", "--retry")
    assert rc == 0 and json.loads(out)["matched"] == 0
    rc, out, _ = ctl(c, "dlq", "--queue", "ctl-q", "--retry")
    assert rc == 0 and out.strip() == "retried 0 of 0 dead-letter jobs", out


def test_rotactl_workers(shared_cluster, worker_built):
    c = shared_cluster
    c.start_worker("ctl-worker-1", concurrency=3, queues="ctl-wq")
    rc, out, err = wait_until(
        lambda: (lambda r: r if "ctl-worker-1" in r[1] else None)(ctl(c, "workers")),
        what="the worker listed")
    assert rc == 0, err
    assert out.splitlines()[0].split()[:3] == ["NAME", "ID", "STATE"], out
    assert "LAST HEARTBEAT" in out.splitlines()[0]
    row = next(l for l in out.splitlines() if l.startswith("ctl-worker-1 "))
    assert " alive " in row and "ctl-wq" in row and "/3" in row, row
    # Heartbeats live in the leader's memory: it shows their age.
    leader = f"http://{c.leader().http}"
    rc, out, err = wait_until(
        lambda: (lambda r: r if "ctl-worker-1" in r[1] else None)(
            ctl(c, "workers", servers=leader)), what="the worker listed by the leader")
    row = next(l for l in out.splitlines() if l.startswith("ctl-worker-1 "))
    assert row.endswith("s ago") and " alive " in row, row
    rc, jout, err = ctl(c, "--json", "workers")
    assert rc == 0, err
    w = next(w for w in json.loads(jout)["workers"] if w["name"] == "ctl-worker-1")
    assert w["id"] in row and w["concurrency"] == 3 and w["queues"] == "ctl-wq"


def test_rotactl_output_option(shared_cluster):
    """-o json is --json (before or after the command); -o table the default."""
    c = shared_cluster
    leader = [f"http://{c.leader().http}"]  # One node: the same answer twice.
    _, a, _ = ctl(c, "--json", "cluster", servers=leader[0])
    _, b, _ = ctl(c, "-o", "json", "cluster", servers=leader[0])
    _, d, _ = ctl(c, "cluster", "-o", "json", servers=leader[0])
    _, e, _ = ctl(c, "--output=json", "cluster", servers=leader[0])
    assert json.loads(a)["nodes"] == json.loads(b)["nodes"] == json.loads(d)["nodes"] \
        == json.loads(e)["nodes"]
    rc, t, _ = ctl(c, "--json", "-o", "table", "cluster", servers=leader[0])
    assert rc == 0 and t.startswith("leader:"), t
    rc, _, err = ctl(c, "-o", "yaml", "cluster")
    assert rc == 2 and "json or table" in err


def test_rotactl_short_options(shared_cluster):
    c = shared_cluster
    rc, out, err = ctl(c, "-o", "json", "submit", "-t", "noop", "-q", "ctl-short",
                       "-p", '{"n":1}', "--user", "ctl-short-user")
    assert rc == 0, err
    job = json.loads(out)
    assert job["type"] == "noop" and job["queue"] == "ctl-short" and job["payload"] == {"n": 1}
    rc, out, err = ctl(c, "--json", "submit", "-t", "noop", "-q", "ctl-short",
                       "--user", "ctl-short-user")
    assert rc == 0, err
    rc, out, err = wait_until(lambda: (lambda r: r if len(json.loads(r[1])["jobs"]) == 2
                                       else None)(
        ctl(c, "--json", "list", "-q", "ctl-short", "-t", "noop", "--user", "ctl-short-user")),
        what="both jobs listed")
    rc, out, err = ctl(c, "--json", "list", "-q", "ctl-short", "-n", "1")
    assert rc == 0 and len(json.loads(out)["jobs"]) == 1 and "next_cursor" in json.loads(out)
    # -s is --server.
    p = subprocess.run([ROTACTL, "-s", f"http://{c.leader().http}", "cluster"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith("leader:"), p.stderr
    rc, out, _ = ctl(c, "--help")
    assert rc == 0 and "-s, --server" in out and "-q --queue" in out


def run_env(env_extra, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("ROTA_SERVER", "ROTA_SERVERS")}
    env.update(env_extra)
    p = subprocess.run([ROTACTL, *args], capture_output=True, text=True, timeout=30,
                       env=env, cwd="/")
    return p.returncode, p.stdout, p.stderr


def test_rotactl_environment(shared_cluster):
    """ROTA_SERVERS (rota-worker's name) first, then ROTA_SERVER; -s wins."""
    c = shared_cluster
    follower = f"http://{c.followers()[0].http}"
    dead = "http://127.0.0.1:1"
    rc, out, err = run_env({"ROTA_SERVERS": f"{dead},{follower}"}, "cluster")
    assert rc == 0 and out.startswith("leader:") and "127.0.0.1:1/" in err, (out, err)
    rc, out, err = run_env({"ROTA_SERVERS": follower, "ROTA_SERVER": dead}, "cluster")
    assert rc == 0 and err == "", err  # ROTA_SERVERS is read first.
    rc, out, err = run_env({"ROTA_SERVER": follower}, "cluster")  # The old name.
    assert rc == 0, err
    rc, out, err = run_env({"ROTA_SERVERS": follower}, "-s", dead, "cluster")
    assert rc == 3 and "no server answered" in err
    rc, out, err = run_env({"ROTA_SERVERS": dead}, "--server", follower, "cluster")
    assert rc == 0, err


COMPLETION = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "ctl", "rotactl.bash-completion")


def complete(*words):
    """COMPREPLY of the completion function for the command line @words
    (the last one being completed)."""
    script = (f"source {COMPLETION}\n"
              "COMP_WORDS=(\"$@\"); COMP_CWORD=$(( $# - 1 ))\n"
              "COMP_LINE=\"$*\"; COMP_POINT=${#COMP_LINE}\n"
              "_rotactl rotactl \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\"\n"
              "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    p = subprocess.run(["bash", "-c", script, "bash", *words], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return [w for w in p.stdout.splitlines() if w]


def test_rotactl_bash_completion():
    p = subprocess.run(["bash", "-n", COMPLETION], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert complete("rotactl", "wo") == ["workers", "workflow"]
    assert complete("rotactl", "work") == ["workers", "workflow"]
    assert complete("rotactl", "worke") == ["workers"]
    assert complete("rotactl", "-s", "http://x:1", "cl") == ["cluster"]
    assert "--limit" in complete("rotactl", "list", "--")
    assert complete("rotactl", "-o", "") == ["json", "table"]
    assert complete("rotactl", "acl", "token", "") == ["create", "list", "delete"]
    assert complete("rotactl", "wa") == ["wait", "watch"]
    assert complete("rotactl", "wait", "ID", "--") == ["--json", "--help", "--timeout"]
    assert {"--queue", "--type", "--job", "--events", "--last-event-id"} <= \
        set(complete("rotactl", "watch", "--"))
    assert complete("rotactl", "watch", "--events", "job.c") == ["job.created", "job.completed",
                                                                 "job.cancelled"]
    assert complete("rotactl", "watch", "--events", "job.*,wor") == ["job.*,worker.*",
                                                                     "job.*,worker.up",
                                                                     "job.*,worker.down"]
    assert complete("rotactl", "watch", "--job", "") == []
    assert complete("rotactl", "webhook", "") == ["create", "list", "get", "delete",
                                                  "deliveries"]
    assert {"--url", "--events", "--queue", "--secret"} <= \
        set(complete("rotactl", "webhook", "create", "--"))
    assert complete("rotactl", "webhook", "create", "--events", "job.d") == ["job.dead"]
    assert "--after" in complete("rotactl", "webhook", "deliveries", "ID", "--")
    p = subprocess.run(["bash", "-c", f"source {COMPLETION}; complete -p rotactl"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "-F _rotactl" in p.stdout, p.stderr


def test_rotactl_webhook(shared_cluster):
    """webhook create (made and given secrets), list, get, deliveries of a
    receiver that is down, delete; usage errors."""
    c = shared_cluster
    dead_url = f"http://127.0.0.1:{free_port()}/hook"  # Nobody listens.
    rc, out, err = ctl(c, "-o", "json", "webhook", "create", "--url", dead_url, "--events",
                       "job.cancelled,job.dead", "-q", "ctl-hq")
    assert rc == 0, err
    hook = json.loads(out)
    assert hook["url"] == dead_url and sorted(hook["events"]) == ["job.cancelled", "job.dead"]
    assert hook["queues"] == ["ctl-hq"] and len(hook["secret"]) >= 16, hook
    rc, out, err = ctl(c, "webhook", "create", "--url", dead_url, "--events", "job.*",
                       "--secret", "s" * 20)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "URL", "QUEUES", "PENDING", "DELIVERED", "EXPIRED",
                                "DROPPED", "EVENTS"] and "secret:" not in out, out
    other = lines[1].split()[0]
    cols = lines[1].split()
    assert cols[1:3] == [dead_url, "all"] and "job.completed" in cols[7].split(","), out
    leader = f"http://{c.leader().http}"
    rc, out, err = ctl(c, "webhook", "list", servers=leader)
    ids = [l.split()[0] for l in out.splitlines()[1:]]
    assert rc == 0 and hook["id"] in ids and other in ids, (out, err)
    rc, out, err = ctl(c, "--json", "webhook", "get", hook["id"], servers=leader)
    assert rc == 0 and json.loads(out)["secret_set"] is True and "secret" not in json.loads(out)
    # A cancelled job of the queue: one delivery, failing against the dead URL.
    job = c.leader().req("POST", "/v1/jobs", {"type": "noop", "queue": "ctl-hq"})[2]
    assert c.leader().req("DELETE", f"/v1/jobs/{job['id']}")[0] == 200
    rc, out, err = wait_until(
        lambda: (lambda r: r if json.loads(r[1])["deliveries"] and
                 json.loads(r[1])["deliveries"][0]["tries"] >= 1 else None)(
            ctl(c, "--json", "webhook", "deliveries", hook["id"], servers=leader)),
        timeout=30, what="a failed try recorded")
    d = json.loads(out)["deliveries"][0]
    assert d["event"]["event"] == "job.cancelled" and d["event"]["job"]["id"] == job["id"]
    rc, out, err = ctl(c, "webhook", "deliveries", hook["id"], "--limit", "1", servers=leader)
    assert rc == 0 and "DELIVERY" in out, (out, err)
    row = next(l for l in out.splitlines() if l.startswith(d["delivery"]))
    assert "job.cancelled" in row and job["id"] in row, row
    # Delete: gone from the list; again: the server's 404.
    rc, out, err = ctl(c, "webhook", "delete", hook["id"], servers=leader)
    assert rc == 0 and out.strip() == f"deleted webhook {hook['id']}", (out, err)
    rc, out, err = ctl(c, "webhook", "delete", hook["id"], servers=leader)
    assert rc == 1 and "not_found" in err, (rc, err)
    rc, out, err = ctl(c, "--json", "webhook", "list", servers=leader)
    assert hook["id"] not in [w["id"] for w in json.loads(out)["webhooks"]]
    assert ctl(c, "webhook", "delete", other, servers=leader)[0] == 0
    for bad in ([], ["frob"], ["create", "--url", dead_url], ["create", "--events", "job.*"],
                ["delete"], ["deliveries"]):
        rc, out, err = ctl(c, "webhook", *bad)
        assert rc == 2 and "usage: rotactl webhook" in err, (bad, rc, err)
    rc, out, err = ctl(c, "webhook", "create", "--url", "ftp://x", "--events", "job.*")
    assert rc == 1 and "url" in err, (rc, err)
