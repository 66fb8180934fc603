import { describe, expect, test } from "bun:test";
import { LATENCY_BUCKETS_MS, Metrics, type MetricsSnapshot } from "../metrics/metrics.ts";
import { exposedName, formatValue, renderPrometheus } from "./prometheus.ts";
import { parseExposition, sumOverWorkers } from "./prometheus-parse.ts";
import { registerQueueGauges } from "../metrics/queue-gauges.ts";
import { registerProcessMetrics } from "../metrics/process.ts";

const empty = (): MetricsSnapshot => ({ counters: {}, gauges: {}, histograms: {} });

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

/** Value of the sample line `series` (name plus labels exactly as written). */
function sample(text: string, series: string): number | undefined {
  return parseExposition(text).get(series);
}

describe("renderPrometheus", () => {
  test("renders nothing for empty snapshots", () => {
    expect(renderPrometheus({ workers: [], supervisor: empty() })).toBe("");
  });

  test("one family per metric: every series has a worker label and none is pre-summed", () => {
    const text = renderPrometheus({
      workers: [
        { id: 1, snapshot: { ...empty(), gauges: { owsla_connections: 5 }, counters: { 'owsla_closes_total{reason="kicked"}': 2 } } },
        { id: 0, snapshot: { ...empty(), gauges: { owsla_connections: 2 }, counters: { 'owsla_closes_total{reason="kicked"}': 1 } } },
      ],
      supervisor: { ...empty(), gauges: { owsla_workers_up: 2 } },
    });
    const family = lines(text).filter((l) => l.startsWith("owsla_connections"));
    expect(family).toEqual(['owsla_connections{worker="0"} 2', 'owsla_connections{worker="1"} 5']);
    expect(sample(text, 'owsla_closes_total{reason="kicked",worker="1"}')).toBe(2);
    expect(sample(text, 'owsla_workers_up{worker="supervisor"}')).toBe(2);
    // sum(owsla_connections) in PromQL: each connection once.
    expect(sumOverWorkers(parseExposition(text)).get("owsla_connections")).toBe(7);
    for (const l of lines(text).filter((l) => !l.startsWith("#"))) expect(l).toMatch(/worker="/);
  });

  test("counters end in _total and are typed counter; a counter registered without it gets it", () => {
    const text = renderPrometheus({ workers: [{ id: 0, snapshot: { ...empty(), counters: { owsla_accepts_total: 3, owsla_things: 2 } } }], supervisor: empty() });
    expect(text).toContain("# HELP owsla_accepts_total TCP connections accepted.\n# TYPE owsla_accepts_total counter\n");
    expect(text).toContain("# TYPE owsla_things_total counter\n");
    expect(sample(text, 'owsla_things_total{worker="0"}')).toBe(2);
  });

  test("cumulative gauges are exposed as counters under their _total name", () => {
    const text = renderPrometheus({ workers: [{ id: 0, snapshot: { ...empty(), gauges: { owsla_broker_reconnects: 4, owsla_commands_caught_up_total: 1 } } }], supervisor: empty() });
    expect(text).toContain("# TYPE owsla_broker_reconnects_total counter\n");
    expect(sample(text, 'owsla_broker_reconnects_total{worker="0"}')).toBe(4);
    expect(text).toContain("# TYPE owsla_commands_caught_up_total counter\n");
    expect(text).not.toContain("owsla_broker_reconnects{");
  });

  test("exposedName converts milliseconds to seconds and adds _total to counters", () => {
    expect(exposedName("owsla_publish_confirm_ms", "histogram")).toEqual({ name: "owsla_publish_confirm_seconds", scale: 0.001 });
    expect(exposedName("owsla_outbox_oldest_age_ms", "gauge")).toEqual({ name: "owsla_outbox_oldest_age_seconds", scale: 0.001 });
    expect(exposedName("owsla_busy_ms_total", "counter")).toEqual({ name: "owsla_busy_seconds_total", scale: 0.001 });
    expect(exposedName("owsla_connections", "gauge")).toEqual({ name: "owsla_connections", scale: 1 });
  });

  test("histograms measured in ms are exposed in seconds, per worker, cumulative, ending with +Inf", () => {
    const a = new Metrics();
    const b = new Metrics();
    for (const ms of [0.1, 3, 3, 20000]) a.observe("owsla_publish_confirm_ms", ms);
    for (const ms of [0.3, 7]) b.observe("owsla_publish_confirm_ms", ms);
    const text = renderPrometheus({ workers: [{ id: 0, snapshot: a.snapshot() }, { id: 1, snapshot: b.snapshot() }], supervisor: empty() });
    expect(text).toContain("# TYPE owsla_publish_confirm_seconds histogram\n");
    expect(text).not.toContain("_ms");
    const w0 = lines(text).filter((l) => l.startsWith("owsla_publish_confirm_seconds_bucket") && l.includes('worker="0"'));
    expect(w0).toHaveLength(LATENCY_BUCKETS_MS.length + 1);
    expect(sample(text, 'owsla_publish_confirm_seconds_bucket{worker="0",le="0.00025"}')).toBe(1);
    expect(sample(text, 'owsla_publish_confirm_seconds_bucket{worker="0",le="0.005"}')).toBe(3);
    expect(sample(text, 'owsla_publish_confirm_seconds_bucket{worker="0",le="5"}')).toBe(3);
    expect(sample(text, 'owsla_publish_confirm_seconds_bucket{worker="0",le="+Inf"}')).toBe(4);
    expect(sample(text, 'owsla_publish_confirm_seconds_sum{worker="0"}')).toBeCloseTo(20.0061);
    expect(sample(text, 'owsla_publish_confirm_seconds_count{worker="0"}')).toBe(4);
    expect(sample(text, 'owsla_publish_confirm_seconds_bucket{worker="1",le="0.0005"}')).toBe(1);
    expect(sample(text, 'owsla_publish_confirm_seconds_count{worker="1"}')).toBe(2);
    const values = w0.map((l) => Number(l.split(" ")[1]));
    expect(values).toEqual([...values].sort((x, y) => x - y));
  });

  test("keeps a histogram's own labels before worker and le", () => {
    const buckets = new Array(LATENCY_BUCKETS_MS.length + 1).fill(0);
    buckets[0] = 1;
    const text = renderPrometheus({ workers: [{ id: 0, snapshot: { ...empty(), histograms: { 'owsla_h_ms{op="x"}': { buckets, sum: 0.1, count: 1 } } } }], supervisor: empty() });
    expect(sample(text, 'owsla_h_seconds_bucket{op="x",worker="0",le="0.00025"}')).toBe(1);
    expect(sample(text, 'owsla_h_seconds_sum{op="x",worker="0"}')).toBeCloseTo(0.0001);
  });

  test("owsla_build_info carries version, commit and target with value 1", () => {
    const text = renderPrometheus({ workers: [], supervisor: empty(), build: { version: "1.2.3", commit: "abc", target: 'bun-linux-x64 "x"' } });
    expect(text).toContain("# TYPE owsla_build_info gauge\n");
    expect(sample(text, 'owsla_build_info{version="1.2.3",commit="abc",target="bun-linux-x64 \\"x\\""}')).toBe(1);
  });

  test("process metrics of every process, supervisor included", () => {
    const w = new Metrics();
    const s = new Metrics();
    registerProcessMetrics(w);
    registerProcessMetrics(s);
    const text = renderPrometheus({ workers: [{ id: 0, snapshot: w.snapshot() }], supervisor: s.snapshot() });
    for (const worker of ["0", "supervisor"]) {
      expect(sample(text, `process_resident_memory_bytes{worker="${worker}"}`)).toBeGreaterThan(1024 * 1024);
      expect(sample(text, `process_open_fds{worker="${worker}"}`)).toBeGreaterThan(2);
      expect(sample(text, `process_max_fds{worker="${worker}"}`)).toBeGreaterThan(0);
      expect(sample(text, `process_cpu_seconds_total{worker="${worker}"}`)).toBeGreaterThan(0);
      expect(sample(text, `process_start_time_seconds{worker="${worker}"}`)).toBeLessThanOrEqual(Date.now() / 1000);
    }
    expect(text).toContain("# TYPE process_cpu_seconds_total counter\n");
    expect(text).toContain("# TYPE process_resident_memory_bytes gauge\n");
  });

  test("queue gauges: bytes and the oldest entry's age in seconds, 0 when empty", () => {
    const m = new Metrics();
    let level: { bytes: number; oldestAt: number | null } = { bytes: 2048, oldestAt: 1_000 };
    registerQueueGauges(m, "outbox", () => level, () => 31_000);
    let text = renderPrometheus({ workers: [{ id: 2, snapshot: m.snapshot() }], supervisor: empty() });
    expect(sample(text, 'owsla_outbox_bytes{worker="2"}')).toBe(2048);
    expect(sample(text, 'owsla_outbox_oldest_age_seconds{worker="2"}')).toBe(30);
    expect(text).toContain("# HELP owsla_outbox_oldest_age_seconds Age of the oldest message");
    level = { bytes: 0, oldestAt: null };
    text = renderPrometheus({ workers: [{ id: 2, snapshot: m.snapshot() }], supervisor: empty() });
    expect(sample(text, 'owsla_outbox_oldest_age_seconds{worker="2"}')).toBe(0);
  });

  test("writes one HELP and TYPE per family and a valid line for every sample", () => {
    const m = new Metrics();
    m.inc("owsla_closes_total", { reason: "kicked" });
    m.inc("owsla_closes_total", { reason: "bye" });
    m.gauge("owsla_connections", () => 3);
    m.observe("owsla_command_delivery_ms", 1);
    const text = renderPrometheus({ workers: [{ id: 0, snapshot: m.snapshot() }, { id: 1, snapshot: m.snapshot() }], supervisor: empty(), build: { version: "v", commit: "c", target: "t" } });
    const types = lines(text).filter((l) => l.startsWith("# TYPE "));
    expect(new Set(types).size).toBe(types.length);
    expect(types).toHaveLength(4);
    for (const l of lines(text)) {
      if (l.startsWith("#")) expect(l).toMatch(/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/);
      else expect(l).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*\})? \S+$/);
    }
    expect(text.endsWith("\n")).toBe(true);
  });

  test("does not add a second worker label to a gauge that has one", () => {
    const text = renderPrometheus({ workers: [{ id: 3, snapshot: { ...empty(), gauges: { 'owsla_q{worker="3"}': 9 } } }], supervisor: empty() });
    expect(lines(text).filter((l) => !l.startsWith("#"))).toEqual(['owsla_q{worker="3"} 9']);
  });

  test("skips keys that are not metric names", () => {
    const text = renderPrometheus({ workers: [{ id: 0, snapshot: { ...empty(), counters: { "bad name": 1, ok_total: 1 } } }], supervisor: empty() });
    expect(text).not.toContain("bad name");
    expect(sample(text, 'ok_total{worker="0"}')).toBe(1);
  });

  test("renders NaN and infinities as Prometheus does", () => {
    expect([Number.NaN, Infinity, -Infinity, 1.5, 0].map(formatValue)).toEqual(["NaN", "+Inf", "-Inf", "1.5", "0"]);
    const text = renderPrometheus({ workers: [{ id: 0, snapshot: { ...empty(), gauges: { g: Number.NaN } } }], supervisor: empty() });
    expect(sample(text, 'g{worker="0"}')).toBeNaN();
  });
});

describe("sumOverWorkers", () => {
  test("drops the worker label and sums, keeping other labels", () => {
    const m = new Map([
      ['a{worker="0"}', 1],
      ['a{worker="supervisor"}', 2],
      ['b{reason="x,y",worker="1"}', 3],
      ['b{reason="x,y",worker="0"}', 4],
      ["c", 5],
    ]);
    expect([...sumOverWorkers(m)]).toEqual([
      ["a", 3],
      ['b{reason="x,y"}', 7],
      ["c", 5],
    ]);
  });
});
