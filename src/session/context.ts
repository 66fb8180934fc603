/** Everything a device session depends on, passed in by `main.ts` (no globals). */
import type { Logger } from "../log/logger.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { Publisher } from "../bridge/publisher.ts";
import type { DeviceStore } from "../store/devices.ts";
import type { Inbox } from "../store/inbox.ts";
import type { Registry } from "../registry/registry.ts";
import type { DeviceConnection } from "./connection.ts";
import type { Cluster } from "../registry/cluster.ts";
import type { PendingLoader } from "./pending-loader.ts";
import type { BanList } from "../auth/bans.ts";

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

/** Shared dependencies of all sessions of one worker. */
export interface SessionContext {
  gatewayId: string;
  workerId: number;
  siteNamespace: string;
  /** The gateway's queue; `reply_to` of upstream messages. */
  replyTo: string;
  auth: AuthSettings;
  limits: SessionLimits;
  devices: DeviceStore;
  inbox: Inbox;
  /** Sends stored commands to newly welcomed devices (batched lookups). */
  pending: PendingLoader;
  publisher: Publisher;
  registry: Registry<DeviceConnection>;
  /** Tells other workers about welcomed devices (takeover across workers). */
  cluster: Cluster;
  metrics: Metrics;
  log: Logger;
  /**
   * `<device>/<command id>` -> expiry (ms): commands whose ack the supervisor waits for (API
   * `?wait=ack`). Kept per worker, since the device may ack on whichever worker it reaches.
   */
  ackWatch: Map<string, number>;
  /** Sends a notice to the supervisor (e.g. a watched command was acked). */
  notify: (m: unknown) => void;
}
