/**
 * Messages between the `owsla load` coordinator and its child processes (JSON over Bun's IPC
 * channel). A child starts with nothing but `--child <role>` and waits for `start`.
 */
import type { BackendOptions } from "./options.ts";
import type { BackendCounters, BackendFinal, ClientCounters, ClientFinal } from "./stats.ts";

/** How the devices speak MQTT (`owsla load --mqtt`). */
export interface MqttSpec {
  /** 5 = MQTT 5.0, 4 = MQTT 3.1.1 (request reply address in the JSON payload). */
  version: 4 | 5;
  /** The target is a plain MQTT broker (Mosquitto, RabbitMQ), not the gateway: see `deviceFilters` in mqtt-protocol.ts. */
  broker: boolean;
}

/** Everything one client process needs to simulate its share of the devices. */
export interface ClientSpec {
  /** Index of this process (0-based). */
  index: number;
  /** Destination addresses of this process; device k uses hosts[k % hosts.length]. */
  hosts: string[];
  port: number;
  /** Number of the first device; devices are `idPrefix` + number. */
  firstDevice: number;
  count: number;
  idPrefix: string;
  /** Site secret as hex for token auth; null for auth none. */
  secretHex: string | null;
  /** New connections per second for this process; 0 = unlimited. */
  connectRate: number;
  window: number;
  /** `pub` frames per second for this process (open loop). */
  msgRate: number;
  /** Unacknowledged pubs each device keeps (closed loop); 0 = open loop. */
  inflight: number;
  payload: number;
  /** Seconds between pings of an idle device; 0 = the welcome's keepalive. */
  pingEveryS: number;
  /** MQTT devices instead of the line protocol (null). */
  mqtt: MqttSpec | null;
}

/** Coordinator -> client. */
export type ToClient =
  | { t: "start"; spec: ClientSpec }
  /** Start connecting. */
  | { t: "go" }
  /** Start publishing. */
  | { t: "msgs" }
  /** Report `final`, close every connection and exit. */
  | { t: "stop" };

/** Client -> coordinator. */
export type FromClient =
  | { t: "ready" }
  /** Every second; `allWelcomedAt` is the wall-clock ms when all its devices had been welcomed once (0: not yet). */
  | { t: "tick"; c: ClientCounters; allWelcomedAt: number }
  | { t: "final"; f: ClientFinal }
  | { t: "fatal"; message: string };

/** Coordinator -> back-end child. */
export type ToBackend =
  | { t: "start"; options: BackendOptions }
  /** Start back-end-initiated commands. */
  | { t: "cmds" }
  | { t: "stop" };

/** Back-end child -> coordinator. */
export type FromBackend =
  | { t: "ready" }
  | { t: "tick"; c: BackendCounters }
  | { t: "final"; f: BackendFinal }
  | { t: "fatal"; message: string };
