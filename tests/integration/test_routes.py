"""The route table (http/routes.c), walked: every route is reached, on the
leader and through a follower, by a request its handler answers itself
(never the router's 404 "no route" or 405); write routes are forwarded by
followers; methods not in the table get 405 and unknown paths 404, both as
JSON errors. Requests use unknown ids or invalid bodies where a real call
would change the cluster."""

import os
import re

from conftest import submit

ROUTES_C = os.path.join(os.path.dirname(__file__), "..", "..", "http", "routes.c")
ENTRY = re.compile(r'\{"(GET|POST|PUT|PATCH|DELETE)",\s*"([^"]+)",\s*(\w+),\s*([A-Z_| 0]+),'
                   r'\s*([A-Z]+|NULL)(?:,\s*\w+)?\}')

MISSING = "00000000000fffff"


def table():
    with open(ROUTES_C) as f:
        text = f.read()
    start = text.index("http__routes[] = {")
    end = text.index("};", start)
    routes = ENTRY.findall(text[start:end])
    assert len(routes) >= 40, "the table did not parse"
    return routes


def sample(method, pattern, ids):
    """A request for @pattern that the handler answers without changing
    anything durable (or only test-owned objects)."""
    var = ids.get(pattern, MISSING)
    path = re.sub(r"\{[a-z]+\}", var, pattern)
    bodies = {
        ("POST", "/v1/cluster/nodes"): {},
        ("POST", "/v1/cluster/transfer"): {"id": "not-a-number"},
        ("POST", "/v1/workers"): {"name": ""},
        ("POST", "/v1/workflows"): {"jobs": []},
        ("PUT", "/v1/queues/{name}"): {"paused": "maybe"},
        ("PATCH", "/v1/jobs/{id}"): {"priority": 1},
        ("PATCH", "/jobs/{id}"): {"priority": 1},
    }
    if pattern == "/v1/schedule/preview":
        path += "?schedule=@daily"
    if pattern == "/v1/events":
        path += "?events=none.such"  # A 400 from the handler: a stream never ends.
    if method == "POST" and pattern in ("/v1/jobs", "/jobs", "/api/jobs"):
        return path, {"type": "noop", "queue": "nobody-routes"}
    return path, bodies.get((method, pattern), {} if method in ("POST", "PUT", "PATCH") else None)


def not_router(status, body):
    if status == 405:
        return False
    if status == 404 and isinstance(body, dict):
        return not body.get("error", {}).get("message", "").startswith("no route")
    return True


def test_routes_every_route_is_reached(shared_cluster):
    c = shared_cluster
    leader, follower = c.leader(), c.followers()[0]
    job = submit(leader, {"type": "noop", "queue": "nobody-routes"})
    ids = {"/v1/queues/{name}": "nobody-routes", "/v1/jobs/{id}": job["id"]}
    seen = set()
    for method, pattern, handler, flags, role in table():
        for node in (leader, follower):
            path, body = sample(method, pattern, ids)
            if method == "DELETE" and pattern in ("/v1/jobs/{id}", "/jobs/{id}"):
                path = path.replace(job["id"], MISSING)
            status, headers, resp = node.req(method, path, body)
            assert not_router(status, resp), (method, pattern, node.id, status, resp)
            assert status < 500, (method, pattern, node.id, status, resp)
        seen.add((method, pattern))
    assert len(seen) == len(table())


def test_routes_leader_routes_are_forwarded(shared_cluster):
    """A LEADER route sent to a follower is answered by the leader: the
    job it creates is there, and the forward counter moved."""
    c = shared_cluster
    follower = c.followers()[0]
    leader_routes = [(m, p) for m, p, _, f, _ in table() if "LEADER" in f]
    assert ("POST", "/v1/jobs") in leader_routes
    assert ("POST", "/v1/workers/{id}/lease") in leader_routes
    reads = [(m, p) for m, p, _, f, _ in table() if "LEADER" not in f]
    assert all(m == "GET" for m, _ in reads), reads

    def forwarded():
        _, _, text = follower.req("GET", "/metrics")
        m = re.search(r"^rota_forwarded_requests_total (\d+)$", text, re.M)
        return int(m.group(1))
    before = forwarded()
    job = submit(follower, {"type": "noop", "queue": "nobody-routes"})
    assert forwarded() == before + 1
    assert c.job(job["id"])["id"] == job["id"]


def test_routes_unknown_method_and_path(shared_cluster):
    n = shared_cluster.followers()[0]
    status, _, body = n.req("PUT", "/v1/jobs")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
    status, _, body = n.req("POST", "/v1/jobs/abc/runs")
    assert status == 405
    status, _, body = n.req("GET", "/v1/nothing/here")
    assert status == 404 and body["error"]["message"].startswith("no route")
    status, _, body = n.req("GET", "/v1/jobs/")
    assert status == 404
    status, _, body = n.req("GET", f"/v1/jobs/{MISSING}/extra")
    assert status == 404 and body["error"]["message"].startswith("no route")
