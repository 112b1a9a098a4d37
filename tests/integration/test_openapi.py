"""The OpenAPI document (http/openapi.json, served at GET /v1/openapi.json):

- it describes exactly the routes of the route table (http/routes.c, parsed
  with test_routes.table()'s regex), with each route's role (security,
  x-rota-role), leader flag (x-rota-leader) and the seeds' aliases
  deprecated, and no operation that is not in the table;
- the node serves the repository's file byte for byte, without a token;
- real answers of a live 3-node cluster (and a 1-node one with --acl) are
  valid against the document's response schemas, and the request bodies
  the tests send against its request schemas, with the small JSON-schema
  validator below (strict: a missing required field, a wrong type or an
  undocumented field fails; a schema keyword it does not know is an error).
"""

import http.client
import json
import os
import re

import pytest

from conftest import ROOT, free_port, submit, wait_until
from test_routes import MISSING, table

DOC_PATH = os.path.join(ROOT, "http", "openapi.json")

# Issue 14: documented with x-rota-since "issue-14" before they are routed.
# The lead deletes this set once GET /v1/events is in the route table.

ROLES = {"READ": "read", "SUBMIT": "submit", "WORKER": "worker", "ADMIN": "admin", "NULL": None}
METHODS = ("get", "put", "post", "delete", "patch")


def load_doc():
    with open(DOC_PATH) as f:
        return json.load(f)


# ---- A small JSON-schema validator (the subset the document uses) --------

ANNOTATIONS = {"description", "default", "examples", "title", "deprecated"}
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class Invalid(AssertionError):
    pass


def deref(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        assert set(node) == {"$ref"}, f"$ref with siblings: {node}"
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def type_ok(t, v):
    return {
        "null": v is None,
        "boolean": isinstance(v, bool),
        "integer": isinstance(v, int) and not isinstance(v, bool),
        "number": isinstance(v, (int, float)) and not isinstance(v, bool),
        "string": isinstance(v, str),
        "array": isinstance(v, list),
        "object": isinstance(v, dict),
    }[t]


KEYWORDS = {"$ref", "type", "enum", "const", "oneOf", "properties", "required",
            "additionalProperties", "minProperties", "maxProperties", "items", "minItems",
            "maxItems", "minimum", "maximum", "minLength", "maxLength", "pattern", "format"}


def validate(doc, schema, v, at="$"):
    """Raise Invalid naming the first place where @v does not match @schema."""
    s = deref(doc, schema)
    unknown = set(s) - ANNOTATIONS - KEYWORDS
    if unknown:
        raise ValueError(f"{at}: schema keywords the validator does not know: {unknown}")
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        if not any(type_ok(t, v) for t in types):
            raise Invalid(f"{at}: {json.dumps(v)[:80]} is not of type {s['type']}")
    if "enum" in s and not any(v == e and type(v) is type(e) for e in s["enum"]):
        raise Invalid(f"{at}: {v!r} not in {s['enum']}")
    if "const" in s and not (v == s["const"] and type(v) is type(s["const"])):
        raise Invalid(f"{at}: {v!r} is not {s['const']!r}")
    if "oneOf" in s:
        one_of(doc, s["oneOf"], v, at)
    if isinstance(v, dict):
        check_object(doc, s, v, at)
    elif isinstance(v, list):
        for i, item in enumerate(v):
            if "items" in s:
                validate(doc, s["items"], item, f"{at}[{i}]")
        if not s.get("minItems", 0) <= len(v) <= s.get("maxItems", len(v)):
            raise Invalid(f"{at}: {len(v)} items")
    elif type_ok("number", v):
        if not s.get("minimum", v) <= v <= s.get("maximum", v):
            raise Invalid(f"{at}: {v} out of [{s.get('minimum')}, {s.get('maximum')}]")
    elif isinstance(v, str):
        check_string(s, v, at)


def one_of(doc, subs, v, at):
    errors, ok = [], 0
    for i, sub in enumerate(subs):
        try:
            validate(doc, sub, v, f"{at}<oneOf {i}>")
            ok += 1
        except Invalid as e:
            errors.append(str(e))
    if ok != 1:
        raise Invalid(f"{at}: matches {ok} of oneOf (exactly 1 wanted): {errors}")


def check_object(doc, s, v, at):
    for k in s.get("required", []):
        if k not in v:
            raise Invalid(f"{at}: required field {k!r} missing")
    props = s.get("properties", {})
    extra = s.get("additionalProperties", True)
    for k, val in v.items():
        if k in props:
            validate(doc, props[k], val, f"{at}.{k}")
        elif extra is False:
            raise Invalid(f"{at}: field {k!r} is not in the schema")
        elif isinstance(extra, dict):
            validate(doc, extra, val, f"{at}.{k}")
    if not s.get("minProperties", 0) <= len(v) <= s.get("maxProperties", len(v)):
        raise Invalid(f"{at}: {len(v)} fields")


def check_string(s, v, at):
    if not s.get("minLength", 0) <= len(v) <= s.get("maxLength", len(v)):
        raise Invalid(f"{at}: length {len(v)}")
    if "pattern" in s and re.search(s["pattern"], v) is None:
        raise Invalid(f"{at}: {v!r} does not match {s['pattern']}")
    if s.get("format", "date-time") != "date-time":
        raise ValueError(f"{at}: unknown format {s['format']}")
    if "format" in s and not DATE_TIME.match(v):
        raise Invalid(f"{at}: {v!r} is not an RFC 3339 time")


def schema(name):
    return {"$ref": f"#/components/schemas/{name}"}


def rejects(doc, sch, value):
    try:
        validate(doc, sch, value)
    except Invalid:
        return True
    return False


def test_openapi_validator_rejects_what_it_must():
    doc = load_doc()
    job = {"id": "0000000000500001", "type": "noop", "status": "pending", "queue": "default",
           "priority": 0, "attempts": 0, "max_attempts": 3, "payload": {},
           "created_at": "2026-11-22T09:59:00.123Z", "updated_at": "2026-11-22T09:59:00.123Z",
           "started_at": None, "finished_at": None, "last_error": None, "result": None}
    validate(doc, schema("Job"), job)
    for k in ("status", "id", "created_at", "result"):
        assert rejects(doc, schema("Job"), {f: v for f, v in job.items() if f != k}), k
    for k, bad in (("priority", "0"), ("priority", 1.5), ("attempts", True), ("status", "done"),
                   ("id", "5"), ("created_at", "yesterday"), ("last_error", 3), ("queue", None)):
        assert rejects(doc, schema("Job"), dict(job, **{k: bad})), (k, bad)
    assert rejects(doc, schema("Job"), dict(job, surprise=1))  # Undocumented field.
    assert rejects(doc, schema("Job"), dict(job, history=[{"attempt": 1}]))  # Nested required.
    validate(doc, schema("Job"), dict(job, tags={"a": "b"}, result=[1, {"x": None}]))
    assert rejects(doc, schema("Job"), dict(job, tags={"a": 1}))  # additionalProperties schema.
    err = {"error": {"code": "not_found", "message": "no job"}}
    validate(doc, schema("Error"), err)
    assert rejects(doc, schema("Error"), {"error": {"code": "not_found"}})
    assert rejects(doc, schema("Error"), {"error": {"code": "nope", "message": "x"}})
    assert rejects(doc, schema("Error"), {"code": "not_found", "message": "x"})
    # oneOf: exactly one; a nullable leader.
    q = {"name": "q", "paused": False, "concurrency": None, "max_pending": 5,
         "counts": {s: 0 for s in ("scheduled", "waiting", "pending", "running", "completed", "failed", "cancelled")}}
    validate(doc, schema("Queue"), q)
    assert rejects(doc, schema("Queue"), dict(q, concurrency="none"))
    assert rejects(doc, schema("Queue"), dict(q, max_pending=0))  # minimum 1 (0 is shown as null).
    assert rejects(doc, {"oneOf": [{"type": "integer"}, {"type": "number"}]}, 3)
    validate(doc, {"oneOf": [{"type": "integer"}, {"type": "string"}]}, 3)
    assert rejects(doc, schema("BatchResult"), {"status": 201, "error": err["error"]})
    assert rejects(doc, schema("JobList"), {"jobs": [dict(job, priority=None)]})  # items.
    with pytest.raises(ValueError):
        validate(doc, {"type": "string", "unknownKeyword": 1}, "x")


# ---- The document against the route table ---------------------------------

def doc_operations(doc):
    return {(m.upper(), p): o for p, item in doc["paths"].items() for m, o in item.items() if m in METHODS}


def refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for v in node.values():
            yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


def test_openapi_document_matches_route_table():
    doc = load_doc()
    assert doc["openapi"].startswith("3.1.")
    routes = table()
    ops = doc_operations(doc)
    in_table = {(m, p) for m, p, _, _, _ in routes}
    assert len(in_table) == len(routes)
    assert in_table - set(ops) == set(), "routes missing from http/openapi.json"
    assert set(ops) - in_table == set(), "documented operations that are not routes"
    wait = [deref(doc, p) for p in ops[("GET", "/v1/jobs/{id}")]["parameters"]]
    assert any(p["name"] == "wait" for p in wait)

    v1_handlers = {h for _, p, h, _, _ in routes if p.startswith("/v1/")}
    for method, path, handler, flags, role in routes:
        o = ops[(method, path)]
        what = (method, path)
        need = ROLES[role]
        assert o["x-rota-role"] == need, what
        assert o["x-rota-leader"] == ("LEADER" in flags), what
        if need is None:
            assert o["security"] == [], what
        else:
            assert len(o["security"]) == 1 and o["security"][0]["bearerAuth"] == [need], what
        alias = not path.startswith("/v1/") and handler in v1_handlers
        assert o.get("deprecated", False) == alias, what
        assert any(s.startswith("2") for s in o["responses"]), what
        assert "default" in o["responses"], what
        declared = {deref(doc, p)["name"] for p in o.get("parameters", []) if deref(doc, p)["in"] == "path"}
        assert declared == set(re.findall(r"\{(\w+)\}", path)), what
    ids = [o["operationId"] for o in ops.values()]
    assert len(ids) == len(set(ids))
    for r in set(refs(doc)):
        deref(doc, {"$ref": r})  # Every reference resolves.
    tags = {t["name"] for t in doc["tags"]}
    assert all(set(o["tags"]) <= tags for o in ops.values())


# ---- Live answers -------------------------------------------------------------

def raw_get(node, path):
    host, port = node.http.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.getheader("content-type"), r.read()
    finally:
        conn.close()


def test_openapi_served_is_the_file(shared_cluster):
    with open(DOC_PATH, "rb") as f:
        want = f.read()
    for node in [shared_cluster.leader()] + shared_cluster.followers():
        status, ctype, body = raw_get(node, "/v1/openapi.json")
        assert status == 200 and ctype == "application/json"
        assert body == want
        assert json.loads(body)["openapi"].startswith("3.1.")


class Api:
    """Requests checked against the document: the request body against the
    operation's request schema (when the request should succeed), the
    answer against the schema of its status, which must be documented."""

    def __init__(self, doc):
        self.doc = doc
        self.ops = doc_operations(doc)

    def __call__(self, node, method, pattern, body=None, expect=200, path=None, headers=None, raw=None,
                 valid_body=None):
        o = self.ops[(method, pattern)]
        if body is not None and (expect < 300 if valid_body is None else valid_body):
            rb = deref(self.doc, o["requestBody"])
            validate(self.doc, rb["content"]["application/json"]["schema"], body, "request")
        kw = {"headers": headers} if headers else {}
        status, hs, resp = node.req(method, path or pattern, body, raw=raw, **kw)
        assert status == expect, (method, path or pattern, status, resp)
        r = o["responses"].get(str(status))
        assert r is not None, f"{method} {pattern}: status {status} is not documented"
        r = deref(self.doc, r)
        assert hs.get("content-type") == "application/json"
        validate(self.doc, r["content"]["application/json"]["schema"], resp,
                 f"{method} {pattern} {status}")
        for h in r.get("headers", {}):
            assert h.lower() in hs, (method, pattern, h)
        return resp


def nodes(c):
    """(Api, leader, follower): writes go to the follower (forwarded),
    reads after writes to the leader (which answered the write once it
    applied it; a follower applies it a heartbeat later)."""
    return Api(load_doc()), c.leader(), c.followers()[0]


def test_openapi_workers_and_dlq_answers(shared_cluster):
    c = shared_cluster
    api, leader, follower = nodes(c)

    # Workers: register, list.
    reg = api(follower, "POST", "/v1/workers", {"name": "oa", "queues": ["oa-q"], "types": ["oa-type"],
                                                 "concurrency": 2}, expect=201)
    wid, secret = reg["id"], {"X-Rota-Worker-Secret": reg["secret"]}
    workers = api(leader, "GET", "/v1/workers")
    assert any(w["id"] == wid for w in workers["workers"])

    # Submit (single, with most fields), again by its idempotency key, get.
    body = {"type": "oa-type", "queue": "oa-q", "name": "report", "payload": {"cmd": "x"}, "priority": 5,
            "user_id": "u1", "tags": {"team": "data"}, "max_attempts": 2, "timeout": "90500ms",
            "backoff": {"initial": "1s", "multiplier": 2, "max": "1h", "jitter": 0.1},
            "no_retry_exit_codes": [3], "concurrency_key": "k1", "idempotency_key": "oa-1"}
    job = api(follower, "POST", "/v1/jobs", body, expect=201)
    assert api(leader, "POST", "/v1/jobs", body, expect=200)["id"] == job["id"]
    api(leader, "GET", "/v1/jobs/{id}", path=f"/v1/jobs/{job['id']}")
    api(leader, "GET", "/v1/jobs/{id}", path=f"/v1/jobs/{job['id']}?consistency=linearizable")

    # The worker protocol: lease, heartbeat, complete (ok), a stale completion.
    lease_path = f"/v1/workers/{wid}/lease"

    def lease_one():
        def got():
            r = api(follower, "POST", "/v1/workers/{id}/lease", {"max": 1, "wait_ms": 1000},
                    path=lease_path, headers=secret)
            return r["leases"][0] if r["leases"] else None
        return wait_until(got, what="a lease")

    ls = lease_one()
    assert ls["job"]["id"] == job["id"]
    hb = api(follower, "POST", "/v1/workers/{id}/heartbeat",
             {"running": [{"id": job["id"], "token": ls["token"]}]},
             path=f"/v1/workers/{wid}/heartbeat", headers=secret)
    assert hb == {"cancel": [], "lost": []}
    running = api(leader, "GET", "/v1/jobs/{id}", path=f"/v1/jobs/{job['id']}")
    assert running["status"] == "running" and running["worker_id"] == wid
    result = {"id": job["id"], "token": ls["token"], "ok": True, "exit_code": 0, "output": "hi",
              "result": {"rows": 3}}
    done = api(follower, "POST", "/v1/workers/{id}/complete", {"results": [result]},
               path=f"/v1/workers/{wid}/complete", headers=secret)
    assert done["results"] == [{"id": job["id"], "status": "ok"}]
    stale = api(follower, "POST", "/v1/workers/{id}/complete", {"results": [result]},
                path=f"/v1/workers/{wid}/complete", headers=secret, expect=409)
    assert stale["results"][0]["status"] == "stale"
    # A compact lease (JobToRun) of a second job; its slot free again.
    job2 = api(leader, "POST", "/v1/jobs", dict(body, idempotency_key="oa-2"), expect=201)
    ls2 = wait_until(lambda: (api(follower, "POST", "/v1/workers/{id}/lease",
                                  {"max": 1, "wait_ms": 1000, "compact": True},
                                  path=lease_path, headers=secret)["leases"] or [None])[0],
                     what="a compact lease")
    assert ls2["job"]["id"] == job2["id"] and "status" not in ls2["job"]
    api(follower, "POST", "/v1/workers/{id}/complete",
        {"results": [{"id": job2["id"], "token": ls2["token"], "ok": True}]},
        path=f"/v1/workers/{wid}/complete", headers=secret)
    finished = wait_until(lambda: (lambda j: j if j["status"] == "completed" else None)(
        api(leader, "GET", "/v1/jobs/{id}", path=f"/v1/jobs/{job['id']}")), what="completed")
    assert finished["history"] and finished["result"] == {"rows": 3}

    # Failures: the DLQ, retry one, retry in bulk, delete in bulk.
    def fail(job_id):
        ls = lease_one()
        assert ls["job"]["id"] == job_id
        api(follower, "POST", "/v1/workers/{id}/complete",
            {"results": [{"id": job_id, "token": ls["token"], "ok": False, "retryable": False,
                          "exit_code": 3, "error": "boom"}]},
            path=f"/v1/workers/{wid}/complete", headers=secret)
        wait_until(lambda: c.job(job_id)["status"] == "failed", what="failed")

    bad = api(leader, "POST", "/v1/jobs", {"type": "oa-type", "queue": "oa-q"}, expect=201)
    fail(bad["id"])
    dlq = api(leader, "GET", "/v1/dlq", path="/v1/dlq?queue=oa-q")
    assert [j["id"] for j in dlq["jobs"]] == [bad["id"]] and dlq["jobs"][0]["last_error"]
    api(follower, "POST", "/v1/jobs/{id}/retry", path=f"/v1/jobs/{bad['id']}/retry")
    fail(bad["id"])
    assert api(follower, "POST", "/v1/dlq/retry", path="/v1/dlq/retry?queue=oa-q")["retried"] == 1
    fail(bad["id"])
    assert api(follower, "DELETE", "/v1/dlq", path="/v1/dlq?queue=oa-q&limit=10")["deleted"] == 1
    api(follower, "POST", "/v1/jobs/{id}/retry", path=f"/v1/jobs/{job['id']}/retry", expect=409)
    api(follower, "DELETE", "/v1/workers/{id}", path=f"/v1/workers/{wid}", headers=secret)
    api(follower, "POST", "/v1/workers/{id}/lease", {}, path=f"/v1/workers/{MISSING}/lease",
        headers=secret, expect=404)


def test_openapi_job_answers(shared_cluster):
    api, leader, follower = nodes(shared_cluster)

    # Batches: atomic (both forms), independent (one job refused).
    jobs = [{"type": "noop", "queue": "oa-idle"}, {"type": "noop", "queue": "oa-idle", "delay": "1h"}]
    b = api(follower, "POST", "/v1/jobs", {"jobs": jobs}, expect=201)
    assert [j["status"] for j in b["jobs"]] == ["pending", "scheduled"]
    api(follower, "POST", "/v1/jobs", jobs, expect=201)
    res = api(follower, "POST", "/v1/jobs/batch", {"jobs": [jobs[0], {"type": "noop", "priority": "x"}]},
              valid_body=False)
    assert [r["status"] for r in res["results"]] == [201, 400]
    api(follower, "POST", "/v1/jobs/batch", [jobs[0]])

    # Dependencies, waiting, pending without a worker (waiting_for), patch, cancel.
    dep = api(follower, "POST", "/v1/jobs", {"type": "noop", "queue": "oa-idle", "trigger": "all_done",
                                              "depends_on": [b["jobs"][0]["id"]]}, expect=201)
    assert dep["status"] == "waiting" and dep["trigger"] == "all_done"
    got = api(leader, "GET", "/v1/jobs/{id}", path=f"/v1/jobs/{b['jobs'][0]['id']}")
    assert "waiting_for" in got
    api(follower, "PATCH", "/v1/jobs/{id}", {"priority": 9, "timeout": 30},
        path=f"/v1/jobs/{b['jobs'][0]['id']}")
    cancelled = api(follower, "DELETE", "/v1/jobs/{id}", path=f"/v1/jobs/{b['jobs'][0]['id']}")
    assert cancelled["status"] == "cancelled"
    api(follower, "DELETE", "/v1/jobs/{id}", path=f"/v1/jobs/{b['jobs'][0]['id']}", expect=409)

    # Lists and their cursor.
    page = api(leader, "GET", "/v1/jobs", path="/v1/jobs?queue=oa-idle&limit=1")
    assert len(page["jobs"]) == 1 and "next_cursor" in page
    api(leader, "GET", "/v1/jobs", path=f"/v1/jobs?queue=oa-idle&cursor={page['next_cursor']}")
    api(leader, "GET", "/v1/jobs", path="/v1/jobs?status=cancelled")

    # Legacy aliases.
    one = b["jobs"][1]["id"]
    api(leader, "GET", "/jobs/{id}", path=f"/jobs/{one}")
    api(leader, "GET", "/api/job-status/{id}", path=f"/api/job-status/{one}")
    api(leader, "GET", "/api/jobs", path="/api/jobs?limit=2")
    api(leader, "GET", "/jobs", path="/jobs?limit=2")
    api(follower, "POST", "/jobs", {"type": "noop", "queue": "oa-idle"}, expect=201)
    api(follower, "POST", "/api/jobs", {"type": "noop", "queue": "oa-idle"}, expect=201)
    api(follower, "PATCH", "/jobs/{id}", {"priority": 1}, path=f"/jobs/{one}")
    api(follower, "DELETE", "/jobs/{id}", path=f"/jobs/{one}")

    # A follower's read, once it applied the job.
    wait_until(lambda: follower.req("GET", f"/v1/jobs/{one}")[2].get("status") == "cancelled",
               what="applied on the follower")
    api(follower, "GET", "/v1/jobs/{id}", path=f"/v1/jobs/{one}")


def test_openapi_schedule_workflow_queue_answers(shared_cluster):
    api, leader, follower = nodes(shared_cluster)

    # Schedules.
    sch = api(follower, "POST", "/v1/jobs", {"type": "noop", "queue": "oa-sched", "schedule": "0 3 * * *",
                                              "timezone": "Europe/Berlin", "overlap": "allow",
                                              "catchup": "skip", "catchup_max": 2}, expect=201)
    assert sch["recurring"] is True
    sp = f"/v1/jobs/{sch['id']}"
    assert api(follower, "POST", "/v1/jobs/{id}/pause", path=sp + "/pause")["next_run_at"] is None
    api(follower, "POST", "/v1/jobs/{id}/resume", path=sp + "/resume")
    run = api(follower, "POST", "/v1/jobs/{id}/trigger", path=sp + "/trigger", expect=201)
    assert run["schedule_id"] == sch["id"]
    api(follower, "POST", "/v1/jobs/{id}/trigger", path=sp + "/trigger", expect=201)
    runs = api(leader, "GET", "/v1/jobs/{id}/runs", path=sp + "/runs?limit=1")
    assert len(runs["runs"]) == 1 and "next_before" in runs
    api(leader, "GET", "/v1/schedule/preview",
        path="/v1/schedule/preview?schedule=*/5%20*%20*%20*%20*&n=3&timezone=Europe/Berlin")
    api(follower, "DELETE", "/v1/jobs/{id}", path=sp)

    # Workflows.
    wf = api(follower, "POST", "/v1/workflows", {"name": "oa-wf", "jobs": [
        {"key": "a", "type": "noop", "queue": "oa-idle"},
        {"key": "b", "type": "noop", "queue": "oa-idle", "depends_on": ["a"]}]}, expect=201)
    assert [j["workflow_key"] for j in wf["jobs"]] == ["a", "b"]
    api(leader, "GET", "/v1/workflows/{id}", path=f"/v1/workflows/{wf['id']}")
    assert api(follower, "DELETE", "/v1/workflows/{id}", path=f"/v1/workflows/{wf['id']}")["status"] == "cancelled"
    api(leader, "GET", "/v1/workflows/{id}", path=f"/v1/workflows/{MISSING}", expect=404)

    # Queues.
    api(follower, "PUT", "/v1/queues/{name}", {"max_pending": 100, "concurrency": None, "paused": False},
        path="/v1/queues/oa-q")
    qs = api(leader, "GET", "/v1/queues")
    assert any(q["name"] == "oa-q" and q["max_pending"] == 100 for q in qs["queues"])
    api(leader, "GET", "/v1/queues/{name}", path="/v1/queues/oa-q")


def test_openapi_cluster_health_and_error_answers(shared_cluster):
    api, leader, follower = nodes(shared_cluster)
    error = schema("Error")

    # Cluster, health, digest.
    for node in (leader, follower):
        view = api(node, "GET", "/v1/cluster")
        assert view["leader"]["id"] == leader.id
    api(follower, "GET", "/healthz")
    api(follower, "GET", "/readyz")
    api(follower, "GET", "/v1/debug/digest")

    # Errors: 400 with its field, 404, 409 above, 415, ACL off (400).
    e = api(follower, "POST", "/v1/jobs", {"type": "noop", "priority": "high"}, expect=400)
    assert e["error"]["field"] == "priority" and e["error"]["code"] == "invalid_argument"
    e = api(leader, "GET", "/v1/jobs/{id}", path=f"/v1/jobs/{MISSING}", expect=404)
    assert e["error"]["code"] == "not_found"
    api(leader, "GET", "/v1/jobs", path="/v1/jobs?status=nope", expect=400)
    api(follower, "POST", "/v1/jobs", expect=415, raw=b"type=noop",
        headers={"Content-Type": "text/plain"})
    api(leader, "GET", "/v1/acl/tokens", expect=400)
    # Errors that belong to no operation: no route (404), wrong method (405).
    for method, path, want in (("GET", "/v1/nothing", 404), ("PUT", "/v1/jobs", 405)):
        status, _, resp = follower.req(method, path)
        assert status == want
        validate(api.doc, error, resp)


def test_openapi_acl_answers_match_schemas(cluster):
    """With --acl: bootstrap, tokens create/list/delete, 401 and 403, and
    the document served without a token."""
    c = cluster(1, ["--acl"])
    node = c.leader()
    api = Api(load_doc())
    status, _, _ = node.req("GET", "/v1/openapi.json")
    assert status == 200
    boot = api(node, "POST", "/v1/acl/bootstrap", expect=201)
    admin = {"Authorization": f"Bearer {boot['secret']}"}
    api(node, "POST", "/v1/acl/bootstrap", expect=403)
    tok = api(node, "POST", "/v1/acl/tokens", {"name": "ro", "role": "read", "queues": ["q1"],
                                               "rate": 2.5, "burst": 5,
                                               "expires_at": "2099-01-01T00:00:00Z"},
              headers=admin, expect=201)
    api(node, "POST", "/v1/acl/tokens", {"name": "w", "role": "worker"}, headers=admin, expect=201)
    tokens = api(node, "GET", "/v1/acl/tokens", headers=admin)
    assert {t["name"] for t in tokens["tokens"]} == {"bootstrap", "ro", "w"}
    api(node, "GET", "/v1/jobs", expect=401)
    api(node, "POST", "/v1/jobs", {"type": "noop"}, expect=403,
        headers={"Authorization": f"Bearer {tok['secret']}"})
    api(node, "DELETE", "/v1/acl/tokens/{id}", path=f"/v1/acl/tokens/{tok['id']}", headers=admin)
    api(node, "DELETE", "/v1/acl/tokens/{id}", path=f"/v1/acl/tokens/{MISSING}", headers=admin,
        expect=404)


def test_openapi_webhook_answers(shared_cluster):
    api, leader, follower = nodes(shared_cluster)
    port = free_port()  # Nobody listens: deliveries stay pending with an error.
    hook = api(follower, "POST", "/v1/webhooks",
               {"url": f"http://127.0.0.1:{port}/h", "events": ["job.created"],
                "queues": ["oa-hooks"]}, expect=201)
    assert len(hook["secret"]) == 64
    api(follower, "POST", "/v1/webhooks", {"url": "gopher://x", "events": ["job.*"]},
        expect=400, valid_body=False)
    submit(leader, {"type": "noop", "queue": "oa-hooks"})
    api(leader, "GET", "/v1/webhooks")
    api(leader, "GET", "/v1/webhooks/{id}", path=f"/v1/webhooks/{hook['id']}")
    dl = wait_until(lambda: (lambda d: d if d["deliveries"] and d["deliveries"][0]["tries"] else None)(
        api(leader, "GET", "/v1/webhooks/{id}/deliveries",
            path=f"/v1/webhooks/{hook['id']}/deliveries")), what="a failed try")
    assert dl["deliveries"][0]["event"]["event"] == "job.created"
    api(follower, "DELETE", "/v1/webhooks/{id}", path=f"/v1/webhooks/{hook['id']}")
    api(leader, "GET", "/v1/webhooks/{id}", path=f"/v1/webhooks/{hook['id']}", expect=404)
