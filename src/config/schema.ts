/**
 * One table describing every configuration key: type, default, doc line and limits.
 *
 * Names are derived from section and key: TOML `[device] port`, environment
 * `OWSLA_DEVICE_PORT`, flag `--device-port`.
 */

import * as D from "./defaults.ts";
import type { Config } from "./types.ts";

export type { KeyOf, KeySpec, Section, Value, ValueType } from "./key-spec.ts";
import { def, type KeyOf, type KeySpec, type Section, type Value } from "./key-spec.ts";

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const NON_EMPTY = /^\S+$/;
const NON_EMPTY_DOC = "a non-empty string without spaces";
const MS_MAX = 3_600_000;

/** Every configuration key, grouped by section in the order help and the example file use. */
export const SCHEMA = [
  def("gateway", "id", {
    type: "string", default: D.defaultGatewayId, defaultDoc: "the hostname, sanitised", alias: "gateway",
    pattern: D.GATEWAY_ID_PATTERN, expect: "1 to 64 characters from A-Z, a-z, 0-9, _ and -",
    doc: "Id of this gateway, unique within the site.",
  }),
  def("gateway", "site_namespace", {
    type: "string", default: D.DEFAULT_GATEWAY_SITE_NAMESPACE, pattern: UUID, expect: "a UUID",
    doc: "UUID namespace for v5 device ids; all gateways of a site must agree.",
  }),

  def("device", "host", {
    type: "string", default: D.DEFAULT_DEVICE_HOST, pattern: NON_EMPTY, expect: NON_EMPTY_DOC,
    doc: "Address the device listener binds to.",
  }),
  def("device", "port", {
    type: "int", default: D.DEFAULT_DEVICE_PORT, min: 0, max: 65535, alias: "port",
    doc: "TCP port for devices; 0 picks a free port.",
  }),
  def("device", "max_frame_bytes", {
    type: "int", default: D.DEFAULT_DEVICE_MAX_FRAME_BYTES, min: 64, max: 16_777_216,
    doc: "Largest frame a device may send or receive, in bytes.",
  }),
  def("device", "hello_timeout_ms", {
    type: "int", default: D.DEFAULT_DEVICE_HELLO_TIMEOUT_MS, min: 1, max: MS_MAX,
    doc: "Time a new connection has to send its hello, in milliseconds.",
  }),
  def("device", "keepalive_s", {
    type: "int", default: D.DEFAULT_DEVICE_KEEPALIVE_S, min: 1, max: 86_400,
    doc: "Keepalive interval agreed with devices, in seconds.",
  }),
  def("device", "max_outbound_bytes", {
    type: "int", default: D.DEFAULT_DEVICE_MAX_OUTBOUND_BYTES, min: 1024, max: 1_073_741_824,
    doc: "Queued output per connection before it is closed as a slow consumer, in bytes.",
  }),
  def("device", "max_connections", {
    type: "int", default: D.DEFAULT_DEVICE_MAX_CONNECTIONS, min: 0, max: 10_000_000,
    doc: "Maximum open device connections; 0 = derive from the file descriptor limit.",
  }),
  def("device", "accept_rate_per_ip", {
    type: "number", default: D.DEFAULT_DEVICE_ACCEPT_RATE_PER_IP, min: 0, max: 1_000_000,
    doc: "Accepts per second allowed from one source address; 0 = unlimited.",
  }),
  def("device", "accept_rate_total", {
    type: "number", default: D.DEFAULT_DEVICE_ACCEPT_RATE_TOTAL, min: 0, max: 1_000_000,
    doc: "Accepts per second allowed in total; 0 = unlimited.",
  }),
  def("device", "flood_threshold", {
    type: "number", default: D.DEFAULT_DEVICE_FLOOD_THRESHOLD, min: 0, max: 1_000_000,
    doc: "Connections from one address refused by accept_rate_per_ip within one second after which the kernel drops that address's new connections; 0 = never.",
  }),
  def("device", "flood_block_s", {
    type: "number", default: D.DEFAULT_DEVICE_FLOOD_BLOCK_S, min: 0, max: 86_400,
    doc: "How long the kernel drops new connections from a flooding address, in seconds.",
  }),
  def("device", "drain_rate", {
    type: "int", default: D.DEFAULT_DEVICE_DRAIN_RATE, min: 1, max: 1_000_000,
    doc: "shutting_down frames sent per second during a graceful stop.",
  }),
  def("device", "tls_cert", {
    type: "string", default: D.DEFAULT_DEVICE_TLS_CERT,
    doc: "TLS certificate chain (PEM file) for the device port; empty = plain TCP.",
  }),
  def("device", "tls_key", {
    type: "string", default: D.DEFAULT_DEVICE_TLS_KEY,
    doc: "TLS private key (PEM file) for the device port.",
  }),
  def("device", "tls_client_ca", {
    type: "string", default: D.DEFAULT_DEVICE_TLS_CLIENT_CA,
    doc: "CA bundle (PEM file); when set, devices must present a client certificate it signed.",
  }),
  def("device", "tls_crl", {
    type: "string", default: D.DEFAULT_DEVICE_TLS_CRL,
    doc: "Certificate revocation list (PEM file) of the client CA; a revoked client certificate is refused. Needs tls_client_ca.",
  }),
  def("device", "tls_min_version", {
    type: "enum", default: D.DEFAULT_DEVICE_TLS_MIN_VERSION, values: ["1.2", "1.3"],
    doc: "Lowest TLS version devices may use (1.0 and 1.1 are never accepted).",
  }),

  def("mqtt", "enabled", {
    type: "bool", default: D.DEFAULT_MQTT_ENABLED,
    doc: "Serve MQTT 3.1.1 and 5.0 to devices (flag --no-mqtt turns it off).",
  }),
  def("mqtt", "host", {
    type: "string", default: D.DEFAULT_MQTT_HOST, pattern: /^\S*$/, expect: "an address without spaces, or empty",
    doc: "Address the MQTT listener binds to; empty = device.host.",
  }),
  def("mqtt", "port", {
    type: "int", default: D.DEFAULT_MQTT_PORT, min: 0, max: 65535,
    doc: "TCP port for MQTT; 0 picks a free port.",
  }),
  def("mqtt", "tls_port", {
    type: "int", default: D.DEFAULT_MQTT_TLS_PORT, min: 0, max: 65535,
    doc: "TCP port for MQTT over TLS, served only when device.tls_cert and tls_key are set (same certificate, client CA, CRL and identity rules); 0 picks a free port.",
  }),
  def("mqtt", "max_packet_bytes", {
    type: "int", default: D.DEFAULT_MQTT_MAX_PACKET_BYTES, min: 128, max: 16_777_216,
    doc: "Largest MQTT packet a device may send or receive, in bytes (advertised as Maximum Packet Size).",
  }),
  def("mqtt", "receive_maximum", {
    type: "int", default: D.DEFAULT_MQTT_RECEIVE_MAXIMUM, min: 1, max: 65535,
    doc: "QoS 1 and 2 publishes a device may have awaiting PUBACK/PUBREC (advertised as Receive Maximum).",
  }),
  def("mqtt", "max_topic_bytes", {
    type: "int", default: D.DEFAULT_MQTT_MAX_TOPIC_BYTES, min: 8, max: 65535,
    doc: "Longest topic name or subscription filter, in bytes.",
  }),
  def("mqtt", "session_expiry_max_s", {
    type: "int", default: D.DEFAULT_MQTT_SESSION_EXPIRY_MAX_S, min: 0, max: 30 * 86_400,
    doc: "Longest session expiry granted to a persistent session, in seconds.",
  }),
  def("mqtt", "keepalive_max_s", {
    type: "int", default: D.DEFAULT_MQTT_KEEPALIVE_MAX_S, min: 1, max: 65535,
    doc: "Longest keepalive granted, in seconds; a client asking for 0 (none) or more gets this (MQTT 5: Server Keep Alive).",
  }),

  def("auth", "mode", {
    type: "enum", default: D.DEFAULT_AUTH_MODE, values: ["token", "cert", "none"],
    doc: "Device authentication: token (site secret), cert (the client certificate's CN or a SAN must be the hello's hardware id; needs device.tls_client_ca) or none.",
  }),
  def("auth", "secret_file", {
    type: "string", default: D.DEFAULT_AUTH_SECRET_FILE,
    doc: "Site secret file; empty = <store.dir>/site.secret.",
  }),

  def("auth", "ban_failures", {
    type: "int", default: D.DEFAULT_AUTH_BAN_FAILURES, min: 0, max: 1_000_000,
    doc: "Failed hellos from one source address that lead to a ban of that address; 0 never bans.",
  }),
  def("auth", "ban_window_s", {
    type: "int", default: D.DEFAULT_AUTH_BAN_WINDOW_S, min: 1, max: 86_400,
    doc: "Window in which failed hellos are counted, in seconds.",
  }),
  def("auth", "ban_duration_s", {
    type: "int", default: D.DEFAULT_AUTH_BAN_DURATION_S, min: 1, max: 86_400 * 7,
    doc: "How long a ban lasts, in seconds.",
  }),

  def("broker", "url", {
    type: "string", default: D.DEFAULT_BROKER_URL, alias: "broker", secret: "url", list: true,
    // A second "://" means a list item is not an AMQP URL (e.g. "amqp://a,http://b").
    pattern: /^amqps?:\/\/(?!.*:\/\/)\S+$/, expect: "an amqp:// or amqps:// URL, or several (a TOML list, or separated by commas)",
    doc: "AMQP broker URL, or several nodes of one cluster (tried in turn); passwords are never logged.",
  }),
  def("broker", "prefix", {
    type: "string", default: D.DEFAULT_BROKER_PREFIX,
    pattern: /^[A-Za-z0-9_.:-]{0,64}$/, expect: "at most 64 characters from A-Z, a-z, 0-9, _ . : and -",
    doc: "Prefix prepended to exchange and queue names.",
  }),
  def("broker", "heartbeat_s", {
    type: "int", default: D.DEFAULT_BROKER_HEARTBEAT_S, min: 0, max: 3600,
    doc: "AMQP heartbeat in seconds; 0 disables heartbeats.",
  }),
  def("broker", "reconnect_min_ms", {
    type: "int", default: D.DEFAULT_BROKER_RECONNECT_MIN_MS, min: 1, max: MS_MAX,
    doc: "First reconnect delay, in milliseconds.",
  }),
  def("broker", "reconnect_max_ms", {
    type: "int", default: D.DEFAULT_BROKER_RECONNECT_MAX_MS, min: 1, max: MS_MAX,
    doc: "Largest reconnect delay, in milliseconds.",
  }),
  def("broker", "publish_window", {
    type: "int", default: D.DEFAULT_BROKER_PUBLISH_WINDOW, min: 1, max: 100_000,
    doc: "Publishes awaiting broker confirmation at once.",
  }),
  def("broker", "prefetch", {
    type: "int", default: D.DEFAULT_BROKER_PREFETCH, min: 1, max: 65535,
    doc: "Unacknowledged commands the broker delivers at once.",
  }),
  def("broker", "command_ttl_s", {
    type: "int", default: D.DEFAULT_BROKER_COMMAND_TTL_S, min: 1, max: 30 * 86_400,
    doc: "Time a command waits for its device, in seconds.",
  }),
  def("broker", "confirm_timeout_ms", {
    type: "int", default: D.DEFAULT_BROKER_CONFIRM_TIMEOUT_MS, min: 1, max: MS_MAX,
    doc: "Time to wait for a publish confirmation, in milliseconds.",
  }),
  def("broker", "queue_type", {
    type: "enum", default: D.DEFAULT_BROKER_QUEUE_TYPE, values: ["quorum", "classic"],
    doc: "Type of the gateway queue and the dead-letter queue; an existing queue of the other type is converted, keeping its messages.",
  }),
  def("broker", "delivery_limit", {
    type: "int", default: D.DEFAULT_BROKER_DELIVERY_LIMIT, min: 1, max: 10_000,
    doc: "Deliveries of one command before the broker dead-letters it as poison (quorum queues).",
  }),
  def("broker", "tls_ca", {
    type: "string", default: D.DEFAULT_BROKER_TLS_CA,
    doc: "CA certificates (PEM file) that sign the broker's certificate, for amqps:// URLs; empty uses the system's CAs.",
  }),
  def("broker", "tls_cert", {
    type: "string", default: D.DEFAULT_BROKER_TLS_CERT,
    doc: "Client certificate (PEM file) presented to the broker over amqps://; empty sends none.",
  }),
  def("broker", "tls_key", {
    type: "string", default: D.DEFAULT_BROKER_TLS_KEY,
    doc: "Private key (PEM file) of broker.tls_cert.",
  }),
  def("broker", "login", {
    type: "enum", default: D.DEFAULT_BROKER_LOGIN, values: ["plain", "external"],
    doc: "Broker login: plain (user and password from the URL) or external (the client certificate; needs the broker's rabbitmq_auth_mechanism_ssl plugin).",
  }),

  def("broker", "drain_rate", {
    type: "int", default: D.DEFAULT_BROKER_DRAIN_RATE, min: 0, max: 10_000_000,
    doc: "Outbox messages sent per second (whole gateway) while draining a backlog after an outage; 0 = as fast as the broker confirms.",
  }),
  def("broker", "device_ack_timeout_ms", {
    type: "int", default: D.DEFAULT_BROKER_DEVICE_ACK_TIMEOUT_MS, min: 10, max: MS_MAX,
    doc: "Time a connected device has to ack a command before the worker stores it and acks the broker delivery, in milliseconds.",
  }),

  def("store", "dir", {
    type: "string", default: D.DEFAULT_STORE_DIR, alias: "data", pattern: /^.+$/, expect: "a non-empty path",
    doc: "Data directory.",
  }),
  def("store", "batch_max", {
    type: "int", default: D.DEFAULT_STORE_BATCH_MAX, min: 1, max: 100_000,
    doc: "Largest number of writes committed in one batch.",
  }),
  def("store", "batch_delay_ms", {
    type: "int", default: D.DEFAULT_STORE_BATCH_DELAY_MS, min: 0, max: 10_000,
    doc: "Time a write waits for others to join its batch, in milliseconds.",
  }),
  def("store", "outbox_max_bytes", {
    type: "int", default: D.DEFAULT_STORE_OUTBOX_MAX_BYTES, min: 0, max: Number.MAX_SAFE_INTEGER,
    doc: "Bytes of device messages the outbox may hold (whole gateway, split over the workers); past it pubs that need the outbox get server_busy; 0 = no limit.",
  }),
  def("store", "inbox_max_bytes", {
    type: "int", default: D.DEFAULT_STORE_INBOX_MAX_BYTES, min: 0, max: Number.MAX_SAFE_INTEGER,
    doc: "Bytes of stored commands the inbox may hold (whole gateway, split over the workers); past it the oldest are dead-lettered; 0 = no limit.",
  }),
  def("store", "inbox_max_age_s", {
    type: "int", default: D.DEFAULT_STORE_INBOX_MAX_AGE_S, min: 0, max: 10 * 365 * 24 * 3600,
    doc: "Seconds a command may stay stored for an offline device before it is dead-lettered; 0 = no limit (its TTL still applies).",
  }),
  def("store", "min_free_bytes", {
    type: "int", default: D.DEFAULT_STORE_MIN_FREE_BYTES, min: 0, max: Number.MAX_SAFE_INTEGER,
    doc: "Free space kept on the filesystem of store.dir; below it nothing new is stored (pubs get server_busy, commands for offline devices are dead-lettered); 0 = no floor.",
  }),

  def("api", "host", {
    type: "string", default: D.DEFAULT_API_HOST, pattern: NON_EMPTY, expect: NON_EMPTY_DOC,
    doc: "Address the HTTP API binds to.",
  }),
  def("api", "port", {
    type: "int", default: D.DEFAULT_API_PORT, min: 0, max: 65535,
    doc: "TCP port for the HTTP API; 0 picks a free port.",
  }),
  def("api", "token", {
    type: "string", default: D.DEFAULT_API_TOKEN, secret: "value",
    pattern: /^(|\S{16,})$/, expect: "empty or at least 16 characters without spaces",
    doc: "API bearer token; empty = generated into the data directory.",
  }),

  def("workers", "count", {
    type: "int", default: D.DEFAULT_WORKERS_COUNT, min: 0, max: 1024, alias: "workers",
    doc: "Worker processes; 0 = the number of CPUs.",
  }),
  def("workers", "max_restarts", {
    type: "int", default: D.DEFAULT_WORKERS_MAX_RESTARTS, min: 0, max: 1000,
    doc: "Worker restarts allowed within restart_period_s before the gateway stops.",
  }),
  def("workers", "restart_period_s", {
    type: "int", default: D.DEFAULT_WORKERS_RESTART_PERIOD_S, min: 1, max: 3600,
    doc: "Period over which worker restarts are counted, in seconds.",
  }),
  def("workers", "heartbeat_ms", {
    type: "int", default: D.DEFAULT_WORKERS_HEARTBEAT_MS, min: 10, max: 60_000,
    doc: "Interval between worker heartbeats, in milliseconds.",
  }),
  def("workers", "hang_timeout_ms", {
    type: "int", default: D.DEFAULT_WORKERS_HANG_TIMEOUT_MS, min: 20, max: 600_000,
    doc: "Silence after which a worker is considered hung, in milliseconds.",
  }),
  def("workers", "busy_timeout_s", {
    type: "int", default: D.DEFAULT_WORKERS_BUSY_TIMEOUT_S, min: 1, max: 3600,
    doc: "Silence allowed to a worker that keeps using CPU (busy, not hung) before it is killed, in seconds.",
  }),
  def("workers", "shutdown_deadline_s", {
    type: "int", default: D.DEFAULT_WORKERS_SHUTDOWN_DEADLINE_S, min: 1, max: 3600,
    doc: "Time a graceful stop may take before workers are killed, in seconds.",
  }),

  def("log", "level", {
    type: "enum", default: D.DEFAULT_LOG_LEVEL, values: ["debug", "info", "warn", "error"],
    doc: "Lowest log level written.",
  }),
  def("log", "format", {
    type: "enum", default: D.DEFAULT_LOG_FORMAT, values: ["auto", "json", "pretty"],
    doc: "Log format; auto = pretty on a TTY, JSON otherwise.",
  }),
] as const;

// Compile-time check that SCHEMA lists every key of Config: a missing key names itself here.
type Listed = (typeof SCHEMA)[number]["name"];
type Declared = { [S in Section]: `${S}.${KeyOf<S>}` }[Section];
type Missing = Exclude<Declared, Listed>;
const schemaIsComplete: [Missing] extends [never] ? true : Missing = true;
void schemaIsComplete;

/** Any entry of {@link SCHEMA}. */
export type AnyKeySpec = (typeof SCHEMA)[number];

/** Section names in schema order. */
export const SECTIONS: readonly Section[] = [...new Set(SCHEMA.map((s) => s.section))];

/** The spec of `section.key`, or undefined for an unknown key. */
export function findKey(section: string, key: string): KeySpec | undefined {
  return SCHEMA.find((s) => s.section === section && s.key === key);
}

/** The default value of a key, computing it if needed. */
export function defaultValue(spec: KeySpec): Value {
  return typeof spec.default === "function" ? spec.default() : spec.default;
}

export { checkValue, expectation, type Checked } from "./check-value.ts";
