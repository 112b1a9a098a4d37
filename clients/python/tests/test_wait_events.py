"""Client.wait (GET /v1/jobs/{id}?wait=) and Client.events (GET /v1/events,
Server-Sent Events, reconnecting with Last-Event-ID)."""

import threading
import uuid

import rota
from conftest import make_client


def uniq(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def reads_of(cl):
    paths = []
    orig = cl._read

    def wrapper(path, *a, **kw):
        paths.append(path)
        return orig(path, *a, **kw)
    cl._read = wrapper
    return paths


def test_wait_returns_the_terminal_job(shared_cluster):
    c = shared_cluster
    q = uniq("pywait")
    cl = make_client(c)
    release = threading.Event()
    w = rota.Worker(cl, queues=[q], concurrency=1, name=uniq("pywait"))

    @w.handler("py.gate")
    def gate(job):
        release.wait(30)
        return {"released": True}
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    try:
        job = cl.submit("py.gate", queue=q)
        paths = reads_of(cl)
        # Released only once the wait request is at the server.
        timer = threading.Timer(0.5, release.set)
        timer.start()
        done = cl.wait(job["id"], timeout=50)
        timer.cancel()
        assert done["status"] == "completed" and done["result"] == {"released": True}, done
        # One request held by the server, not a polling loop.
        assert len(paths) == 1 and "?wait=" in paths[0], paths
    finally:
        release.set()
        w.stop()
        t.join(60)


def test_wait_timeout_returns_the_latest_state(shared_cluster):
    cl = make_client(shared_cluster)
    job = cl.submit("noop", queue=uniq("pynowork"))  # No worker serves this queue.
    paths = reads_of(cl)
    latest = cl.wait(job["id"], timeout=0.3)
    assert latest["id"] == job["id"] and latest["status"] == "pending"
    assert paths and all("?wait=" in p for p in paths), paths
    cl.cancel(job["id"])
    assert cl.wait(job["id"], timeout=5)["status"] == "cancelled"


def next_event(stream, cond):
    for ev in stream:
        if cond(ev):
            return ev
    raise AssertionError("the stream ended (or the watchdog closed it)")


def watchdog(stream, seconds=30):
    """Closes the stream after @seconds so a missing event fails the test
    instead of blocking it."""
    t = threading.Timer(seconds, stream.close)
    t.daemon = True
    t.start()
    return t


def test_events_reconnect_with_last_event_id(cluster):
    """The stream's node dies; the next read reconnects to another node with
    Last-Event-ID and gets the events of the gap, in order, none twice."""
    c = cluster()
    f1, f2 = c.followers()
    cl = make_client(c, nodes=[f1, f2, c.leader()])  # The stream opens on f1.
    q = uniq("pyev")
    stream = cl.events(queue=q)
    dog = watchdog(stream)
    first = cl.submit("noop", queue=q)
    ev = next_event(stream, lambda e: e.event == "job.created")
    assert ev.data["job"]["id"] == first["id"] and ev.id
    f1.kill()  # The connection drops while the consumer is not reading.
    gap = [cl.submit("noop", {"i": i}, queue=q) for i in range(3)]
    cl.cancel(gap[1]["id"])
    seen = []
    want = {("job.created", j["id"]) for j in gap} | {("job.cancelled", gap[1]["id"])}
    for ev in stream:
        assert ev.event != "events.lost", ev
        if ev.event.startswith("job."):
            seen.append(ev)
        if want <= {(e.event, e.data["job"]["id"]) for e in seen}:
            break
    dog.cancel()
    assert want <= {(e.event, e.data["job"]["id"]) for e in seen}, seen
    stream.close()
    assert ("job.created", first["id"]) not in {(e.event, e.data["job"]["id"]) for e in seen}
    ids = [tuple(int(x) for x in e.id.split("-")) for e in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    assert [e.data["job"]["id"] for e in seen if e.event == "job.created"] == [j["id"] for j in gap]


def test_events_filters(shared_cluster):
    cl = make_client(shared_cluster)
    q = uniq("pyevf")
    stream = cl.events(queue=q, events=["job.cancelled"])
    dog = watchdog(stream)
    job = cl.submit("noop", queue=q, delay="1h")
    other = cl.submit("noop", queue=uniq("pyevf-other"), delay="1h")
    cl.cancel(other["id"])
    cl.cancel(job["id"])
    ev = next_event(stream, lambda e: True)
    dog.cancel()
    stream.close()
    assert ev.event == "job.cancelled" and ev.data["job"]["id"] == job["id"], ev
    assert ev.data["job"]["queue"] == q and ev.data["job"]["status"] == "cancelled"
