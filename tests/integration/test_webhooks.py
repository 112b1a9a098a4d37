"""Webhooks: signed deliveries (the receiver checks every signature), the
admin routes and their errors, a receiver that is down for a while gets
everything later, deliveries survive a leader kill (at least once,
deduplicated by X-Rota-Delivery), and a receiver that hangs does not delay
dispatch."""

import hashlib
import hmac
import http.server
import json
import signal
import threading
import time

from conftest import free_port, submit, wait_until

SECRET = "a-secret-of-some-length"


class Receiver:
    """A webhook receiver on loopback: records every delivery; @status
    answers it; @hang holds each request until released."""

    def __init__(self, port=None, status=200, hang=False):
        self.port = port or free_port()
        self.status = status
        self.hang = hang
        self.release = threading.Event()
        self.got = []  # (headers dict, body bytes)
        self.hanging = 0
        self.lock = threading.Lock()
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with recv.lock:
                    recv.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    recv.hanging += recv.hang
                if recv.hang:
                    recv.release.wait(60)
                self.send_response(recv.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = None
        self.Handler = Handler

    def start(self):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self.Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    def unique(self):
        """Deliveries by X-Rota-Delivery (duplicates dropped)."""
        with self.lock:
            return {h["x-rota-delivery"]: (h, b) for h, b in self.got}


def verify(h, body, secret=SECRET):
    want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(h["x-rota-signature"], want), (h, body)
    ev = json.loads(body)
    assert h["x-rota-event"] == ev["event"]
    assert h["x-rota-delivery"].endswith("-" + ev["id"])
    return ev


def create(node, url, events, **kw):
    body = {"url": url, "events": events, **kw}
    st, _, hook = node.req("POST", "/v1/webhooks", body)
    assert st == 201, (st, hook)
    return hook


def test_signed_deliveries_and_admin_routes(cluster):
    c = cluster()
    r = Receiver().start()
    try:
        leader = c.leader()
        f = c.followers()[0]
        # Created through a follower (forwarded), with our secret.
        hook = create(f, r.url, ["job.completed", "job.dead"], secret=SECRET)
        assert hook["events"] == ["job.completed", "job.dead"] and "secret" not in hook
        assert hook["secret_set"] is True
        made = create(leader, r.url + "2", ["job.*"], queues=["other"])
        assert len(made["secret"]) == 64  # Made for us, shown once.
        c.start_worker("w1")
        ok = [submit(leader, {"type": "noop"})["id"] for _ in range(3)]
        bad = submit(leader, {"type": "shell", "max_attempts": 1,
                              "payload": {"cmd": "exit 4"}})["id"]
        wait_until(lambda: len(r.unique()) >= 4, timeout=30, what="4 deliveries")
        evs = [verify(h, b) for h, b in r.unique().values()]
        assert sorted(e["job"]["id"] for e in evs if e["event"] == "job.completed") == sorted(ok)
        assert [e["job"]["id"] for e in evs if e["event"] == "job.dead"] == [bad]
        # Every node lists it; the counters moved; nothing pending.
        def settled():
            st, _, got = f.req("GET", f"/v1/webhooks/{hook['id']}")
            return st == 200 and got["delivered"] == 4 and got["pending"] == 0 and got
        wait_until(settled, what="4 delivered, none pending")
        st, _, lst = f.req("GET", "/v1/webhooks")
        assert st == 200 and {h["id"] for h in lst["webhooks"]} == {hook["id"], made["id"]}
        assert all("secret" not in h for h in lst["webhooks"])
        st, _, dl = leader.req("GET", f"/v1/webhooks/{hook['id']}/deliveries")
        assert st == 200 and dl["deliveries"] == []
        text = leader.req("GET", "/metrics")[2]
        assert 'rota_webhook_deliveries_total{result="ok"}' in text
        # Errors name their field.
        for body, field in (({"url": "ftp://x/y", "events": ["job.dead"]}, "url"),
                            ({"url": r.url, "events": []}, "events"),
                            ({"url": r.url, "events": ["job.nope"]}, "events"),
                            ({"url": r.url, "events": ["leader.changed"]}, "events"),
                            ({"url": r.url, "events": ["job.dead"], "secret": "short"}, "secret"),
                            ({"events": ["job.dead"]}, "url")):
            st, _, err = leader.req("POST", "/v1/webhooks", body)
            assert st == 400 and err["error"]["field"] == field, (body, st, err)
        st, _, _ = leader.req("DELETE", f"/v1/webhooks/{made['id']}")
        assert st == 200
        assert leader.req("GET", f"/v1/webhooks/{made['id']}")[0] == 404
        assert leader.req("DELETE", f"/v1/webhooks/{made['id']}")[0] == 404
    finally:
        r.stop()


def test_receiver_down_for_a_while_gets_everything_later(cluster):
    c = cluster()
    r = Receiver()  # Not started: its port refuses.
    leader = c.leader()
    hook = create(leader, r.url, ["job.created"], secret=SECRET)
    ids = [submit(leader, {"type": "noop", "queue": "nobody"})["id"] for _ in range(5)]

    def failing():
        st, _, dl = leader.req("GET", f"/v1/webhooks/{hook['id']}/deliveries")
        return (st == 200 and len(dl["deliveries"]) == 5 and
                any(d["tries"] >= 1 and d["last_error"] for d in dl["deliveries"]) and dl)
    dl = wait_until(failing, timeout=20, what="failed tries recorded")
    assert dl["webhook"]["pending"] == 5
    r.start()
    try:
        wait_until(lambda: len(r.unique()) == 5, timeout=90, interval=0.2,
                   what="every delivery once the receiver is up")
        evs = [verify(h, b) for h, b in r.unique().values()]
        assert sorted(e["job"]["id"] for e in evs) == sorted(ids)
        wait_until(lambda: leader.req("GET", f"/v1/webhooks/{hook['id']}")[2]["pending"] == 0,
                   what="nothing pending")
    finally:
        r.stop()


def test_deliveries_survive_a_leader_kill(cluster):
    c = cluster()
    r = Receiver().start()
    try:
        leader = c.leader()
        create(leader, r.url, ["job.created"], secret=SECRET)
        st, _, body = leader.req("POST", "/v1/jobs/batch",
                                 [{"type": "noop", "queue": "nobody"} for _ in range(50)])
        assert st == 200
        ids = [x["job"]["id"] for x in body["results"]]
        leader.kill(signal.SIGKILL)  # Deliveries in flight, or not yet sent.
        c.wait_for_leader()
        wait_until(lambda: len(r.unique()) == 50, timeout=60, interval=0.2,
                   what="all 50 delivered after the kill")
        evs = [verify(h, b) for h, b in r.unique().values()]
        assert sorted(e["job"]["id"] for e in evs) == sorted(ids)
        assert len(r.got) >= 50  # At least once; duplicates carry the same id.
    finally:
        r.stop()


def test_a_hanging_receiver_does_not_delay_dispatch(cluster):
    c = cluster()
    r = Receiver(hang=True).start()
    try:
        leader = c.leader()
        create(leader, r.url, ["job.*"], secret=SECRET)
        c.start_worker("w1", concurrency=8)
        t0 = time.monotonic()
        ids = [submit(leader, {"type": "noop"})["id"] for _ in range(30)]
        for i in ids:
            wait_until(lambda: c.job(i)["status"] == "completed", timeout=30,
                       what="jobs complete while the receiver hangs")
        took = time.monotonic() - t0
        assert r.hanging >= 1  # Requests were held by the receiver all along.
        print(f"30 jobs completed in {took:.2f}s with the receiver hanging")
    finally:
        r.stop()
