"""rota.Client against a real 3-node cluster: submit, submit_many, get,
list over pages, cancel, errors, auto-batching."""

import threading
import uuid

import pytest

import rota
from conftest import make_client


def uniq(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def count_calls(cl, method_name):
    """Wraps a Client method; returns the list of (args) of its calls."""
    calls = []
    orig = getattr(cl, method_name)

    def wrapper(*args, **kw):
        calls.append(args)
        return orig(*args, **kw)
    setattr(cl, method_name, wrapper)
    return calls


def test_submit_get_and_idempotency(shared_cluster, client):
    q = uniq("py-sub")
    job = client.submit("noop", {"n": 1}, queue=q, priority=7, tags={"team": "py"})
    assert job["type"] == "noop" and job["queue"] == q and job["priority"] == 7
    assert job["payload"] == {"n": 1} and job["status"] == "pending"
    assert job["idempotency_key"], "a key is generated for every submit"
    # Read from any node: this client's own write is visible.
    for _ in range(6):
        assert client.get(job["id"])["id"] == job["id"]
    assert shared_cluster.job(job["id"])["tags"] == {"team": "py"}
    # The same key again: the original job, not a second one.
    again = client.submit("noop", {"n": 1}, queue=q, priority=7, tags={"team": "py"},
                          idempotency_key=job["idempotency_key"])
    assert again["id"] == job["id"]
    assert [j["id"] for j in client.list(queue=q)] == [job["id"]]


@pytest.mark.parametrize("linger", [0, 0.001])
def test_errors_carry_status_code_field(client, shared_cluster, linger):
    cl = make_client(shared_cluster, batch_linger=linger)
    try:
        with pytest.raises(rota.APIError) as e:
            cl.submit("noop", queue="py-err", priority="high")
        assert (e.value.status, e.value.code, e.value.field) == (400, "invalid_argument", "priority")
        assert "priority" in e.value.message
        with pytest.raises(rota.APIError) as e:
            cl.get("00000000deadbeef")
        assert (e.value.status, e.value.code) == (404, "not_found")
    finally:
        cl.close()


def test_submit_without_batching_uses_post_jobs(shared_cluster):
    cl = make_client(shared_cluster, batch_linger=0)
    writes = count_calls(cl, "_write")
    try:
        job = cl.submit("noop", queue=uniq("py-nb"))
        assert job["status"] == "pending"
        assert [(m, p) for m, p, *_ in writes] == [("POST", "/v1/jobs")]
    finally:
        cl.close()


def test_submit_many_one_bad_item(client, shared_cluster):
    q = uniq("py-many")
    res = client.submit_many([
        {"type": "noop", "queue": q, "payload": {"i": 0}},
        {"type": "noop", "queue": q, "priority": "high"},
        {"type": "noop", "queue": q, "payload": {"i": 2}},
    ])
    assert len(res) == 3
    assert isinstance(res[1], rota.APIError)
    assert (res[1].status, res[1].code, res[1].field) == (400, "invalid_argument", "priority")
    created = [res[0], res[2]]
    assert all(isinstance(j, dict) and j["status"] == "pending" for j in created), res
    assert [j["payload"] for j in created] == [{"i": 0}, {"i": 2}]
    assert sorted(j["id"] for j in client.list(queue=q)) == sorted(j["id"] for j in created)


def test_submit_many_over_one_request(client):
    """More than 1000 jobs: several batch requests, every job created once."""
    q = uniq("py-big")
    writes = count_calls(client, "_write")
    res = client.submit_many([{"type": "noop", "queue": q, "payload": {"i": i}} for i in range(1500)])
    assert all(isinstance(j, dict) for j in res)
    assert [j["payload"]["i"] for j in res] == list(range(1500))
    assert len(writes) == 2
    assert len({j["id"] for j in client.list(queue=q, limit=1000)}) == 1500


def test_list_follows_every_page(client):
    q = uniq("py-list")
    ids = [j["id"] for j in client.submit_many([{"type": "noop", "queue": q} for _ in range(25)])]
    reads = count_calls(client, "_read")
    listed = [j["id"] for j in client.list(queue=q, limit=10)]
    assert listed == sorted(ids)
    assert len(reads) == 3  # 10 + 10 + 5
    assert [j["id"] for j in client.list(queue=q, status="pending", limit=7)] == sorted(ids)
    assert list(client.list(queue=uniq("py-empty"))) == []


def test_cancel(client, shared_cluster):
    job = client.submit("noop", queue=uniq("py-cancel"), delay="1h")
    assert job["status"] == "scheduled"
    out = client.cancel(job["id"])
    assert out["id"] == job["id"] and out["status"] == "cancelled"
    assert shared_cluster.job(job["id"])["status"] == "cancelled"
    with pytest.raises(rota.APIError) as e:
        client.cancel(job["id"])
    assert (e.value.status, e.value.code) == (409, "conflict")


def test_auto_batching_many_threads(shared_cluster):
    """N threads submit at once: fewer batch requests than submits, each
    caller gets its own job or its own error."""
    n = 24
    cl = make_client(shared_cluster, batch_linger=0.2)
    sends = count_calls(cl, "_submit_encoded")
    q = uniq("py-auto")
    barrier = threading.Barrier(n)
    out = [None] * n

    def one(i):
        barrier.wait()
        try:
            if i % 8 == 3:
                out[i] = cl.submit("noop", {"i": i}, queue=q, priority="bad")
            else:
                out[i] = cl.submit("noop", {"i": i}, queue=q)
        except rota.APIError as e:
            out[i] = e
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        cl.close()
    assert 1 <= len(sends) < n, len(sends)
    assert sum(len(s[0]) for s in sends) == n  # Every submit went in a batch.
    for i, r in enumerate(out):
        if i % 8 == 3:
            assert isinstance(r, rota.APIError) and r.field == "priority", r
        else:
            assert isinstance(r, dict) and r["payload"] == {"i": i}, r
    good = sorted(r["id"] for r in out if isinstance(r, dict))
    assert len(set(good)) == n - 3
    assert sorted(j["id"] for j in cl.list(queue=q)) == good  # Read your writes.

