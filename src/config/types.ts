/**
 * The resolved gateway configuration. Keys are snake_case, exactly as written in
 * the TOML file. Defaults live in `defaults.ts`; docs and limits in `schema.ts`.
 *
 * Values documented as "0 = derive" stay 0 here; the module using them resolves them.
 */

import type { Level } from "../log/logger.ts";

/** How devices authenticate. */
export type AuthMode = "token" | "cert" | "none";

/** Broker queue type for the gateway queue and the dead-letter queue. */
export type QueueType = "quorum" | "classic";

/** How the gateway logs in to the broker. */
export type BrokerLogin = "plain" | "external";

/** Log output format; `auto` = pretty on a TTY, JSON otherwise. */
export type LogFormat = "auto" | "json" | "pretty";

/** `[gateway]`: identity of this gateway. */
export interface GatewayConfig {
  /** Gateway id, `^[A-Za-z0-9_-]{1,64}$`. Default: the hostname, sanitised. */
  id: string;
  /** UUID namespace for UUID v5 device ids. Default: a fixed constant shared by all gateways. */
  site_namespace: string;
}

/** `[device]`: the TCP listener devices connect to. */
export interface DeviceConfig {
  /** Bind address. Default `0.0.0.0`. */
  host: string;
  /** Bind port; 0 picks a free port. Default 7070. */
  port: number;
  /** Largest frame in bytes. Default 65536. */
  max_frame_bytes: number;
  /** Time allowed for the hello frame, ms. Default 10000. */
  hello_timeout_ms: number;
  /** Keepalive interval, s. Default 60. */
  keepalive_s: number;
  /** Queued output bytes per connection before closing it as a slow consumer. Default 1048576. */
  max_outbound_bytes: number;
  /** Maximum open connections; 0 = derive from the fd limit. Default 0. */
  max_connections: number;
  /** Accepts per second per source address; 0 = unlimited. Default 0. */
  accept_rate_per_ip: number;
  /** Accepts per second in total; 0 = unlimited. Default 0. */
  accept_rate_total: number;
  flood_threshold: number;
  flood_block_s: number;
  /** `shutting_down` frames per second on graceful stop. Default 2000. */
  drain_rate: number;
  /** TLS certificate (PEM path); empty = plain TCP. Default empty. */
  tls_cert: string;
  /** TLS key (PEM path). Default empty. */
  tls_key: string;
  /** CA (PEM path) for verifying client certificates; empty = none required. Default empty. */
  tls_client_ca: string;
  /** CRL (PEM path) of the client CA; a listed certificate is refused. Default empty. */
  tls_crl: string;
  /** Lowest TLS version accepted from devices. Default `1.2`. */
  tls_min_version: "1.2" | "1.3";
}

/** `[mqtt]`: the MQTT 3.1.1/5.0 listener for devices (see docs/mqtt.md). */
export interface MqttConfig {
  /** Serve MQTT. Default true. */
  enabled: boolean;
  /** Bind address; empty = `device.host`. Default empty. */
  host: string;
  /** Plain MQTT port; 0 picks a free port. Default 1883. */
  port: number;
  /** MQTT over TLS port (served only when device.tls_cert/tls_key are set); 0 picks a free port. Default 8883. */
  tls_port: number;
  /** Largest MQTT packet accepted or sent, in bytes. Default 65536. */
  max_packet_bytes: number;
  /** QoS 1/2 publishes a device may have awaiting PUBACK/PUBREC. Default 1024. */
  receive_maximum: number;
  /** Longest topic name or filter, in bytes. Default 256. */
  max_topic_bytes: number;
  /** Longest session expiry granted to a persistent session, s. Default 3600. */
  session_expiry_max_s: number;
  /** Longest keepalive granted (a client asking for 0 or more gets this), s. Default 300. */
  keepalive_max_s: number;
}

/** `[auth]`: device authentication. */
export interface AuthConfig {
  /** Default `token`. */
  mode: AuthMode;
  /** Site secret file; empty = `<store.dir>/site.secret`. Default empty. */
  secret_file: string;
  /** Failed hellos per source address / hardware id before a ban; 0 never bans. Default 10. */
  ban_failures: number;
  /** Window for counting failures, s. Default 60. */
  ban_window_s: number;
  /** Ban duration, s. Default 300. */
  ban_duration_s: number;
}

/** `[broker]`: the AMQP connection. */
export interface BrokerConfig {
  /**
   * AMQP URL, or several (nodes of one cluster) joined by "," (see `url-list.ts`); secret
   * (contains passwords). Default `amqp://guest:guest@127.0.0.1:5672`.
   */
  url: string;
  /** Prepended to exchange and queue names. Default empty. */
  prefix: string;
  /** AMQP heartbeat, s; 0 disables. Default 10. */
  heartbeat_s: number;
  /** First reconnect delay, ms. Default 100. */
  reconnect_min_ms: number;
  /** Largest reconnect delay, ms. Default 10000. */
  reconnect_max_ms: number;
  /** Unconfirmed publishes in flight. Default 1000. */
  publish_window: number;
  /** Unacknowledged command deliveries. Default 500. */
  prefetch: number;
  /** Command time to live, s. Default 3600. */
  command_ttl_s: number;
  /** Publish confirmation timeout, ms. Default 5000. */
  confirm_timeout_ms: number;
  /** Gateway and dead-letter queue type. Default `quorum`. */
  queue_type: QueueType;
  /** Deliveries of one command before it is dead-lettered (quorum queues only). Default 20. */
  delivery_limit: number;
  /** CA file (PEM) for the broker's certificate; empty = system CAs. Default empty. */
  tls_ca: string;
  /** Client certificate (PEM path) for amqps://; empty = none. Default empty. */
  tls_cert: string;
  /** Client key (PEM path). Default empty. */
  tls_key: string;
  /** `plain` (URL credentials) or `external` (client certificate). Default `plain`. */
  login: BrokerLogin;
  /** Outbox messages sent per second while draining after an outage (whole gateway); 0 = as fast as confirms come. Default 0. */
  drain_rate: number;
  /** Time a connected device has to ack a command before the worker stores it and acks the broker, ms. Default 5000. */
  device_ack_timeout_ms: number;
}

/** `[store]`: local persistence. */
export interface StoreConfig {
  /** Data directory. Default `./data`. */
  dir: string;
  /** Largest write batch. Default 500. */
  batch_max: number;
  /** Batch gathering delay, ms. Default 2. */
  batch_delay_ms: number;
  /** Bytes the outboxes may hold (whole gateway; each worker gets its share); 0 = no limit. Default 1 GiB. */
  outbox_max_bytes: number;
  /** Bytes of stored commands (whole gateway; each worker gets its share); 0 = no limit. Default 256 MiB. */
  inbox_max_bytes: number;
  /** Age after which a stored command is dead-lettered, s; 0 = no limit. Default 7 days. */
  inbox_max_age_s: number;
  /** Free space kept on the data directory's filesystem, bytes; 0 = no floor. Default 256 MiB. */
  min_free_bytes: number;
}

/** `[api]`: the HTTP API. */
export interface ApiConfig {
  /** Bind address. Default `127.0.0.1`. */
  host: string;
  /** Bind port; 0 picks a free port. Default 8080. */
  port: number;
  /** Bearer token; secret. Empty = generated into the data directory. Default empty. */
  token: string;
}

/** `[workers]`: the worker process pool. */
export interface WorkersConfig {
  /** Worker processes; 0 = number of CPUs. Default 0. */
  count: number;
  /** Restarts allowed per period before giving up. Default 5. */
  max_restarts: number;
  /** Restart counting period, s. Default 10. */
  restart_period_s: number;
  /** Worker heartbeat interval, ms. Default 1000. */
  heartbeat_ms: number;
  /** Silence before a worker counts as hung, ms. Default 5000. */
  hang_timeout_ms: number;
  /** Silence allowed to a worker that keeps using CPU (busy, not hung) before it is killed, s. Default 60. */
  busy_timeout_s: number;
  /** Graceful stop deadline, s. Default 30. */
  shutdown_deadline_s: number;
}

/** `[log]`: logging. */
export interface LogConfig {
  /** Default `info`. */
  level: Level;
  /** Default `auto`. */
  format: LogFormat;
}

/** The whole configuration, one field per TOML section. */
export interface Config {
  gateway: GatewayConfig;
  device: DeviceConfig;
  mqtt: MqttConfig;
  auth: AuthConfig;
  broker: BrokerConfig;
  store: StoreConfig;
  api: ApiConfig;
  workers: WorkersConfig;
  log: LogConfig;
}
