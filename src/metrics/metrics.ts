/**
 * In-process metrics: counters, gauges and latency histograms, keyed by name and labels.
 * Each worker keeps its own; the control API aggregates snapshots of all workers.
 */

/** Upper bounds (ms) of latency histogram buckets. */
export const LATENCY_BUCKETS_MS = [0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000];

/** A histogram's counts per bucket (last slot = +Inf), sum and count. */
export interface HistogramData {
  buckets: number[];
  sum: number;
  count: number;
}

/** A serialisable copy of all metrics. */
export interface MetricsSnapshot {
  counters: Record<string, number>;
  gauges: Record<string, number>;
  histograms: Record<string, HistogramData>;
}

/** Builds the key `name{a="x",b="y"}` used in snapshots. */
export function metricKey(name: string, labels?: Record<string, string | number>): string {
  if (!labels) return name;
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${String(v).replace(/["\\\n]/g, "_")}"`);
  return parts.length ? `${name}{${parts.join(",")}}` : name;
}

/** Mutable metrics of one process. */
export class Metrics {
  private counters = new Map<string, number>();
  private gauges = new Map<string, () => number>();
  private histograms = new Map<string, HistogramData>();

  /** Adds `n` (default 1) to a counter. */
  inc(name: string, labels?: Record<string, string | number>, n = 1): void {
    const k = metricKey(name, labels);
    this.counters.set(k, (this.counters.get(k) ?? 0) + n);
  }

  /** Makes counters visible at 0 before their first event (so dashboards and rate() see them). */
  declare(...names: string[]): void {
    for (const n of names) if (!this.counters.has(n)) this.counters.set(n, 0);
  }

  /** Current value of a counter (0 when never incremented). */
  get(name: string, labels?: Record<string, string | number>): number {
    return this.counters.get(metricKey(name, labels)) ?? 0;
  }

  /** Registers a gauge read when a snapshot is taken. */
  gauge(name: string, read: () => number, labels?: Record<string, string | number>): void {
    this.gauges.set(metricKey(name, labels), read);
  }

  /** Records a latency in ms. */
  observe(name: string, ms: number): void {
    let h = this.histograms.get(name);
    if (!h) {
      h = { buckets: new Array(LATENCY_BUCKETS_MS.length + 1).fill(0), sum: 0, count: 0 };
      this.histograms.set(name, h);
    }
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[i]!) i++;
    h.buckets[i]!++;
    h.sum += ms;
    h.count++;
  }

  /** A copy of everything; gauges that throw read as NaN rather than failing. */
  snapshot(): MetricsSnapshot {
    const gauges: Record<string, number> = {};
    for (const [k, read] of this.gauges) {
      try {
        gauges[k] = read();
      } catch {
        gauges[k] = Number.NaN;
      }
    }
    const histograms: Record<string, HistogramData> = {};
    for (const [k, h] of this.histograms) histograms[k] = { buckets: [...h.buckets], sum: h.sum, count: h.count };
    return { counters: Object.fromEntries(this.counters), gauges, histograms };
  }
}
