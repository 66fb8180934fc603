/** Everything a device session depends on, passed in by the worker's wiring (no globals). */
import type { Logger } from "../log/logger.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { UpMessage } from "../protocol/gateway-messages.ts";
import type { BanList } from "../auth/bans.ts";
import type { AckRoute } from "../protocol/gateway-messages.ts";
import type { AddressLog } from "../log/address-log.ts";

/** Protocol limits applied to every connection. */
export interface SessionLimits {
  /** Longest frame including the newline, in bytes. */
  maxFrameBytes: number;
  /** Time from accept to a valid `hello`, in ms. */
  helloTimeoutMs: number;
  /** Keepalive announced in `welcome`, in s; silence for 1.5x closes the connection. */
  keepaliveS: number;
  /** Output queued per connection before it is closed as a slow consumer, in bytes. */
  maxOutboundBytes: number;
  /** `pub` frames awaiting broker confirm or outbox write per connection; more get `rate_limited`. */
  maxPendingPubs: number;
}

/** Authentication settings. */
export interface AuthSettings {
  mode: "token" | "cert" | "none";
  /** Site secret that device tokens are HMACs under. */
  secret: Uint8Array;
  /** Device UUID -> the only token generation accepted (raised by revocation); absent = 0. */
  tokenFloors: Map<string, number>;
  /** Temporary bans after repeated failed hellos (keys `ip:<addr>`: per source address only). */
  bans: BanList;
}

/** Publishes upstream messages (confirm or outbox); rejects with a reason when neither worked. */
export interface UpstreamSink {
  publish(m: UpMessage): Promise<void>;
}

/** Where a session reports its device: the router (live location, commands) and the site records. */
export interface DeviceDirectory {
  /** The connection was welcomed as `deviceId`. */
  welcomed(conn: SessionHolder, deviceId: string, hardwareId: string | null): void;
  /** The connection of `deviceId` closed; `unacked` are routes of commands it did not ack. */
  released(conn: SessionHolder, deviceId: string, reason: string, lastSeen: number, unacked: Iterable<AckRoute>): void;
  /**
   * The connection can take commands it refused before (an MQTT subscription arrived, or its
   * inflight window opened): send it the device's stored commands again.
   */
  resend?(conn: SessionHolder, deviceId: string): void;
  /** The device acked a command written on its connection with `route`. */
  acked(deviceId: string, cmdId: string, route: AckRoute): void;
  /** Whether `deviceId` is an anonymous identity this gateway issued (for `resume`). */
  anonymousKnown(deviceId: string): "anonymous" | "hardware" | "unknown";
  /** Durably records a new anonymous identity before its device learns it. */
  createAnonymous(deviceId: string): Promise<void>;
  /**
   * Counts a failed hello against these ban keys on every worker; resolves once the others
   * were told (so the next attempt, wherever it lands, sees the count).
   */
  authFailed(keys: string[]): Promise<boolean>;
}

/** What the directory keeps of a session (see {@link DeviceDirectory}). */
export interface SessionHolder {
  readonly connId: string;
  readonly state: string;
  readonly welcomedAt: number;
}

/** Shared dependencies of all sessions of one worker. */
export interface SessionContext {
  gatewayId: string;
  workerId: number;
  siteNamespace: string;
  /** The gateway's queue; `reply_to` of upstream messages. */
  replyTo: string;
  auth: AuthSettings;
  limits: SessionLimits;
  publisher: UpstreamSink;
  directory: DeviceDirectory;
  metrics: Metrics;
  log: Logger;
  /** Failed hellos and bad frames in the log, at most once per minute per source address. */
  refusals: AddressLog;
}
