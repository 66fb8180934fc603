/**
 * Renders metrics snapshots as Prometheus text exposition (format 0.0.4). Pure: snapshots
 * in, text out.
 *
 * - Counters and gauges are summed over all workers and the supervisor, per key
 *   (`name{labels}`), and emitted without a worker label.
 * - Gauges are also emitted per worker with a `worker="<id>"` label added.
 * - Histograms are summed into cumulative `_bucket{le=...}` series ending with `+Inf`,
 *   plus `_sum` and `_count`.
 * - `# TYPE` is `counter` for names ending in `_total`, `gauge` for other counters and
 *   gauges, `histogram` for histograms. A name used by a histogram and a counter or gauge
 *   is emitted as the histogram only. Keys that are not valid metric names are skipped.
 *
 * @module
 */
import { LATENCY_BUCKETS_MS, type HistogramData, type MetricsSnapshot } from "../metrics/metrics.ts";

/** Content type of the exposition. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** What {@link renderPrometheus} renders: the shape `ApiDeps.metrics()` resolves to. */
export interface PrometheusInput {
  workers: { id: number; snapshot: MetricsSnapshot }[];
  supervisor: MetricsSnapshot;
}

/** `# HELP` text of the gateway's known metrics; others get a generic line. */
export const METRIC_HELP: Readonly<Record<string, string>> = {
  owsla_connections: "Open device connections.",
  owsla_devices_held: "Devices in the registry of the worker (or, summed, of the gateway).",
  owsla_publish_inflight: "Publishes awaiting broker confirmation.",
  owsla_accepts_total: "TCP connections accepted.",
  owsla_accepts_rejected_total: "TCP connections refused, by reason.",
  owsla_welcomes_total: "Devices welcomed after a valid hello.",
  owsla_auth_failures_total: "Hello frames refused for a bad or revoked token.",
  owsla_frame_errors_total: "Invalid frames received from devices.",
  owsla_flood_drops_total: "Flooding source addresses whose new connections the kernel was told to drop (each time).",
  owsla_flood_dropped_addresses: "Source addresses whose new connections the kernel drops now.",
  owsla_dropped_bytes_gc_total: "Full garbage collections forced after failing connections made a worker read and drop a megabyte.",
  owsla_rate_limited_total: "pub frames refused because the device had too many unacknowledged pubs.",
  owsla_slow_consumers_total: "Connections closed because the device stopped reading.",
  owsla_closes_total: "Device connections closed, by reason.",
  owsla_pubs_received_total: "pub frames received from devices.",
  owsla_messages_up_total: "Device messages confirmed by the broker.",
  owsla_messages_down_total: "Command frames written to devices.",
  owsla_device_acks_total: "Command acks received from devices.",
  owsla_publish_fallbacks_total: "Publishes that went to the outbox instead, by reason.",
  owsla_outbox_writes_total: "Messages written to the outbox.",
  owsla_outbox_failures_total: "Outbox writes that failed.",
  owsla_outbox_drained_total: "Outbox messages published after a backlog.",
  owsla_commands_received_total: "Commands consumed from the broker.",
  owsla_commands_rejected_total: "Commands rejected to the dead-letter exchange, by reason.",
  owsla_command_store_failures_total: "Commands that could not be stored in the inbox.",
  owsla_commands_delivered_live_total: "Commands written to a connected device on arrival.",
  owsla_commands_caught_up_total: "Pending commands sent to a device when it connected.",
  owsla_worker_restarts_total: "Worker processes restarted by the supervisor.",
  owsla_broker_up: "Workers whose broker link is up.",
  owsla_broker_reconnects: "Broker reconnections after the first connection.",
  owsla_broker_connect_attempts: "Broker connection attempts, successful or not (each follows the capped, jittered backoff).",
  owsla_broker_node: "1 for the broker node (host:port of broker.url) a worker's link uses now, 0 for the other configured nodes.",
  owsla_publish_confirm_ms: "Time from publish to broker confirmation, in milliseconds.",
  owsla_command_delivery_ms: "Time from the broker handing a command over to writing it to the device (including forwarding between workers), in milliseconds.",
};

const KEY = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$/;

/** A parsed snapshot key. */
interface Key {
  name: string;
  /** The label list without braces, e.g. `reason="x"`; "" when none. */
  labels: string;
}

function parseKey(key: string): Key | null {
  const m = KEY.exec(key);
  return m ? { name: m[1]!, labels: m[2] ?? "" } : null;
}

function braces(labels: string): string {
  return labels === "" ? "" : `{${labels}}`;
}

function withLabel(labels: string, extra: string): string {
  return labels === "" ? extra : `${labels},${extra}`;
}

/** A sample value as Prometheus writes it. */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

function escapeHelp(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** Series of one scalar family: label list → value, in insertion order. */
type Family = Map<string, number>;

function add(families: Map<string, Family>, key: Key, labels: string, value: number): void {
  let family = families.get(key.name);
  if (!family) families.set(key.name, (family = new Map()));
  family.set(labels, (family.get(labels) ?? 0) + value);
}

function addSummed(families: Map<string, Family>, series: Record<string, number>): void {
  for (const [k, v] of Object.entries(series)) {
    const key = parseKey(k);
    if (key) add(families, key, key.labels, v);
  }
}

/** Summed histogram of one key. */
interface Histogram {
  key: Key;
  buckets: number[];
  sum: number;
  count: number;
}

function addHistograms(into: Map<string, Histogram>, histograms: Record<string, HistogramData>): void {
  const last = LATENCY_BUCKETS_MS.length; // index of the +Inf slot
  for (const [k, h] of Object.entries(histograms)) {
    const key = parseKey(k);
    if (!key) continue;
    let acc = into.get(k);
    if (!acc) into.set(k, (acc = { key, buckets: new Array<number>(last + 1).fill(0), sum: 0, count: 0 }));
    h.buckets.forEach((n, i) => (acc.buckets[Math.min(i, last)]! += n));
    acc.sum += h.sum;
    acc.count += h.count;
  }
}

function header(lines: string[], name: string, type: string): void {
  const help = METRIC_HELP[name] ?? `Owsla metric ${name}.`;
  lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
}

/** The exposition text of all workers' and the supervisor's metrics. */
export function renderPrometheus(input: PrometheusInput): string {
  const workers = [...input.workers].sort((a, b) => a.id - b.id);
  const snapshots = [...workers.map((w) => w.snapshot), input.supervisor];

  const scalars = new Map<string, Family>();
  const histograms = new Map<string, Histogram>();
  for (const s of snapshots) {
    addSummed(scalars, s.counters);
    addSummed(scalars, s.gauges);
    addHistograms(histograms, s.histograms);
  }
  for (const w of workers) {
    for (const [k, v] of Object.entries(w.snapshot.gauges)) {
      const key = parseKey(k);
      // A series that already names its worker is complete as summed above.
      if (key && !/(^|,)worker="/.test(key.labels)) add(scalars, key, withLabel(key.labels, `worker="${w.id}"`), v);
    }
  }

  const histogramNames = new Set([...histograms.values()].map((h) => h.key.name));
  const names = [...new Set([...scalars.keys(), ...histogramNames])].sort();
  const lines: string[] = [];
  for (const name of names) {
    if (histogramNames.has(name)) {
      header(lines, name, "histogram");
      const family = [...histograms.values()].filter((h) => h.key.name === name);
      for (const h of family.sort((a, b) => a.key.labels.localeCompare(b.key.labels))) {
        let cumulative = 0;
        h.buckets.forEach((n, i) => {
          cumulative += n;
          const le = i < LATENCY_BUCKETS_MS.length ? String(LATENCY_BUCKETS_MS[i]) : "+Inf";
          lines.push(`${name}_bucket{${withLabel(h.key.labels, `le="${le}"`)}} ${formatValue(cumulative)}`);
        });
        lines.push(`${name}_sum${braces(h.key.labels)} ${formatValue(h.sum)}`);
        lines.push(`${name}_count${braces(h.key.labels)} ${formatValue(h.count)}`);
      }
      continue;
    }
    header(lines, name, name.endsWith("_total") ? "counter" : "gauge");
    for (const [labels, value] of scalars.get(name)!) lines.push(`${name}${braces(labels)} ${formatValue(value)}`);
  }
  return lines.length ? lines.join("\n") + "\n" : "";
}
