/**
 * Writes docs/grafana/owsla-dashboard.json, the Grafana dashboard for the panels described in
 * docs/monitoring.md (same PromQL). Run it after changing a panel:
 *
 *   bun scripts/grafana-dashboard.ts
 *
 * The dashboard takes its Prometheus data source as an input (`DS_PROMETHEUS`, asked for on
 * import) and has an `instance` variable to look at one gateway or all of them.
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
// Grafana's own dashboard model (its schema library): the type checker holds the generated JSON
// to what Grafana's import reads.
import type { Dashboard, Panel as GrafanaPanel, RowPanel } from "@grafana/schema";

interface Panel {
  title: string;
  unit: string;
  /** [PromQL, legend] pairs. */
  targets: [string, string][];
  description: string;
  type?: "timeseries" | "stat";
  w?: number;
}

const I = 'instance=~"$instance"';
const q = (p: number, h: string) => `histogram_quantile(${p}, sum by (le) (rate(${h}_bucket{${I}}[5m])))`;

/** Rows of panels, top to bottom. */
export const ROWS: { title: string; panels: Panel[] }[] = [
  {
    title: "Devices",
    panels: [
      { title: "Connected devices", unit: "short", type: "stat", w: 6, description: "Open device connections over all workers.", targets: [[`sum(owsla_connections{${I}})`, "devices"]] },
      { title: "Broker link", unit: "short", type: "stat", w: 6, description: "Workers whose broker link is up, out of all workers. Below the worker count: messages wait in the outbox.", targets: [[`sum(owsla_broker_up{${I}})`, "up"], [`count(owsla_broker_up{${I}})`, "workers"]] },
      { title: "Outbox oldest message", unit: "s", type: "stat", w: 6, description: "Age of the oldest device message waiting for the broker.", targets: [[`max(owsla_outbox_oldest_age_seconds{${I}})`, "oldest"]] },
      { title: "Workers up", unit: "short", type: "stat", w: 6, description: "Worker processes running, and restarts in the last hour.", targets: [[`sum(owsla_workers_up{${I}})`, "up"], [`sum(increase(owsla_worker_restarts_total{${I}}[1h]))`, "restarts 1h"]] },
      { title: "Connections by worker", unit: "short", description: "Connections per worker process: the kernel spreads them evenly.", targets: [[`owsla_connections{${I}}`, "{{instance}} worker {{worker}}"]] },
      { title: "Welcomes and refusals", unit: "ops", description: "Devices welcomed per second, and refused connections by reason.", targets: [[`sum(rate(owsla_welcomes_total{${I}}[5m]))`, "welcomes/s"], [`sum by (reason) (rate(owsla_accepts_rejected_total{${I}}[5m]))`, "refused {{reason}}"]] },
      { title: "Welcome latency", unit: "s", description: "Accept to welcome (TLS and hello included).", targets: [[q(0.5, "owsla_welcome_seconds"), "p50"], [q(0.99, "owsla_welcome_seconds"), "p99"]] },
      { title: "Disconnects by reason", unit: "ops", description: "Closed connections per second by reason (bye, keepalive_timeout, slow_consumer, taken_over, ...).", targets: [[`sum by (reason) (rate(owsla_closes_total{${I}}[5m]))`, "{{reason}}"]] },
      { title: "Failed logins and bans", unit: "short", description: "Refused hellos per second and bans in force.", targets: [[`sum(rate(owsla_auth_failures_total{${I}}[5m]))`, "auth failures/s"], [`sum(owsla_auth_bans_active{${I}})`, "bans active"], [`sum(rate(owsla_frame_errors_total{${I}}[5m]))`, "bad frames/s"]] },
    ],
  },
  {
    title: "Messages",
    panels: [
      { title: "Messages up and down", unit: "ops", description: "Device messages confirmed by the broker, and commands written to devices, per second.", targets: [[`sum(rate(owsla_messages_up_total{${I}}[5m]))`, "up/s"], [`sum(rate(owsla_messages_down_total{${I}}[5m]))`, "down/s"]] },
      { title: "Publish confirm latency", unit: "s", description: "Publish to broker confirmation.", targets: [[q(0.5, "owsla_publish_confirm_seconds"), "p50"], [q(0.99, "owsla_publish_confirm_seconds"), "p99"]] },
      { title: "Command delivery latency", unit: "s", description: "Broker delivery to the write to the device (forwarding between workers included).", targets: [[q(0.5, "owsla_command_delivery_seconds"), "p50"], [q(0.99, "owsla_command_delivery_seconds"), "p99"]] },
      { title: "Outbox", unit: "bytes", description: "Device messages held while the broker is away: bytes and messages.", targets: [[`sum(owsla_outbox_bytes{${I}})`, "bytes"], [`sum(owsla_outbox_depth{${I}})`, "messages"]] },
      { title: "Inbox", unit: "bytes", description: "Commands held for devices that are offline.", targets: [[`sum(owsla_inbox_bytes{${I}})`, "bytes"], [`sum(owsla_inbox_depth{${I}})`, "commands"], [`max(owsla_inbox_oldest_age_seconds{${I}})`, "oldest (s)"]] },
      { title: "Commands rejected and expired", unit: "ops", description: "Commands dead-lettered by reason, and expired before their device acked them.", targets: [[`sum by (reason) (rate(owsla_commands_rejected_total{${I}}[5m]))`, "rejected {{reason}}"], [`sum(rate(owsla_commands_expired_total{${I}}[5m]))`, "expired"]] },
    ],
  },
  {
    title: "Processes",
    panels: [
      { title: "Resident memory", unit: "bytes", description: "Per process: workers and the supervisor.", targets: [[`process_resident_memory_bytes{${I}}`, "{{instance}} {{worker}}"]] },
      { title: "CPU", unit: "percentunit", description: "CPU seconds per second, per process.", targets: [[`rate(process_cpu_seconds_total{${I}}[5m])`, "{{instance}} {{worker}}"]] },
      { title: "File descriptors used", unit: "percentunit", description: "Open descriptors as a share of the limit; accepting pauses near 1.", targets: [[`process_open_fds{${I}} / process_max_fds{${I}}`, "{{instance}} {{worker}}"]] },
      { title: "Store and broker health", unit: "short", description: "Workers whose database writes fail (store_ok 0) and broker reconnects.", targets: [[`count(owsla_store_ok{${I}} == 0) or vector(0)`, "store failing"], [`sum(increase(owsla_broker_reconnects_total{${I}}[1h]))`, "reconnects 1h"]] },
    ],
  },
];

/** A dashboard as Grafana exports it for sharing: the model plus the inputs asked for on import. */
export type ExportedDashboard = Dashboard & {
  __inputs: { name: string; label: string; type: "datasource"; pluginId: string; pluginName: string }[];
  __requires: { type: "grafana" | "datasource" | "panel"; id: string; name: string; version: string }[];
};

function panelJson(p: Panel, id: number, x: number, y: number, w: number, h: number): GrafanaPanel {
  const type = p.type ?? "timeseries";
  return {
    id,
    type,
    title: p.title,
    description: p.description,
    datasource: { type: "prometheus", uid: "${DS_PROMETHEUS}" },
    gridPos: { x, y, w, h },
    fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
    options: type === "stat" ? { reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false }, colorMode: "value", graphMode: "area" } : { legend: { displayMode: "list", placement: "bottom", showLegend: true }, tooltip: { mode: "multi" } },
    targets: p.targets.map(([expr, legendFormat], i) => ({ refId: String.fromCharCode(65 + i), expr, legendFormat, datasource: { type: "prometheus", uid: "${DS_PROMETHEUS}" } })),
  };
}

/** The dashboard model. */
export function dashboard(): ExportedDashboard {
  const panels: (GrafanaPanel | RowPanel)[] = [];
  let id = 1;
  let y = 0;
  for (const row of ROWS) {
    panels.push({ id: id++, type: "row", title: row.title, collapsed: false, gridPos: { x: 0, y, w: 24, h: 1 }, panels: [] });
    y += 1;
    let x = 0;
    let rowH = 0;
    for (const p of row.panels) {
      const w = p.w ?? 12;
      const h = p.type === "stat" ? 4 : 8;
      if (x + w > 24) {
        x = 0;
        y += rowH;
        rowH = 0;
      }
      panels.push(panelJson(p, id++, x, y, w, h));
      x += w;
      rowH = Math.max(rowH, h);
    }
    y += rowH;
  }
  return {
    __inputs: [{ name: "DS_PROMETHEUS", label: "Prometheus", type: "datasource", pluginId: "prometheus", pluginName: "Prometheus" }],
    __requires: [
      { type: "grafana", id: "grafana", name: "Grafana", version: "9.0.0" },
      { type: "datasource", id: "prometheus", name: "Prometheus", version: "1.0.0" },
      { type: "panel", id: "timeseries", name: "Time series", version: "" },
      { type: "panel", id: "stat", name: "Stat", version: "" },
    ],
    uid: "owsla-gateway",
    title: "Owsla gateway",
    description: "Devices, messages and processes of Owsla gateways (docs/monitoring.md).",
    tags: ["owsla", "iot"],
    timezone: "",
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: "30s",
    time: { from: "now-6h", to: "now" },
    templating: {
      list: [
        {
          name: "instance",
          label: "Gateway",
          type: "query",
          datasource: { type: "prometheus", uid: "${DS_PROMETHEUS}" },
          query: { query: "label_values(owsla_build_info, instance)", refId: "instance" },
          includeAll: true,
          multi: true,
          allValue: ".*",
          current: { selected: true, text: ["All"], value: ["$__all"] },
          refresh: 2,
          sort: 1,
        },
      ],
    },
    annotations: { list: [] },
    panels,
  };
}

if (import.meta.main) {
  const out = join(resolve(import.meta.dir, ".."), "docs/grafana/owsla-dashboard.json");
  writeFileSync(out, JSON.stringify(dashboard(), null, 2) + "\n");
  console.log(`wrote ${out}`);
}
