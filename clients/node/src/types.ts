/* The shapes of the API (docs/api.md). Field names are the API's. */

import type { RotaError } from "./errors";

export interface ClientOptions {
  /** Base URLs of the nodes, e.g. ["http://10.0.0.1:8001", ...]. */
  servers: string[];
  /** An ACL token secret (sent as Authorization: Bearer). */
  token?: string;
  /** A CA certificate file (PEM) to verify https nodes against. */
  caFile?: string;
  /** Per-request timeout (default 30000 ms; wait() adds its wait). */
  timeoutMs?: number;
  /** Retries on 503 / 429 / connection errors (default 10). */
  maxRetries?: number;
  /** submit() calls within this many ms go as one batch (default 1; 0: off). */
  batchLingerMs?: number;
}

export type JobStatus = "scheduled" | "waiting" | "pending" | "running" | "completed" | "failed" | "cancelled";

export interface Backoff {
  initial?: string | number;
  multiplier?: number;
  max?: string | number;
  jitter?: number;
}

/** The optional fields of a job (docs/scheduling.md). */
export interface JobOptions {
  name?: string;
  queue?: string;
  priority?: number;
  user_id?: string;
  tags?: Record<string, string>;
  run_at?: string;
  delay?: string | number;
  schedule?: string;
  timezone?: string;
  overlap?: string;
  catchup?: string | boolean;
  catchup_max?: number;
  max_attempts?: number;
  backoff?: Backoff;
  no_retry_exit_codes?: number[];
  timeout?: string | number;
  depends_on?: string[];
  trigger?: string;
  concurrency_key?: string;
  concurrency_limit?: number;
  /** Generated ("rota-" + a UUID) when not given. */
  idempotency_key?: string;
}

export interface JobSpec extends JobOptions {
  type: string;
  payload?: unknown;
}

export interface Job {
  id: string;
  type: string;
  /* eslint-disable-next-line @typescript-eslint/no-explicit-any -- any JSON */
  payload: any;
  queue: string;
  priority: number;
  status: JobStatus;
  attempts: number;
  max_attempts: number;
  created_at: string;
  updated_at: string;
  /* eslint-disable-next-line @typescript-eslint/no-explicit-any -- any JSON */
  result?: any;
  last_error?: string | null;
  [field: string]: unknown;
}

/** One job of submitMany(): ok with the job (status 201 created, 200
 *  existed by its idempotency key) or not ok with its error. */
export interface BatchResult {
  ok: boolean;
  status: number;
  job?: Job;
  error?: RotaError;
}

export interface ListFilters {
  status?: string;
  queue?: string;
  type?: string;
  user_id?: string;
  /** Page size (1..1000); list() still yields every page. */
  limit?: number;
}

export interface EventFilters {
  queue?: string;
  type?: string;
  /** Only the events of this job id. */
  job?: string;
  /** Event names, e.g. ["job.completed", "job.*"]. */
  events?: string[] | string;
}

export interface EventsOptions {
  /** Start after this event id (as a reconnect would). */
  lastEventId?: string;
  /** Ends the iteration. */
  signal?: AbortSignal;
}

/** One Server-Sent Event: its `id` (absent for leader.changed), its
 *  name, its parsed `data`, and data's fields at the top level. */
export interface RotaEvent {
  id?: string;
  event: string;
  data: Record<string, unknown>;
  index?: number;
  job?: { id: string; type: string; queue: string; status: JobStatus; attempts: number };
  worker?: { id: string; name: string };
  [field: string]: unknown;
}
