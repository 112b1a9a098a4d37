"""rota.Client: submit, read, wait for, cancel, list and follow Rota jobs.

Writes go to the leader (found with GET /v1/cluster), reads to any node.
The API never says in an answer that a write was forwarded: a follower
forwards it and answers with the leader's answer. So the cached leader is
refreshed when a write gets a 503 (no_leader, not_leader, outcome_unknown,
unavailable) or cannot be sent (connection error); a stale cache only costs
the follower's hop until then.

Every submit carries an idempotency key (made here when the caller gave
none), so sending it again after a connection error, a 503 or a leader
failover never creates a second job: the cluster answers 200 with the job
the first attempt created.
"""

import http.client
import json
import random
import socket
import ssl
import threading
import time
import urllib.parse
import uuid

from .errors import APIError

TERMINAL = frozenset({"completed", "failed", "cancelled"})

# POST /v1/jobs/batch limits (docs/api.md): 1000 jobs, a 1 MiB body.
BATCH_MAX_JOBS = 1000
BATCH_MAX_BYTES = 1024 * 1024 - 4096

# A pooled keep-alive connection idle this long is replaced before use (the
# server may have closed it; a failed reuse would look like a dead node).
IDLE_REUSE_S = 4.0


class _Unreachable(Exception):
    """No answer from a node: refused, reset, timed out, closed."""


def _addr(server):
    s = server.strip()
    for prefix in ("http://", "https://"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    return s.rstrip("/")


def new_key():
    """A fresh idempotency key."""
    return uuid.uuid4().hex


def _encode(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _retry_after(headers):
    try:
        return max(0.0, float(headers.get("retry-after", "")))
    except ValueError:
        return None


class _Transport:
    """HTTP/1.1 keep-alive connections, one pool per thread."""

    def __init__(self, ca_file, https):
        self._ctx = None
        if ca_file is not None:
            self._ctx = ssl.create_default_context(cafile=ca_file)
        elif https:
            self._ctx = ssl.create_default_context()
        self._local = threading.local()

    def _new(self, addr, timeout):
        host, _, port = addr.rpartition(":")
        host = host.strip("[]")
        if self._ctx is not None:
            return http.client.HTTPSConnection(host, int(port), timeout=timeout, context=self._ctx)
        return http.client.HTTPConnection(host, int(port), timeout=timeout)

    def _pool(self):
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        return pool

    def request(self, addr, method, path, body, headers, timeout):
        """(status, lower-case headers, parsed JSON or text); raises
        _Unreachable when no answer came."""
        pool = self._pool()
        entry = pool.pop(addr, None)
        if entry is not None and time.monotonic() - entry[1] > IDLE_REUSE_S:
            entry[0].close()
            entry = None
        for attempt in (0, 1):
            reused = entry is not None
            conn = entry[0] if reused else self._new(addr, timeout)
            entry = None
            try:
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                conn.close()
                if reused and attempt == 0:
                    continue  # The server closed the idle connection: a new one.
                raise _Unreachable(f"{addr}: {e!r}") from e
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise _Unreachable(f"{addr}: {e!r}") from e
            if resp.will_close:
                conn.close()
            else:
                pool[addr] = (conn, time.monotonic())
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            return resp.status, hdrs, parsed
        raise AssertionError("unreachable")

    def open(self, addr, method, path, headers, timeout):
        """A response to read as a stream, on its own connection."""
        conn = self._new(addr, timeout)
        try:
            conn.request(method, path, headers=headers)
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise _Unreachable(f"{addr}: {e!r}") from e

    def close(self):
        for conn, _ in self._pool().values():
            conn.close()
        self._pool().clear()


class Event:
    """One Server-Sent Event of GET /v1/events: id ("<index>-<pos>", None for
    leader.changed), event (its name) and data (parsed JSON)."""

    __slots__ = ("id", "event", "data")

    def __init__(self, id, event, data):
        self.id = id
        self.event = event
        self.data = data

    def __repr__(self):
        return f"Event(id={self.id!r}, event={self.event!r}, data={self.data!r})"


def _sse(resp):
    """Events from a text/event-stream response until it ends."""
    ev_id, name, data = None, None, []
    while True:
        line = resp.readline()
        if not line:
            return
        line = line.decode("utf-8", errors="replace").rstrip("\r\n")
        if line == "":
            if data or name:
                text = "\n".join(data)
                try:
                    parsed = json.loads(text)
                except ValueError:
                    parsed = text
                yield Event(ev_id, name or "message", parsed)
            ev_id, name, data = None, None, []
            continue
        if line.startswith(":"):
            continue  # A comment (": keepalive").
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "id":
            ev_id = value
        elif field == "event":
            name = value
        elif field == "data":
            data.append(value)


class _Slot:
    __slots__ = ("done", "value", "error")

    def __init__(self):
        self.done = threading.Event()
        self.value = None
        self.error = None


class _Batcher:
    """Coalesces the submits of many threads: the first one waits for the
    linger, then one thread sends everything queued as one non-atomic
    POST /v1/jobs/batch and hands every caller its own answer."""

    def __init__(self, client, linger):
        self._client = client
        self._linger = linger
        self._cv = threading.Condition()
        self._queue = []
        self._thread = None
        self._closed = False

    def submit(self, job):
        slot = _Slot()
        enc = _encode(job)  # A payload that is not JSON fails here, alone.
        with self._cv:
            if self._closed:
                raise RuntimeError("rota.Client is closed")
            self._queue.append((enc, slot))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rota-batcher", daemon=True)
                self._thread.start()
            self._cv.notify()
        slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.value

    def _run(self):
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if not self._queue:
                    return
            time.sleep(self._linger)  # Let the other callers join.
            with self._cv:
                items, self._queue = self._queue, []
            encoded = [enc for enc, _ in items]
            try:
                results = self._client._submit_encoded(encoded)
            except Exception as e:  # The whole request failed: everyone's answer.
                results = [e] * len(items)
            for (_, slot), res in zip(items, results):
                if isinstance(res, Exception):
                    slot.error = res
                else:
                    slot.value = res
                slot.done.set()

    def close(self):
        with self._cv:
            self._closed = True
            self._cv.notify()
            thread = self._thread
        if thread is not None:
            thread.join()


class Client:
    """A client of a Rota cluster.

    servers: "host:port" (or URLs) as a list or a comma-separated string.
    token: an ACL token secret (Authorization: Bearer). ca_file: the
    cluster CA (HTTPS). timeout: seconds per request. batch_linger: how
    long a submit waits for others to share its batch request (0: every
    submit is its own POST /v1/jobs). retry_for: how long a request is
    retried on 503, 429 and connection errors before it raises."""

    def __init__(self, servers, token=None, ca_file=None, timeout=10, batch_linger=0.001,
                 retry_for=30.0):
        if isinstance(servers, str):
            servers = servers.split(",")
        self.servers = [_addr(s) for s in servers if s.strip()]
        if not self.servers:
            raise ValueError("no servers")
        https = ca_file is not None or any(str(s).strip().startswith("https://") for s in servers)
        self.timeout = timeout
        self.retry_for = retry_for
        self._token = token
        self._transport = _Transport(ca_file, https)
        self._lock = threading.Lock()
        self._leader = None
        self._rr = len(self.servers) - 1  # The first request goes to servers[0].
        self._seen_index = 0  # The highest X-Rota-Index of a write answer.
        self._batcher = _Batcher(self, batch_linger) if batch_linger and batch_linger > 0 else None

    # ---- plumbing ---------------------------------------------------------

    def close(self):
        """Stops the batching thread (after sending what is queued)."""
        if self._batcher is not None:
            self._batcher.close()
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _headers(self, extra=None):
        h = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._token:
            h["Authorization"] = f"Bearer {self._token}"
        if extra:
            h.update(extra)
        return h

    def _call(self, addr, method, path, body=None, headers=None, timeout=None):
        """One request to one node, no retry: (status, headers, parsed)."""
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = _encode(body)
        st, hs, out = self._transport.request(addr, method, path, body, self._headers(headers),
                                              timeout or self.timeout)
        if method != "GET" and st < 300:
            try:
                index = int(hs.get("x-rota-index", "0"))
            except ValueError:
                index = 0
            with self._lock:
                self._seen_index = max(self._seen_index, index)
        return st, hs, out

    def _next_server(self, avoid=()):
        with self._lock:
            for _ in range(len(self.servers)):
                self._rr = (self._rr + 1) % len(self.servers)
                if self.servers[self._rr] not in avoid:
                    return self.servers[self._rr]
            return self.servers[self._rr]

    def _forget_leader(self, addr=None):
        with self._lock:
            if addr is None or self._leader == addr:
                self._leader = None

    def leader(self, refresh=False, avoid=()):
        """The leader's HTTP address per GET /v1/cluster, or None when no
        node knows one (cached; refresh=True asks again)."""
        with self._lock:
            if self._leader is not None and not refresh:
                return self._leader
        for _ in range(len(self.servers)):
            addr = self._next_server(avoid)
            if addr in avoid:
                break
            try:
                st, _, view = self._call(addr, "GET", "/v1/cluster", timeout=min(self.timeout, 2))
            except _Unreachable:
                avoid = set(avoid) | {addr}
                continue
            lead = (view or {}).get("leader") if st == 200 and isinstance(view, dict) else None
            if lead and lead.get("http_addr") and lead["http_addr"] not in avoid:
                with self._lock:
                    self._leader = lead["http_addr"]
                return lead["http_addr"]
        return None

    def _retry_wait(self, deadline, wait, last):
        if time.monotonic() + wait > deadline:
            raise last
        time.sleep(wait * random.uniform(1.0, 1.2))

    def _write(self, method, path, body=None, headers=None, timeout=None):
        """A write to the leader, retried on 503/429 and connection errors.
        Returns (status, headers, parsed, uncertain): uncertain when an
        earlier attempt may have been acted on (its answer was lost)."""
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = _encode(body)
        deadline = time.monotonic() + self.retry_for
        backoff = 0.05
        avoid = set()
        uncertain = False
        while True:
            addr = self.leader(avoid=avoid)
            if addr is None:
                # No leader known (an election): any node holds the write
                # until there is one.
                addr = self._next_server(avoid)
            try:
                st, hs, out = self._call(addr, method, path, body, headers, timeout)
            except _Unreachable as e:
                uncertain = True
                self._forget_leader(addr)
                avoid.add(addr)
                if len(avoid) >= len(set(self.servers) | {addr}):
                    avoid.clear()  # Every node failed once: start again.
                last = APIError(0, "unreachable", str(e))
                self._retry_wait(deadline, backoff, last)
                backoff = min(backoff * 2, 2.0)
                continue
            if st not in (429, 503):
                return st, hs, out, uncertain
            last = APIError.from_body(st, out, _retry_after(hs))
            if st == 503:
                self._forget_leader(addr)
                if last.code == "outcome_unknown":
                    uncertain = True
            wait = last.retry_after if last.retry_after is not None else backoff
            self._retry_wait(deadline, max(wait, 0.01), last)
            backoff = min(backoff * 2, 2.0)

    def _read(self, path, timeout=None):
        """A GET on any node, retried on another one on 503 and connection
        errors (429: after Retry-After). A node that has not applied this
        client's last write yet hands the read to the leader."""
        deadline = time.monotonic() + self.retry_for
        backoff = 0.05
        while True:
            addr = self._next_server()
            try:
                st, hs, out = self._call(addr, "GET", path, timeout=timeout)
            except _Unreachable as e:
                last = APIError(0, "unreachable", str(e))
                self._retry_wait(deadline, backoff, last)
                backoff = min(backoff * 2, 2.0)
                continue
            if st not in (429, 503):
                # A write's answer carries the applied index of the moment
                # its entry was applied, which may not count that entry yet:
                # only a node past it surely holds the write.
                try:
                    seen = self._seen_index
                    behind = seen > 0 and int(hs.get("x-rota-index", "0")) <= seen
                except ValueError:
                    behind = False
                lead = self.leader() if behind else None
                if behind and lead is not None and lead != addr:
                    try:  # Read your own writes.
                        return self._call(lead, "GET", path, timeout=timeout)
                    except _Unreachable:
                        pass
                return st, hs, out
            last = APIError.from_body(st, out, _retry_after(hs))
            wait = last.retry_after if st == 429 and last.retry_after is not None else backoff
            self._retry_wait(deadline, wait, last)
            backoff = min(backoff * 2, 2.0)

    def _read_json(self, path, ok=(200,), timeout=None):
        st, hs, out = self._read(path, timeout)
        if st not in ok:
            raise APIError.from_body(st, out, _retry_after(hs))
        return out

    # ---- jobs -------------------------------------------------------------

    def submit(self, type, payload=None, **fields):
        """Submits one job (fields as in docs/api.md: queue, priority,
        delay, max_attempts, ...); returns the created job (or the job an
        earlier submit with the same idempotency_key created)."""
        job = dict(fields)
        job["type"] = type
        if payload is not None:
            job["payload"] = payload
        if not job.get("idempotency_key"):
            job["idempotency_key"] = new_key()
        if self._batcher is not None:
            return self._batcher.submit(job)
        st, hs, out, _ = self._write("POST", "/v1/jobs", job)
        if st in (200, 201):
            return out
        raise APIError.from_body(st, out, _retry_after(hs))

    def submit_many(self, jobs):
        """Submits independent jobs with POST /v1/jobs/batch (not atomic;
        1000 a request). Returns one entry per job, in order: the job dict,
        or the APIError of that job alone. Raises APIError when a request
        as a whole failed."""
        encoded = []
        for j in jobs:
            j = dict(j)
            if not j.get("idempotency_key"):
                j["idempotency_key"] = new_key()
            encoded.append(_encode(j))
        return self._submit_encoded(encoded)

    def _submit_encoded(self, encoded):
        """Encoded jobs (each with an idempotency key) in batch requests;
        jobs answered 503 (outcome unknown) or 429 are sent again until
        retry_for ends. Returns job dicts or APIErrors, in order."""
        results = [None] * len(encoded)
        todo = list(range(len(encoded)))
        deadline = time.monotonic() + self.retry_for
        backoff = 0.05
        while todo:
            again, wait = [], None
            for chunk in _chunks(todo, encoded):
                body = b'{"jobs":[' + b",".join(encoded[i] for i in chunk) + b"]}"
                st, hs, out, _ = self._write("POST", "/v1/jobs/batch", body)
                if st != 200 or not isinstance(out, dict) or len(out.get("results", ())) != len(chunk):
                    raise APIError.from_body(st, out, _retry_after(hs))
                for i, res in zip(chunk, out["results"]):
                    status = res.get("status")
                    if status in (200, 201):
                        results[i] = res["job"]
                        continue
                    results[i] = APIError.from_body(status, res)
                    if status in (429, 503) and time.monotonic() < deadline:
                        again.append(i)
                        if status == 429:
                            wait = max(wait or 0, 1.0)
            todo = again
            if todo:
                time.sleep(wait if wait is not None else backoff)
                backoff = min(backoff * 2, 2.0)
        return results

    def get(self, id):
        """The job (any node; read-your-writes for this client's writes)."""
        return self._read_json(f"/v1/jobs/{_q(id)}")

    def wait(self, id, timeout=None):
        """Blocks until the job is terminal (completed, failed, cancelled)
        and returns it; after timeout seconds (None: no limit) returns its
        latest state. Uses GET ?wait= in pieces of at most 60 s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        job = None
        while True:
            left = 60.0 if deadline is None else deadline - time.monotonic()
            ms = int(min(60.0, left) * 1000)
            if ms < 1:
                return job if job is not None else self.get(id)
            asked = time.monotonic()
            job = self._read_json(f"/v1/jobs/{_q(id)}?wait={ms}ms",
                                  timeout=ms / 1000.0 + self.timeout)
            if job.get("status") in TERMINAL:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                return job
            if time.monotonic() - asked < ms / 2000.0:
                # Answered long before the wait ended without being
                # terminal (a server without ?wait=): poll, gently.
                time.sleep(0.25)

    def cancel(self, id):
        """Cancels a job that has not finished; returns it (cancelled)."""
        st, hs, out, uncertain = self._write("DELETE", f"/v1/jobs/{_q(id)}")
        if st == 200:
            return out
        if st == 409 and uncertain:
            # An earlier attempt whose answer was lost may have cancelled it.
            job = self.get(id)
            if job.get("status") == "cancelled":
                return job
        raise APIError.from_body(st, out, _retry_after(hs))

    def list(self, **filters):
        """Every job matching the filters (status, user_id, queue, type,
        limit = page size), following next_cursor over all pages."""
        query = {k: v for k, v in filters.items() if v is not None}
        while True:
            page = self._read_json("/v1/jobs?" + urllib.parse.urlencode(query))
            yield from page.get("jobs", ())
            cursor = page.get("next_cursor")
            if not cursor:
                return
            query["cursor"] = cursor

    def events(self, last_event_id=None, reconnect=True, **filters):
        """Subscribes to GET /v1/events (Server-Sent Events): returns an
        EventStream, an iterator of Event objects, connected when this
        returns. Filters: queue, type, job, events (a list or comma string,
        "job.*" allowed). A dropped connection is opened again (on another
        node if need be) with Last-Event-ID, so no event is missed; if the
        node no longer holds them, an "events.lost" event says so."""
        query = {}
        for k, v in filters.items():
            if v is not None:
                query[k] = ",".join(v) if isinstance(v, (list, tuple, set)) else v
        path = "/v1/events" + ("?" + urllib.parse.urlencode(query) if query else "")
        return EventStream(self, path, last_event_id, reconnect)


class EventStream:
    """An open GET /v1/events: iterate for Event objects; close() when done
    (or use it as a context manager). last_event_id is the id of the last
    event read (pass it to Client.events to resume later)."""

    def __init__(self, client, path, last_event_id, reconnect):
        self.last_event_id = last_event_id
        self._client = client
        self._path = path
        self._reconnect = reconnect
        self._conn = self._events = None
        self._addr = client._next_server()
        self._connect()

    def _connect(self):
        cl = self._client
        deadline = time.monotonic() + cl.retry_for
        backoff = 0.05
        while True:
            hdrs = cl._headers({"Accept": "text/event-stream"})
            hdrs.pop("Content-Type")
            if self.last_event_id:
                hdrs["Last-Event-ID"] = self.last_event_id
            try:
                # Keepalive comments come every 15 s: 45 silent s is a dead link.
                conn, resp = cl._transport.open(self._addr, "GET", self._path, hdrs,
                                                max(cl.timeout, 45))
                if resp.status == 200:
                    self._conn, self._events = conn, _sse(resp)
                    return
                raw = resp.read()
                conn.close()
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                err = APIError.from_body(resp.status, body, _retry_after(
                    {k.lower(): v for k, v in resp.getheaders()}))
                if resp.status not in (429, 502, 503, 504):
                    raise err
            except _Unreachable as e:
                err = APIError(0, "unreachable", str(e))
            if time.monotonic() + backoff > deadline:
                raise err
            self._addr = cl._next_server(avoid={self._addr})
            time.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            if self._events is None:
                if not self._reconnect:
                    raise StopIteration
                self._connect()
            try:
                ev = next(self._events)
            except StopIteration:
                # The server ended the stream (events.dropped): resume.
                self._drop()
                continue
            except (OSError, ValueError, AttributeError, http.client.HTTPException):
                # ValueError, AttributeError: closed under us by close().
                self._drop()
                self._addr = self._client._next_server(avoid={self._addr})
                continue
            if ev.id:
                self.last_event_id = ev.id
            return ev

    def _drop(self):
        if self._conn is not None:
            self._conn.close()
        self._conn = self._events = None

    def close(self):
        """Ends the stream; from another thread too (a blocked iteration
        then stops)."""
        self._reconnect = False
        conn = self._conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)  # Wakes a blocked read.
            except OSError:
                pass
        self._drop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _q(id):
    return urllib.parse.quote(str(id), safe="")


def _chunks(indexes, encoded):
    """Runs of indexes whose jobs fit in one batch request."""
    chunk, size = [], 16
    for i in indexes:
        n = len(encoded[i]) + 1
        if chunk and (len(chunk) == BATCH_MAX_JOBS or size + n > BATCH_MAX_BYTES):
            yield chunk
            chunk, size = [], 16
        chunk.append(i)
        size += n
    if chunk:
        yield chunk
