/**
 * A worker's stored commands (table `inbox` of its own database): commands for devices that
 * were offline, or did not ack in time, kept until the device acks them or they expire. A
 * command is stored before its broker delivery is acknowledged, so a crash loses nothing.
 */
import type { Database } from "bun:sqlite";
import type { Batcher } from "./batcher.ts";
import type { Command } from "../protocol/gateway-messages.ts";
import { commandBytes, type CommandStore, type StoredCommand } from "./interfaces.ts";

export type { Command };

interface RawRow {
  device_id: string;
  id: string;
  topic: string;
  body: string;
  corr: string | null;
  expires_at: number;
  created: number;
}

function toCommand(r: RawRow): Command {
  return { id: r.id, deviceId: r.device_id, topic: r.topic, body: r.body, corr: r.corr, expiresAt: r.expires_at };
}

/** Durable per-device command store in SQLite. */
export class Inbox implements CommandStore {
  private readonly insertStmt;
  private readonly pendingStmt;
  private readonly deleteStmt;
  private readonly expireStmt;
  private readonly countStmt;
  private readonly countDeviceStmt;
  private readonly pendingForStmt;
  private readonly devicesStmt;
  private readonly quarantineStmt;
  private readonly quarantinedStmt;
  private readonly oldestStmt;
  private readonly expiredStmt;
  /** Running total of stored body bytes (counted once at open, then kept up to date). */
  private held: number;

  constructor(
    private readonly db: Database,
    private readonly batcher: Batcher,
  ) {
    this.insertStmt = db.query(
      `INSERT OR IGNORE INTO inbox (device_id, id, topic, body, corr, expires_at, created)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.pendingStmt = db.query<RawRow, [string, number]>(
      "SELECT * FROM inbox WHERE device_id = ? AND expires_at > ? ORDER BY created, id",
    );
    this.deleteStmt = db.query<{ n: number }, [string, string]>("DELETE FROM inbox WHERE device_id = ? AND id = ? RETURNING length(body) AS n");
    this.expireStmt = db.query<{ n: number }, [number]>("DELETE FROM inbox WHERE expires_at <= ? RETURNING length(body) AS n");
    this.oldestStmt = db.query<RawRow, [number]>("SELECT * FROM inbox ORDER BY created, id LIMIT ?");
    this.expiredStmt = db.query<RawRow, [number, number]>("SELECT * FROM inbox WHERE expires_at <= ? ORDER BY created, id LIMIT ?");
    this.countStmt = db.query<{ n: number }, []>("SELECT COUNT(*) AS n FROM inbox");
    this.pendingForStmt = db.query<RawRow, [string, number]>(
      "SELECT * FROM inbox WHERE device_id IN (SELECT value FROM json_each(?)) AND expires_at > ? ORDER BY created, id",
    );
    this.quarantineStmt = db.query("INSERT INTO quarantine (kind, device_id, id, item, reason, at) VALUES (?, ?, ?, ?, ?, ?)");
    this.quarantinedStmt = db.query<{ n: number }, []>("SELECT COUNT(*) AS n FROM quarantine");
    this.devicesStmt = db.query<{ device_id: string }, []>("SELECT DISTINCT device_id FROM inbox");
    this.countDeviceStmt = db.query<{ n: number }, [string]>("SELECT COUNT(*) AS n FROM inbox WHERE device_id = ?");
    this.held = db.query<{ n: number }, []>("SELECT COALESCE(SUM(length(body)), 0) AS n FROM inbox").get()?.n ?? 0;
  }

  /** Deletes one row (keeping the byte total); returns how many rows went (0 or 1). */
  private deleteRow(deviceId: string, id: string): number {
    const gone = this.deleteStmt.all(deviceId, id);
    for (const r of gone) this.held -= r.n;
    return gone.length;
  }

  /** Stores `c` (a duplicate id for the same device is ignored); resolves once durable. */
  add(c: Command): Promise<void> {
    const now = Date.now();
    return this.batcher.run(() => {
      if (this.insertStmt.run(c.deviceId, c.id, c.topic, c.body, c.corr, c.expiresAt, now).changes > 0) this.held += commandBytes(c);
    });
  }

  /** Unexpired commands for any of `deviceIds` (one query for many devices), oldest first. */
  pendingFor(deviceIds: string[]): Command[] {
    return this.pendingForStmt.all(JSON.stringify(deviceIds), Date.now()).map(toCommand);
  }

  /** Unexpired commands for `deviceId`, oldest first. */
  pending(deviceId: string): Command[] {
    return this.pendingStmt.all(deviceId, Date.now()).map(toCommand);
  }

  /** Removes a command the device acked; resolves with whether a row was deleted. */
  async remove(deviceId: string, id: string): Promise<boolean> {
    let deleted = 0;
    await this.batcher.run(() => {
      deleted = this.deleteRow(deviceId, id);
    });
    return deleted > 0;
  }

  async quarantine(c: Command, reason: string): Promise<void> {
    const now = Date.now();
    await this.batcher.run(() => {
      this.deleteRow(c.deviceId, c.id);
      this.quarantineStmt.run("command", c.deviceId, c.id, JSON.stringify(c), reason.slice(0, 1000), now);
    });
  }

  quarantined(): number {
    return this.quarantinedStmt.get()?.n ?? 0;
  }

  /** Bytes of stored command bodies and when the oldest was stored (ms), for the fill-level gauges. */
  level(): { bytes: number; oldestAt: number | null } {
    const r = this.db.query<{ oldest: number | null }, []>("SELECT MIN(created) AS oldest FROM inbox").get();
    return { bytes: this.held, oldestAt: r?.oldest ?? null };
  }

  bytes(): number {
    return this.held;
  }

  oldest(limit: number): StoredCommand[] {
    return this.oldestStmt.all(limit).map((r) => ({ ...toCommand(r), storedAt: r.created }));
  }

  expired(now: number, limit: number): StoredCommand[] {
    return this.expiredStmt.all(now, limit).map((r) => ({ ...toCommand(r), storedAt: r.created }));
  }

  /** Devices with stored commands. */
  devices(): string[] {
    return this.devicesStmt.all().map((r) => r.device_id);
  }

  /** Deletes expired commands; returns how many. */
  expire(now = Date.now()): number {
    return this.db.transaction(() => {
      const gone = this.expireStmt.all(now);
      for (const r of gone) this.held -= r.n;
      return gone.length;
    }).immediate();
  }

  /** Commands held in total, or for one device. */
  count(deviceId?: string): number {
    return (deviceId ? this.countDeviceStmt.get(deviceId) : this.countStmt.get())?.n ?? 0;
  }
}
