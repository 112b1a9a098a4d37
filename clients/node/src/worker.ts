/* A Rota worker in TypeScript: the protocol of worker/main.c.
 *
 * Registers (POST /v1/workers with its queues, concurrency and the types
 * it has handlers for), then three loops: leases (long-polls as many jobs
 * as it has free slots), heartbeats (every heartbeat_ms, the leases it
 * holds: running jobs and results not yet delivered; the answer's
 * "cancel" and "lost" abort those jobs), completions (results in batches
 * of at most 1000 with their fencing token; kept and sent again until an
 * answer is definite, e.g. through an election). A 404 or 403 on the
 * worker's calls means it is unknown (declared down): it registers again,
 * unless it is stopping.
 *
 * stop() or SIGTERM drains: no new leases, running jobs finish (after
 * drainTimeoutMs their signals abort, and they are given back as
 * retryable failures), results are delivered, the worker deregisters
 * (DELETE) and run() resolves. A handler that throws fails the attempt
 * (retried by the job's policy) unless it throws Permanent. */

import { hostname } from "node:os";
import { Client, backoff, sleep } from "./client";
import { ConnectionError, Permanent, RotaError } from "./errors";
import type { Answer } from "./transport";
import type { Job } from "./types";

export interface WorkerOptions {
  queues?: string[];
  concurrency?: number;
  /** Shown in GET /v1/workers (default host-pid). */
  name?: string;
  /** How long running jobs may finish when stopping (default 30000). */
  drainTimeoutMs?: number;
  /** Long-poll of one lease request (default 2000, at most 4000). */
  leaseWaitMs?: number;
}

/** The job a handler gets: the job record, its attempt and lease token
 *  (for fencing downstream), and a signal aborted when the job is
 *  cancelled, its lease is lost, or the worker stops past its drain. */
export interface LeasedJob extends Job {
  attempt: number;
  token: number;
  signal: AbortSignal;
}

export type Handler = (job: LeasedJob) => unknown | Promise<unknown>;

interface Result {
  id: string;
  token: number;
  ok: boolean;
  retryable: boolean;
  exit_code: number;
  error?: string;
  result?: unknown;
}

interface Run {
  id: string;
  token: number;
  ctrl: AbortController;
  lost: boolean;
  done: Promise<void>;
}

interface Lease {
  job: Job;
  token: number;
  attempt: number;
}

/** A promise that something happened, renewed after each wake(). */
class Bell {
  private ring!: () => void;
  private p!: Promise<void>;
  constructor() {
    this.reset();
  }
  private reset(): void {
    this.p = new Promise((r) => (this.ring = r));
  }
  wait(ms: number): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (t = setTimeout(r, ms)));
    return Promise.race([this.p, timeout]).finally(() => clearTimeout(t));
  }
  wake(): void {
    this.ring();
    this.reset();
  }
}

export class Worker {
  readonly client: Client;
  readonly queues: string[];
  readonly concurrency: number;
  readonly name: string;
  private readonly drainTimeoutMs: number;
  private readonly leaseWaitMs: number;
  private readonly handlers = new Map<string, Handler>();
  private readonly runs = new Map<string, Run>();
  private pending: Result[] = [];
  private flushing: Result[] = [];
  private readonly slots = new Bell();
  private readonly results = new Bell();
  private readonly stopping = new AbortController();
  private loopsDone = new AbortController();
  private registering?: Promise<void>;
  /** The registration's id (empty before run()). */
  id = "";
  private secret = "";
  private heartbeatMs = 2000;

  constructor(client: Client, opts: WorkerOptions = {}) {
    this.client = client;
    this.queues = opts.queues ?? ["default"];
    this.concurrency = opts.concurrency ?? 4;
    this.name = opts.name ?? `${hostname()}-${process.pid}`;
    this.drainTimeoutMs = opts.drainTimeoutMs ?? 30_000;
    this.leaseWaitMs = Math.min(opts.leaseWaitMs ?? 2000, 4000);
  }

  /** Runs jobs of @type with @fn; its resolved value is the job's result. */
  handle(type: string, fn: Handler): this {
    this.handlers.set(type, fn);
    return this;
  }

  get draining(): boolean {
    return this.stopping.signal.aborted;
  }

  /** Starts draining; run() resolves once done. */
  stop(): void {
    this.stopping.abort();
    this.slots.wake();
  }

  /** Registers and works until stop() or SIGTERM, then drains. */
  async run(): Promise<void> {
    if (this.handlers.size === 0) throw new TypeError("no handlers: call handle(type, fn) first");
    const onTerm = () => this.stop();
    process.on("SIGTERM", onTerm);
    try {
      await this.register();
      if (this.id === "") return; /* Stopped before any node answered. */
      const hb = this.heartbeatLoop();
      const cp = this.completeLoop();
      await this.leaseLoop();
      await this.drain();
      this.loopsDone.abort();
      this.results.wake();
      await Promise.all([hb, cp]);
      await this.deregister();
    } finally {
      process.removeListener("SIGTERM", onTerm);
    }
  }

  // ---- Protocol -------------------------------------------------------------

  private call(method: string, path: string, body?: unknown, timeoutMs = 10_000): Promise<Answer | null> {
    return this.client
      .once("leader", method, path, { body, timeoutMs, headers: { "x-rota-worker-secret": this.secret } })
      .catch((e) => {
        if (e instanceof ConnectionError) return null;
        throw e;
      });
  }

  /** Registers (again), retrying until a node answers or the worker stops. */
  private register(): Promise<void> {
    this.registering ??= this.doRegister().finally(() => (this.registering = undefined));
    return this.registering;
  }

  private async doRegister(): Promise<void> {
    const body = { name: this.name, queues: this.queues, concurrency: this.concurrency, types: [...this.handlers.keys()] };
    for (let attempt = 0; !this.draining; attempt++) {
      const a = await this.call("POST", "/v1/workers", body);
      const out = a?.body as { id?: string; secret?: string; heartbeat_ms?: number } | null;
      if (a && a.status === 201 && out?.id) {
        /* Leases of an earlier registration are gone. */
        for (const r of this.runs.values()) this.lose(r);
        this.id = out.id;
        this.secret = out.secret ?? "";
        this.heartbeatMs = out.heartbeat_ms || 2000;
        return;
      }
      if (a && a.status >= 400 && a.status < 500 && a.status !== 401 && a.status !== 429) {
        throw RotaError.from(a.status, a.body);
      }
      /* 401: a token just made may not have reached this node yet. */
      await sleep(backoff(Math.min(attempt, 4)), this.stopping.signal);
    }
  }

  private async leaseLoop(): Promise<void> {
    let fails = 0;
    while (!this.draining) {
      const free = this.concurrency - this.runs.size;
      if (free <= 0) {
        await this.slots.wait(1000);
        continue;
      }
      const a = await this.call(
        "POST",
        `/v1/workers/${this.id}/lease`,
        { max: free, wait_ms: this.leaseWaitMs },
        this.leaseWaitMs + 6000,
      );
      if (a?.status === 200) {
        fails = 0;
        for (const l of (a.body as { leases?: Lease[] }).leases ?? []) this.start(l);
      } else if ((a?.status === 404 || a?.status === 403) && !this.draining) {
        await this.register();
      } else {
        await sleep(backoff(Math.min(fails++, 4)), this.stopping.signal);
      }
    }
  }

  private start(l: Lease): void {
    const ctrl = new AbortController();
    const run: Run = { id: l.job.id, token: l.token, ctrl, lost: false, done: Promise.resolve() };
    this.runs.set(run.id, run);
    run.done = this.execute(run, l).finally(() => {
      if (this.runs.get(run.id) === run) this.runs.delete(run.id);
      this.slots.wake();
    });
  }

  private async execute(run: Run, l: Lease): Promise<void> {
    const res: Result = { id: run.id, token: run.token, ok: true, retryable: true, exit_code: 0 };
    const fn = this.handlers.get(l.job.type);
    try {
      if (!fn) throw new Permanent(`no handler for type "${l.job.type}"`);
      const job: LeasedJob = { ...l.job, attempt: l.attempt, token: l.token, signal: run.ctrl.signal };
      const value = await fn(job);
      if (value !== undefined) res.result = value;
    } catch (e) {
      res.ok = false;
      res.exit_code = 1;
      res.retryable = !(e instanceof Permanent);
      res.error = e instanceof Error ? e.message : String(e);
    }
    if (!run.lost) {
      this.pending.push(res);
      this.results.wake();
    }
  }

  private lose(r: Run): void {
    r.lost = true;
    r.ctrl.abort(new Error("lease lost"));
  }

  private async heartbeatLoop(): Promise<void> {
    while (!this.loopsDone.signal.aborted) {
      /* Every lease held: running, or finished with its result still to
       * deliver. A lease left out is given back by the leader. */
      const held = new Map<string, number>();
      for (const r of this.runs.values()) if (!r.lost) held.set(r.id, r.token);
      for (const r of [...this.pending, ...this.flushing]) held.set(r.id, r.token);
      const running = [...held].map(([id, token]) => ({ id, token }));
      const a = await this.call("POST", `/v1/workers/${this.id}/heartbeat`, { running }, 5000);
      if (a?.status === 200) {
        const out = a.body as { cancel?: string[]; lost?: string[] };
        for (const id of out.cancel ?? []) this.runs.get(id)?.ctrl.abort(new Error("cancelled"));
        for (const id of out.lost ?? []) {
          const r = this.runs.get(id);
          if (r) this.lose(r);
        }
      } else if (a?.status === 404) {
        /* Declared down: every lease is gone. A stopping worker (its own
         * DELETE may be what made it unknown) never registers again. */
        for (const r of this.runs.values()) this.lose(r);
        if (!this.draining) await this.register();
      }
      await sleep(this.heartbeatMs, this.loopsDone.signal);
    }
  }

  /** Delivers pending results in one batch; false when the answer was not
   *  definite (they are kept, in order, for the next try). */
  private async flush(): Promise<boolean> {
    if (this.pending.length === 0) return true;
    this.flushing = this.pending.splice(0, 1000);
    const a = await this.call("POST", `/v1/workers/${this.id}/complete`, { results: this.flushing });
    const batch = this.flushing;
    this.flushing = [];
    const st = a?.status ?? 0;
    if (st === 200 || (st >= 400 && st < 500 && st !== 404)) return true;
    this.pending.unshift(...batch);
    return false;
  }

  private async completeLoop(): Promise<void> {
    let fails = 0;
    while (!this.loopsDone.signal.aborted || this.pending.length > 0) {
      if (this.pending.length === 0) {
        await this.results.wait(1000);
        continue;
      }
      if (await this.flush()) {
        fails = 0;
      } else if (this.loopsDone.signal.aborted && fails >= 20) {
        return; /* Stopping and no node takes them: give up. */
      } else {
        await sleep(backoff(Math.min(fails++, 4)));
      }
    }
  }

  private async drain(): Promise<void> {
    const all = () => Promise.all([...this.runs.values()].map((r) => r.done));
    const timedOut = new AbortController();
    const t = setTimeout(() => timedOut.abort(), this.drainTimeoutMs);
    await Promise.race([all(), new Promise((r) => timedOut.signal.addEventListener("abort", r))]);
    clearTimeout(t);
    /* Past the drain timeout: stopped and given back (retryable). */
    for (const r of this.runs.values()) r.ctrl.abort(new Error("worker stopping"));
    await all();
    /* Results delivered before deregistering (completeLoop keeps going). */
    for (let i = 0; i < 100 && (this.pending.length > 0 || this.flushing.length > 0); i++) {
      await sleep(50);
    }
  }

  private async deregister(): Promise<void> {
    for (let i = 0; i < 20; i++) {
      const a = await this.call("DELETE", `/v1/workers/${this.id}`, undefined, 5000);
      if (a?.status === 200 || a?.status === 404) return;
      await sleep(200);
    }
  }
}
