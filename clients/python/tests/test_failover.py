"""Leader failover while many threads submit: every submit is answered,
every idempotency key exists exactly once, nothing acknowledged is
missing."""

import collections
import threading

import rota
from conftest import make_client, wait_until


def test_leader_killed_while_threads_submit(cluster):
    c = cluster()
    old = c.leader()
    cl = make_client(c)  # Auto-batching on (the default).
    q = "py-failover"
    n_threads, per_thread = 8, 40
    acked, errors = {}, []
    lock = threading.Lock()
    progress = threading.Semaphore(0)
    killed = threading.Event()
    failures = []  # Connection errors and 503s the client saw (and retried).
    call = cl._call

    def counted(addr, *a, **kw):
        try:
            st, hs, out = call(addr, *a, **kw)
        except Exception as e:
            failures.append(e)
            raise
        if st == 503:
            failures.append(out)
        return st, hs, out
    cl._call = counted

    def submitter(t):
        for i in range(per_thread):
            if t % 2 == 0 and i == per_thread // 4:
                killed.wait(60)  # Half the threads go on only after the kill.
            # Half the threads name their keys, half leave it to the client.
            key = f"fo-{t}-{i}" if t % 4 < 2 else None
            try:
                job = cl.submit("noop", {"t": t, "i": i}, queue=q, idempotency_key=key)
            except rota.APIError as e:
                with lock:
                    errors.append((key, e))
                continue
            assert key is None or job["idempotency_key"] == key
            assert job["payload"] == {"t": t, "i": i}
            with lock:
                acked[job["idempotency_key"]] = job["id"]
            progress.release()
    threads = [threading.Thread(target=submitter, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for _ in range(n_threads * per_thread // 4):  # A quarter acknowledged...
        assert progress.acquire(timeout=60)
    old.kill()  # ...then the leader dies under the load.
    killed.set()
    for t in threads:
        t.join(120)
        assert not t.is_alive()
    new = c.leader()
    assert new.id != old.id
    assert errors == [], errors[:5]
    assert len(acked) == n_threads * per_thread
    assert failures, "the client never saw the dead leader"
    # Every key exactly once, every acknowledged job there with its key.
    jobs = wait_until(lambda: (lambda js: js if len(js) >= len(acked) else None)(
        list(cl.list(queue=q, limit=100))), what="every job listed")
    keys = collections.Counter(j["idempotency_key"] for j in jobs)
    dup = {k: v for k, v in keys.items() if v != 1}
    assert dup == {}, dup
    assert set(keys) == set(acked)
    assert {j["id"]: j["idempotency_key"] for j in jobs} == {v: k for k, v in acked.items()}
    cl.close()
