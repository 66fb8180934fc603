/**
 * Renders metrics snapshots as Prometheus text exposition (format 0.0.4). Pure: snapshots
 * in, text out. Follows the Prometheus naming conventions:
 *
 * - One family per metric, one series per process: every series carries a `worker` label,
 *   `"0"`, `"1"`, … for workers and `"supervisor"` for the supervisor. Nothing is pre-summed, so
 *   `sum(owsla_connections)` counts each connection once; aggregate with `sum by (...)`.
 * - Base units: a name ending in `_ms` (how the code measures) is exposed in seconds, as
 *   `_seconds`, with its values (histogram bounds and sums too) divided by 1000.
 * - Counters end in `_total`: a counter registered without the suffix gets it; a few
 *   cumulative values kept as gauges are renamed ({@link RENAMED}) and typed `counter`.
 * - `# TYPE` is `histogram` for histograms, `counter` for names ending in `_total`, `gauge`
 *   otherwise. A name used by a histogram and a scalar is emitted as the histogram only.
 * - `owsla_build_info{version,commit,target} 1` when build information is given.
 * Keys that are not valid metric names are skipped.
 *
 * @module
 */
import { LATENCY_BUCKETS_MS, type HistogramData, type MetricsSnapshot } from "../metrics/metrics.ts";
import { METRIC_HELP } from "./metric-help.ts";

export { METRIC_HELP };

/** Content type of the exposition. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** What {@link renderPrometheus} renders: the shape `ApiDeps.metrics()` resolves to, plus build information. */
export interface PrometheusInput {
  workers: { id: number; snapshot: MetricsSnapshot }[];
  supervisor: MetricsSnapshot;
  /** Rendered as `owsla_build_info`. Optional. */
  build?: { version: string; commit: string; target: string };
}

/** Cumulative values the code keeps as gauges, and the counter names they are exposed as. */
export const RENAMED: Readonly<Record<string, string>> = {
  owsla_broker_reconnects: "owsla_broker_reconnects_total",
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

/** The exposed name of a metric and the factor its values are multiplied by. */
export function exposedName(name: string, kind: "counter" | "gauge" | "histogram"): { name: string; scale: number } {
  if (RENAMED[name]) return { name: RENAMED[name]!, scale: 1 };
  let out = name;
  let scale = 1;
  const total = out.endsWith("_total");
  if (total) out = out.slice(0, -"_total".length);
  if (out.endsWith("_ms")) {
    out = out.slice(0, -"_ms".length) + "_seconds";
    scale = 1 / 1000;
  }
  if (total || kind === "counter") out += "_total";
  return { name: out, scale };
}

function braces(labels: string): string {
  return labels === "" ? "" : `{${labels}}`;
}

function withLabel(labels: string, extra: string): string {
  return labels === "" ? extra : `${labels},${extra}`;
}

/** The series' labels with the process's `worker` label (kept when the series already names one). */
function processLabels(labels: string, worker: string): string {
  return /(^|,)worker="/.test(labels) ? labels : withLabel(labels, `worker="${worker}"`);
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

function escapeLabel(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Series of one scalar family: label list → value, in insertion order. */
type Family = Map<string, number>;

/** One process's histogram series. */
interface Histogram {
  labels: string;
  buckets: number[];
  sum: number;
  count: number;
  scale: number;
}

function header(lines: string[], name: string, type: string): void {
  const help = METRIC_HELP[name] ?? `Owsla metric ${name}.`;
  lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
}

/** The exposition text of all workers' and the supervisor's metrics. */
export function renderPrometheus(input: PrometheusInput): string {
  const processes = [...input.workers].sort((a, b) => a.id - b.id).map((w) => ({ worker: String(w.id), snapshot: w.snapshot }));
  processes.push({ worker: "supervisor", snapshot: input.supervisor });

  const scalars = new Map<string, Family>();
  const histograms = new Map<string, Histogram[]>();
  const addScalar = (series: Record<string, number>, kind: "counter" | "gauge", worker: string) => {
    for (const [k, v] of Object.entries(series)) {
      const key = parseKey(k);
      if (!key) continue;
      const { name, scale } = exposedName(key.name, kind);
      let family = scalars.get(name);
      if (!family) scalars.set(name, (family = new Map()));
      const labels = processLabels(key.labels, worker);
      family.set(labels, (family.get(labels) ?? 0) + v * scale);
    }
  };
  const addHistograms = (series: Record<string, HistogramData>, worker: string) => {
    for (const [k, h] of Object.entries(series)) {
      const key = parseKey(k);
      if (!key) continue;
      const { name, scale } = exposedName(key.name, "histogram");
      let family = histograms.get(name);
      if (!family) histograms.set(name, (family = []));
      family.push({ labels: processLabels(key.labels, worker), buckets: h.buckets, sum: h.sum, count: h.count, scale });
    }
  };
  for (const p of processes) {
    addScalar(p.snapshot.counters, "counter", p.worker);
    addScalar(p.snapshot.gauges, "gauge", p.worker);
    addHistograms(p.snapshot.histograms, p.worker);
  }

  const lines: string[] = [];
  if (input.build) {
    const b = input.build;
    header(lines, "owsla_build_info", "gauge");
    lines.push(`owsla_build_info{version="${escapeLabel(b.version)}",commit="${escapeLabel(b.commit)}",target="${escapeLabel(b.target)}"} 1`);
  }
  const names = [...new Set([...scalars.keys(), ...histograms.keys()])].sort();
  for (const name of names) {
    const family = histograms.get(name);
    if (family) {
      header(lines, name, "histogram");
      for (const h of family) renderHistogram(lines, name, h);
      continue;
    }
    header(lines, name, name.endsWith("_total") ? "counter" : "gauge");
    for (const [labels, value] of scalars.get(name)!) lines.push(`${name}${braces(labels)} ${formatValue(value)}`);
  }
  return lines.length ? lines.join("\n") + "\n" : "";
}

function renderHistogram(lines: string[], name: string, h: Histogram): void {
  const last = LATENCY_BUCKETS_MS.length; // index of the +Inf slot
  let cumulative = 0;
  for (let i = 0; i <= last; i++) {
    // Counts past the known bounds (an older snapshot shape) land in +Inf.
    cumulative += i < last ? (h.buckets[i] ?? 0) : h.buckets.slice(last).reduce((a, b) => a + b, 0);
    const le = i < last ? formatValue(LATENCY_BUCKETS_MS[i]! * h.scale) : "+Inf";
    lines.push(`${name}_bucket{${withLabel(h.labels, `le="${le}"`)}} ${formatValue(cumulative)}`);
  }
  lines.push(`${name}_sum${braces(h.labels)} ${formatValue(h.sum * h.scale)}`);
  lines.push(`${name}_count${braces(h.labels)} ${formatValue(h.count)}`);
}
