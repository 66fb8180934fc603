/**
 * Options of `owsla load` (the device simulator) and `owsla load --backend` (the back-end
 * simulator): one typed object each, every default a named constant, validated at start with
 * errors that name the flag and say what is expected.
 */
import { parseArgs } from "node:util";
import type { MqttSpec } from "./ipc.ts";
import { DEFAULT_BROKER_URL, DEFAULT_DEVICE_PORT } from "../config/defaults.ts";

/** Simulated devices. */
export const DEFAULT_DEVICES = 1000;
/** Devices per client process when --processes is not given (each socket is a descriptor; the limit is 20000). */
export const DEFAULT_DEVICES_PER_PROCESS = 16_000;
/** Most devices one client process may hold (descriptor limit minus headroom). */
export const MAX_DEVICES_PER_PROCESS = 18_000;
/** Handshakes in flight per client process; more wait their turn so listen queues do not overflow. */
export const DEFAULT_WINDOW = 256;
/** Bytes of filler in each `pub` body. */
export const DEFAULT_PAYLOAD = 64;
/** Run time in seconds, counted from the first connection. */
export const DEFAULT_DURATION_S = 30;
/** Pause after every device is welcomed before the held snapshot is taken and messages start, in s. */
export const DEFAULT_SETTLE_S = 3;
/** Hardware ids are this prefix plus the device number. */
export const DEFAULT_ID_PREFIX = "load-";
/** First destination address; client processes use the next addresses, one per 8000 devices. */
export const DEFAULT_HOST_BASE = "127.0.0.1";
/**
 * Connections per destination address. Linux picks even local ports first for connect() and
 * scans them one by one for a free 4-tuple; past about half the port range (14k of
 * 32768-60999) per destination every connect scans thousands of ports and the ramp collapses.
 */
export const DEVICES_PER_ADDRESS = 8000;

/** MQTT port of the target when --mqtt is given without --mqtt-port (the MQTT default). */
export const DEFAULT_MQTT_PORT = 1883;

/** Topic of back-end-initiated commands. */
export const DEFAULT_CMD_TOPIC = "door.unlock";

/** A bad command line; the message says what to change. */
export class LoadUsageError extends Error {
  override name = "LoadUsageError";
}

/** Options of the back-end simulator. */
export interface BackendOptions {
  /** AMQP URL (default: the gateway's default broker). */
  broker: string;
  /** Broker name prefix, as the gateway's `broker.prefix` (default ""). */
  prefix: string;
  /** Back-end-initiated commands per second, in total (default 0). */
  cmdRate: number;
  /** Topic of those commands (default door.unlock). */
  cmdTopic: string;
  /** Answer every device message the RPC way (default true). */
  reply: boolean;
  /** Seconds to run when standalone (default 30). */
  durationS: number;
  /** Answer the devices over MQTT on a plain broker instead (--mqtt-broker); null: AMQP. */
  mqtt: { host: string; port: number; version: 4 | 5 } | null;
  /** No progress lines on stderr (default false). */
  quiet: boolean;
}

/** Options of the device simulator (the coordinator). */
export interface LoadOptions {
  devices: number;
  /** Client processes (default: devices / 16000, rounded up). */
  processes: number;
  /** New connections per second in total; 0 = as fast as the window allows (default 0). */
  connectRate: number;
  /** Handshakes in flight per client process (default 256). */
  window: number;
  auth: "token" | "none";
  /** Site secret file for token auth (default <data>/site.secret). */
  secretFile: string | null;
  /** The gateway's data directory: site secret and, without --gateway-pid, its processes. */
  data: string | null;
  idPrefix: string;
  /** `pub` frames per second in total (default 0). */
  msgRate: number;
  /** `pub` frames each device keeps unacknowledged, closed loop; 0 = open loop at --msg-rate (default 0). */
  inflight: number;
  payload: number;
  durationS: number;
  settleS: number;
  port: number;
  host: string;
  hostBase: string;
  /** Gateway supervisor pid for RSS (its child processes are included). */
  gatewayPid: number | null;
  /** Seconds between pings of an idle device; 0 = the keepalive from welcome (default 0). */
  pingEveryS: number;
  /** Start a back-end simulator child with these options (null: none). */
  backend: BackendOptions | null;
  /** Devices speak MQTT (--mqtt; `port` is then the MQTT port); null: the line protocol. */
  mqtt: MqttSpec | null;
  quiet: boolean;
}

/** What the command line asks for. */
export type LoadCommand =
  | { kind: "help" }
  | { kind: "load"; options: LoadOptions }
  | { kind: "backend"; options: BackendOptions }
  | { kind: "child"; role: "client" | "backend" };

/** Help text of `owsla load`. */
export const LOAD_USAGE = `Usage: owsla load [options]            simulate devices against a running gateway
       owsla load --backend [options]  simulate a back-end on the broker

Device simulator: N devices speak the line protocol from several client processes (each under
${MAX_DEVICES_PER_PROCESS} sockets, each to its own 127.x destination address), retry refusals and drops
as the protocol asks, print a progress line every second on stderr and a JSON summary on stdout.
  --devices N          devices to simulate (default ${DEFAULT_DEVICES})
  --processes N        client processes (default: devices / ${DEFAULT_DEVICES_PER_PROCESS}, rounded up)
  --connect-rate R     new connections per second in total; 0 = unlimited (default 0)
  --ramp S             connect every device within S seconds (sets --connect-rate)
  --window N           handshakes in flight per process (default ${DEFAULT_WINDOW})
  --auth token|none    token: mint device tokens from the site secret (default token)
  --data DIR           the gateway's data directory (site secret; gateway processes for RSS)
  --secret-file PATH   site secret file (default <data>/site.secret)
  --id-prefix S        hardware id prefix (default ${DEFAULT_ID_PREFIX})
  --msg-rate R         pub frames per second in total, once all are welcomed (default 0)
  --inflight N         each device keeps N pubs unacknowledged instead (closed loop; default 0)
  --payload B          filler bytes per pub body (default ${DEFAULT_PAYLOAD})
  --duration S         stop after S seconds (default ${DEFAULT_DURATION_S})
  --settle S           wait after all are welcomed before the held snapshot (default ${DEFAULT_SETTLE_S})
  --port P             gateway device port (default ${DEFAULT_DEVICE_PORT})
  --host-base IP       first destination address; each process uses the next ones, one per
                       ${DEVICES_PER_ADDRESS} of its devices (default ${DEFAULT_HOST_BASE})
  --host HOST          one destination for every process instead (a hostname is fine)
  --gateway-pid PID    gateway supervisor pid, for gateway RSS (workers included)
  --ping-every S       ping an idle device every S seconds (default: its keepalive)
  --with-backend       also run the back-end simulator (options below) as a child
  --quiet              no progress lines
Back-end simulator (with --backend or --with-backend):
  --broker URL         AMQP URL (default ${DEFAULT_BROKER_URL})
  --prefix S           broker name prefix, as the gateway's broker.prefix (default "")
  --cmd-rate R         back-end-initiated commands per second to connected devices (default 0)
  --cmd-topic T        their topic (default ${DEFAULT_CMD_TOPIC})
  --no-reply           do not answer device messages
Devices answer every cmd with ack; a command without corr also gets a pub on door.ack with
ref = the command id, which the back-end times (command -> device -> back-end).
MQTT (devices speak MQTT instead of the line protocol; welcome = CONNACK):
  --mqtt               simulate MQTT devices: QoS 1 PUBLISH on "load" with response topic
                       reply/<n> and the request's ref as correlation data, PUBACK on commands
  --mqtt-port P        the target's MQTT port (default ${DEFAULT_MQTT_PORT}; --port is ignored)
  --mqtt-version V     5 or 3.1.1 (default 5; with 3.1.1 the reply address travels in the
                       JSON payload as "r" and "c")
  --mqtt-broker        the target is a plain MQTT broker (Mosquitto, RabbitMQ's MQTT plugin):
                       no auth, devices subscribe to reply/<n> and cmd/<hardware id>/#, and
                       --with-backend answers over MQTT (subscribes to "load" at QoS 0, replies
                       QoS 1 to each response topic) instead of AMQP; --cmd-rate is not supported`;

const FLAGS = {
  help: { type: "boolean", short: "h" },
  backend: { type: "boolean" },
  child: { type: "string" },
  devices: { type: "string" },
  processes: { type: "string" },
  "connect-rate": { type: "string" },
  ramp: { type: "string" },
  window: { type: "string" },
  auth: { type: "string" },
  data: { type: "string" },
  "secret-file": { type: "string" },
  "id-prefix": { type: "string" },
  "msg-rate": { type: "string" },
  inflight: { type: "string" },
  payload: { type: "string" },
  duration: { type: "string" },
  settle: { type: "string" },
  port: { type: "string" },
  host: { type: "string" },
  "host-base": { type: "string" },
  "gateway-pid": { type: "string" },
  "ping-every": { type: "string" },
  "with-backend": { type: "boolean" },
  quiet: { type: "boolean" },
  broker: { type: "string" },
  prefix: { type: "string" },
  "cmd-rate": { type: "string" },
  "cmd-topic": { type: "string" },
  "no-reply": { type: "boolean" },
  mqtt: { type: "boolean" },
  "mqtt-port": { type: "string" },
  "mqtt-version": { type: "string" },
  "mqtt-broker": { type: "boolean" },
} as const;

type Values = ReturnType<typeof parse>["values"];

function parse(argv: string[]) {
  return parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false });
}

/** A number flag: absent → `dflt`; otherwise it must be finite and within [min, max]. */
function num(v: Values, name: keyof typeof FLAGS, dflt: number, min: number, max: number, integer = true): number {
  const raw = v[name];
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new LoadUsageError(`Invalid --${name} ${JSON.stringify(raw)}: expected ${integer ? "an integer" : "a number"} from ${min} to ${max}`);
  }
  return n;
}

function str(v: Values, name: keyof typeof FLAGS, dflt: string): string {
  const raw = v[name];
  return typeof raw === "string" ? raw : dflt;
}

function backendOptions(v: Values): BackendOptions {
  const topic = str(v, "cmd-topic", DEFAULT_CMD_TOPIC);
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(topic)) {
    throw new LoadUsageError(`Invalid --cmd-topic ${JSON.stringify(topic)}: use [A-Za-z0-9_-] segments joined by "."`);
  }
  const broker = str(v, "broker", DEFAULT_BROKER_URL);
  if (!/^amqps?:\/\/\S+$/.test(broker)) throw new LoadUsageError("Invalid --broker: expected an amqp:// or amqps:// URL");
  return {
    broker,
    prefix: str(v, "prefix", ""),
    cmdRate: num(v, "cmd-rate", 0, 0, 1_000_000, false),
    cmdTopic: topic,
    reply: !v["no-reply"],
    durationS: num(v, "duration", DEFAULT_DURATION_S, 1, 7 * 86_400, false),
    quiet: Boolean(v.quiet),
    mqtt: null,
  };
}

/** The MQTT part of the options, or null without --mqtt. */
function mqttSpec(v: Values): MqttSpec | null {
  if (!v.mqtt) {
    const stray = (["mqtt-port", "mqtt-version", "mqtt-broker"] as const).find((f) => v[f] !== undefined);
    if (stray) throw new LoadUsageError(`--${stray} needs --mqtt`);
    return null;
  }
  const version = str(v, "mqtt-version", "5");
  if (version !== "5" && version !== "3.1.1") throw new LoadUsageError(`Invalid --mqtt-version ${JSON.stringify(version)}: expected 5 or 3.1.1`);
  return { version: version === "5" ? 5 : 4, broker: Boolean(v["mqtt-broker"]) };
}

/** Parses the arguments after `load`; throws {@link LoadUsageError} on a bad value. */
export function parseLoadArgs(argv: string[]): LoadCommand {
  let v: Values;
  try {
    v = parse(argv).values;
  } catch (e) {
    throw new LoadUsageError(`${(e as Error).message}; run "owsla load --help" for the options`);
  }
  if (v.help) return { kind: "help" };
  if (v.child !== undefined) {
    if (v.child !== "client" && v.child !== "backend") throw new LoadUsageError(`Invalid --child ${JSON.stringify(v.child)}: internal flag, expected client or backend`);
    return { kind: "child", role: v.child };
  }
  if (v.backend) return { kind: "backend", options: backendOptions(v) };

  const devices = num(v, "devices", DEFAULT_DEVICES, 1, 10_000_000);
  const processes = num(v, "processes", Math.ceil(devices / DEFAULT_DEVICES_PER_PROCESS), 1, 1000);
  if (processes > devices) throw new LoadUsageError(`Invalid --processes ${processes}: more processes than --devices ${devices}`);
  const perProcess = Math.ceil(devices / processes);
  if (perProcess > MAX_DEVICES_PER_PROCESS) {
    throw new LoadUsageError(
      `--devices ${devices} over --processes ${processes} is ${perProcess} sockets per process, above ${MAX_DEVICES_PER_PROCESS} (the descriptor limit is 20000): use --processes ${Math.ceil(devices / MAX_DEVICES_PER_PROCESS)} or more`,
    );
  }
  if (v["connect-rate"] !== undefined && v.ramp !== undefined) throw new LoadUsageError("Give --connect-rate or --ramp, not both");
  const ramp = num(v, "ramp", 0, 0, 86_400, false);
  const connectRate = ramp > 0 ? devices / ramp : num(v, "connect-rate", 0, 0, 10_000_000, false);
  const mqtt = mqttSpec(v);
  const auth = str(v, "auth", mqtt?.broker ? "none" : "token");
  if (mqtt?.broker && auth !== "none") throw new LoadUsageError("--mqtt-broker targets an anonymous broker: drop --auth token");
  if (auth !== "token" && auth !== "none") throw new LoadUsageError(`Invalid --auth ${JSON.stringify(auth)}: expected token or none`);
  const data = typeof v.data === "string" ? v.data : null;
  const secretFile = typeof v["secret-file"] === "string" ? v["secret-file"] : null;
  if (auth === "token" && !data && !secretFile) {
    throw new LoadUsageError("Token auth needs the gateway's site secret: pass --data <gateway data dir> (or --secret-file <path>), or --auth none for a gateway with auth.mode none");
  }
  const idPrefix = str(v, "id-prefix", DEFAULT_ID_PREFIX);
  if (idPrefix.length > 200 || /\s/.test(idPrefix)) throw new LoadUsageError(`Invalid --id-prefix ${JSON.stringify(idPrefix)}: expected at most 200 characters without spaces`);
  const hostBase = str(v, "host-base", DEFAULT_HOST_BASE);
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(hostBase) || hostBase.split(".").some((o) => Number(o) > 255)) {
    throw new LoadUsageError(`Invalid --host-base ${JSON.stringify(hostBase)}: expected an IPv4 address such as 127.0.0.1`);
  }
  const gatewayPid = v["gateway-pid"] === undefined ? null : num(v, "gateway-pid", 0, 1, 2 ** 22);
  const port = mqtt ? num(v, "mqtt-port", DEFAULT_MQTT_PORT, 1, 65535) : num(v, "port", DEFAULT_DEVICE_PORT, 1, 65535);
  let backend = v["with-backend"] ? backendOptions(v) : null;
  if (backend && mqtt?.broker) {
    if (backend.cmdRate > 0) throw new LoadUsageError("--cmd-rate is not supported with --mqtt-broker (a plain broker has no presence to pick connected devices from)");
    backend = { ...backend, mqtt: { host: str(v, "host", "") || hostBase, port, version: mqtt.version } };
  }
  return {
    kind: "load",
    options: {
      devices,
      processes,
      connectRate,
      window: num(v, "window", DEFAULT_WINDOW, 1, 100_000),
      auth,
      secretFile,
      data,
      idPrefix,
      msgRate: num(v, "msg-rate", 0, 0, 10_000_000, false),
      inflight: num(v, "inflight", 0, 0, 1000),
      payload: num(v, "payload", DEFAULT_PAYLOAD, 0, 60_000),
      durationS: num(v, "duration", DEFAULT_DURATION_S, 1, 7 * 86_400, false),
      settleS: num(v, "settle", DEFAULT_SETTLE_S, 0, 3600, false),
      port,
      host: str(v, "host", ""),
      hostBase,
      gatewayPid,
      pingEveryS: num(v, "ping-every", 0, 0, 86_400, false),
      backend,
      mqtt,
      quiet: Boolean(v.quiet),
    },
  };
}

/** The destination address of client process `i`: `base` + i, carried across octets. */
export function hostFor(base: string, i: number): string {
  const o = base.split(".").map(Number);
  let n = ((o[0]! << 24) >>> 0) + (o[1]! << 16) + (o[2]! << 8) + o[3]! + i;
  const parts = [];
  for (let k = 0; k < 4; k++) {
    parts.unshift(n & 255);
    n = Math.floor(n / 256);
  }
  const addr = parts.join(".");
  if (!addr.startsWith("127.") && base.startsWith("127.")) throw new LoadUsageError(`--host-base ${base} + ${i} leaves 127.0.0.0/8; choose a lower base`);
  return addr;
}
