"""Client workload: threads in the client namespace submit shell jobs with
unique idempotency keys, retry with the SAME key and body through other
nodes on timeouts, 5xx and connection errors, cancel some, and record every
request and answer (JSONL, one line each, wall-clock and run-relative
timestamps).

History line fields: t (unix s), m (s since run start), thr, op (submit,
cancel), type (invoke, ok, err), key, node, try, and on answers status
(HTTP status or null), id, job_status, error, ms (latency).
"""

import json
import random
import threading
import time

from fcluster import HTTP_ERRORS, request

# The job: one line per execution into the worker host's log, then a short
# sleep so that jobs are running while faults happen. $FAULT_EXEC_LOG is in
# the worker's environment (one file per worker host).
JOB_CMD = ('echo "$ROTA_JOB_ID $ROTA_ATTEMPT $ROTA_LEASE_TOKEN $(date +%%s%%N)"'
           ' >> "$FAULT_EXEC_LOG"; sleep %s')


class History:
    def __init__(self, path, t0):
        self.f = open(path, "a", buffering=1)
        self.t0 = t0
        self.lock = threading.Lock()

    def record(self, **rec):
        now = time.time()
        rec = dict(t=round(now, 6), m=round(time.monotonic() - self.t0, 4), **rec)
        line = json.dumps(rec, sort_keys=True)
        with self.lock:
            self.f.write(line + "\n")
        return rec

    def close(self):
        with self.lock:
            self.f.close()


class Clients:
    def __init__(self, history, nodes, run_tag, threads=4, cancel_p=0.1, seed=0,
                 req_timeout=5.0, retry_window=45.0):
        self.h = history
        self.nodes = nodes          # list of (node_id, http_addr)
        self.tag = run_tag
        self.nthreads = threads
        self.cancel_p = cancel_p
        self.rng = random.Random(seed)
        self.req_timeout = req_timeout
        self.retry_window = retry_window
        self.stop_new = threading.Event()   # no new keys
        self.abort = threading.Event()      # stop everything now
        self.threads = []
        self.acked_ids = set()
        self.lock = threading.Lock()

    def start(self):
        for i in range(self.nthreads):
            t = threading.Thread(target=self._loop, args=(i, random.Random(self.rng.random())),
                                 name=f"client-{i}", daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self, timeout):
        """Stops new submissions and waits (bounded) for retries to end."""
        self.stop_new.set()
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
        if any(t.is_alive() for t in self.threads):
            self.abort.set()
            for t in self.threads:
                t.join(10)
        return not any(t.is_alive() for t in self.threads)

    def _loop(self, tid, rng):
        seq = 0
        for _ in range(1000000):
            if self.stop_new.is_set() or self.abort.is_set():
                return
            seq += 1
            key = f"{self.tag}-t{tid}-{seq}"
            secs = rng.choice(["0.1", "0.2", "0.3", "0.5", "0.8"])
            body = {"type": "shell", "payload": {"cmd": JOB_CMD % secs},
                    "idempotency_key": key, "max_attempts": 5}
            job = self.submit(tid, rng, key, body)
            if job is not None and rng.random() < self.cancel_p:
                time.sleep(rng.uniform(0, 0.3))
                self.cancel(tid, rng, key, job["id"])
            time.sleep(rng.uniform(0.02, 0.15))

    def _call(self, tid, op, key, node, method, path, body, attempt):
        self.h.record(thr=tid, op=op, type="invoke", key=key, node=node[0], path=path,
                      **({"body": body} if body is not None and attempt == 0 else {}),
                      **{"try": attempt})
        t = time.monotonic()
        try:
            status, resp = request(node[1], method, path, body, timeout=self.req_timeout)
        except HTTP_ERRORS as e:
            self.h.record(thr=tid, op=op, type="err", key=key, node=node[0], status=None,
                          error=f"{type(e).__name__}: {e}"[:200],
                          ms=round((time.monotonic() - t) * 1000, 1), **{"try": attempt})
            return None, None
        rec = dict(thr=tid, op=op, key=key, node=node[0], status=status,
                   ms=round((time.monotonic() - t) * 1000, 1), **{"try": attempt})
        if isinstance(resp, dict) and "id" in resp:
            rec["id"] = resp["id"]
            rec["job_status"] = resp.get("status")
        elif isinstance(resp, dict) and "error" in resp:
            rec["error"] = resp["error"].get("code") if isinstance(resp["error"], dict) \
                else str(resp["error"])
        self.h.record(type="ok" if status in (200, 201) else "err", **rec)
        return status, resp

    def _retry(self, tid, rng, op, key, method, path, body, answer, **gave_up):
        """Sends until answer(status, resp) returns (True, value), through
        the nodes in turn, within the retry window; backs off between tries.
        Records a gave_up entry (with gave_up's fields) when time runs out."""
        start = rng.randrange(len(self.nodes))
        end = time.monotonic() + self.retry_window
        for attempt in range(200):
            if self.abort.is_set() or time.monotonic() > end:
                break
            node = self.nodes[(start + attempt) % len(self.nodes)]
            status, resp = self._call(tid, op, key, node, method, path, body, attempt)
            done, value = answer(status, resp)
            if done:
                return value
            time.sleep(min(1.0, 0.05 * (attempt + 1)))
        self.h.record(thr=tid, op=op, type="gave_up", key=key, **gave_up)
        return None

    def submit(self, tid, rng, key, body):
        def answer(status, resp):
            if status in (200, 201) and isinstance(resp, dict) and "id" in resp:
                with self.lock:
                    self.acked_ids.add(resp["id"])
                return True, resp
            # A definite rejection is recorded, not retried.
            return status is not None and 400 <= status < 500, None
        return self._retry(tid, rng, "submit", key, "POST", "/v1/jobs", body, answer)

    def cancel(self, tid, rng, key, job_id):
        def answer(status, resp):
            return status in (200, 409, 404), status
        return self._retry(tid, rng, "cancel", key, "DELETE", f"/v1/jobs/{job_id}",
                           None, answer, id=job_id)
