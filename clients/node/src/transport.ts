/* One HTTP exchange with one node, over undici (keep-alive connections,
 * an optional CA file for https). Throws ConnectionError when there is no
 * answer; any HTTP status is an answer. */

import { readFileSync } from "node:fs";
import { Agent, request } from "undici";
import { ConnectionError } from "./errors";

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface CallOptions {
  body?: unknown;
  headers?: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal;
}

export function header(a: Answer, name: string): string | undefined {
  const v = a.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export class Transport {
  readonly agent: Agent;
  private readonly auth?: string;

  constructor(opts: { caFile?: string; token?: string }) {
    this.agent = new Agent({
      keepAliveTimeout: 10_000,
      /* No TLS session resumption: rotad's HTTPS (it asks for a client
       * certificate, without a session id context) drops a connection that
       * offers a cached session, so every new connection after the first
       * would fail. */
      connect: opts.caFile ? { ca: readFileSync(opts.caFile), maxCachedSessions: 0 } : { maxCachedSessions: 0 },
    });
    if (opts.token) this.auth = `Bearer ${opts.token}`;
  }

  headers(extra?: Record<string, string>): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    if (this.auth) h["authorization"] = this.auth;
    return h;
  }

  async call(base: string, method: string, path: string, opts: CallOptions): Promise<Answer> {
    const timeout = AbortSignal.timeout(opts.timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    const headers = this.headers(opts.headers);
    let text: string | undefined;
    if (opts.body !== undefined) {
      text = JSON.stringify(opts.body);
      headers["content-type"] = "application/json";
    }
    try {
      const res = await request(base + path, {
        method: method as "GET",
        headers,
        body: text,
        dispatcher: this.agent,
        signal,
      });
      const raw = await res.body.text();
      let body: unknown = raw;
      if (raw !== "") {
        try {
          body = JSON.parse(raw);
        } catch {
          /* Not JSON: kept as text. */
        }
      } else {
        body = null;
      }
      return { status: res.statusCode, headers: res.headers, body };
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? e;
      const what = timeout.aborted ? `timed out after ${opts.timeoutMs} ms` : (e as Error).message;
      throw new ConnectionError(`${method} ${base}${path}: ${what}`, { cause: e });
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
