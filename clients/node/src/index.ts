export { Client } from "./client";
export { Worker } from "./worker";
export type { LeasedJob, Handler, WorkerOptions } from "./worker";
export { RotaError, Permanent, ConnectionError } from "./errors";
export type * from "./types";
