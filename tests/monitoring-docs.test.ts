/**
 * The monitoring documentation ships in a usable state: docs/grafana/owsla-dashboard.json is a
 * well-formed Grafana dashboard (the structure Grafana's import needs, panels on the 24-column
 * grid without overlaps, unique ids and refIds), it is what scripts/grafana-dashboard.ts
 * generates (whose output the type check holds to Grafana's own dashboard model, from
 * @grafana/schema), every PromQL expression in it and in docs/monitoring.md parses with
 * Prometheus's own PromQL grammar (@prometheus-io/lezer-promql), and every metric they query
 * is one the gateway exposes. (No Grafana or Prometheus server runs here: neither is packaged
 * for this machine.)
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./helpers/gateway.ts";
import { METRIC_HELP } from "../src/api/metric-help.ts";
import { dashboard } from "../scripts/grafana-dashboard.ts";
import { parser as promql } from "@prometheus-io/lezer-promql";

const json = JSON.parse(readFileSync(join(ROOT, "docs/grafana/owsla-dashboard.json"), "utf8"));
const doc = readFileSync(join(ROOT, "docs/monitoring.md"), "utf8");

/** Metric names (owsla_*, process_*) in a PromQL expression, histogram suffixes removed. */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b((?:owsla|process)_[a-z0-9_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, ""));
}

/** Where PromQL's grammar fails to parse `expr` ("" when it parses). */
function promqlError(expr: string): string {
  const at: number[] = [];
  promql.parse(expr).iterate({
    enter: (n) => {
      if (n.type.isError) at.push(n.from);
    },
  });
  return at.length === 0 ? "" : `PromQL does not parse at offset ${at[0]}: ${expr}`;
}

test("the PromQL check finds syntax errors", () => {
  expect(promqlError('histogram_quantile(0.99, sum by (le) (rate(x_bucket{instance=~"$instance"}[5m])))')).toBe("");
  for (const bad of ["sum(rate(x[5m])", "histogram_quantile(0.99 sum by (le) (x))", "rate(x[5q])", "sum by (le) rate(x[5m])", "x /"]) expect(promqlError(bad)).not.toBe("");
});

function balanced(expr: string): boolean {
  let depth = 0;
  for (const c of expr) {
    if ("([{".includes(c)) depth++;
    if (")]}".includes(c)) depth--;
    if (depth < 0) return false;
  }
  return depth === 0;
}

type PanelJson = { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; targets?: { refId: string; expr: string }[]; datasource?: { uid: string } };

describe("Grafana dashboard", () => {
  const panels = json.panels as PanelJson[];

  test("is the generator's output (edit scripts/grafana-dashboard.ts, then run it)", () => {
    expect(json).toEqual(JSON.parse(JSON.stringify(dashboard())));
  });

  test("has what Grafana's import needs: title, uid, schemaVersion, a Prometheus input, panels", () => {
    expect(typeof json.title).toBe("string");
    expect(json.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(Number.isInteger(json.schemaVersion)).toBe(true);
    expect(json.__inputs).toEqual([expect.objectContaining({ name: "DS_PROMETHEUS", type: "datasource", pluginId: "prometheus" })]);
    expect(Array.isArray(json.templating.list)).toBe(true);
    expect(panels.length).toBeGreaterThan(10);
  });

  test("panels have unique ids, sit on the 24-column grid and do not overlap", () => {
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const p of panels) {
      const g = p.gridPos;
      expect(g.x >= 0 && g.y >= 0 && g.w > 0 && g.h > 0 && g.x + g.w <= 24).toBe(true);
    }
    for (let i = 0; i < panels.length; i++) {
      for (let j = i + 1; j < panels.length; j++) {
        const a = panels[i]!.gridPos;
        const b = panels[j]!.gridPos;
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(overlap ? `${panels[i]!.title} overlaps ${panels[j]!.title}` : "").toBe("");
      }
    }
  });

  test("every query panel uses the Prometheus input, has unique refIds and balanced expressions over exposed metrics", () => {
    const queries = panels.filter((p) => p.type !== "row");
    expect(queries.length).toBeGreaterThan(10);
    for (const p of queries) {
      expect(p.datasource?.uid).toBe("${DS_PROMETHEUS}");
      const targets = p.targets ?? [];
      expect(targets.length).toBeGreaterThan(0);
      expect(new Set(targets.map((t) => t.refId)).size).toBe(targets.length);
      for (const t of targets) {
        expect(balanced(t.expr)).toBe(true);
        expect(promqlError(t.expr)).toBe("");
        const names = metricsIn(t.expr);
        expect(names.length).toBeGreaterThan(0);
        for (const n of names) expect(METRIC_HELP[n] ? n : `${p.title}: unknown metric ${n}`).toBe(n);
      }
    }
  });
});

describe("docs/monitoring.md", () => {
  const blocks = [...doc.matchAll(/```promql\n([\s\S]*?)```/g)].map((m) => m[1]!);

  test("has PromQL for the panels an operator needs", () => {
    const all = blocks.join("\n");
    for (const m of ["owsla_connections", "owsla_broker_up", "owsla_welcome_seconds", "owsla_publish_confirm_seconds", "owsla_command_delivery_seconds", "owsla_outbox_bytes", "owsla_outbox_oldest_age_seconds", "owsla_inbox_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"]) {
      expect(all).toContain(m);
    }
  });

  test("queries only metrics the gateway exposes, with balanced parentheses", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    for (const block of blocks) {
      for (const line of block.split("\n").filter((l) => l.trim() && !l.trim().startsWith("#"))) {
        expect(balanced(line) ? "" : line).toBe("");
        expect(promqlError(line)).toBe("");
        for (const n of metricsIn(line)) expect(METRIC_HELP[n] ? n : `unknown metric ${n} in: ${line}`).toBe(n);
      }
    }
  });

  test("every metric with help text is documented", () => {
    for (const name of Object.keys(METRIC_HELP)) expect(doc.includes(name) ? name : `${name} missing from docs/monitoring.md`).toBe(name);
  });
});
