"""rota.Worker: runs Python functions as Rota jobs.

The protocol is rota-worker's (worker/main.c, docs/api.md "Workers"):
register (POST /v1/workers: id, secret, heartbeat_ms), long-poll leases
for the free slots, one thread per running job, a heartbeat thread that
reports every lease held (running, or finished with its result not yet
delivered) and stops the jobs the cluster cancels or says are lost, and a
completion thread that sends results in batches with each lease's fencing
token and keeps those without a definite answer (an election) to send
again. A worker the cluster does not know (404: declared down) registers
again, except while it drains. Every call on /v1/workers/{id} carries the
registration's secret (X-Rota-Worker-Secret).
"""

import json
import os
import signal
import socket
import threading
import time
import traceback

from .client import _Unreachable
from .errors import APIError, Permanent

RESULTS_PER_REQUEST = 1000  # docs/api.md: results per completion request.
LEASE_WAIT_MS = 2000


class _Run:
    __slots__ = ("id", "token", "job", "thread", "lost", "abandoned")

    def __init__(self, job, token):
        self.id = job["id"]
        self.token = token
        self.job = job
        self.thread = None
        self.lost = False  # The cluster took the lease back: no result.
        self.abandoned = False  # Given back at the drain timeout.


class Worker:
    """Runs the handlers of a Client's cluster.

        worker = rota.Worker(client, queues=["default"], concurrency=4)

        @worker.handler("resize")
        def resize(job):
            ...             # job["payload"], job["attempt"], job["cancelled"]
            return {"ok": True}

        worker.run()        # until worker.stop() or SIGTERM, then drains

    A handler's return value (JSON) becomes the job's result; an exception
    fails the attempt (retried per the job's max_attempts and backoff),
    rota.Permanent fails the job at once. job["cancelled"] is a
    threading.Event set when the cluster cancels the job or takes the lease
    back: a long handler should check it and return early."""

    def __init__(self, client, queues=("default",), concurrency=4, name=None, drain_timeout=30.0):
        if isinstance(queues, str):
            queues = [q for q in queues.split(",") if q]
        if not 1 <= int(concurrency) <= 10000:
            raise ValueError("concurrency: 1 .. 10000")
        self.client = client
        self.queues = list(queues)
        self.concurrency = int(concurrency)
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.drain_timeout = drain_timeout
        self.id = None
        self._secret = None
        self._heartbeat_s = 2.0
        self._handlers = {}
        self._lock = threading.Lock()
        self._reg_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # One delivery at a time.
        self._cv = threading.Condition(self._lock)
        self._runs = {}  # Job id -> _Run.
        self._pending = []  # Results to deliver.
        self._flushing = []  # Results being delivered now.
        self._draining = threading.Event()
        self._stop_threads = threading.Event()

    # ---- API --------------------------------------------------------------

    def handler(self, type):
        """Decorator: @worker.handler("type") def f(job): ..."""
        def register(fn):
            self._handlers[type] = fn
            return fn
        return register

    def stop(self):
        """Asks run() to drain and return (any thread, or a signal handler)."""
        self._draining.set()
        with self._cv:
            self._cv.notify_all()

    def run(self):
        """Registers, runs jobs until stop() or SIGTERM, then drains: no new
        leases, running jobs finish (after drain_timeout they are given back
        as retryable failures), results are delivered, the worker
        deregisters."""
        if not self._handlers:
            raise ValueError("no handlers: use @worker.handler(type)")
        old = None
        if threading.current_thread() is threading.main_thread():
            old = signal.signal(signal.SIGTERM, lambda *_: self.stop())
        try:
            if not self._register():
                return
            threads = [threading.Thread(target=self._heartbeat_loop, name="rota-heartbeat", daemon=True),
                       threading.Thread(target=self._complete_loop, name="rota-complete", daemon=True)]
            for t in threads:
                t.start()
            try:
                self._lease_loop()
            except KeyboardInterrupt:
                self.stop()
            self._drain()
            self._stop_threads.set()
            with self._cv:
                self._cv.notify_all()
            for t in threads:
                t.join()
        finally:
            if old is not None:
                signal.signal(signal.SIGTERM, old)

    # ---- protocol ---------------------------------------------------------

    def _call(self, method, path, body=None, timeout=None):
        """One request to the leader: (status, parsed); status 0 when no
        answer (the leader is looked up again next time)."""
        c = self.client
        addr = c.leader() or c._next_server()
        headers = {"X-Rota-Worker-Secret": self._secret} if self._secret else None
        try:
            st, _, out = c._call(addr, method, path, body, headers, timeout)
        except _Unreachable:
            c._forget_leader(addr)
            return 0, None
        if st >= 500:
            c._forget_leader(addr)
        return st, out

    def _register(self, seen=None):
        """Registers (again, if the registration is still `seen`). False
        when stopped before any node answered."""
        with self._reg_lock:
            if seen is not None and self.id != seen:
                return True  # Another thread registered again already.
            body = {"name": self.name, "queues": self.queues, "concurrency": self.concurrency,
                    "types": sorted(self._handlers)}
            backoff = 0.1
            self._secret = None
            while True:
                st, out = self._call("POST", "/v1/workers", body)
                if st == 201 and isinstance(out, dict) and out.get("id"):
                    with self._lock:
                        self.id = out["id"]
                        self._secret = out.get("secret")
                        self._heartbeat_s = (out.get("heartbeat_ms") or 2000) / 1000.0
                    return True
                if st == 401:
                    # A token made a moment ago may not be known on this
                    # node yet: ask another one.
                    self.client._forget_leader()
                    self.client._next_server()
                elif 400 <= st < 500:
                    raise APIError.from_body(st, out)
                if self._draining.is_set() and not self._runs:
                    return False
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def _lease_loop(self):
        while not self._draining.is_set():
            with self._cv:
                free = self.concurrency - len(self._runs)
                if free <= 0:
                    self._cv.wait(0.5)
                    continue
                wid = self.id
            st, out = self._call("POST", f"/v1/workers/{wid}/lease",
                                 {"max": free, "wait_ms": LEASE_WAIT_MS},
                                 timeout=LEASE_WAIT_MS / 1000.0 + self.client.timeout)
            if st == 200 and isinstance(out, dict):
                for lease in out.get("leases") or ():
                    self._start(lease)
            elif st in (403, 404):
                if not self._draining.is_set():
                    self._register(seen=wid)
            else:
                self._draining.wait(0.1)

    def _start(self, lease):
        job = dict(lease.get("job") or {})
        if not isinstance(job.get("id"), str) or not isinstance(lease.get("token"), int):
            return
        job["attempt"] = lease.get("attempt", job.get("attempts"))
        job["lease_token"] = lease["token"]
        job["cancelled"] = threading.Event()
        run = _Run(job, lease["token"])
        run.thread = threading.Thread(target=self._execute, args=(run,),
                                      name=f"rota-job-{run.id}", daemon=True)
        with self._lock:
            self._runs[run.id] = run
        run.thread.start()

    def _execute(self, run):
        job = run.job
        fn = self._handlers.get(job.get("type"))
        res = {"id": run.id, "token": run.token, "ok": False, "retryable": True, "exit_code": 0}
        if fn is None:
            res.update(retryable=False, exit_code=1,
                       error=f"no handler for job type {job.get('type')!r}")
        else:
            try:
                value = fn(job)
                try:
                    text = json.dumps(value)  # The result must be JSON.
                except (TypeError, ValueError) as e:
                    raise Permanent(f"the handler's result is not JSON: {e}") from e
                res.update(ok=True, result=json.loads(text))
            except Permanent as e:
                res.update(retryable=False, exit_code=1, error=_describe(e),
                           output=_tail(traceback.format_exc()))
            except Exception as e:  # Any other failure is retried.
                res.update(exit_code=1, error=_describe(e), output=_tail(traceback.format_exc()))
        with self._cv:
            self._runs.pop(run.id, None)
            if not run.lost and not run.abandoned:
                self._pending.append(res)
            self._cv.notify_all()

    def _held(self):
        """Every lease this worker holds (under the lock)."""
        held = [{"id": r.id, "token": r.token} for r in self._runs.values()
                if not r.lost and not r.abandoned]
        held += [{"id": r["id"], "token": r["token"]} for r in self._pending + self._flushing]
        return held

    def _heartbeat_loop(self):
        while not self._stop_threads.is_set():
            with self._lock:
                wid, every = self.id, self._heartbeat_s
                running = self._held()
            st, out = self._call("POST", f"/v1/workers/{wid}/heartbeat", {"running": running},
                                 timeout=min(5.0, self.client.timeout))
            if st == 200 and isinstance(out, dict):
                self._mark(out.get("cancel") or (), lost=False)
                self._mark(out.get("lost") or (), lost=True)
            elif st == 404:
                # Declared down: every lease we hold is gone.
                self._mark(list(self._runs), lost=True)
                if not self._draining.is_set():
                    self._register(seen=wid)
            self._stop_threads.wait(every)

    def _mark(self, ids, lost):
        with self._lock:
            for jid in ids:
                run = self._runs.get(jid)
                if run is not None:
                    run.lost = run.lost or lost
                    run.job["cancelled"].set()

    def _flush(self):
        """Sends the pending results in one request; True when there was
        nothing to send or the answer was definite."""
        with self._flush_lock:
            return self._flush_locked()

    def _flush_locked(self):
        with self._lock:
            if not self._pending:
                return True
            batch = self._pending[:RESULTS_PER_REQUEST]
            del self._pending[:RESULTS_PER_REQUEST]
            self._flushing = batch
            wid = self.id
        st, _ = self._call("POST", f"/v1/workers/{wid}/complete", {"results": batch})
        with self._lock:
            self._flushing = []
            if st == 200 or st == 409 or (400 <= st < 500 and st != 404):
                return True  # Accepted, stale or refused: never sent again.
            self._pending[:0] = batch  # Again later, in order.
            return False

    def _complete_loop(self):
        backoff = 0.0
        while not self._stop_threads.is_set():
            with self._cv:
                while not self._pending and not self._stop_threads.is_set():
                    self._cv.wait(0.5)
            time.sleep(0.005)  # Let results finishing together share a request.
            if self._flush():
                backoff = 0.0
            else:
                backoff = 0.05 if backoff == 0 else min(backoff * 2, 2.0)
                self._stop_threads.wait(backoff)

    def _drain(self):
        deadline = time.monotonic() + self.drain_timeout
        with self._cv:
            while self._runs and time.monotonic() < deadline:
                self._cv.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            # Past the timeout: ask the handlers to stop and give the jobs
            # back as retryable failures (a Python thread cannot be killed).
            for run in self._runs.values():
                run.abandoned = True
                run.job["cancelled"].set()
                self._pending.append({"id": run.id, "token": run.token, "ok": False,
                                      "retryable": True, "exit_code": 1,
                                      "error": "the worker stopped (drain timeout)"})
        for _ in range(100):
            with self._lock:
                if not self._pending:
                    break
            if not self._flush():
                time.sleep(0.1)
        for _ in range(20):  # Until a definite answer.
            st, _ = self._call("DELETE", f"/v1/workers/{self.id}")
            if st in (200, 404):
                break
            time.sleep(0.2)


def _describe(e):
    text = f"{type(e).__name__}: {e}"
    return text[:1000]


def _tail(text, limit=4096):
    return text[-limit:]
