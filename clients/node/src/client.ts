/* The Rota client: jobs (submit, batches, get, wait, cancel, list) and
 * the event stream.
 *
 * Writes go to the leader directly: the client learns it from
 * GET /v1/cluster and asks again after a 503, a connection error, or when
 * its view is older than LEADER_TTL_MS (a node does not tell a client that
 * it forwarded a request, so a leader change that only forwards is noticed
 * by the age of the view). Reads go to any node, in turn; a read answered
 * by a node that has not yet applied the client's own last write (its
 * X-Rota-Index is lower) is asked again elsewhere (read-your-writes).
 *
 * Retries: bounded (maxRetries), with exponential backoff, on 503, 429
 * (honouring Retry-After) and connection errors. Every submit carries an
 * idempotency key (generated when not given), so a retried submit never
 * creates a second job. Other failures throw RotaError. */

import { randomUUID } from "node:crypto";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { request } from "undici";
import { ConnectionError, RotaError } from "./errors";
import { Answer, header, Transport } from "./transport";
import type {
  BatchResult,
  ClientOptions,
  EventsOptions,
  Job,
  JobOptions,
  JobSpec,
  ListFilters,
  RotaEvent,
  EventFilters,
} from "./types";

const LEADER_TTL_MS = 5000;
const MAX_BATCH = 1000;
const WAIT_PIECE_MS = 60_000;
const TERMINAL = new Set(["completed", "failed", "cancelled"]);

export type Target = "leader" | "any";

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Queued {
  spec: JobSpec;
  resolve: (job: Job) => void;
  reject: (err: unknown) => void;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Backoff before retry @attempt (0-based): 100 ms doubling to 2 s, ±20 %,
 *  at least the server's Retry-After. */
export function backoff(attempt: number, retryAfterS?: number): number {
  const base = Math.min(2000, 100 * 2 ** attempt);
  const jittered = base * (0.8 + Math.random() * 0.4);
  return Math.max(jittered, (retryAfterS ?? 0) * 1000);
}

function retryAfterOf(a: Answer): number | undefined {
  const v = header(a, "retry-after");
  const n = v !== undefined ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

function query(params: object): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null) q.set(k, Array.isArray(v) ? v.join(",") : String(v));
  }
  const s = q.toString();
  return s === "" ? "" : `?${s}`;
}

export class Client {
  readonly servers: string[];
  readonly timeoutMs: number;
  readonly maxRetries: number;
  readonly batchLingerMs: number;
  /** @internal */
  readonly transport: Transport;
  private leader?: string;
  private leaderAt = 0;
  private refreshing?: Promise<void>;
  private rr = 0;
  private seenIndex = 0;
  private queue: Queued[] = [];
  private timer?: NodeJS.Timeout;
  /** Requests sent (each attempt counts): for tests and metrics. */
  requests = 0;

  constructor(opts: ClientOptions) {
    if (!opts.servers || opts.servers.length === 0) throw new TypeError("servers: at least one URL");
    this.servers = opts.servers.map((s) => s.replace(/\/+$/, ""));
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxRetries = opts.maxRetries ?? 10;
    this.batchLingerMs = opts.batchLingerMs ?? 1;
    this.transport = new Transport({ caFile: opts.caFile, token: opts.token });
  }

  /** Closes the connections (pending auto-batched submits are sent first). */
  async close(): Promise<void> {
    if (this.queue.length > 0) await this.flush();
    await this.transport.close();
  }

  // ---- Jobs ---------------------------------------------------------------

  /** Creates a job; resolves with it (also when it existed already by its
   *  idempotency key). */
  submit(type: string, payload?: unknown, opts: JobOptions = {}): Promise<Job> {
    const spec = this.spec({ ...opts, type, payload });
    if (this.batchLingerMs <= 0) {
      return this.json<Job>("leader", "POST", "/v1/jobs", { body: spec });
    }
    return new Promise<Job>((resolve, reject) => {
      this.queue.push({ spec, resolve, reject });
      if (this.queue.length >= MAX_BATCH) {
        void this.flush();
      } else if (this.timer === undefined) {
        this.timer = setTimeout(() => void this.flush(), this.batchLingerMs);
      }
    });
  }

  /** Submits independent jobs in as few requests as possible
   *  (POST /v1/jobs/batch, not atomic): one result per job, in order. */
  async submitMany(jobs: JobSpec[]): Promise<BatchResult[]> {
    return this.sendBatch(jobs.map((j) => this.spec(j)));
  }

  /** The job; `consistency: "linearizable"` asks the leader after a barrier. */
  get(id: string, opts: { consistency?: "linearizable" } = {}): Promise<Job> {
    return this.json<Job>("any", "GET", `/v1/jobs/${encodeURIComponent(id)}${query(opts)}`);
  }

  /** Until the job is finished (completed, failed, cancelled) or @timeout
   *  ms passed; resolves with the job as it is then. */
  async wait(id: string, opts: { timeout?: number } = {}): Promise<Job> {
    const deadline = Date.now() + (opts.timeout ?? 60_000);
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return this.get(id);
      const piece = Math.min(WAIT_PIECE_MS, left);
      const job = await this.json<Job>("any", "GET", `/v1/jobs/${encodeURIComponent(id)}?wait=${piece}ms`, {
        timeoutMs: piece + this.timeoutMs,
      });
      if (TERMINAL.has(job.status)) return job;
    }
  }

  /** Cancels the job. A job already cancelled (e.g. by a retried cancel
   *  whose first answer was lost) resolves with it. */
  async cancel(id: string): Promise<Job> {
    try {
      return await this.json<Job>("leader", "DELETE", `/v1/jobs/${encodeURIComponent(id)}`);
    } catch (e) {
      if (e instanceof RotaError && e.status === 409) {
        const job = await this.get(id, { consistency: "linearizable" });
        if (job.status === "cancelled") return job;
      }
      throw e;
    }
  }

  /** Every job matching @filters, following next_cursor over all pages. */
  async *list(filters: ListFilters = {}): AsyncGenerator<Job> {
    let cursor: string | undefined;
    do {
      const page = await this.json<{ jobs: Job[]; next_cursor?: string }>(
        "any",
        "GET",
        `/v1/jobs${query({ ...filters, cursor })}`,
      );
      yield* page.jobs;
      cursor = page.next_cursor;
    } while (cursor);
  }

  /** Server-Sent Events from GET /v1/events; reconnects (to the next node)
   *  with Last-Event-ID when the stream ends or breaks. Ends when the
   *  caller stops iterating or opts.signal aborts. */
  async *events(filters: EventFilters = {}, opts: EventsOptions = {}): AsyncGenerator<RotaEvent> {
    const ctrl = new AbortController();
    const onAbort = () => ctrl.abort();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    let last = opts.lastEventId;
    let attempt = 0;
    const path = `/v1/events${query(filters)}`;
    try {
      while (!ctrl.signal.aborted) {
        const base = this.nextServer();
        const headers = this.transport.headers({ accept: "text/event-stream" });
        if (last !== undefined) headers["last-event-id"] = last;
        let res;
        try {
          res = await request(base + path, {
            method: "GET",
            headers,
            dispatcher: this.transport.agent,
            signal: ctrl.signal,
            headersTimeout: this.timeoutMs,
            bodyTimeout: 45_000, /* Keepalives come every 15 s. */
          });
        } catch (e) {
          if (ctrl.signal.aborted) return;
          await sleep(backoff(attempt++), ctrl.signal);
          continue;
        }
        if (res.statusCode !== 200) {
          const text = await res.body.text();
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            /* Not JSON. */
          }
          const err = RotaError.from(res.statusCode, body);
          if (res.statusCode < 500 && res.statusCode !== 429) throw err;
          await sleep(backoff(attempt++), ctrl.signal);
          continue;
        }
        attempt = 0;
        const got: EventSourceMessage[] = [];
        const parser = createParser({ onEvent: (m) => got.push(m) });
        const decoder = new TextDecoder();
        try {
          for await (const chunk of res.body) {
            parser.feed(decoder.decode(chunk as Buffer, { stream: true }));
            while (got.length > 0) {
              const m = got.shift()!;
              if (m.id) last = m.id;
              yield toEvent(m);
            }
          }
        } catch {
          if (ctrl.signal.aborted) return;
        }
        /* Ended or broke: reconnect (another node) from the last id. */
        await sleep(backoff(attempt++), ctrl.signal);
      }
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
      ctrl.abort();
    }
  }

  // ---- Auto-batching --------------------------------------------------------

  private spec(j: JobSpec): JobSpec {
    const s: JobSpec = { ...j };
    if (s.payload === undefined) s.payload = {};
    if (!s.idempotency_key) s.idempotency_key = `rota-${randomUUID()}`;
    return s;
  }

  /** Sends the submits queued so far as one batch (or a few of 1000). */
  private async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const items = this.queue.splice(0, MAX_BATCH);
    if (this.queue.length > 0) {
      this.timer = setTimeout(() => void this.flush(), 0);
    }
    if (items.length === 0) return;
    const results = await this.sendBatch(items.map((q) => q.spec));
    results.forEach((r, i) => (r.ok ? items[i].resolve(r.job!) : items[i].reject(r.error)));
  }

  /** POST /v1/jobs/batch for @specs (each with its idempotency key): the
   *  items answered 503 or 429 alone are sent again, with backoff, up to
   *  maxRetries; never throws. */
  private async sendBatch(specs: JobSpec[]): Promise<BatchResult[]> {
    if (specs.length > MAX_BATCH) {
      const parts: Promise<BatchResult[]>[] = [];
      for (let i = 0; i < specs.length; i += MAX_BATCH) parts.push(this.sendBatch(specs.slice(i, i + MAX_BATCH)));
      return (await Promise.all(parts)).flat();
    }
    const out: BatchResult[] = new Array(specs.length);
    let todo = specs.map((_, i) => i);
    for (let attempt = 0; ; attempt++) {
      let results: { status: number; job?: Job; error?: unknown }[];
      try {
        const body = { jobs: todo.map((i) => specs[i]) };
        results = (await this.json<{ results: typeof results }>("leader", "POST", "/v1/jobs/batch", { body })).results;
      } catch (e) {
        for (const i of todo) out[i] = { ok: false, status: (e as RotaError).status ?? 0, error: e as RotaError };
        return out;
      }
      const again: number[] = [];
      results.forEach((r, k) => {
        const i = todo[k];
        if (r.status === 200 || r.status === 201) {
          out[i] = { ok: true, status: r.status, job: r.job };
          return;
        }
        out[i] = { ok: false, status: r.status, error: RotaError.from(r.status, r) };
        if ((r.status === 503 || r.status === 429) && attempt < this.maxRetries) again.push(i);
      });
      if (again.length === 0) return out;
      if (again.some((i) => out[i].status === 503)) this.forgetLeader();
      todo = again;
      await sleep(backoff(attempt));
    }
  }

  // ---- Requests -------------------------------------------------------------

  /** A request with the retries, answering the parsed body of a 2xx;
   *  throws RotaError otherwise. */
  async json<T>(target: Target, method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let a: Answer;
      try {
        a = await this.once(target, method, path, opts);
      } catch (e) {
        if (!(e instanceof ConnectionError)) throw e;
        if (attempt >= this.maxRetries) throw new RotaError(0, "unavailable", e.message);
        await sleep(backoff(attempt), opts.signal);
        continue;
      }
      if (a.status < 400) return a.body as T;
      const err = RotaError.from(a.status, a.body, retryAfterOf(a));
      if ((a.status === 503 || a.status === 429) && attempt < this.maxRetries) {
        await sleep(backoff(attempt, err.retryAfter), opts.signal);
        continue;
      }
      throw err;
    }
  }

  /** One attempt, no retries: the answer whatever its status; throws
   *  ConnectionError when there is none. Keeps the leader view fresh. */
  async once(target: Target, method: string, path: string, opts: RequestOptions = {}): Promise<Answer> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const base = target === "leader" ? await this.leaderUrl() : this.nextServer();
    this.requests++;
    let a: Answer;
    try {
      a = await this.transport.call(base, method, path, { ...opts, timeoutMs });
    } catch (e) {
      if (e instanceof ConnectionError) this.failed(base);
      throw e;
    }
    if (a.status === 503) this.failed(base);
    const index = Number(header(a, "x-rota-index"));
    if (target === "leader" && method !== "GET" && a.status < 300 && Number.isFinite(index)) {
      /* A write's answer is sent as its entry is applied and carries the
       * index applied before it: the entry is the next one. */
      this.seenIndex = Math.max(this.seenIndex, index + 1);
    } else if (target === "any" && this.seenIndex > 0 && this.lagging(a, index)) {
      /* This node may not have applied our own last write yet: ask the
       * leader. */
      return this.once("leader", method, path, opts);
    }
    return a;
  }

  /** An answer of a node behind our last write: an older X-Rota-Index,
   *  or a 404 (errors carry no index). */
  private lagging(a: Answer, index: number): boolean {
    if (a.status === 404) return !Number.isFinite(index) || index < this.seenIndex;
    return a.status < 500 && Number.isFinite(index) && index < this.seenIndex;
  }

  private failed(base: string): void {
    if (base === this.leader) this.forgetLeader();
    this.rr++;
  }

  private forgetLeader(): void {
    this.leader = undefined;
    this.leaderAt = 0;
  }

  private nextServer(): string {
    return this.servers[this.rr++ % this.servers.length];
  }

  private async leaderUrl(): Promise<string> {
    if (this.leader === undefined || Date.now() - this.leaderAt > LEADER_TTL_MS) {
      this.refreshing ??= this.refreshLeader().finally(() => (this.refreshing = undefined));
      await this.refreshing;
    }
    /* No leader known: any node holds the write until there is one. */
    return this.leader ?? this.nextServer();
  }

  /** GET /v1/cluster from the nodes in turn until one names a leader. */
  private async refreshLeader(): Promise<void> {
    const scheme = new URL(this.servers[0]).protocol;
    for (let k = 0; k < this.servers.length; k++) {
      const base = this.servers[(this.rr + k) % this.servers.length];
      try {
        this.requests++;
        const a = await this.transport.call(base, "GET", "/v1/cluster", {
          timeoutMs: Math.min(this.timeoutMs, 2000),
        });
        const lead = (a.body as { leader?: { http_addr?: string } | null } | null)?.leader;
        if (a.status === 200 && lead?.http_addr) {
          this.leader = `${scheme}//${lead.http_addr}`;
          this.leaderAt = Date.now();
          return;
        }
      } catch {
        /* Next node. */
      }
    }
    this.forgetLeader();
  }
}

function toEvent(m: EventSourceMessage): RotaEvent {
  let data: Record<string, unknown> = {};
  try {
    data = JSON.parse(m.data);
  } catch {
    data = { raw: m.data };
  }
  return { ...data, id: m.id, event: m.event ?? (data.event as string) ?? "message", data } as RotaEvent;
}
