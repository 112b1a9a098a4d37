"""Group commit's linger (cluster/submit.c, --batch-linger): after an entry
is applied, the leader's next entry waits (at most the linger) until as many
commands are pending as the clients it just answered, so clients that wait
for their answer before sending again share entries instead of splitting
into alternating halves. A lone client is never held: its next write is
proposed as soon as it arrives."""

import threading
import time

from conftest import submit

# 100 ms, the largest linger: a client that were held for it would show.
LINGER = ["--batch-linger", "100000"]


def proposed(node):
    return (node.metric("rota_raft_commands_proposed_total"),
            node.metric("rota_raft_entries_proposed_total"))


def test_closed_loop_clients_share_entries(cluster):
    c = cluster(flags=LINGER)
    lead = c.leader()
    clients, rounds = 8, 25
    errors = []

    def client(k):
        try:
            for i in range(rounds):
                submit(lead, {"type": "noop", "queue": "gc", "payload": {"k": k, "i": i}})
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    cmds0, entries0 = proposed(lead)
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    cmds1, entries1 = proposed(lead)
    cmds, entries = cmds1 - cmds0, entries1 - entries0
    assert cmds >= clients * rounds
    # Without the linger 8 such clients give ~3-4 commands per entry; with
    # it each entry waits for the 8 answered clients to come back.
    assert cmds / entries >= 6, (cmds, entries)
    st, _, page = lead.req("GET", "/v1/jobs?queue=gc&limit=1000")
    assert st == 200 and len(page["jobs"]) == clients * rounds


def test_a_lone_client_is_not_held(cluster):
    c = cluster(flags=LINGER)
    lead = c.leader()
    submit(lead, {"type": "noop"})
    n = 10
    t0 = time.monotonic()
    for i in range(n):
        submit(lead, {"type": "noop", "payload": {"i": i}})
    elapsed = time.monotonic() - t0
    # Held for the linger, these 10 writes would take at least 1 s; each
    # is proposed when it arrives (its client was the only one answered).
    assert elapsed < 0.9, elapsed


def test_a_linger_that_runs_out_is_counted_and_paid_once(cluster):
    """8 closed-loop writers, then they stop and one other writes alone:
    the entry after their last one waits for 8 commands and runs out of
    linger (rota_raft_linger_expired_total; the leader's own commands may
    be the ones that wait); the lone writer is held at most once."""
    c = cluster(flags=LINGER)
    lead = c.leader()
    expired0 = lead.metric("rota_raft_linger_expired_total")
    rounds = 5
    barrier = threading.Barrier(8)
    errors = []

    def writer(k):
        try:
            for i in range(rounds):
                submit(lead, {"type": "noop", "payload": {"k": k, "i": i}})
            barrier.wait(30)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    t0 = time.monotonic()
    for i in range(10):
        submit(lead, {"type": "noop", "payload": {"lone": i}})
    elapsed = time.monotonic() - t0
    assert lead.metric("rota_raft_linger_expired_total") >= expired0 + 1
    # One linger (100 ms) at most; held every time, the ten take a second.
    assert elapsed < 0.9, elapsed
