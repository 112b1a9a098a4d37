"""The job API on a healthy 3-node cluster (one shared cluster)."""

import http.client
import json
import os
import re
import uuid

import pytest

from conftest import ROOT, request, submit, wait_until


def uniq(prefix="u"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_submit_through_follower_reads_everywhere(shared_cluster):
    c = shared_cluster
    follower = c.followers()[0]
    job = submit(follower, {"type": "shell", "payload": {"cmd": "echo hi"}})
    assert job["status"] == "pending"
    assert job["type"] == "shell"
    assert job["payload"] == {"cmd": "echo hi"}
    assert len(job["id"]) == 16
    for n in c.alive():
        def read():
            status, headers, body = n.req("GET", f"/v1/jobs/{job['id']}")
            return (status, headers, body) if status == 200 else None
        status, headers, body = wait_until(read, what=f"job on node {n.id}")
        # GET adds what a pending job waits for (no worker runs shell here).
        assert body.pop("waiting_for") == "a live worker on queue default that runs type shell"
        assert body == job
        assert int(headers["x-rota-index"]) > 0


def test_ids_sort_by_submission(shared_cluster):
    leader = shared_cluster.leader()
    ids = [submit(leader, {"type": "order"})["id"] for _ in range(5)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5


def test_seed_aliases(shared_cluster):
    c = shared_cluster
    n = c.followers()[0]
    user = uniq()
    status, _, job = n.req("POST", "/jobs", {"type": "email", "user_id": user})
    assert status == 201
    status, _, job2 = n.req("POST", "/api/jobs", {"name": "example-job", "type": "cron",
                                                   "schedule": "0 * * * *", "priority": 1})
    assert status == 201 and job2["schedule"] == "0 * * * *" and job2["name"] == "example-job"
    leader = c.leader()
    assert leader.req("GET", f"/jobs/{job['id']}")[2]["id"] == job["id"]
    assert leader.req("GET", f"/api/job-status/{job['id']}")[2]["status"] == "pending"
    status, _, lst = leader.req("GET", f"/jobs?status=pending&user_id={user}")
    assert status == 200 and [j["id"] for j in lst["jobs"]] == [job["id"]]
    status, _, patched = n.req("PATCH", f"/jobs/{job['id']}", {"priority": 7})
    assert status == 200 and patched["priority"] == 7
    status, _, cancelled = n.req("DELETE", f"/jobs/{job['id']}")
    assert status == 200 and cancelled["status"] == "cancelled"


def test_list_filters_and_pagination(shared_cluster):
    leader = shared_cluster.leader()
    user = uniq()
    queue = uniq("q")
    made = []
    for i in range(23):
        body = {"type": "t-a" if i % 2 else "t-b", "user_id": user,
                "queue": queue if i % 3 == 0 else "default"}
        made.append(submit(leader, body))
    cancelled = made[5]["id"]
    assert leader.req("DELETE", f"/v1/jobs/{cancelled}")[0] == 200

    def all_pages(query, limit):
        seen, cursor = [], None
        for _ in range(100):
            q = f"{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            status, _, page = leader.req("GET", f"/v1/jobs?{q}")
            assert status == 200, page
            assert len(page["jobs"]) <= limit
            seen += [j["id"] for j in page["jobs"]]
            cursor = page.get("next_cursor")
            if not cursor:
                return seen
        raise AssertionError("pagination did not end")

    ids = [j["id"] for j in made]
    for limit in (1, 4, 23, 100):
        assert sorted(all_pages(f"user_id={user}", limit)) == sorted(ids)
    pending = [i for i in ids if i != cancelled]
    assert all_pages(f"user_id={user}&status=pending", 5) == pending
    assert all_pages(f"user_id={user}&status=queued", 5) == pending
    assert all_pages(f"user_id={user}&status=cancelled", 5) == [cancelled]
    in_queue = [j["id"] for i, j in enumerate(made) if i % 3 == 0]
    assert all_pages(f"queue={queue}", 3) == in_queue
    typed = [j["id"] for i, j in enumerate(made) if i % 2 and j["id"] != cancelled]
    assert all_pages(f"user_id={user}&type=t-a&status=pending", 2) == typed
    # A page that is exactly full and the last one has no next_cursor.
    status, _, page = leader.req("GET", f"/v1/jobs?queue={queue}&limit={len(in_queue)}")
    assert len(page["jobs"]) == len(in_queue) and "next_cursor" not in page
    status, _, body = leader.req("GET", "/v1/jobs?status=bogus")
    assert status == 400 and body["error"]["field"] == "status"
    status, _, body = leader.req("GET", f"/v1/jobs?user_id={user}&cursor=zzz")
    assert status == 400 and body["error"]["field"] == "cursor"


def test_patch_and_cancel(shared_cluster):
    c = shared_cluster
    n = c.followers()[-1]
    job = submit(n, {"type": "p", "priority": 1, "payload": {"a": 1}})
    status, _, up = n.req("PATCH", f"/v1/jobs/{job['id']}",
                          {"priority": 5, "payload": {"b": 2}, "queue": "other",
                           "max_attempts": 7, "run_at": "2099-01-01T00:00:00Z"})
    assert status == 200, up
    assert (up["priority"], up["payload"], up["queue"], up["max_attempts"]) == (5, {"b": 2}, "other", 7)
    assert up["status"] == "scheduled" and up["run_at"].startswith("2099-01-01T00:00:00")
    status, _, up = n.req("PATCH", f"/v1/jobs/{job['id']}", {"delay": "0s"})
    assert status == 200 and up["status"] == "pending"
    status, _, body = n.req("PATCH", f"/v1/jobs/{job['id']}", {"type": "nope"})
    assert status == 400 and body["error"]["field"] == "type"
    status, _, body = n.req("DELETE", f"/v1/jobs/{job['id']}")
    assert status == 200 and body["status"] == "cancelled" and body["finished_at"]
    status, _, body = n.req("DELETE", f"/v1/jobs/{job['id']}")
    assert status == 409 and body["error"]["code"] == "conflict"
    status, _, body = n.req("PATCH", f"/v1/jobs/{job['id']}", {"priority": 1})
    assert status == 409
    assert n.req("GET", "/v1/jobs/00000000deadbeef")[0] == 404
    assert n.req("DELETE", "/v1/jobs/00000000deadbeef")[0] == 404
    assert n.req("PATCH", "/v1/jobs/00000000deadbeef", {"priority": 1})[0] == 404
    assert n.req("GET", "/v1/jobs/not-an-id")[0] == 404


def test_batch_is_atomic(shared_cluster):
    c = shared_cluster
    n = c.followers()[0]
    user = uniq()
    status, _, body = n.req("POST", "/v1/jobs", [{"type": "b", "user_id": user} for _ in range(50)])
    assert status == 201 and len(body["jobs"]) == 50
    status, _, body = n.req("POST", "/v1/jobs", {"jobs": [{"type": "c", "user_id": user}] * 3})
    assert status == 201 and len(body["jobs"]) == 3
    bad = [{"type": "d", "user_id": user}] * 4 + [{"type": "d", "priority": "high"}]
    status, _, body = n.req("POST", "/v1/jobs", bad)
    assert status == 400 and body["error"]["field"] == "jobs[4].priority", body
    # Rejected inside apply (unknown dependency): nothing of the batch is stored.
    bad = [{"type": "e", "user_id": user}, {"type": "e", "user_id": user, "depends_on": ["00000000deadbeef"]}]
    status, _, body = n.req("POST", "/v1/jobs", bad)
    assert status == 400 and body["error"]["field"] == "jobs[1].depends_on", body
    leader = c.leader()
    status, _, lst = leader.req("GET", f"/v1/jobs?user_id={user}&limit=1000",
                                headers={})
    assert len(lst["jobs"]) == 53
    status, _, body = n.req("POST", "/v1/jobs", [{"type": "x"}] * 1001)
    assert status == 413 and body["error"]["code"] == "too_large"


def test_idempotency_keys(shared_cluster):
    c = shared_cluster
    a, b = c.followers()[0], c.leader()
    key = uniq("key")
    first = submit(a, {"type": "i", "idempotency_key": key, "payload": {"x": 1}})
    status, _, again = b.req("POST", "/v1/jobs", {"type": "i", "idempotency_key": key, "payload": {"x": 1}})
    assert status == 200 and again["id"] == first["id"]
    status, _, body = a.req("POST", "/v1/jobs", {"type": "i", "idempotency_key": key, "payload": {"x": 2}})
    assert status == 409 and body["error"]["field"] == "idempotency_key"
    status, _, lst = b.req("GET", "/v1/jobs?type=i&limit=1000")
    assert sum(1 for j in lst["jobs"] if j.get("idempotency_key") == key) == 1


BAD = [
    ("malformed json", None, b"{not json", 400, "invalid_argument", ""),
    ("not an object", None, b"42", 400, "invalid_argument", ""),
    ("unknown field", {"type": "a", "colour": "red"}, None, 400, "invalid_argument", "colour"),
    ("missing type", {"payload": {}}, None, 400, "invalid_argument", "type"),
    ("empty type", {"type": ""}, None, 400, "invalid_argument", "type"),
    ("priority string", {"type": "a", "priority": "high"}, None, 400, "invalid_argument", "priority"),
    ("priority range", {"type": "a", "priority": 10**9}, None, 400, "invalid_argument", "priority"),
    ("max_attempts 0", {"type": "a", "max_attempts": 0}, None, 400, "invalid_argument", "max_attempts"),
    ("tags not strings", {"type": "a", "tags": {"k": 1}}, None, 400, "invalid_argument", "tags"),
    ("bad run_at", {"type": "a", "run_at": "tomorrow"}, None, 400, "invalid_argument", "run_at"),
    ("run_at and delay", {"type": "a", "run_at": "2030-01-01T00:00:00Z", "delay": "5s"}, None, 400, "invalid_argument", "delay"),
    ("bad delay", {"type": "a", "delay": "soon"}, None, 400, "invalid_argument", "delay"),
    ("bad timezone", {"type": "a", "schedule": "* * * * *", "timezone": "Mars/Olympus"}, None, 400, "invalid_argument", "timezone"),
    ("bad schedule", {"type": "a", "schedule": "61 * * * *"}, None, 400, "invalid_argument", "schedule"),
    ("bad depends_on", {"type": "a", "depends_on": "x"}, None, 400, "invalid_argument", "depends_on"),
    ("bad queue", {"type": "a", "queue": "a b"}, None, 400, "invalid_argument", "queue"),
    ("long type", {"type": "t" * 300}, None, 400, "invalid_argument", "type"),
    ("empty batch", [], None, 400, "invalid_argument", "jobs"),
    ("payload too large", {"type": "a", "payload": {"s": "x" * 70000}}, None, 413, "too_large", "payload"),
]


@pytest.mark.parametrize("name,body,raw,status,code,field", BAD, ids=[b[0] for b in BAD])
def test_bad_input(shared_cluster, name, body, raw, status, code, field):
    for n in (shared_cluster.leader(), shared_cluster.followers()[0]):
        got, _, resp = n.req("POST", "/v1/jobs", body, raw=raw)
        assert got == status, resp
        assert resp["error"]["code"] == code
        assert resp["error"].get("field", "") == field
        assert resp["error"]["message"]


def _job_table():
    """(key, patchable) of every row of the field table in http/job_json.c."""
    with open(os.path.join(ROOT, "http", "job_json.c")) as f:
        src = f.read()
    table = src[src.index("static const struct field fields[] = {"):]
    table = table[:table.index("};")]
    return [(m.group(1), m.group(2) != "NULL")
            for m in re.finditer(r'\{"(\w+)",\s*\w+,\s*(\w+),', table)]


SCHED = {"schedule": "@daily"}
# One bad field per body: (field, bad value, other fields it needs, status).
# Every key of the table must appear (test_bad_fields_cover_the_table).
BAD_FIELDS = [
    ("type", 5, {}, 400), ("type", "", {}, 400), ("type", "t" * 257, {}, 400),
    ("name", 5, {}, 400), ("name", "n" * 257, {}, 400),
    ("payload", {"s": "x" * 70000}, {}, 413),
    ("queue", 7, {}, 400), ("queue", "a b", {}, 400), ("queue", "q" * 129, {}, 400),
    ("priority", "high", {}, 400), ("priority", 1.5, {}, 400), ("priority", 1000001, {}, 400),
    ("user_id", ["u"], {}, 400), ("user_id", "", {}, 400), ("user_id", "u" * 257, {}, 400),
    ("tags", "k", {}, 400), ("tags", {"k": 1}, {}, 400), ("tags", {"": "v"}, {}, 400),
    ("tags", {f"t{i}": "v" for i in range(65)}, {}, 400),
    ("run_at", "tomorrow", {}, 400), ("run_at", 12345, {}, 400),
    ("delay", "soon", {}, 400), ("delay", -1, {}, 400),
    ("schedule", 5, {}, 400), ("schedule", "61 * * * *", {}, 400),
    ("schedule", "0 0 30 2 *", {}, 400), ("schedule", "s" * 300, {}, 400),
    ("timezone", "Mars/Olympus", SCHED, 400), ("timezone", "UTC", {}, 400),
    ("overlap", "sometimes", SCHED, 400), ("overlap", "allow", {}, 400),
    ("catchup", "never", SCHED, 400), ("catchup", "all", {}, 400),
    ("catchup_max", 0, SCHED, 400), ("catchup_max", 1001, SCHED, 400),
    ("catchup_max", 5, {}, 400),
    ("trigger", "maybe", {}, 400), ("trigger", 1, {}, 400),
    ("concurrency_key", "", {}, 400), ("concurrency_key", 3, {}, 400),
    ("concurrency_limit", 0, {"concurrency_key": "ck"}, 400),
    ("concurrency_limit", "2", {"concurrency_key": "ck"}, 400),
    ("concurrency_limit", 2, {}, 400),
    ("no_retry_exit_codes", "1", {}, 400), ("no_retry_exit_codes", [1001], {}, 400),
    ("no_retry_exit_codes", list(range(65)), {}, 400),
    ("max_attempts", -1, {}, 400), ("max_attempts", 0, {}, 400),
    ("max_attempts", 1001, {}, 400), ("max_attempts", "3", {}, 400),
    ("backoff", "1s", {}, 400), ("backoff", {"initial": "x"}, {}, 400),
    ("backoff", {"multiplier": 0}, {}, 400), ("backoff", {"jitter": 2}, {}, 400),
    ("backoff", {"foo": 1}, {}, 400),
    ("timeout", "forever", {}, 400), ("timeout", -5, {}, 400),
    ("depends_on", "x", {}, 400), ("depends_on", ["zz"], {}, 400),
    ("depends_on", ["0000000000100000"], SCHED, 400),
    ("idempotency_key", 5, {}, 400), ("idempotency_key", "k" * 257, {}, 400),
    ("colour", "red", {}, 400), ("", 1, {}, 400),
]


def test_bad_fields_cover_the_table():
    keys = {k for k, _ in _job_table()}
    assert len(keys) >= 20, keys
    assert keys == {f for f, _, _, _ in BAD_FIELDS} - {"colour", ""}


def _listed(node, field, marker_type, marker_user):
    """Jobs carrying this case's markers (the bad field may be either)."""
    q = f"type={marker_type}" if field != "type" else f"user_id={marker_user}"
    status, _, body = node.req("GET", f"/v1/jobs?{q}&limit=1000")
    assert status == 200, body
    return body["jobs"]


@pytest.mark.parametrize("field,value,extra,status", BAD_FIELDS,
                         ids=[f"{b[0] or 'empty-key'}-{i}" for i, b in enumerate(BAD_FIELDS)])
def test_bad_field_is_rejected_and_nothing_created(shared_cluster, field, value, extra,
                                                   status):
    leader = shared_cluster.leader()
    mtype, muser = uniq("bf"), uniq("bf")
    good = {"type": mtype, "user_id": muser, **extra}
    bad = {**good, field: value}
    code = "too_large" if status == 413 else "invalid_argument"
    got, _, resp = leader.req("POST", "/v1/jobs", bad)
    assert got == status, resp
    # (An empty key is named by an empty field, which the answer leaves out.)
    assert resp["error"]["code"] == code, resp
    assert resp["error"].get("field", "") == field, resp
    assert resp["error"]["message"].startswith(f"{field}: "), resp
    # In a batch the field is prefixed and the good job is not stored either.
    got, _, resp = leader.req("POST", "/v1/jobs", [good, bad])
    assert got == status, resp
    assert resp["error"]["field"] == f"jobs[1].{field}".rstrip("."), resp
    assert _listed(leader, field, mtype, muser) == []
    # A job with these markers is listed: the empty list above means something.
    submit(leader, {"type": mtype, "user_id": muser})
    wait_until(lambda: len(_listed(leader, field, mtype, muser)) == 1,
               what="the good job listed")


def test_patch_bad_field_changes_nothing(shared_cluster):
    leader = shared_cluster.leader()
    job = submit(leader, {"type": uniq("pf"), "priority": 2, "payload": {"a": 1},
                          "run_at": "2099-01-01T00:00:00Z"})
    patchable = {k for k, p in _job_table() if p}
    assert patchable == {"payload", "queue", "priority", "run_at", "delay",
                         "max_attempts", "timeout"}
    cases = [(f, v, s) for f, v, _, s in BAD_FIELDS if f in patchable]
    cases += [(k, "x", 400) for k, p in _job_table() if not p]
    cases += [("delay", "5s", 400)]  # run_at and delay: not both
    for field, value, status in cases:
        body = {field: value}
        if (field, value) == ("delay", "5s"):
            body = {"run_at": "2099-01-01T00:00:00Z", "delay": "5s"}
        got, _, resp = leader.req("PATCH", f"/v1/jobs/{job['id']}", body)
        assert got == status, (body, resp)
        assert resp["error"].get("field", "") == field, (body, resp)
    status, _, now = leader.req("GET", f"/v1/jobs/{job['id']}")
    assert status == 200
    for k in ("priority", "payload", "queue", "max_attempts", "run_at", "status"):
        assert now.get(k) == job.get(k), (k, now, job)


def test_body_limit_and_routes(shared_cluster):
    n = shared_cluster.leader()
    big = json.dumps({"type": "a", "payload": {"s": "x" * (1 << 20)}}).encode()
    status, _, body = n.req("POST", "/v1/jobs", raw=big)
    assert status == 413 and body["error"]["code"] == "too_large"
    status, _, body = n.req("GET", "/v1/nothing")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, _, body = n.req("PUT", "/v1/jobs")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"


def test_linearizable_read_on_follower(shared_cluster):
    c = shared_cluster
    f = c.followers()[0]
    job = submit(c.leader(), {"type": "lin"})
    status, headers, body = f.req("GET", f"/v1/jobs/{job['id']}?consistency=linearizable")
    assert status == 200 and body["id"] == job["id"]
    assert int(headers["x-rota-index"]) > 0


def test_cluster_view_and_health(shared_cluster):
    c = shared_cluster
    for n in c.alive():
        status, _, v = n.req("GET", "/v1/cluster")
        assert status == 200
        assert v["self"] == n.id and v["term"] >= 1
        assert sorted(x["id"] for x in v["nodes"]) == [1, 2, 3]
        assert [x["role"] for x in v["nodes"]].count("leader") == 1
        assert all(x["voter"] for x in v["nodes"])
        assert {x["http_addr"] for x in v["nodes"]} == {m.http for m in c.nodes}
        assert n.req("GET", "/healthz")[0] == 200
        assert n.req("GET", "/readyz")[0] == 200
        status, _, text = n.req("GET", "/metrics")
        assert status == 200 and 'rota_jobs{status="pending"}' in text
        assert "rota_raft_term" in text


def test_api_cross_site_requests_refused(shared_cluster):
    """What a browser page of another site can send: a text/plain or form
    body (a "simple request") is 415; a request carrying another site's
    Origin is 403; the node's own origin and requests without an Origin
    (curl, clients) go through."""
    n = shared_cluster.followers()[0]
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        st, _, err = n.req("POST", "/v1/jobs", raw=b'{"type":"noop"}',
                           headers={"Content-Type": ctype})
        assert st == 415 and err["error"]["field"] == "content-type", (ctype, st, err)
    st, _, err = n.req("POST", "/v1/jobs", {"type": "noop"},
                       headers={"Origin": "https://evil.example"})
    assert st == 403 and err["error"]["field"] == "origin", err
    st, _, err = n.req("DELETE", "/v1/jobs/00000000000fffff",
                       headers={"Origin": "http://evil.example:8001"})
    assert st == 403, err
    st, _, _ = n.req("POST", "/v1/jobs", {"type": "noop", "queue": "nobody-origin"},
                     headers={"Origin": f"http://{n.http}"})
    assert st == 201
    st, _, _ = n.req("POST", "/v1/jobs", raw=b'{"type":"noop","queue":"nobody-origin"}',
                     headers={"Content-Type": "application/json; charset=utf-8"})
    assert st == 201


def test_api_cors_origins_allowed(cluster):
    c = cluster(1, ["--cors-origins", "https://app.example,https://ops.example:8443"])
    n = c.leader()
    st, _, _ = n.req("POST", "/v1/jobs", {"type": "noop", "queue": "nobody-origin"},
                     headers={"Origin": "https://ops.example:8443"})
    assert st == 201
    st, _, _ = n.req("POST", "/v1/jobs", {"type": "noop"},
                     headers={"Origin": "https://app.example.evil"})
    assert st == 403


def test_api_durations_are_finite(shared_cluster):
    """Durations strtod would take (nan, inf, exponents, hex, signs) are
    400s naming the field, never a job that runs at once or a timeout
    silently dropped."""
    n = shared_cluster.followers()[0]
    for field in ("delay", "timeout"):
        for bad in ("nans", "nanms", "infs", "1e3s", "0x10s", "-1s", " 5s", "NaN"):
            st, _, err = n.req("POST", "/v1/jobs",
                               {"type": "noop", "queue": "nobody-dur", field: bad})
            assert st == 400 and err["error"]["field"] == field, (field, bad, st, err)
    st, _, job = n.req("POST", "/v1/jobs", {"type": "noop", "queue": "nobody-dur",
                                            "delay": "1.5s", "timeout": "250ms"})
    assert st == 201 and job["status"] == "scheduled", job


def test_write_answer_index_covers_the_write(shared_cluster):
    """X-Rota-Index on a write's answer is the index of the entry holding
    it: a node that has applied that index has the write."""
    c = shared_cluster
    f = c.followers()[0]
    for path, body in (("/v1/jobs", {"type": "noop", "queue": "idx"}),
                       ("/v1/jobs/batch", [{"type": "noop", "queue": "idx"}])):
        st, hs, ans = c.leader().req("POST", path, body)
        assert st in (200, 201), ans
        index = int(hs["x-rota-index"])
        job = ans["results"][0]["job"] if path.endswith("batch") else ans
        assert int(job["id"], 16) >> 20 <= index
        wait_until(lambda: f.metric("rota_raft_applied_index") >= index,
                   what="the follower at the answer's index")
        assert f.req("GET", f"/v1/jobs/{job['id']}")[0] == 200


def test_payload_limit_is_the_payload_encoded(shared_cluster):
    """The 64 KiB limit is on the payload as compact JSON: exactly 65,536
    bytes pass, one more is a 413 naming payload; other members (name,
    tags) that make the stored spec larger do not count."""
    leader = shared_cluster.leader()
    at_limit = {"s": "x" * (65536 - len('{"s":""}'))}
    job = submit(leader, {"type": "limit", "payload": at_limit,
                          "name": "n" * 200, "tags": {"team": "t" * 200}})
    assert leader.req("GET", f"/v1/jobs/{job['id']}")[2]["payload"] == at_limit
    over = {"s": at_limit["s"] + "x"}
    status, _, err = leader.req("POST", "/v1/jobs", {"type": "limit", "payload": over})
    assert status == 413 and err["error"]["field"] == "payload", err
    assert "65537 bytes" in err["error"]["message"], err


def test_status_lines_name_their_status(shared_cluster):
    """The status line's reason phrase is the status's own (201 Created),
    on the leader and through a follower, for answers and for errors."""
    lead, fol = shared_cluster.leader(), shared_cluster.followers()[0]
    cases = [("POST", "/v1/jobs", {"type": "noop"}, 201, "Created"),
             ("GET", "/v1/jobs/00000000deadbeef", None, 404, "Not Found"),
             ("POST", "/v1/jobs", {"type": ""}, 400, "Bad Request"),
             ("GET", "/v1/cluster", None, 200, "OK")]
    for node in (lead, fol):
        for method, path, body, status, reason in cases:
            host, port = node.http.split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            try:
                conn.request(method, path, body=None if body is None else json.dumps(body),
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                assert (resp.status, resp.reason) == (status, reason), (node.http, path)
            finally:
                conn.close()
