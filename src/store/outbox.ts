/**
 * The outbox: upstream messages durably held while the broker is unreachable or has not
 * confirmed them, in the worker's own database. Rows are drained in `seq` order, which keeps
 * per-device order. (The `owner` column dates from the single shared file; it is the worker id.)
 */
import type { Database } from "bun:sqlite";
import type { Batcher } from "./batcher.ts";

import type { OutboxRow, OutboxStore, UpMessage, UpProps } from "./interfaces.ts";

export type { OutboxRow, UpMessage, UpProps };

interface RawRow {
  seq: number;
  device_id: string;
  message_id: string;
  routing_key: string;
  props: string;
  body: Uint8Array;
}

/** Durable queue of upstream messages per worker. */
export class Outbox implements OutboxStore {
  private readonly insertStmt;
  private readonly peekStmt;
  private readonly deleteStmt;
  private readonly countStmt;
  private readonly devicesStmt;
  private readonly adoptStmt;

  constructor(
    private readonly db: Database,
    private readonly batcher: Batcher,
    private readonly owner: number,
  ) {
    this.insertStmt = db.query(
      `INSERT INTO outbox (owner, device_id, message_id, routing_key, props, body, created)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.peekStmt = db.query<RawRow, [number, number, number]>(
      "SELECT seq, device_id, message_id, routing_key, props, body FROM outbox WHERE owner = ? AND seq > ? ORDER BY seq LIMIT ?",
    );
    this.deleteStmt = db.query("DELETE FROM outbox WHERE seq = ?");
    this.countStmt = db.query<{ n: number }, [number]>("SELECT COUNT(*) AS n FROM outbox WHERE owner = ?");
    this.devicesStmt = db.query<{ device_id: string; n: number }, [number]>(
      "SELECT device_id, COUNT(*) AS n FROM outbox WHERE owner = ? GROUP BY device_id",
    );
    this.adoptStmt = db.query("UPDATE outbox SET owner = ? WHERE owner >= ?");
  }

  /** Stores `m`; resolves once it is durable. */
  add(m: UpMessage): Promise<void> {
    const props = JSON.stringify(m.props);
    const now = Date.now();
    return this.batcher.run(() => {
      this.insertStmt.run(this.owner, m.deviceId, m.messageId, m.routingKey, props, m.body, now);
    });
  }

  /** Up to `limit` rows after `afterSeq`, oldest first. */
  peek(limit: number, afterSeq = 0): OutboxRow[] {
    return this.peekStmt.all(this.owner, afterSeq, limit).map((r) => ({
      seq: r.seq,
      deviceId: r.device_id,
      messageId: r.message_id,
      routingKey: r.routing_key,
      props: JSON.parse(r.props) as UpProps,
      body: r.body,
    }));
  }

  /** Deletes rows (after the broker confirmed them). */
  remove(seqs: number[]): Promise<void> {
    return this.batcher.run(() => {
      for (const s of seqs) this.deleteStmt.run(s);
    });
  }

  /** Rows held for this owner. */
  count(): number {
    return this.countStmt.get(this.owner)?.n ?? 0;
  }

  /** Rows waiting per device (a device's new messages must queue behind them). */
  countsByDevice(): Map<string, number> {
    return new Map(this.devicesStmt.all(this.owner).map((r) => [r.device_id, r.n]));
  }

  /** Bytes held (bodies and stored properties) and when the oldest row was written (ms), for the fill-level gauges. */
  level(): { bytes: number; oldestAt: number | null } {
    const r = this.db.query<{ bytes: number; oldest: number | null }, []>("SELECT COALESCE(SUM(length(body) + length(props)), 0) AS bytes, MIN(created) AS oldest FROM outbox").get();
    return { bytes: r?.bytes ?? 0, oldestAt: r?.oldest ?? null };
  }

  /** Takes over rows of owners >= `fromOwner` (workers that no longer exist after a resize). */
  adoptOrphans(fromOwner: number): number {
    return this.db.transaction(() => this.adoptStmt.run(this.owner, fromOwner).changes).immediate();
  }
}
