/**
 * What the command router (router.ts) needs from around it: the connection holding a device,
 * the broker delivery it acknowledges, and its options.
 */
import type { Logger } from "../log/logger.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { AckRoute, Command } from "../protocol/gateway-messages.ts";
import type { CommandStore } from "../store/interfaces.ts";
import type { LimitReason } from "../store/disk-limits.ts";
import type { InboxLimiter } from "./inbox-limit.ts";
import type { Registry } from "./registry.ts";

/** What the router needs from the connection holding a device. */
export interface HolderConn {
  readonly connId: string;
  readonly state: string;
  /** When `welcome` was sent: ms with microseconds from {@link welcomeClock} (comparable across workers). */
  readonly welcomedAt: number;
  /** Writes the command; false when it could not be written. */
  deliver(cmd: Command, route: AckRoute): boolean;
  /** Closes this connection because a newer one of the same device was welcomed elsewhere. */
  takeOver(): void;
}

/** A broker delivery the origin acknowledges or refuses once the command is safe. */
export interface Delivery {
  ack(): void;
  /** Refuses it for good (dead-lettered; a store limit's name goes into the copy's `x-owsla-rejected` header). */
  reject(reason: "unknown_device" | LimitReason, message: string): void;
  /** Hands it back to the broker after a pause (the store failed). */
  retry(): void;
  /**
   * The broker delivered it before (to a consumer that died, or that gave it back): a worker
   * just crashed, possibly before the device's first sighting reached the site database.
   */
  readonly redelivered?: boolean;
}

/** Options of {@link CommandRouter}. */
export interface RouterOptions {
  self: number;
  count: number;
  /** Sends a message to another worker; false when the link is down. */
  send(peer: number, msg: object): boolean;
  registry: Registry<HolderConn>;
  store: CommandStore;
  /** Keeps stored commands within the store limits; absent = no limits. */
  limiter?: InboxLimiter;
  /** Whether the gateway has ever seen the device (commands for others are dead-lettered). */
  known(deviceId: string): boolean;
  /** Time a connected device has to ack before the command is stored instead, in ms. */
  ackTimeoutMs: number;
  metrics: Metrics;
  log: Logger;
  /** A command whose ack someone waits for (API `?wait=ack`) was acked. */
  onWatchedAck(deviceId: string, cmdId: string): void;
}
