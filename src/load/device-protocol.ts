/**
 * The seam between {@link Fleet} (pacing, retries, timeouts, timing) and the wire protocol a
 * simulated device speaks: the line protocol (`line-protocol.ts`) or MQTT (`mqtt-protocol.ts`).
 * A protocol turns fleet actions into bytes and incoming bytes into {@link FleetEvents}.
 */
import type { Attempt, Dev } from "./fleet-device.ts";

/** A command (or RPC reply, when `corr` is set) that reached a device. */
export interface DeviceCommand {
  /** Command id ("" for an MQTT reply, which has none). */
  id: string;
  /** The ref of the device's request this answers, or null for a back-end-initiated command. */
  corr: string | null;
  body: unknown;
}

/** What a protocol reports to the fleet. */
export interface FleetEvents {
  /** The gateway accepted the device (welcome, CONNACK 0); `keepaliveS` when it set one. */
  welcome(d: Dev, keepaliveS: number | undefined): void;
  /** The gateway took the message `ref` (ack, PUBACK). */
  ack(d: Dev, ref: string): void;
  cmd(d: Dev, c: DeviceCommand): void;
  /** A refusal or error the gateway explained: of one message (`ref`), or of the connection. */
  refused(d: Dev, a: Attempt, code: string, retryAfterMs?: number, ref?: string): void;
  /** Something unexpected from the gateway, counted as error `kind`. */
  bad(a: Attempt, kind: string): void;
}

/** The wire side of a simulated device. */
export interface DeviceProtocol {
  /** The socket is open: send the opening (hello, CONNECT). */
  open(d: Dev, a: Attempt): void;
  /** Bytes arrived on attempt `a`. */
  data(d: Dev, a: Attempt, chunk: Buffer): void;
  /** Send one upstream request with reference `ref` (answered by ack and by an RPC reply). */
  pub(d: Dev, ref: string): void;
  ping(d: Dev): void;
  /** Acknowledge command `id` (the line protocol's `ack`; MQTT has PUBACKed it already). */
  ackCmd(d: Dev, id: string): void;
  /** Publish `door.ack` for back-end-initiated command `id`; its ack arrives with ref `id`. */
  doorAck(d: Dev, id: string): void;
  /** The run ends: say goodbye before the socket closes (MQTT DISCONNECT). */
  bye(d: Dev): void;
}

/** How a protocol writes to a device's socket (the fleet notes the time for keepalive). */
export type DeviceWrite = (d: Dev, data: string | Buffer) => void;
