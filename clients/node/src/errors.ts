/* Errors thrown by the client. */

/** An answer of the server that is an error (docs/api.md "Errors"), or a
 *  request that could not be answered (status 0, code "unavailable"). */
export class RotaError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field?: string;
  /** Seconds, from the Retry-After header, when the server gave one. */
  readonly retryAfter?: number;

  constructor(status: number, code: string, message: string, field?: string, retryAfter?: number) {
    super(message);
    this.name = "RotaError";
    this.status = status;
    this.code = code;
    if (field !== undefined && field !== "") this.field = field;
    if (retryAfter !== undefined) this.retryAfter = retryAfter;
  }

  /** From an answer's parsed body {"error": {code, field, message}}. */
  static from(status: number, body: unknown, retryAfter?: number): RotaError {
    const e = (body as { error?: { code?: string; field?: string; message?: string } } | null)?.error;
    if (e && typeof e === "object") {
      return new RotaError(status, e.code ?? "unknown", e.message ?? `HTTP ${status}`, e.field, retryAfter);
    }
    const text = typeof body === "string" && body !== "" ? body : `HTTP ${status}`;
    return new RotaError(status, status >= 500 ? "unavailable" : "unknown", text, undefined, retryAfter);
  }
}

/** Thrown by a worker handler: the job fails at once, without retries. */
export class Permanent extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Permanent";
  }
}

/** No answer: connection refused or reset, or the request timed out. */
export class ConnectionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConnectionError";
  }
}
