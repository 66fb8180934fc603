/**
 * Every setting's default, written out by hand (test fixture for load.test.ts): a changed
 * default must be changed here too, on purpose.
 */
import { hostname } from "node:os";
import * as D from "./defaults.ts";
import type { Config } from "./types.ts";

export const EXPECTED_DEFAULTS: Config = {
  gateway: { id: D.sanitizeGatewayId(hostname()), site_namespace: D.DEFAULT_GATEWAY_SITE_NAMESPACE },
  device: {
    host: "0.0.0.0",
    port: 7070,
    max_frame_bytes: 65536,
    hello_timeout_ms: 10000,
    keepalive_s: 60,
    max_outbound_bytes: 1048576,
    max_connections: 0,
    accept_rate_per_ip: 0,
    accept_rate_total: 0,
    flood_threshold: 100,
    flood_block_s: 10,
    drain_rate: 2000,
    tls_cert: "",
    tls_key: "",
    tls_client_ca: "",
    tls_crl: "",
    tls_min_version: "1.2",
  },
  mqtt: {
    enabled: true,
    host: "",
    port: 1883,
    tls_port: 8883,
    max_packet_bytes: 65536,
    receive_maximum: 1024,
    max_topic_bytes: 256,
    session_expiry_max_s: 3600,
    keepalive_max_s: 300,
  },
  auth: { mode: "token", secret_file: "", ban_failures: 10, ban_window_s: 60, ban_duration_s: 300 },
  broker: {
    url: "amqp://guest:guest@127.0.0.1:5672",
    prefix: "",
    heartbeat_s: 10,
    reconnect_min_ms: 100,
    reconnect_max_ms: 10000,
    publish_window: 1000,
    prefetch: 500,
    command_ttl_s: 3600,
    confirm_timeout_ms: 5000,
    queue_type: "quorum",
    delivery_limit: 20,
    tls_ca: "",
    tls_cert: "",
    tls_key: "",
    login: "plain",
    drain_rate: 0,
    device_ack_timeout_ms: 5000,
  },
  store: { dir: "./data", batch_max: 500, batch_delay_ms: 2, outbox_max_bytes: 1073741824, inbox_max_bytes: 268435456, inbox_max_age_s: 604800, min_free_bytes: 268435456 },
  api: { host: "127.0.0.1", port: 8080, token: "" },
  workers: {
    count: 0,
    max_restarts: 5,
    restart_period_s: 10,
    heartbeat_ms: 1000,
    hang_timeout_ms: 5000,
    busy_timeout_s: 60,
    shutdown_deadline_s: 30,
  },
  log: { level: "info", format: "auto" },
};
