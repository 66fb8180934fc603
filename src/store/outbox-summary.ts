/**
 * How full the outbox is: rows, body bytes and the oldest row, in total and per device (the
 * devices holding most rows first). Read-only; used by the control API (`GET /api/v1/outbox`)
 * and by `owsla outbox` when the gateway is not running.
 */
import type { Database } from "bun:sqlite";

/** Outbox numbers of one device. */
export interface OutboxDeviceSummary {
  device_id: string;
  rows: number;
  bytes: number;
  /** Creation time of its oldest row (ISO). */
  oldest: string;
}

/** Outbox numbers of the gateway. */
export interface OutboxSummary {
  rows: number;
  /** Sum of the message bodies, in bytes. */
  bytes: number;
  /** Creation time of the oldest row (ISO), null when empty. */
  oldest: string | null;
  /** Age of the oldest row in seconds, null when empty. */
  oldest_age_s: number | null;
  /** Devices with rows in the outbox. */
  devices_total: number;
  /** The `limit` devices with the most rows, most first. */
  devices: OutboxDeviceSummary[];
}

/** Summarises the outbox tables of `dbs` (one per file holding an outbox), `limit` devices listed. */
export function summarizeOutbox(dbs: Database[], limit: number, now = Date.now()): OutboxSummary {
  const perDevice = new Map<string, { rows: number; bytes: number; oldest: number }>();
  for (const db of dbs) {
    const rows = db
      .query<{ device_id: string; n: number; bytes: number; oldest: number }, []>(
        "SELECT device_id, COUNT(*) AS n, COALESCE(SUM(LENGTH(body)), 0) AS bytes, MIN(created) AS oldest FROM outbox GROUP BY device_id",
      )
      .all();
    for (const r of rows) {
      const d = perDevice.get(r.device_id) ?? { rows: 0, bytes: 0, oldest: Infinity };
      d.rows += r.n;
      d.bytes += r.bytes;
      d.oldest = Math.min(d.oldest, r.oldest);
      perDevice.set(r.device_id, d);
    }
  }
  let rows = 0;
  let bytes = 0;
  let oldest = Infinity;
  for (const d of perDevice.values()) {
    rows += d.rows;
    bytes += d.bytes;
    oldest = Math.min(oldest, d.oldest);
  }
  const top = [...perDevice].sort((a, b) => b[1].rows - a[1].rows || a[1].oldest - b[1].oldest).slice(0, limit);
  return {
    rows,
    bytes,
    oldest: rows ? new Date(oldest).toISOString() : null,
    oldest_age_s: rows ? Math.max(0, Math.round((now - oldest) / 1000)) : null,
    devices_total: perDevice.size,
    devices: top.map(([device_id, d]) => ({ device_id, rows: d.rows, bytes: d.bytes, oldest: new Date(d.oldest).toISOString() })),
  };
}
