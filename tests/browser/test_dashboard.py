"""The dashboard (http/ui/, served by http/dashboard.c) in a real browser:
Debian's headless chromium driven by dashboard.mjs (puppeteer-core, from
npm ci in this directory) against a real 3-node cluster and a worker.
Each run's screenshots go to the test's tmp dir (ROTA_DASHBOARD_SHOTS=DIR
copies them there too, e.g. docs/img).

Also the server side the dashboard needs: the embedded files with their
Content-Type and caching headers, and GET /v1/jobs?order=desc."""

import json
import os
import shutil
import subprocess

import pytest

from rota_harness import ROTACTL, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node")


def need_browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing (scripts/deps.sh installs Debian's chromium)")
    if NODE is None or not os.path.isdir(os.path.join(HERE, "node_modules", "puppeteer-core")):
        pytest.fail("node or puppeteer-core missing: PUPPETEER_SKIP_DOWNLOAD=1 npm ci in tests/browser")


def drive(tmp_path, cfg, ca=None):
    """Runs dashboard.mjs with @cfg; returns its JSON summary."""
    need_browser()
    cfg = dict(cfg, shots=str(tmp_path / "shots"))
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(cfg))
    env = dict(os.environ)
    if ca is not None:
        env["NODE_EXTRA_CA_CERTS"] = ca
    p = subprocess.run([NODE, os.path.join(HERE, "dashboard.mjs"), str(cfg_file)],
                       capture_output=True, text=True, timeout=120, env=env, cwd=HERE)
    shots = os.environ.get("ROTA_DASHBOARD_SHOTS")
    if shots and os.path.isdir(cfg["shots"]):
        os.makedirs(shots, exist_ok=True)
        for f in os.listdir(cfg["shots"]):
            if f != "dashboard-failure.png":
                shutil.copy(os.path.join(cfg["shots"], f), shots)
    assert p.returncode == 0, f"dashboard.mjs failed:\n{p.stderr}\n{p.stdout}\nscreenshots in {cfg['shots']}"
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["ok"] is True
    return out


def post(node, path, body=None, expect=201):
    status, _, resp = node.req("POST", path, body)
    assert status == expect, (status, resp)
    return resp


def job(c, job_id):
    return c.job(job_id)


def test_dashboard_files(cluster):
    """/, /dashboard and /ui/{file}: the embedded app with its types, an
    ETag that revalidates to 304, no-cache and a CSP; no token needed."""
    c = cluster(3, ["--acl"])
    n = c.followers()[0]
    status, h, page = n.req("GET", "/")
    assert status == 200 and h["content-type"] == "text/html; charset=utf-8"
    assert "/ui/app.js" in page and "/ui/app.css" in page
    assert h["cache-control"] == "no-cache" and h["etag"].startswith('"')
    assert "script-src 'self'" in h["content-security-policy"]
    assert n.req("GET", "/dashboard")[2] == page
    status, h2, _ = n.req("GET", "/", headers={"If-None-Match": h["etag"]})
    assert status == 304 and h2["etag"] == h["etag"]
    status, h, js = n.req("GET", "/ui/app.js")
    assert status == 200 and h["content-type"].startswith("text/javascript")
    assert "function refresh()" in js
    status, h, _ = n.req("GET", "/ui/app.css")
    assert status == 200 and h["content-type"].startswith("text/css")
    status, _, err = n.req("GET", "/ui/nothing.js")
    assert status == 404 and err["error"]["code"] == "not_found"
    # The data the app asks for does need a token.
    assert n.req("GET", "/v1/jobs")[0] == 401


def test_jobs_order_desc(cluster):
    """?order=desc lists newest first, pages with its own cursor, and
    refuses another order or an ascending cursor."""
    c = cluster(3)
    leader = c.leader()
    ids = [post(leader, "/v1/jobs", {"type": "noop", "queue": "nobody-order"})["id"] for _ in range(5)]
    n = c.followers()[0]
    c.wait_converged()
    got, cursor = [], None
    while True:
        q = "/v1/jobs?queue=nobody-order&status=pending&order=desc&limit=2"
        status, _, page = n.req("GET", q + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, page
        got += [j["id"] for j in page["jobs"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert got == ids[::-1]
    status, _, page = n.req("GET", "/v1/jobs?order=desc&limit=1")
    assert page["jobs"][0]["id"] == ids[-1]
    status, _, asc = n.req("GET", "/v1/jobs?order=asc&limit=1")
    assert status == 200 and asc["jobs"][0]["id"] == ids[0]
    status, _, err = n.req("GET", "/v1/jobs?order=up")
    assert status == 400 and err["error"]["field"] == "order"
    status, _, err = n.req("GET", f"/v1/jobs?limit=1&cursor={asc['next_cursor']}&order=desc")
    assert status == 400 and err["error"]["field"] == "cursor"
    status, _, dlq = n.req("GET", "/v1/dlq?order=desc")
    assert status == 200 and dlq["jobs"] == []


def test_dashboard_insecure(cluster, worker_built, tmp_path):
    """The page against an --insecure cluster: jobs appear newest first,
    a detail opens, a running job is cancelled, a dead letter retried, a
    queue paused and capped, a schedule paused, resumed and run, a
    workflow's parent and child linked, a queue's dead letters purged,
    workers and members shown, markup in a job shown as text. Live: with
    polling slowed to a minute (?poll=60000) a new job appears and turns
    completed through /v1/events alone, the indicator saying "live"; with
    /v1/events answered 404 the page says "polling" and still shows both."""
    c = cluster(3)
    c.start_worker("dash-worker")
    leader = c.leader()
    sleep = post(leader, "/v1/jobs", {"type": "sleep", "name": "long", "payload": {"ms": 600000}})
    # A sleep with a bad payload fails at once (not retryable): a dead letter.
    dead = post(leader, "/v1/jobs", {"type": "sleep", "name": "bad", "payload": {"ms": "x"}})
    purge = [post(leader, "/v1/jobs", {"type": "sleep", "queue": "dash-purge",
                                       "payload": {"ms": -1}})["id"] for _ in range(2)]
    c.start_worker("dash-purger", queues="dash-purge")
    for j in [dead["id"]] + purge:
        wait_until(lambda j=j: job(c, j)["status"] == "failed", what=f"dead letter {j}")
    # A schedule far in the future and a two-job workflow nobody runs.
    sched = post(leader, "/v1/jobs", {"type": "noop", "name": "yearly", "queue": "nobody-dash",
                                      "schedule": "0 0 1 1 *"})
    wf = post(leader, "/v1/workflows", {"name": "pair", "jobs": [
        {"key": "first", "type": "noop", "queue": "nobody-dash"},
        {"key": "second", "type": "noop", "queue": "nobody-dash", "depends_on": ["first"]}]})
    wf_ids = {j["workflow_key"]: j["id"] for j in wf["jobs"]}
    out = drive(tmp_path, {"scenario": "insecure", "base": f"http://{c.followers()[0].http}",
                           "worker": "dash-worker",
                           "ids": {"sleep": sleep["id"], "dead": dead["id"], "purge": purge,
                                   "schedule": sched["id"], "wf_first": wf_ids["first"],
                                   "wf_second": wf_ids["second"]}})
    # What the page did, as the API sees it.
    assert job(c, sleep["id"])["status"] == "cancelled"
    assert len(job(c, dead["id"])["history"]) >= 2
    q = leader.req("GET", "/v1/queues/dash-idle")[2]
    assert q["paused"] is True and q["concurrency"] == 7
    for j in purge:
        assert leader.req("GET", f"/v1/jobs/{j}")[0] == 404
    runs = leader.req("GET", f"/v1/jobs/{sched['id']}/runs")[2]["runs"]
    assert len(runs) == 1 and job(c, sched["id"])["paused"] is False
    for j in (out["live"], out["refused"]):
        assert job(c, j)["status"] == "completed"
    hostile = job(c, out["hostile"])
    assert hostile["name"].startswith("<img")
    for f in ("jobs", "job", "dlq", "queues", "workers", "cluster", "schedule", "live"):
        assert (tmp_path / "shots" / f"dashboard-{f}.png").stat().st_size > 1000


def test_dashboard_secure(cluster, tmp_path):
    """A secure cluster (HTTPS, access control): the page asks for a
    token; a read token sees the jobs (and follows /v1/events: "live") but its action gets 403, so the page
    says read-only and hides actions; after signing out, an admin token's
    cancel goes through."""
    certs = str(tmp_path / "certs")
    for args in (["create-ca"], ["create-node", "127.0.0.1"]):
        subprocess.run([ROTACTL, "cert", args[0], "--certs-dir", certs, *args[1:]],
                       check=True, capture_output=True, timeout=30)
    c = cluster(3, ["--certs-dir", certs])
    read = c.make_token("read")
    c.wait_token_known(read)
    idle = post(c.leader(), "/v1/jobs", {"type": "noop", "name": "waits", "queue": "nobody-dash"})
    c.wait_converged()
    out = drive(tmp_path, {"scenario": "secure", "base": f"https://{c.followers()[0].http}",
                           "tokens": {"admin": c.token, "read": read},
                           "ids": {"idle": idle["id"]}}, ca=c.ca)
    assert out["readonly"] is True and out["live"] is True
    assert job(c, idle["id"])["status"] == "cancelled"
    assert (tmp_path / "shots" / "dashboard-signin.png").stat().st_size > 1000
