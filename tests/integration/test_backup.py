"""Backup, restore and disaster recovery (docs/operations.md, "Backup,
restore and disaster recovery"):

- GET /v1/snapshot through `rotactl snapshot save` while submits run in
  another thread: the file verifies (rotactl and an independent check of
  the header and SHA-256 here);
- `rotad --restore FILE` on an empty data dir seeds a new cluster, two
  fresh nodes join it: every job acknowledged before the save is there,
  with the status it had, on every node; new jobs get new ids;
- a corrupt, truncated or foreign file is refused by `rotactl snapshot
  verify` and by `rotad --restore` (which leaves the data dir unused);
- two of three nodes lost for good (SIGKILL, data dirs deleted):
  `rotad --force-new-cluster` on the survivor keeps every job it had
  committed, takes new submits, fresh nodes join and converge; a restart
  with the flag still given does not force again (marker file);
- a backup saved by a version that wrote snapshot format v1 (the body
  uncompressed) still verifies and restores; the restored node's own
  backups are format v2 (LZ4 blocks, fsm/snapshot.c) and restore too.
"""

import hashlib
import http.client
import json
import os
import shutil
import signal
import struct
import subprocess
import threading
import time

import pytest

from conftest import ROTACTL, ROTAD, Cluster, _finish, submit, wait_until

QUEUE = "bk"
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


@pytest.fixture
def clusters(request):
    """Clusters this test starts itself (a restored one is not started by
    Cluster.start): stopped and checked at the end like conftest's."""
    made = []
    yield made
    problems = []
    for c in made:
        problems += _finish(request, c)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def rotactl(*args, timeout=60):
    p = subprocess.run([ROTACTL, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def parse_file(path):
    """The header fields, checked independently of the C code."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"ROTASNAP"
    version, hlen, index, term, blen = struct.unpack_from("<IIQQQ", data, 8)
    sha = data[40:72]
    node = struct.unpack_from("<Q", data, 72)[0]
    body = data[hlen:]
    return {"version": version, "header_len": hlen, "index": index, "term": term,
            "body_len": blen, "sha_ok": hashlib.sha256(body).digest() == sha,
            "size_ok": len(body) == blen, "node": node}


def all_jobs(node, queue=QUEUE):
    """Every job the node has, id -> status (all pages)."""
    jobs, cursor = {}, None
    while True:
        q = f"/v1/jobs?queue={queue}&limit=1000" + (f"&cursor={cursor}" if cursor else "")
        status, _, page = node.req("GET", q)
        assert status == 200, page
        for j in page["jobs"]:
            jobs[j["id"]] = j["status"]
        cursor = page.get("next_cursor")
        if not cursor:
            return jobs


def seed(leader, n_batches=3):
    """Jobs in three statuses: pending, scheduled (an hour away), cancelled."""
    ids = []
    for b in range(n_batches):
        body = {"jobs": [{"type": "noop", "queue": QUEUE, "payload": {"b": b, "i": i, "pad": "x" * 200}}
                         for i in range(500)]}
        status, _, resp = leader.req("POST", "/v1/jobs", body)  # Atomic batch.
        assert status == 201, resp
        ids += [j["id"] for j in resp["jobs"]]
    for i in range(20):
        ids.append(submit(leader, {"type": "noop", "queue": QUEUE, "delay": "1h"})["id"])
    for jid in ids[:30]:
        status, _, resp = leader.req("DELETE", f"/v1/jobs/{jid}")
        assert status == 200, resp
    return ids


class Submitter(threading.Thread):
    """Submits one job at a time until stopped; records (ack time, id)."""

    def __init__(self, node):
        super().__init__(daemon=True)
        self.node, self.acked, self.errors = node, [], []
        self.halt = threading.Event()

    def run(self):
        i = 0
        while not self.halt.is_set():
            i += 1
            status, _, resp = self.node.req("POST", "/v1/jobs",
                                            {"type": "noop", "queue": QUEUE, "payload": {"load": i}})
            if status == 201:
                self.acked.append((time.monotonic(), resp["id"]))
            else:
                self.errors.append((status, resp))


def members(node):
    status, _, view = node.req("GET", "/v1/cluster")
    return {m["id"]: m for m in view["nodes"]} if status == 200 else {}


def grow(c, via, ids):
    """Join fresh nodes @ids through @via; wait until all are voters."""
    for i in ids:
        c.join(i, via)
    want = {via.id, *ids}
    wait_until(lambda: set(members(via)) >= want
               and all(members(via)[i]["voter"] for i in want),
               timeout=30, what=f"nodes {sorted(want)} voters")


def save_under_load(c, path):
    """rotactl snapshot save (through a follower's address: rotactl goes
    to the leader) while a thread submits. Returns (ids acked before the
    save started, all acked ids, parsed header)."""
    leader = c.leader()
    follower = next(n for n in c.alive() if n.id != leader.id)
    sub = Submitter(follower)
    sub.start()
    wait_until(lambda: len(sub.acked) >= 20, what="submits running")
    t0 = time.monotonic()
    rc, out, err = rotactl("-s", f"http://{follower.http}", "snapshot", "save", path)
    during = len(sub.acked)
    wait_until(lambda: len(sub.acked) >= during + 20, what="submits after the save")
    sub.halt.set()
    sub.join(timeout=20)
    assert rc == 0, (out, err)
    assert not sub.errors, sub.errors[:3]
    before = [jid for t, jid in sub.acked if t < t0]
    h = parse_file(path)
    assert out.startswith(f"saved {path}: index {h['index']}, "), out
    assert h["version"] == 1 and h["header_len"] == 80 and h["sha_ok"] and h["size_ok"], h
    assert h["node"] == leader.id
    assert not [f for f in os.listdir(os.path.dirname(path)) if ".tmp." in f]
    rc, out, err = rotactl("snapshot", "verify", path)
    assert rc == 0 and out.startswith(f"verified {path}: index {h['index']}"), (out, err)
    return before, [jid for _, jid in sub.acked], h


def test_backup_save_under_load_and_restore(cluster, clusters, tmp_path):
    c = cluster(3)
    leader = c.leader()
    seeded = seed(leader)
    path = str(tmp_path / "rota.snap")
    before, acked, h = save_under_load(c, path)
    c.wait_converged()
    original = all_jobs(c.leader())
    assert set(seeded) | set(acked) <= set(original)
    must = set(seeded) | set(before)
    assert {"pending", "scheduled", "cancelled"} <= {original[j] for j in must}

    # A new cluster from the file: node 1 restores, 2 and 3 join it.
    r = Cluster(1, None)
    clusters.append(r)
    first = r.nodes[0]
    first.start(["--cluster", r.spec, "--restore", path] + r.flags)
    r.wait_for_leader()
    assert 'msg="restored from backup"' in first.log_text()
    grow(r, first, [2, 3])
    r.wait_converged(timeout=60)
    for n in r.alive():
        got = all_jobs(n)
        missing = must - set(got)
        assert not missing, (n.id, sorted(missing)[:5])
        # Every job restored is one the old cluster had, in its status.
        assert set(got) <= set(original), n.id
        assert all(got[j] == original[j] for j in got), n.id
        _, _, d = n.req("GET", "/v1/debug/digest")
        assert d["applied_index"] > h["index"]
    # New writes get ids past the restored ones (ids come from the raft
    # index, which continues after the snapshot's).
    restored = all_jobs(r.leader())
    new = submit(r.leader(), {"type": "noop", "queue": QUEUE})
    assert int(new["id"], 16) > max(int(j, 16) for j in restored)
    assert all_jobs(r.leader())[new["id"]] == "pending"
    # The restored node restarts as it is; --restore on it is refused.
    first.kill(signal.SIGTERM)
    first.start(["--cluster", r.spec, "--restore", path] + r.flags)
    wait_until(lambda: not first.alive(), what="restore on a used data dir refused")
    assert first.proc.returncode != 0
    first.checked = True  # Expected exit.
    assert "already holds raft state" in first.log_text()
    first.start(["--cluster", r.spec] + r.flags)
    r.wait_for_leader()
    r.wait_converged(timeout=60)
    assert must <= set(all_jobs(first))


def test_backup_corrupt_files_refused(cluster, tmp_path):
    c = cluster(1)
    leader = c.leader()
    for i in range(5):
        submit(leader, {"type": "noop", "queue": QUEUE, "payload": {"i": i}})
    good = str(tmp_path / "good.snap")
    rc, out, err = rotactl("-s", f"http://{leader.http}", "snapshot", "save", good)
    assert rc == 0, err
    data = open(good, "rb").read()
    cases = {
        "flipped": (data[:200] + bytes([data[200] ^ 1]) + data[201:], "corrupt"),
        "truncated": (data[:-10], "truncated"),
        "header-only": (data[:40], "truncated"),
        "foreign": (b"PK\x03\x04" + data[4:], "not a Rota snapshot"),
        "appended": (data + b"\0", "appended"),
    }
    for name, (blob, why) in cases.items():
        path = str(tmp_path / f"{name}.snap")
        with open(path, "wb") as f:
            f.write(blob)
        rc, out, err = rotactl("snapshot", "verify", path)
        assert rc == 1 and why in err, (name, rc, out, err)
        d = str(tmp_path / f"data-{name}")
        p = subprocess.run([ROTAD, "--id", "1", "--data-dir", d, "--raft-addr", "127.0.0.1:1",
                            "--http-addr", "127.0.0.1:1", "--insecure", "--restore", path],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and why in p.stderr, (name, p.returncode, p.stderr)
        assert 'msg="start failed"' in p.stderr
        # Nothing was written: the data dir can take a good file.
        assert not [f for f in os.listdir(os.path.join(d, "raft"))
                    if f.startswith(("metadata", "snapshot-", "open-"))], name
    # A refused download leaves no file behind: no admin rights without
    # a token is not testable in plain mode, so ask a node that is gone.
    rc, out, err = rotactl("-s", "http://127.0.0.1:1", "snapshot", "save",
                           str(tmp_path / "none.snap"))
    assert rc == 3 and not os.path.exists(str(tmp_path / "none.snap"))
    assert not [f for f in os.listdir(tmp_path) if ".tmp." in f]


def test_backup_force_new_cluster(cluster):
    # Small snapshots: the survivor's raft dir holds snapshots and a log
    # after them, and the joining nodes get a snapshot install.
    c = cluster(3, ["--snapshot-threshold", "16", "--snapshot-trailing", "8"])
    leader = c.leader()
    seeded = seed(leader, n_batches=2)
    more = [submit(c.followers()[0], {"type": "noop", "queue": QUEUE})["id"] for _ in range(20)]
    c.wait_converged()
    survivor = c.followers()[0]
    committed = all_jobs(survivor)
    assert set(seeded) | set(more) <= set(committed)
    assert any(f.startswith("snapshot-") for f in os.listdir(os.path.join(survivor.dir, "raft")))

    # Two nodes lost for good; the survivor crashes too.
    for n in c.nodes:
        if n.id != survivor.id:
            n.kill(signal.SIGKILL)
            shutil.rmtree(n.dir)
    survivor.kill(signal.SIGKILL)
    survivor.start(["--cluster", c.spec, "--force-new-cluster"] + c.flags)
    c.wait_for_leader(timeout=30)
    log = survivor.log_text()
    assert 'msg="forced a new cluster"' in log and "lvl=warn" in log
    assert set(members(survivor)) == {survivor.id}
    got = all_jobs(survivor)
    assert got == committed, sorted(set(committed) ^ set(got))[:5]
    new = submit(survivor, {"type": "noop", "queue": QUEUE})
    assert all_jobs(survivor)[new["id"]] == "pending"

    # Fresh nodes join and converge.
    c.nodes = [survivor]
    grow(c, survivor, [4, 5])
    c.wait_converged(timeout=60)
    for n in c.alive():
        assert set(all_jobs(n)) == set(committed) | {new["id"]}, n.id

    # Restarted with the flag still given: not forced again, the
    # members stay.
    survivor.kill(signal.SIGTERM)
    survivor.start(["--cluster", c.spec, "--force-new-cluster"] + c.flags)
    c.wait_for_leader(timeout=30)
    assert 'msg="force-new-cluster skipped"' in survivor.log_text()
    assert set(members(survivor)) == {survivor.id, 4, 5}
    c.wait_converged(timeout=60)
    submit(c.leader(), {"type": "noop", "queue": QUEUE})
    c.wait_converged(timeout=60)


def raw_get(node, path):
    host, port = node.http.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_backup_snapshot_through_follower(cluster, tmp_path):
    """A follower forwards GET /v1/snapshot to the leader: the answer is
    the leader's file, whole and verified; one hop at most."""
    c = cluster(3)
    leader = c.leader()
    submit(leader, {"type": "noop", "queue": QUEUE})
    c.wait_converged()
    follower = c.followers()[0]
    status, headers, body = raw_get(follower, "/v1/snapshot")
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    path = str(tmp_path / "f.snap")
    with open(path, "wb") as f:
        f.write(body)
    h = parse_file(path)
    assert h["sha_ok"] and h["size_ok"] and h["node"] == leader.id, h
    assert int(headers["x-rota-index"]) == h["index"]
    status, headers, body = raw_get(leader, "/v1/snapshot")
    assert status == 200 and len(headers["x-rota-snapshot-sha256"]) == 64
    assert hashlib.sha256(body[80:]).hexdigest() == headers["x-rota-snapshot-sha256"]
    status, _, _ = follower.req("GET", "/v1/snapshot", headers={"X-Rota-Forwarded": "1"})
    assert status == 503  # Sent on by a node that thought we lead: not again.


def test_backup_flags_refused(tmp_path):
    for bad in (["--restore", "x.snap", "--force-new-cluster"],
                ["--restore", "x.snap", "--join", "http://127.0.0.1:1"],
                ["--force-new-cluster", "--join", "http://127.0.0.1:1"]):
        p = subprocess.run([ROTAD, "--insecure", "--data-dir", str(tmp_path / "d"), *bad],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and "at most one of them" in p.stderr, (bad, p.stderr)
    # Nothing to recover in an empty data dir.
    p = subprocess.run([ROTAD, "--insecure", "--data-dir", str(tmp_path / "e"),
                        "--raft-addr", "127.0.0.1:1", "--http-addr", "127.0.0.1:1",
                        "--force-new-cluster"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "nothing to recover" in p.stderr, p.stderr


def test_backup_stop_while_saving(cluster):
    """SIGTERM while a snapshot is being made or sent: the node still
    stops cleanly (exit 0, no sanitizer report: checked at teardown), the
    thread pool's work on the state machine is waited for."""
    c = cluster(1)
    node = c.leader()
    seed(node)
    got = []

    def fetch():
        try:
            got.append(raw_get(node, "/v1/snapshot")[0])
        except (OSError, http.client.HTTPException) as e:
            got.append(e)
    t = threading.Thread(target=fetch, daemon=True)
    t.start()
    wait_until(lambda: 'msg="backup snapshot started"' in node.log_text(),
               what="the snapshot started")
    node.kill(signal.SIGTERM)
    t.join(timeout=30)
    assert not node.alive() and node.proc.returncode == 0, node.proc.returncode


def test_backup_secure_save_and_restore(clusters, tmp_path):
    """Secure mode (HTTPS, access control): saving needs an admin token
    (a read token is refused, and leaves no file); the restored cluster
    has the old tokens (the old admin token works, bootstrap stays
    closed) and admits a joining node with it."""
    from conftest import Node
    certs = str(tmp_path / "certs")
    for args in (["create-ca"], ["create-node", "127.0.0.1"]):
        subprocess.run([ROTACTL, "cert", args[0], "--certs-dir", certs, *args[1:]],
                       check=True, capture_output=True, timeout=30)
    c = Cluster(1, ["--certs-dir", certs]).start()
    clusters.append(c)
    node = c.leader()
    ids = [submit(node, {"type": "noop", "queue": QUEUE})["id"] for _ in range(10)]
    tls = ["-s", f"https://{node.http}", "--ca-file", c.ca]
    reader = str(tmp_path / "read.token")
    with open(reader, "w") as f:
        f.write(c.make_token("read"))
    admin = str(tmp_path / "admin.token")
    with open(admin, "w") as f:
        f.write(c.token)
    path = str(tmp_path / "s.snap")
    rc, out, err = rotactl(*tls, "--token-file", reader, "snapshot", "save", path)
    assert rc == 1 and "admin" in err and not os.path.exists(path), (rc, out, err)
    assert not [f for f in os.listdir(tmp_path) if ".tmp." in f]
    rc, out, err = rotactl(*tls, "--token-file", admin, "snapshot", "save", path)
    assert rc == 0 and parse_file(path)["sha_ok"], (out, err)

    r = Cluster(1, ["--certs-dir", certs])
    clusters.append(r)
    r.token = c.token  # The restored state's admin token.
    first = r.nodes[0]
    first.start(["--cluster", r.spec, "--restore", path] + r.flags)
    r.wait_for_leader()
    got = all_jobs(first)
    assert set(ids) <= set(got) and all(got[j] == "pending" for j in ids)
    assert first.req("POST", "/v1/acl/bootstrap", {})[0] == 403
    n2 = Node(r, 2)
    n2.start(["--join", f"https://{first.http}"] + r.flags)
    st, _, resp = first.req("POST", "/v1/cluster/nodes",
                            {"id": 2, "raft_addr": n2.raft, "http_addr": n2.http}, timeout=30)
    assert st == 200, resp
    r.nodes.append(n2)
    wait_until(lambda: set(members(first)) == {1, 2} and members(first)[2]["voter"],
               timeout=30, what="node 2 a voter")
    r.wait_converged(timeout=60)
    assert set(ids) <= set(all_jobs(n2))


def body_version(path):
    """The fsm snapshot format version of a backup file's body."""
    with open(path, "rb") as f:
        body = f.read()[80:]
    assert body[:4] == b"RSNP", body[:8]
    return struct.unpack_from("<I", body, 4)[0]


def test_backup_v1_file_of_an_older_version_restores(clusters, tmp_path):
    # data/backup_v1.snap: `rotactl snapshot save` of commit 3261401 (the
    # last to write format v1) from one node holding 35 jobs in queue v1
    # (data/backup_v1.json: pending, scheduled for 2099, cancelled).
    old = os.path.join(DATA, "backup_v1.snap")
    with open(os.path.join(DATA, "backup_v1.json")) as f:
        expected = json.load(f)
    h = parse_file(old)
    assert h["sha_ok"] and h["size_ok"] and body_version(old) == 1, h
    rc, out, err = rotactl("snapshot", "verify", old)
    assert rc == 0 and out.startswith(f"verified {old}: index {h['index']}"), (out, err)
    keep = ["--retention-cancelled", "0"]  # The file's jobs are old.

    r = Cluster(1, None)
    clusters.append(r)
    first = r.nodes[0]
    first.start(["--cluster", r.spec, "--restore", old] + keep + r.flags)
    r.wait_for_leader()
    assert 'msg="restored from backup"' in first.log_text()
    assert all_jobs(first, "v1") == expected
    # Its own backup is format v2, and restores to the same jobs.
    new = str(tmp_path / "v2.snap")
    rc, out, err = rotactl("-s", f"http://{first.http}", "snapshot", "save", new)
    assert rc == 0, err
    h2 = parse_file(new)
    assert h2["sha_ok"] and h2["size_ok"] and body_version(new) == 2, h2
    assert h2["index"] >= h["index"]
    r2 = Cluster(1, None)
    clusters.append(r2)
    again = r2.nodes[0]
    again.start(["--cluster", r2.spec, "--restore", new] + keep + r2.flags)
    r2.wait_for_leader()
    assert all_jobs(again, "v1") == expected
