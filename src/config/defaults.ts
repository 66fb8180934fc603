/**
 * Every configuration default, as one named constant each (nats-server style).
 *
 * A value of 0 documented as "derive" or "unlimited" is returned as 0 by
 * `loadConfig`; the module that uses the value resolves it.
 */

import { hostname } from "node:os";

// ---- [gateway] ----

/**
 * Namespace for UUID v5 device ids. It is a fixed constant so that every gateway
 * of a site derives the same id for the same device unless a site chooses its own.
 */
export const DEFAULT_GATEWAY_SITE_NAMESPACE = "b152f5e3-aa92-4c3c-8f61-2eb500a32561";

/** Gateway id used when the hostname has no usable character. */
export const FALLBACK_GATEWAY_ID = "owsla";

/** Pattern a gateway id must match. */
export const GATEWAY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Turns a hostname into a valid gateway id: every character outside
 * `[A-Za-z0-9_-]` becomes `-`, the result is cut to 64 characters, and an
 * empty result becomes {@link FALLBACK_GATEWAY_ID}.
 */
export function sanitizeGatewayId(name: string): string {
  const id = name.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 64);
  return id === "" ? FALLBACK_GATEWAY_ID : id;
}

/** Default gateway id: the machine hostname, sanitised by {@link sanitizeGatewayId}. */
export function defaultGatewayId(): string {
  return sanitizeGatewayId(hostname());
}

// ---- [device] ----

/** Address the device listener binds to. */
export const DEFAULT_DEVICE_HOST = "0.0.0.0";
/** TCP port the device listener binds to. */
export const DEFAULT_DEVICE_PORT = 7070;
/** Largest frame, in bytes, a device may send or receive. */
export const DEFAULT_DEVICE_MAX_FRAME_BYTES = 65536;
/** Time a new connection has to send its hello frame, in milliseconds. */
export const DEFAULT_DEVICE_HELLO_TIMEOUT_MS = 10000;
/** Keepalive interval agreed with devices, in seconds. */
export const DEFAULT_DEVICE_KEEPALIVE_S = 60;
/** Output bytes queued per connection before it is closed as a slow consumer. */
export const DEFAULT_DEVICE_MAX_OUTBOUND_BYTES = 1048576;
/** Maximum open device connections; 0 = derive from the file descriptor limit. */
export const DEFAULT_DEVICE_MAX_CONNECTIONS = 0;
/** Accepts per second allowed from one source address; 0 = unlimited. */
export const DEFAULT_DEVICE_ACCEPT_RATE_PER_IP = 0;
/** Accepts per second allowed in total; 0 = unlimited. */
export const DEFAULT_DEVICE_ACCEPT_RATE_TOTAL = 0;
/** Refusals per second from one address that get it dropped in the kernel. */
export const DEFAULT_DEVICE_FLOOD_THRESHOLD = 100;
/** Seconds a flooding address stays dropped. */
export const DEFAULT_DEVICE_FLOOD_BLOCK_S = 10;
/** `shutting_down` frames sent per second during a graceful stop. */
export const DEFAULT_DEVICE_DRAIN_RATE = 2000;
/** TLS certificate chain (PEM) for the device port; empty = plain TCP. */
export const DEFAULT_DEVICE_TLS_CERT = "";
/** TLS private key (PEM) for the device port. */
export const DEFAULT_DEVICE_TLS_KEY = "";
/** CA bundle (PEM) to require and verify device client certificates; empty = no client certificates. */
export const DEFAULT_DEVICE_TLS_CLIENT_CA = "";
/** Certificate revocation list (PEM) of the client CA; empty = none. */
export const DEFAULT_DEVICE_TLS_CRL = "";
/** Lowest TLS version accepted from devices (Bun never accepts 1.0 or 1.1). */
export const DEFAULT_DEVICE_TLS_MIN_VERSION = "1.2";

// ---- [mqtt] ----

/** Whether devices may connect over MQTT. */
export const DEFAULT_MQTT_ENABLED = true;
/** Address the MQTT listener binds to; empty = the device listener's host. */
export const DEFAULT_MQTT_HOST = "";
/** Plain MQTT port (IANA). */
export const DEFAULT_MQTT_PORT = 1883;
/** MQTT over TLS port (IANA); served only when the device TLS files are set. */
export const DEFAULT_MQTT_TLS_PORT = 8883;
/** Largest MQTT packet accepted or sent, in bytes (the line protocol's frame limit). */
export const DEFAULT_MQTT_MAX_PACKET_BYTES = 65536;
/** QoS 1/2 publishes a device may have awaiting PUBACK/PUBREC (Receive Maximum). */
export const DEFAULT_MQTT_RECEIVE_MAXIMUM = 1024;
/** Longest topic name or filter, in bytes. */
export const DEFAULT_MQTT_MAX_TOPIC_BYTES = 256;
/** Longest session expiry granted to a persistent session, in seconds (the command TTL). */
export const DEFAULT_MQTT_SESSION_EXPIRY_MAX_S = 3600;
/** Longest keepalive granted, in seconds (a client asking for 0 or more gets this). */
export const DEFAULT_MQTT_KEEPALIVE_MAX_S = 300;

// ---- [auth] ----

/** How devices authenticate: `token` (site secret), `cert` (client certificate names the hardware id) or `none`. */
export const DEFAULT_AUTH_MODE = "token";
/** Site secret file; empty = `<store.dir>/site.secret`. */
export const DEFAULT_AUTH_SECRET_FILE = "";
/** Failed hellos from one source address that lead to a ban of that address; 0 never bans. */
export const DEFAULT_AUTH_BAN_FAILURES = 10;
/** Window in which those failures are counted, in seconds. */
export const DEFAULT_AUTH_BAN_WINDOW_S = 60;
/** How long a ban lasts, in seconds. */
export const DEFAULT_AUTH_BAN_DURATION_S = 300;

// ---- [broker] ----

/** AMQP broker URL. */
export const DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672";
/** Prefix prepended to every exchange and queue name. */
export const DEFAULT_BROKER_PREFIX = "";
/** AMQP heartbeat, in seconds; 0 disables heartbeats. */
export const DEFAULT_BROKER_HEARTBEAT_S = 10;
/** First reconnect delay, in milliseconds. */
export const DEFAULT_BROKER_RECONNECT_MIN_MS = 100;
/** Largest reconnect delay, in milliseconds. */
export const DEFAULT_BROKER_RECONNECT_MAX_MS = 10000;
/** Publishes awaiting broker confirmation at once. */
export const DEFAULT_BROKER_PUBLISH_WINDOW = 1000;
/** Unacknowledged commands the broker delivers at once. */
export const DEFAULT_BROKER_PREFETCH = 500;
/** Time a command waits for its device, in seconds. */
export const DEFAULT_BROKER_COMMAND_TTL_S = 3600;
/** Time to wait for a publish confirmation, in milliseconds. */
export const DEFAULT_BROKER_CONFIRM_TIMEOUT_MS = 5000;
/** Type of the gateway queue and the dead-letter queue (`quorum` is replicated across a cluster). */
export const DEFAULT_BROKER_QUEUE_TYPE = "quorum";
/** Deliveries of one command (quorum queues) before it is dead-lettered as poison. */
export const DEFAULT_BROKER_DELIVERY_LIMIT = 20;
/** CA certificates (PEM) for verifying the broker's certificate; empty = the system's CAs. */
export const DEFAULT_BROKER_TLS_CA = "";
/** Client certificate (PEM) presented to the broker; empty = none. */
export const DEFAULT_BROKER_TLS_CERT = "";
/** Client key (PEM) of `tls_cert`. */
export const DEFAULT_BROKER_TLS_KEY = "";
/** SASL mechanism: `plain` (user and password of the URL) or `external` (the client certificate). */
export const DEFAULT_BROKER_LOGIN = "plain";
/** Outbox messages per second while draining after an outage, whole gateway; 0 = unlimited. */
export const DEFAULT_BROKER_DRAIN_RATE = 0;
/** Time a connected device has to ack a command before it is stored (and the broker delivery acked), ms. */
export const DEFAULT_BROKER_DEVICE_ACK_TIMEOUT_MS = 5000;

// ---- [store] ----

/** Data directory. */
export const DEFAULT_STORE_DIR = "./data";
/** Largest number of writes committed in one batch. */
export const DEFAULT_STORE_BATCH_MAX = 500;
/** Time a write waits for others to join its batch, in milliseconds. */
export const DEFAULT_STORE_BATCH_DELAY_MS = 2;
/** Bytes the outboxes may hold (whole gateway, split over the workers): 1 GiB. */
export const DEFAULT_STORE_OUTBOX_MAX_BYTES = 1024 * 1024 * 1024;
/** Bytes of stored commands the inboxes may hold (whole gateway, split over the workers): 256 MiB. */
export const DEFAULT_STORE_INBOX_MAX_BYTES = 256 * 1024 * 1024;
/** Age of the oldest stored command before it is dead-lettered, in seconds: 7 days. */
export const DEFAULT_STORE_INBOX_MAX_AGE_S = 7 * 24 * 3600;
/** Free space kept on the data directory's filesystem, in bytes: 256 MiB. */
export const DEFAULT_STORE_MIN_FREE_BYTES = 256 * 1024 * 1024;

// ---- [api] ----

/** Address the HTTP API binds to. */
export const DEFAULT_API_HOST = "127.0.0.1";
/** TCP port the HTTP API binds to. */
export const DEFAULT_API_PORT = 8080;
/** API bearer token; empty = generated into the data directory. */
export const DEFAULT_API_TOKEN = "";

// ---- [workers] ----

/** Worker processes; 0 = the number of CPUs. */
export const DEFAULT_WORKERS_COUNT = 0;
/** Worker restarts allowed within `restart_period_s` before the gateway stops. */
export const DEFAULT_WORKERS_MAX_RESTARTS = 5;
/** Period over which worker restarts are counted, in seconds. */
export const DEFAULT_WORKERS_RESTART_PERIOD_S = 10;
/** Interval between worker heartbeats, in milliseconds. */
export const DEFAULT_WORKERS_HEARTBEAT_MS = 1000;
/** Silence after which a worker is considered hung, in milliseconds. */
export const DEFAULT_WORKERS_HANG_TIMEOUT_MS = 5000;
/** Silence allowed to a worker whose CPU time keeps growing (busy) before it is killed as hung, s. */
export const DEFAULT_WORKERS_BUSY_TIMEOUT_S = 60;
/** Time a graceful stop may take before workers are killed, in seconds. */
export const DEFAULT_WORKERS_SHUTDOWN_DEADLINE_S = 30;

// ---- [log] ----

/** Lowest log level written. */
export const DEFAULT_LOG_LEVEL = "info";
/** Log format; `auto` = pretty on a TTY, JSON otherwise. */
export const DEFAULT_LOG_FORMAT = "auto";
