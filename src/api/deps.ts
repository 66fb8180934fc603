/**
 * What the control API needs from the rest of the gateway. The Hono app takes these as
 * arguments (tests pass fakes; `main.ts` passes the supervisor-backed implementation).
 */
import type { MetricsSnapshot } from "../metrics/metrics.ts";
import type { OutboxSummary } from "../store/outbox-summary.ts";

export type { OutboxSummary } from "../store/outbox-summary.ts";

/** A device as the API shows it. */
export interface DeviceView {
  id: string;
  hardware_id: string | null;
  connected: boolean;
  worker: number | null;
  connection_id: string | null;
  first_seen: string; // ISO time
  last_seen: string; // ISO time
  last_close_reason: string | null;
  revoked: boolean;
  meta: Record<string, unknown>; // room, kind, label, ...
  pending_commands: number; // only filled by getDevice (0 in lists)
}

/** One page of devices. */
export interface DevicePage {
  devices: DeviceView[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  next_cursor: string | null;
}

/** A worker process as the API shows it. */
export interface WorkerView {
  id: number;
  pid: number;
  up: boolean;
  ready: boolean;
  restarts: number;
  started_at: string;
  connections: number | null; // null when the worker did not answer
  broker: string | null; // link state: up | down | connecting | closed
}

/** Options of a command sent through the API. */
export interface CommandRequest {
  topic: string;
  body: unknown;
  corr?: string | null;
  ttl_s?: number;
}

/** Result of sending a command. */
export interface CommandResult {
  id: string;
  /** With wait=ack: whether the device acked within the timeout. */
  acked?: boolean;
}

/** Outcome of a lookup by id: null = no such device. */
export type Maybe<T> = T | null;

/** Everything the control API calls. All methods may throw; the app maps errors to JSON. */
export interface ApiDeps {
  version: string;
  gatewayId: string;
  /** Bearer token required on every route except /healthz and the dashboard page. */
  apiToken: string;
  workers(): Promise<WorkerView[]>;
  /** Metrics of every worker (that answered) plus the supervisor's own. */
  metrics(): Promise<{ workers: { id: number; snapshot: MetricsSnapshot }[]; supervisor: MetricsSnapshot }>;
  /** Readiness: all workers up and ready, store usable; broker state reported, not required. */
  ready(): Promise<{ ready: boolean; workers_ready: number; workers: number; store: "ok" | string; broker: Record<string, string> }>;
  listDevices(q: { cursor?: string; limit: number; connected?: boolean; hardware_id?: string; search?: string }): Promise<DevicePage>;
  getDevice(id: string): Promise<Maybe<DeviceView>>;
  /** Pre-registers a device by hardware id with metadata; returns the view and a fresh token. */
  registerDevice(hardwareId: string, meta: Record<string, unknown>): Promise<{ device: DeviceView; token: string | null; created: boolean }>;
  updateDevice(id: string, meta: Record<string, unknown>): Promise<Maybe<DeviceView>>;
  /** Revokes the device's tokens and disconnects it; returns null when unknown. */
  revokeDevice(id: string): Promise<Maybe<DeviceView>>;
  /** Mints a token for the device's current generation (a re-issue after revoke). */
  issueToken(id: string): Maybe<string>;
  /** Sends a command through the same path as AMQP commands (inbox + delivery). */
  sendCommand(id: string, cmd: CommandRequest, waitAckMs: number | null): Promise<Maybe<CommandResult>>;
  /** Closes the device's connection (reason `kicked`); false when it was not connected. */
  kick(id: string): Promise<Maybe<boolean>>;
  /** Summary numbers for the dashboard and `owsla status`. */
  stats(): Promise<Stats>;
  /** How full the outbox is: totals and the `limit` devices holding most rows. */
  outbox(limit: number): Promise<OutboxSummary>;
  /** Logs a request that failed inside the gateway (the client only gets a reference). */
  logError?(message: string, fields: { ref: string; method: string; path: string; err: Error }): void;
}

/** Gateway summary. */
export interface Stats {
  gateway: string;
  version: string;
  uptime_s: number;
  connections: number;
  devices_known: number;
  accepts_total: number;
  welcomes_total: number;
  messages_up_total: number;
  messages_down_total: number;
  outbox_depth: number;
  inbox_depth: number;
  broker: { up: number; total: number; reconnects: number };
  workers: { up: number; total: number; restarts: number };
}
