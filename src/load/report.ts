/** The one-second progress lines on stderr, and the back-end simulator's JSON summary. */
import { mergeAll } from "./histogram.ts";
import { errorTotal, type BackendCounters, type BackendFinal, type ClientCounters } from "./stats.ts";

/** `n` bytes in a short human form (MiB/GiB). */
export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  return `${(n / 2 ** 20).toFixed(0)} MiB`;
}

/** The largest error kinds as `kind n, ...`. */
function topErrors(e: Record<string, number>, k = 4): string {
  return Object.entries(e)
    .sort((a, b) => b[1] - a[1])
    .slice(0, k)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(", ");
}

/** The new errors since `prev`. */
function errorDelta(now: Record<string, number>, prev: Record<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, n] of Object.entries(now)) if (n - (prev[k] ?? 0) > 0) d[k] = n - (prev[k] ?? 0);
  return d;
}

/** One progress line of the device simulator; rates are over the last interval of `dtS` seconds. */
export function progressLine(
  elapsedS: number,
  dtS: number,
  devices: number,
  c: ClientCounters,
  prev: ClientCounters,
  gatewayRss: number | null,
  backend: { c: BackendCounters; prev: BackendCounters } | null,
): string {
  const rate = (a: number, b: number) => Math.round((a - b) / Math.max(dtS, 1e-3));
  const newErrors = errorDelta(c.errors, prev.errors);
  const parts = [
    `load ${elapsedS.toFixed(0).padStart(4)}s`,
    `connected ${c.connected}/${devices}`,
    `welcomed-once ${c.everWelcomed}`,
    `welcomes/s ${rate(c.welcomes, prev.welcomes)}`,
    `msgs/s ${rate(c.pubs, prev.pubs)} (acks/s ${rate(c.acks, prev.acks)}, replies/s ${rate(c.replies, prev.replies)})`,
    `errors ${errorTotal(c.errors)}${errorTotal(newErrors) ? ` (+${topErrors(newErrors)})` : ""}`,
  ];
  if (gatewayRss !== null) parts.push(`gateway rss ${formatBytes(gatewayRss)}`);
  if (backend) parts.push(`backend cmds/s ${rate(backend.c.cmdsSent, backend.prev.cmdsSent)} door-acks/s ${rate(backend.c.doorAcks, backend.prev.doorAcks)}`);
  return parts.join("  ");
}

/** One progress line of the standalone back-end simulator. */
export function backendProgressLine(elapsedS: number, c: BackendCounters, prev: BackendCounters): string {
  return [
    `backend ${elapsedS.toFixed(0).padStart(4)}s`,
    `devices ${c.devices}`,
    `received/s ${c.received - prev.received}`,
    `replies/s ${c.replies - prev.replies}`,
    `cmds/s ${c.cmdsSent - prev.cmdsSent}`,
    `door-acks/s ${c.doorAcks - prev.doorAcks}`,
    `errors ${errorTotal(c.errors)}${errorTotal(c.errors) ? ` (${topErrors(c.errors)})` : ""}`,
  ].join("  ");
}

/** The back-end simulator's part of a summary. */
export function backendSummary(f: BackendFinal, durationS: number) {
  const c = f.counters;
  return {
    duration_s: Math.round(durationS * 10) / 10,
    messages_received: c.received,
    presence_events: c.presence,
    rpc_replies_sent: c.replies,
    devices_known_connected: c.devices,
    commands_sent: c.cmdsSent,
    door_acks_received: c.doorAcks,
    commands_without_door_ack: c.cmdTimeouts,
    errors: c.errors,
    latency_ms: { door_unlock_round_trip: mergeAll([f.doorUnlock]).summary() },
    event_loop_lag_ms: mergeAll([f.loopLag]).summary(),
    rss_bytes: f.rssBytes,
  };
}
