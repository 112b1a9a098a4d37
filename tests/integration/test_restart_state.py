"""A restarted node keeps its LMDB state when it is whole, and rebuilds it
otherwise (docs/architecture.md, "The state machine").

<data>/fsm/state.mark says "clean" after a SIGTERM (the environment was
synced), "boot ID" while a process runs (a SIGKILL on the same kernel boot
loses nothing: the page cache holds every commit). A start on a kept
state skips the restore of the raft snapshot it has already passed; any
other marker (another boot, unknown, none) rebuilds from the snapshot and
the log. Every case ends with new writes and equal digests everywhere.
"""

import os
import re
import signal

import pytest

from conftest import module_cluster, submit, wait_until

QUEUE = "restart-state"
# A low threshold: every node has raft snapshots on disk, so each restart
# meets restore_cb (skipped when kept, done when rebuilt). The trailing log
# is longer than what is written while a node is down, so the leader sends
# it entries, never an InstallSnapshot (that would restore, legitimately).
FLAGS = ["--snapshot-threshold", "32", "--snapshot-trailing", "64"]
BOOT_ID = "/proc/sys/kernel/random/boot_id"
OTHER_BOOT = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def c(request):
    gen = module_cluster(request, 3, FLAGS)
    cl = next(gen)
    load(cl.leader(), batches=10, per=300)
    yield cl
    next(gen, None)


def load(node, batches, per, singles=40):
    """@batches atomic arrays of @per jobs (a few thousand jobs), then
    @singles one-job writes (entries enough for snapshots), a few
    cancelled."""
    ids = []
    for b in range(batches):
        body = [{"type": "noop", "queue": QUEUE, "payload": {"b": b, "i": i, "pad": "x" * 100}}
                for i in range(per)]
        status, _, resp = node.req("POST", "/v1/jobs", body)
        assert status == 201, resp
        ids += [j["id"] for j in resp["jobs"]]
    for i in range(singles):
        ids.append(submit(node, {"type": "noop", "queue": QUEUE, "delay": "1h"})["id"])
    for jid in ids[:10]:
        status, _, resp = node.req("DELETE", f"/v1/jobs/{jid}")
        assert status == 200, resp
    return ids


def marker_path(node):
    return os.path.join(node.dir, "fsm", "state.mark")


def marker(node):
    with open(marker_path(node)) as f:
        return f.read()


def this_boot():
    with open(BOOT_ID) as f:
        return f.read().strip()


def log_since(node, offset):
    return node.log_text()[offset:]


def has_snapshot(node):
    return any(f.startswith("snapshot-") for f in os.listdir(os.path.join(node.dir, "raft")))


def applied(c, node):
    return c.digest(node)[1]


def restart_and_check(c, node, offset, before):
    """Restart @node, wait until every node is ready, then write more and
    wait for equal digests. Returns the log of this start."""
    c.restart(node)
    c.wait_for_leader(timeout=30)
    load(c.leader(), batches=2, per=100, singles=5)
    c.wait_converged(timeout=30)
    assert applied(c, node) > before
    return log_since(node, offset)


def assert_kept(log, reason, before):
    m = re.search(r'msg="state kept" applied=(\d+) reason=(\S+)', log)
    assert m, log[-3000:]
    assert m.group(2) == reason
    # What it had applied before it stopped is what it found (the leader
    # may have committed more in between: no fewer).
    assert int(m.group(1)) >= before
    assert 'msg="state rebuilt"' not in log
    # raft gave it its last snapshot, older than the kept state: not restored.
    assert 'msg="snapshot restore skipped"' in log
    assert 'msg="snapshot installed"' not in log


def assert_rebuilt(log, reason):
    m = re.search(r'msg="state rebuilt" reason=(\S+)', log)
    assert m, log[-3000:]
    assert m.group(1) == reason
    assert 'msg="state kept"' not in log
    assert 'msg="snapshot installed"' in log


def test_sigterm_follower_keeps_state(c):
    node = c.followers()[0]
    assert has_snapshot(node)
    before = applied(c, node)
    offset = len(node.log_text())
    node.kill(signal.SIGTERM)
    assert marker(node) == "clean\nlayout 1\n"
    log = restart_and_check(c, node, offset, before)
    assert_kept(log, "clean", before)
    assert node.metric("rota_snapshots_skipped_total") >= 1
    # Running again: the marker names this boot until the next clean stop.
    assert marker(node) == f"boot {this_boot()}\nlayout 1\n"


def test_sigkill_follower_keeps_state(c):
    node = c.followers()[0]
    before = applied(c, node)
    offset = len(node.log_text())
    node.kill(signal.SIGKILL)
    assert marker(node) == f"boot {this_boot()}\nlayout 1\n"
    log = restart_and_check(c, node, offset, before)
    assert_kept(log, "same-boot", before)


@pytest.mark.parametrize("text,reason", [
    (f"boot {OTHER_BOOT}\nlayout 1\n", "other-boot"),
    ("clean\nlayout 999\n", "layout-changed"),
    ("half-written", "marker-unknown"),
    (None, "no-marker"),
])
def test_untrusted_marker_rebuilds(c, text, reason):
    node = c.followers()[-1]
    before = applied(c, node)
    offset = len(node.log_text())
    node.kill(signal.SIGTERM)
    if text is None:
        os.unlink(marker_path(node))
    else:
        with open(marker_path(node), "w") as f:
            f.write(text)
    log = restart_and_check(c, node, offset, before)
    assert_rebuilt(log, reason)


def test_sigkill_leader_keeps_state(c):
    old = c.leader()
    before = applied(c, old)
    offset = len(old.log_text())
    old.kill(signal.SIGKILL)
    new = wait_until(lambda: (lambda l: l if l.id != old.id else None)(c.leader()),
                     timeout=30, what="a new leader")
    load(new, batches=2, per=100, singles=5)  # Committed while it is down.
    log = restart_and_check(c, old, offset, before)
    assert_kept(log, "same-boot", before)
