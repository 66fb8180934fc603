/**
 * The MQTT listeners of one worker: the shared device listener (limits, bans, flood guard,
 * sweep, TLS) with MQTT connections. With the device TLS files set, MQTT is served over TLS on
 * `mqtt.tls_port` only (like the line-protocol port, which is TLS-only then); without them,
 * plain MQTT on `mqtt.port`.
 */
import type { Config } from "../config/types.ts";
import { startListener, type ConnectionFactory, type DeviceListener } from "../listener/listener.ts";
import type { TlsFiles } from "../listener/tls-config.ts";
import type { SessionContext } from "../session/context.ts";
import { MqttConnection } from "./connection.ts";
import type { MqttDeps, MqttLimits } from "./limits.ts";
import { SessionStore } from "./sessions.ts";

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

/**
 * Refuses a socket at accept (connection limit, banned address, accept rate): it is closed
 * before its CONNECT is read (the CONNACK's version is not known yet, and a flood must cost
 * nothing); the client sees the connection closed and retries later.
 */
function mqttFactory(deps: MqttDeps): ConnectionFactory<MqttConnection> {
  return {
    create: (socket, ctx) => new MqttConnection(socket, ctx, deps),
    refuse: (socket) => socket.end(),
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
  const factory = mqttFactory(deps);
  const opts = { ...base, host, metricPrefix: "owsla_mqtt_" };
  const listener = tls
    ? startListener({ ...opts, port: config.mqtt.tls_port, tls, portKey: "mqtt.tls_port" }, ctx, held, factory)
    : startListener({ ...opts, port: config.mqtt.port, portKey: "mqtt.port" }, ctx, held, factory);
  return { plain: tls ? null : listener, tls: tls ? listener : null, all: [listener] };
}
