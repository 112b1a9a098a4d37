"""POST /v1/jobs/batch: a non-atomic batch, each job answered on its own
(docs/api.md). The jobs that are valid are created even when others in
the same request are refused."""

from conftest import submit


def post_batch(node, jobs, expect=200):
    st, _, body = node.req("POST", "/v1/jobs/batch", {"jobs": jobs})
    assert st == expect, body
    return body


def test_batch_each_job_on_its_own(shared_cluster):
    c = shared_cluster
    lead = c.leader()
    first = submit(lead, {"type": "noop", "queue": "nb", "idempotency_key": "nb-dup"})
    body = post_batch(c.followers()[0], [
        {"type": "noop", "queue": "nb", "priority": 5},
        {"type": "noop", "queue": "nb", "priority": "high"},
        {"type": "noop", "queue": "nb", "idempotency_key": "nb-dup"},
        {"type": "noop", "queue": "nb", "idempotency_key": "nb-dup", "priority": 9},
        {"type": "noop", "queue": "nb", "delay": "nans"},
        {"type": "noop", "queue": "nb"},
    ])
    r = body["results"]
    assert [x["status"] for x in r] == [201, 400, 200, 409, 400, 201], r
    assert r[0]["job"]["priority"] == 5 and r[0]["job"]["status"] == "pending"
    assert r[1]["error"]["code"] == "invalid_argument" and r[1]["error"]["field"] == "priority"
    assert r[2]["job"]["id"] == first["id"]
    assert r[3]["error"]["code"] == "conflict"
    assert r[4]["error"]["field"] == "delay"
    # Exactly the created ones exist.
    st, _, q = lead.req("GET", "/v1/queues/nb")
    assert q["counts"]["pending"] == 3, q  # first, r[0], r[5]
    for x in (r[0], r[5]):
        assert c.job(x["job"]["id"])["id"] == x["job"]["id"]


def test_batch_queue_cap_refuses_only_the_excess(shared_cluster):
    lead = shared_cluster.leader()
    st, _, _ = lead.req("PUT", "/v1/queues/nbcap", {"max_pending": 2})
    assert st == 200
    body = post_batch(lead, [{"type": "noop", "queue": "nbcap"} for _ in range(4)])
    statuses = [x["status"] for x in body["results"]]
    assert statuses == [201, 201, 429, 429], body
    assert body["results"][2]["error"]["code"] == "resource_exhausted"


def test_batch_whole_request_errors(shared_cluster):
    lead = shared_cluster.leader()
    st, _, body = lead.req("POST", "/v1/jobs/batch", {"jobs": []})
    assert st == 400 and body["error"]["field"] == "jobs", body
    st, _, body = lead.req("POST", "/v1/jobs/batch", {"type": "noop"})
    assert st == 400 and body["error"]["field"] == "jobs", body
    st, _, body = lead.req("POST", "/v1/jobs/batch", [{"type": "noop"}] * 1001)
    assert st == 413, body
    # A bare array works too.
    st, _, body = lead.req("POST", "/v1/jobs/batch", [{"type": "noop"}])
    assert st == 200 and body["results"][0]["status"] == 201, body
