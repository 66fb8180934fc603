/**
 * The MQTT listeners of one worker: the shared device listener (limits, bans, flood guard,
 * sweep, TLS) with MQTT connections. With the device TLS files set, MQTT is served over TLS on
 * `mqtt.tls_port` only (like the line-protocol port, which is TLS-only then); without them,
 * plain MQTT on `mqtt.port`.
 */
import type { Config } from "../config/types.ts";
import { startListener, type ConnectionFactory, type DeviceListener, type RefusalReason } from "../listener/listener.ts";
import type { TlsFiles } from "../listener/tls-config.ts";
import type { SessionContext } from "../session/context.ts";
import { MqttConnection } from "./connection.ts";
import type { MqttDeps, MqttLimits } from "./limits.ts";
import { SessionStore } from "./sessions.ts";
import { RC } from "./reason-codes.ts";

/** MQTT limits from the `[mqtt]` config section. */
export function mqttLimits(config: Config): MqttLimits {
  const m = config.mqtt;
  return {
    maxPacketBytes: m.max_packet_bytes,
    receiveMaximum: m.receive_maximum,
    maxTopicBytes: m.max_topic_bytes,
    sessionExpiryMaxS: m.session_expiry_max_s,
    keepaliveMaxS: m.keepalive_max_s,
  };
}

/** How long a connection refused at accept may take to send its CONNECT, in ms. */
export const REFUSAL_WAIT_MS = 2000;

/** The CONNACK reason code (MQTT 5) of a refusal at accept. */
const REFUSAL_CODE: Record<RefusalReason, number> = {
  max_connections: RC.serverBusy,
  banned_address: RC.banned,
  accept_rate_per_ip: RC.connectionRateExceeded,
  accept_rate_total: RC.connectionRateExceeded,
};

/**
 * MQTT connections. A socket refused at accept (connection limit, banned address, accept
 * rate) is answered after its CONNECT — whose protocol version the CONNACK must match — with
 * the refusal's reason code, and cut if no CONNECT comes within {@link REFUSAL_WAIT_MS}.
 */
function mqttFactory(deps: MqttDeps, ctx: SessionContext): ConnectionFactory<MqttConnection> {
  return {
    create: (socket, ctx) => new MqttConnection(socket, ctx, deps),
    refuse(socket, _code, message, _retry, reason) {
      const conn = new MqttConnection(socket, ctx, deps);
      conn.refusal = { rc: REFUSAL_CODE[reason], message };
      setTimeout(() => conn.terminate(), REFUSAL_WAIT_MS).unref();
      return conn;
    },
  };
}

/** Where the MQTT listeners of a worker are. */
export interface MqttListeners {
  /** The plain listener (null when TLS is on or MQTT is off). */
  plain: DeviceListener<MqttConnection> | null;
  /** The TLS listener (null without device TLS files or with MQTT off). */
  tls: DeviceListener<MqttConnection> | null;
  all: DeviceListener<MqttConnection>[];
}

/** Starts this worker's MQTT listener(s); `listenerOpts` are the device listener's limits. */
export function startMqttListeners(
  config: Config,
  ctx: SessionContext,
  held: { readonly size: number },
  base: { maxConnections: number; acceptRatePerIp: number; acceptRateTotal: number; floodThreshold: number; floodBlockMs: number },
  tls: TlsFiles | undefined,
): MqttListeners {
  if (!config.mqtt.enabled) return { plain: null, tls: null, all: [] };
  const deps: MqttDeps = { limits: mqttLimits(config), sessions: new SessionStore() };
  ctx.metrics.gauge("owsla_mqtt_sessions_kept", () => deps.sessions.size);
  const host = config.mqtt.host || config.device.host;
  const factory = mqttFactory(deps, ctx);
  const opts = { ...base, host, metricPrefix: "owsla_mqtt_" };
  const listener = tls
    ? startListener({ ...opts, port: config.mqtt.tls_port, tls, portKey: "mqtt.tls_port" }, ctx, held, factory)
    : startListener({ ...opts, port: config.mqtt.port, portKey: "mqtt.port" }, ctx, held, factory);
  return { plain: tls ? null : listener, tls: tls ? listener : null, all: [listener] };
}
