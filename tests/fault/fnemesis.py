"""Nemeses. Each one is a cycle: inject a fault, hold it, heal it. The
harness runs cycles one after another (a random nemesis of the selected ones
each time) during the fault window; ``heal_all`` undoes whatever is left.

Every fault and heal is one line of ``nemesis.jsonl`` (t, m, nemesis,
action, node/worker, was_leader, ...) and one progress line.
"""

import json
import os
import shutil
import signal
import threading
import time

from fcluster import HTTP_ERRORS


class Ctx:
    def __init__(self, cluster, net, path, t0, rng, log, ttl_ms, election_ms):
        self.c = cluster
        self.net = net
        self.f = open(path, "a", buffering=1)
        self.t0 = t0
        self.rng = rng
        self.log = log
        self.ttl = ttl_ms / 1000.0
        self.election = election_ms / 1000.0
        self.lock = threading.Lock()
        self.abort = threading.Event()

    def event(self, nemesis, action, **kw):
        rec = dict(t=round(time.time(), 6), m=round(time.monotonic() - self.t0, 4),
                   nemesis=nemesis, action=action, **kw)
        with self.lock:
            self.f.write(json.dumps(rec, sort_keys=True) + "\n")
        extra = " ".join(f"{k}={v}" for k, v in kw.items())
        self.log(f"nemesis {nemesis}: {action} {extra}".rstrip())
        return rec

    def sleep(self, secs):
        self.abort.wait(secs)

    def leader(self):
        return self.c.current_leader()

    def leader_or_skip(self, name):
        """The leader, or None after recording that nemesis @name skipped."""
        lead = self.leader()
        if lead is None:
            self.event(name, "skip", reason="no leader")
        return lead

    def random_member(self, alive=True):
        pool = self.c.alive() if alive else self.c.members()
        return self.rng.choice(pool) if pool else None

    def close(self):
        self.f.close()


CATCHUP_SECS = 10.0


def _restart_node(ctx, name, node, check=True):
    if not node.alive():
        node.start()
        ctx.event(name, "restart", node=node.id, pid=node.pid)
        if check:
            catchup(ctx, name, node, *catchup_target(ctx, node))


def catchup_target(ctx, victim):
    """(the leader's commit index now, monotonic now), or (None, now) when
    no healthy leader answers: call right after restarting @victim."""
    t = time.monotonic()
    lead = ctx.leader()
    if lead is None or lead.id == victim.id or not lead.alive() or lead.paused:
        return None, t
    v = ctx.c.view(lead, timeout=1.0)
    if not v or (v.get("leader") or {}).get("id") != lead.id or \
            not isinstance(v.get("commit_index"), int):
        return None, t
    return v["commit_index"], t


def catchup(ctx, name, victim, target, t0, secs=CATCHUP_SECS):
    """The restarted @victim must apply up to @target (the leader's commit
    index at its restart) within @secs of @t0. ``catch-up`` with the time
    taken; ``catch-up-slow`` (a failed run) if not and a leader is healthy
    at the end; ``catch-up-void`` if there was no healthy leader."""
    if target is None:
        ctx.event(name, "catch-up-void", node=victim.id, why="no leader at restart")
        return None
    end = t0 + secs
    applied = None
    while True:
        v = ctx.c.view(victim, timeout=1.0)
        if v and isinstance(v.get("applied_index"), int):
            applied = v["applied_index"]
            if applied >= target:
                ctx.event(name, "catch-up", node=victim.id, target=target,
                          applied=applied, secs=round(time.monotonic() - t0, 2))
                return True
        if time.monotonic() >= end or ctx.abort.is_set():
            break
        ctx.sleep(0.1)
    lead = ctx.leader()
    healthy = (lead is not None and lead.id != victim.id and lead.alive()
               and not lead.paused and victim.alive() and not victim.paused
               and not ctx.abort.is_set())
    ctx.event(name, "catch-up-slow" if healthy else "catch-up-void", node=victim.id,
              target=target, applied=applied, secs=secs,
              leader=lead.id if lead else None, alive=victim.alive())
    return False if healthy else None


# --- process faults on scheduler nodes ------------------------------------

def kill(ctx, name="kill", leader_only=False):
    lead = ctx.leader()
    if leader_only:
        victim = lead
        if victim is None or not victim.alive():
            ctx.event(name, "skip", reason="no leader")
            return
    else:
        victim = ctx.random_member()
    was_leader = lead is not None and victim.id == lead.id
    victim.kill(signal.SIGKILL)
    ctx.event(name, "kill", node=victim.id, was_leader=was_leader, exit=victim.exit_code())
    ctx.sleep(ctx.rng.uniform(2.0, 4.0))
    _restart_node(ctx, name, victim)


def kill_leader(ctx):
    kill(ctx, "kill-leader", leader_only=True)


def pause(ctx, name="pause"):
    lead = ctx.leader()
    if lead is not None and ctx.rng.random() < 0.5:
        victim = lead
    else:
        victim = ctx.random_member()
    was_leader = lead is not None and victim.id == lead.id
    victim.pause()
    secs = ctx.rng.uniform(2.5 * ctx.election, 4.5 * ctx.election)
    ctx.event(name, "stop", node=victim.id, was_leader=was_leader, secs=round(secs, 1))
    ctx.sleep(secs)
    victim.resume()
    ctx.event(name, "cont", node=victim.id)


# --- network faults between scheduler nodes --------------------------------
# Rules only drop traffic between scheduler hosts (raft and forwarding):
# clients and workers keep reaching every node, so these count as faults of
# the scheduler nodes only.

def _cut(ctx, side_a, side_b):
    for a in side_a:
        ctx.net.drop_from(a.host, [b.host for b in side_b])
    for b in side_b:
        ctx.net.drop_from(b.host, [a.host for a in side_a])


def _heal_net(ctx):
    for n in ctx.c.nodes.values():
        ctx.net.heal(n.host)


def partition(ctx, name="partition"):
    members = list(ctx.c.members())
    ctx.rng.shuffle(members)
    k = ctx.rng.randint(1, (len(members) - 1) // 2)
    minority, majority = members[:k], members[k:]
    lead = ctx.leader()
    _cut(ctx, minority, majority)
    secs = ctx.rng.uniform(4.0, 8.0)
    ctx.event(name, "cut", minority=[n.id for n in minority],
              majority=[n.id for n in majority],
              leader=lead.id if lead else None, secs=round(secs, 1))
    ctx.sleep(secs)
    _heal_net(ctx)
    ctx.event(name, "heal")


def isolate_leader(ctx, name="isolate-leader"):
    lead = ctx.leader_or_skip(name)
    if lead is None:
        return
    others = [n for n in ctx.c.members() if n.id != lead.id]
    _cut(ctx, [lead], others)
    secs = ctx.rng.uniform(4.0, 8.0)
    ctx.event(name, "cut", node=lead.id, was_leader=True, secs=round(secs, 1))
    ctx.sleep(secs)
    _heal_net(ctx)
    ctx.event(name, "heal")


def loss(ctx, name="loss"):
    members = ctx.c.members()
    for n in members:
        ctx.net.drop_from(n.host, [o.host for o in members if o.id != n.id], probability=0.2)
    secs = ctx.rng.uniform(6.0, 10.0)
    ctx.event(name, "drop", probability=0.2, nodes=[n.id for n in members],
              secs=round(secs, 1))
    ctx.sleep(secs)
    _heal_net(ctx)
    ctx.event(name, "heal")


def flap(ctx, name="flap"):
    lead = ctx.leader()
    victim = lead if lead is not None and ctx.rng.random() < 0.5 else ctx.random_member()
    was_leader = lead is not None and victim.id == lead.id
    for i in range(3):
        down = ctx.rng.uniform(1.0, 2.5)
        ctx.net.link(victim.host, False)
        ctx.event(name, "down", node=victim.id, was_leader=was_leader and i == 0,
                  secs=round(down, 1))
        ctx.sleep(down)
        ctx.net.link(victim.host, True)
        ctx.event(name, "up", node=victim.id)
        ctx.sleep(ctx.rng.uniform(1.0, 2.0))


# --- disk full ----------------------------------------------------------------

DISK_MB = 64


def disk_prepare(cluster, net):
    """Before the cluster starts: the last node's data dir is a small tmpfs."""
    victim = cluster.nodes[max(cluster.nodes)]
    net.mount_tmpfs(victim.dir, DISK_MB)
    return victim


def _fill(path, limit_mb=DISK_MB + 8):
    """Appends to path until the file system is full (bounded, unbuffered, so
    that no error is left for close to raise). Called again, it takes back
    whatever the node freed meanwhile (log compaction frees segments)."""
    written = 0
    chunk = b"\0" * (1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 1 << 12):
            for _ in range(limit_mb * (1 << 20) // size):
                try:
                    n = os.write(fd, chunk[:size])
                except OSError:
                    break
                written += n
                if n < size:
                    break
    finally:
        os.close(fd)
    return written


def disk_full(ctx, name="disk-full"):
    victim = ctx.c.nodes[max(ctx.c.nodes)]
    if not victim.alive():
        _restart_node(ctx, name, victim)
        ctx.sleep(3)
    lead = ctx.leader()
    if lead is not None and lead.id != victim.id:
        try:
            status, body = lead.req("POST", "/v1/cluster/transfer", {"id": victim.id},
                                    timeout=5)
            ctx.event(name, "transfer", node=victim.id, status=status)
        except HTTP_ERRORS as e:
            ctx.event(name, "transfer", node=victim.id, error=str(e))
        ctx.sleep(2)
    lead = ctx.leader()
    fill = os.path.join(victim.dir, "fill")
    log_at = len(victim.log_text())
    try:
        written = _fill(fill)
        ctx.event(name, "fill", node=victim.id, mb=round(written / (1 << 20), 1),
                  was_leader=lead is not None and lead.id == victim.id)
        end = time.monotonic() + 25
        topped = 0
        while victim.alive() and time.monotonic() < end and not ctx.abort.is_set():
            ctx.sleep(0.1)
            topped += _fill(fill)   # keep it full: compaction frees space
        code = victim.exit_code()
        ctx.event(name, "outcome", node=victim.id, exit=code, alive=victim.alive(),
                  was_leader=lead is not None and lead.id == victim.id,
                  topped_up_mb=round(topped / (1 << 20), 1),
                  fail_stop='msg="fail-stop"' in victim.log_text()[log_at:])
        if not victim.alive():
            ctx.sleep(4)    # the others carry on without it (checked)
        lead_now = ctx.leader()
        ctx.event(name, "leader-now", node=victim.id,
                  leader=lead_now.id if lead_now else None)
    finally:
        try:
            os.unlink(fill)
        except OSError:
            pass
    ctx.event(name, "free", node=victim.id)
    _restart_node(ctx, name, victim)
    caught_up(ctx, name, victim)


def caught_up(ctx, name, victim, secs=30):
    """Waits until the restarted victim is ready and has applied at least
    what the others had applied when it came back."""
    others = [n for n in ctx.c.alive() if n.id != victim.id]
    target = max([d["applied_index"] for d in map(ctx.c.digest, others) if d] or [0])
    end = time.monotonic() + secs
    t = time.monotonic()
    while time.monotonic() < end and not ctx.abort.is_set():
        d = ctx.c.digest(victim)
        try:
            ready = victim.req("GET", "/readyz")[0] == 200
        except HTTP_ERRORS:
            ready = False
        if ready and d and d["applied_index"] >= target:
            ctx.event(name, "caught-up", node=victim.id, index=d["applied_index"],
                      secs=round(time.monotonic() - t, 1))
            return True
        ctx.sleep(0.2)
    ctx.event(name, "not-caught-up", node=victim.id, target=target,
              alive=victim.alive(), exit=victim.exit_code())
    return False


# --- workers --------------------------------------------------------------------

def worker_kill(ctx, name="worker-kill"):
    w = ctx.rng.choice(ctx.c.workers)
    w.kill(signal.SIGKILL)
    ctx.event(name, "kill", worker=w.name)
    ctx.sleep(ctx.rng.uniform(2.0, 4.0))
    w.start()
    ctx.event(name, "restart", worker=w.name, pid=w.pid)


def worker_pause(ctx, name="worker-pause"):
    w = ctx.rng.choice(ctx.c.workers)
    secs = ctx.ttl + ctx.rng.uniform(2.0, 4.0)
    w.pause()
    ctx.event(name, "stop", worker=w.name, secs=round(secs, 1))
    ctx.sleep(secs)
    w.resume()
    ctx.event(name, "cont", worker=w.name)


# --- membership -------------------------------------------------------------------

def _wait(ctx, cond, secs):
    end = time.monotonic() + secs
    while time.monotonic() < end and not ctx.abort.is_set():
        try:
            v = cond()
            if v:
                return v
        except HTTP_ERRORS:
            pass
        ctx.sleep(0.25)
    return None


def membership(ctx, name="membership"):
    lead = ctx.leader_or_skip(name)
    if lead is None:
        return
    followers = [n for n in ctx.c.alive() if n.id != lead.id]
    if not followers:
        ctx.event(name, "skip", reason="no follower")
        return
    # Mostly a follower; one time in four the leader itself.
    victim = lead if ctx.rng.random() < 0.25 else ctx.rng.choice(followers)
    via = [n for n in ctx.c.alive() if n.id != victim.id]

    def remove():
        n = ctx.rng.choice(via)
        status, body = n.req("DELETE", f"/v1/cluster/nodes/{victim.id}", timeout=5)
        return (status, body) if status in (200, 404) else None
    res = _wait(ctx, remove, 15)
    ctx.event(name, "remove", node=victim.id, was_leader=victim.id == lead.id,
              answer=res and res[0])

    def gone():
        lnow = ctx.leader()
        v = ctx.c.view(lnow) if lnow else None
        return v and victim.id not in [x["id"] for x in v["nodes"]]
    if res is None:
        # No answer (a leader that removes itself steps down; the others
        # may take a while to elect): the removal may still have
        # committed. Ask the next leader; a node left out of the
        # configuration must be wiped and joined again like any other.
        if not _wait(ctx, gone, 30):
            ctx.event(name, "still-member", node=victim.id)
            return
        ctx.event(name, "removed-unanswered", node=victim.id)
    ok = _wait(ctx, gone, 10)
    ctx.c.removed.add(victim.id)
    victim.kill(signal.SIGTERM)
    shutil.rmtree(victim.dir, ignore_errors=True)
    ctx.event(name, "wiped", node=victim.id, gone=bool(ok))
    ctx.sleep(ctx.rng.uniform(1.0, 3.0))
    target = ctx.rng.choice(via)
    victim.join_via = target.http
    victim.start()
    ctx.event(name, "join", node=victim.id, via=target.id, pid=victim.pid)

    def voter():
        lnow = ctx.leader()
        v = ctx.c.view(lnow) if lnow else None
        return v and any(x["id"] == victim.id and x.get("voter") and x.get("http_addr")
                         for x in v["nodes"])
    ok = _wait(ctx, voter, 30)
    ctx.c.removed.discard(victim.id)
    ctx.event(name, "voter" if ok else "not-voter", node=victim.id)


NEMESES = {
    "kill": (kill, True),
    "kill-leader": (kill_leader, True),
    "pause": (pause, True),
    "partition": (partition, True),
    "isolate-leader": (isolate_leader, True),
    "flap": (flap, True),
    "loss": (loss, True),
    "disk-full": (disk_full, True),
    "worker-kill": (worker_kill, False),
    "worker-pause": (worker_pause, False),
    "membership": (membership, True),
}
# (function, touches only scheduler nodes)


def heal_all(ctx):
    """Undoes every fault: rules, links, paused processes, dead processes."""
    for n in ctx.c.nodes.values():
        try:
            ctx.net.heal(n.host)
            ctx.net.link(n.host, True)
        except Exception as e:     # noqa: BLE001 - keep healing the others
            ctx.log(f"heal {n.host}: {e}")
        if n.paused:
            n.resume()
    for w in ctx.c.workers:
        if w.paused:
            w.resume()
    restarted = []
    for n in ctx.c.members():
        if not n.alive():
            n.start()
            ctx.event("heal", "restart", node=n.id, pid=n.pid)
            restarted.append(n)
    for w in ctx.c.workers:
        if not w.alive():
            w.start()
            ctx.event("heal", "restart", worker=w.name, pid=w.pid)
    if restarted:
        # Partitions healed at the same time: give the cluster a leader.
        try:
            ctx.c.wait_for_leader(timeout=CATCHUP_SECS, all_ready=False)
        except TimeoutError:
            pass
        for n in restarted:
            catchup(ctx, "heal", n, *catchup_target(ctx, n))
    ctx.event("heal", "all")
