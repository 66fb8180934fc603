/**
 * What every device connection is to the rest of a worker, whatever protocol it speaks (the
 * line protocol's {@link DeviceConnection}, MQTT's `MqttConnection`): the listener accepts,
 * feeds and sweeps it; the registry and the command router hold it and write commands to it;
 * the control plane kicks, revokes and drains it.
 */
import type { AckRoute, Command } from "../protocol/gateway-messages.ts";
import type { CloseReason } from "./close-reasons.ts";

/** Connection lifecycle. */
export type ConnState = "hello" | "open" | "closing" | "closed";

/** A device connection of any protocol. */
export interface DeviceSession {
  state: ConnState;
  readonly connId: string;
  readonly acceptedAt: number;
  /** Last time anything arrived (ms); the sweep closes silent connections. */
  lastActivity: number;
  closeReason: CloseReason | null;
  closingSince: number;
  /** False until a TLS handshake completes (always true on plain TCP). */
  handshaken: boolean;
  /** Names of the verified TLS client certificate (CN, SANs); null without one. */
  certNames: string[] | null;
  /** When the identity was granted (high-resolution wall clock, comparable across workers). */
  readonly welcomedAt: number;
  /** Whether the connection is closing or closed. */
  readonly done: boolean;
  /** Bytes queued for the device. */
  readonly queuedBytes: number;
  /**
   * Silence allowed once open before `keepalive_timeout`, in ms; undefined = 1.5 x the
   * gateway's keepalive (the line protocol). MQTT sets 1.5 x the keepalive it granted.
   */
  readonly idleTimeoutMs?: number;
  onData(chunk: Uint8Array): void;
  /** The peer half-closed its side. */
  onEnd(): void;
  /** The socket can take more output. */
  onDrain(): void;
  /** The socket closed (by either side). */
  onClosed(): void;
  /** Says why (in the protocol's words) where it can, then closes gracefully with `reason`. */
  close(reason: CloseReason, code?: string, message?: string, retryAfterMs?: number): void;
  /** Cuts the connection without flushing. */
  terminate(): void;
  /** Writes a command; false when it could not be written (the router stores it instead). */
  deliver(c: Command, route: AckRoute): boolean;
  /** Whether command `id` was written on this connection and not acked yet. */
  hasSent(id: string): boolean;
  /** A newer connection of the same device was welcomed: this one closes with `taken_over`. */
  takeOver(): void;
}
