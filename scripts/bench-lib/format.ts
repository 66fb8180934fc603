/** Number, size and table formatting shared by the benchmark report's sections (render.ts). */
import type { Results } from "./render.ts";

export const fmt = (n: unknown, d = 0): string => (typeof n === "number" && Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }) : "—");
export const ms = (n: unknown) => (typeof n === "number" ? `${fmt(n, n < 10 ? 2 : n < 100 ? 1 : 0)} ms` : "—");
export const bytes = (n: unknown) => (typeof n === "number" ? (Math.abs(n) >= 2 ** 30 ? `${fmt(n / 2 ** 30, 2)} GiB` : Math.abs(n) >= 2 ** 20 ? `${fmt(n / 2 ** 20, 0)} MiB` : `${fmt(n, 0)} B`) : "—");
export const ratio = (a: unknown, b: unknown) => (typeof a === "number" && typeof b === "number" && b !== 0 ? `${fmt(a / b, 2)}×` : "—");
export const verdict = (ok: boolean | null) => (ok === null ? "not measured" : ok ? "**met**" : "**missed**");
export const code = (s: unknown) => (typeof s === "string" ? "`" + s + "`" : "—");

export function errorsText(e: Record<string, number> | undefined): string {
  if (!e || Object.keys(e).length === 0) return "none";
  return Object.entries(e)
    .map(([k, n]) => `${k} ${fmt(n)}`)
    .join(", ");
}

export function cpuNote(r: any): string {
  const c = r?.machine_state?.cpu;
  const q = r?.machine_state?.quiet_wait;
  if (!c) return "";
  return `CPU during the phase (${fmt(c.wall_s, 0)} s, ${fmt(c.cpu_s_available, 0)} CPU-s available): benchmark processes ${fmt(c.cpu_s_benchmark, 0)} CPU-s, RabbitMQ ${fmt(c.cpu_s_broker, 0)}, other processes on the machine ${fmt(c.cpu_s_other_processes, 0)}${q ? `; machine ${fmt(q.idle_before * 100, 0)}% idle before the phase (load average ${q.loadavg})` : ""}.`;
}

export function latencyRow(name: string, s: any): string {
  if (!s) return `| ${name} | — | — | — | — | — | — |`;
  return `| ${name} | ${fmt(s.count)} | ${ms(s.p50_ms)} | ${ms(s.p90_ms)} | ${ms(s.p99_ms)} | ${ms(s.p999_ms)} | ${ms(s.max_ms)} |`;
}

export const LAT_HEAD = "| path | samples | p50 | p90 | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|---:|---:|";

export function failed(name: string, r: any): string | null {
  if (!r) return `_Not run in this report (phase \`${name}\`)._`;
  if (r.error) return `_Phase \`${name}\` failed: ${r.error.split("\n")[0]}_`;
  return null;
}

export const us = (n: unknown) => (typeof n === "number" ? `${fmt(n, n < 10 ? 1 : 0)} µs` : "—");
export const sumOrNull = (a: unknown, b: unknown) => (typeof a === "number" && typeof b === "number" ? a + b : null);

/** Lines logged by a gateway whose message starts with `prefix` (warnings and errors). */
export function warningCount(warnings: Record<string, number> | undefined, prefix: string): number {
  let n = 0;
  for (const [k, v] of Object.entries(warnings ?? {})) if (k.replace(/^\w+: /, "").startsWith(prefix)) n += v;
  return n;
}

/** Gateway CPU per round trip of the message phase, in µs (each pub is one round trip; door unlocks count too). */
export function perRoundTrip(g: any): number | null {
  const c = g?.gateway?.cpu_s;
  const trips = (g?.messages?.sent ?? 0) + (g?.messages?.door_acks_sent ?? 0);
  return c?.held != null && c?.end != null && trips > 0 ? Math.round(((c.end - c.held) * 1e6) / trips) : null;
}

/** The scale runs of a report (200k, 400k, 1M), each with its bare baseline. */
export function scaleRuns(R: Results): { devices: number; run: any; gw: any; bare: any }[] {
  const P = R.params ?? {};
  const out: { devices: number; run: any; gw: any; bare: any }[] = [];
  for (const [devices, g, b] of [
    [P.devices, "gateway", "bare"],
    [P.big, "gateway_big", "bare_big"],
    [P.huge, "gateway_huge", "bare_huge"],
  ] as const) {
    if (!devices || (!R[g] && !R[b])) continue;
    out.push({ devices, run: R[g], gw: R[g]?.summary, bare: R[b]?.summary });
  }
  return out;
}
