/**
 * From the `[broker]` configuration to {@link LinkOptions}: URLs, queue type, TLS files and
 * login mechanism. The one place worker wiring (and tools) build a broker link from config.
 */
import { readFileSync } from "node:fs";
import type { AMQPTlsOptions } from "@cloudamqp/amqp-client";
import type { Config } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { BrokerLink, LinkOptions } from "./link.ts";
import type { Topology } from "./topology.ts";

/** Reads the broker TLS files named in the config (undefined when none is set). */
export function readBrokerTls(config: Config): AMQPTlsOptions | undefined {
  const { tls_ca, tls_cert, tls_key } = config.broker;
  if (!tls_ca && !tls_cert && !tls_key) return undefined;
  const read = (key: string, path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch (e) {
      throw new Error(`Cannot read ${key} ${path}: ${(e as Error).message}; check the path and that the gateway's user may read it`);
    }
  };
  const tls: AMQPTlsOptions = {};
  if (tls_ca) tls.ca = read("broker.tls_ca", tls_ca);
  if (tls_cert) tls.cert = read("broker.tls_cert", tls_cert);
  if (tls_key) tls.key = read("broker.tls_key", tls_key);
  return tls;
}

/** Link options for `config`, connection name `name` and topology `topology`. */
export function linkOptions(config: Config, topology: Topology, name: string, log: Logger): LinkOptions {
  const b = config.broker;
  return {
    url: b.url,
    topology,
    queues: { type: b.queue_type, deliveryLimit: b.delivery_limit },
    tls: readBrokerTls(config),
    login: b.login,
    heartbeatS: b.heartbeat_s,
    reconnectMinMs: b.reconnect_min_ms,
    reconnectMaxMs: b.reconnect_max_ms,
    prefetch: b.prefetch,
    name,
    log,
  };
}

/**
 * Link gauges: `owsla_broker_up`, `owsla_broker_reconnects`, `owsla_broker_connect_attempts`,
 * and `owsla_broker_node{node="host:port"}` (1 for the node in use, 0 for the others).
 */
export function linkMetrics(link: BrokerLink, metrics: Metrics): void {
  metrics.gauge("owsla_broker_up", () => (link.up ? 1 : 0));
  metrics.gauge("owsla_broker_reconnects", () => link.reconnects);
  metrics.gauge("owsla_broker_connect_attempts", () => link.attempts);
  for (const node of new Set(link.nodes)) metrics.gauge("owsla_broker_node", () => (link.up && link.node === node ? 1 : 0), { node });
}
