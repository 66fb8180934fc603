/**
 * The gateway's own message types, shared by the session, routing, bridge and store code:
 * a command on its way to a device, and a device's message on its way to the broker.
 */

/** A command for a device (from the broker or the API), as the gateway keeps and routes it. */
export interface Command {
  id: string;
  deviceId: string;
  topic: string;
  /** The body exactly as the back-end sent it (JSON text), forwarded to the device byte for byte. */
  body: string;
  corr: string | null;
  /** Wall-clock ms after which the command is dropped. */
  expiresAt: number;
}

/**
 * Where a device's ack for a command written on a connection must go: the worker that took
 * the command (`origin`) and its key for the broker delivery (`key`; 0 for a command read from
 * the origin's store, whose row is deleted instead). Packed into one number per command.
 */
export type AckRoute = number;

/** Most workers a gateway may run (ids fit the low bits of an {@link AckRoute}). */
export const MAX_WORKERS = 1024;

/** Packs an {@link AckRoute}. */
export function ackRoute(origin: number, key: number): AckRoute {
  return key * MAX_WORKERS + origin;
}

/** The origin worker of an {@link AckRoute}. */
export function routeOrigin(r: AckRoute): number {
  return r % MAX_WORKERS;
}

/** The origin's delivery key of an {@link AckRoute} (0: stored). */
export function routeKey(r: AckRoute): number {
  return Math.floor(r / MAX_WORKERS);
}

/** AMQP properties of an upstream message (per the AMQP contract). */
export interface UpProps {
  timestamp: number;
  replyTo: string;
  correlationId: string;
  headers: Record<string, string>;
}

/** A device message (or presence event) on its way to the broker. */
export interface UpMessage {
  deviceId: string;
  /** UUID v7, assigned once; re-sends from the outbox carry the same id. */
  messageId: string;
  routingKey: string;
  props: UpProps;
  /** The JSON body exactly as it goes to the broker. */
  body: Uint8Array;
}

/** A message the broker can never take (a header or key too long for AMQP): the device gets `bad_frame`. */
export class UnpublishableError extends Error {
  override name = "UnpublishableError";
}

/**
 * A message that needs the outbox while a store limit is reached (`store.outbox_max_bytes`, or
 * free space under `store.min_free_bytes`): the device gets `server_busy` with `retry_after`,
 * never an ack, and keeps the message.
 */
export class StoreLimitError extends Error {
  override name = "StoreLimitError";
  constructor(
    /** The limit reached (`outbox_max_bytes` or `min_free_bytes`). */
    readonly limit: string,
    message: string,
  ) {
    super(message);
  }
}
