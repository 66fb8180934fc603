import { describe, expect, test } from "bun:test";
import { LATENCY_BUCKETS_MS, Metrics, type MetricsSnapshot } from "../metrics/metrics.ts";
import { formatValue, renderPrometheus } from "./prometheus.ts";

const empty = (): MetricsSnapshot => ({ counters: {}, gauges: {}, histograms: {} });

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

/** Value of the sample line `series` (name plus labels exactly as written). */
function sample(text: string, series: string): number | undefined {
  const line = lines(text).find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("renderPrometheus", () => {
  test("renders nothing for empty snapshots", () => {
    expect(renderPrometheus({ workers: [], supervisor: empty() })).toBe("");
  });

  test("sums counters over workers and types _total names as counters", () => {
    const text = renderPrometheus({
      workers: [
        { id: 0, snapshot: { ...empty(), counters: { owsla_accepts_total: 3, 'owsla_closes_total{reason="kicked"}': 1 } } },
        { id: 1, snapshot: { ...empty(), counters: { owsla_accepts_total: 4, 'owsla_closes_total{reason="kicked"}': 2 } } },
      ],
      supervisor: empty(),
    });
    expect(text).toContain("# HELP owsla_accepts_total TCP connections accepted.\n# TYPE owsla_accepts_total counter\n");
    expect(sample(text, "owsla_accepts_total")).toBe(7);
    expect(sample(text, 'owsla_closes_total{reason="kicked"}')).toBe(3);
    expect(text).not.toContain("worker=");
  });

  test("emits each gauge summed and per worker", () => {
    const text = renderPrometheus({
      workers: [
        { id: 1, snapshot: { ...empty(), gauges: { owsla_connections: 5, 'owsla_x{kind="a"}': 1 } } },
        { id: 0, snapshot: { ...empty(), gauges: { owsla_connections: 2, 'owsla_x{kind="a"}': 2 } } },
      ],
      supervisor: empty(),
    });
    expect(text).toContain("# TYPE owsla_connections gauge\n");
    expect(sample(text, "owsla_connections")).toBe(7);
    expect(sample(text, 'owsla_connections{worker="0"}')).toBe(2);
    expect(sample(text, 'owsla_connections{worker="1"}')).toBe(5);
    expect(sample(text, 'owsla_x{kind="a"}')).toBe(3);
    expect(sample(text, 'owsla_x{kind="a",worker="0"}')).toBe(2);
    // Summed series first, then workers in id order.
    const family = lines(text).filter((l) => l.startsWith("owsla_connections"));
    expect(family).toEqual(["owsla_connections 7", 'owsla_connections{worker="0"} 2', 'owsla_connections{worker="1"} 5']);
  });

  test("types a counter whose name does not end in _total as a gauge", () => {
    const text = renderPrometheus({ workers: [{ id: 0, snapshot: { ...empty(), counters: { owsla_things: 2 } } }], supervisor: empty() });
    expect(text).toContain("# TYPE owsla_things gauge\n");
    expect(text).toContain("# HELP owsla_things Owsla metric owsla_things.\n");
  });

  test("passes the supervisor's series through without a worker label", () => {
    const text = renderPrometheus({
      workers: [{ id: 0, snapshot: { ...empty(), gauges: { owsla_connections: 1 } } }],
      supervisor: { ...empty(), counters: { owsla_worker_restarts_total: 2 }, gauges: { owsla_workers_up: 4 } },
    });
    expect(text).toContain("# TYPE owsla_worker_restarts_total counter\n");
    expect(sample(text, "owsla_worker_restarts_total")).toBe(2);
    expect(sample(text, "owsla_workers_up")).toBe(4);
    expect(text).not.toContain('owsla_workers_up{worker="');
  });

  test("sums histograms into cumulative buckets ending with +Inf", () => {
    const a = new Metrics();
    const b = new Metrics();
    for (const ms of [0.1, 3, 3, 20000]) a.observe("owsla_publish_confirm_ms", ms);
    for (const ms of [0.3, 7]) b.observe("owsla_publish_confirm_ms", ms);
    const text = renderPrometheus({
      workers: [
        { id: 0, snapshot: a.snapshot() },
        { id: 1, snapshot: b.snapshot() },
      ],
      supervisor: empty(),
    });
    expect(text).toContain("# TYPE owsla_publish_confirm_ms histogram\n");
    const buckets = lines(text).filter((l) => l.startsWith("owsla_publish_confirm_ms_bucket"));
    expect(buckets).toHaveLength(LATENCY_BUCKETS_MS.length + 1);
    expect(sample(text, 'owsla_publish_confirm_ms_bucket{le="0.25"}')).toBe(1);
    expect(sample(text, 'owsla_publish_confirm_ms_bucket{le="0.5"}')).toBe(2);
    expect(sample(text, 'owsla_publish_confirm_ms_bucket{le="5"}')).toBe(4);
    expect(sample(text, 'owsla_publish_confirm_ms_bucket{le="10"}')).toBe(5);
    expect(sample(text, 'owsla_publish_confirm_ms_bucket{le="5000"}')).toBe(5);
    expect(sample(text, 'owsla_publish_confirm_ms_bucket{le="+Inf"}')).toBe(6);
    expect(sample(text, "owsla_publish_confirm_ms_sum")).toBeCloseTo(20013.4);
    expect(sample(text, "owsla_publish_confirm_ms_count")).toBe(6);
    // Buckets never decrease.
    const values = buckets.map((l) => Number(l.split(" ")[1]));
    expect(values).toEqual([...values].sort((x, y) => x - y));
  });

  test("keeps a histogram's own labels before le", () => {
    const buckets = new Array(LATENCY_BUCKETS_MS.length + 1).fill(0);
    buckets[0] = 1;
    const text = renderPrometheus({
      workers: [{ id: 0, snapshot: { ...empty(), histograms: { 'owsla_h_ms{op="x"}': { buckets, sum: 0.1, count: 1 } } } }],
      supervisor: empty(),
    });
    expect(sample(text, 'owsla_h_ms_bucket{op="x",le="0.25"}')).toBe(1);
    expect(sample(text, 'owsla_h_ms_sum{op="x"}')).toBe(0.1);
  });

  test("writes one HELP and TYPE per family and a valid line for every sample", () => {
    const m = new Metrics();
    m.inc("owsla_closes_total", { reason: "kicked" });
    m.inc("owsla_closes_total", { reason: "bye" });
    m.gauge("owsla_connections", () => 3);
    m.observe("owsla_command_delivery_ms", 1);
    const text = renderPrometheus({ workers: [{ id: 0, snapshot: m.snapshot() }, { id: 1, snapshot: m.snapshot() }], supervisor: empty() });
    const types = lines(text).filter((l) => l.startsWith("# TYPE "));
    expect(new Set(types).size).toBe(types.length);
    expect(types).toHaveLength(3);
    for (const l of lines(text)) {
      if (l.startsWith("#")) expect(l).toMatch(/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/);
      else expect(l).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? \S+$/);
    }
    expect(text.endsWith("\n")).toBe(true);
  });

  test("does not add a second worker label to a gauge that has one", () => {
    const text = renderPrometheus({
      workers: [{ id: 3, snapshot: { ...empty(), gauges: { 'owsla_q{worker="3"}': 9 } } }],
      supervisor: empty(),
    });
    expect(lines(text).filter((l) => !l.startsWith("#"))).toEqual(['owsla_q{worker="3"} 9']);
  });

  test("skips keys that are not metric names", () => {
    const text = renderPrometheus({ workers: [{ id: 0, snapshot: { ...empty(), counters: { "bad name": 1, ok_total: 1 } } }], supervisor: empty() });
    expect(text).not.toContain("bad name");
    expect(sample(text, "ok_total")).toBe(1);
  });

  test("renders NaN and infinities as Prometheus does", () => {
    expect([Number.NaN, Infinity, -Infinity, 1.5, 0].map(formatValue)).toEqual(["NaN", "+Inf", "-Inf", "1.5", "0"]);
    const text = renderPrometheus({ workers: [{ id: 0, snapshot: { ...empty(), gauges: { g: Number.NaN } } }], supervisor: empty() });
    expect(sample(text, 'g{worker="0"}')).toBeNaN();
  });
});
