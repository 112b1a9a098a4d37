"""Access control (rotad --acl): bootstrap once per cluster, 401 without a
known token, 403 for the wrong role, a walk of the whole route table with
each role, queue limits, tokens replicated (leader change, full restart,
revocation on every node), and no secret in answers, logs or data files.
Without --acl nothing asks for a token: the rest of the suite is that test."""

import hashlib
import json
import os
import subprocess
import tempfile

import pytest

from conftest import ROTACTL, wait_until
from test_routes import MISSING, sample, table

ACL = ["--acl"]
# Routes anyone may call (role NULL in http/routes.c). A new route without
# a role that is not listed here fails test_acl_route_table_walk.
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/v1/cluster"),
          ("POST", "/v1/acl/bootstrap"), ("GET", "/"), ("GET", "/dashboard"),
          ("GET", "/ui/{file}"), ("GET", "/v1/openapi.json")}
ROLES = {"READ": "read", "SUBMIT": "submit", "WORKER": "worker", "ADMIN": "admin"}


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


def bootstrap(node):
    status, _, body = node.req("POST", "/v1/acl/bootstrap")
    assert status == 201, (status, body)
    return body["secret"]


def make_token(node, admin, role, **kw):
    body = {"name": f"t-{role}", "role": role, **kw}
    status, _, resp = node.req("POST", "/v1/acl/tokens", body, headers=bearer(admin))
    assert status == 201, (status, resp)
    return resp


def works_on(node, secret):
    """Known to @node (a token of any role: 403 for a worker's read)."""
    return node.req("GET", "/v1/jobs?limit=1", headers=bearer(secret))[0] != 401


def wait_token_everywhere(c, secret):
    for n in c.alive():
        wait_until(lambda n=n: works_on(n, secret), what=f"token known on node {n.id}")


def may(token_role, route_role):
    return (token_role == "admin" or token_role == route_role
            or (route_role == "read" and token_role == "submit"))


def test_acl_bootstrap_once(cluster):
    c = cluster(3, ACL)
    follower = c.followers()[0]
    status, _, body = follower.req("POST", "/v1/acl/bootstrap")  # Forwarded.
    assert status == 201, body
    assert body["role"] == "admin" and body["name"] == "bootstrap"
    assert len(body["secret"]) == 64 and len(body["id"]) == 16
    for n in c.alive():
        status, _, err = n.req("POST", "/v1/acl/bootstrap")
        assert status == 403 and err["error"]["code"] == "forbidden", err
    # Deleting every token does not re-open bootstrap.
    leader = c.leader()
    status, _, _ = leader.req("DELETE", f"/v1/acl/tokens/{body['id']}",
                              headers=bearer(body["secret"]))
    assert status == 200
    assert leader.req("POST", "/v1/acl/bootstrap")[0] == 403


def test_acl_unauthenticated_and_public(cluster):
    c = cluster(3, ACL)
    leader, follower = c.leader(), c.followers()[0]
    admin = bootstrap(leader)
    for n in (leader, follower):
        status, _, err = n.req("POST", "/v1/jobs", {"type": "noop"})
        assert status == 401 and err["error"]["code"] == "unauthenticated", err
        assert n.req("GET", "/v1/jobs")[0] == 401
        status, _, err = n.req("GET", "/v1/jobs", headers=bearer("0" * 64))
        assert status == 401 and err["error"]["code"] == "unauthenticated"
        assert n.req("GET", "/v1/jobs", headers={"Authorization": "Basic eDp5"})[0] == 401
        for path in ("/healthz", "/readyz", "/v1/cluster"):
            assert n.req("GET", path)[0] == 200, path
        assert n.req("GET", "/metrics")[0] == 401
    read = make_token(leader, admin, "read")
    wait_token_everywhere(c, read["secret"])
    assert leader.req("GET", "/metrics", headers=bearer(read["secret"]))[0] == 200
    status, _, err = leader.req("POST", "/v1/jobs", {"type": "noop"},
                                headers=bearer(read["secret"]))
    assert status == 403 and "submit" in err["error"]["message"], err
    # An expired token is unknown.
    status, _, err = leader.req("POST", "/v1/acl/tokens",
                                {"name": "old", "role": "read",
                                 "expires_at": "2000-01-01T00:00:00Z"},
                                headers=bearer(admin))
    assert status == 400 and err["error"]["field"] == "expires_at"


@pytest.mark.parametrize("mode", ["acl", "secure"])
def test_acl_route_table_walk(cluster, tmp_path, mode):
    """Every route with no token and each role, on the leader and a
    follower: with --acl (plain), and in secure mode (HTTPS, mutual TLS;
    access control on by default, the admin token bootstrapped)."""
    if mode == "secure":
        certs = str(tmp_path / "certs")
        for args in (["create-ca"], ["create-node", "127.0.0.1"]):
            subprocess.run([ROTACTL, "cert", args[0], "--certs-dir", certs, *args[1:]],
                           check=True, capture_output=True, timeout=30)
        c = cluster(3, ["--certs-dir", certs])
        admin = c.token
    else:
        c = cluster(3, ACL)
        admin = bootstrap(c.leader())
    leader, follower = c.leader(), c.followers()[0]
    secrets = {None: None, "admin": admin}
    for role in ("read", "submit", "worker"):
        secrets[role] = make_token(leader, admin, role)["secret"]
    for s in secrets.values():
        if s is not None:
            wait_token_everywhere(c, s)
    status, _, job = leader.req("POST", "/v1/jobs", {"type": "noop", "queue": "nobody-routes"},
                                headers=bearer(admin))
    assert status == 201
    ids = {"/v1/queues/{name}": "nobody-routes", "/v1/jobs/{id}": job["id"]}
    routes = table()
    unroled = [(m, p) for m, p, _, _, role in routes if role == "NULL"]
    assert set(unroled) <= PUBLIC, f"routes without a role: {set(unroled) - PUBLIC}"
    for method, pattern, handler, flags, role in routes:
        need = ROLES.get(role)
        for node in (leader, follower):
            for who, secret in secrets.items():
                path, body = sample(method, pattern, ids)
                if method == "DELETE" and pattern in ("/v1/jobs/{id}", "/jobs/{id}"):
                    path = path.replace(job["id"], MISSING)
                # None: no Authorization at all (the harness adds none).
                hdrs = bearer(secret) if secret else {"Authorization": None}
                status, _, resp = node.req(method, path, body, headers=hdrs)
                what = (method, pattern, node.id, who, status, resp)
                assert status < 500, what
                if need is None:
                    if pattern == "/v1/acl/bootstrap":
                        assert status == 403, what  # Bootstrapped above.
                    else:
                        assert status not in (401, 403), what
                elif who is None:
                    assert status == 401, what
                elif may(who, need):
                    assert status not in (401, 403), what
                else:
                    assert status == 403, what
                    assert need in resp["error"]["message"], what


def test_acl_submit_token_limited_to_queue(cluster):
    c = cluster(3, ACL)
    leader = c.leader()
    admin = bootstrap(leader)
    q1 = make_token(leader, admin, "submit", queues=["q1"])["secret"]
    wait_token_everywhere(c, q1)
    status, _, other = leader.req("POST", "/v1/jobs", {"type": "noop", "queue": "q2"},
                                  headers=bearer(admin))
    assert status == 201
    for n in c.alive():  # Followers check too before forwarding.
        status, _, err = n.req("POST", "/v1/jobs", {"type": "noop", "queue": "q2"},
                               headers=bearer(q1))
        assert status == 403 and err["error"]["code"] == "forbidden", err
        status, _, err = n.req("DELETE", f"/v1/jobs/{other['id']}", headers=bearer(q1))
        assert status == 403, err
        status, _, err = n.req("POST", "/v1/jobs",
                               {"jobs": [{"type": "noop", "queue": "q1"},
                                         {"type": "noop", "queue": "q2"}]},
                               headers=bearer(q1))
        assert status == 403 and err["error"]["field"] == "jobs[1].queue", err
    status, _, mine = leader.req("POST", "/v1/jobs", {"type": "noop", "queue": "q1"},
                                 headers=bearer(q1))
    assert status == 201
    status, _, err = leader.req("PATCH", f"/v1/jobs/{mine['id']}", {"queue": "q2"},
                                headers=bearer(q1))
    assert status == 403, err
    status, _, err = leader.req("POST", "/v1/workflows",
                                {"name": "w", "jobs": [{"key": "a", "type": "noop",
                                                        "queue": "q2"}]},
                                headers=bearer(q1))
    assert status == 403, err
    status, _, out = leader.req("DELETE", f"/v1/jobs/{mine['id']}", headers=bearer(q1))
    assert status == 200 and out["status"] == "cancelled"
    status, _, still = leader.req("GET", f"/v1/jobs/{other['id']}", headers=bearer(q1))
    assert status == 200 and still["status"] == "pending"


def test_acl_worker_token(cluster):
    c = cluster(3, ACL)
    leader = c.leader()
    admin = bootstrap(leader)
    w = make_token(leader, admin, "worker", queues=["w1"])["secret"]
    status, _, err = leader.req("POST", "/v1/jobs", {"type": "noop", "queue": "w1"},
                                headers=bearer(w))
    assert status == 403, err
    status, _, err = leader.req("POST", "/v1/workers", {"name": "x", "queues": ["w2"]},
                                headers=bearer(w))
    assert status == 403, err
    status, _, reg = leader.req("POST", "/v1/workers", {"name": "x", "queues": ["w1"]},
                                headers=bearer(w))
    assert status == 201, reg
    hb = {**bearer(w), "X-Rota-Worker-Secret": reg["secret"]}
    status, _, _ = leader.req("POST", f"/v1/workers/{reg['id']}/heartbeat",
                              {"running": []}, headers=hb)
    assert status == 200


def test_acl_tokens_survive_leader_change_and_restart(cluster):
    c = cluster(3, ACL)
    leader = c.leader()
    admin = bootstrap(leader)
    sub = make_token(leader, admin, "submit")["secret"]
    wait_token_everywhere(c, sub)
    leader.kill()
    new = c.wait_for_leader()
    assert new.id != leader.id
    status, _, job = new.req("POST", "/v1/jobs", {"type": "noop"}, headers=bearer(sub))
    assert status == 201, job
    follower = [n for n in c.alive() if n.id != new.id][0]
    status, _, _ = follower.req("POST", "/v1/jobs", {"type": "noop"}, headers=bearer(sub))
    assert status == 201
    c.restart(leader)
    c.wait_for_leader()
    for n in c.nodes:
        n.kill()
    for n in c.nodes:
        c.restart(n)
    lead = c.wait_for_leader()
    wait_token_everywhere(c, sub)
    wait_token_everywhere(c, admin)
    status, _, got = lead.req("GET", f"/v1/jobs/{job['id']}", headers=bearer(sub))
    assert status == 200 and got["id"] == job["id"]
    assert lead.req("POST", "/v1/acl/bootstrap")[0] == 403


def test_acl_revoke_everywhere_and_no_secret_anywhere(cluster):
    c = cluster(3, ACL)
    leader = c.leader()
    admin = bootstrap(leader)
    tok = make_token(leader, admin, "read", queues=["a", "b"], types=["noop"],
                     expires_at="2099-01-01T00:00:00Z")
    wait_token_everywhere(c, tok["secret"])
    for n in c.alive():
        status, _, body = n.req("GET", "/v1/acl/tokens", headers=bearer(admin))
        assert status == 200, body
        listed = {t["id"]: t for t in body["tokens"]}
        assert listed[tok["id"]]["queues"] == ["a", "b"]
        assert listed[tok["id"]]["types"] == ["noop"]
        assert listed[tok["id"]]["expires_at"].startswith("2099-01-01")
        text = repr(body)
        for secret in (admin, tok["secret"]):
            assert secret not in text
            assert hashlib.sha256(secret.encode()).hexdigest() not in text
        assert all("secret" not in t and "hash" not in t for t in body["tokens"])
    # Not in any log, nor in any data file (raft log, snapshots, LMDB).
    for n in c.nodes:
        assert tok["secret"] not in n.log_text() and admin not in n.log_text()
        for root, _, files in os.walk(n.dir):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    data = fh.read()
                assert tok["secret"].encode() not in data and admin.encode() not in data, f
    status, _, out = c.followers()[0].req("DELETE", f"/v1/acl/tokens/{tok['id']}",
                                          headers=bearer(admin))
    assert status == 200 and out["deleted"], out
    for n in c.alive():
        wait_until(lambda n=n: n.req("GET", "/v1/jobs", headers=bearer(tok["secret"]))[0] == 401,
                   what=f"revoked on node {n.id}")
    assert leader.req("DELETE", f"/v1/acl/tokens/{tok['id']}",
                      headers=bearer(admin))[0] == 404


def ctl(c, *args, env=None):
    servers = ",".join(f"http://{n.http}" for n in c.alive())
    e = dict(os.environ)
    e.pop("ROTA_TOKEN", None)
    e.update(env or {})
    p = subprocess.run([ROTACTL, "--server", servers, *args], capture_output=True,
                       text=True, timeout=30, env=e)
    return p.returncode, p.stdout, p.stderr


def test_acl_rotactl(cluster):
    if not os.path.exists(ROTACTL):
        pytest.fail(f"{ROTACTL} is not built")
    c = cluster(3, ACL)
    rc, out, err = ctl(c, "acl", "bootstrap")
    assert rc == 0, err
    secret = [l.split()[1] for l in out.splitlines() if l.startswith("secret:")][0]
    rc, _, err = ctl(c, "acl", "bootstrap")
    assert rc == 1 and "forbidden" in err
    # Followers know a token once they applied its entry (a heartbeat).
    wait_token_everywhere(c, secret)
    rc, _, err = ctl(c, "list")
    assert rc == 1 and "unauthenticated" in err
    with tempfile.NamedTemporaryFile("w", suffix=".token", delete=False) as f:
        f.write(secret + "\n")
        path = f.name
    try:
        rc, out, err = ctl(c, "--token-file", path, "--json", "acl", "token", "create",
                           "--name", "ci", "--role", "submit", "--queue", "q1",
                           "--queue", "q2", "--type", "noop",
                           "--expires-at", "2099-01-01T00:00:00Z")
        assert rc == 0, err
        created = json.loads(out)
        assert created["queues"] == ["q1", "q2"] and len(created["secret"]) == 64
        # A follower lists the token once it applied the entry (a heartbeat).
        rc, out, err = wait_until(lambda: (lambda r: r if created["id"] in r[1] else None)(
            ctl(c, "acl", "token", "list", env={"ROTA_TOKEN": secret})), what="token listed")
        assert rc == 0 and created["id"] in out and "q1,q2" in out, err
        assert secret not in out and created["secret"] not in out
        wait_token_everywhere(c, created["secret"])
        rc, out, err = ctl(c, "submit", "--type", "noop", "--queue", "q3",
                           env={"ROTA_TOKEN": created["secret"]})
        assert rc == 1 and "forbidden" in err
        rc, out, err = ctl(c, "submit", "--type", "noop", "--queue", "q1",
                           env={"ROTA_TOKEN": created["secret"]})
        assert rc == 0, err
        rc, out, err = ctl(c, "--token-file", path, "acl", "token", "delete", created["id"])
        assert rc == 0 and created["id"] in out, err
    finally:
        os.unlink(path)
